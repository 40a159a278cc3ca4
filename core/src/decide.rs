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
//! A READY record that differs from what the settings want (a topic added or removed, other subscription
//! or queue attributes, a refused topic due for another try) is converged by the next start event or
//! sweep ([`crate::converge`]): the new topics are named first (`record-intent`), then the queue, the
//! subscriptions and the retired topics are brought in line at once, then MarkReady. A writer of an
//! older settings generation leaves a newer record alone.
//!
//! # Layout
//! - `types`: the vocabulary ([`Intent`], [`Skip`], [`Step`], [`Plan`], [`Decision`]...).
//! - this module: [`admit`] (the checks that need no stored state) and [`decide`].
//! - `plan`: [`plan_for`], the steps per intent and stored state, and [`apply`] (the record a write leaves).
//! - `undo`: [`after_lost_race`], the compensation after a lost MarkReady.
//! - `stages`: [`stages`], which steps of a plan run at once.
//! - `tests.rs`: the decision table, one row per rule.

mod plan;
mod stages;
mod types;
mod undo;

pub use plan::{apply, plan_for, plan_with, topic_drift};
pub use stages::stages;
pub use types::{Admitted, DecideError, Decision, Hints, Intent, Plan, Role, Skip, Step, TaskFacts};
pub use undo::{after_lost_race, AfterLoss, Undo};

use chrono::{DateTime, Duration, Utc};

use crate::event::{TaskEvent, TaskStatus};
use crate::naming::TaskNames;
use crate::record::Record;
use crate::settings::Settings;

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

#[cfg(test)]
mod tests;
