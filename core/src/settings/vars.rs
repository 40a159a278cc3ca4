//! Setting names, as environment variables.

/// One SNS topic ARN (a list of one; kept for single-topic deployments).
pub const TOPIC_ARN: &str = "TASKSUB_TOPIC_ARN";
/// Comma-separated SNS topic ARNs, in any account and region.
pub const TOPIC_ARNS: &str = "TASKSUB_TOPIC_ARNS";
/// Per-topic subscription settings: a JSON object keyed by topic name (or ARN).
pub const TOPIC_SETTINGS: &str = "TASKSUB_TOPIC_SETTINGS";
/// The deployment's account ID (12 digits): task queues live there.
pub const ACCOUNT_ID: &str = "TASKSUB_ACCOUNT_ID";
/// The deployment's region; `AWS_REGION` (set by Lambda) when absent.
pub const REGION: &str = "TASKSUB_REGION";
/// The region Lambda and the SDK set.
pub const AWS_REGION: &str = "AWS_REGION";
/// DynamoDB table name.
pub const TABLE: &str = "TASKSUB_TABLE";
/// Comma-separated cluster ARNs or names.
pub const CLUSTERS: &str = "TASKSUB_CLUSTERS";
/// Comma-separated service groups.
pub const SERVICE_GROUPS: &str = "TASKSUB_SERVICE_GROUPS";
/// Queue name prefix.
pub const QUEUE_PREFIX: &str = "TASKSUB_QUEUE_PREFIX";
/// RawMessageDelivery.
pub const RAW_DELIVERY: &str = "TASKSUB_RAW_DELIVERY";
/// Filter policy JSON.
pub const FILTER_POLICY: &str = "TASKSUB_FILTER_POLICY";
/// Filter policy scope.
pub const FILTER_POLICY_SCOPE: &str = "TASKSUB_FILTER_POLICY_SCOPE";
/// Where filter policies are applied: `subscription` (by SNS; default) or `client` (by the task, past
/// SNS's 200 filter policies per topic); `filterPolicyAt` in `TASKSUB_TOPIC_SETTINGS` overrides it per topic.
pub const FILTER_POLICY_AT: &str = "TASKSUB_FILTER_POLICY_AT";
/// Subscription DLQ ARN.
pub const SUBSCRIPTION_DLQ_ARN: &str = "TASKSUB_SUBSCRIPTION_DLQ_ARN";
/// Queue DLQ ARN.
pub const QUEUE_DLQ_ARN: &str = "TASKSUB_QUEUE_DLQ_ARN";
/// Queue redrive maxReceiveCount.
pub const QUEUE_MAX_RECEIVE_COUNT: &str = "TASKSUB_QUEUE_MAX_RECEIVE_COUNT";
/// Queue retention.
pub const QUEUE_RETENTION_SECONDS: &str = "TASKSUB_QUEUE_RETENTION_SECONDS";
/// Queue visibility timeout.
pub const QUEUE_VISIBILITY_SECONDS: &str = "TASKSUB_QUEUE_VISIBILITY_SECONDS";
/// Tombstone TTL.
pub const TOMBSTONE_TTL_SECONDS: &str = "TASKSUB_TOMBSTONE_TTL_SECONDS";
/// The settings generation: a number that grows with every deploy that changes the settings (the
/// templates set it); a writer of an older generation never undoes a newer one's work.
pub const SETTINGS_GENERATION: &str = "TASKSUB_SETTINGS_GENERATION";
/// The stack (deployment) name, the value of every queue's `tasksub:stack` tag.
pub const STACK: &str = "TASKSUB_STACK";
/// Sweeper: minimum age before it touches a record, queue or task.
pub const SWEEP_GRACE_SECONDS: &str = "TASKSUB_SWEEP_GRACE_SECONDS";
/// Sweeper: minimum interval between two of its mutating calls.
pub const SWEEP_MIN_INTERVAL_MS: &str = "TASKSUB_SWEEP_MIN_INTERVAL_MS";
/// Sweeper: most actions one run executes (the rest wait for the next run).
pub const SWEEP_MAX_ACTIONS: &str = "TASKSUB_SWEEP_MAX_ACTIONS";
/// Sweeper: how many live tasks in sync one run audits (reads and converges their attributes).
pub const SWEEP_AUDIT_PER_RUN: &str = "TASKSUB_SWEEP_AUDIT_PER_RUN";
/// Sweeper: most pages of one topic's subscription listing one run reads (the next run resumes there).
pub const SWEEP_LIST_PAGES_PER_RUN: &str = "TASKSUB_SWEEP_LIST_PAGES_PER_RUN";
/// Task queue isolation: the IAM role ARNs of the ECS tasks that consume (comma-separated). Set, each task
/// queue's policy denies its message actions to every principal but the task's own session of these roles
/// (and the admin roles); empty, isolation is off.
pub const CONSUMER_ROLE_ARNS: &str = "TASKSUB_CONSUMER_ROLE_ARNS";
/// Task queue isolation: IAM role ARNs exempt from it (operators who inspect or purge task queues).
pub const QUEUE_ADMIN_ROLE_ARNS: &str = "TASKSUB_QUEUE_ADMIN_ROLE_ARNS";
