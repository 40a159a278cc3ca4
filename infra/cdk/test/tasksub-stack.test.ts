/**
 * aws-cdk-lib/assertions tests of the CDK stack. Offline and without bundling: the App is built
 * with context 'aws:cdk:bundling-stacks': [] (the CLI refuses aws: keys), so neither cargo-lambda
 * nor Docker is needed. Run: npm test (tsc, then node --test).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { App, DefaultStackSynthesizer } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import {
  ArchitectureName, CLUSTER_ARN_PATTERN, PARAMETER_GROUPS, ROLE_ARN_PATTERN, SUBSCRIPTION_DLQ_ARN_PATTERN, SWEEP_SCHEDULES,
  SWEEPER_TIMEOUT_SECONDS, TOPIC_ARN_PATTERN, TasksubStack, parseSettingsGeneration, ratePeriodSeconds,
} from '../lib/tasksub-stack';

function synth(architecture: ArchitectureName = 'arm64', settingsGeneration?: number): Template {
  const app = new App({ analyticsReporting: false, context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new TasksubStack(app, 'Tasksub', {
    architecture,
    settingsGeneration,
    synthesizer: new DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
  });
  return Template.fromStack(stack);
}

const template = synth();
const json = template.toJSON() as { Resources: Record<string, any>; Parameters: Record<string, any>; Outputs: Record<string, any> };
const resourcesOf = (type: string) =>
  Object.entries(json.Resources).filter(([, r]) => r.Type === type) as [string, any][];

/** Statements of the inline policies attached to the role of a function. */
function statementsOf(functionLogicalId: string): any[] {
  const roleId = json.Resources[functionLogicalId].Properties.Role['Fn::GetAtt'][0];
  return resourcesOf('AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}
const actionsOf = (statements: any[]) =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

const CONTRACT_ENV = [
  'RUST_LOG',
  'TASKSUB_ACCOUNT_ID',
  'TASKSUB_CLUSTERS',
  'TASKSUB_CONSUMER_ROLE_ARNS',
  'TASKSUB_FILTER_POLICY',
  'TASKSUB_FILTER_POLICY_SCOPE',
  'TASKSUB_QUEUE_ADMIN_ROLE_ARNS',
  'TASKSUB_QUEUE_DLQ_ARN',
  'TASKSUB_QUEUE_MAX_RECEIVE_COUNT',
  'TASKSUB_QUEUE_PREFIX',
  'TASKSUB_QUEUE_RETENTION_SECONDS',
  'TASKSUB_QUEUE_VISIBILITY_SECONDS',
  'TASKSUB_RAW_DELIVERY',
  'TASKSUB_SERVICE_GROUPS',
  'TASKSUB_SETTINGS_GENERATION',
  'TASKSUB_STACK',
  'TASKSUB_SUBSCRIPTION_DLQ_ARN',
  'TASKSUB_TABLE',
  'TASKSUB_TOMBSTONE_TTL_SECONDS',
  'TASKSUB_TOPIC_ARNS',
  'TASKSUB_TOPIC_SETTINGS',
];
/** The resource of every topic-scoped grant: the created topic, or exactly the TopicArns list. */
const TOPICS = { 'Fn::If': ['CreateTopic', [{ Ref: 'Topic' }], { Ref: 'TopicArns' }] };

describe('functions', () => {
  it('are three Rust functions on provided.al2023 with the Architecture parameter', () => {
    template.resourceCountIs('AWS::Lambda::Function', 3);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      Architectures: [{ Ref: 'Architecture' }],
      MemorySize: { Ref: 'FunctionMemorySize' },
      LoggingConfig: { LogGroup: Match.anyValue(), LogFormat: 'Text' },
    });
    assert.deepEqual(json.Parameters.Architecture.AllowedValues, ['arm64']);
    assert.deepEqual(synth('x86_64').toJSON().Parameters.Architecture.AllowedValues, ['x86_64']);
  });

  it('get exactly the contract environment (plus the sweeper grace period and audit size)', () => {
    for (const id of ['OnTaskRunningFunction', 'OnTaskStoppedFunction']) {
      assert.deepEqual(Object.keys(json.Resources[id].Properties.Environment.Variables).sort(), CONTRACT_ENV);
    }
    assert.deepEqual(
      Object.keys(json.Resources.SweeperFunction.Properties.Environment.Variables).sort(),
      [...CONTRACT_ENV, 'TASKSUB_SWEEP_AUDIT_PER_RUN', 'TASKSUB_SWEEP_GRACE_SECONDS', 'TASKSUB_SWEEP_LIST_PAGES_PER_RUN'].sort(),
    );
    assert.deepEqual(json.Resources.SweeperFunction.Properties.Environment.Variables.TASKSUB_SWEEP_AUDIT_PER_RUN,
      { Ref: 'SweepAuditPerRun' });
    assert.deepEqual(
      [json.Parameters.SweepAuditPerRun.Type, json.Parameters.SweepAuditPerRun.Default, json.Parameters.SweepAuditPerRun.MinValue],
      ['Number', 25, 0],
    );
    assert.deepEqual(json.Resources.SweeperFunction.Properties.Environment.Variables.TASKSUB_SWEEP_LIST_PAGES_PER_RUN,
      { Ref: 'SweepListPagesPerRun' });
    const env = json.Resources.OnTaskRunningFunction.Properties.Environment.Variables;
    assert.deepEqual(env.TASKSUB_CLUSTERS, { 'Fn::Join': [',', { Ref: 'ClusterArns' }] });
    assert.deepEqual(env.TASKSUB_TABLE, { Ref: 'Table' });
    assert.deepEqual(env.TASKSUB_TOPIC_ARNS, {
      'Fn::If': ['CreateTopic', { Ref: 'Topic' }, { 'Fn::Join': [',', { Ref: 'TopicArns' }] }],
    });
    assert.deepEqual(env.TASKSUB_TOPIC_SETTINGS, {
      'Fn::If': ['HasTopicSettings', { Ref: 'TopicSettings' }, { Ref: 'AWS::NoValue' }],
    });
    assert.equal(env.TASKSUB_TOPIC_ARN, undefined, 'TASKSUB_TOPIC_ARN and TASKSUB_TOPIC_ARNS together are an error');
    assert.deepEqual(env.TASKSUB_ACCOUNT_ID, { Ref: 'AWS::AccountId' });
    assert.deepEqual(env.TASKSUB_SERVICE_GROUPS['Fn::If'][2], { Ref: 'AWS::NoValue' });
  });

  it('each have an async on-failure destination to the event DLQ', () => {
    const configs = resourcesOf('AWS::Lambda::EventInvokeConfig');
    assert.equal(configs.length, 3);
    const targets = configs.map(([, c]) => c.Properties.FunctionName.Ref).sort();
    assert.deepEqual(targets, ['OnTaskRunningFunction', 'OnTaskStoppedFunction', 'SweeperFunction']);
    for (const [, c] of configs) {
      assert.deepEqual(c.Properties.DestinationConfig.OnFailure.Destination, { 'Fn::GetAtt': ['EventDlq', 'Arn'] });
    }
  });

  it('event functions reserve nothing: their buffer queue caps how many run at once', () => {
    for (const [id, kind] of [['OnTaskRunningFunction', 'Running'], ['OnTaskStoppedFunction', 'Stopped']]) {
      const fn = resourcesOf('AWS::Lambda::Function').find(([logicalId]) => logicalId === id);
      assert.ok(fn, id);
      assert.equal(fn[1].Properties.ReservedConcurrentExecutions, undefined, id);
      const mapping = json.Resources[`Task${kind}BufferMapping`];
      assert.equal(mapping.Type, 'AWS::Lambda::EventSourceMapping');
      assert.deepEqual(mapping.Properties.FunctionName, { Ref: id });
      assert.deepEqual(mapping.Properties.EventSourceArn, { 'Fn::GetAtt': [`Task${kind}Buffer`, 'Arn'] });
      assert.deepEqual(mapping.Properties.ScalingConfig, { MaximumConcurrency: { Ref: 'EventFunctionConcurrency' } });
      assert.deepEqual(mapping.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
      const buffer = json.Resources[`Task${kind}Buffer`].Properties;
      assert.equal(buffer.VisibilityTimeout, 6 * fn[1].Properties.Timeout);
      assert.deepEqual(buffer.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': ['EventDlq', 'Arn'] });
      const consume = statementsOf(id).find((st) => st.Sid === 'ConsumeBuffer');
      assert.deepEqual(consume.Resource, { 'Fn::GetAtt': [`Task${kind}Buffer`, 'Arn'] }, id);
    }
    assert.equal(resourcesOf('AWS::Lambda::Function').filter(([, f]) => f.Properties.ReservedConcurrentExecutions).length, 0);
    assert.equal(json.Parameters.EventFunctionConcurrency.MinValue, 2);
  });

  it('sweeper and everything of it is conditional on EnableSweeper', () => {
    const sweeperIds = Object.keys(json.Resources).filter((id) => /^Sweep/.test(id));
    assert.ok(sweeperIds.length >= 7, sweeperIds.join(','));
    for (const id of sweeperIds) {
      assert.equal(json.Resources[id].Condition, 'SweeperEnabled', id);
    }
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: { Ref: 'SweepSchedule' } });
  });
});

