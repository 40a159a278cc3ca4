//! `decide(event, stored, settings, now)`: what must happen for this event given what is stored.
//!
//! The plan is a list of [`Step`]s the executor runs in order. Cleanup always comes before the final
//! tombstone, so a crash at any point leaves a record from which a redelivered event finishes the job;
//! every conditional write names the state it expects, so racing invocations cannot both win.
//!
//! Provisioning starts with a conditional claim that is also the read: a duplicate start event costs a
//! rejected claim and nothing else, and a new task costs a claim, CreateQueue, one Subscribe per topic
//! (issued together with CreateQueue) and MarkReady: three round trips whatever the topic count.
//! Teardown reads the record first, then acts in at most two more round trips.
//!
//! A READY record whose topics differ from the settings (a topic was added or removed) is converged by
//! the next start event or sweep: Subscribe the new topics ‖ unsubscribe the retired ones, then MarkReady.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::event::{TaskEvent, TaskStatus};
use crate::naming::{NamingError, TaskNames};
use crate::record::{Record, State};
use crate::settings::Settings;

/// What an event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intent {
    /// desiredStatus RUNNING, lastStatus PROVISIONING/PENDING/ACTIVATING/RUNNING: make the queue.
    Provision,
    /// desiredStatus STOPPED, lastStatus not yet STOPPED: stop new deliveries.
    StopInitiated,
    /// lastStatus STOPPED: delete everything and leave a tombstone.
    Stopped,
}

impl Intent {
    /// Name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provision => "provision",
            Self::StopInitiated => "stop-initiated",
            Self::Stopped => "stopped",
        }
    }
    /// Teardown intents need the stored record before deciding; provisioning claims instead.
    pub fn reads_first(self) -> bool {
        !matches!(self, Self::Provision)
    }
}

/// Which function is running the handler; each accepts only its intents (and the IAM that goes with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `on-task-running`: provisioning only.
    Provisioner,
    /// `on-task-stopped`: teardown only.
    Teardown,
    /// The CLI's `replay` and the sweeper: everything.
    Any,
}

impl Role {
    /// True when this function handles the intent.
    pub fn accepts(self, intent: Intent) -> bool {
        match self {
            Self::Provisioner => intent == Intent::Provision,
            Self::Teardown => intent != Intent::Provision,
            Self::Any => true,
        }
    }
}

/// Why an event leads to no action. Every variant is a normal outcome, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not from `aws.ecs`.
    OtherSource(String),
    /// Not an `ECS Task State Change`.
    OtherDetailType(String),
    /// The task's cluster is not ours.
    ForeignCluster(String),
    /// The task's group is not one of ours.
    ForeignGroup(Option<String>),
    /// A status pair we do not act on (e.g. desired RUNNING while already stopping).
    NotActionable {
        /// lastStatus.
        last: TaskStatus,
        /// desiredStatus.
        desired: TaskStatus,
    },
    /// Routed to a function that does not handle this intent.
    WrongFunction(Intent),
    /// A start event older than the tombstone lifetime: its tombstone may be gone, so never act on it.
    TooOld {
        /// Age of the event in seconds.
        age_seconds: i64,
    },
    /// The queue is already READY (duplicate start).
    AlreadyReady,
    /// A start event for a task that is already stopping or gone.
    Tombstoned(State),
    /// A stop-initiated for a task already draining or gone.
    AlreadyDraining(State),
    /// A stopped event for a task already gone.
    AlreadyGone,
}

impl Skip {
    /// Stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OtherSource(_) => "other-source",
            Self::OtherDetailType(_) => "other-detail-type",
            Self::ForeignCluster(_) => "foreign-cluster",
            Self::ForeignGroup(_) => "foreign-group",
            Self::NotActionable { .. } => "not-actionable",
            Self::WrongFunction(_) => "wrong-function",
            Self::TooOld { .. } => "too-old",
            Self::AlreadyReady => "already-ready",
            Self::Tombstoned(_) => "tombstoned",
            Self::AlreadyDraining(_) => "already-draining",
            Self::AlreadyGone => "already-gone",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherSource(s) => write!(f, "source {s:?} is not aws.ecs"),
            Self::OtherDetailType(d) => write!(f, "detail-type {d:?} is not a task state change"),
            Self::ForeignCluster(c) => write!(f, "cluster {c} is not in scope"),
            Self::ForeignGroup(Some(g)) => write!(f, "group {g} is not in scope"),
            Self::ForeignGroup(None) => f.write_str("the task has no group, and service groups are configured"),
            Self::NotActionable { last, desired } => {
                write!(f, "lastStatus {last} / desiredStatus {desired} needs no action")
            }
            Self::WrongFunction(i) => {
                write!(f, "{} events are handled by the other function", i.as_str())
            }
            Self::TooOld { age_seconds } => write!(
                f,
                "start event is {age_seconds}s old, older than the tombstone lifetime"
            ),
            Self::AlreadyReady => f.write_str("queue already ready"),
            Self::Tombstoned(s) => write!(f, "task is {s}: a late start must not resurrect it"),
            Self::AlreadyDraining(s) => write!(f, "task is already {s}"),
            Self::AlreadyGone => f.write_str("task already gone"),
        }
    }
}

