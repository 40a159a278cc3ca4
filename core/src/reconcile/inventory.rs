//! What the sweeper gathered: records, queues under our prefix, ECS tasks, subscriptions, queue tags.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::event::TaskStatus;
use crate::record::Record;

/// One ECS task as DescribeTasks reports it (the fields the sweeper uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTask {
    /// The task ARN.
    pub task_arn: String,
    /// The cluster ARN.
    pub cluster_arn: String,
    /// `service:<name>` or `family:<name>`.
    pub group: Option<String>,
    /// lastStatus.
    pub last_status: TaskStatus,
    /// desiredStatus.
    pub desired_status: TaskStatus,
    /// The task's `version`.
    pub version: Option<u64>,
    /// When the task was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When the task started stopping.
    pub stopping_at: Option<DateTime<Utc>>,
    /// When the task stopped.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A queue under our prefix, as ListQueues returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenQueue {
    /// The queue name.
    pub name: String,
    /// The queue URL.
    pub url: String,
}

/// A subscription on one of our topics, as ListSubscriptionsByTopic returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSubscription {
    /// The subscription ARN.
    pub arn: String,
    /// Its endpoint (a queue ARN for protocol `sqs`).
    pub endpoint: String,
    /// Its protocol (`sqs`, `https`, `lambda`...).
    pub protocol: String,
}

/// What the sweeper reads about a queue that has no record and whose task ECS does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDetails {
    /// `CreatedTimestamp`.
    pub created_at: Option<DateTime<Utc>>,
    /// The queue's tags.
    pub tags: BTreeMap<String, String>,
}

/// Everything the sweeper gathered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Every record of the table.
    pub records: Vec<Record>,
    /// Every queue under the prefix.
    pub queues: Vec<SeenQueue>,
    /// The described tasks of our clusters (desired RUNNING and desired STOPPED).
    pub tasks: Vec<EcsTask>,
    /// IDs of tasks ECS listed but could not describe (a failure other than MISSING): alive, details
    /// unknown, so never touched.
    pub opaque: BTreeSet<String>,
    /// Details of the queues [`needs_details`](super::needs_details) named, by queue name.
    pub details: BTreeMap<String, QueueDetails>,
    /// The topics' subscriptions (every configured topic, and every topic a record names), listed before
    /// the records were read (so a subscription made by a provisioning in flight always finds its claim).
    pub subscriptions: Vec<SeenSubscription>,
    /// The topics whose listing was read to its end: only there does a recorded subscription that is not
    /// listed count as lost.
    pub listed: BTreeSet<String>,
    /// Records that could not be read, by key, with why: reported and left alone (quarantined), never a
    /// reason to stop the sweep.
    pub quarantined: BTreeMap<String, String>,
}

impl SeenSubscription {
    /// The topic ARN of the subscription (from its ARN).
    pub fn topic(&self) -> Option<&str> {
        crate::naming::topic_of_subscription(&self.arn)
    }
}
