#!/usr/bin/env node
/**
 * Offline synth WITHOUT bundling, for validation (cfn-lint, cfn-guard, checkov, pattern tests):
 *   node dist/bin/synth.js [OUTDIR] [arm64|x86_64]
 * The CDK CLI refuses `aws:` context keys, so bundling is switched off here, in the App constructor.
 * Writes OUTDIR/Tasksub.template.json (default OUTDIR: ../build/cdk).
 */
import * as path from 'node:path';
import { App, DefaultStackSynthesizer } from 'aws-cdk-lib';
import { ArchitectureName, TasksubStack } from '../lib/tasksub-stack';

const outdir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', '..', 'build', 'cdk'));
const architecture = (process.argv[3] ?? 'arm64') as ArchitectureName;
const app = new App({ outdir, analyticsReporting: false, context: { 'aws:cdk:bundling-stacks': [] } });
new TasksubStack(app, 'Tasksub', {
  architecture,
  synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
});
const assembly = app.synth();
console.log(path.join(assembly.directory, assembly.getStackByName('Tasksub').templateFile));
