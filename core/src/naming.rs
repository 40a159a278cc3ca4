//! The naming contract: one function per hop, used by the controller, the sweeper and the client.
//!
//! ```text
//! arn:aws:ecs:us-east-1:123456789012:task/my-cluster/0123456789abcdef0123456789abcdef   (new format)
//! arn:aws:ecs:us-east-1:123456789012:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef          (old format)
//!   → task ID → queue name `<prefix><task id>` (`.fifo` appended for FIFO topics)
//!   → queue ARN in the deployment's own account and region ([`Home`], derived, no lookup)
//!   → record key (task ID)
//! ```
//! Topics may live in any account and region: a queue's ARN never comes from a topic.
//!
//! ARN parsing (task, topic, subscription, cluster) lives in `arn`; the names derived from it live here.

use std::fmt;

mod arn;

use arn::split_arn;
pub use arn::{cluster_name, region_of_arn, task_id_of, topic_of_subscription, TaskArn, TopicArn};

/// Longest queue name SQS accepts.
pub const MAX_QUEUE_NAME_LEN: usize = 80;
/// Longest task ID we accept: old-format IDs are 36-char UUIDs (new-format IDs are 32 hex chars).
pub const MAX_TASK_ID_LEN: usize = 36;
/// Default queue name prefix.
pub const DEFAULT_PREFIX: &str = "tasksub-";
/// Every queue prefix starts with this word followed by `-` or `_`, so a prefix can never be a common word
/// that other queues of the account start with (`orders`, `prod`...).
pub const PREFIX_STEM: &str = "tasksub";

/// Why a name could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// The string is not an ECS task ARN.
    #[error("not an ECS task ARN: {0:?}")]
    NotATaskArn(String),
    /// The string is not an SNS topic ARN.
    #[error("not an SNS topic ARN: {0:?}")]
    NotATopicArn(String),
    /// An SNS topic ARN whose partition, region, account or name AWS would refuse.
    #[error("invalid SNS topic ARN {arn:?}: {reason}")]
    BadTopicArn {
        /// The ARN as given.
        arn: String,
        /// Which part is wrong, and how.
        reason: String,
    },
    /// The task ID is in neither of ECS's formats.
    #[error(
        "invalid task ID {0:?}: expected ECS's format, 32 lowercase hex characters, or a lowercase UUID \
         (8-4-4-4-12 hex, old-format ARNs)"
    )]
    InvalidTaskId(String),
    /// The prefix does not start with `tasksub-`/`tasksub_`, is too long or has characters SQS refuses.
    #[error(
        "invalid queue prefix {0:?}: expected \"tasksub-\" or \"tasksub_\" followed by at most 39 chars of \
         [A-Za-z0-9_-] (47 in all)"
    )]
    InvalidPrefix(String),
    /// Prefix plus task ID exceed 80 characters.
    #[error("queue name {0:?} is longer than 80 characters")]
    TooLong(String),
    /// Not a 12-digit AWS account ID.
    #[error("not an AWS account ID (12 digits): {0:?}")]
    NotAnAccount(String),
    /// Not a region name.
    #[error("not an AWS region name: {0:?}")]
    NotARegion(String),
}

/// Suffix of every FIFO queue name (and FIFO topic name).
pub const FIFO_SUFFIX: &str = ".fifo";

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// An ECS task ID, validated to be usable inside an SQS queue name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(String);

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TaskId {
    /// Validates a bare task ID: ECS's 32 lowercase hex characters, or a lowercase UUID (`8-4-4-4-12`, the
    /// old ARN format, also what moto generates). Anything else is refused, so a queue name under the prefix
    /// is a task's queue only if its suffix is a real task ID.
    pub fn new(id: &str) -> Result<Self, NamingError> {
        let hex32 = id.len() == 32 && is_lower_hex(id);
        let uuid = id.len() == MAX_TASK_ID_LEN
            && id.split('-').map(str::len).eq([8, 4, 4, 4, 12])
            && is_lower_hex(&id.replace('-', ""));
        if !(hex32 || uuid) {
            return Err(NamingError::InvalidTaskId(id.to_owned()));
        }
        Ok(Self(id.to_owned()))
    }
    /// The ID as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where this deployment lives: the partition, region and account of every task queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// The deployment's region.
    pub region: String,
    /// The deployment's account.
    pub account: String,
}