describe('IAM', () => {
  // infra/tests/test_iam.py checks the same against the Rust sources and AWS's authorization data.
  const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
  // What the event source mapping of the function's buffer queue calls with the function's role.
  const BUFFER = ['sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage'];

  // Finding a subscription (the topic's listing, else the account's own) and removing one: every function.
  const FIND_AND_UNSUBSCRIBE = ['sns:ListSubscriptions', 'sns:ListSubscriptionsByTopic', 'sns:Unsubscribe'];
  // Converging a queue and its subscriptions (provisioning and the sweeper).
  const CONVERGE = [
    'sns:GetSubscriptionAttributes', 'sns:SetSubscriptionAttributes', 'sns:Subscribe', 'sqs:CreateQueue',
    'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ListQueueTags', 'sqs:SetQueueAttributes', 'sqs:TagQueue',
  ];

  it('provisioning function has exactly the actions its code issues', () => {
    const st = statementsOf('OnTaskRunningFunction');
    assert.deepEqual(actionsOf(st), [
      ...LOGS, ...BUFFER, ...FIND_AND_UNSUBSCRIBE, ...CONVERGE, 'dynamodb:GetItem', 'dynamodb:PutItem',
      'sqs:DeleteQueue', 'sqs:SendMessage',
    ].sort());
  });

  it('teardown function has exactly the actions its code issues, and never subscribes', () => {
    const st = statementsOf('OnTaskStoppedFunction');
    assert.deepEqual(actionsOf(st), [
      ...LOGS, ...BUFFER, ...FIND_AND_UNSUBSCRIBE, 'dynamodb:GetItem', 'dynamodb:PutItem',
      'sqs:DeleteQueue', 'sqs:GetQueueUrl', 'sqs:SendMessage',
    ].sort());
    assert.ok(!actionsOf(st).some((a) => /^(sns:Subscribe|sns:SetSubscriptionAttributes|sqs:CreateQueue|sqs:SetQueueAttributes)$/.test(a)));
  });

  it('sweeper has exactly the actions its code issues', () => {
    assert.deepEqual(actionsOf(statementsOf('SweeperFunction')), [
      ...LOGS, ...FIND_AND_UNSUBSCRIBE, ...CONVERGE, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan',
      'ecs:DescribeTasks', 'ecs:ListTasks', 'sqs:DeleteQueue', 'sqs:ListQueues', 'sqs:SendMessage',
    ].sort());
  });

  it('roles carry no managed policy and write only their own log group', () => {
    for (const [id, role] of resourcesOf('AWS::IAM::Role')) {
      assert.equal(role.Properties.ManagedPolicyArns, undefined, id);
    }
    for (const fn of ['OnTaskRunning', 'OnTaskStopped', 'Sweeper']) {
      const st = statementsOf(`${fn}Function`).find((s) => s.Sid === 'OwnLogGroup');
      assert.deepEqual(st.Resource, { 'Fn::GetAtt': [`${fn}LogGroup`, 'Arn'] });
    }
  });

  it('Resource * only for sqs:ListQueues, sns:ListSubscriptions, ecs:ListTasks (no resource type) and sns:Unsubscribe', () => {
    const all = [
      ...resourcesOf('AWS::IAM::Policy').flatMap(([id, p]) => p.Properties.PolicyDocument.Statement.map((s: any) => [id, s])),
      ...resourcesOf('AWS::IAM::ManagedPolicy').flatMap(([id, p]) => p.Properties.PolicyDocument.Statement.map((s: any) => [id, s])),
    ];
    const star = all.filter(([, s]) => [s.Resource].flat().includes('*'));
    assert.deepEqual(
      star.map(([id, s]) => `${id.replace(/DefaultPolicy.*$/, '')} ${s.Action}`).sort(),
      [
        'OnTaskRunningFunctionRole sns:ListSubscriptions',
        'OnTaskRunningFunctionRole sns:Unsubscribe',
        'OnTaskStoppedFunctionRole sns:ListSubscriptions',
        'OnTaskStoppedFunctionRole sns:Unsubscribe',
        'SweeperFunctionRole ecs:ListTasks',
        'SweeperFunctionRole sns:ListSubscriptions',
        'SweeperFunctionRole sns:Unsubscribe',
        'SweeperFunctionRole sqs:ListQueues',
      ],
    );
    const listTasks = star.find(([, s]) => s.Action === 'ecs:ListTasks')[1];
    assert.deepEqual(listTasks.Condition, { ArnEquals: { 'ecs:cluster': { Ref: 'ClusterArns' } } });
  });

  it('subscribe only SQS endpoints of the prefix, and converge subscriptions, only on the configured topics', () => {
    for (const fn of ['OnTaskRunningFunction', 'OnTaskStoppedFunction', 'SweeperFunction']) {
      const find = statementsOf(fn).find((s) => s.Sid === 'FindSubscription');
      assert.equal(find.Action, 'sns:ListSubscriptionsByTopic');
      assert.deepEqual(find.Resource, TOPICS, fn);
      const own = statementsOf(fn).find((s) => s.Sid === 'FindOwnSubscriptions');
      assert.deepEqual([own.Action, own.Resource, own.Condition], ['sns:ListSubscriptions', '*', undefined], fn);
      const st = statementsOf(fn).find((s) => s.Sid === 'SubscribeTaskQueues');
      const converge = statementsOf(fn).find((s) => s.Sid === 'ConvergeSubscriptions');
      if (fn === 'OnTaskStoppedFunction') {
        assert.equal(st, undefined, 'teardown never subscribes');
        assert.equal(converge, undefined, 'teardown never converges a subscription');
        continue;
      }
      assert.equal(st.Action, 'sns:Subscribe');
      assert.deepEqual(st.Resource, TOPICS, fn);
      assert.deepEqual(st.Condition.StringEquals, { 'sns:Protocol': 'sqs' });
      assert.equal(
        st.Condition.StringLike['sns:Endpoint']['Fn::Sub'][0],
        'arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Prefix}*',
      );
      assert.deepEqual(converge.Action, ['sns:GetSubscriptionAttributes', 'sns:SetSubscriptionAttributes'], fn);
      assert.deepEqual(converge.Resource, TOPICS, fn);
      assert.equal(converge.Condition, undefined, fn);
    }
  });

  it('queue reads (adopting, auditing) stay unconditioned on the prefix', () => {
    for (const fn of ['OnTaskRunningFunction', 'SweeperFunction']) {
      const st = statementsOf(fn).find((s) => s.Sid === 'TaskQueues');
      assert.deepEqual([st.Action].flat().filter((a: string) => a !== 'sqs:ListQueueTags' && a !== 'sqs:GetQueueAttributes'),
        ['sqs:GetQueueUrl'], fn);
      assert.deepEqual([st.Action].flat().length, 3, fn);
      assert.equal(st.Condition, undefined, fn);
    }
  });

  it('queue ARNs are the prefix pattern', () => {
    const st = statementsOf('OnTaskStoppedFunction').find((s) => s.Sid === 'TaskQueues');
    const sub = st.Resource['Fn::Sub'];
    assert.equal(sub[0], 'arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Prefix}*');
    assert.equal(sub[1].Prefix['Fn::If'][0], 'UseDefaultQueuePrefix');
  });

  it('create task queues only with the stack tag and delete only queues carrying it', () => {
    const owned = { StringEquals: { 'aws:ResourceTag/tasksub:stack': { Ref: 'AWS::StackName' } } };
    for (const fn of ['OnTaskRunningFunction', 'OnTaskStoppedFunction', 'SweeperFunction']) {
      const statements = statementsOf(fn);
      const del = statements.filter((s) => actionsOf([s]).includes('sqs:DeleteQueue'));
      assert.equal(del.length, 1, fn);
      assert.equal(del[0].Sid, 'DeleteOwnTaskQueues', fn);
      assert.deepEqual(del[0].Condition, owned, fn);
      // a queue's attributes (policy and the rest) are converged only on queues carrying the stack tag
      for (const s of statements.filter((x) => actionsOf([x]).includes('sqs:SetQueueAttributes'))) {
        assert.equal(s.Sid, 'ConvergeOwnTaskQueues', fn);
        assert.deepEqual(s.Condition, owned, fn);
      }
      for (const s of statements.filter((x) => actionsOf([x]).some((a) => /^sqs:(CreateQueue|TagQueue)$/.test(a)))) {
        assert.equal(s.Sid, 'CreateTaggedTaskQueues', fn);
        assert.deepEqual(s.Condition, {
          StringEquals: { 'aws:RequestTag/tasksub:stack': { Ref: 'AWS::StackName' } },
          'ForAllValues:StringEquals': {
            'aws:TagKeys': ['tasksub:task-arn', 'tasksub:cluster', 'tasksub:group', 'tasksub:version', 'tasksub:stack'],
          },
        }, fn);
      }
    }
    const env = json.Resources.OnTaskRunningFunction.Properties.Environment.Variables;
    assert.deepEqual(env.TASKSUB_STACK, { Ref: 'AWS::StackName' });
  });

  it('topic ARNs of any partition, region and account, FIFO or not; never wildcards', () => {
    const p = json.Parameters.TopicArns;
    assert.equal(p.Type, 'CommaDelimitedList');
    assert.equal(p.Default, '');
    assert.equal(p.AllowedPattern, TOPIC_ARN_PATTERN);
    const re = new RegExp(p.AllowedPattern);
    for (const ok of [
      '', 'arn:aws:sns:us-east-1:123456789012:orders', 'arn:aws:sns:eu-west-1:210987654321:flags.fifo',
      'arn:aws-cn:sns:cn-north-1:123456789012:t', 'arn:aws-us-gov:sns:us-gov-west-1:123456789012:a_b-c',
      `arn:aws:sns:us-east-1:123456789012:${'n'.repeat(256)}`, `arn:aws:sns:us-east-1:123456789012:${'n'.repeat(251)}.fifo`,
    ]) {
      assert.match(ok, re);
    }
    for (const bad of [
      '*', 'arn:aws:sns:us-east-1:123456789012:*', 'arn:aws:sns:*:123456789012:t', 'arn:aws:sns:us-east-1:*:t',
      'arn:aws:sqs:us-east-1:123456789012:t', 'arn:aws:sns:us-east-1:12345678901:t', 'orders',
      'arn:aws:sns:us-east-1:123456789012:a.b', 'arn:aws:sns:us-east-1:123456789012:t.fifo.fifo',
      `arn:aws:sns:us-east-1:123456789012:${'n'.repeat(257)}`, `arn:aws:sns:us-east-1:123456789012:${'n'.repeat(252)}.fifo`,
    ]) {
      assert.doesNotMatch(bad, re);
    }
    assert.deepEqual(json.Parameters.TopicSettings.Default, '');
  });

  it('cluster ARNs only: a cluster name would deploy and match no event', () => {
    assert.equal(json.Parameters.ClusterArns.AllowedPattern, CLUSTER_ARN_PATTERN);
    const re = new RegExp(CLUSTER_ARN_PATTERN);
    for (const ok of ['arn:aws:ecs:eu-west-1:123456789012:cluster/prod', 'arn:aws-cn:ecs:cn-north-1:123456789012:cluster/a_b-C']) {
      assert.match(ok, re);
    }
    for (const bad of ['prod', '', 'arn:aws:ecs:eu-west-1:123456789012:cluster/*', 'arn:aws:ecs:eu-west-1:123456789012:service/prod/x',
      'arn:aws:ecs:eu-west-1:1234:cluster/prod', `arn:aws:ecs:eu-west-1:123456789012:cluster/${'c'.repeat(256)}`]) {
      assert.doesNotMatch(bad, re);
    }
  });

  it('task queue isolation: consumer and admin roles reach the functions only when given', () => {
    for (const name of ['ConsumerRoleArns', 'QueueAdminRoleArns']) {
      const p = json.Parameters[name];
      assert.equal(p.Type, 'CommaDelimitedList');
      assert.equal(p.Default, '');
      assert.equal(p.AllowedPattern, ROLE_ARN_PATTERN);
    }
    const re = new RegExp(ROLE_ARN_PATTERN);
    for (const ok of ['', 'arn:aws:iam::123456789012:role/orders-task', 'arn:aws:iam::123456789012:role/app/orders-task']) {
      assert.match(ok, re);
    }
    for (const bad of ['orders-task', 'arn:aws:iam::123456789012:role/*', 'arn:aws:iam::123456789012:user/bob',
      'arn:aws:sts::123456789012:assumed-role/r/s']) {
      assert.doesNotMatch(bad, re);
    }
    const env = json.Resources.OnTaskRunningFunction.Properties.Environment.Variables;
    assert.deepEqual(env.TASKSUB_CONSUMER_ROLE_ARNS, {
      'Fn::If': ['HasConsumerRoles', { 'Fn::Join': [',', { Ref: 'ConsumerRoleArns' }] }, { Ref: 'AWS::NoValue' }],
    });
    assert.deepEqual(env.TASKSUB_QUEUE_ADMIN_ROLE_ARNS, {
      'Fn::If': ['HasQueueAdminRoles', { 'Fn::Join': [',', { Ref: 'QueueAdminRoleArns' }] }, { Ref: 'AWS::NoValue' }],
    });
    const rule = (template.toJSON() as any).Rules.QueueAdminsNeedIsolation;
    assert.deepEqual(rule.RuleCondition, { 'Fn::Not': [{ 'Fn::Equals': [{ 'Fn::Select': [0, { Ref: 'QueueAdminRoleArns' }] }, ''] }] });
    assert.deepEqual(rule.Assertions[0].Assert, { 'Fn::Not': [{ 'Fn::Equals': [{ 'Fn::Select': [0, { Ref: 'ConsumerRoleArns' }] }, ''] }] });
  });

  it('queue prefixes start with tasksub- or tasksub_', () => {
    const re = new RegExp(json.Parameters.QueuePrefix.AllowedPattern);
    for (const ok of ['', 'tasksub-', 'tasksub_', 'tasksub-orders-', `tasksub-${'p'.repeat(39)}`]) {
      assert.match(ok, re);
    }
    for (const bad of ['orders-', 'tasksub', 'tasksubx-', 'prod', `tasksub-${'p'.repeat(40)}`, 'tasksub-a.b']) {
      assert.doesNotMatch(bad, re);
    }
  });

  it('task rules forward only the trimmed event', () => {
    for (const id of ['TaskRunningRule', 'TaskStoppedRule']) {
      const [target] = json.Resources[id].Properties.Targets;
      const t = target.InputTransformer;
      assert.ok(t, id);
      assert.ok(!JSON.stringify(t).includes('overrides'), id);
      assert.deepEqual(Object.values(t.InputPathsMap).filter((p: any) => p.startsWith('$.detail.')).sort(), [
        '$.detail.clusterArn', '$.detail.desiredStatus', '$.detail.group', '$.detail.lastStatus',
        '$.detail.taskArn', '$.detail.version',
      ]);
      // Every placeholder is a whole JSON value (outside quotes): a value cannot become structure.
      const outsideStrings = t.InputTemplate.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      assert.equal(outsideStrings.match(/<[A-Za-z]+>/g)?.length, Object.keys(t.InputPathsMap).length, t.InputTemplate);
      const filled = t.InputTemplate.replace(/<([A-Za-z]+)>/g, (_: string, name: string) => JSON.stringify(name));
      const shape = JSON.parse(filled);
      assert.equal(Object.keys(shape.detail).at(-1), 'group', 'the caller-chosen group comes last');
      assert.deepEqual(Object.keys(shape.detail).sort(),
        ['clusterArn', 'desiredStatus', 'group', 'lastStatus', 'taskArn', 'version']);
    }
    assert.equal(json.Resources.SweepRule.Properties.Targets[0].InputTransformer, undefined);
  });

  it('sweeper reads ECS only for our clusters', () => {
    const st = statementsOf('SweeperFunction').filter((s) => String(s.Action).startsWith('ecs:'));
    assert.equal(st.length, 2);
    for (const s of st) {
      assert.deepEqual(s.Condition, { ArnEquals: { 'ecs:cluster': { Ref: 'ClusterArns' } } });
    }
  });

  it('task role policy only consumes the prefix queues and reads the table', () => {
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      Roles: { 'Fn::If': ['HasTaskRole', [{ Ref: 'TaskRoleName' }], { Ref: 'AWS::NoValue' }] },
      PolicyDocument: {
        Statement: [
          Match.objectLike({ Sid: 'FindTaskQueue', Action: 'sqs:GetQueueUrl' }),
          Match.objectLike({
            Sid: 'ConsumeTaskQueue',
            Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'],
            Condition: { StringEquals: { 'aws:ResourceTag/tasksub:stack': { Ref: 'AWS::StackName' } } },
          }),
          Match.objectLike({ Action: 'dynamodb:GetItem', Resource: { 'Fn::GetAtt': ['Table', 'Arn'] } }),
        ],
      },
    });
  });
});

