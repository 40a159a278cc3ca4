/**
 * tasksub as a CDK stack: the equivalent of infra/template.yaml (same parameters, conditions,
 * logical ids of the main resources, IAM, patterns, DLQs and alarms).
 *
 * The only intended difference: CDK bundles the Rust binaries at synth time, so the function
 * architecture is chosen with the context value `architecture` (arm64 | x86_64). The `Architecture`
 * parameter exists for parity but only allows the synthesized architecture.
 *
 * L1 (Cfn*) constructs are used wherever the SAM template relies on conditions or intrinsics in
 * JSON (event patterns, queue policy, parameters); RustFunction (cargo-lambda-cdk) builds the code.
 */
import * as path from 'node:path';
import {
  Aws,
  CfnCondition,
  CfnElement,
  CfnOutput,
  CfnParameter,
  CfnResource,
  CfnRule,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  StackProps,
  Token,
  Validations,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct, IConstruct } from 'constructs';

export type ArchitectureName = 'arm64' | 'x86_64';

export interface TasksubStackProps extends StackProps {
  /** Architecture the binaries are bundled for. Default arm64. */
  readonly architecture?: ArchitectureName;
  /**
   * Cargo manifest cargo-lambda builds from (its directory is the working directory). Default: the
   * functions crate's, functions/Cargo.toml, so the package is built alone and its SDK features are not
   * unified with the other workspace members' (docs/footprint.md).
   */
  readonly manifestPath?: string;
  /**
   * The settings generation (TASKSUB_SETTINGS_GENERATION), set by whoever deploys: raise it with every deploy
   * that changes the topics or the subscription or queue settings, a rollback included, e.g. a date-time serial
   * such as 2026120701 (bin/app.ts reads it from the context value `settingsGeneration`). Never a synth timestamp:
   * a deploy that changes no setting must keep its generation. Given, the template carries it (the functions'
   * environment) and has no SettingsGeneration parameter: `cdk deploy`, like `sam deploy`, keeps an existing
   * stack's previous parameter values (UsePreviousValue), so a changed parameter default would never reach it.
   * Not given, the stack has the SAM template's parameter (default 0, no ordering).
   */
  readonly settingsGeneration?: number;
}

/**
 * A settings generation as given in the context or the props: undefined when not given, else a whole number from
 * 0 up, as the functions read TASKSUB_SETTINGS_GENERATION (a u64); a bad value fails the synth.
 */
