//! The sweeper's pure half: given what exists (task records, queues under our prefix, the ECS tasks of
//! our clusters), a grace period and `now`, what to do for each task.
//!
//! Every action carries a plan from [`crate::decide::plan_for`], the function the Lambda functions use,
//! so the sweeper runs exactly the steps the missed event would have run:
//!
//! | ECS says the task is | record | queue | action |
//! |---|---|---|---|
//! | running (desired RUNNING, starting or up), in scope | none | any | `provision` (claim, create, subscribe, ready) |
//! | running | PROVISIONING | any | `finish-provisioning` (a crash left it half done) |
//! | running | READY, its topics differ from the settings | any | `converge` (subscribe new ‖ unsubscribe retired, ready) |
//! | stopping (desired STOPPED) | PROVISIONING, READY | any | `drain` (unsubscribe, mark DRAINING) |
//! | stopped | PROVISIONING, READY, DRAINING | any | `remove-orphan` (teardown, GONE tombstone) |
//! | stopped | none | exists, tasksub's tags name this task | `remove-orphan` |
//! | unknown to ECS (cluster in scope) | PROVISIONING, READY, DRAINING | any | `remove-orphan` |
//! | unknown to ECS | none | exists, tasksub's tags name this task | `remove-orphan` |
//! | stopped or unknown | none | exists, no tasksub tags | held (`untagged`): ownership unproven |
//! | stopped or unknown | GONE | exists | `remove-stray-queue` (DeleteQueue only; the tombstone stays) |
//! | anything else | | | nothing (GONE records expire by TTL; a live task's queue is never touched) |
//!
//! Every action waits until its reference time is older than the grace period: the task's `createdAt`
//! (provision), the record's `updatedAt` (finish-provisioning, unknown tasks, stray queues), `stoppingAt`
//! (drain), `stoppedAt` (stopped tasks) or the queue's `CreatedTimestamp` (orphan queues). A missing time
//! does not hold anything back. Queues whose name after the prefix is not a task ID, whose tags name
//! another task or a cluster outside our scope, or that carry no tasksub tags at all, are never touched:
//! a name is no proof of ownership, only tasksub's own tags (or a record) are.
//!
//! Subscriptions are judged by [`subscriptions::orphan_subscriptions`] (ListSubscriptionsByTopic); the
//! sweeper removes them before any queue, so a record-less queue is never deleted while subscribed.

pub mod subscriptions;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::decide::{intent_of, plan_for, topic_drift, Decision, Intent, Plan, Skip, Step, TaskFacts};
use crate::event::TaskStatus;
use crate::naming::{QueueName, TaskArn, TaskNames};
use crate::policy::tags;
use crate::record::{Record, State};
use crate::settings::Settings;

/// One ECS task as DescribeTasks reports it (the fields the sweeper uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTask {
    /// The task ARN.
    pub task_arn: String,
    /// The cluster ARN.
    pub cluster_arn: String,
    /// `service:<name>` or `family:<name>`.
    pub group: Option<String>,
    /// lastStatus.
    pub last_status: TaskStatus,
    /// desiredStatus.
    pub desired_status: TaskStatus,
    /// The task's `version`.
    pub version: Option<u64>,
    /// When the task was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When the task started stopping.
    pub stopping_at: Option<DateTime<Utc>>,
    /// When the task stopped.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A queue under our prefix, as ListQueues returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenQueue {
    /// The queue name.
    pub name: String,
    /// The queue URL.
    pub url: String,
}

/// A subscription on one of our topics, as ListSubscriptionsByTopic returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSubscription {
    /// The subscription ARN.
    pub arn: String,
    /// Its endpoint (a queue ARN for protocol `sqs`).
    pub endpoint: String,
    /// Its protocol (`sqs`, `https`, `lambda`...).
    pub protocol: String,
}

/// What the sweeper reads about a queue that has no record and whose task ECS does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDetails {
    /// `CreatedTimestamp`.
    pub created_at: Option<DateTime<Utc>>,
    /// The queue's tags.
    pub tags: BTreeMap<String, String>,
}

