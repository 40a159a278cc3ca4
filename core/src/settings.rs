//! Controller settings, parsed once at cold start from an injected environment lookup.
//!
//! Every variable is listed in `docs/contract.md`. A missing or invalid setting is an error that names
//! the variable, so a broken deployment fails at start instead of at the first event.

use std::collections::BTreeMap;

use crate::naming::{Home, QueueNaming, QueuePrefix};

mod env;
mod readers;
mod topics;
pub mod vars;

pub use env::table_name;
use env::{filter_at, filter_policy, home, invalid, scope, stack_name, Env};
pub use readers::Readers;
pub use topics::{Topic, MAX_REPLAY_SECONDS};

/// Why settings could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is absent or empty.
    #[error("missing required setting {0}")]
    Missing(&'static str),
    /// A variable is present but its value is wrong.
    #[error("invalid setting {name}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which clusters and service groups this deployment owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Cluster ARNs or names; an event matches when its `clusterArn` equals one, or ends with `/<name>`.
    pub clusters: Vec<String>,
    /// `group` values (e.g. `service:orders`); empty means every group.
    pub service_groups: Vec<String>,
}

impl Scope {
    /// True when the cluster ARN is one of ours.
    pub fn owns_cluster(&self, cluster_arn: &str) -> bool {
        let name = crate::naming::cluster_name(cluster_arn);
        self.clusters.iter().any(|c| c == cluster_arn || c == name)
    }
    /// True when the group is one of ours (or no groups are configured).
    pub fn owns_group(&self, group: Option<&str>) -> bool {
        self.service_groups.is_empty() || group.is_some_and(|g| self.service_groups.iter().any(|s| s == g))
    }
}

/// How each task queue is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// Name prefix.
    pub prefix: QueuePrefix,
    /// MessageRetentionPeriod in seconds (60..=1209600).
    pub retention_seconds: u32,
    /// VisibilityTimeout in seconds (0..=43200).
    pub visibility_seconds: u32,
    /// Optional DLQ ARN for the queue's RedrivePolicy.
    pub dlq_arn: Option<String>,
    /// maxReceiveCount for the redrive (1..=1000).
    pub max_receive_count: u32,
    /// FIFO queues (`<prefix><task id>.fifo`): the topics are SNS FIFO topics.
    pub fifo: bool,
}

/// How each subscription is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSettings {
    /// SNS RawMessageDelivery.
    pub raw_delivery: bool,
    /// Filter policy JSON, validated as JSON and re-serialised canonically.
    pub filter_policy: Option<String>,
    /// `MessageAttributes` or `MessageBody`.
    pub filter_policy_scope: Option<String>,
    /// Optional DLQ ARN for the subscription's RedrivePolicy.
    pub dlq_arn: Option<String>,
    /// FIFO topics only: replay this many seconds of the topic's archive before the task's record was
    /// created (SNS message archiving and replay), so a new task catches up.
    pub replay_seconds: Option<u32>,
    /// The filter policy is applied by the task (the client or the relay), not by SNS: the subscription
    /// carries none, and the record hands the policy to the task. SNS allows 200 filter policies per
    /// topic; a topic with more filtered tasks than that needs this (`filterPolicyAt: "client"`).
    pub filter_at_client: bool,
}

/// Everything the controller needs, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The topics every task queue subscribes to (at least one, distinct), each with its own
    /// subscription settings.
    pub topics: Vec<Topic>,
    /// The deployment's own partition, region and account: where every task queue lives.
    pub home: Home,
    /// The DynamoDB table of task records.
    pub table: String,
    /// Clusters and groups we own.
    pub scope: Scope,
    /// Queue creation settings.
    pub queue: QueueSettings,
    /// How long GONE tombstones live, in seconds; also the age beyond which a start event is ignored.
    pub tombstone_ttl_seconds: u64,
    /// The deployment (CloudFormation stack name) this controller belongs to, written as the queue tag
    /// `tasksub:stack`; the stack's IAM admits only queues carrying it. Default [`DEFAULT_STACK`].
    pub stack: String,
    /// The settings generation (`TASKSUB_SETTINGS_GENERATION`, 0 when unset): it grows with every deploy
    /// that changes the settings, and a writer of an older generation never undoes a newer one's work
    /// ([`crate::converge::authority`]).
    pub generation: u64,
    /// Who may read task queues' messages: with consumer roles set, each queue's policy admits only the
    /// task's own role session (and the admin roles) to its message actions.
    pub readers: Readers,
}

