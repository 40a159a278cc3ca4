//! The ECS `Task State Change` event, as EventBridge delivers it.
//!
//! The envelope is `aws_lambda_events`' [`EventBridgeEvent`]; the detail is our own type, tolerant of
//! unknown fields (ECS adds fields over time) and of the optional ones real samples omit.
//!
//! Two checks keep a value from steering what the functions act on: [`strict::from_slice`] refuses a
//! payload with a duplicate key anywhere (read from the bytes, before a `serde_json::Value` would keep
//! only one of the two), and [`parse`] refuses a task event whose `detail.taskArn` is not one of its
//! `resources` (ECS names the task there; a second task ARN in the detail is not the task the event is
//! about).

pub mod strict;

use std::fmt;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

/// `source` of every ECS event.
pub const ECS_SOURCE: &str = "aws.ecs";
/// `detail-type` of the events we act on.
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";

/// An ECS task status (`lastStatus` / `desiredStatus`), with a catch-all for statuses ECS may add.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TaskStatus {
    /// `PROVISIONING`: resources (e.g. the ENI) are being set up.
    Provisioning,
    /// `PENDING`: waiting to start.
    Pending,
    /// `ACTIVATING`: registering with load balancers, service discovery...
    Activating,
    /// `RUNNING`.
    Running,
    /// `DEACTIVATING`: deregistering before stop.
    Deactivating,
    /// `STOPPING`: containers are being stopped.
    Stopping,
    /// `DEPROVISIONING`: resources are being released.
    Deprovisioning,
    /// `STOPPED`: terminal.
    Stopped,
    /// Any other value, kept verbatim.
    Other(String),
}

impl From<String> for TaskStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "PROVISIONING" => Self::Provisioning,
            "PENDING" => Self::Pending,
            "ACTIVATING" => Self::Activating,
            "RUNNING" => Self::Running,
            "DEACTIVATING" => Self::Deactivating,
            "STOPPING" => Self::Stopping,
            "DEPROVISIONING" => Self::Deprovisioning,
            "STOPPED" => Self::Stopped,
            _ => Self::Other(s),
        }
    }
}

impl TaskStatus {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Activating => "ACTIVATING",
            Self::Running => "RUNNING",
            Self::Deactivating => "DEACTIVATING",
            Self::Stopping => "STOPPING",
            Self::Deprovisioning => "DEPROVISIONING",
            Self::Stopped => "STOPPED",
            Self::Other(s) => s,
        }
    }
    /// True for the statuses a task passes through on its way up.
    pub fn is_starting_or_running(&self) -> bool {
        matches!(
            self,
            Self::Provisioning | Self::Pending | Self::Activating | Self::Running
        )
    }
}

impl From<TaskStatus> for String {
    fn from(s: TaskStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `detail` of an `ECS Task State Change` event: the fields we use, plus a few kept for logs.
/// Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateChange {
    /// The task ARN (old or new format).
    pub task_arn: String,
    /// The cluster ARN.
    pub cluster_arn: String,
    /// Where the task is now.
    pub last_status: TaskStatus,
    /// Where ECS wants the task to go.
    pub desired_status: TaskStatus,
    /// `service:<name>` or `family:<name>` (absent in some samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Counts the task's state changes; duplicates carry the same version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `FARGATE`, `EC2`, `EXTERNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    /// Who started the task (`ecs-svc/...` for services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// Why the task stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// `TaskFailedToStart`, `EssentialContainerExited`, `UserInitiated`, `TerminationNotice`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    /// The task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
}

/// A parsed EventBridge event carrying an ECS task state change.
pub type TaskEvent = EventBridgeEvent<TaskStateChange>;

/// Why an incoming payload is not a task event we can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The EventBridge envelope is not what EventBridge sends (a field of the envelope is missing or has
    /// the wrong type; `field` is `.` when the payload is not an object at all).
    #[error("malformed EventBridge event: field `{field}`: {problem}")]
    Malformed {
        /// The envelope field, e.g. `account` or `detail-type`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An ECS Task State Change whose detail (or a field the task event needs) is missing or mistyped.
    #[error("malformed ECS Task State Change: field `{field}`: {problem}")]
    MalformedDetail {
        /// The field's path, e.g. `detail.lastStatus` or `time`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl EventError {
    /// The path of the field at fault.
    pub fn field(&self) -> &str {
        match self {
            Self::Malformed { field, .. } | Self::MalformedDetail { field, .. } => field,
        }
    }
}

/// The path and message of a deserialisation error (`.` for the root).
fn located(e: serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    let path = e.path().to_string();
    let problem = e.into_inner().to_string();
    // serde_json appends " at line 1 column 2" to some messages; the field path says where.
    let problem = problem.split(" at line ").next().unwrap_or_default().to_owned();
    (path, problem)
}

/// What an incoming payload turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An `ECS Task State Change` from `aws.ecs`.
    Task(Box<TaskEvent>),
    /// Another source or detail-type: skipped without any AWS call.
    Other {
        /// The event's `source`.
        source: String,
        /// The event's `detail-type`.
        detail_type: String,
    },
}

/// Parses a raw EventBridge payload. Other sources and detail-types are [`Incoming::Other`], not errors;
/// a task state change with a broken detail is an error.
pub fn parse(value: &serde_json::Value) -> Result<Incoming, EventError> {
    let envelope: Envelope = serde_path_to_error::deserialize(value).map_err(|e| {
        let (field, problem) = located(e);
        EventError::Malformed { field, problem }
    })?;
    if envelope.source != ECS_SOURCE || envelope.detail_type != TASK_STATE_CHANGE {
        return Ok(Incoming::Other {
            source: envelope.source,
            detail_type: envelope.detail_type,
        });
    }
    let event: TaskEvent = serde_path_to_error::deserialize(value).map_err(|e| match located(e) {
        (field, problem) if field.starts_with("detail") => EventError::MalformedDetail { field, problem },
        (field, problem) => EventError::Malformed { field, problem },
    })?;
    let resources = event.resources.as_deref().unwrap_or_default();
    if !resources.contains(&event.detail.task_arn) {
        return Err(EventError::MalformedDetail {
            field: "detail.taskArn".to_owned(),
            problem: "not one of the event's resources: the detail names another task than ECS did".to_owned(),
        });
    }
    Ok(Incoming::Task(Box::new(event)))
}

/// The two envelope fields that decide whether the detail is ours to parse.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
}

#[cfg(test)]
mod tests;