/// Everything the sweeper gathered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Every record of the table.
    pub records: Vec<Record>,
    /// Every queue under the prefix.
    pub queues: Vec<SeenQueue>,
    /// The described tasks of our clusters (desired RUNNING and desired STOPPED).
    pub tasks: Vec<EcsTask>,
    /// IDs of tasks ECS listed but could not describe (a failure other than MISSING): alive, details
    /// unknown, so never touched.
    pub opaque: BTreeSet<String>,
    /// Details of the queues [`needs_details`] named, by queue name.
    pub details: BTreeMap<String, QueueDetails>,
    /// The topic's subscriptions, listed before the records were read (so a subscription made by a
    /// provisioning in flight always finds its claim).
    pub subscriptions: Vec<SeenSubscription>,
}

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
    /// Bring a live task's subscriptions in line with the configured topics (a topic added or removed).
    Converge,
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
}

impl Action {
    /// The plan again, for a record found by a conditional write (the executor's re-decide).
    pub fn replan(&self, stored: Option<&Record>, settings: &Settings, now: DateTime<Utc>) -> Decision {
        match self.kind {
            ActionKind::RemoveStrayQueue => Decision::Skip(Skip::AlreadyGone),
            _ => plan_for(self.intent, &self.names, &self.facts, stored, settings, now),
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

/// The queues that need [`QueueDetails`] (tags) before [`reconcile`]: no record, and ECS does not say
/// their task runs. Only these cost extra calls; without tasksub's tags such a queue is never touched.
pub fn needs_details<'a>(inv: &'a Inventory, settings: &Settings) -> Vec<&'a SeenQueue> {
    let records: BTreeSet<&str> = inv.records.iter().map(|r| r.task_id.as_str()).collect();
    let known = index_tasks(&inv.tasks);
    inv.queues
        .iter()
        .filter(|q| {
            task_of_queue(q, settings).is_some_and(|id| {
                let alive = known
                    .get(id.as_str())
                    .is_some_and(|t| matches!(classify(t), Ecs::Running | Ecs::Busy));
                !records.contains(id.as_str()) && !alive && !inv.opaque.contains(&id)
            })
        })
        .collect()
}

/// Decides, per task, what to do.
pub fn reconcile(inv: &Inventory, settings: &Settings, grace_seconds: u64, now: DateTime<Utc>) -> Reconciled {
    let cx = Cx {
        settings,
        grace: Duration::seconds(grace_seconds.min(i64::MAX as u64 / 1000) as i64),
        now,
    };
    let mut out = Reconciled::default();
    let records: BTreeMap<&str, &Record> = inv.records.iter().map(|r| (r.task_id.as_str(), r)).collect();
    let mut queues: BTreeMap<String, &SeenQueue> = BTreeMap::new();
    for q in &inv.queues {
        match task_of_queue(q, settings) {
            Some(id) => {
                queues.insert(id, q);
            }
            None if q.name.starts_with(settings.queue.prefix.as_str()) => out.held.push(Held {
                task_id: None,
                queue: Some(q.name.clone()),
                hold: Hold::UnrecognisedName,
            }),
            None => {}
        }
    }
    let tasks = index_tasks(&inv.tasks);
    let mut ids: BTreeSet<&str> = records.keys().copied().collect();
    ids.extend(queues.keys().map(String::as_str));
    ids.extend(
        tasks
            .iter()
            .filter(|(_, t)| classify(t) == Ecs::Running)
            .map(|(id, _)| *id),
    );
    for id in ids {
        let record = records.get(id).copied();
        let queue = queues.get(id).copied();
        let (ecs, task) = match tasks.get(id) {
            Some(t) => (classify(t), Some(*t)),
            None if inv.opaque.contains(id) => (Ecs::Busy, None),
            None => (Ecs::Unknown, None),
        };
        let subject = Subject {
            id,
            ecs,
            task,
            record,
            queue,
            details: queue.and_then(|q| inv.details.get(&q.name)),
        };
        match cx.judge(&subject) {
            Some(Ok(action)) => out.actions.push(action),
            Some(Err(hold)) => out.held.push(Held {
                task_id: Some(id.to_owned()),
                queue: queue.map(|q| q.name.clone()),
                hold,
            }),
            None => {}
        }
    }
    out
}

fn task_of_queue(q: &SeenQueue, settings: &Settings) -> Option<String> {
    QueueName::from_existing(&q.name)
        .task_id(&settings.queue.prefix)
        .map(|id| id.as_str().to_owned())
}

fn classify(t: &EcsTask) -> Ecs {
    match intent_of(&t.last_status, &t.desired_status) {
        Some(Intent::Provision) => Ecs::Running,
        Some(Intent::StopInitiated) => Ecs::Stopping,
        Some(Intent::Stopped) => Ecs::Stopped,
        None => Ecs::Busy,
    }
}

/// Task ID → task; when ECS listed a task twice (it stopped between two calls), the later status wins.
fn index_tasks(tasks: &[EcsTask]) -> BTreeMap<&str, &EcsTask> {
    let rank = |t: &EcsTask| match classify(t) {
        Ecs::Running => 0,
        Ecs::Busy | Ecs::Unknown => 1,
        Ecs::Stopping => 2,
        Ecs::Stopped => 3,
    };
    let mut out: BTreeMap<&str, &EcsTask> = BTreeMap::new();
    for t in tasks {
        let Some(id) = crate::naming::task_id_of(&t.task_arn) else {
            continue;
        };
        match out.get(id) {
            Some(seen) if rank(seen) >= rank(t) => {}
            _ => {
                out.insert(id, t);
            }
        }
    }
    out
}

struct Subject<'a> {
    id: &'a str,
    ecs: Ecs,
    task: Option<&'a EcsTask>,
    record: Option<&'a Record>,
    queue: Option<&'a SeenQueue>,
    details: Option<&'a QueueDetails>,
}