describe('settings generation', () => {
  it('is a Number parameter (default 0, no ordering) that reaches every function', () => {
    const p = json.Parameters.SettingsGeneration;
    assert.deepEqual([p.Type, p.Default, p.MinValue], ['Number', 0, 0]);
    assert.match(p.Description, /raise it with every deploy/);
    for (const id of ['OnTaskRunningFunction', 'OnTaskStoppedFunction', 'SweeperFunction']) {
      assert.deepEqual(json.Resources[id].Properties.Environment.Variables.TASKSUB_SETTINGS_GENERATION,
        { Ref: 'SettingsGeneration' }, id);
    }
  });

  it('given to the app, is carried by the template (no parameter), never taken from the clock: two synths agree', () => {
    const a = synth('arm64', 2026120701).toJSON() as any;
    const b = synth('arm64', 2026120701).toJSON() as any;
    assert.deepEqual(a, b);
    // cdk deploy and sam deploy keep an existing stack's previous parameter values: a changed default would
    // never reach it, so the value itself is in the functions' environment.
    assert.equal(a.Parameters.SettingsGeneration, undefined);
    for (const id of ['OnTaskRunningFunction', 'OnTaskStoppedFunction', 'SweeperFunction']) {
      assert.equal(a.Resources[id].Properties.Environment.Variables.TASKSUB_SETTINGS_GENERATION, '2026120701', id);
    }
    const listed = a.Metadata['AWS::CloudFormation::Interface'].ParameterGroups.flatMap((g: any) => g.Parameters);
    assert.deepEqual([...listed].sort(), Object.keys(a.Parameters).sort());
    const c = synth('arm64', 2026120702).toJSON() as any;
    assert.equal(c.Resources.SweeperFunction.Properties.Environment.Variables.TASKSUB_SETTINGS_GENERATION, '2026120702');
    assert.equal(parseSettingsGeneration(undefined), undefined);
    assert.equal(parseSettingsGeneration(''), undefined);
    assert.equal(parseSettingsGeneration('2026120701'), 2026120701);
    assert.equal(parseSettingsGeneration(0), 0);
    for (const bad of [-1, 1.5, 'next', '1e3', '-2', Number.MAX_SAFE_INTEGER + 2, true]) {
      assert.throws(() => parseSettingsGeneration(bad), /whole number/, String(bad));
    }
    assert.throws(() => synth('arm64', -3), /whole number/);
  });
});

