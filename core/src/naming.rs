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

use std::fmt;

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

/// A parsed ECS task ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskArn {
    /// `aws`, `aws-cn`, `aws-us-gov`...
    pub partition: String,
    /// Region of the task.
    pub region: String,
    /// Account that owns the task.
    pub account: String,
    /// Cluster name, present only in the new ARN format.
    pub cluster: Option<String>,
    /// The task ID, the last path segment.
    pub task_id: TaskId,
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

struct ArnParts<'a> {
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn split_arn(s: &str) -> Option<ArnParts<'_>> {
    let mut it = s.splitn(6, ':');
    if it.next()? != "arn" {
        return None;
    }
    let parts = ArnParts {
        partition: it.next()?,
        service: it.next()?,
        region: it.next()?,
        account: it.next()?,
        resource: it.next()?,
    };
    let ok = !parts.partition.is_empty() && !parts.region.is_empty() && !parts.account.is_empty();
    ok.then_some(parts)
}

impl TaskArn {
    /// Parses both the new (`task/<cluster>/<id>`) and the old (`task/<id>`) formats.
    pub fn parse(s: &str) -> Result<Self, NamingError> {
        let bad = || NamingError::NotATaskArn(s.to_owned());
        let p = split_arn(s).filter(|p| p.service == "ecs").ok_or_else(bad)?;
        let segs: Vec<&str> = p.resource.split('/').collect();
        let (cluster, id) = match segs.as_slice() {
            ["task", id] => (None, *id),
            ["task", cluster, id] if !cluster.is_empty() => (Some((*cluster).to_owned()), *id),
            _ => return Err(bad()),
        };
        Ok(Self {
            partition: p.partition.to_owned(),
            region: p.region.to_owned(),
            account: p.account.to_owned(),
            cluster,
            task_id: TaskId::new(id)?,
        })
    }
}

/// A parsed SNS topic ARN. Topics may be in any account and region (Subscribe goes to the topic's region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicArn {
    /// Partition of the topic.
    pub partition: String,
    /// Region of the topic.
    pub region: String,
    /// Account of the topic.
    pub account: String,
    /// Topic name.
    pub name: String,
    arn: String,
}

impl TopicArn {
    /// Parses `arn:<partition>:sns:<region>:<account>:<name>`.
    pub fn parse(s: &str) -> Result<Self, NamingError> {
        let bad = || NamingError::NotATopicArn(s.to_owned());
        let p = split_arn(s).filter(|p| p.service == "sns").ok_or_else(bad)?;
        if p.resource.is_empty() || p.resource.contains(':') {
            return Err(bad());
        }
        Ok(Self {
            partition: p.partition.to_owned(),
            region: p.region.to_owned(),
            account: p.account.to_owned(),
            name: p.resource.to_owned(),
            arn: s.to_owned(),
        })
    }
    /// The full ARN.
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    /// True for an SNS FIFO topic (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(FIFO_SUFFIX)
    }
}

/// The topic ARN of a subscription ARN (`<topic ARN>:<subscription id>`), when it is one.
pub fn topic_of_subscription(subscription_arn: &str) -> Option<&str> {
    let (topic, id) = subscription_arn.rsplit_once(':')?;
    (!id.is_empty() && TopicArn::parse(topic).is_ok()).then_some(topic)
}

/// The region of any ARN (`arn:<partition>:<service>:<region>:...`).
pub fn region_of_arn(arn: &str) -> Option<&str> {
    split_arn(arn).map(|p| p.region)
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
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NamingError::NotAnAccount(account.to_owned()));
        }
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region.contains('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(NamingError::NotARegion(region.to_owned()));
        }
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else if region.starts_with("us-iso-") {
            "aws-iso"
        } else if region.starts_with("us-isob-") {
            "aws-iso-b"
        } else {
            "aws"
        };
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        })
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

impl fmt::Display for TopicArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
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

/// A cluster's name from its ARN (`arn:...:cluster/<name>`), or the argument itself when it is a name.
pub fn cluster_name(arn_or_name: &str) -> &str {
    match split_arn(arn_or_name) {
        Some(p) if p.service == "ecs" => p.resource.strip_prefix("cluster/").unwrap_or(p.resource),
        _ => arn_or_name,
    }
}