struct Cx<'a> {
    settings: &'a Settings,
    grace: Duration,
    now: DateTime<Utc>,
}

type Verdict = Option<Result<Action, Hold>>;

impl Cx<'_> {
    fn judge(&self, s: &Subject<'_>) -> Verdict {
        let state = s.record.map(|r| r.state);
        let updated = s.record.map(|r| r.updated_at);
        match (s.ecs, s.task, state) {
            (Ecs::Running, Some(t), None) => {
                let scope = &self.settings.scope;
                if !scope.owns_cluster(&t.cluster_arn) || !scope.owns_group(t.group.as_deref()) {
                    return None;
                }
                self.act(
                    ActionKind::Provision,
                    Intent::Provision,
                    facts_of_task(t),
                    s,
                    t.created_at,
                )
            }
            (Ecs::Running, Some(t), Some(State::Provisioning)) => self.act(
                ActionKind::FinishProvisioning,
                Intent::Provision,
                facts_of_task(t),
                s,
                updated,
            ),
            (Ecs::Running, Some(t), Some(State::Ready)) => {
                let r = s.record?;
                let (missing, retired) = topic_drift(r, self.settings);
                if !(missing || retired) {
                    return None;
                }
                self.act(ActionKind::Converge, Intent::Provision, facts_of_task(t), s, None)
            }
            (Ecs::Stopping, Some(t), Some(State::Provisioning | State::Ready)) => {
                let since = t.stopping_at.or(updated);
                self.act(ActionKind::Drain, Intent::StopInitiated, facts_of_task(t), s, since)
            }
            (Ecs::Stopped | Ecs::Unknown, _, Some(State::Gone)) => self.stray_queue(s),
            (Ecs::Stopped, Some(t), Some(_)) => self.act(
                ActionKind::RemoveOrphan,
                Intent::Stopped,
                facts_of_task(t),
                s,
                t.stopped_at,
            ),
            (Ecs::Stopped, Some(t), None) if s.queue.is_some() => match proven(s.details, s.id, self.settings) {
                Err(hold) => Some(Err(hold)),
                Ok(()) => self.act(
                    ActionKind::RemoveOrphan,
                    Intent::Stopped,
                    facts_of_task(t),
                    s,
                    t.stopped_at,
                ),
            },
            (Ecs::Unknown, _, Some(_)) => {
                let r = s.record?;
                if !self.settings.scope.owns_cluster(&r.cluster_arn) {
                    return Some(Err(Hold::ForeignCluster(r.cluster_arn.clone())));
                }
                self.act(
                    ActionKind::RemoveOrphan,
                    Intent::Stopped,
                    facts_of_record(r),
                    s,
                    updated,
                )
            }
            (Ecs::Unknown, _, None) => self.orphan_queue(s),
            _ => None,
        }
    }

    /// A queue without a record whose task ECS does not know: ours only if its tags agree.
    fn orphan_queue(&self, s: &Subject<'_>) -> Verdict {
        s.queue?;
        // No details: the queue vanished between ListQueues and the detail calls.
        let d = s.details?;
        let tag = |k: &str| d.tags.get(k).filter(|v| !v.is_empty()).cloned();
        if let Err(hold) = proven(s.details, s.id, self.settings) {
            return Some(Err(hold));
        }
        let task_arn = tag(tags::TASK_ARN).unwrap_or_default();
        let cluster_arn = tag(tags::CLUSTER).unwrap_or_default();
        if !cluster_arn.is_empty() && !self.settings.scope.owns_cluster(&cluster_arn) {
            return Some(Err(Hold::ForeignCluster(cluster_arn)));
        }
        let facts = TaskFacts {
            task_arn,
            cluster_arn,
            group: tag(tags::GROUP),
            version: None,
        };
        self.act(ActionKind::RemoveOrphan, Intent::Stopped, facts, s, d.created_at)
    }

    /// A GONE tombstone whose queue still exists: delete the queue, leave the tombstone to its TTL.
    fn stray_queue(&self, s: &Subject<'_>) -> Verdict {
        let (r, q) = (s.record?, s.queue?);
        if let Some(hold) = self.due(ActionKind::RemoveStrayQueue, Some(r.updated_at)) {
            return Some(Err(hold));
        }
        let names = match TaskNames::derive(&r.task_arn, self.settings.naming()) {
            Ok(n) => n,
            Err(e) => return Some(Err(Hold::BadName(e.to_string()))),
        };
        let mut record = r.clone();
        record.queue_url = Some(q.url.clone());
        let plan = Plan {
            intent: Intent::Stopped,
            record,
            expected: Some(State::Gone),
            steps: vec![Step::DeleteQueue],
        };
        Some(Ok(self.action(
            ActionKind::RemoveStrayQueue,
            Intent::Stopped,
            names,
            facts_of_record(r),
            s,
            plan,
        )))
    }

    /// `Some(hold)` while `since` is younger than the grace period.
    fn due(&self, kind: ActionKind, since: Option<DateTime<Utc>>) -> Option<Hold> {
        let t = since?;
        (self.now - t < self.grace).then(|| Hold::Grace {
            kind,
            until: t.checked_add_signed(self.grace).unwrap_or(DateTime::<Utc>::MAX_UTC),
        })
    }

    fn act(
        &self,
        kind: ActionKind,
        intent: Intent,
        facts: TaskFacts,
        s: &Subject<'_>,
        since: Option<DateTime<Utc>>,
    ) -> Verdict {
        if let Some(hold) = self.due(kind, since) {
            return Some(Err(hold));
        }
        let names = match TaskNames::derive(&facts.task_arn, self.settings.naming()) {
            Ok(n) => n,
            Err(e) => return Some(Err(Hold::BadName(e.to_string()))),
        };
        match plan_for(intent, &names, &facts, s.record, self.settings, self.now) {
            Decision::Act(plan) => Some(Ok(self.action(kind, intent, names, facts, s, *plan))),
            Decision::Skip(skip) => Some(Err(Hold::Skip(skip))),
        }
    }

    fn action(
        &self,
        kind: ActionKind,
        intent: Intent,
        names: TaskNames,
        facts: TaskFacts,
        s: &Subject<'_>,
        plan: Plan,
    ) -> Action {
        Action {
            kind,
            task_id: s.id.to_owned(),
            ecs: s.ecs,
            queue: s.queue.map(|q| q.name.clone()),
            record_state: s.record.map(|r| r.state),
            intent,
            names,
            facts,
            plan,
        }
    }
}

