//! ARN parsing: ECS task ARNs (both formats), SNS topic and subscription ARNs, and the pieces of any ARN
//! the rest of the contract needs (region, cluster name, task ID).

use std::fmt;

use super::{NamingError, TaskId, FIFO_SUFFIX};

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

/// The fields of `arn:<partition>:<service>:<region>:<account>:<resource>`.
pub(super) struct ArnParts<'a> {
    pub(super) partition: &'a str,
    pub(super) service: &'a str,
    pub(super) region: &'a str,
    pub(super) account: &'a str,
    pub(super) resource: &'a str,
}

/// Splits an ARN; `None` when it is not one, or has no partition, region or account.
pub(super) fn split_arn(s: &str) -> Option<ArnParts<'_>> {
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

/// Longest SNS topic name (FIFO names included, `.fifo` counted).
pub const MAX_TOPIC_NAME_LEN: usize = 256;

/// What AWS would refuse in a topic ARN's parts, if anything: the partition must be the region's, the
/// region shaped like one, the account 12 digits, the name 1 to 256 characters of `[A-Za-z0-9_-]`
/// (a FIFO name ends in `.fifo`). An error that can never succeed at run time is refused at start-up.
fn topic_arn_problem(p: &ArnParts<'_>) -> Option<String> {
    if !super::is_region(p.region) {
        return Some(format!("region {:?} is not an AWS region name", p.region));
    }
    if p.partition != super::partition_of(p.region) {
        let want = super::partition_of(p.region);
        return Some(format!(
            "partition {:?} is not {want:?}, the partition of {}",
            p.partition, p.region
        ));
    }
    if !super::is_account(p.account) {
        return Some(format!("account {:?} is not a 12-digit AWS account ID", p.account));
    }
    let stem = p.resource.strip_suffix(FIFO_SUFFIX).unwrap_or(p.resource);
    if stem.is_empty() || p.resource.len() > MAX_TOPIC_NAME_LEN {
        return Some(format!(
            "name {:?} must have 1 to {MAX_TOPIC_NAME_LEN} characters",
            p.resource
        ));
    }
    if !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Some(format!(
            "name {:?} may hold only letters, digits, - and _ (and end in .fifo)",
            p.resource
        ));
    }
    None
}

impl TopicArn {
    /// Parses `arn:<partition>:sns:<region>:<account>:<name>`, refusing what AWS would refuse.
    pub fn parse(s: &str) -> Result<Self, NamingError> {
        let bad = || NamingError::NotATopicArn(s.to_owned());
        let p = split_arn(s).filter(|p| p.service == "sns").ok_or_else(bad)?;
        if p.resource.is_empty() || p.resource.contains(':') {
            return Err(bad());
        }
        if let Some(reason) = topic_arn_problem(&p) {
            return Err(NamingError::BadTopicArn {
                arn: s.to_owned(),
                reason,
            });
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

impl fmt::Display for TopicArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
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