/// One step of a plan. The executor maps each to at most one AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Conditional PutItem of the PROVISIONING record if none exists (returns the existing one otherwise).
    Claim,
    /// CreateQueue with policy, attributes and tags; fills `queue_url`.
    CreateQueue,
    /// Subscribe the queue to every configured topic the record has no subscription for (all at once);
    /// fills `subscriptions`.
    Subscribe,
    /// Conditional update PROVISIONING|READY → READY with URL and subscription ARNs.
    MarkReady,
    /// Idempotent Subscribe with the same attributes, to learn the ARNs of subscriptions a crashed
    /// provisioning may have left unrecorded (they are unsubscribed next).
    RecoverSubscription,
    /// Unsubscribe every subscription the record names (not-found counts as done).
    Unsubscribe,
    /// Unsubscribe the subscriptions whose topic is no longer configured (a settings change).
    UnsubscribeRetired,
    /// SetQueueAttributes `Policy`: the queue policy admits exactly the configured topics again (a
    /// queue keeps the policy of its creation; a topic added later would be denied by it).
    UpdatePolicy,
    /// GetQueueUrl of the derived name; a missing queue leaves `queue_url` empty.
    LookupQueueUrl,
    /// DeleteQueue `queue_url` if known (not-found counts as done).
    DeleteQueue,
    /// Conditional update of the expected state → DRAINING.
    MarkDraining,
    /// Conditional put of the record as a DRAINING or GONE tombstone (expected state, or absent).
    Tombstone(State),
}

impl Step {
    /// True for the conditional writes of the record (each a barrier between stages).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Claim | Self::MarkReady | Self::MarkDraining | Self::Tombstone(_)
        )
    }
    /// Name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::CreateQueue => "create-queue",
            Self::Subscribe => "subscribe",
            Self::MarkReady => "mark-ready",
            Self::RecoverSubscription => "recover-subscription",
            Self::Unsubscribe => "unsubscribe",
            Self::UnsubscribeRetired => "unsubscribe-retired",
            Self::UpdatePolicy => "update-policy",
            Self::LookupQueueUrl => "lookup-queue-url",
            Self::DeleteQueue => "delete-queue",
            Self::MarkDraining => "mark-draining",
            Self::Tombstone(State::Draining) => "tombstone-draining",
            Self::Tombstone(_) => "tombstone-gone",
        }
    }
}

/// A plan: the record to converge to and the steps that get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Why.
    pub intent: Intent,
    /// The working record: starts from the stored one (or a fresh one), steps fill it in.
    pub record: Record,
    /// The stored state every conditional write expects (`None`: no record exists).
    pub expected: Option<State>,
    /// What to do, in order.
    pub steps: Vec<Step>,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run this plan.
    Act(Box<Plan>),
    /// Do nothing, for this reason.
    Skip(Skip),
}

/// An event that passed the scope checks: everything the rest of the path needs, derived once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// What the event asks for.
    pub intent: Intent,
    /// Every name derived from the task ARN.
    pub names: TaskNames,
    /// The facts the event carries about its task.
    pub facts: TaskFacts,
    /// When the event happened (`time`), for latency metrics.
    pub time: Option<DateTime<Utc>>,
}

impl Admitted {
    /// The plan for this event given what is stored ([`plan_for`]); the executor calls it once per
    /// round without admitting the event again.
    pub fn plan(&self, stored: Option<&Record>, settings: &Settings, now: DateTime<Utc>) -> Decision {
        plan_for(self.intent, &self.names, &self.facts, stored, settings, now)
    }
}

/// Why an admitted-looking event cannot be acted on at all: a permanent input error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The task ARN does not give a valid queue name.
    #[error(transparent)]
    Naming(#[from] NamingError),
}

/// Classifies the status pair.
pub fn intent_of(last: &TaskStatus, desired: &TaskStatus) -> Option<Intent> {
    if *last == TaskStatus::Stopped {
        return Some(Intent::Stopped);
    }
    match desired {
        TaskStatus::Stopped => Some(Intent::StopInitiated),
        TaskStatus::Running if last.is_starting_or_running() => Some(Intent::Provision),
        _ => None,
    }
}

