//! The crate's one public error type: opaque, with `is_*` predicates and context behind accessors.
//!
//! `Display` says what went wrong in one sentence and never repeats the source; walk
//! [`std::error::Error::source`] (or log with `aws_smithy_types::error::display::DisplayErrorContext`)
//! for the cause.

use std::fmt;
use std::time::Duration;

use tasksub_core::record::State;

/// A boxed error, as returned by handlers and carried as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the client could not find, wait for or consume its queue.
pub struct Error {
    kind: Kind,
    source: Option<BoxError>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    /// A required environment variable is absent or empty.
    MissingEnv { var: &'static str },
    /// A setting (builder value or environment variable) is invalid.
    InvalidConfig { setting: &'static str, reason: String },
    /// The task metadata endpoint could not be reached, timed out or answered with an error status.
    MetadataUnreachable {
        uri: String,
        attempts: u32,
        status: Option<u16>,
        timed_out: bool,
    },
    /// The task metadata endpoint answered, but not with a usable task ARN.
    MetadataInvalid { uri: String, reason: String },
    /// The queue did not appear within the wait limit.
    QueueMissing { queue: String, waited: Duration },
    /// The record did not reach READY within the wait limit.
    NotReady {
        task_id: String,
        waited: Duration,
        last: Option<State>,
    },
    /// The record says the task is already stopping or gone: its queue will never be ready.
    TaskStopping { task_id: String, state: State },
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Self {
        Self { kind, source: None }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn missing_env(var: &'static str) -> Self {
        Self::new(Kind::MissingEnv { var })
    }

    pub(crate) fn invalid_config(setting: &'static str, reason: impl Into<String>) -> Self {
        Self::new(Kind::InvalidConfig {
            setting,
            reason: reason.into(),
        })
    }

    /// True for configuration problems: a missing environment variable or an invalid setting.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, Kind::MissingEnv { .. } | Kind::InvalidConfig { .. })
    }

    /// True when a required environment variable (e.g. `ECS_CONTAINER_METADATA_URI_V4`) is not set.
    pub fn is_missing_env(&self) -> bool {
        matches!(self.kind, Kind::MissingEnv { .. })
    }

    /// True when the task metadata endpoint was unreachable, timed out or answered an error status.
    pub fn is_metadata_unreachable(&self) -> bool {
        matches!(self.kind, Kind::MetadataUnreachable { .. })
    }

    /// True when the task metadata endpoint answered with something that holds no usable task ARN
    /// (not JSON, no `TaskARN`, or an ARN that is not an ECS task ARN).
    pub fn is_metadata_invalid(&self) -> bool {
        matches!(self.kind, Kind::MetadataInvalid { .. })
    }

    /// True when a time limit passed: the metadata request timed out, or the queue (or its READY
    /// record) did not appear within the wait limit.
    pub fn is_timeout(&self) -> bool {
        match &self.kind {
            Kind::MetadataUnreachable { timed_out, .. } => *timed_out,
            Kind::QueueMissing { .. } | Kind::NotReady { .. } => true,
            _ => false,
        }
    }

    /// True when the task's queue did not exist within the wait limit. The client never creates it:
    /// the tasksub controller does, on the task's start event.
    pub fn is_queue_missing(&self) -> bool {
        matches!(self.kind, Kind::QueueMissing { .. })
    }

    /// True when the task's record did not say READY within the wait limit.
    pub fn is_not_ready(&self) -> bool {
        matches!(self.kind, Kind::NotReady { .. })
    }

    /// True when the controller's record says this task is already stopping (DRAINING) or gone.
    pub fn is_task_stopping(&self) -> bool {
        matches!(self.kind, Kind::TaskStopping { .. })
    }

    /// The environment variable or setting at fault, for configuration errors.
    pub fn setting(&self) -> Option<&str> {
        match &self.kind {
            Kind::MissingEnv { var } => Some(var),
            Kind::InvalidConfig { setting, .. } => Some(setting),
            _ => None,
        }
    }

    /// The HTTP status the metadata endpoint answered, when that was the problem.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            Kind::MetadataUnreachable { status, .. } => *status,
            _ => None,
        }
    }

