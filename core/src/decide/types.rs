//! The vocabulary of the decision: what an event asks for ([`Intent`]), which function handles it
//! ([`Role`]), why nothing happens ([`Skip`]), what happens ([`Step`], [`Plan`], [`Decision`]) and the facts
//! a plan is made from ([`Admitted`], [`TaskFacts`]).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};

use super::plan_for;
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
    /// The record was converged by a newer settings generation: an older writer never undoes its work.
    OlderGeneration {
        /// This writer's generation.
        writer: u64,
        /// The record's.
        record: u64,
    },
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
            Self::OlderGeneration { .. } => "older-generation",
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
            Self::OlderGeneration { writer, record } => write!(
                f,
                "the record was converged by settings generation {record}, newer than this writer's {writer}: \
                 left to the newer settings"
            ),
        }
    }
}

/// One step of a plan. The executor maps each to at most one AWS call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Conditional PutItem of the PROVISIONING record if none exists (returns the existing one otherwise).
    Claim,
    /// Conditional update naming topics as pending before their first Subscribe (a topic added to the
    /// settings, or a refused one tried again): nothing tasksub creates is ever unnamed.
    RecordIntent,
    /// The queue as desired ([`crate::converge::queue`]): CreateQueue with policy, attributes and tags
    /// (it also answers for a queue that is already right, and re-creates one deleted by hand); a queue
    /// that exists with other attributes is adopted if its tags say it is ours and its attributes are set.
    /// Fills `queue_url`.
    CreateQueue,
    /// Every configured topic's subscription as desired ([`crate::converge::topic`]), one call chain per
    /// topic, all at once: subscribed (ARN recorded), or refused for good (kept per topic in the record).
    Subscribe,
    /// Conditional update PROVISIONING|READY → READY with URL, subscriptions, refusals, the settings'
    /// generation and fingerprint.
    MarkReady,
    /// Remove every subscription the record names, recorded or pending, whatever the settings say
    /// (a pending one is found by listing its topic; never by subscribing).
    Unsubscribe,
    /// Remove the subscriptions whose topic is no longer configured (a settings change).
    UnsubscribeRetired,
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
            Self::Claim | Self::RecordIntent | Self::MarkReady | Self::MarkDraining | Self::Tombstone(_)
        )
    }
    /// Name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::RecordIntent => "record-intent",
            Self::CreateQueue => "create-queue",
            Self::Subscribe => "subscribe",
            Self::MarkReady => "mark-ready",
            Self::Unsubscribe => "unsubscribe",
            Self::UnsubscribeRetired => "unsubscribe-retired",
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
    /// Read the queue's and the known subscriptions' attributes and converge them (the settings changed
    /// since the record was converged, or the sweeper saw something missing).
    pub observe: bool,
    /// The topics pending in the stored record before this plan: an earlier attempt may have made their
    /// subscriptions without recording the ARN.
    pub inherited: BTreeSet<String>,
    /// The READY record as read, before the hints were applied: a plan whose outcome equals it (an
    /// audit that changed nothing) does not write it again. `None` for any other stored state.
    pub baseline: Option<Record>,
}

/// What a writer knows that a record does not say: recorded subscriptions missing from their topics'
/// complete listings (the sweeper: deleted by the topic's owner, or lost with a re-created topic), and
/// subscriptions this invocation made that the record does not name (after a lost race: they are to be
/// recorded). Events start with none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// Read and converge every known subscription and the queue (an audit).
    pub verify: bool,
    /// Topics whose recorded subscription no longer exists.
    pub lost: BTreeSet<String>,
    /// Subscriptions that exist and the record does not name: topic → ARN (recorded by the plan).
    pub adopt: std::collections::BTreeMap<String, String>,
}

/// The outcome of [`decide`](super::decide).
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
    /// [`Self::plan`] with hints (after a lost race: subscriptions the winner names stale).
    pub fn plan_with(
        &self,
        stored: Option<&Record>,
        settings: &Settings,
        now: DateTime<Utc>,
        hints: &Hints,
    ) -> Decision {
        super::plan_with(self.intent, &self.names, &self.facts, stored, settings, now, hints)
    }
}

/// Why an admitted-looking event cannot be acted on at all: a permanent input error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// The task ARN does not give a valid queue name.
    #[error(transparent)]
    Naming(#[from] NamingError),
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
