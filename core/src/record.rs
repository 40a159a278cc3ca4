//! The per-task record: what exists for a task, and how far its lifecycle has gone.
//!
//! ```text
//! PROVISIONING ──▶ READY ──▶ DRAINING ──▶ GONE (tombstone, expires)
//!      │             └──────────────────────▲
//!      └────────────────────────────────────┘
//! ```
//! Every write is conditional on the record's `revision`: a writer names the revision it read (or
//! "absent") and stores `revision + 1`. A write therefore proves it saw the latest write, including
//! every field it relies on (the subscription ARNs above all), not only the state; two invocations
//! racing on one task cannot both win, and the loser learns exactly what it lost to.
//!
//! Invariants (checked at quiescence by the interleaving explorer, `tests/tests/explore.rs`, over the
//! real executor, handler and sweeper on the fake, with other actors moving too: a deploy that changes
//! the topics, their attributes and the settings generation mid-schedule, topic owners who revoke and
//! restore access, people who delete a subscription or the queue or edit an attribute by hand, and an
//! older version of the functions running beside the new one). From the events alone, when no
//! invocation dies or fails and nobody else moves, every subscription invariant holds; the one thing a
//! rare interleaving may leave is an empty, unsubscribed queue of a stopped task (a provisioner that
//! lost to a READY record a teardown was about to tombstone re-created the queue after the teardown
//! deleted it, past SQS's 60 s block). Anything else (a crash, a lost answer, a hand edit, a settings
//! change, an older writer) is repaired by the sweeper's next pass, so the explorer checks every
//! schedule again after one sweep under the final settings:
//! 1. Nothing of ours without a live record naming it: a subscription of ours exists only while a
//!    `READY` record names its ARN, or while a writer that wrote the topic into `pendingTopics` before
//!    subscribing is still in flight; a queue of ours exists only while its record is `PROVISIONING`,
//!    `READY` or `DRAINING`. A tombstone keeps `watchTopics`, so a subscription an unanswered Subscribe
//!    created is found even after its topic left the settings.
//! 2. `GONE` is final: no write moves a record out of `GONE` (only the TTL removes it).
//! 3. A live task is never left deaf: a task that was never stopped ends `READY`, with its queue in its
//!    desired state (the settings' attributes and policy) and, for every configured topic, either exactly
//!    one subscription, the one its record names, with the desired attributes, or, when the topic refuses
//!    it (access denied, a quota, a deleted topic), the refusal recorded in `refusedTopics` and no
//!    subscription. A topic that left the settings keeps no subscription of a live task.
//! 4. `DRAINING` ⇒ no subscription; `GONE` ⇒ neither queue nor subscription.
//! 5. A writer that loses a race undoes what it created and only that (a subscription ARN the current
//!    record names is never undone), unless the winner's record is stale and its settings want what the
//!    loser made, in which case it decides again and adopts it.
//! 6. Generations only move forward: a writer whose settings generation is older than the record's never
//!    provisions or converges the task (an older deployment never reverts a newer one's subscriptions or
//!    attributes); it may still tear a stopped task down.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Lifecycle state of a task's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Claimed: the queue and subscriptions may or may not exist yet.
    Provisioning,
    /// Queue and subscriptions exist and are recorded.
    Ready,
    /// Unsubscribed (stop initiated); the queue may still hold messages for the draining container.
    Draining,
    /// Everything deleted; the record is a tombstone until it expires.
    Gone,
}

impl State {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Ready => "READY",
            Self::Draining => "DRAINING",
            Self::Gone => "GONE",
        }
    }
    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Provisioning, Self::Ready, Self::Draining, Self::Gone]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
    /// DRAINING and GONE are tombstones: a late start event must not resurrect the task.
    pub fn is_tombstone(self) -> bool {
        matches!(self, Self::Draining | Self::Gone)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Attribute names of the DynamoDB item (shared with the client crate, which reads `state`).
pub mod attr {
    /// Partition key.
    pub const TASK_ID: &str = "taskId";
    /// Task ARN.
    pub const TASK_ARN: &str = "taskArn";
    /// Cluster ARN.
    pub const CLUSTER_ARN: &str = "clusterArn";
    /// Task group.
    pub const GROUP: &str = "group";
    /// Queue name.
    pub const QUEUE_NAME: &str = "queueName";
    /// Queue ARN.
    pub const QUEUE_ARN: &str = "queueArn";
    /// Queue URL.
    pub const QUEUE_URL: &str = "queueUrl";
    /// Every subscription, a map of topic ARN to subscription ARN.
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    /// Topic ARN of a record written before several topics existed (read, never written).
    pub const TOPIC_ARN: &str = "topicArn";
    /// Subscription ARN of a record written before several topics existed (read, never written).
    pub const SUBSCRIPTION_ARN: &str = "subscriptionArn";
    /// State.
    pub const STATE: &str = "state";
    /// Highest `detail.version` applied.
    pub const VERSION: &str = "version";
    /// When the record was created.
    pub const CREATED_AT: &str = "createdAt";
    /// When the record last changed.
    pub const UPDATED_AT: &str = "updatedAt";
    /// TTL attribute (epoch seconds).
    pub const EXPIRES_AT: &str = "expiresAt";
    /// Write counter: every conditional write expects the revision it read and stores the next one.
    pub const REVISION: &str = "revision";
    /// Topics whose subscription may exist without its ARN recorded (written before any Subscribe).
    pub const PENDING: &str = "pendingTopics";
    /// Topics whose Subscribe is refused for good: a map of topic ARN to the refusal.
    pub const REFUSED: &str = "refusedTopics";
    /// The settings generation that last converged the record.
    pub const GENERATION: &str = "generation";
    /// The fingerprint of the settings that last converged the record.
    pub const SETTINGS_HASH: &str = "settingsHash";
    /// On a tombstone: every topic the task ever named, whose listing the sweeper keeps reading.
    pub const WATCH: &str = "watchTopics";
    /// The filter policies the task applies itself: a JSON string of topic ARN → {`policy`, `scope`, `raw`}.
    pub const CLIENT_FILTERS: &str = "clientFilters";
}

/// A filter policy the task applies itself (`filterPolicyAt: "client"`): its subscription carries none.
/// Written by MarkReady from the settings, read by the client and the relay with the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientFilter {
    /// The filter policy JSON, as configured (canonical).
    pub policy: String,
    /// `MessageAttributes` or `MessageBody`.
    pub scope: String,
    /// The topic delivers raw messages (no envelope names the topic): it is the only raw-delivery topic.
    pub raw: bool,
}

