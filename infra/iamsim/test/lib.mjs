/**
 * What the iam-simulate tests share: the deployments infra/tests/iamsim_export.py resolved from the templates,
 * each task queue's policy as tasksub-core builds it (`cargo run --example queue_policy`, the binary
 * $TASKSUB_QUEUE_POLICY_BIN), and one `decide()` that runs a request through @cloud-copilot/iam-simulate:
 * AWS's evaluation of identity policies, the resource policy, SCPs and RCPs, with every condition operator.
 *
 * A request carries the context AWS itself would put in it (the simulator fills in nothing): for a role
 * session, aws:PrincipalArn is the role's ARN and aws:userid is "<role unique id>:<session name>"
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#principaltable); ECS names a
 * task role's session after the task ID (docs/threat-model.md, "A task reads only its own queue"); requests go
 * over TLS (aws:SecureTransport true) unless a case says otherwise.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSimulation } from '@cloud-copilot/iam-simulate';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
const DIR = process.env.TASKSUB_IAMSIM_DIR ?? path.join(REPO, 'infra', 'build', 'iamsim');
const QUEUE_POLICY_BIN = process.env.TASKSUB_QUEUE_POLICY_BIN ?? path.join(REPO, 'target', 'debug', 'examples', 'queue_policy');

/** The organisation every account of these deployments belongs to (the RCP scenario). */
export const ORG = 'o-tasksub0001';
/** An account outside the deployment (and outside the organisation). */
export const STRANGER = '999999999999';
/** Another task of the same stack (same task role, same tags): its queue must stay closed to ours. */
export const OTHER_TASK = 'fedcba9876543210fedcba9876543210';

/** Every deployment exported by iamsim_export.py: one per template and scenario. */
export function deployments() {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
  if (files.length === 0) {
    throw new Error(`no deployment in ${DIR}: run infra/validate.sh (it writes them with infra/tests/iamsim_export.py)`);
  }
  return files.map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')));
}

/** Task ID → { queueArn, policy } as tasksub-core builds it from the deployment's function environment. */
export function queuePolicies(d, taskIds) {
  const env = { PATH: process.env.PATH, AWS_REGION: d.region, ...d.environment };
  const out = execFileSync(QUEUE_POLICY_BIN, taskIds, { env, encoding: 'utf8' });
  return JSON.parse(out);
}

/** The role session a role's code runs as: a Lambda function's, or the ECS task's (session name = task ID). */
export function session(d, role, taskId = d.taskId) {
  const arn = d.roles[role]?.arn ?? role;
  const name = arn.split('/').pop();
  const sessionName = role === 'TaskRolePolicy' || arn === d.appRole ? taskId : `${name}-session`;
  const account = arn.split(':')[4];
  return {
    principal: `arn:aws:sts::${account}:assumed-role/${name}/${sessionName}`,
    context: {
      'aws:PrincipalArn': arn,
      'aws:userid': `AROAEXAMPLEID${name.length}:${sessionName}`,
      'aws:PrincipalAccount': account,
      'aws:PrincipalOrgID': account === STRANGER ? 'o-elsewhere01' : ORG,
      'aws:PrincipalIsAWSService': 'false',
    },
  };
}

/** An AWS service principal delivering on behalf of a resource (SNS to a queue, EventBridge to its DLQ). */
export function servicePrincipal(service, sourceArn) {
  return {
    principal: service,
    context: { 'aws:SourceArn': sourceArn, 'aws:SourceAccount': sourceArn.split(':')[4], 'aws:PrincipalIsAWSService': 'true' },
  };
}

/**
 * An organisation RCP that denies every principal outside the organisation, AWS services excepted
 * (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_examples.html, the data
 * perimeter example): tasksub must keep working under it.
 */
