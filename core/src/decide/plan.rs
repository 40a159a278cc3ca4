//! The plan for an admitted intent: the steps column of the decision table (one function per intent),
//! the working record the steps fill in, and the record each conditional write leaves behind.

use chrono::{DateTime, Utc};

use super::{Decision, Intent, Plan, Skip, Step, TaskFacts};
use crate::naming::TaskNames;
use crate::record::{Record, State};
use crate::settings::Settings;

/// The plan for an intent that already passed its scope checks ([`super::admit`] for events; the
/// sweeper's reconciler checks scope itself). `stored` as for [`super::decide`].
pub fn plan_for(
    intent: Intent,
    names: &TaskNames,
    facts: &TaskFacts,
    stored: Option<&Record>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Decision {
    match steps_for(intent, stored, settings) {
        Ok(steps) => Decision::Act(Box::new(Plan {
            intent,
            record: working_record(names, facts, stored, now),
            expected: stored.map(|r| r.state),
            steps,
        })),
        Err(skip) => Decision::Skip(skip),
    }
}

/// The steps for an intent given the stored record, or why there are none.
fn steps_for(intent: Intent, stored: Option<&Record>, settings: &Settings) -> Result<Vec<Step>, Skip> {
    let state = stored.map(|r| r.state);
    let (missing, retired) = stored.map_or((true, false), |r| topic_drift(r, settings));
    match intent {
        Intent::Provision => provision_steps(state, missing, retired),
        Intent::StopInitiated => stop_initiated_steps(state, missing),
        Intent::Stopped => stopped_steps(state, missing, stored.is_some_and(|r| r.queue_url.is_some())),
    }
}

/// Provisioning: claim and create, finish a half-done one, or converge a READY record's topics.
fn provision_steps(state: Option<State>, missing: bool, retired: bool) -> Result<Vec<Step>, Skip> {
    use Step::*;
    Ok(match state {
        None => vec![Claim, CreateQueue, Subscribe, MarkReady],
        Some(State::Provisioning) => vec![CreateQueue, Subscribe, MarkReady],
        Some(State::Ready) => match (missing, retired) {
            (false, false) => return Err(Skip::AlreadyReady),
            (true, false) => vec![Subscribe, UpdatePolicy, MarkReady],
            (false, true) => vec![UnsubscribeRetired, UpdatePolicy, MarkReady],
            (true, true) => vec![Subscribe, UnsubscribeRetired, UpdatePolicy, MarkReady],
        },
        Some(s) => return Err(Skip::Tombstoned(s)),
    })
}

/// Stop initiated: unsubscribe and mark DRAINING (a tombstone when no record exists).
fn stop_initiated_steps(state: Option<State>, missing: bool) -> Result<Vec<Step>, Skip> {
    use Step::*;
    Ok(match state {
        None => vec![Tombstone(State::Draining)],
        Some(State::Provisioning) => [recovering_unsubscribe(missing), vec![MarkDraining]].concat(),
        Some(State::Ready) => vec![Unsubscribe, MarkDraining],
        Some(s) => return Err(Skip::AlreadyDraining(s)),
    })
}

/// Stopped: unsubscribe what is still subscribed, delete the queue (looked up when no URL is stored),
/// leave a GONE tombstone.
fn stopped_steps(state: Option<State>, missing: bool, has_url: bool) -> Result<Vec<Step>, Skip> {
    use Step::*;
    let mut steps = match state {
        None => return Ok(vec![LookupQueueUrl, DeleteQueue, Tombstone(State::Gone)]),
        Some(State::Gone) => return Err(Skip::AlreadyGone),
        Some(State::Provisioning) => recovering_unsubscribe(missing),
        Some(State::Ready) => vec![Unsubscribe],
        Some(_) => vec![],
    };
    if !has_url {
        steps.push(LookupQueueUrl);
    }
    steps.extend([DeleteQueue, Tombstone(State::Gone)]);
    Ok(steps)
}

/// Unsubscribing a PROVISIONING record: first learn the ARNs of the subscriptions it may not have
/// recorded (only when it misses some).
fn recovering_unsubscribe(missing: bool) -> Vec<Step> {
    if missing {
        vec![Step::RecoverSubscription, Step::Unsubscribe]
    } else {
        vec![Step::Unsubscribe]
    }
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