    /// The last known record state, for [`Error::is_not_ready`] and [`Error::is_task_stopping`].
    pub fn record_state(&self) -> Option<State> {
        match &self.kind {
            Kind::NotReady { last, .. } => *last,
            Kind::TaskStopping { state, .. } => Some(*state),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::MissingEnv { var } => write!(
                f,
                "environment variable {var} is not set (not running in an ECS task? \
                 set it, or configure it on the ClientBuilder for local runs)"
            ),
            Kind::InvalidConfig { setting, reason } => write!(f, "invalid setting {setting}: {reason}"),
            Kind::MetadataUnreachable {
                uri,
                attempts,
                status,
                timed_out,
            } => {
                let what = match (status, timed_out) {
                    (Some(code), _) => format!("answered HTTP {code}"),
                    (None, true) => "timed out".to_owned(),
                    (None, false) => "is unreachable".to_owned(),
                };
                write!(
                    f,
                    "task metadata endpoint {uri} {what} (gave up after {attempts} attempt(s))"
                )
            }
            Kind::MetadataInvalid { uri, reason } => {
                write!(f, "task metadata from {uri} is unusable: {reason}")
            }
            Kind::QueueMissing { queue, waited } => write!(
                f,
                "queue {queue} did not appear within {} s (the tasksub controller creates it when the \
                 task starts; the client never does)",
                waited.as_secs()
            ),
            Kind::NotReady { task_id, waited, last } => {
                let last = last.map_or("no record", State::as_str);
                write!(
                    f,
                    "task {task_id} was not READY within {} s (last seen: {last})",
                    waited.as_secs()
                )
            }
            Kind::TaskStopping { task_id, state } => {
                write!(f, "task {task_id} is already {state}: its queue will not become ready")
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_partition_the_kinds() {
        let cases = [
            (
                Error::missing_env("ECS_CONTAINER_METADATA_URI_V4"),
                "config missing_env",
            ),
            (Error::invalid_config("TASKSUB_QUEUE_PREFIX", "bad"), "config"),
            (
                Error::new(Kind::MetadataUnreachable {
                    uri: "http://x".into(),
                    attempts: 3,
                    status: None,
                    timed_out: true,
                }),
                "unreachable timeout",
            ),
            (
                Error::new(Kind::MetadataInvalid {
                    uri: "http://x".into(),
                    reason: "r".into(),
                }),
                "invalid",
            ),
            (
                Error::new(Kind::QueueMissing {
                    queue: "q".into(),
                    waited: Duration::from_secs(1),
                }),
                "timeout missing",
            ),
            (
                Error::new(Kind::NotReady {
                    task_id: "t".into(),
                    waited: Duration::ZERO,
                    last: None,
                }),
                "timeout not_ready",
            ),
            (
                Error::new(Kind::TaskStopping {
                    task_id: "t".into(),
                    state: State::Gone,
                }),
                "stopping",
            ),
        ];
        for (e, expected) in cases {
            let got: Vec<&str> = [
                (e.is_config(), "config"),
                (e.is_missing_env(), "missing_env"),
                (e.is_metadata_unreachable(), "unreachable"),
                (e.is_metadata_invalid(), "invalid"),
                (e.is_timeout(), "timeout"),
                (e.is_queue_missing(), "missing"),
                (e.is_not_ready(), "not_ready"),
                (e.is_task_stopping(), "stopping"),
            ]
            .into_iter()
            .filter_map(|(b, n)| b.then_some(n))
            .collect();
            assert_eq!(got.join(" "), expected, "{e}");
        }
    }

    #[test]
    fn display_names_the_variable_and_never_the_source() {
        let e = Error::missing_env("ECS_CONTAINER_METADATA_URI_V4").with_source("inner detail");
        let text = e.to_string();
        assert!(text.contains("ECS_CONTAINER_METADATA_URI_V4 is not set"), "{text}");
        assert!(!text.contains("inner detail"));
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "inner detail");
        assert_eq!(e.setting(), Some("ECS_CONTAINER_METADATA_URI_V4"));
    }
}
