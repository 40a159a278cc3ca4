//! The handler: one event in, one [`Outcome`] (or a typed [`HandlerError`]) out. The Lambda functions,
//! the CLI's `replay` and the tests all call [`Controller::handle_json`], so they share one code path.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tasksub_core::decide::{self, Intent, Role, Skip};
use tasksub_core::event::{self, EventError, Incoming};
use tasksub_core::record::State;
use tasksub_core::settings::Settings;
use tracing::{error, info, warn};

use crate::aws::AwsPorts;
use crate::executor::{self, HandleError, Handled};
use crate::ports::Ports;

/// The controller: settings and clients built once, borrowed by every event.
#[derive(Debug)]
pub struct Controller<P = AwsPorts> {
    settings: Settings,
    ports: P,
    role: Role,
    settled: Settled,
}

/// Tasks this instance saw READY or tombstoned. A start event for one of them needs nothing (a start
/// never changes a READY, DRAINING or GONE record), so a duplicate on a warm instance costs no call at
/// all; on a cold one it costs the claim, which DynamoDB rejects without writing.
#[derive(Debug, Default)]
struct Settled(std::sync::Mutex<std::collections::HashMap<String, State>>);

/// Bound of the settled cache; it is cleared when full (it is an optimisation, never a source of truth).
const SETTLED_CAPACITY: usize = 8192;

impl Settled {
    fn get(&self, task_id: &str) -> Option<State> {
        self.0.lock().expect("settled lock").get(task_id).copied()
    }
    fn note(&self, task_id: &str, state: State) {
        if state == State::Provisioning {
            return;
        }
        let mut map = self.0.lock().expect("settled lock");
        if map.len() >= SETTLED_CAPACITY {
            map.clear();
        }
        map.insert(task_id.to_owned(), state);
    }
}

impl Controller<AwsPorts> {
    /// A controller on the AWS SDK (emulator endpoints come from `AWS_ENDPOINT_URL` via `sdk`).
    pub fn new(settings: Settings, sdk: &aws_config::SdkConfig, role: Role) -> Self {
        let ports = AwsPorts::new(sdk, &settings.table);
        Self::with_ports(settings, ports, role)
    }
}