/// The checks that need no stored state: source, detail-type, scope, intent, age, names.
/// A skip here is decided before any AWS call.
pub fn admit(
    event: &TaskEvent,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Result<Admitted, Skip>, DecideError> {
    if event.source != crate::event::ECS_SOURCE {
        return Ok(Err(Skip::OtherSource(event.source.clone())));
    }
    if event.detail_type != crate::event::TASK_STATE_CHANGE {
        return Ok(Err(Skip::OtherDetailType(event.detail_type.clone())));
    }
    let d = &event.detail;
    if !settings.scope.owns_cluster(&d.cluster_arn) {
        return Ok(Err(Skip::ForeignCluster(d.cluster_arn.clone())));
    }
    if !settings.scope.owns_group(d.group.as_deref()) {
        return Ok(Err(Skip::ForeignGroup(d.group.clone())));
    }
    let Some(intent) = intent_of(&d.last_status, &d.desired_status) else {
        let (last, desired) = (d.last_status.clone(), d.desired_status.clone());
        return Ok(Err(Skip::NotActionable { last, desired }));
    };
    if intent == Intent::Provision {
        if let Some(time) = event.time {
            let age = now - time;
            if age > Duration::seconds(settings.tombstone_ttl_seconds as i64) {
                return Ok(Err(Skip::TooOld {
                    age_seconds: age.num_seconds(),
                }));
            }
        }
    }
    let names = TaskNames::derive(&d.task_arn, settings.naming())?;
    Ok(Ok(Admitted {
        intent,
        names,
        facts: TaskFacts::of_event(event),
        time: event.time,
    }))
}

/// Decides what to do. `stored` is the record as read (teardown) or as returned by a rejected claim
/// (provisioning); `None` means no record exists (or, for provisioning, that none was read yet).
pub fn decide(
    event: &TaskEvent,
    stored: Option<&Record>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Decision, DecideError> {
    Ok(match admit(event, settings, now)? {
        Ok(admitted) => admitted.plan(stored, settings, now),
        Err(skip) => Decision::Skip(skip),
    })
}

/// What a plan needs to know about a task besides its names: from an event, or (for the sweeper) from an
/// ECS task description, a stored record or a queue's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    /// The task ARN.
    pub task_arn: String,
    /// The cluster ARN.
    pub cluster_arn: String,
    /// The task group.
    pub group: Option<String>,
    /// The ECS `version` of the task, when known.
    pub version: Option<u64>,
}

impl TaskFacts {
    /// The facts an event carries.
    pub fn of_event(event: &TaskEvent) -> Self {
        let d = &event.detail;
        Self {
            task_arn: d.task_arn.clone(),
            cluster_arn: d.cluster_arn.clone(),
            group: d.group.clone(),
            version: d.version,
        }
    }
}

/// The plan for an intent that already passed its scope checks ([`admit`] for events; the sweeper's
/// reconciler checks scope itself). `stored` as for [`decide`].
pub fn plan_for(
    intent: Intent,
    names: &TaskNames,
    facts: &TaskFacts,
    stored: Option<&Record>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Decision {
    use Step::*;
    let state = stored.map(|r| r.state);
    let has_url = stored.is_some_and(|r| r.queue_url.is_some());
    let (missing, retired) = stored.map_or((true, false), |r| topic_drift(r, settings));
    let recover = |steps: &mut Vec<Step>| {
        if missing {
            steps.push(RecoverSubscription);
        }
        steps.push(Unsubscribe);
    };
    let steps = match (intent, state) {
        (Intent::Provision, None) => vec![Claim, CreateQueue, Subscribe, MarkReady],
        (Intent::Provision, Some(State::Provisioning)) => vec![CreateQueue, Subscribe, MarkReady],
        (Intent::Provision, Some(State::Ready)) => match (missing, retired) {
            (false, false) => return Decision::Skip(Skip::AlreadyReady),
            (true, false) => vec![Subscribe, UpdatePolicy, MarkReady],
            (false, true) => vec![UnsubscribeRetired, UpdatePolicy, MarkReady],
            (true, true) => vec![Subscribe, UnsubscribeRetired, UpdatePolicy, MarkReady],
        },
        (Intent::Provision, Some(s)) => return Decision::Skip(Skip::Tombstoned(s)),

        (Intent::StopInitiated, None) => vec![Tombstone(State::Draining)],
        (Intent::StopInitiated, Some(State::Provisioning)) => {
            let mut s = Vec::new();
            recover(&mut s);
            s.push(MarkDraining);
            s
        }
        (Intent::StopInitiated, Some(State::Ready)) => vec![Unsubscribe, MarkDraining],
        (Intent::StopInitiated, Some(s)) => return Decision::Skip(Skip::AlreadyDraining(s)),

        (Intent::Stopped, None) => vec![LookupQueueUrl, DeleteQueue, Tombstone(State::Gone)],
        (Intent::Stopped, Some(State::Gone)) => return Decision::Skip(Skip::AlreadyGone),
        (Intent::Stopped, Some(s)) => {
            let mut steps = Vec::new();
            match s {
                State::Provisioning => recover(&mut steps),
                State::Ready => steps.push(Unsubscribe),
                _ => {}
            }
            if !has_url {
                steps.push(LookupQueueUrl);
            }
            steps.extend([DeleteQueue, Tombstone(State::Gone)]);
            steps
        }
    };
    let record = working_record(names, facts, stored, now);
    Decision::Act(Box::new(Plan {
        intent,
        record,
        expected: state,
        steps,
    }))
}

/// Whether a record lacks a subscription to a configured topic, and whether it names one to a topic
/// no longer configured.
pub fn topic_drift(record: &Record, settings: &Settings) -> (bool, bool) {
    let missing = settings.topic_arns().any(|t| !record.subscriptions.contains_key(t));
    let retired = record.subscriptions.keys().any(|t| settings.topic(t).is_none());
    (missing, retired)
}

fn working_record(names: &TaskNames, facts: &TaskFacts, stored: Option<&Record>, now: DateTime<Utc>) -> Record {
    let event_version = facts.version.unwrap_or(0);
    let mut r = stored.cloned().unwrap_or_else(|| Record {
        task_id: names.record_key().to_owned(),
        task_arn: facts.task_arn.clone(),
        cluster_arn: facts.cluster_arn.clone(),
        group: facts.group.clone(),
        queue_name: names.queue_name.as_str().to_owned(),
        queue_arn: names.queue_arn.clone(),
        queue_url: None,
        subscriptions: Default::default(),
        state: State::Provisioning,
        version: 0,
        created_at: now,
        updated_at: now,
        expires_at: None,
        revision: 0,
    });
    r.version = r.version.max(event_version);
    r.updated_at = now;
    r
}

/// The record a step leaves behind (what the conditional write stores): one revision on.
pub fn apply(record: &Record, step: Step, settings: &Settings, now: DateTime<Utc>) -> Record {
    let mut r = record.clone();
    r.updated_at = now;
    r.revision = record.revision + 1;
    match step {
        Step::Claim => r.state = State::Provisioning,
        Step::MarkReady => r.state = State::Ready,
        Step::MarkDraining => {
            r.state = State::Draining;
            r.subscriptions.clear();
        }
        Step::Tombstone(state) => {
            r.state = state;
            r.subscriptions.clear();
            if state == State::Gone {
                r.queue_url = None;
            }
            r.expires_at = Some(now.timestamp() + settings.tombstone_ttl_seconds as i64);
        }
        _ => {}
    }
    r
}

/// What undoes our work after MarkReady lost a race: the steps, and the record they run on (ours, less
/// every subscription the current record names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Our record, naming only the subscriptions to undo.
    pub record: Record,
}

/// After MarkReady lost a race (the record moved on while we provisioned), what undoes our work:
/// `Some(undo)` to compensate, `None` to decide again from `current` (another provisioning holds the
/// record: our queue and subscriptions are the same resources it is making, so undoing them would
/// unsubscribe a live task). `ours` holds the queue URL and subscription ARNs this invocation has.
///
/// Only what the current record does not name is undone: a subscription ARN it names is live (or its
/// owner's teardown removes it), and a queue is deleted only when the task is GONE (or its record is).
///
/// A DRAINING record that names no queue URL never reached READY: no teardown knows the queue, and a
/// STOPPED that looked the name up before our CreateQueue will not look again, so the queue goes too
/// (found by the explorer: a late provisioner re-created the queue between the lookup and the tombstone).
pub fn after_lost_race(current: Option<&Record>, ours: &Record) -> Option<Undo> {
    let mut record = ours.clone();
    if let Some(c) = current {
        record.subscriptions.retain(|_, arn| !c.names(arn));
    }
    let steps = match current.map(|r| (r.state, r.queue_url.is_some())) {
        Some((State::Provisioning, _)) => return None,
        Some((State::Ready, _)) if record.subscriptions.is_empty() => vec![],
        Some((State::Ready, _)) | Some((State::Draining, true)) => vec![Step::Unsubscribe],
        Some((State::Draining, false) | (State::Gone, _)) | None => vec![Step::Unsubscribe, Step::DeleteQueue],
    };
    Some(Undo { steps, record })
}

mod stages;
pub use stages::stages;

#[cfg(test)]
mod tests;