export function parseSettingsGeneration(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') {
    return undefined;
  }
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*[0-9]+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`settingsGeneration must be a whole number from 0 up (e.g. 2026120701), not ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * The TopicArns parameter's pattern, applied by CloudFormation to each element: an SNS topic ARN of any
 * partition, region and account, with a standard name or a FIFO name ending in .fifo; or empty (create one).
 */
export const TOPIC_ARN_PATTERN =
  '^(|arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]{1,256}|[A-Za-z0-9_-]{1,251}[.]fifo))$';

/** The ClusterArns parameter's pattern, applied to each element: a cluster ARN (events carry ARNs, not names). */
export const CLUSTER_ARN_PATTERN = '^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255}$';

/** SubscriptionDlqArn: empty, or an SQS queue ARN with a standard name or a FIFO one (80 characters in all). */
export const SUBSCRIPTION_DLQ_ARN_PATTERN =
  '^(|arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:([A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}[.]fifo))$';

/** ConsumerRoleArns / QueueAdminRoleArns: empty, or an exact IAM role ARN (path included, no wildcard). */
export const ROLE_ARN_PATTERN = '^(|arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,576})$';

/** Orphans removed by one sweep (5-minute sum) that raise the mass-removal alarms. */
export const MASS_ORPHAN_THRESHOLD = 50;

/** The sweeper's Lambda timeout (seconds). */
export const SWEEPER_TIMEOUT_SECONDS = 240;
/**
 * The sweep schedules the stack accepts (Rules.SweepsCannotOverlap): each fires less often than a sweep
 * can run, so two sweeps never overlap. Cron expressions are refused (they can fire every minute).
 */
export const SWEEP_SCHEDULES = [
  'rate(5 minutes)', 'rate(10 minutes)', 'rate(15 minutes)', 'rate(20 minutes)', 'rate(30 minutes)', 'rate(1 hour)',
  'rate(2 hours)', 'rate(3 hours)', 'rate(6 hours)', 'rate(12 hours)', 'rate(1 day)',
];

/** Seconds between two runs of a rate() expression. */
export function ratePeriodSeconds(expression: string): number {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) {
    throw new Error(`not a rate() expression: ${expression}`);
  }
  const unit = { minute: 60, hour: 3600, day: 86400 }[m[2].replace(/s$/, '') as 'minute' | 'hour' | 'day'];
  return Number(m[1]) * unit;
}

/** The queue tag naming the stack that created a task queue (tasksub-core `policy::tags::STACK`). */
export const STACK_TAG = 'tasksub:stack';
/** Every tag key tasksub writes on a task queue (tasksub-core `policy::tags::ALL`). */
export const QUEUE_TAG_KEYS = ['tasksub:task-arn', 'tasksub:cluster', 'tasksub:group', 'tasksub:version', STACK_TAG];

/**
 * What the task rules forward to the buffer queues (and so to the functions and the event DLQ): the envelope
 * and the six detail fields tasksub-core's parser and decide() use, never overrides.containerOverrides[].environment
 * or any other container detail. Every placeholder stands outside quotes, where EventBridge inserts the JSON
 * value its path selects (a string arrives quoted and escaped), so no value can become structure; inside
 * quotes it would paste the text unescaped (EventBridge User Guide, "Amazon EventBridge input
 * transformation"). group, chosen by whoever calls RunTask, comes last. Same as template.yaml.
 */
export const TRIMMED_TASK_EVENT = {
  inputPathsMap: {
    eventVersion: '$.version',
    id: '$.id',
    detailType: '$.detail-type',
    source: '$.source',
    account: '$.account',
    time: '$.time',
    region: '$.region',
    resources: '$.resources',
    taskArn: '$.detail.taskArn',
    clusterArn: '$.detail.clusterArn',
    lastStatus: '$.detail.lastStatus',
    desiredStatus: '$.detail.desiredStatus',
    group: '$.detail.group',
    version: '$.detail.version',
  },
  inputTemplate:
    '{"version": <eventVersion>, "id": <id>, "detail-type": <detailType>, "source": <source>, ' +
    '"account": <account>, "time": <time>, "region": <region>, "resources": <resources>, ' +
    '"detail": {"taskArn": <taskArn>, "clusterArn": <clusterArn>, "lastStatus": <lastStatus>, ' +
    '"desiredStatus": <desiredStatus>, "version": <version>, "group": <group>}}',
};

/** Receives of a buffered event before the buffer's redrive moves it to the event DLQ. */
export const BUFFER_MAX_RECEIVE_COUNT = 10;
/** The event functions' timeout (seconds); the buffers' visibility timeout is six times it (AWS's advice). */
export const EVENT_FUNCTION_TIMEOUT_SECONDS = 30;
/** Records per batch the buffers hand an event function. */
export const BUFFER_BATCH_SIZE = 10;

/** The console's parameter groups (AWS::CloudFormation::Interface), as in template.yaml: every parameter once. */
export const PARAMETER_GROUPS = [
  { Label: { default: 'Scope' }, Parameters: ['ClusterArns', 'ServiceGroups'] },
  {
    Label: { default: 'Settings generation (raise it with every deploy that changes the settings)' },
    Parameters: ['SettingsGeneration'],
  },
  {
    Label: { default: 'Queues and subscriptions' },
    Parameters: [
      'QueuePrefix', 'TopicArns', 'TopicSettings', 'TopicKmsKeyId', 'EnableQueueDlq', 'QueueMaxReceiveCount',
      'QueueRetentionSeconds', 'QueueVisibilitySeconds', 'RawMessageDelivery', 'FilterPolicy', 'FilterPolicyScope',
      'SubscriptionDlqArn', 'TombstoneTtlSeconds',
    ],
  },
  {
    Label: { default: 'Functions' },
    Parameters: ['Architecture', 'FunctionMemorySize', 'EventFunctionConcurrency', 'LogLevel', 'LogRetentionDays'],
  },
  { Label: { default: 'Sweeper' }, Parameters: ['EnableSweeper', 'SweepSchedule', 'SweepGraceSeconds', 'SweepAuditPerRun', 'SweepListPagesPerRun'] },
  {
    Label: { default: 'Wiring and operations' },
    Parameters: ['TaskRoleName', 'ConsumerRoleArns', 'QueueAdminRoleArns', 'AlarmTopicArn'],
  },
];

const LOG_RETENTION_DAYS = [
  '1', '3', '5', '7', '14', '30', '60', '90', '120', '150', '180', '365', '400', '545', '731', '1096',
  '1827', '2192', '2557', '2922', '3288', '3653',
];

function setLogicalId(construct: IConstruct, id: string): void {
  const child = construct instanceof CfnElement ? construct : construct.node.defaultChild;
  (child as CfnElement).overrideLogicalId(id);
}

/** Puts every CloudFormation resource below `scope` under `condition`. */
function conditionAll(scope: IConstruct, condition: CfnCondition): void {
  for (const c of scope.node.findAll()) {
    if (c instanceof CfnResource) {
      c.cfnOptions.condition = condition;
    }
  }
}

/**
 * On-failure destination that grants only sqs:SendMessage on the queue, like SAM does
 * (aws-lambda-destinations' SqsDestination also grants GetQueueAttributes/GetQueueUrl).
 */
class SendOnlySqsDestination implements lambda.IDestination {
  constructor(private readonly queue: sqs.IQueue) {}

  bind(_scope: Construct, fn: lambda.IFunction): lambda.DestinationConfig {
    fn.addToRolePolicy(new iam.PolicyStatement({
      sid: 'OnFailureDestination',
      actions: ['sqs:SendMessage'],
      resources: [this.queue.queueArn],
    }));
    return { destination: this.queue.queueArn };
  }
}

export class TasksubStack extends Stack {
  constructor(scope: Construct, id: string, props: TasksubStackProps = {}) {
    super(scope, id, {
      description:
        'tasksub - per-ECS-task SQS queues subscribed to an SNS topic. EventBridge rules on ECS Task State ' +
        'Change events drive two Rust functions (on-task-running / on-task-stopped); a scheduled sweeper ' +
        'reconciles orphans. Least privilege: every write is scoped to the queue prefix, the configured ' +
        'topics and the table. Every physical name is derived from the stack, so several stacks can coexist.',
      ...props,
    });
    // The settings generation, when the deployer gives it to the app; else the SettingsGeneration parameter.
    const generation = parseSettingsGeneration(props.settingsGeneration);
    // CDK-generated DependsOn on the service role duplicates the GetAtt; harmless. The parameter groups are
    // the SAM template's (infra/tests/test_parity.py), less SettingsGeneration when the template carries it.
    this.templateOptions.metadata = {
      'cfn-lint': { config: { ignore_checks: ['W3005'] } },
      'AWS::CloudFormation::Interface': {
        ParameterGroups: PARAMETER_GROUPS
          .map((g) => ({ ...g, Parameters: g.Parameters.filter((n) => generation === undefined || n !== 'SettingsGeneration') }))
          .filter((g) => g.Parameters.length > 0),
      },
    };
    // CDK's built-in validator does not narrow references inside Fn::If: the Topic ref only
    // resolves under CreateTopic and the alarm topic only under HasAlarmTopic.
    Validations.of(this).acknowledge(
      { id: 'CloudFormation-Validate::W1001', reason: 'conditional reference guarded by the same Fn::If condition' },
      { id: 'CloudFormation-Validate::W1030', reason: 'AlarmTopicArn is only used under HasAlarmTopic (not NONE)' },
    );
    const archName: ArchitectureName = props.architecture ?? 'arm64';
    const architecture = archName === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
    const manifestPath = props.manifestPath ?? path.resolve(__dirname, '..', '..', '..', '..', 'functions', 'Cargo.toml');

    // ------------------------------------------------------------------ parameters (as in SAM)
    const settingsGeneration = generation !== undefined ? undefined : new CfnParameter(this, 'SettingsGeneration', {
      type: 'Number',
      default: 0,
      minValue: 0,
      description:
        'TASKSUB_SETTINGS_GENERATION - raise it with every deploy that changes TopicArns, TopicSettings, the ' +
        'subscription or the queue parameters, a rollback included (a date-time serial such as 2026120701 grows by ' +
        'itself); leave it as it is for a deploy that changes none of them, and never lower it. While old and new ' +
        "functions run side by side during a deploy, the older generation never undoes the newer one's work. A " +
        'record converged by a higher generation is left alone by a lower one, so a lowered value stops the ' +
        'convergence of live tasks. 0 (default) = no ordering.',
    });
    // Applied to each element: a cluster ARN. ECS events carry the cluster ARN, so a cluster name would deploy
    // and then match no event at all.
    const clusterArns = new CfnParameter(this, 'ClusterArns', {
      type: 'CommaDelimitedList',
      allowedPattern: CLUSTER_ARN_PATTERN,
      constraintDescription: 'comma-separated ECS cluster ARNs (arn:<partition>:ecs:<region>:<account>:cluster/<name>), not names',
      description:
        'ARNs of the ECS clusters whose tasks get a queue (arn:aws:ecs:<region>:<account>:cluster/<name>). ' +
        'Events carry the cluster ARN, so names are not enough here.',
    });
    const serviceGroups = new CfnParameter(this, 'ServiceGroups', {
      type: 'CommaDelimitedList',
      default: '',
      description:
        'Optional ECS task groups to restrict to, e.g. service:orders,family:batch. Empty = every task of the clusters.',
    });
    const queuePrefix = new CfnParameter(this, 'QueuePrefix', {
      type: 'String',
      default: '',
      allowedPattern: '^(|tasksub[-_][A-Za-z0-9_-]{0,39})$',
      constraintDescription: 'empty, or "tasksub-" / "tasksub_" followed by at most 39 of [A-Za-z0-9_-]',
      description:
        'Name prefix of the per-task queues. Empty (default) = "tasksub-<first 8 hex of the stack id>-", unique ' +
        'per stack. A custom prefix starts with "tasksub-" or "tasksub_" (so it is never a common word) and must ' +
        "not be the start of any other stack's queue names. The functions may only delete queues tagged " +
        "tasksub:stack=<this stack's name>.",
    });
    // Applied to each element: an SNS topic ARN of any partition, region and account; standard names or
    // FIFO names ending in .fifo (256 characters in all).
    const topicArns = new CfnParameter(this, 'TopicArns', {
      type: 'CommaDelimitedList',
      default: '',
      allowedPattern: TOPIC_ARN_PATTERN,
      constraintDescription:
        'comma-separated SNS topic ARNs (arn:<partition>:sns:<region>:<12-digit account>:<name>[.fifo]), or empty',
      description:
        'TASKSUB_TOPIC_ARNS - the existing SNS topics every task queue subscribes to, comma-separated; any ' +
        "account and region (a topic of another account needs its owner's topic policy: " +
        'infra/snippets/foreign-topic-policy.yaml). All FIFO (.fifo) or none. Empty (default) = create one ' +
        'encrypted standard topic in this stack.',
    });
    const topicSettings = new CfnParameter(this, 'TopicSettings', {
      type: 'String',
      default: '',
      description:
        'TASKSUB_TOPIC_SETTINGS - optional JSON object of per-topic subscription settings keyed by topic name ' +
        '(or full topic ARN), e.g. {"orders":{"filterPolicy":{"kind":["invalidate"]},"rawDelivery":false}}. ' +
        'Fields rawDelivery, filterPolicy, filterPolicyScope, dlqArn, replaySeconds (FIFO only); the ' +
        'RawMessageDelivery/FilterPolicy/FilterPolicyScope/SubscriptionDlqArn parameters are the defaults.',
    });
    const topicKmsKeyId = new CfnParameter(this, 'TopicKmsKeyId', {
      type: 'String',
      default: 'alias/aws/sns',
      minLength: 1,
      description: 'KMS key (id, ARN or alias) encrypting the created topic.',
    });
    const enableQueueDlq = new CfnParameter(this, 'EnableQueueDlq', {
      type: 'String',
      default: 'true',
      allowedValues: ['true', 'false'],
      description: 'Create a shared dead-letter queue for the per-task queues (TASKSUB_QUEUE_DLQ_ARN).',
    });
    const queueMaxReceiveCount = new CfnParameter(this, 'QueueMaxReceiveCount', {
      type: 'Number', default: 5, minValue: 1, maxValue: 1000,
      description: 'maxReceiveCount of the task queue redrive policy.',
    });
    const queueRetentionSeconds = new CfnParameter(this, 'QueueRetentionSeconds', {
      type: 'Number', default: 86400, minValue: 60, maxValue: 1209600,
      description: 'MessageRetentionPeriod of the per-task queues.',
    });
    const queueVisibilitySeconds = new CfnParameter(this, 'QueueVisibilitySeconds', {
      type: 'Number', default: 30, minValue: 0, maxValue: 43200,
      description: 'VisibilityTimeout of the per-task queues.',
    });
    const rawMessageDelivery = new CfnParameter(this, 'RawMessageDelivery', {
      type: 'String', default: 'true', allowedValues: ['true', 'false'],
      description: 'SNS RawMessageDelivery of each subscription.',
    });
    const filterPolicy = new CfnParameter(this, 'FilterPolicy', {
      type: 'String', default: '',
      description: 'Optional JSON SNS filter policy set on each subscription.',
    });
    const filterPolicyScope = new CfnParameter(this, 'FilterPolicyScope', {
      type: 'String', default: '', allowedValues: ['', 'MessageAttributes', 'MessageBody'],
      description: 'Optional scope of FilterPolicy.',
    });
    const subscriptionDlqArn = new CfnParameter(this, 'SubscriptionDlqArn', {
      type: 'String',
      default: '',
      allowedPattern: SUBSCRIPTION_DLQ_ARN_PATTERN,
      constraintDescription: 'empty, or an SQS queue ARN (arn:<partition>:sqs:<region>:<12-digit account>:<name>[.fifo])',
      description:
        'Optional existing SQS queue ARN used as the RedrivePolicy of each SNS subscription (its queue policy ' +
        'must allow sns.amazonaws.com from the topic). FIFO topics need a FIFO queue (.fifo).',
    });
    const tombstoneTtlSeconds = new CfnParameter(this, 'TombstoneTtlSeconds', {
      type: 'Number', default: 86400, minValue: 60,
      description: 'How long GONE tombstone records live before DynamoDB TTL removes them (expiresAt).',
    });
    const architectureParam = new CfnParameter(this, 'Architecture', {
      type: 'String',
      default: archName,
      allowedValues: [archName],
      description:
        'Lambda architecture. CDK bundles at synth time: change it with `-c architecture=arm64|x86_64`.',
    });
    const functionMemorySize = new CfnParameter(this, 'FunctionMemorySize', {
      type: 'Number', default: 512, minValue: 128, maxValue: 10240,
      description: 'Memory (MB) of the functions; 512 MB gives enough CPU for a fast TLS handshake.',
    });
    const eventFunctionConcurrency = new CfnParameter(this, 'EventFunctionConcurrency', {
      type: 'Number', default: 5, minValue: 2, maxValue: 1000,
      description: 'Most concurrent invocations of each event function by its buffer queue (the event source ' +
        'mapping\'s ScalingConfig.MaximumConcurrency, 2-1000; it reserves no concurrency, so the stack deploys ' +
        'in any account). A function handles its batch one event at a time and a start makes one Subscribe in ' +
        'three round trips, so 5 at once stay under SNS\'s 100 Subscribe/Unsubscribe TPS per account; a burst ' +
        'waits in the buffer queue instead of being throttled into retries (BENCHMARKS.md, quota burst).',
    });
    const logLevel = new CfnParameter(this, 'LogLevel', {
      type: 'String', default: 'info', allowedValues: ['error', 'warn', 'info', 'debug', 'trace'],
      description: 'RUST_LOG of the functions.',
    });
    const logRetentionDays = new CfnParameter(this, 'LogRetentionDays', {
      type: 'Number', default: '30', allowedValues: LOG_RETENTION_DAYS,
      description: "Retention of the functions' log groups.",
    });
    const enableSweeper = new CfnParameter(this, 'EnableSweeper', {
      type: 'String', default: 'true', allowedValues: ['true', 'false'],
      description: 'Deploy the scheduled orphan sweeper (binary `sweeper`).',
    });
    const sweepSchedule = new CfnParameter(this, 'SweepSchedule', {
      type: 'String',
      default: 'rate(5 minutes)',
      description:
        "EventBridge schedule expression of the sweeper. At least 5 minutes apart (the sweeper's timeout is " +
        '240 s), so two sweeps never overlap: see Rules.SweepsCannotOverlap for the accepted values.',
    });
    const sweepGraceSeconds = new CfnParameter(this, 'SweepGraceSeconds', {
      type: 'Number', default: 600, minValue: 0, maxValue: 604800,
      description: 'TASKSUB_SWEEP_GRACE_SECONDS - minimum age before the sweeper touches a queue or record.',
    });
    const sweepAuditPerRun = new CfnParameter(this, 'SweepAuditPerRun', {
      type: 'Number', default: 25, minValue: 0, maxValue: 100000,
      description:
        'TASKSUB_SWEEP_AUDIT_PER_RUN - live tasks in sync whose queue and subscriptions one sweep reads and ' +
        'converges (repairs what others changed), oldest audit first; 0 = no audit.',
    });
    const sweepListPagesPerRun = new CfnParameter(this, 'SweepListPagesPerRun', {
      type: 'Number', default: 100, minValue: 1, maxValue: 10000,
      description:
        "TASKSUB_SWEEP_LIST_PAGES_PER_RUN - most pages (100 subscriptions each) of one topic's listing one " +
        'sweep reads; a bigger topic is read over several sweeps, each resuming where the last stopped.',
    });
    const taskRoleName = new CfnParameter(this, 'TaskRoleName', {
      type: 'String',
      default: '',
      description:
        "Optional name of the application's existing ECS task role; the consumer managed policy is attached " +
        'to it. Empty = attach it yourself (output TaskRolePolicyArn).',
    });
    const consumerRoleArns = new CfnParameter(this, 'ConsumerRoleArns', {
      type: 'CommaDelimitedList',
      default: '',
      allowedPattern: ROLE_ARN_PATTERN,
      constraintDescription: 'empty, or comma-separated IAM role ARNs (path included), no wildcard',
      description:
        'TASKSUB_CONSUMER_ROLE_ARNS - task queue isolation, off when empty (default). The exact ARNs (path ' +
        'included) of the ECS task roles of the consuming applications. Set, each task queue\'s policy denies ' +
        'ReceiveMessage, DeleteMessage, ChangeMessageVisibility and PurgeQueue to every principal but the ' +
        'task\'s own session of these roles (ECS names it after the task ID) and QueueAdminRoleArns ' +
        '(docs/threat-model.md, "A task reads only its own queue").',
    });
    const queueAdminRoleArns = new CfnParameter(this, 'QueueAdminRoleArns', {
      type: 'CommaDelimitedList',
      default: '',
      allowedPattern: ROLE_ARN_PATTERN,
      constraintDescription: 'empty, or comma-separated IAM role ARNs (path included), no wildcard',
      description:
        'TASKSUB_QUEUE_ADMIN_ROLE_ARNS - roles exempt from the task queue isolation (operators who inspect ' +
        'or purge task queues); needs ConsumerRoleArns.',
    });
    const alarmTopicArn = new CfnParameter(this, 'AlarmTopicArn', {
      type: 'String',
      allowedPattern: '^(NONE|arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256})$',
      description:
        'Required. SNS topic ARN notified by the alarms, or NONE to deploy alarms that notify nobody (the ' +
        'AlarmsNotifyNobody output then says so).',
    });

    // ------------------------------------------------------------------ conditions (as in SAM)
    const notEmpty = (value: string) => Fn.conditionNot(Fn.conditionEquals(value, ''));
    const hasServiceGroups = new CfnCondition(this, 'HasServiceGroups', {
      expression: notEmpty(Fn.join('', serviceGroups.valueAsList)),
    });
    const useDefaultQueuePrefix = new CfnCondition(this, 'UseDefaultQueuePrefix', {
      expression: Fn.conditionEquals(queuePrefix.valueAsString, ''),
    });
    const createTopic = new CfnCondition(this, 'CreateTopic', {
      expression: Fn.conditionEquals(Fn.join('', topicArns.valueAsList), ''),
    });
    const hasTopicSettings = new CfnCondition(this, 'HasTopicSettings', { expression: notEmpty(topicSettings.valueAsString) });
    const createQueueDlq = new CfnCondition(this, 'CreateQueueDlq', {
      expression: Fn.conditionEquals(enableQueueDlq.valueAsString, 'true'),
    });
    // The topics are FIFO: their ARNs hold ".fifo", which TopicArns' pattern admits only as a name's end (and the
    // functions refuse a mix of FIFO and standard topics). Empty TopicArns = the created standard topic. Joined
    // first, so no Fn::Select ever indexes the list itself.
    const joinedTopics = Fn.join(',', topicArns.valueAsList);
    const fifoTopics = new CfnCondition(this, 'FifoTopics', {
      expression: Fn.conditionNot(Fn.conditionEquals(Fn.select(0, Fn.split('.fifo', joinedTopics)), joinedTopics)),
    });
    const hasFilterPolicy = new CfnCondition(this, 'HasFilterPolicy', { expression: notEmpty(filterPolicy.valueAsString) });
    const hasFilterPolicyScope = new CfnCondition(this, 'HasFilterPolicyScope', {
      expression: notEmpty(filterPolicyScope.valueAsString),
    });
    const hasSubscriptionDlq = new CfnCondition(this, 'HasSubscriptionDlq', {
      expression: notEmpty(subscriptionDlqArn.valueAsString),
    });
    const sweeperEnabled = new CfnCondition(this, 'SweeperEnabled', {
      expression: Fn.conditionEquals(enableSweeper.valueAsString, 'true'),
    });
    const hasTaskRole = new CfnCondition(this, 'HasTaskRole', { expression: notEmpty(taskRoleName.valueAsString) });
    const hasConsumerRoles = new CfnCondition(this, 'HasConsumerRoles', {
      expression: notEmpty(Fn.join('', consumerRoleArns.valueAsList)),
    });
    const hasQueueAdminRoles = new CfnCondition(this, 'HasQueueAdminRoles', {
      expression: notEmpty(Fn.join('', queueAdminRoleArns.valueAsList)),
    });
    const hasAlarmTopic = new CfnCondition(this, 'HasAlarmTopic', {
      expression: Fn.conditionNot(Fn.conditionEquals(alarmTopicArn.valueAsString, 'NONE')),
    });
    const noAlarmTopic = new CfnCondition(this, 'NoAlarmTopic', {
      expression: Fn.conditionEquals(alarmTopicArn.valueAsString, 'NONE'),
    });

    // ------------------------------------------------------------------ rules (as in SAM)
    // The sweeper's timeout is SWEEPER_TIMEOUT_SECONDS: every accepted schedule fires less often, so a
    // sweep has ended (or been stopped by Lambda) before the next one starts.
    for (const expression of SWEEP_SCHEDULES) {
      if (ratePeriodSeconds(expression) <= SWEEPER_TIMEOUT_SECONDS) {
        throw new Error(`${expression} fires before a ${SWEEPER_TIMEOUT_SECONDS}s sweep has ended`);
      }
    }
    new CfnRule(this, 'SweepsCannotOverlap', {
      ruleCondition: Fn.conditionEquals(enableSweeper.valueAsString, 'true'),
      assertions: [
        {
          assert: Fn.conditionContains(SWEEP_SCHEDULES, sweepSchedule.valueAsString),
          assertDescription:
            'SweepSchedule must be one of rate(5 minutes) ... rate(1 day): the sweeper runs up to 240 s and ' +
            'sweeps must not overlap.',
        },
      ],
    });

    // Exempting roles from an isolation that is off is a mistake the functions would refuse at cold start
    // (TASKSUB_QUEUE_ADMIN_ROLE_ARNS needs TASKSUB_CONSUMER_ROLE_ARNS): refuse it at deployment instead.
    new CfnRule(this, 'QueueAdminsNeedIsolation', {
      // Rules take no Fn::Join: an empty list parameter is [""], so its first element tells.
      ruleCondition: notEmpty(Fn.select(0, queueAdminRoleArns.valueAsList)),
      assertions: [
        {
          assert: notEmpty(Fn.select(0, consumerRoleArns.valueAsList)),
          assertDescription: 'QueueAdminRoleArns exempts roles from the task queue isolation, which needs ConsumerRoleArns.',
        },
      ],
    });

    const ifThen = (cond: CfnCondition, yes: unknown, no: unknown) => Fn.conditionIf(cond.logicalId, yes, no);
    const orNoValue = (cond: CfnCondition, value: unknown) => Token.asString(ifThen(cond, value, Aws.NO_VALUE));

    // Effective queue prefix: the parameter, or "tasksub-<first 8 hex of the stack id>-".
    const prefix = Token.asString(
      ifThen(
        useDefaultQueuePrefix,
        Fn.join('', ['tasksub-', Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID)))), '-']),
        queuePrefix.valueAsString,
      ),
    );
    // Fn::Sub (not Fn::Join) so the guard rules can verify the ARN ends with "<prefix>*".
    const queueArnPattern = Fn.sub('arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Prefix}*', {
      Prefix: prefix,
    });

    // ------------------------------------------------------------------ state
    const table = new dynamodb.CfnTable(this, 'Table', {
      billingMode: 'PAY_PER_REQUEST',
      attributeDefinitions: [{ attributeName: 'taskId', attributeType: 'S' }],
      keySchema: [{ attributeName: 'taskId', keyType: 'HASH' }],
      timeToLiveSpecification: { attributeName: 'expiresAt', enabled: true },
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      sseSpecification: { sseEnabled: true },
    });
    table.applyRemovalPolicy(RemovalPolicy.RETAIN);
    setLogicalId(table, 'Table');

    const topic = new sns.CfnTopic(this, 'Topic', { kmsMasterKeyId: topicKmsKeyId.valueAsString });
    topic.cfnOptions.condition = createTopic;
    setLogicalId(topic, 'Topic');
    // TASKSUB_TOPIC_ARNS, and the resource of every topic-scoped grant: exactly the configured topics.
    const topicArnsValue = Token.asString(ifThen(createTopic, topic.ref, Fn.join(',', topicArns.valueAsList)));
    const topicResources = Token.asList(ifThen(createTopic, [topic.ref], topicArns.valueAsList));

    // ------------------------------------------------------------------ dead-letter queues
    // Named from the stack id, never from the stack name: a custom QueuePrefix may be "<stack name>-"
    // (tasksub-prod- on the stack tasksub-prod), and a CloudFormation-generated name would then start with it.
    // A name starting with "dlq-" can never start with a prefix (which starts with tasksub- or tasksub_).
    const stackUuid = Fn.select(2, Fn.split('/', Aws.STACK_ID));
    const eventDlq = new sqs.Queue(this, 'EventDlq', {
      queueName: Fn.join('', ['dlq-tasksub-events-', stackUuid]),
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    setLogicalId(eventDlq, 'EventDlq');

    // FIFO with FIFO topics: SQS refuses a standard dead-letter queue for a FIFO queue (and the reverse), and the
    // settings refuse the pair at cold start. Switching between standard and FIFO topics replaces it.
    const taskQueueDlq = new sqs.Queue(this, 'TaskQueueDlq', {
      queueName: Fn.join('', ['dlq-tasksub-tasks-', stackUuid, Token.asString(ifThen(fifoTopics, '.fifo', ''))]),
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    (taskQueueDlq.node.defaultChild as sqs.CfnQueue).fifoQueue = ifThen(fifoTopics, true, Aws.NO_VALUE) as any;
    conditionAll(taskQueueDlq, createQueueDlq);
    setLogicalId(taskQueueDlq, 'TaskQueueDlq');
    const denyInsecureTransport = (queueArn: string) => ({
      Sid: 'DenyInsecureTransport',
      Effect: 'Deny',
      Principal: '*',
      Action: 'sqs:*',
      Resource: queueArn,
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
    // SQS moves messages from the task queues itself (redrive needs no Allow); nothing may use plain HTTP.
    const taskQueueDlqPolicy = new sqs.CfnQueuePolicy(this, 'TaskQueueDlqPolicy', {
      queues: [taskQueueDlq.queueUrl],
      policyDocument: { Version: '2012-10-17', Statement: [denyInsecureTransport(taskQueueDlq.queueArn)] },
    });
    taskQueueDlqPolicy.cfnOptions.condition = createQueueDlq;
    setLogicalId(taskQueueDlqPolicy, 'TaskQueueDlqPolicy');

    // ------------------------------------------------------------------ buffer queues (as in SAM)
    // EventBridge sends each task rule's trimmed event to a buffer queue; an event source mapping drains it
    // into the event function with at most EventFunctionConcurrency invocations at once (nothing reserved).
    // A failed record comes back after the visibility timeout, six times the function's timeout as AWS
    // recommends; after BUFFER_MAX_RECEIVE_COUNT receives the redrive moves it, still trimmed, to EventDlq.
    // Named from the stack id like the DLQs, for the same reason: a generated "<stack name>-..." name could start
    // with a custom QueuePrefix. "buf-" can never start a prefix. Always standard queues (EventBridge targets
    // redriven to the standard EventDlq), so no ".fifo"; 56 characters of SQS's 80.
    const buffer = (logicalId: string, kind: 'running' | 'stopped') => {
      const q = new sqs.Queue(this, logicalId, {
        queueName: Fn.join('', [`buf-tasksub-${kind}-`, stackUuid]),
        // Shorter than EventDlq's 14 days, as SQS advises: a message keeps its enqueue time when moved.
        retentionPeriod: Duration.days(1),
        visibilityTimeout: Duration.seconds(6 * EVENT_FUNCTION_TIMEOUT_SECONDS),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        deadLetterQueue: { queue: eventDlq, maxReceiveCount: BUFFER_MAX_RECEIVE_COUNT },
        removalPolicy: RemovalPolicy.DESTROY,
      });
      setLogicalId(q, logicalId);
      return q;
    };
    const runningBuffer = buffer('TaskRunningBuffer', 'running');
    const stoppedBuffer = buffer('TaskStoppedBuffer', 'stopped');

    // ------------------------------------------------------------------ functions
    const environment: Record<string, string> = {
      RUST_LOG: logLevel.valueAsString,
      TASKSUB_TOPIC_ARNS: topicArnsValue,
      TASKSUB_TOPIC_SETTINGS: orNoValue(hasTopicSettings, topicSettings.valueAsString),
      // The deployment's own account (the region is Lambda's AWS_REGION): queue ARNs are derived from these,
      // never from a topic, which may live in another account or region.
      TASKSUB_ACCOUNT_ID: Aws.ACCOUNT_ID,
      TASKSUB_TABLE: table.ref,
      TASKSUB_CLUSTERS: Fn.join(',', clusterArns.valueAsList),
      TASKSUB_SERVICE_GROUPS: orNoValue(hasServiceGroups, Fn.join(',', serviceGroups.valueAsList)),
      TASKSUB_QUEUE_PREFIX: prefix,
      TASKSUB_RAW_DELIVERY: rawMessageDelivery.valueAsString,
      TASKSUB_FILTER_POLICY: orNoValue(hasFilterPolicy, filterPolicy.valueAsString),
      TASKSUB_FILTER_POLICY_SCOPE: orNoValue(hasFilterPolicyScope, filterPolicyScope.valueAsString),
      TASKSUB_SUBSCRIPTION_DLQ_ARN: orNoValue(hasSubscriptionDlq, subscriptionDlqArn.valueAsString),
      TASKSUB_QUEUE_DLQ_ARN: orNoValue(createQueueDlq, taskQueueDlq.queueArn),
      TASKSUB_QUEUE_MAX_RECEIVE_COUNT: queueMaxReceiveCount.valueAsString,
      TASKSUB_QUEUE_RETENTION_SECONDS: queueRetentionSeconds.valueAsString,
      TASKSUB_QUEUE_VISIBILITY_SECONDS: queueVisibilitySeconds.valueAsString,
      TASKSUB_TOMBSTONE_TTL_SECONDS: tombstoneTtlSeconds.valueAsString,
      TASKSUB_STACK: Aws.STACK_NAME,
      TASKSUB_SETTINGS_GENERATION: settingsGeneration?.valueAsString ?? String(generation),
      TASKSUB_CONSUMER_ROLE_ARNS: orNoValue(hasConsumerRoles, Fn.join(',', consumerRoleArns.valueAsList)),
      TASKSUB_QUEUE_ADMIN_ROLE_ARNS: orNoValue(hasQueueAdminRoles, Fn.join(',', queueAdminRoleArns.valueAsList)),
    };

    const rustFunction = (
      logicalId: string,
      binary: string,
      description: string,
      opts: {
        timeout: number; retryAttempts: number; maxEventAge: number; extraEnv?: Record<string, string>;
      },
    ): RustFunction => {
      const logGroup = new logs.LogGroup(this, `${logicalId.replace(/Function$/, '')}LogGroup`, {
        removalPolicy: RemovalPolicy.DESTROY,
      });
      (logGroup.node.defaultChild as logs.CfnLogGroup).retentionInDays = logRetentionDays.valueAsNumber;
      setLogicalId(logGroup, `${logicalId.replace(/Function$/, '')}LogGroup`);
      // Own role, no AWSLambdaBasicExecutionRole (logs:* on *): only the own log group is writable.
      const role = new iam.Role(this, `${logicalId}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `tasksub ${binary}`,
      });
      setLogicalId(role, `${logicalId}Role`);
      role.addToPolicy(new iam.PolicyStatement({
        sid: 'OwnLogGroup',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }));
      const fn = new RustFunction(this, logicalId, {
        role,
        manifestPath,
        binaryName: binary,
        // Local cargo-lambda (and zig) on PATH, never Docker: `cargo lambda build --release --x86-64|--arm64
        // --bin <binary>` in functions/, the same build as `sam build` (infra/README.md, "CDK bundling").
        bundling: { forcedDockerBundling: false },
        architecture,
        description,
        memorySize: functionMemorySize.valueAsNumber,
        timeout: Duration.seconds(opts.timeout),
        environment: { ...environment, ...(opts.extraEnv ?? {}) },
        logGroup,
        loggingFormat: lambda.LoggingFormat.TEXT,
        onFailure: new SendOnlySqsDestination(eventDlq),
        retryAttempts: opts.retryAttempts,
        maxEventAge: Duration.seconds(opts.maxEventAge),
      });
      const cfnFn = fn.node.defaultChild as lambda.CfnFunction;
      cfnFn.addPropertyOverride('Architectures', [architectureParam.valueAsString]);
      setLogicalId(fn, logicalId);
      return fn;
    };

    const onTaskRunning = rustFunction(
      'OnTaskRunningFunction',
      'on-task-running',
      'tasksub - provision the queue and subscription of a RUNNING task',
      // The buffer invokes synchronously; an asynchronous invocation (a manual `aws lambda invoke
      // --invocation-type Event` of a dead-lettered event) still gets bounded retries and a DLQ.
      { timeout: EVENT_FUNCTION_TIMEOUT_SECONDS, retryAttempts: 2, maxEventAge: 3600 },
    );
    // Statements shared by the roles (infra/tests/test_iam.py checks each role against its code).
    const subscribeTaskQueues = () => new iam.PolicyStatement({
      sid: 'SubscribeTaskQueues',
      actions: ['sns:Subscribe'],
      resources: topicResources,
      conditions: { StringEquals: { 'sns:Protocol': 'sqs' }, StringLike: { 'sns:Endpoint': queueArnPattern } },
    });
    // Statements whose resource is the TopicArns list (a list token) go straight into the role's default
    // policy: Function.addToRolePolicy would put each into a policy of its own (it never mixes list-token
    // and literal resources in one document), and one policy per role is what SAM has.
    const topicScoped = (fn: lambda.Function, statement: iam.PolicyStatement) => fn.role!.addToPrincipalPolicy(statement);
    // ListSubscriptionsByTopic: finding a subscription whose ARN is unknown (Subscribe refused it as existing
    // with other attributes; an earlier attempt's never recorded), and the sweeper's orphan pass.
    const findSubscription = () => new iam.PolicyStatement({
      sid: 'FindSubscription',
      actions: ['sns:ListSubscriptionsByTopic'],
      resources: topicResources,
    });
    // ListSubscriptions (the account's own subscriptions, read-only, no resource type): the same search when a
    // topic's owner refuses us its listing, or for a retired topic (one records still name after it left
    // TopicArns), which FindSubscription does not cover.
    const findOwnSubscriptions = () => new iam.PolicyStatement({
      sid: 'FindOwnSubscriptions',
      actions: ['sns:ListSubscriptions'],
      resources: ['*'],
    });
    // Converging a subscription to a configured topic: read its attributes, set those that differ
    // (RawMessageDelivery, FilterPolicy, FilterPolicyScope, RedrivePolicy). IAM authorizes both against the
    // subscription's topic (AWS's newest authorization data gives them an optional topic resource type), and they
    // are only called for configured topics: exactly those, never "*".
    const convergeSubscriptions = () => new iam.PolicyStatement({
      sid: 'ConvergeSubscriptions',
      actions: ['sns:GetSubscriptionAttributes', 'sns:SetSubscriptionAttributes'],
      resources: topicResources,
    });
    // sns:Unsubscribe stays on "*": it must also remove a subscription to a topic that left TopicArns (a retired
    // topic), whatever AWS's newest data allows (an optional topic resource type). SNS itself only lets the topic
    // owner or the subscription owner unsubscribe: subscriptions of topics this account owns, and the
    // subscriptions this account made on other accounts' topics (tasksub's own). Subscribe,
    // ListSubscriptionsByTopic and the subscription attributes take the topic as their resource: exactly the
    // configured topics, never "*".
    const unsubscribe = () => new iam.PolicyStatement({ sid: 'Unsubscribe', actions: ['sns:Unsubscribe'], resources: ['*'] });
    // Queue ownership IAM can enforce: every task queue is created with the tag tasksub:stack=<stack name>
    // (TASKSUB_STACK, tasksub-core policy::queue_tags), and nothing but reads works on a queue without it.
    const ownedByThisStack = { StringEquals: { [`aws:ResourceTag/${STACK_TAG}`]: Aws.STACK_NAME } };
    // CreateQueue (and the sqs:TagQueue that tags on create needs) only with this stack's tag and only
    // tasksub's tag keys.
    const createTaggedTaskQueues = () => new iam.PolicyStatement({
      sid: 'CreateTaggedTaskQueues',
      actions: ['sqs:CreateQueue', 'sqs:TagQueue'],
      resources: [queueArnPattern],
      conditions: {
        StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: Aws.STACK_NAME },
        'ForAllValues:StringEquals': { 'aws:TagKeys': QUEUE_TAG_KEYS },
      },
    });
    // DeleteQueue only of queues carrying this stack's tag: never a queue tasksub did not create.
    const deleteOwnTaskQueues = () => new iam.PolicyStatement({
      sid: 'DeleteOwnTaskQueues',
      actions: ['sqs:DeleteQueue'],
      resources: [queueArnPattern],
      conditions: ownedByThisStack,
    });
    // SetQueueAttributes: converging a task queue (adopted, or audited after a settings change or an out-of-band
    // edit) sets each attribute that differs from the settings: Policy, VisibilityTimeout, MessageRetentionPeriod,
    // RedrivePolicy (empty to remove), SqsManagedSseEnabled, ReceiveMessageWaitTimeSeconds, DeduplicationScope,
    // FifoThroughputLimit. Only queues carrying this stack's tag.
    const convergeOwnTaskQueues = () => new iam.PolicyStatement({
      sid: 'ConvergeOwnTaskQueues',
      actions: ['sqs:SetQueueAttributes'],
      resources: [queueArnPattern],
      conditions: ownedByThisStack,
    });

    // GetItem: after a failed stage, the executor reads the record to undo what it does not name
    // (executor::undo_after_failure, redecide_after_failure).
    onTaskRunning.addToRolePolicy(new iam.PolicyStatement({
      sid: 'TableRecords',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      resources: [table.attrArn],
    }));
    onTaskRunning.addToRolePolicy(createTaggedTaskQueues());
    // DeleteQueue: the compensation after losing a race to a teardown deletes the queue it made.
    onTaskRunning.addToRolePolicy(deleteOwnTaskQueues());
    onTaskRunning.addToRolePolicy(convergeOwnTaskQueues());
    topicScoped(onTaskRunning, subscribeTaskQueues());
    onTaskRunning.addToRolePolicy(unsubscribe());
    // Adopting a queue that exists with other attributes (CreateQueue refused it: a crashed start, a settings
    // change): GetQueueUrl finds it, ListQueueTags checks that its tasksub:stack and tasksub:task-arn tags make it
    // this task's queue of this stack, GetQueueAttributes reads what to converge. Reads, not tag-conditioned:
    // another stack's or an untagged queue must answer with its tags (and be refused for that), and a queue that
    // is gone must answer "does not exist".
    onTaskRunning.addToRolePolicy(new iam.PolicyStatement({
      sid: 'TaskQueues',
      actions: ['sqs:GetQueueUrl', 'sqs:ListQueueTags', 'sqs:GetQueueAttributes'],
      resources: [queueArnPattern],
    }));
    topicScoped(onTaskRunning, findSubscription());
    onTaskRunning.addToRolePolicy(findOwnSubscriptions());
    topicScoped(onTaskRunning, convergeSubscriptions());

    const onTaskStopped = rustFunction(
      'OnTaskStoppedFunction',
      'on-task-stopped',
      'tasksub - unsubscribe and delete the queue of a stopping task',
      // The buffer invokes synchronously; an asynchronous invocation (a manual `aws lambda invoke
      // --invocation-type Event` of a dead-lettered event) still gets bounded retries and a DLQ.
      { timeout: EVENT_FUNCTION_TIMEOUT_SECONDS, retryAttempts: 2, maxEventAge: 3600 },
    );
    onTaskStopped.addToRolePolicy(new iam.PolicyStatement({
      sid: 'TableRecords',
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      resources: [table.attrArn],
    }));
    // GetQueueUrl is not tag-conditioned: a queue that is gone must answer "does not exist".
    onTaskStopped.addToRolePolicy(new iam.PolicyStatement({
      sid: 'TaskQueues',
      actions: ['sqs:GetQueueUrl'],
      resources: [queueArnPattern],
    }));
    onTaskStopped.addToRolePolicy(deleteOwnTaskQueues());
    // Teardown never subscribes: a subscription whose ARN the record lacks (a crashed start) is found by listing
    // the topic, or, when its owner refuses us the listing or the topic is retired, the account's own subscriptions.
    topicScoped(onTaskStopped, findSubscription());
    onTaskStopped.addToRolePolicy(findOwnSubscriptions());
    onTaskStopped.addToRolePolicy(unsubscribe());

    // The buffer queues drive the event functions: batches of up to BUFFER_BATCH_SIZE trimmed events, at most
    // EventFunctionConcurrency invocations at once (ScalingConfig.MaximumConcurrency reserves nothing), and
    // only the records the function names in batchItemFailures come back (functions/src/batch.rs).
    const drive = (fn: lambda.Function, queue: sqs.Queue, logicalId: string) => {
      // What the event source mapping calls with the function's role (AWS Lambda Developer Guide, "Using
      // Lambda with Amazon SQS", execution role permissions), on its own buffer queue only.
      fn.addToRolePolicy(new iam.PolicyStatement({
        sid: 'ConsumeBuffer',
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        resources: [queue.queueArn],
      }));
      const mapping = new lambda.CfnEventSourceMapping(this, logicalId, {
        eventSourceArn: queue.queueArn,
        functionName: fn.functionName,
        batchSize: BUFFER_BATCH_SIZE,
        maximumBatchingWindowInSeconds: 0,
        functionResponseTypes: ['ReportBatchItemFailures'],
        scalingConfig: { maximumConcurrency: eventFunctionConcurrency.valueAsNumber },
      });
      setLogicalId(mapping, logicalId);
    };
    drive(onTaskRunning, runningBuffer, 'TaskRunningBufferMapping');
    drive(onTaskStopped, stoppedBuffer, 'TaskStoppedBufferMapping');

    const sweeper = rustFunction(
      'SweeperFunction',
      'sweeper',
      'tasksub - reconcile queues, subscriptions and records with the running tasks',
      {
        timeout: SWEEPER_TIMEOUT_SECONDS,
        retryAttempts: 0,
        maxEventAge: 300,
        extraEnv: {
          TASKSUB_SWEEP_GRACE_SECONDS: sweepGraceSeconds.valueAsString,
          TASKSUB_SWEEP_AUDIT_PER_RUN: sweepAuditPerRun.valueAsString,
          TASKSUB_SWEEP_LIST_PAGES_PER_RUN: sweepListPagesPerRun.valueAsString,
        },
      },
    );
    const clusterCondition = { ArnEquals: { 'ecs:cluster': clusterArns.valueAsList } };
    // AWS's authorization data lists container-instance as ListTasks' resource type, but a ListTasks
    // without a containerInstance filter is authorized against "*"; the cluster is narrowed by ecs:cluster
    // (infra/README.md, "IAM oracle").
    sweeper.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ListTasksOfOurClusters',
      actions: ['ecs:ListTasks'],
      resources: ['*'],
      conditions: clusterCondition,
    }));
    sweeper.addToRolePolicy(new iam.PolicyStatement({
      sid: 'DescribeTasksOfOurClusters',
      actions: ['ecs:DescribeTasks'],
      resources: [Fn.sub('arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/*')],
      conditions: clusterCondition,
    }));
    // sqs:ListQueues has no resource-level permissions (IAM only accepts "*"); it is read-only and the
    // sweeper lists with QueueNamePrefix = the prefix.
    sweeper.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ListQueues',
      actions: ['sqs:ListQueues'],
      resources: ['*'],
    }));
    // Reads are not tag-conditioned: the sweeper must see the tags of untagged or foreign queues under the
    // prefix to report (and keep) them, and a vanished queue must answer "does not exist". The same reads adopt
    // and audit a queue (its tags, then its attributes to converge).
    sweeper.addToRolePolicy(new iam.PolicyStatement({
      sid: 'TaskQueues',
      actions: ['sqs:ListQueueTags', 'sqs:GetQueueUrl', 'sqs:GetQueueAttributes'],
      resources: [queueArnPattern],
    }));
    sweeper.addToRolePolicy(createTaggedTaskQueues());
    sweeper.addToRolePolicy(deleteOwnTaskQueues());
    sweeper.addToRolePolicy(convergeOwnTaskQueues());
    topicScoped(sweeper, subscribeTaskQueues());
    // The configured topics' subscriptions (orphan pass, finding an unrecorded subscription). A topic only records
    // still name (retired) is outside this grant: its listing is refused, and the sweeper lists the account's own
    // subscriptions instead.
    topicScoped(sweeper, findSubscription());
    sweeper.addToRolePolicy(findOwnSubscriptions());
    topicScoped(sweeper, convergeSubscriptions());
    sweeper.addToRolePolicy(unsubscribe());
    sweeper.addToRolePolicy(new iam.PolicyStatement({
      sid: 'TableRecords',
      actions: ['dynamodb:Scan', 'dynamodb:PutItem', 'dynamodb:GetItem'], // GetItem: executor::undo_after_failure
      resources: [table.attrArn],
    }));

    // ------------------------------------------------------------------ EventBridge
    // Same patterns as the SAM template (see the comment there): they mirror tasksub-core intent_of().
    const taskPattern = (statusFilter: Record<string, unknown>) => ({
      source: ['aws.ecs'],
      'detail-type': ['ECS Task State Change'],
      detail: {
        clusterArn: clusterArns.value,
        group: ifThen(hasServiceGroups, serviceGroups.value, Aws.NO_VALUE),
        ...statusFilter,
      },
    });
    const ruleTarget = (
      id: string,
      arn: string,
      retries: number,
      maxAge: number,
      inputTransformer?: events.CfnRule.InputTransformerProperty,
    ) => ({
      id,
      arn,
      inputTransformer,
      retryPolicy: { maximumRetryAttempts: retries, maximumEventAgeInSeconds: maxAge },
      deadLetterConfig: { arn: eventDlq.queueArn },
    });

    const runningRule = new events.CfnRule(this, 'TaskRunningRule', {
      description: 'tasksub - tasks of our clusters that are starting or running',
      state: 'ENABLED',
      eventPattern: taskPattern({
        desiredStatus: ['RUNNING'],
        lastStatus: ['PROVISIONING', 'PENDING', 'ACTIVATING', 'RUNNING'],
      }),
      // Id names the function the buffer feeds (infra/tests/test_rule_patterns.py keys on it).
      targets: [ruleTarget('on-task-running', runningBuffer.queueArn, 185, 86400, TRIMMED_TASK_EVENT)],
    });
    setLogicalId(runningRule, 'TaskRunningRule');

    const stoppedRule = new events.CfnRule(this, 'TaskStoppedRule', {
      description: 'tasksub - tasks of our clusters that are stopping or stopped',
      state: 'ENABLED',
      eventPattern: taskPattern({ $or: [{ desiredStatus: ['STOPPED'] }, { lastStatus: ['STOPPED'] }] }),
      targets: [ruleTarget('on-task-stopped', stoppedBuffer.queueArn, 185, 86400, TRIMMED_TASK_EVENT)],
    });
    setLogicalId(stoppedRule, 'TaskStoppedRule');

    const sweepRule = new events.CfnRule(this, 'SweepRule', {
      description: 'tasksub - periodic orphan sweep',
      state: 'ENABLED',
      scheduleExpression: sweepSchedule.valueAsString,
      targets: [ruleTarget('sweeper', sweeper.functionArn, 2, 300)],
    });
    setLogicalId(sweepRule, 'SweepRule');

    const permit = (logicalId: string, fn: lambda.Function, rule: events.CfnRule) => {
      const permission = new lambda.CfnPermission(this, logicalId, {
        action: 'lambda:InvokeFunction',
        functionName: fn.functionArn,
        principal: 'events.amazonaws.com',
        sourceArn: rule.attrArn,
        sourceAccount: Aws.ACCOUNT_ID,
      });
      setLogicalId(permission, logicalId);
      return permission;
    };
    const sweepPermission = permit('SweepRulePermission', sweeper, sweepRule);

    // Only its own rule may send to a buffer queue; nothing may use plain HTTP.
    const bufferPolicy = (logicalId: string, sid: string, queue: sqs.Queue, rule: events.CfnRule) => {
      const policy = new sqs.CfnQueuePolicy(this, logicalId, {
        queues: [queue.queueUrl],
        policyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: sid,
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: queue.queueArn,
              Condition: { ArnEquals: { 'aws:SourceArn': rule.attrArn } },
            },
            denyInsecureTransport(queue.queueArn),
          ],
        },
      });
      setLogicalId(policy, logicalId);
    };
    bufferPolicy('TaskRunningBufferPolicy', 'EventBridgeTaskRunningRule', runningBuffer, runningRule);
    bufferPolicy('TaskStoppedBufferPolicy', 'EventBridgeTaskStoppedRule', stoppedBuffer, stoppedRule);

    const dlqStatement = (sid: string, rule: events.CfnRule) => ({
      Sid: sid,
      Effect: 'Allow',
      Principal: { Service: 'events.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: eventDlq.queueArn,
      Condition: { ArnEquals: { 'aws:SourceArn': rule.attrArn } },
    });
    const eventDlqPolicy = new sqs.CfnQueuePolicy(this, 'EventDlqPolicy', {
      queues: [eventDlq.queueUrl],
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          dlqStatement('EventBridgeDeadLettersTaskRunning', runningRule),
          dlqStatement('EventBridgeDeadLettersTaskStopped', stoppedRule),
          ifThen(sweeperEnabled, dlqStatement('EventBridgeDeadLettersSweep', sweepRule), Aws.NO_VALUE),
          denyInsecureTransport(eventDlq.queueArn),
        ],
      },
    });
    setLogicalId(eventDlqPolicy, 'EventDlqPolicy');

    // ------------------------------------------------------------------ application task role
    const taskRolePolicy = new iam.CfnManagedPolicy(this, 'TaskRolePolicy', {
      description:
        'tasksub consumer - receive from the task queues of this stack (only the task\'s own queue with ' +
        'ConsumerRoleArns, the queue isolation) and read the task record',
      roles: Token.asList(ifThen(hasTaskRole, [taskRoleName.valueAsString], Aws.NO_VALUE)),
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          // Discovery by name is not tag-conditioned: until the queue exists, GetQueueUrl must answer "does
          // not exist" (the client waits for it), not AccessDenied.
          { Sid: 'FindTaskQueue', Effect: 'Allow', Action: 'sqs:GetQueueUrl', Resource: queueArnPattern },
          // Messages only of queues carrying this stack's tag: never a queue tasksub did not create. Which of
          // them: every one, unless ConsumerRoleArns turns the isolation on, whose per-queue Denies leave each
          // queue to the task's own role session (an identity policy shared by every task cannot name the task:
          // docs/threat-model.md).
          {
            Sid: 'ConsumeTaskQueue',
            Effect: 'Allow',
            Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility'],
            Resource: queueArnPattern,
            Condition: ownedByThisStack,
          },
          { Sid: 'ReadTaskRecord', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: table.attrArn },
        ],
      },
    });
    setLogicalId(taskRolePolicy, 'TaskRolePolicy');

    // ------------------------------------------------------------------ alarms
    const alarmActions = Token.asList(ifThen(hasAlarmTopic, [alarmTopicArn.valueAsString], Aws.NO_VALUE));
    const alarm = (
      logicalId: string,
      description: string,
      namespace: string,
      metricName: string,
      dimension: { name: string; value: string },
      statistic: string,
    ) => {
      const a = new cloudwatch.CfnAlarm(this, logicalId, {
        alarmDescription: description,
        namespace,
        metricName,
        dimensions: [dimension],
        statistic,
        period: 300,
        evaluationPeriods: 1,
        threshold: 1,
        comparisonOperator: 'GreaterThanOrEqualToThreshold',
        treatMissingData: 'notBreaching',
        alarmActions,
      });
      setLogicalId(a, logicalId);
      return a;
    };
    alarm('EventDlqDepthAlarm', 'tasksub - ECS events or invocations were dead-lettered (EventDlq not empty)',
      'AWS/SQS', 'ApproximateNumberOfMessagesVisible', { name: 'QueueName', value: eventDlq.queueName }, 'Maximum');
    const taskQueueDlqAlarm = alarm('TaskQueueDlqDepthAlarm',
      'tasksub - messages of task queues were dead-lettered (TaskQueueDlq not empty)',
      'AWS/SQS', 'ApproximateNumberOfMessagesVisible', { name: 'QueueName', value: taskQueueDlq.queueName }, 'Maximum');
    taskQueueDlqAlarm.cfnOptions.condition = createQueueDlq;
    alarm('OnTaskRunningErrorsAlarm', 'tasksub - on-task-running function errors', 'AWS/Lambda', 'Errors',
      { name: 'FunctionName', value: onTaskRunning.functionName }, 'Sum');
    alarm('OnTaskStoppedErrorsAlarm', 'tasksub - on-task-stopped function errors', 'AWS/Lambda', 'Errors',
      { name: 'FunctionName', value: onTaskStopped.functionName }, 'Sum');
    const sweeperAlarm = alarm('SweeperErrorsAlarm', 'tasksub - sweeper function errors', 'AWS/Lambda', 'Errors',
      { name: 'FunctionName', value: sweeper.functionName }, 'Sum');
    const sweeperAlarms = [sweeperAlarm];
    for (const [prefix, label, fn] of [
      ['OnTaskRunning', 'on-task-running', onTaskRunning],
      ['OnTaskStopped', 'on-task-stopped', onTaskStopped],
      ['Sweeper', 'sweeper', sweeper],
    ] as const) {
      for (const [metric, what] of [
        ['Throttles', 'throttled invocations (concurrency limit reached)'],
        ['DestinationDeliveryFailures', 'failed invocations could not be delivered to the event DLQ'],
      ] as const) {
        const a = alarm(`${prefix}${metric}Alarm`, `tasksub - ${label} ${what}`, 'AWS/Lambda', metric,
          { name: 'FunctionName', value: fn.functionName }, 'Sum');
        if (prefix === 'Sweeper') {
          sweeperAlarms.push(a);
        }
      }
    }

    // Mass orphan removals: a sweep that removes many queues or subscriptions at once means events were lost
    // on a large scale (or the scope settings changed): someone should look.
    for (const [metric, what] of [
      ['OrphansRemoved', 'removed many orphan queues/records in one sweep (events lost at scale?)'],
      ['OrphanSubscriptionsRemoved', 'removed many orphan subscriptions in one sweep (events lost at scale?)'],
    ] as const) {
      const a = alarm(`Sweeper${metric}Alarm`, `tasksub - sweeper ${what}`, 'tasksub', metric,
        { name: 'Function', value: 'sweeper' }, 'Sum');
      a.threshold = MASS_ORPHAN_THRESHOLD;
      sweeperAlarms.push(a);
    }

    // Rule delivery: EventBridge's own metrics per rule (AWS/Events, dimension RuleName). FailedInvocations
    // counts invocations of a target that failed permanently, InvocationsFailedToBeSentToDlq events it could
    // not even put in the dead-letter queue, i.e. lost events
    // (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html).
    for (const [id, label, rule] of [
      ['TaskRunningRule', 'task running rule', runningRule],
      ['TaskStoppedRule', 'task stopped rule', stoppedRule],
      ['SweepRule', 'sweep schedule rule', sweepRule],
    ] as const) {
      for (const [metric, what] of [
        ['FailedInvocations', 'failed permanently to invoke its target'],
        ['InvocationsFailedToBeSentToDlq', 'could not dead-letter an event it failed to deliver: the event is lost'],
      ] as const) {
        const a = alarm(`${id}${metric}Alarm`, `tasksub - the ${label} ${what}`, 'AWS/Events', metric,
          { name: 'RuleName', value: rule.ref }, 'Sum');
        if (id === 'SweepRule') {
          sweeperAlarms.push(a);
        }
      }
    }

    // Everything of the sweeper is conditional on EnableSweeper.
    conditionAll(sweeper, sweeperEnabled);
    for (const c of [sweepRule, sweepPermission, ...sweeperAlarms]) {
      c.cfnOptions.condition = sweeperEnabled;
    }
    const sweeperLogGroup = this.node.findChild('SweeperLogGroup');
    conditionAll(sweeperLogGroup, sweeperEnabled);
    conditionAll(this.node.findChild('SweeperFunctionRole'), sweeperEnabled);

    // ------------------------------------------------------------------ outputs (as in SAM)
    const output = (id: string, value: string, description?: string, condition?: CfnCondition) => {
      const o = new CfnOutput(this, `Output${id}`, { value, description, condition });
      o.overrideLogicalId(id);
    };
    output('PublishTopicArns', topicArnsValue, 'TASKSUB_TOPIC_ARNS - publish to any of these; every task queue is subscribed to each');
    output('SubscriberRoleArns',
      Fn.join(',', Token.asList([
        onTaskRunning.role!.roleArn, onTaskStopped.role!.roleArn, ifThen(sweeperEnabled, sweeper.role!.roleArn, Aws.NO_VALUE),
      ])),
      'The function roles that subscribe, list and unsubscribe (SubscriberPrincipals of ' +
      'infra/snippets/foreign-topic-policy.yaml, when a topic owner admits roles rather than this account)');
    output('TableName', table.ref, 'TASKSUB_TABLE - task records (the client may GetItem to wait for READY)');
    output('TableArn', table.attrArn);
    output('QueuePrefix', prefix, 'TASKSUB_QUEUE_PREFIX - give it to the application container too');
    output('TaskRolePolicyArn', taskRolePolicy.ref, "Managed policy to attach to the application's ECS task role");
    output('TaskQueueDlqArn', taskQueueDlq.queueArn, 'TASKSUB_QUEUE_DLQ_ARN - dead-letter queue of the task queues',
      createQueueDlq);
    output('EventDlqUrl', eventDlq.queueUrl,
      'Dead-lettered ECS events and failed invocations (replay with `tasksub replay`)');
    output('EventDlqArn', eventDlq.queueArn);
    output('OnTaskRunningFunctionName', onTaskRunning.functionName);
    output('OnTaskStoppedFunctionName', onTaskStopped.functionName);
    output('SweeperFunctionName', sweeper.functionName, undefined, sweeperEnabled);
    output('TaskRunningRuleName', runningRule.ref);
    output('TaskStoppedRuleName', stoppedRule.ref);
    output('AlarmsNotifyNobody', 'WARNING - alarms notify nobody (AlarmTopicArn=NONE)',
      'WARNING - AlarmTopicArn is NONE - the DLQ, error, throttle and destination-failure alarms notify nobody. ' +
      'Redeploy with an SNS topic ARN.', noAlarmTopic);
  }
}