impl Home {
    /// Validates a region and a 12-digit account; the partition follows from the region.
    pub fn new(region: &str, account: &str) -> Result<Self, NamingError> {
        if !is_account(account) {
            return Err(NamingError::NotAnAccount(account.to_owned()));
        }
        if !is_region(region) {
            return Err(NamingError::NotARegion(region.to_owned()));
        }
        Ok(Self {
            partition: partition_of(region).to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
    }
}

/// True for a 12-digit AWS account ID.
pub fn is_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// True for something shaped like an AWS region name (`us-east-1`, `cn-north-1`, `us-gov-west-1`):
/// lowercase letters, digits and dashes, at least one dash, at most 32 characters.
pub fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// The partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// How task queues are named: the prefix, where they live, and whether they are FIFO.
#[derive(Debug, Clone, Copy)]
pub struct QueueNaming<'a> {
    /// The name prefix.
    pub prefix: &'a QueuePrefix,
    /// The deployment's partition, region and account.
    pub home: &'a Home,
    /// FIFO queues (`.fifo` names) for FIFO topics.
    pub fifo: bool,
}

/// A validated queue name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePrefix(String);

impl QueuePrefix {
    /// Validates a prefix: `tasksub-` or `tasksub_` ([`PREFIX_STEM`] and a separator), then `[A-Za-z0-9_-]`,
    /// 47 chars at most, which leaves room for a 32-char task ID (old-format 36-char IDs fit with prefixes
    /// up to 44 chars). The stem keeps the prefix from being a common word that other queues start with.
    pub fn new(p: &str) -> Result<Self, NamingError> {
        let stemmed = p
            .strip_prefix(PREFIX_STEM)
            .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('_'));
        if !stemmed || p.len() > MAX_QUEUE_NAME_LEN - 33 || !p.chars().all(is_name_char) {
            return Err(NamingError::InvalidPrefix(p.to_owned()));
        }
        Ok(Self(p.to_owned()))
    }
    /// The prefix as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for QueuePrefix {
    fn default() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }
}

/// The name of a task's queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueName(String);

impl QueueName {
    /// `<prefix><task id>` (with `.fifo` appended for a FIFO queue), at most 80 characters.
    pub fn for_task(prefix: &QueuePrefix, task: &TaskId, fifo: bool) -> Result<Self, NamingError> {
        let suffix = if fifo { FIFO_SUFFIX } else { "" };
        let name = format!("{}{}{suffix}", prefix.0, task.0);
        if name.len() > MAX_QUEUE_NAME_LEN {
            return Err(NamingError::TooLong(name));
        }
        Ok(Self(name))
    }
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The task ID this queue belongs to, if the name carries the prefix (FIFO names too).
    pub fn task_id(&self, prefix: &QueuePrefix) -> Option<TaskId> {
        let rest = self.0.strip_prefix(prefix.as_str())?;
        let id = rest.strip_suffix(FIFO_SUFFIX).unwrap_or(rest);
        TaskId::new(id).ok()
    }
    /// True for a FIFO queue name.
    pub fn is_fifo(&self) -> bool {
        self.0.ends_with(FIFO_SUFFIX)
    }
    /// Wraps an existing queue name (e.g. from ListQueues) without prefix checks.
    pub fn from_existing(name: &str) -> Self {
        Self(name.to_owned())
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The queue ARN, derived without any lookup from the deployment's home:
/// `arn:<partition>:sqs:<region>:<account>:<name>`.
pub fn queue_arn(home: &Home, name: &QueueName) -> String {
    format!("arn:{}:sqs:{}:{}:{}", home.partition, home.region, home.account, name.0)
}

fn is_queue_name(name: &str) -> bool {
    let stem = name.strip_suffix(FIFO_SUFFIX).unwrap_or(name);
    !stem.is_empty() && stem.chars().all(is_name_char)
}

/// The queue name from a queue URL (its last path segment).
pub fn queue_name_from_url(url: &str) -> Option<QueueName> {
    let last = url.trim_end_matches('/').rsplit('/').next()?;
    is_queue_name(last).then(|| QueueName(last.to_owned()))
}

/// The queue name of an SQS queue ARN (`arn:<partition>:sqs:<region>:<account>:<name>`); `None` for
/// anything else.
pub fn queue_name_from_arn(arn: &str) -> Option<QueueName> {
    let p = split_arn(arn).filter(|p| p.service == "sqs")?;
    is_queue_name(p.resource).then(|| QueueName(p.resource.to_owned()))
}

/// Everything derived from one task ARN, in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNames {
    /// The parsed task ARN.
    pub task: TaskArn,
    /// The task's queue name.
    pub queue_name: QueueName,
    /// The task's queue ARN.
    pub queue_arn: String,
}

impl TaskNames {
    /// Derives every name from a task ARN string.
    pub fn derive(task_arn: &str, naming: QueueNaming<'_>) -> Result<Self, NamingError> {
        let task = TaskArn::parse(task_arn)?;
        let queue_name = QueueName::for_task(naming.prefix, &task.task_id, naming.fifo)?;
        let queue_arn = queue_arn(naming.home, &queue_name);
        Ok(Self {
            task,
            queue_name,
            queue_arn,
        })
    }
    /// The record key (the task ID).
    pub fn record_key(&self) -> &str {
        self.task.task_id.as_str()
    }
}

#[cfg(test)]
mod tests;