describe('parameter groups', () => {
  it('hold every parameter exactly once', () => {
    const groups = (template.toJSON() as any).Metadata['AWS::CloudFormation::Interface'].ParameterGroups;
    assert.deepEqual(groups, PARAMETER_GROUPS);
    const listed = groups.flatMap((g: any) => g.Parameters);
    assert.deepEqual([...listed].sort(), Object.keys(json.Parameters).sort());
    assert.equal(new Set(listed).size, listed.length);
  });
});

describe('FIFO topics', () => {
  it('get a FIFO task-queue DLQ: the condition is derived from the topic ARNs', () => {
    const j = template.toJSON() as any;
    const joined = { 'Fn::Join': [',', { Ref: 'TopicArns' }] };
    assert.deepEqual(j.Conditions.FifoTopics,
      { 'Fn::Not': [{ 'Fn::Equals': [{ 'Fn::Select': [0, { 'Fn::Split': ['.fifo', joined] }] }, joined] }] });
    const dlq = json.Resources.TaskQueueDlq.Properties;
    assert.deepEqual(dlq.FifoQueue, { 'Fn::If': ['FifoTopics', true, { Ref: 'AWS::NoValue' }] });
    assert.deepEqual(dlq.QueueName['Fn::Join'][1].at(-1), { 'Fn::If': ['FifoTopics', '.fifo', ''] });
    const env = json.Resources.OnTaskRunningFunction.Properties.Environment.Variables;
    assert.deepEqual(env.TASKSUB_QUEUE_DLQ_ARN,
      { 'Fn::If': ['CreateQueueDlq', { 'Fn::GetAtt': ['TaskQueueDlq', 'Arn'] }, { Ref: 'AWS::NoValue' }] });
  });

  it('may name a FIFO subscription DLQ', () => {
    assert.equal(json.Parameters.SubscriptionDlqArn.AllowedPattern, SUBSCRIPTION_DLQ_ARN_PATTERN);
    const re = new RegExp(SUBSCRIPTION_DLQ_ARN_PATTERN);
    for (const ok of ['', 'arn:aws:sqs:us-east-1:123456789012:dlq', 'arn:aws:sqs:us-east-1:123456789012:dlq.fifo',
      `arn:aws:sqs:us-east-1:123456789012:${'q'.repeat(80)}`, `arn:aws:sqs:us-east-1:123456789012:${'q'.repeat(75)}.fifo`]) {
      assert.match(ok, re);
    }
    for (const bad of ['dlq', 'arn:aws:sqs:us-east-1:123456789012:*', 'arn:aws:sqs:us-east-1:123456789012:a.b',
      'arn:aws:sqs:us-east-1:123456789012:dlq.fifo.fifo', `arn:aws:sqs:us-east-1:123456789012:${'q'.repeat(81)}`,
      `arn:aws:sqs:us-east-1:123456789012:${'q'.repeat(76)}.fifo`, 'arn:aws:sns:us-east-1:123456789012:dlq']) {
      assert.doesNotMatch(bad, re);
    }
  });
});