/// The stack tag value when `TASKSUB_STACK` is not set (local runs and tests; SAM and CDK always set it).
pub const DEFAULT_STACK: &str = "tasksub";
/// Longest `TASKSUB_STACK` (a CloudFormation stack name has at most 128 characters).
pub const MAX_STACK_LEN: usize = 128;

/// The sweeper's own settings (on top of [`Settings`], from the same environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// Minimum age, in seconds, of a stopped task, an unknown task's record or an orphan queue before the
    /// sweeper acts on it: events in flight get that long to do the job first.
    pub grace_seconds: u64,
    /// Minimum interval between two mutating calls of the sweeper, in milliseconds (its rate limit).
    pub min_interval_ms: u64,
    /// Most actions one run executes; the rest are reported as deferred and done by the next run.
    pub max_actions: usize,
    /// How many live tasks in sync one run audits (reads their queue's and subscriptions' attributes and
    /// converges them), in rotation: the backstop for changes nobody reports (an attribute edited by
    /// hand, an older version's late write). A full cycle takes live tasks / this many runs.
    pub audit_per_run: usize,
    /// Most pages (100 subscriptions each) of one topic's listing one run reads; a bigger topic is read
    /// over several runs, each resuming where the last stopped ([`crate::listing`]).
    pub list_pages_per_run: usize,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            grace_seconds: 600,
            min_interval_ms: 100,
            max_actions: 200,
            audit_per_run: 25,
            list_pages_per_run: 100,
        }
    }
}

impl SweepSettings {
    /// Parses the sweeper settings from a lookup; absent variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        use vars::*;
        let env = Env(lookup);
        let d = Self::default();
        Ok(Self {
            grace_seconds: env.number(SWEEP_GRACE_SECONDS, d.grace_seconds, 0..=7 * 86_400)?,
            min_interval_ms: env.number(SWEEP_MIN_INTERVAL_MS, d.min_interval_ms, 0..=60_000)?,
            max_actions: env.number(SWEEP_MAX_ACTIONS, d.max_actions, 1..=100_000)?,
            audit_per_run: env.number(SWEEP_AUDIT_PER_RUN, d.audit_per_run, 0..=100_000)?,
            list_pages_per_run: env.number(SWEEP_LIST_PAGES_PER_RUN, d.list_pages_per_run, 1..=10_000)?,
        })
    }
}