/// A record-less queue is ours only when tasksub's tags name its task and our stack (no details: it
/// vanished, or could not be read).
fn proven(details: Option<&QueueDetails>, id: &str, settings: &Settings) -> Result<(), Hold> {
    let d = details.ok_or(Hold::Untagged)?;
    let arn = d
        .tags
        .get(tags::TASK_ARN)
        .filter(|v| !v.is_empty())
        .ok_or(Hold::Untagged)?;
    match TaskArn::parse(arn) {
        Ok(parsed) if parsed.task_id.as_str() == id => {}
        _ => return Err(Hold::ForeignQueue),
    }
    match d.tags.get(tags::STACK) {
        Some(stack) if *stack == settings.stack => Ok(()),
        _ => Err(Hold::OtherStack),
    }
}

fn facts_of_task(t: &EcsTask) -> TaskFacts {
    TaskFacts {
        task_arn: t.task_arn.clone(),
        cluster_arn: t.cluster_arn.clone(),
        group: t.group.clone(),
        version: t.version,
    }
}

fn facts_of_record(r: &Record) -> TaskFacts {
    TaskFacts {
        task_arn: r.task_arn.clone(),
        cluster_arn: r.cluster_arn.clone(),
        group: r.group.clone(),
        version: Some(r.version),
    }
}

#[cfg(test)]
mod tests;
