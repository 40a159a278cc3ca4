//! The handler: one event in, one [`Outcome`] (or a typed [`HandlerError`]) out. The Lambda functions,
//! the CLI's `replay` and the tests all call [`Controller::handle_json`], so they share one code path.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tasksub_core::decide::{self, Admitted, Intent, Role, Skip, Step};
use tasksub_core::event::{self, EventError, Incoming, TaskEvent};
use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::State;
use tasksub_core::settings::Settings;
use tracing::{error, info, warn};

use crate::aws::AwsPorts;
use crate::executor::{self, HandleError, Handled};
use crate::metrics::{Sink, Unit};
use crate::ports::Ports;

/// The controller: settings and clients built once, borrowed by every event.
#[derive(Debug)]
pub struct Controller<P = AwsPorts> {
    settings: Settings,
    ports: P,
    role: Role,
    settled: Settled,
    metrics: Sink,
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
        let ports = AwsPorts::for_settings(sdk, &settings);
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
            metrics: Sink::Off,
        }
    }

    /// Sends EMF metric lines to `sink` (the Lambda functions use stdout; the default is off).
    pub fn with_metrics(mut self, sink: Sink) -> Self {
        self.metrics = sink;
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The ports.
    pub fn ports(&self) -> &P {
        &self.ports
    }

    /// Handles one EventBridge payload given as its bytes now: a duplicate key anywhere refuses it
    /// ([`event::strict::from_slice`]), so a value that became structure cannot pick the task. The
    /// Lambda functions and `tasksub replay` come in here.
    pub async fn handle_slice(&self, payload: &[u8]) -> Result<Outcome, HandlerError> {
        self.handle_slice_at(payload, Utc::now()).await
    }

    /// [`Controller::handle_slice`] at a given time.
    pub async fn handle_slice_at(&self, payload: &[u8], now: DateTime<Utc>) -> Result<Outcome, HandlerError> {
        let value = event::strict::from_slice(payload).map_err(|e| {
            error!(action = "parse", outcome = "rejected", error = %e, "malformed event: nothing changed");
            HandlerError::Malformed(e)
        })?;
        self.handle_json_at(&value, now).await
    }

    /// Handles one raw EventBridge payload now. A `Value` has already lost a duplicate key: payloads
    /// from outside come in through [`Controller::handle_slice`].
    pub async fn handle_json(&self, payload: &serde_json::Value) -> Result<Outcome, HandlerError> {
        self.handle_json_at(payload, Utc::now()).await
    }

    /// Handles one raw EventBridge payload at a given time: parse, admit, check the role, execute
    /// (unless the settled cache already knows the answer), report.
    pub async fn handle_json_at(
        &self,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Outcome, HandlerError> {
        let event = match self.parse(payload, now)? {
            Ok(event) => event,
            Err(skipped) => return Ok(skipped),
        };
        let cluster = event.detail.cluster_arn.as_str();
        let admitted = match self.admit(&event, now)? {
            Ok(admitted) => admitted,
            Err(skipped) => return Ok(skipped),
        };
        let task_id = admitted.names.record_key().to_owned();
        let intent = admitted.intent;
        if !self.role.accepts(intent) {
            return Ok(self.skipped(now, Some(task_id), cluster, &Skip::WrongFunction(intent)));
        }
        match self.execute(&admitted, &task_id, now).await {
            Ok(Handled::Skipped(skip)) => Ok(self.skipped(now, Some(task_id), cluster, &skip)),
            Ok(Handled::Applied { steps, state, refused }) => {
                if !refused.is_empty() {
                    let n = refused.len() as f64;
                    self.metric(now, None, &[("TopicsRefused", Unit::Count, n)]);
                }
                Ok(self.applied(now, &admitted, cluster, &steps, state))
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
                Ok(Outcome::done("compensated", &admitted, &steps, None))
            }
            Err(e) => Err(self.failed(now, e)),
        }
    }

    /// The task event of a payload; another event is skipped, a malformed one refused.
    fn parse(
        &self,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Result<TaskEvent, Outcome>, HandlerError> {
        match event::parse(payload) {
            Ok(Incoming::Task(event)) => Ok(Ok(*event)),
            Ok(Incoming::Other { source, detail_type }) => {
                let skip = if source != event::ECS_SOURCE {
                    Skip::OtherSource(source)
                } else {
                    Skip::OtherDetailType(detail_type)
                };
                Ok(Err(self.skipped(now, None, "", &skip)))
            }
            Err(e) => {
                error!(action = "parse", outcome = "rejected", error = %e, "malformed event: nothing changed");
                Err(HandlerError::Malformed(e))
            }
        }
    }

    /// The event admitted by [`decide::admit`], or skipped; a task ARN that names no queue is refused.
    fn admit(&self, event: &TaskEvent, now: DateTime<Utc>) -> Result<Result<Admitted, Outcome>, HandlerError> {
        let cluster = event.detail.cluster_arn.as_str();
        match decide::admit(event, &self.settings, now) {
            Ok(Ok(a)) => Ok(Ok(a)),
            Ok(Err(skip)) => Ok(Err(self.skipped(now, None, cluster, &skip))),
            Err(e) => {
                let task_arn = event.detail.task_arn.as_str();
                error!(task_arn, cluster, action = "admit", outcome = "rejected", error = %e, "event names no valid queue");
                Err(HandlerError::InvalidTask(e.to_string()))
            }
        }
    }

    /// Runs the plan, unless the settled cache proves a start event needs nothing; notes what it proves.
    async fn execute(&self, admitted: &Admitted, task_id: &str, now: DateTime<Utc>) -> Result<Handled, HandleError> {
        let cached = if admitted.intent == Intent::Provision {
            self.settled.get(task_id)
        } else {
            None
        };
        let handled = match cached {
            Some(State::Ready) => Ok(Handled::Skipped(Skip::AlreadyReady)),
            Some(state) => Ok(Handled::Skipped(Skip::Tombstoned(state))),
            None => executor::handle(&self.ports, admitted, &self.settings, now).await,
        };
        if let Some(state) = settled_state(&handled) {
            self.settled.note(task_id, state);
        }
        handled
    }

    /// Logs an applied plan and its latency metric (event time to the final state).
    fn applied(&self, now: DateTime<Utc>, admitted: &Admitted, cluster: &str, steps: &[Step], state: State) -> Outcome {
        info!(
            task_id = admitted.names.record_key(),
            cluster,
            intent = admitted.intent.as_str(),
            action = "done",
            outcome = "applied",
            state = state.as_str()
        );
        let latency = admitted.time.map(|t| (now - t).num_milliseconds().max(0) as f64);
        match (state, latency) {
            (State::Ready, Some(ms)) => self.metric(now, None, &[("ProvisioningLatency", Unit::Milliseconds, ms)]),
            (State::Gone, Some(ms)) => self.metric(now, None, &[("TeardownLatency", Unit::Milliseconds, ms)]),
            _ => {}
        }
        Outcome::done("applied", admitted, steps, Some(state.as_str()))
    }

    fn function_name(&self) -> &'static str {
        match self.role {
            Role::Provisioner => "on-task-running",
            Role::Teardown => "on-task-stopped",
            Role::Any => "tasksub",
        }
    }

    fn metric(&self, now: DateTime<Utc>, reason: Option<&str>, metrics: &[(&str, Unit, f64)]) {
        let function = self.function_name();
        match reason {
            Some(r) => self.metrics.emit(
                now.timestamp_millis(),
                &[("Function", function), ("Reason", r)],
                metrics,
            ),
            None => self
                .metrics
                .emit(now.timestamp_millis(), &[("Function", function)], metrics),
        }
    }

    fn skipped(&self, now: DateTime<Utc>, task_id: Option<String>, cluster: &str, skip: &Skip) -> Outcome {
        let id = task_id.as_deref().unwrap_or_default();
        info!(
            task_id = id,
            cluster,
            action = "skip",
            outcome = "skipped",
            reason = skip.code(),
            "{skip}"
        );
        self.metric(now, Some(skip.code()), &[("EventsSkipped", Unit::Count, 1.0)]);
        Outcome::skipped(task_id, skip)
    }

    fn failed(&self, now: DateTime<Utc>, e: HandleError) -> HandlerError {
        if matches!(&e, HandleError::Step(f) if f.error.kind == ErrorKind::Throttled) {
            self.metric(now, None, &[("Throttles", Unit::Count, 1.0)]);
        }
        let err = HandlerError::from_handle(e);
        if err.is_retryable() {
            self.metric(now, None, &[("Retries", Unit::Count, 1.0)]);
        }
        err
    }
}

/// The state a handled event proves, for the settled cache.
fn settled_state(handled: &Result<Handled, HandleError>) -> Option<State> {
    match handled {
        Ok(Handled::Applied { state, .. }) => Some(*state),
        Ok(Handled::Skipped(Skip::AlreadyReady)) => Some(State::Ready),
        Ok(Handled::Skipped(Skip::Tombstoned(s) | Skip::AlreadyDraining(s))) => Some(*s),
        Ok(Handled::Skipped(Skip::AlreadyGone)) => Some(State::Gone),
        _ => None,
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
    fn done(outcome: &'static str, admitted: &Admitted, steps: &[Step], state: Option<&'static str>) -> Self {
        Self {
            outcome,
            task_id: Some(admitted.names.record_key().to_owned()),
            intent: Some(admitted.intent.as_str()),
            steps: steps.iter().map(|s| s.as_str()).collect(),
            state,
            reason: (outcome == "compensated").then_some("lost-race"),
            detail: None,
        }
    }
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
