/**
 * The evaluator's cases for one deployment (infra/tests/iamsim_export.py), as data: iam.test.mjs registers each
 * as a test; mutation.test.mjs runs them all against the deployment with one identity statement or one condition
 * removed, and requires that some case then fails. A case is { name, run }: run() resolves, or throws (an
 * assertion) when the case fails.
 */
import { strict as assert } from 'node:assert';
import {
  OTHER_TASK, PERIMETER_RCP, STRANGER, SUBSCRIPTION_ACTIONS, authorizedResource, decide, queuePolicies,
  resourcePolicyOf, servicePrincipal, session, subscriptionOwnerAccount,
} from './lib.mjs';

const STACK_TAG = 'tasksub:stack';
const QUEUE_ACTIONS_ON_TASK_QUEUES = new Set([
  'sqs:CreateQueue', 'sqs:TagQueue', 'sqs:DeleteQueue', 'sqs:SetQueueAttributes', 'sqs:GetQueueUrl',
  'sqs:GetQueueAttributes', 'sqs:ListQueueTags', 'sqs:ReceiveMessage', 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibility',
]);
const MESSAGE_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'];

export function casesFor(d, policies = queuePolicies(d, [d.taskId, OTHER_TASK])) {
  const cases = [];
  const it = (name, run) => cases.push({ name, run });
  const ownQueue = policies[d.taskId].queueArn;
  const otherQueue = policies[OTHER_TASK].queueArn;
  const taskQueues = { [ownQueue]: policies[d.taskId].policy, [otherQueue]: policies[OTHER_TASK].policy };
  const tagged = { [`aws:ResourceTag/${STACK_TAG}`]: d.stack };

  /** One call of `role`'s code, as AWS would evaluate it. */
  const call = (role, c, extra = {}) => {
    const resource = authorizedResource(c);
    return decide({
      who: extra.who ?? session(d, role),
      action: c.action,
      resource: extra.resource ?? resource,
      context: extra.context ?? c.context,
      identity: d.roles[role].statements,
      resourcePolicy: SUBSCRIPTION_ACTIONS.has(c.action) ? undefined : resourcePolicyOf(d, extra.resource ?? resource, taskQueues),
      resourceAccount: subscriptionOwnerAccount(c, d),
      rcps: extra.rcps,
      tls: extra.tls ?? true,
    });
  };

  it('the queue the calls name is the task queue tasksub-core builds the policy of (or the role\'s own buffer)', () => {
    // The event source mapping of each event function's buffer queue receives, deletes and reads attributes
    // with the function's role, on that buffer only; every other queue call is on the task queue.
    const buffers = Object.values(d.buffers);
    for (const [role, calls] of Object.entries(d.calls)) {
      const onBuffers = calls.filter((c) => buffers.includes(c.resource));
      assert.deepEqual(onBuffers.map((c) => c.resource).filter((r) => r !== d.buffers[role]), [], role);
      assert.deepEqual(onBuffers.map((c) => c.action).sort(),
        d.buffers[role] ? ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'] : [], role);
    }
    const queueCalls = Object.values(d.calls).flat()
      .filter((c) => QUEUE_ACTIONS_ON_TASK_QUEUES.has(c.action) && !buffers.includes(c.resource));
    assert.ok(queueCalls.length >= 10);
    for (const c of queueCalls) {
      assert.equal(c.resource, ownQueue, `${c.action}`);
    }
    const sids = policies[d.taskId].policy.Statement.map((s) => s.Sid);
    assert.deepEqual(sids.slice(0, 3), ['AllowTopicOnly', 'DenyOtherSenders', 'DenyInsecureTransport']);
    assert.deepEqual(sids.slice(3), d.isolated ? ['DenyOtherReaders', 'DenyOtherTasks'] : []);
  });

  for (const rcps of [[], PERIMETER_RCP]) {
    const under = rcps.length ? ' under an RCP denying principals outside the organisation' : '';
    it(`every call of every role is allowed on its resource${under}`, async () => {
      const refused = [];
      for (const [role, calls] of Object.entries(d.calls)) {
        for (const c of calls) {
          const result = await call(role, c, { rcps });
          if (result !== 'Allowed') {
            refused.push(`${role}: ${c.action} on ${authorizedResource(c)} ${JSON.stringify(c.context)} -> ${result}`);
          }
        }
      }
      assert.deepEqual(refused, []);
    });

    it(`SNS delivers from each configured topic, EventBridge dead-letters from each rule${under}`, async () => {
      for (const topic of d.topics) {
        for (const queue of [ownQueue, otherQueue]) {
          const r = await decide({
            who: servicePrincipal('sns.amazonaws.com', topic), action: 'sqs:SendMessage', resource: queue,
            resourcePolicy: taskQueues[queue], rcps,
          });
          assert.equal(r, 'Allowed', `${topic} -> ${queue}`);
        }
      }
      for (const [rule, arn] of Object.entries(d.rules)) {
        const r = await decide({
          who: servicePrincipal('events.amazonaws.com', arn), action: 'sqs:SendMessage', resource: d.queues.EventDlq,
          resourcePolicy: d.resourcePolicies.EventDlqPolicy, rcps,
        });
        assert.equal(r, 'Allowed', rule);
      }
    });
  }

  it('nothing on a queue of another stack, an untagged queue, another prefix or another account', async () => {
    const allowed = [];
    const owned = (c) => c.context[`aws:ResourceTag/${STACK_TAG}`] !== undefined;
    const suffix = ownQueue.split(':').pop().slice(d.prefix.length);
    for (const [role, calls] of Object.entries(d.calls)) {
      for (const c of calls.filter((x) => QUEUE_ACTIONS_ON_TASK_QUEUES.has(x.action))) {
        const variants = [
          ['another prefix', { resource: ownQueue.replace(`:${d.prefix}`, ':tasksub-other-') }],
          ['another account', { resource: ownQueue.replace(`:${d.account}:`, `:${STRANGER}:`) }],
        ];
        if (owned(c)) {
          variants.push(['another stack', { context: { ...c.context, [`aws:ResourceTag/${STACK_TAG}`]: 'another-stack' } }]);
          variants.push(['an untagged queue', { context: {} }]);
        }
        if (c.action === 'sqs:CreateQueue' || c.action === 'sqs:TagQueue') {
          variants.push(['another stack', { context: { ...c.context, [`aws:RequestTag/${STACK_TAG}`]: 'another-stack' } }]);
          variants.push(['an untagged queue', { context: { 'aws:TagKeys': c.context['aws:TagKeys'] } }]);
          variants.push(['a foreign tag key', { context: { ...c.context, 'aws:TagKeys': [...c.context['aws:TagKeys'], 'owner'] } }]);
        }
        for (const [what, extra] of variants) {
          if ((await call(role, c, extra)) === 'Allowed') {
            allowed.push(`${role}: ${c.action} on ${what} (${extra.resource ?? suffix})`);
          }
        }
      }
    }
    assert.deepEqual(allowed, []);
  });

  it('a subscription\'s attributes only on the configured topics: not on a topic that left them, nor another account\'s', async () => {
    const allowed = [];
    const attributeCalls = Object.entries(d.calls)
      .flatMap(([role, calls]) => calls.filter((c) => /^sns:(Get|Set)SubscriptionAttributes$/.test(c.action)).map((c) => [role, c]));
    assert.ok(attributeCalls.length >= 4, 'on-task-running and the sweeper read and set subscription attributes');
    assert.deepEqual([...new Set(attributeCalls.map(([role]) => role))].sort(), ['OnTaskRunningFunctionRole', 'SweeperFunctionRole']);
    const suffix = d.fifo ? '.fifo' : '';
    for (const [role, c] of attributeCalls) {
      for (const topic of [
        `arn:aws:sns:${d.region}:${d.account}:retired${suffix}`, `arn:aws:sns:${d.region}:${STRANGER}:orders${suffix}`,
      ]) {
        const result = await call(role, c, { resource: topic });
        if (result === 'Allowed') {
          allowed.push(`${role}: ${c.action} on ${topic}`);
        }
      }
    }
    assert.deepEqual(allowed, []);
    // The teardown neither subscribes nor converges a subscription: its role has no grant for it.
    const teardown = d.roles.OnTaskStoppedFunctionRole.statements;
    for (const action of ['sns:Subscribe', 'sns:GetSubscriptionAttributes', 'sns:SetSubscriptionAttributes']) {
      const r = await decide({
        who: session(d, 'OnTaskStoppedFunctionRole'), action, resource: d.topics[0], identity: teardown,
        resourceAccount: d.account,
        context: action === 'sns:Subscribe' ? { 'sns:Protocol': 'sqs', 'sns:Endpoint': ownQueue } : {},
      });
      assert.equal(r, 'ImplicitlyDenied', action);
    }
  });

  it('nothing on a task queue without TLS, from any role', async () => {
    const allowed = [];
    for (const [role, calls] of Object.entries(d.calls)) {
      for (const c of calls.filter((x) => taskQueues[x.resource] || Object.values(d.queues).includes(x.resource))) {
        if ((await call(role, c, { tls: false })) === 'Allowed') {
          allowed.push(`${role}: ${c.action} on ${c.resource}`);
        }
      }
    }
    assert.deepEqual(allowed, []);
  });

  it('only the configured topics, through SNS, can send to a task queue', async () => {
    const other = `arn:aws:sns:${d.region}:${STRANGER}:${d.topics[0].split(':').pop()}`;
    for (const source of [other, `arn:aws:sns:${d.region}:${d.account}:unconfigured${d.fifo ? '.fifo' : ''}`]) {
      const r = await decide({
        who: servicePrincipal('sns.amazonaws.com', source), action: 'sqs:SendMessage', resource: ownQueue,
        resourcePolicy: taskQueues[ownQueue],
      });
      assert.notEqual(r, 'Allowed', source);
    }
    // A principal of the account whose identity policy allows every SQS action still cannot send.
    const admin = session(d, `arn:aws:iam::${d.account}:role/account-admin`);
    const r = await decide({
      who: admin, action: 'sqs:SendMessage', resource: ownQueue, context: tagged,
      identity: [{ Effect: 'Allow', Action: 'sqs:*', Resource: '*' }], resourcePolicy: taskQueues[ownQueue],
    });
    assert.equal(r, 'ExplicitlyDenied');
  });

  it('the event DLQ admits EventBridge only for the stack\'s rules', async () => {
    const r = await decide({
      who: servicePrincipal('events.amazonaws.com', `arn:aws:events:${d.region}:${d.account}:rule/someone-elses-rule`),
      action: 'sqs:SendMessage', resource: d.queues.EventDlq, resourcePolicy: d.resourcePolicies.EventDlqPolicy,
    });
    assert.notEqual(r, 'Allowed');
    const plain = await decide({
      who: servicePrincipal('events.amazonaws.com', Object.values(d.rules)[0]), action: 'sqs:SendMessage',
      resource: d.queues.EventDlq, resourcePolicy: d.resourcePolicies.EventDlqPolicy, tls: false,
    });
    assert.equal(plain, 'ExplicitlyDenied');
  });

  it(d.isolated
    ? 'a task reads only its own queue: other tasks, other roles and other sessions are denied, admins are not'
    : 'without ConsumerRoleArns a task can read every task queue of the stack (the documented residual)', async () => {
    const app = d.roles.TaskRolePolicy.statements;
    const me = session(d, 'TaskRolePolicy');
    const read = (who, queue, identity = app) => Promise.all(MESSAGE_ACTIONS.map((action) => decide({
      who, action, resource: queue, context: tagged, identity, resourcePolicy: taskQueues[queue],
    })));
    // its own queue: always
    assert.deepEqual(await read(me, ownQueue), MESSAGE_ACTIONS.map(() => 'Allowed'));
    // another task's queue, same role, same stack tag
    const neighbour = await read(me, otherQueue);
    assert.deepEqual(neighbour, MESSAGE_ACTIONS.map(() => (d.isolated ? 'ExplicitlyDenied' : 'Allowed')));
    if (!d.isolated) {
      return;
    }
    const everything = [{ Effect: 'Allow', Action: 'sqs:*', Resource: '*' }];
    // a session of the task role under another name (someone assuming it by hand)
    const renamed = { ...me, context: { ...me.context, 'aws:userid': 'AROAEXAMPLEID:debugging' } };
    assert.deepEqual(await read(renamed, ownQueue), MESSAGE_ACTIONS.map(() => 'ExplicitlyDenied'));
    // another role of the account, even with sqs:* and a session named after the task
    const other = session(d, `arn:aws:iam::${d.account}:role/other-app`, d.taskId);
    const spoof = { ...other, context: { ...other.context, 'aws:userid': `AROAOTHER:${d.taskId}` } };
    assert.deepEqual(await read(spoof, ownQueue, everything), MESSAGE_ACTIONS.map(() => 'ExplicitlyDenied'));
    const purge = await decide({
      who: spoof, action: 'sqs:PurgeQueue', resource: ownQueue, context: tagged, identity: everything,
      resourcePolicy: taskQueues[ownQueue],
    });
    assert.equal(purge, 'ExplicitlyDenied');
    // the named administrator role reads (and purges) any task queue
    const admin = session(d, d.adminRole);
    assert.deepEqual(await read(admin, otherQueue, everything), MESSAGE_ACTIONS.map(() => 'Allowed'));
    // the functions are not exempt and need not be: their calls (allowed above) include no message action on a
    // task queue (their event source mappings' are on their own buffer queues)
    const functionActions = Object.entries(d.calls).filter(([role]) => role !== 'TaskRolePolicy')
      .flatMap(([, calls]) => calls.filter((c) => !Object.values(d.buffers).includes(c.resource)).map((c) => c.action));
    assert.deepEqual(functionActions.filter((a) => MESSAGE_ACTIONS.includes(a) || a === 'sqs:PurgeQueue'), []);
  });

  it('a principal outside the organisation is denied by the RCP even where a policy would admit it', async () => {
    const outsider = session(d, `arn:aws:iam::${STRANGER}:role/intruder`);
    const openPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'sqs:ReceiveMessage', Resource: d.queues.EventDlq }] };
    const r = await decide({
      who: outsider, action: 'sqs:ReceiveMessage', resource: d.queues.EventDlq, resourcePolicy: openPolicy,
      identity: [{ Effect: 'Allow', Action: 'sqs:*', Resource: '*' }],
    });
    assert.equal(r, 'Allowed', 'without the RCP the open policy admits it (the RCP must be what denies)');
    const denied = await decide({
      who: outsider, action: 'sqs:ReceiveMessage', resource: d.queues.EventDlq, resourcePolicy: openPolicy,
      identity: [{ Effect: 'Allow', Action: 'sqs:*', Resource: '*' }], rcps: PERIMETER_RCP,
    });
    assert.equal(denied, 'ExplicitlyDenied');
  });
  it('a call varied outside its grant is denied: another protocol, endpoint, cluster or table', async () => {
    // What each condition and resource of the grants keeps out, one at a time (mutation.test.mjs removes each
    // condition and requires some case to notice): Subscribe's sns:Protocol (an SQS-looking endpoint over
    // another protocol) and sns:Endpoint (another account's, another region's or another prefix's queue, an
    // HTTPS URL), ECS's ecs:cluster (a cluster ClusterArns does not name, here or in another account), and the
    // table (another table of the account).
    const allowed = [];
    const varied = [];
    for (const [role, calls] of Object.entries(d.calls)) {
      for (const c of calls) {
        const vary = (what, extra) => varied.push([role, c, what, extra]);
        if (c.action === 'sns:Subscribe') {
          const endpoint = c.context['sns:Endpoint'];
          vary('protocol https', { context: { ...c.context, 'sns:Protocol': 'https' } });
          vary('protocol lambda', { context: { ...c.context, 'sns:Protocol': 'lambda' } });
          vary('another account\'s queue', { context: { ...c.context, 'sns:Endpoint': endpoint.replace(`:${d.account}:`, `:${STRANGER}:`) } });
          vary('another region\'s queue', { context: { ...c.context, 'sns:Endpoint': endpoint.replace(`:${d.region}:`, ':ap-south-2:') } });
          vary('another prefix\'s queue', { context: { ...c.context, 'sns:Endpoint': endpoint.replace(`:${d.prefix}`, ':orders-') } });
          vary('an https endpoint', { context: { ...c.context, 'sns:Protocol': 'https', 'sns:Endpoint': 'https://collector.example.net/' } });
        }
        if (c.action.startsWith('ecs:')) {
          const cluster = c.context['ecs:cluster'];
          vary('another cluster', { context: { ...c.context, 'ecs:cluster': cluster.replace(/cluster\/.*$/, 'cluster/elsewhere') } });
          vary('another account\'s cluster', { context: { ...c.context, 'ecs:cluster': cluster.replace(`:${d.account}:`, `:${STRANGER}:`) } });
        }
        if (c.action.startsWith('dynamodb:')) {
          vary('another table', { resource: c.resource.replace(/table\/.*$/, 'table/another-application') });
        }
      }
    }
    const actions = new Set(varied.map(([, c]) => c.action));
    for (const a of ['sns:Subscribe', 'ecs:ListTasks', 'ecs:DescribeTasks', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan']) {
      assert.ok(actions.has(a), `no call of ${a} to vary`);
    }
    for (const [role, c, what, extra] of varied) {
      if ((await call(role, c, extra)) === 'Allowed') {
        allowed.push(`${role}: ${c.action} on ${what}`);
      }
    }
    assert.deepEqual(allowed, []);
  });
  return cases;
}
