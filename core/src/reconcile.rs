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

mod inventory;
mod judge;
mod types;

pub use inventory::{EcsTask, Inventory, QueueDetails, SeenQueue, SeenSubscription};
pub use types::{Action, ActionKind, Ecs, Held, Hold, Reconciled};

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::decide::{intent_of, Intent};
use crate::naming::QueueName;
use crate::record::Record;
use crate::settings::Settings;
use judge::{Cx, Subject};

/// How long before a sweep a READY record must have been written for a subscription it names, missing
/// from its topic's complete listing, to count as lost: the listings are read before the records, so a
/// subscription a writer made (and recorded) while the sweep listed would look lost. Longer than any
/// invocation (the functions time out at 30 s).
pub const LOST_AFTER: Duration = Duration::seconds(120);

/// The queues that need [`QueueDetails`] (tags) before [`reconcile`]: no record, and ECS does not say
/// their task runs. Only these cost extra calls; without tasksub's tags such a queue is never touched.
pub fn needs_details<'a>(inv: &'a Inventory, settings: &Settings) -> Vec<&'a SeenQueue> {
    let records = index_records(&inv.records);
    let known = index_tasks(&inv.tasks);
    inv.queues
        .iter()
        .filter(|q| {
            task_of_queue(q, settings)
                .is_some_and(|id| !records.contains_key(id.as_str()) && !is_alive(inv, &known, &id))
        })
        .collect()
}

/// Decides, per task, what to do (no audit).
pub fn reconcile(inv: &Inventory, settings: &Settings, grace_seconds: u64, now: DateTime<Utc>) -> Reconciled {
    reconcile_with(inv, settings, grace_seconds, now, 0)
}

/// How often the audit window moves: the sweeper's shortest schedule.
pub const AUDIT_SLOT_SECONDS: i64 = 300;

/// The live tasks a run audits: at most `n` READY records of running tasks, chosen so that successive
/// runs audit different tasks and every live task is audited within `cycle` runs, about `live / n`.
///
/// Stateless: the live tasks, ordered by a stable hash of their ID, are dealt into `cycle` windows
/// (task `i` into window `i mod cycle`); the run in 5-minute slot `s` audits window `s mod cycle`.
/// `cycle` is the smallest count ≥ ⌈live / n⌉ that is coprime with 6, so a sweeper scheduled every
/// `c` slots (the template admits 5, 10, 15, 20, 30 minutes and 1, 2, 3, 6 hours: `c` has no prime
/// factor but 2 and 3) still visits every window: stepping by `c` modulo a number coprime with it
/// reaches every residue.
pub fn audit_set(inv: &Inventory, n: usize, now: DateTime<Utc>) -> BTreeSet<&str> {
    if n == 0 {
        return BTreeSet::new();
    }
    let tasks = index_tasks(&inv.tasks);
    let mut live: Vec<(u64, &str)> = inv
        .records
        .iter()
        .filter(|r| r.state == crate::record::State::Ready)
        .filter(|r| {
            tasks
                .get(r.task_id.as_str())
                .is_some_and(|t| classify(t) == Ecs::Running)
        })
        .map(|r| (stable_hash(&r.task_id), r.task_id.as_str()))
        .collect();
    live.sort_unstable();
    live.dedup();
    let cycle = audit_cycle(live.len(), n);
    let slot = now.timestamp().div_euclid(AUDIT_SLOT_SECONDS) as u64;
    let window = (slot % cycle as u64) as usize;
    live.into_iter()
        .enumerate()
        .filter(|(i, _)| i % cycle == window)
        .map(|(_, (_, id))| id)
        .collect()
}

/// How many runs an audit cycle takes for `live` tasks, `n` per run: the smallest count ≥ ⌈live / n⌉
/// coprime with 6 (see [`audit_set`]).
pub fn audit_cycle(live: usize, n: usize) -> usize {
    let mut cycle = live.div_ceil(n.max(1)).max(1);
    while cycle % 2 == 0 || cycle % 3 == 0 {
        cycle += 1;
    }
    cycle
}