describe('state', () => {
  it('table is on-demand, TTL expiresAt, PITR, retained, keyed by taskId', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'taskId', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'taskId', AttributeType: 'S' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      },
    });
  });

  it('both DLQs refuse plain HTTP', () => {
    for (const id of ['EventDlqPolicy', 'TaskQueueDlqPolicy']) {
      const statements = json.Resources[id].Properties.PolicyDocument.Statement;
      const deny = statements.find((s: any) => s.Sid === 'DenyInsecureTransport');
      assert.deepEqual(deny.Condition, { Bool: { 'aws:SecureTransport': 'false' } }, id);
      assert.equal(deny.Effect, 'Deny');
    }
    assert.equal(json.Resources.TaskQueueDlqPolicy.Condition, 'CreateQueueDlq');
  });

  it('topic is conditional and encrypted; queues are encrypted', () => {
    template.hasResource('AWS::SNS::Topic', { Condition: 'CreateTopic', Properties: { KmsMasterKeyId: { Ref: 'TopicKmsKeyId' } } });
    template.resourceCountIs('AWS::SQS::Queue', 4);
    template.allResourcesProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true });
    template.hasResource('AWS::SQS::Queue', { Condition: 'CreateQueueDlq' });
  });
});

describe('EventBridge', () => {
  const scope = {
    source: ['aws.ecs'],
    'detail-type': ['ECS Task State Change'],
  };
  const group = { 'Fn::If': ['HasServiceGroups', { Ref: 'ServiceGroups' }, { Ref: 'AWS::NoValue' }] };

  it('running rule', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        ...scope,
        detail: {
          clusterArn: { Ref: 'ClusterArns' },
          group,
          desiredStatus: ['RUNNING'],
          lastStatus: ['PROVISIONING', 'PENDING', 'ACTIVATING', 'RUNNING'],
        },
      },
      Targets: [Match.objectLike({ Id: 'on-task-running' })],
    });
  });

  it('stopped rule', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        ...scope,
        detail: {
          clusterArn: { Ref: 'ClusterArns' },
          group,
          $or: [{ desiredStatus: ['STOPPED'] }, { lastStatus: ['STOPPED'] }],
        },
      },
      Targets: [Match.objectLike({ Id: 'on-task-stopped' })],
    });
  });

  it('every target retries and dead-letters; the DLQ lets only our rules in', () => {
    for (const [id, rule] of resourcesOf('AWS::Events::Rule')) {
      for (const t of rule.Properties.Targets) {
        assert.deepEqual(t.DeadLetterConfig, { Arn: { 'Fn::GetAtt': ['EventDlq', 'Arn'] } }, id);
        assert.ok(t.RetryPolicy.MaximumRetryAttempts >= 1, id);
      }
    }
    const policy = json.Resources.EventDlqPolicy.Properties.PolicyDocument.Statement;
    assert.deepEqual(policy[0].Condition, { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': ['TaskRunningRule', 'Arn'] } } });
    assert.equal(policy[2]['Fn::If'][0], 'SweeperEnabled');
    for (const p of resourcesOf('AWS::Lambda::Permission')) {
      assert.equal(p[1].Properties.Principal, 'events.amazonaws.com');
      assert.ok(p[1].Properties.SourceArn['Fn::GetAtt'], p[0]);
    }
  });
});

