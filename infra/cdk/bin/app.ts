#!/usr/bin/env node
/**
 * The CDK app for `cdk synth` / `cdk deploy` (bundles the Rust binaries with cargo-lambda, which
 * must be on PATH). Context: `-c architecture=arm64|x86_64` (default arm64),
 * `-c stackName=<name>` (default tasksub), `-c settingsGeneration=<n>` (TASKSUB_SETTINGS_GENERATION, carried by
 * the template: raise it with every deploy that changes the settings, e.g. 2026120701; without it the stack has
 * the SettingsGeneration parameter instead). Parameters are passed at deploy time:
 *   npx cdk deploy -c architecture=arm64 -c settingsGeneration=2026120701 \
 *     --parameters ClusterArns=arn:aws:ecs:...:cluster/prod
 */
import { App, DefaultStackSynthesizer } from 'aws-cdk-lib';
import { ArchitectureName, TasksubStack, parseSettingsGeneration } from '../lib/tasksub-stack';

const app = new App({ analyticsReporting: false });
const architecture = (app.node.tryGetContext('architecture') ?? 'arm64') as ArchitectureName;
if (architecture !== 'arm64' && architecture !== 'x86_64') {
  throw new Error(`context architecture must be arm64 or x86_64, not ${architecture}`);
}
new TasksubStack(app, 'Tasksub', {
  stackName: app.node.tryGetContext('stackName') ?? 'tasksub',
  architecture,
  // Set by whoever deploys (context, cdk.json or the code), never from the clock: a deploy that changes no
  // setting keeps its generation.
  settingsGeneration: parseSettingsGeneration(app.node.tryGetContext('settingsGeneration')),
  synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
});