/// The task ID of a task ARN as a slice of it, when the ARN is valid (both formats).
pub fn task_id_of(task_arn: &str) -> Option<&str> {
    let id = TaskArn::parse(task_arn).ok()?.task_id;
    task_arn.get(task_arn.len() - id.as_str().len()..)
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
mod tests {
    use super::*;

    fn topic() -> TopicArn {
        TopicArn::parse("arn:aws:sns:us-east-1:123456789012:fanout").unwrap()
    }

    fn home() -> Home {
        Home::new("us-east-1", "123456789012").unwrap()
    }

    #[test]
    fn both_arn_formats_give_the_task_id() {
        let rows = [
            (
                "arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad",
                Some("FargateCluster"),
                "c13b4cb40f1f4fe4a2971f76ae5a47ad",
            ),
            (
                "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
                None,
                "b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
            ),
            (
                "arn:aws-cn:ecs:cn-north-1:111122223333:task/c/0123456789abcdef0123456789abcdef",
                Some("c"),
                "0123456789abcdef0123456789abcdef",
            ),
        ];
        for (arn, cluster, id) in rows {
            let t = TaskArn::parse(arn).unwrap();
            assert_eq!(t.cluster.as_deref(), cluster, "{arn}");
            assert_eq!(t.task_id.as_str(), id, "{arn}");
        }
    }

    #[test]
    fn bad_task_arns_are_refused() {
        for arn in [
            "",
            "c13b4cb40f1f4fe4a2971f76ae5a47ad",
            "arn:aws:sqs:us-east-1:1:task/x",
            "arn:aws:ecs:us-east-1:1:container/x",
            "arn:aws:ecs:us-east-1:1:task/",
            "arn:aws:ecs:us-east-1:1:task/c/id.with.dots",
            "arn:aws:ecs:us-east-1:1:task/a/b/c",
            "arn:aws:ecs::1:task/c/x",
            "arn:aws:ecs:us-east-1:1:task/c/0123",
            "arn:aws:ecs:us-east-1:1:task/c/billing",
            // a valid task ID, but an ARN without partition, region or account
            "arn::ecs:us-east-1:1:task/c/0123456789abcdef0123456789abcdef",
            "arn:aws:ecs::1:task/c/0123456789abcdef0123456789abcdef",
            "arn:aws:ecs:us-east-1::task/c/0123456789abcdef0123456789abcdef",
        ] {
            assert!(TaskArn::parse(arn).is_err(), "{arn:?} should be refused");
        }
    }

    #[test]
    fn queue_name_and_arn_are_derived() {
        let task = "arn:aws:ecs:us-east-1:123456789012:task/c/c13b4cb40f1f4fe4a2971f76ae5a47ad";
        let (prefix, home) = (QueuePrefix::default(), home());
        let naming = |fifo| QueueNaming {
            prefix: &prefix,
            home: &home,
            fifo,
        };
        let names = TaskNames::derive(task, naming(false)).unwrap();
        assert_eq!(names.queue_name.as_str(), "tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad");
        assert_eq!(
            names.queue_arn,
            "arn:aws:sqs:us-east-1:123456789012:tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad"
        );
        assert_eq!(names.record_key(), "c13b4cb40f1f4fe4a2971f76ae5a47ad");
        assert_eq!(
            names.queue_name.task_id(&QueuePrefix::default()).unwrap().as_str(),
            "c13b4cb40f1f4fe4a2971f76ae5a47ad"
        );
        assert!(!names.queue_name.is_fifo());
        // FIFO: the same name with `.fifo`, and the task ID still comes back from it
        let fifo = TaskNames::derive(task, naming(true)).unwrap();
        assert_eq!(
            fifo.queue_name.as_str(),
            "tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad.fifo"
        );
        assert_eq!(
            fifo.queue_arn,
            "arn:aws:sqs:us-east-1:123456789012:tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad.fifo"
        );
        assert!(fifo.queue_name.is_fifo());
        assert_eq!(
            fifo.queue_name.task_id(&prefix).unwrap().as_str(),
            "c13b4cb40f1f4fe4a2971f76ae5a47ad"
        );
        assert_eq!(queue_name_from_arn(&fifo.queue_arn), Some(fifo.queue_name.clone()));
        assert_eq!(
            queue_name_from_url("https://sqs.us-east-1.amazonaws.com/1/tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad.fifo"),
            Some(fifo.queue_name)
        );
        // the queue lives at home, wherever the task's ARN says it runs
        let elsewhere = "arn:aws:ecs:eu-west-1:999999999999:task/c/c13b4cb40f1f4fe4a2971f76ae5a47ad";
        let names = TaskNames::derive(elsewhere, naming(false)).unwrap();
        assert!(names.queue_arn.starts_with("arn:aws:sqs:us-east-1:123456789012:"));
    }

    #[test]
    fn home_is_validated_and_gives_the_partition() {
        let rows = [
            ("us-east-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            ("eu-west-3", "aws"),
        ];
        for (region, partition) in rows {
            let h = Home::new(region, "123456789012").unwrap();
            assert_eq!((h.partition.as_str(), h.region.as_str()), (partition, region));
            assert_eq!(h.account, "123456789012");
        }
        for account in ["", "12345678901", "1234567890123", "12345678901a"] {
            assert_eq!(
                Home::new("us-east-1", account),
                Err(NamingError::NotAnAccount(account.into()))
            );
        }
        for region in ["", "useast1", "US-EAST-1", "us east-1", &"a-".repeat(17)] {
            assert_eq!(
                Home::new(region, "123456789012"),
                Err(NamingError::NotARegion(region.into()))
            );
        }
        assert!(Home::new(&"a-".repeat(16), "123456789012").is_ok());
    }

    #[test]
    fn subscription_arns_name_their_topic_and_region() {
        let sub = "arn:aws:sns:eu-west-1:210987654321:flags.fifo:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55";
        assert_eq!(
            topic_of_subscription(sub),
            Some("arn:aws:sns:eu-west-1:210987654321:flags.fifo")
        );
        assert_eq!(topic_of_subscription("arn:aws:sns:eu-west-1:210987654321:flags"), None);
        assert_eq!(topic_of_subscription("arn:aws:sns:eu-west-1:210987654321:flags:"), None);
        assert_eq!(topic_of_subscription("PendingConfirmation"), None);
        assert_eq!(region_of_arn(sub), Some("eu-west-1"));
        assert_eq!(region_of_arn("nope"), None);
        assert!(TopicArn::parse("arn:aws:sns:eu-west-1:210987654321:flags.fifo")
            .unwrap()
            .is_fifo());
        assert!(!topic().is_fifo());
    }

    #[test]
    fn names_never_exceed_80_chars() {
        let prefix = QueuePrefix::new(&format!("tasksub-{}", "p".repeat(39))).unwrap();
        let id = TaskId::new("b99d40b3-5176-4f71-9a52-9dbd6f1cebef").unwrap();
        assert!(matches!(
            QueueName::for_task(&prefix, &id, false),
            Err(NamingError::TooLong(_))
        ));
        let id = TaskId::new(&"a".repeat(32)).unwrap();
        assert_eq!(QueueName::for_task(&prefix, &id, false).unwrap().as_str().len(), 79);
        // `.fifo` counts: 47 + 32 + 5 = 84
        assert!(matches!(
            QueueName::for_task(&prefix, &id, true),
            Err(NamingError::TooLong(_))
        ));
        assert!(QueuePrefix::new(&format!("tasksub-{}", "p".repeat(40))).is_err());
    }

    #[test]
    fn task_ids_are_in_an_ecs_format() {
        for ok in [
            "c13b4cb40f1f4fe4a2971f76ae5a47ad",
            "b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
        ] {
            assert_eq!(TaskId::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "0123",
            "billing",
            "C13B4CB40F1F4FE4A2971F76AE5A47AD",
            "c13b4cb40f1f4fe4a2971f76ae5a47a",
            "c13b4cb40f1f4fe4a2971f76ae5a47adf",
            "g13b4cb40f1f4fe4a2971f76ae5a47ad",
            "b99d40b3-5176-4f71-9a52-9dbd6f1cebe_",
            "b99d40b35-176-4f71-9a52-9dbd6f1cebef",
            "b99d40b3-5176-4f71-9a52-9dbd6f1cebef0",
        ] {
            let err = TaskId::new(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("32 lowercase hex"),
                "{err}"
            );
        }
    }

    #[test]
    fn prefixes_start_with_the_stem() {
        for ok in [
            "tasksub-",
            "tasksub_",
            "tasksub-1a2b3c4d-",
            "tasksub-orders_",
            "tasksub--",
        ] {
            assert_eq!(QueuePrefix::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "tasksub",
            "tasksubx-",
            "orders-",
            "prod",
            "ts123-",
            "Tasksub-",
            "tasksub-bad.prefix",
        ] {
            let err = QueuePrefix::new(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("\"tasksub-\""),
                "{err}"
            );
        }
    }

    #[test]
    fn topic_arns_parse() {
        let t = topic();
        assert_eq!(
            (
                t.partition.as_str(),
                t.region.as_str(),
                t.account.as_str(),
                t.name.as_str()
            ),
            ("aws", "us-east-1", "123456789012", "fanout")
        );
        assert!(TopicArn::parse("arn:aws:sqs:us-east-1:1:q").is_err());
        assert!(TopicArn::parse("arn:aws:sns:us-east-1:1:t:sub-id").is_err());
    }

    #[test]
    fn queue_names_come_back_from_urls() {
        let n = queue_name_from_url("http://127.0.0.1:5055/123456789012/tasksub-abc").unwrap();
        assert!(n.task_id(&QueuePrefix::default()).is_none(), "not a task ID");
        assert_eq!(n.as_str(), "tasksub-abc");
        assert!(queue_name_from_url("https://sqs.us-east-1.amazonaws.com/").is_none());
        assert!(queue_name_from_url("").is_none());
    }

    #[test]
    fn arn_helpers_parse_only_what_they_name() {
        let q = "arn:aws:sqs:us-east-1:123456789012:tasksub-0123456789abcdef0123456789abcdef";
        assert_eq!(
            queue_name_from_arn(q).unwrap().as_str(),
            "tasksub-0123456789abcdef0123456789abcdef"
        );
        assert_eq!(queue_name_from_arn("arn:aws:sns:us-east-1:123456789012:topic"), None);
        assert_eq!(queue_name_from_arn("https://example.invalid/hook"), None);
        assert_eq!(cluster_name("arn:aws:ecs:us-east-1:123456789012:cluster/prod"), "prod");
        assert_eq!(cluster_name("prod"), "prod");
        // only an ECS ARN names a cluster; an empty or odd queue name is no queue name
        let other = "arn:aws:sqs:us-east-1:123456789012:cluster/prod";
        assert_eq!(cluster_name(other), other);
        assert_eq!(queue_name_from_arn("arn:aws:sqs:us-east-1:123456789012:"), None);
        assert_eq!(queue_name_from_arn("arn:aws:sqs:us-east-1:123456789012:bad.name"), None);
        let t = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";
        assert_eq!(task_id_of(t), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(task_id_of("arn:aws:ecs:us-east-1:123456789012:task/prod/bad.id"), None);
    }

    #[test]
    fn names_display_as_themselves_and_the_length_limit_is_exact() {
        let topic = TopicArn::parse("arn:aws:sns:us-east-1:123456789012:fanout").unwrap();
        assert_eq!(topic.as_str(), "arn:aws:sns:us-east-1:123456789012:fanout");
        assert_eq!(topic.to_string(), topic.as_str());
        let id = TaskId::new("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
        let uuid = TaskId::new("b99d40b3-5176-4f71-9a52-9dbd6f1cebef").unwrap();
        // 44 + 36 = 80 characters: the longest name SQS accepts
        let prefix = QueuePrefix::new(&format!("tasksub-{}", "p".repeat(36))).unwrap();
        let name = QueueName::for_task(&prefix, &uuid, false).unwrap();
        assert_eq!((name.as_str().len(), name.to_string()), (80, name.as_str().to_owned()));
        let longer = QueuePrefix::new(&format!("tasksub-{}", "p".repeat(37))).unwrap();
        assert!(matches!(
            QueueName::for_task(&longer, &uuid, false),
            Err(NamingError::TooLong(_))
        ));
        // a task ARN with an empty cluster segment is not a task ARN
        assert!(TaskArn::parse("arn:aws:ecs:us-east-1:1:task//0123456789abcdef0123456789abcdef").is_err());
    }
}
