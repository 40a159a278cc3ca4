//! The reconciler's verdict: what to do for a task ([`Action`]), or why it is left alone ([`Hold`]).

use chrono::{DateTime, Utc};

use crate::decide::{plan_with, Decision, Hints, Intent, Plan, Skip, TaskFacts};
use crate::naming::TaskNames;
use crate::record::{Record, State};
use crate::settings::Settings;

/// What the sweeper does for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// Tear down what a stopped or vanished task left behind (record and/or queue).
    RemoveOrphan,
    /// Delete a queue that outlived its GONE tombstone.
    RemoveStrayQueue,
    /// Finish a provisioning a crash interrupted (the task still runs).
    FinishProvisioning,
    /// Provision a running task that has no record (its start event was lost).
    Provision,
    /// Unsubscribe a stopping task whose stop event was lost.
    Drain,
    /// Bring a live task's queue and subscriptions in line with its desired state (the settings changed,
    /// a refused topic is due, its queue or a subscription is missing).
    Converge,
    /// Read a live task's attributes in sync and converge whatever others changed (a rotating sample).
    Audit,
}

impl ActionKind {
    /// Name used in logs, metrics and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RemoveOrphan => "remove-orphan",
            Self::RemoveStrayQueue => "remove-stray-queue",
            Self::FinishProvisioning => "finish-provisioning",
            Self::Provision => "provision",
            Self::Drain => "drain",
            Self::Converge => "converge",
            Self::Audit => "audit",
        }
    }
    /// True for the kinds that remove orphans.
    pub fn is_orphan(self) -> bool {
        matches!(self, Self::RemoveOrphan | Self::RemoveStrayQueue)
    }
}

/// What ECS says about a task, as the reconciler classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecs {
    /// desiredStatus RUNNING, starting or running.
    Running,
    /// desiredStatus STOPPED, not yet stopped.
    Stopping,
    /// lastStatus STOPPED.
    Stopped,
    /// Listed but not described, or desired RUNNING while winding down: alive, left alone.
    Busy,
    /// Not listed in any of our clusters (or MISSING).
    Unknown,
}

impl Ecs {
    /// Name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Busy => "busy",
            Self::Unknown => "unknown",
        }
    }
}

/// One thing to do: a plan, and what is needed to plan again after a conditional write found another
/// state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What kind of repair.
    pub kind: ActionKind,
    /// The task.
    pub task_id: String,
    /// What ECS says about it.
    pub ecs: Ecs,
    /// The queue under our prefix, if one was listed.
    pub queue: Option<String>,
    /// The stored record's state, if any.
    pub record_state: Option<State>,
    /// The intent of the event the sweeper stands in for.
    pub intent: Intent,
    /// Every name of the task.
    pub names: TaskNames,
    /// The facts the plan was made from.
    pub facts: TaskFacts,
    /// The plan.
    pub plan: Plan,
    /// Topics whose recorded subscription is missing from the topic's complete listing (deleted by the
    /// topic's owner, or lost with a re-created topic): the plan makes them again.
    pub lost: std::collections::BTreeSet<String>,
}

impl Action {
    /// The plan again, for a record found by a conditional write (the executor's re-decide).
    pub fn replan(&self, stored: Option<&Record>, settings: &Settings, now: DateTime<Utc>, hints: &Hints) -> Decision {
        match self.kind {
            ActionKind::RemoveStrayQueue => Decision::Skip(Skip::AlreadyGone),
            _ => plan_with(self.intent, &self.names, &self.facts, stored, settings, now, hints),
        }
    }
}

/// Why a task or queue the sweeper looked at is left alone for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The action waits for the grace period to pass.
    Grace {
        /// The action it will be.
        kind: ActionKind,
        /// When it becomes due.
        until: DateTime<Utc>,
    },
    /// The record or queue tags name a cluster outside our scope: ECS was not asked about it.
    ForeignCluster(String),
    /// The queue's tags name another task than its name does: not one of ours.
    ForeignQueue,
    /// The name after the prefix is not a task ID.
    UnrecognisedName,
    /// A record-less queue without tasksub's tags: ownership unproven, never deleted.
    Untagged,
    /// A record-less queue whose `tasksub:stack` tag names another deployment, or is missing (a queue
    /// made before stack tags): not ours to delete (and our IAM would refuse it).
    OtherStack,
    /// A subscription whose task is being provisioned (or runs without a record yet): left to provisioning.
    InFlight,
    /// No task names could be derived (a malformed ARN in a record or tag).
    BadName(String),
    /// The task's record cannot be read (a hand edit, a missing attribute): reported by key and left
    /// alone, with its queue and subscriptions, until someone repairs or deletes the item.
    Quarantined(String),
    /// `decide` found nothing to do.
    Skip(Skip),
}

impl Hold {
    /// Stable code for the report.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Grace { .. } => "grace",
            Self::ForeignCluster(_) => "foreign-cluster",
            Self::ForeignQueue => "foreign-queue",
            Self::UnrecognisedName => "unrecognised-name",
            Self::Untagged => "untagged",
            Self::OtherStack => "other-stack",
            Self::InFlight => "in-flight",
            Self::BadName(_) => "bad-name",
            Self::Quarantined(_) => "quarantined",
            Self::Skip(s) => s.code(),
        }
    }
}

/// Something looked at and left alone, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The task, when known.
    pub task_id: Option<String>,
    /// The queue, when one was listed.
    pub queue: Option<String>,
    /// Why.
    pub hold: Hold,
}

/// The reconciler's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// What to do, in task ID order.
    pub actions: Vec<Action>,
    /// What is left alone for a reason worth reporting (healthy tasks are not listed).
    pub held: Vec<Held>,
}