export const PERIMETER_RCP = [{
  orgIdentifier: ORG,
  policies: [{
    name: 'DenyOutsideTheOrganisation',
    policy: {
      Version: '2012-10-17',
      Statement: [{
        Sid: 'EnforceOrgIdentities',
        Effect: 'Deny',
        Principal: '*',
        Action: ['sqs:*', 'sns:*', 'dynamodb:*'],
        Resource: '*',
        Condition: {
          StringNotEqualsIfExists: { 'aws:PrincipalOrgID': ORG },
          BoolIfExists: { 'aws:PrincipalIsAWSService': 'false' },
        },
      }],
    },
  }],
}];

/**
 * Runs one request through iam-simulate and returns its overall result: 'Allowed', 'ExplicitlyDenied' or
 * 'ImplicitlyDenied'. A request the simulator refuses to evaluate (unknown action, a context key the action
 * does not take, an invalid policy) fails the test with the simulator's errors.
 */
export async function decide({
  who, action, resource, context = {}, identity = [], resourcePolicy, rcps = [], tls = true, resourceAccount,
}) {
  const accountId = resourceAccount
    ?? (resource === '*' ? who.context['aws:PrincipalAccount'] ?? who.context['aws:SourceAccount'] : resource.split(':')[4]);
  const simulation = {
    identityPolicies: identity.length ? [{ name: 'identity', policy: { Version: '2012-10-17', Statement: identity } }] : [],
    serviceControlPolicies: [],
    resourceControlPolicies: rcps,
    resourcePolicy,
    request: {
      principal: who.principal,
      action,
      resource: { resource, accountId },
      contextVariables: { ...who.context, 'aws:SecureTransport': String(tls), ...context },
    },
  };
  const r = await runSimulation(simulation, {});
  if (r.resultType === 'error') {
    throw new Error(`iam-simulate refused ${action} on ${resource}: ${JSON.stringify(r.errors)}`);
  }
  return r.overallResult;
}

/** The resource policy AWS would evaluate with a request on `resource` in deployment `d`. */
export function resourcePolicyOf(d, resource, taskQueues) {
  if (taskQueues[resource]) {
    return taskQueues[resource];
  }
  for (const [lid, arn] of Object.entries(d.queues)) {
    if (arn === resource) {
      return d.resourcePolicies[`${lid}Policy`];
    }
  }
  return d.foreignTopicPolicies[resource];
}

/**
 * The actions on one subscription: sns:Unsubscribe, sns:GetSubscriptionAttributes, sns:SetSubscriptionAttributes.
 * Where SNS's authorization of them differs from the generic cross-account evaluation, and how the tests follow
 * SNS. AWS authorizes them against the subscription's topic ARN (AWS's newest data gives each an optional topic
 * resource type; AWS's AuthorizationError names the topic ARN: docs/threat-model.md, "Operating notes"), but a
 * topic policy cannot grant them (they are not among the valid topic-policy actions,
 * https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html): SNS lets
 * "the owner of the subscription or the topic's owner" unsubscribe
 * (https://docs.aws.amazon.com/sns/latest/api/API_Unsubscribe.html), and "a subscription owner" set its
 * attributes (https://docs.aws.amazon.com/sns/latest/api/API_SetSubscriptionAttributes.html). The subscriptions
 * tasksub touches are its own account's, so each call is judged as its account's own, on the caller's identity
 * policy: iam-simulate's generic rule would otherwise demand a topic-policy Allow that no topic owner can write.
 */
export const SUBSCRIPTION_ACTIONS = new Set(['sns:Unsubscribe', 'sns:GetSubscriptionAttributes', 'sns:SetSubscriptionAttributes']);

export function subscriptionOwnerAccount(call, d) {
  return SUBSCRIPTION_ACTIONS.has(call.action) ? d.account : undefined;
}

/** The resource IAM authorizes a call against: a subscription action against the subscription's topic. */
export function authorizedResource(call) {
  if (SUBSCRIPTION_ACTIONS.has(call.action)) {
    return call.resource.split(':').slice(0, 6).join(':');
  }
  return call.resource;
}
