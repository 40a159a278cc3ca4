//! Who this task is and where its queue lives.

use tasksub_core::naming::{QueueName, TaskArn, TaskId};

/// This task, as the metadata endpoint describes it, and the name of its queue (derived with the
/// naming contract the controller uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskIdentity {
    pub(crate) task_arn: String,
    pub(crate) parsed: TaskArn,
    pub(crate) queue_name: QueueName,
}

impl TaskIdentity {
    /// The task ARN, as the metadata endpoint gave it.
    pub fn task_arn(&self) -> &str {
        &self.task_arn
    }
    /// The task ID (the record key).
    pub fn task_id(&self) -> &TaskId {
        &self.parsed.task_id
    }
    /// The cluster name (new ARN format only).
    pub fn cluster(&self) -> Option<&str> {
        self.parsed.cluster.as_deref()
    }
    /// The region of the task.
    pub fn region(&self) -> &str {
        &self.parsed.region
    }
    /// The name of this task's queue: `<prefix><task id>`.
    pub fn queue_name(&self) -> &QueueName {
        &self.queue_name
    }
}

/// This task's queue, found (and READY, when a table is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQueue {
    pub(crate) identity: TaskIdentity,
    pub(crate) url: String,
    pub(crate) confirmed: bool,
    /// The filter policies the record hands to the task (kept current while consuming).
    pub(crate) filters: crate::filter::LiveFilters,
}

impl TaskQueue {
    /// Who this task is.
    pub fn identity(&self) -> &TaskIdentity {
        &self.identity
    }
    /// The queue name.
    pub fn queue_name(&self) -> &QueueName {
        &self.identity.queue_name
    }
    /// The queue URL.
    pub fn queue_url(&self) -> &str {
        &self.url
    }
    /// True when the controller's record said READY, i.e. the queue is subscribed to the topic. False
    /// without a table (`TASKSUB_TABLE`): the queue existing does not mean it is subscribed yet.
    pub fn subscription_confirmed(&self) -> bool {
        self.confirmed
    }
}