/// FNV-1a of a task ID: an order that does not depend on when tasks started.
fn stable_hash(task_id: &str) -> u64 {
    task_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Decides, per task, what to do; `audit` live tasks in sync have their attributes read and converged.
pub fn reconcile_with(
    inv: &Inventory,
    settings: &Settings,
    grace_seconds: u64,
    now: DateTime<Utc>,
    audit: usize,
) -> Reconciled {
    let audited = audit_set(inv, audit, now);
    let cx = Cx {
        settings,
        grace: grace_of(grace_seconds),
        now,
        listed: &inv.listed,
        audit: &audited,
    };
    let mut out = Reconciled::default();
    for (key, why) in &inv.quarantined {
        out.held.push(Held {
            task_id: Some(key.clone()),
            queue: None,
            hold: Hold::Quarantined(why.clone()),
        });
    }
    let seen = subscriptions_by_task(inv, settings);
    let records = index_records(&inv.records);
    let queues = index_queues(&inv.queues, settings, &mut out.held);
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
        if inv.quarantined.contains_key(id) {
            continue;
        }
        let queue = queues.get(id).copied();
        let (ecs, task) = match tasks.get(id) {
            Some(t) => (classify(t), Some(*t)),
            None if inv.opaque.contains(id) => (Ecs::Busy, None),
            None => (Ecs::Unknown, None),
        };
        let record = records.get(id).copied();
        let details = queue.and_then(|q| inv.details.get(&q.name));
        let subject = Subject {
            id,
            ecs,
            task,
            record,
            queue,
            details,
            seen: seen.get(id).cloned().unwrap_or_default(),
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

/// Task ID → the listed subscriptions whose endpoint is that task's queue.
fn subscriptions_by_task<'a>(inv: &'a Inventory, settings: &Settings) -> BTreeMap<String, Vec<&'a SeenSubscription>> {
    let mut out: BTreeMap<String, Vec<&SeenSubscription>> = BTreeMap::new();
    for s in &inv.subscriptions {
        if let Some((id, _)) = subscriptions::our_endpoint(s, settings) {
            out.entry(id).or_default().push(s);
        }
    }
    out
}

/// Task ID → queue, for the queues whose name after the prefix is a task ID; the other prefixed queues
/// are held as unrecognised.
fn index_queues<'a>(
    queues: &'a [SeenQueue],
    settings: &Settings,
    held: &mut Vec<Held>,
) -> BTreeMap<String, &'a SeenQueue> {
    let mut out = BTreeMap::new();
    for q in queues {
        match task_of_queue(q, settings) {
            Some(id) => {
                out.insert(id, q);
            }
            None if q.name.starts_with(settings.queue.prefix.as_str()) => held.push(Held {
                task_id: None,
                queue: Some(q.name.clone()),
                hold: Hold::UnrecognisedName,
            }),
            None => {}
        }
    }
    out
}

/// The grace period as a duration (seconds beyond what a duration holds are capped).
fn grace_of(grace_seconds: u64) -> Duration {
    Duration::seconds(grace_seconds.min(i64::MAX as u64 / 1000) as i64)
}

/// `Some(hold)` while `since` is younger than the grace period.
fn grace_hold(kind: ActionKind, since: DateTime<Utc>, grace: Duration, now: DateTime<Utc>) -> Option<Hold> {
    (now - since < grace).then(|| Hold::Grace {
        kind,
        until: since.checked_add_signed(grace).unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

/// Task ID → record.
fn index_records(records: &[Record]) -> BTreeMap<&str, &Record> {
    records.iter().map(|r| (r.task_id.as_str(), r)).collect()
}

/// True when ECS says the task is alive: running, winding down while desired RUNNING, or listed but not
/// described.
fn is_alive(inv: &Inventory, tasks: &BTreeMap<&str, &EcsTask>, id: &str) -> bool {
    inv.opaque.contains(id)
        || tasks
            .get(id)
            .is_some_and(|t| matches!(classify(t), Ecs::Running | Ecs::Busy))
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

#[cfg(test)]
mod tests;