impl ClientFilter {
    /// The filter the task applies for `topic`, if the settings say the task applies it.
    pub fn of(topic: &crate::settings::Topic) -> Option<Self> {
        let s = &topic.subscription;
        let policy = s.filter_policy.as_ref().filter(|_| s.filter_at_client)?;
        Some(Self {
            policy: policy.clone(),
            scope: s
                .filter_policy_scope
                .clone()
                .unwrap_or_else(|| "MessageAttributes".to_owned()),
            raw: s.raw_delivery,
        })
    }
}

/// Why a topic refuses this task's subscription, since when, and how often it was tried: kept per topic
/// in the record (like a Kubernetes condition), shown by `tasksub show` and `doctor`, retried by sweeps
/// with backoff ([`crate::converge::retry_due`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// The error kind (`access-denied`, `quota`, `invalid`, `not-found`...).
    pub kind: String,
    /// The service's message (never a credential or a body).
    pub message: String,
    /// First refusal.
    pub since: DateTime<Utc>,
    /// Last attempt.
    pub last_at: DateTime<Utc>,
    /// Attempts refused so far (1 after the first).
    pub attempts: u32,
}

/// One task's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Key: the task ID.
    pub task_id: String,
    /// The task ARN.
    pub task_arn: String,
    /// The cluster ARN.
    pub cluster_arn: String,
    /// The task's group, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The queue name (derived).
    pub queue_name: String,
    /// The queue ARN (derived).
    pub queue_arn: String,
    /// The queue URL, once CreateQueue returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    /// The subscriptions, topic ARN → subscription ARN, as Subscribe returned them (one per topic).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subscriptions: BTreeMap<String, String>,
    /// The lifecycle state.
    pub state: State,
    /// Highest `detail.version` applied (0 when the events carried none).
    pub version: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Expiry of a tombstone, epoch seconds (DynamoDB TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// How many writes the record has seen (1 after the claim). Records written before revisions
    /// existed read as 0.
    #[serde(default)]
    pub revision: u64,
    /// Topics whose subscription may exist although its ARN is not recorded: every topic is written here
    /// before its first Subscribe (the claim, or a `record-intent` write), so nothing tasksub creates is
    /// ever unnamed; a topic leaves when its ARN is recorded or its subscription is proven absent.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending: BTreeSet<String>,
    /// Topics whose Subscribe is refused for good (access denied, a quota, an invalid request, a deleted
    /// topic): the task is READY on the others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<String, Refusal>,
    /// The settings generation (`TASKSUB_SETTINGS_GENERATION`) that last converged the record (0: none).
    #[serde(default)]
    pub generation: u64,
    /// The fingerprint of the settings that last converged the record ([`crate::settings::Settings::fingerprint`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_hash: Option<String>,
    /// On a DRAINING or GONE tombstone: every topic the task's record ever named. A writer that crashed or
    /// lost an answer after subscribing may have left a subscription no record names; the sweeper keeps
    /// listing these topics (even after they leave the settings) until the tombstone expires, so it finds
    /// and removes it.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub watch: BTreeSet<String>,
    /// The filter policies the task applies itself, per topic (set by MarkReady from the settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub client_filters: BTreeMap<String, ClientFilter>,
}

impl Record {
    /// True when the record names this subscription ARN (for any topic).
    pub fn names(&self, subscription_arn: &str) -> bool {
        self.subscriptions.values().any(|a| a == subscription_arn)
    }
    /// True when a subscription of this task to `topic` may exist: its ARN is recorded, or it is pending.
    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.subscriptions.contains_key(topic) || self.pending.contains(topic)
    }
    /// Every topic the record names: subscribed, pending or refused.
    pub fn topics(&self) -> BTreeSet<&str> {
        let subscribed = self.subscriptions.keys().map(String::as_str);
        let others = self.pending.iter().chain(self.refused.keys()).map(String::as_str);
        subscribed.chain(others).collect()
    }
    /// Every topic whose subscriptions the sweeper must look at for this task: the ones named, and a
    /// tombstone's watched ones.
    pub fn listed_topics(&self) -> BTreeSet<&str> {
        let mut t = self.topics();
        t.extend(self.watch.iter().map(String::as_str));
        t
    }
}