impl Settings {
    /// Parses settings from a lookup (the process environment in binaries, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        use vars::*;
        let env = Env(lookup);
        let defaults = SubscriptionSettings {
            raw_delivery: env.boolean(RAW_DELIVERY, true)?,
            filter_policy: env
                .get(FILTER_POLICY)
                .map(|raw| filter_policy(FILTER_POLICY, &raw))
                .transpose()?,
            filter_policy_scope: env
                .get(FILTER_POLICY_SCOPE)
                .map(|s| scope(FILTER_POLICY_SCOPE, s))
                .transpose()?,
            dlq_arn: env.sqs_arn(SUBSCRIPTION_DLQ_ARN)?,
            replay_seconds: None,
            filter_at_client: env
                .get(FILTER_POLICY_AT)
                .map(|v| filter_at(FILTER_POLICY_AT, v))
                .transpose()?
                .unwrap_or(false),
        };
        let topics = topics::parse(&env, defaults)?;
        let table = table_name(env.required(TABLE)?)?;
        let clusters = env.list(CLUSTERS);
        if clusters.is_empty() {
            return Err(SettingsError::Missing(CLUSTERS));
        }
        let prefix = match env.get(QUEUE_PREFIX) {
            Some(p) => QueuePrefix::new(&p).map_err(invalid(QUEUE_PREFIX))?,
            None => QueuePrefix::default(),
        };
        let home = home(&env)?;
        let readers = readers::parse(&env, &home)?;
        let fifo = topics[0].arn.is_fifo();
        let settings = Self {
            topics,
            home,
            table,
            scope: Scope {
                clusters,
                service_groups: env.list(SERVICE_GROUPS),
            },
            queue: QueueSettings {
                prefix,
                retention_seconds: env.number(QUEUE_RETENTION_SECONDS, 86_400, 60..=1_209_600)?,
                visibility_seconds: env.number(QUEUE_VISIBILITY_SECONDS, 30, 0..=43_200)?,
                dlq_arn: env.sqs_arn(QUEUE_DLQ_ARN)?,
                max_receive_count: env.number(QUEUE_MAX_RECEIVE_COUNT, 5, 1..=1000)?,
                fifo,
            },
            tombstone_ttl_seconds: env.number(TOMBSTONE_TTL_SECONDS, 86_400, 60..=31_536_000)?,
            stack: stack_name(env.get(STACK))?,
            generation: env.number(SETTINGS_GENERATION, 0, 0..=u64::MAX)?,
            readers,
        };
        topics::check_fits(&settings)?;
        Ok(settings)
    }

    /// How task queues are named.
    pub fn naming(&self) -> QueueNaming<'_> {
        QueueNaming {
            prefix: &self.queue.prefix,
            home: &self.home,
            fifo: self.queue.fifo,
        }
    }

    /// The configured topic with this ARN.
    pub fn topic(&self, arn: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.arn.as_str() == arn)
    }

    /// The fingerprint of everything a task's desired state is made from (queue attributes and tags,
    /// every topic with its subscription attributes): two settings with the same fingerprint want the
    /// same queues and subscriptions ([`crate::converge::fingerprint`]).
    pub fn fingerprint(&self) -> String {
        crate::converge::fingerprint(self)
    }

    /// The filter policies tasks apply themselves, per topic ARN (written into each READY record).
    pub fn client_filters(&self) -> BTreeMap<String, crate::record::ClientFilter> {
        self.topics
            .iter()
            .filter_map(|t| Some((t.arn.as_str().to_owned(), crate::record::ClientFilter::of(t)?)))
            .collect()
    }

    /// The configured topic ARNs, in settings order.
    pub fn topic_arns(&self) -> impl Iterator<Item = &str> + '_ {
        self.topics.iter().map(|t| t.arn.as_str())
    }

    /// Parses settings from a map (tests, the CLI's overrides).
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, SettingsError> {
        Self::from_lookup(|k| map.get(k).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        [
            (vars::TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:fanout"),
            (vars::TABLE, "tasksub-records"),
            (
                vars::CLUSTERS,
                "arn:aws:ecs:us-east-1:123456789012:cluster/prod, staging",
            ),
            (vars::ACCOUNT_ID, "123456789012"),
            (vars::AWS_REGION, "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_map(&base()).unwrap();
        assert_eq!(s.queue.prefix.as_str(), "tasksub-");
        assert_eq!(s.queue.retention_seconds, 86_400);
        assert_eq!(s.tombstone_ttl_seconds, 86_400);
        assert!(s.scope.owns_cluster("arn:aws:ecs:us-east-1:123456789012:cluster/prod"));
        assert!(s
            .scope
            .owns_cluster("arn:aws:ecs:us-east-1:123456789012:cluster/staging"));
        assert!(!s.scope.owns_cluster("arn:aws:ecs:us-east-1:123456789012:cluster/other"));
        assert!(s.scope.owns_group(None));
        assert_eq!(s.stack, DEFAULT_STACK);
        assert_eq!(
            s.topic_arns().collect::<Vec<_>>(),
            ["arn:aws:sns:us-east-1:123456789012:fanout"]
        );
        assert!(s.topics[0].subscription.raw_delivery && !s.queue.fifo);
        assert_eq!(
            (s.home.region.as_str(), s.home.account.as_str()),
            ("us-east-1", "123456789012")
        );
        // TASKSUB_REGION wins over AWS_REGION
        let mut env = base();
        env.insert(vars::REGION.into(), "eu-west-1".into());
        assert_eq!(Settings::from_map(&env).unwrap().home.region, "eu-west-1");
        let mut env = base();
        env.insert(vars::STACK.into(), " tasksub-prod ".into());
        assert_eq!(Settings::from_map(&env).unwrap().stack, "tasksub-prod");
    }

    #[test]
    fn every_bad_setting_is_named() {
        let rows: &[(&str, Option<&str>, &str)] = &[
            (vars::TOPIC_ARN, None, "missing required setting TASKSUB_TOPIC_ARNS"),
            (vars::ACCOUNT_ID, None, "missing required setting TASKSUB_ACCOUNT_ID"),
            (
                vars::ACCOUNT_ID,
                Some("1234"),
                "invalid setting TASKSUB_ACCOUNT_ID: not an AWS account ID (12 digits): \"1234\"",
            ),
            (vars::AWS_REGION, None, "missing required setting TASKSUB_REGION"),
            (
                vars::AWS_REGION,
                Some("Mars"),
                "invalid setting AWS_REGION: not an AWS region name",
            ),
            (
                vars::TOPIC_ARN,
                Some("arn:aws:sqs:us-east-1:1:q"),
                "invalid setting TASKSUB_TOPIC_ARN",
            ),
            (vars::TABLE, None, "missing required setting TASKSUB_TABLE"),
            (vars::TABLE, Some("a b"), "invalid setting TASKSUB_TABLE"),
            (vars::CLUSTERS, Some(" , "), "missing required setting TASKSUB_CLUSTERS"),
            (
                vars::QUEUE_PREFIX,
                Some("bad.prefix"),
                "invalid setting TASKSUB_QUEUE_PREFIX",
            ),
            (
                vars::QUEUE_PREFIX,
                Some("orders-"),
                "invalid setting TASKSUB_QUEUE_PREFIX: invalid queue prefix \"orders-\": expected \"tasksub-\"",
            ),
            (
                vars::STACK,
                Some("my stack"),
                "invalid setting TASKSUB_STACK: \"my stack\" is not a stack name",
            ),
            (
                vars::STACK,
                Some(&*"s".repeat(129).leak()),
                "invalid setting TASKSUB_STACK",
            ),
            (
                vars::RAW_DELIVERY,
                Some("maybe"),
                "invalid setting TASKSUB_RAW_DELIVERY",
            ),
            (
                vars::FILTER_POLICY,
                Some("{not json"),
                "invalid setting TASKSUB_FILTER_POLICY",
            ),
            (
                vars::FILTER_POLICY,
                Some("[1]"),
                "invalid setting TASKSUB_FILTER_POLICY",
            ),
            (
                vars::FILTER_POLICY_SCOPE,
                Some("Body"),
                "invalid setting TASKSUB_FILTER_POLICY_SCOPE",
            ),
            (
                vars::QUEUE_DLQ_ARN,
                Some("arn:aws:sns:x:1:t"),
                "invalid setting TASKSUB_QUEUE_DLQ_ARN",
            ),
            (
                vars::QUEUE_RETENTION_SECONDS,
                Some("10"),
                "invalid setting TASKSUB_QUEUE_RETENTION_SECONDS",
            ),
            (
                vars::QUEUE_VISIBILITY_SECONDS,
                Some("x"),
                "invalid setting TASKSUB_QUEUE_VISIBILITY_SECONDS",
            ),
            (
                vars::TOMBSTONE_TTL_SECONDS,
                Some("0"),
                "invalid setting TASKSUB_TOMBSTONE_TTL_SECONDS",
            ),
        ];
        for (name, value, expected) in rows {
            let mut env = base();
            match value {
                Some(v) => env.insert((*name).to_owned(), (*v).to_owned()),
                None => env.remove(*name),
            };
            let err = Settings::from_map(&env).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{name}={value:?}: got {err:?}");
        }
    }

    #[test]
    fn sweep_settings_default_and_validate() {
        let none = |_: &str| None;
        assert_eq!(SweepSettings::from_lookup(none).unwrap(), SweepSettings::default());
        let env = |k: &str| match k {
            vars::SWEEP_GRACE_SECONDS => Some("0".to_owned()),
            vars::SWEEP_MIN_INTERVAL_MS => Some(" 250 ".to_owned()),
            vars::SWEEP_MAX_ACTIONS => Some("7".to_owned()),
            _ => None,
        };
        let s = SweepSettings::from_lookup(env).unwrap();
        assert_eq!((s.grace_seconds, s.min_interval_ms, s.max_actions), (0, 250, 7));
        for (name, value) in [
            (vars::SWEEP_GRACE_SECONDS, "-1"),
            (vars::SWEEP_GRACE_SECONDS, "ten"),
            (vars::SWEEP_MIN_INTERVAL_MS, "60001"),
            (vars::SWEEP_MAX_ACTIONS, "0"),
        ] {
            let err = SweepSettings::from_lookup(|k| (k == name).then(|| value.to_owned())).unwrap_err();
            assert!(err.to_string().starts_with(&format!("invalid setting {name}")), "{err}");
        }
    }

    #[test]
    fn groups_scope_events() {
        let mut env = base();
        env.insert(vars::SERVICE_GROUPS.into(), "service:orders,service:billing".into());
        let s = Settings::from_map(&env).unwrap();
        assert!(s.scope.owns_group(Some("service:orders")));
        assert!(!s.scope.owns_group(Some("service:other")));
        assert!(!s.scope.owns_group(None));
    }
}