impl<P: Ports> Controller<P> {
    /// A controller on any ports (the fake in tests).
    pub fn with_ports(settings: Settings, ports: P, role: Role) -> Self {
        Self {
            settings,
            ports,
            role,
            settled: Settled::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The ports.
    pub fn ports(&self) -> &P {
        &self.ports
    }

    /// Handles one raw EventBridge payload now.
    pub async fn handle_json(&self, payload: &serde_json::Value) -> Result<Outcome, HandlerError> {
        self.handle_json_at(payload, Utc::now()).await
    }

    /// Handles one raw EventBridge payload at a given time.
    pub async fn handle_json_at(
        &self,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Outcome, HandlerError> {
        let event = match event::parse(payload) {
            Ok(Incoming::Task(event)) => event,
            Ok(Incoming::Other {
                source,
                detail_type,
            }) => {
                let skip = if source != event::ECS_SOURCE {
                    Skip::OtherSource(source)
                } else {
                    Skip::OtherDetailType(detail_type)
                };
                info!(
                    action = "skip",
                    outcome = "skipped",
                    reason = skip.code(),
                    "{skip}"
                );
                return Ok(Outcome::skipped(None, &skip));
            }
            Err(e) => {
                error!(action = "parse", outcome = "rejected", error = %e, "malformed event: nothing changed");
                return Err(HandlerError::Malformed(e));
            }
        };
        let d = &event.detail;
        let (task_arn, cluster) = (d.task_arn.as_str(), d.cluster_arn.as_str());
        let admitted = match decide::admit(&event, &self.settings, now) {
            Ok(Ok(a)) => a,
            Ok(Err(skip)) => {
                info!(
                    task_arn,
                    cluster,
                    action = "skip",
                    outcome = "skipped",
                    reason = skip.code(),
                    "{skip}"
                );
                return Ok(Outcome::skipped(None, &skip));
            }
            Err(e) => {
                error!(task_arn, cluster, action = "admit", outcome = "rejected", error = %e, "event names no valid queue");
                return Err(HandlerError::InvalidTask(e.to_string()));
            }
        };
        let task_id = admitted.names.record_key().to_owned();
        if !self.role.accepts(admitted.intent) {
            let skip = Skip::WrongFunction(admitted.intent);
            info!(
                task_id,
                cluster,
                action = "skip",
                outcome = "skipped",
                reason = skip.code(),
                "{skip}"
            );
            return Ok(Outcome::skipped(Some(task_id), &skip));
        }
        let intent = admitted.intent;
        let cached = if intent == Intent::Provision {
            self.settled.get(&task_id)
        } else {
            None
        };
        let handled = match cached {
            Some(State::Ready) => Ok(Handled::Skipped(Skip::AlreadyReady)),
            Some(state) => Ok(Handled::Skipped(Skip::Tombstoned(state))),
            None => {
                executor::handle(
                    &self.ports,
                    &event,
                    &self.settings,
                    now,
                    intent.reads_first(),
                    &task_id,
                )
                .await
            }
        };
        match &handled {
            Ok(Handled::Applied { state, .. }) => self.settled.note(&task_id, *state),
            Ok(Handled::Skipped(Skip::AlreadyReady)) => self.settled.note(&task_id, State::Ready),
            Ok(Handled::Skipped(Skip::Tombstoned(s) | Skip::AlreadyDraining(s))) => {
                self.settled.note(&task_id, *s)
            }
            Ok(Handled::Skipped(Skip::AlreadyGone)) => self.settled.note(&task_id, State::Gone),
            _ => {}
        }
        let outcome = match handled {
            Ok(Handled::Skipped(skip)) => {
                info!(
                    task_id,
                    cluster,
                    intent = intent.as_str(),
                    action = "skip",
                    outcome = "skipped",
                    reason = skip.code(),
                    "{skip}"
                );
                Outcome::skipped(Some(task_id), &skip)
            }
            Ok(Handled::Applied { steps, state }) => {
                info!(
                    task_id,
                    cluster,
                    intent = intent.as_str(),
                    action = "done",
                    outcome = "applied",
                    state = state.as_str()
                );
                Outcome {
                    outcome: "applied",
                    task_id: Some(task_id),
                    intent: Some(intent.as_str()),
                    steps: steps.iter().map(|s| s.as_str()).collect(),
                    state: Some(state.as_str()),
                    reason: None,
                    detail: None,
                }
            }
            Ok(Handled::Compensated { steps }) => {
                warn!(
                    task_id,
                    cluster,
                    intent = intent.as_str(),
                    action = "done",
                    outcome = "compensated",
                    "a teardown won the race; our work was undone"
                );
                Outcome {
                    outcome: "compensated",
                    task_id: Some(task_id),
                    intent: Some(intent.as_str()),
                    steps: steps.iter().map(|s| s.as_str()).collect(),
                    state: None,
                    reason: Some("lost-race"),
                    detail: None,
                }
            }
            Err(e) => return Err(HandlerError::from_handle(e)),
        };
        Ok(outcome)
    }
}

/// What happened to one event (also the Lambda function's response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `skipped`, `applied` or `compensated`.
    pub outcome: &'static str,
    /// The task, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// `provision`, `stop-initiated`, `stopped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<&'static str>,
    /// Steps that ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<&'static str>,
    /// Final record state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// Skip code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Skip explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Outcome {
    fn skipped(task_id: Option<String>, skip: &Skip) -> Self {
        Self {
            outcome: "skipped",
            task_id,
            intent: None,
            steps: vec![],
            state: None,
            reason: Some(skip.code()),
            detail: Some(skip.to_string()),
        }
    }
    /// True when the event led to no action.
    pub fn is_skipped(&self) -> bool {
        self.outcome == "skipped"
    }
}

/// Why an event could not be handled. Retryable errors make the invocation fail so Lambda retries;
/// the others are permanent: retrying cannot help, and the event lands in the on-failure destination
/// after Lambda's bounded retries, with its payload for replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The payload is not a valid event. Nothing was changed.
    #[error("permanent: {0}")]
    Malformed(EventError),
    /// The task ARN cannot name a queue. Nothing was changed.
    #[error("permanent: invalid task: {0}")]
    InvalidTask(String),
    /// A throttling, 5xx or timeout error: retry.
    #[error("transient: step {step}: {message}")]
    Transient {
        /// The step that failed.
        step: &'static str,
        /// What failed.
        message: String,
    },
    /// Access denied, invalid request: retrying will not help.
    #[error("permanent: step {step}: {message}")]
    Permanent {
        /// The step that failed.
        step: &'static str,
        /// What failed.
        message: String,
    },
    /// Other invocations kept changing the record: retry.
    #[error("transient: contention on the task record")]
    Contention,
}

impl HandlerError {
    fn from_handle(e: HandleError) -> Self {
        let err = match e {
            HandleError::Decide(d) => Self::InvalidTask(d.to_string()),
            HandleError::Contention => Self::Contention,
            HandleError::Step(f) if f.retry => Self::Transient {
                step: f.step,
                message: f.error.to_string(),
            },
            HandleError::Step(f) => Self::Permanent {
                step: f.step,
                message: f.error.to_string(),
            },
        };
        if err.is_retryable() {
            warn!(outcome = "retry", error = %err, "invocation fails so Lambda retries it");
        } else {
            error!(outcome = "failed", error = %err, "permanent failure: retrying will not help");
        }
        err
    }

    /// True when retrying the same event may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Contention)
    }

    /// The Lambda error type.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "tasksub.Permanent.MalformedEvent",
            Self::InvalidTask(_) => "tasksub.Permanent.InvalidTask",
            Self::Transient { .. } => "tasksub.Transient",
            Self::Permanent { .. } => "tasksub.Permanent",
            Self::Contention => "tasksub.Transient.Contention",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        Self {
            error_type: e.error_type().to_owned(),
            error_message: e.to_string(),
        }
    }
}