describe('operations', () => {
  it('alarms on both DLQs and on errors, throttles and destination failures of each function', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 19);
    for (const rule of ['TaskRunningRule', 'TaskStoppedRule', 'SweepRule']) {
      for (const metric of ['FailedInvocations', 'InvocationsFailedToBeSentToDlq']) {
        const a = json.Resources[`${rule}${metric}Alarm`];
        assert.ok(a, `${rule}${metric}Alarm`);
        assert.equal(a.Properties.Namespace, 'AWS/Events');
        assert.equal(a.Properties.MetricName, metric);
        assert.deepEqual(a.Properties.Dimensions, [{ Name: 'RuleName', Value: { Ref: rule } }]);
        assert.equal(a.Properties.Threshold, 1);
      }
    }
    for (const metric of ['OrphansRemoved', 'OrphanSubscriptionsRemoved']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'tasksub', MetricName: metric, Threshold: 50,
        Dimensions: [{ Name: 'Function', Value: 'sweeper' }],
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['EventDlq', 'QueueName'] } }],
    });
    for (const fn of ['OnTaskRunningFunction', 'OnTaskStoppedFunction', 'SweeperFunction']) {
      for (const metric of ['Errors', 'Throttles', 'DestinationDeliveryFailures']) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: fn } }],
        });
      }
    }
  });

  it('an alarm topic is required, or NONE with a loud output', () => {
    assert.equal(json.Parameters.AlarmTopicArn.Default, undefined);
    assert.match('NONE', new RegExp(json.Parameters.AlarmTopicArn.AllowedPattern));
    assert.doesNotMatch('', new RegExp(json.Parameters.AlarmTopicArn.AllowedPattern));
    assert.equal(json.Outputs.AlarmsNotifyNobody.Condition, 'NoAlarmTopic');
    for (const [id, a] of resourcesOf('AWS::CloudWatch::Alarm')) {
      assert.deepEqual(a.Properties.AlarmActions, {
        'Fn::If': ['HasAlarmTopic', [{ Ref: 'AlarmTopicArn' }], { Ref: 'AWS::NoValue' }],
      }, id);
    }
  });

  it('log level is one of the RUST_LOG levels', () => {
    assert.deepEqual(json.Parameters.LogLevel.AllowedValues, ['error', 'warn', 'info', 'debug', 'trace']);
  });

  it('sweeps cannot overlap: every accepted schedule fires less often than the sweeper can run', () => {
    const rules = (template.toJSON() as any).Rules;
    const assertion = rules.SweepsCannotOverlap.Assertions[0].Assert['Fn::Contains'];
    assert.deepEqual(assertion, [SWEEP_SCHEDULES, { Ref: 'SweepSchedule' }]);
    assert.equal(json.Resources.SweeperFunction.Properties.Timeout, SWEEPER_TIMEOUT_SECONDS);
    for (const e of SWEEP_SCHEDULES) {
      assert.ok(ratePeriodSeconds(e) > SWEEPER_TIMEOUT_SECONDS, e);
    }
    assert.ok(SWEEP_SCHEDULES.includes(json.Parameters.SweepSchedule.Default));
  });

  it('outputs what the app needs', () => {
    for (const o of ['PublishTopicArns', 'SubscriberRoleArns', 'TableName', 'QueuePrefix', 'TaskRolePolicyArn', 'TaskQueueDlqArn', 'EventDlqUrl']) {
      assert.ok(json.Outputs[o], o);
    }
  });

  it('names nothing explicitly but the DLQs and the buffer queues, from the stack id, so two stacks coexist', () => {
    // The stack's own queues' names derive from the stack id and start with "dlq-" or "buf-", so no queue
    // prefix (tasksub- or tasksub_ first) can ever cover them, whatever the stack is called: a generated
    // "<stack name>-..." name would fall under the prefix "tasksub-prod-" on the stack tasksub-prod, within
    // reach of the functions' task-queue grants and the sweeper's ListQueues(QueueNamePrefix).
    const uuid = { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] };
    // The task-queue DLQ's name ends in .fifo with FIFO topics (a FIFO queue's name must); the buffers are
    // always standard queues.
    const names: [string, string, unknown[]][] = [
      ['EventDlq', 'dlq-tasksub-events-', []],
      ['TaskQueueDlq', 'dlq-tasksub-tasks-', [{ 'Fn::If': ['FifoTopics', '.fifo', ''] }]],
      ['TaskRunningBuffer', 'buf-tasksub-running-', []],
      ['TaskStoppedBuffer', 'buf-tasksub-stopped-', []],
    ];
    for (const [id, head, suffix] of names) {
      assert.deepEqual(json.Resources[id].Properties.QueueName, {
        'Fn::Join': ['', [head, uuid, ...suffix]],
      }, id);
      // 36 characters of stack UUID, and ".fifo" at most: within SQS's 80.
      assert.ok(head.length + 36 + 5 <= 80, id);
      assert.ok(!/^tasksub[-_]/.test(head), id);
    }
    // Every queue of the stack is one of them: a queue added without an explicit name outside the prefix fails.
    const queues = Object.entries(json.Resources).filter(([, r]) => r.Type === 'AWS::SQS::Queue').map(([id]) => id);
    assert.deepEqual(queues.sort(), names.map(([id]) => id).sort());
    const named = Object.entries(json.Resources).filter(([id, r]) => !names.some(([n]) => n === id) &&
      Object.keys(r.Properties ?? {}).some((k) => /^(TableName|TopicName|QueueName|FunctionName|Name|RoleName|ManagedPolicyName|LogGroupName|AlarmName)$/.test(k)
        && !['AWS::Lambda::EventInvokeConfig', 'AWS::Lambda::Permission', 'AWS::Lambda::EventSourceMapping'].includes(r.Type)),
    );
    assert.deepEqual(named.map(([id]) => id), []);
  });
});
