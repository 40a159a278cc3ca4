//! The plan for an admitted intent: the steps column of the decision table (one function per intent),
//! the working record the steps fill in, and the record each conditional write leaves behind.
//!
//! Every plan converges the task toward its desired state ([`crate::converge`]): a start creates (or
//! adopts) the queue and subscribes every configured topic, a READY record whose settings changed, whose
//! topics drifted or whose refused topics are due is converged, a stop removes every subscription the
//! record names whatever the settings say, and a stopped task ends with nothing left.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Decision, Hints, Intent, Plan, Skip, Step, TaskFacts};
use crate::converge::{self, plan::drift, Authority};
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
    plan_with(intent, names, facts, stored, settings, now, &Hints::default())
}

/// [`plan_for`] with what the sweeper saw ([`Hints`]): subscriptions missing from the topics' listings.
pub fn plan_with(
    intent: Intent,
    names: &TaskNames,
    facts: &TaskFacts,
    stored: Option<&Record>,
    settings: &Settings,
    now: DateTime<Utc>,
    hints: &Hints,
) -> Decision {
    let mut record = working_record(names, facts, stored, settings, now);
    let inherited = record.pending.clone();
    let mut adopted = false;
    if let Some(r) = stored {
        // The sweeper saw these recorded subscriptions missing from complete listings: they are gone.
        for topic in &hints.lost {
            if r.state == State::Ready {
                record.subscriptions.remove(topic);
            }
        }
        // Subscriptions this invocation made that the record does not name: recorded now.
        if matches!(r.state, State::Ready | State::Provisioning) {
            // (the working record: a recorded subscription just found lost no longer names its topic)
            for (topic, arn) in &hints.adopt {
                if settings.topic(topic).is_none() || record.subscriptions.contains_key(topic) {
                    continue;
                }
                adopted = true;
                record.subscriptions.insert(topic.clone(), arn.clone());
                record.pending.remove(topic);
                record.refused.remove(topic);
            }
        }
    }
    let verify = hints.verify || !hints.lost.is_empty();
    let steps = steps_for(intent, stored.map(|r| r.state), &record, settings, now, verify);
    let steps = match steps {
        Err(Skip::AlreadyReady) if adopted => Ok((vec![Step::MarkReady], false)),
        other => other,
    };
    match steps {
        Ok((steps, observe)) => {
            let intent_topics = intent_topics(&steps, &record, &inherited, settings, now, observe);
            record.pending.extend(intent_topics);
            Decision::Act(Box::new(Plan {
                intent,
                record,
                expected: stored.map(|r| r.state),
                steps,
                observe,
                inherited: if stored.is_some() { inherited } else { BTreeSet::new() },
                baseline: stored.filter(|r| r.state == State::Ready).cloned(),
            }))
        }
        Err(skip) => Decision::Skip(skip),
    }
}

/// The topics a `claim` or `record-intent` write names as pending before the first Subscribe.
fn intent_topics(
    steps: &[Step],
    record: &Record,
    inherited: &BTreeSet<String>,
    settings: &Settings,
    now: DateTime<Utc>,
    observe: bool,
) -> Vec<String> {
    if !steps.iter().any(|s| matches!(s, Step::Claim | Step::RecordIntent)) {
        return vec![];
    }
    let targets = converge::plan::subscribe_targets(record, inherited, settings, now, observe);
    converge::desired_topics(&targets, record)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The steps for an intent given the stored state (and the working record), or why there are none; and
/// whether the plan reads and converges attributes.
fn steps_for(
    intent: Intent,
    state: Option<State>,
    record: &Record,
    settings: &Settings,
    now: DateTime<Utc>,
    verify: bool,
) -> Result<(Vec<Step>, bool), Skip> {
    match intent {
        Intent::Provision => provision_steps(state, record, settings, now, verify),
        Intent::StopInitiated => stop_initiated_steps(state, record).map(|s| (s, false)),
        Intent::Stopped => stopped_steps(state, record).map(|s| (s, false)),
    }
}

/// Provisioning: claim and create, finish a half-done one, or converge a READY record.
fn provision_steps(
    state: Option<State>,
    record: &Record,
    settings: &Settings,
    now: DateTime<Utc>,
    verify: bool,
) -> Result<(Vec<Step>, bool), Skip> {
    use Step::*;
    let live = match state {
        None => return Ok((vec![Claim, CreateQueue, Subscribe, MarkReady], false)),
        Some(s @ (State::Draining | State::Gone)) => return Err(Skip::Tombstoned(s)),
        Some(s) => s,
    };
    if converge::authority(settings, record) == Authority::Older {
        return Err(Skip::OlderGeneration {
            writer: settings.generation,
            record: record.generation,
        });
    }
    let d = drift(record, settings, now, verify);
    if live == State::Ready && d.is_none() {
        return Err(Skip::AlreadyReady);
    }
    let observe = d.stale || verify;
    let mut steps = Vec::new();
    if !d.intent.is_empty() {
        steps.push(RecordIntent);
    }
    if live == State::Provisioning || observe || record.queue_url.is_none() {
        steps.push(CreateQueue);
    }
    if d.subscribe {
        steps.push(Subscribe);
    }
    if d.retire {
        steps.push(UnsubscribeRetired);
    }
    steps.push(MarkReady);
    Ok((steps, observe))
}

/// Stop initiated: unsubscribe everything the record names and mark DRAINING (a tombstone when no
/// record exists).
fn stop_initiated_steps(state: Option<State>, record: &Record) -> Result<Vec<Step>, Skip> {
    use Step::*;
    Ok(match state {
        None => vec![Tombstone(State::Draining)],
        Some(State::Provisioning | State::Ready) => [unsubscribe(record), vec![MarkDraining]].concat(),
        Some(s) => return Err(Skip::AlreadyDraining(s)),
    })
}

/// Stopped: unsubscribe what may still be subscribed, delete the queue (looked up when no URL is
/// stored), leave a GONE tombstone.
fn stopped_steps(state: Option<State>, record: &Record) -> Result<Vec<Step>, Skip> {
    use Step::*;
    let mut steps = match state {
        None => return Ok(vec![LookupQueueUrl, DeleteQueue, Tombstone(State::Gone)]),
        Some(State::Gone) => return Err(Skip::AlreadyGone),
        Some(_) => unsubscribe(record),
    };
    if record.queue_url.is_none() {
        steps.push(LookupQueueUrl);
    }
    steps.extend([DeleteQueue, Tombstone(State::Gone)]);
    Ok(steps)
}

/// The teardown's Unsubscribe, when the record names a subscription that may exist.
fn unsubscribe(record: &Record) -> Vec<Step> {
    if converge::plan::teardown_targets(record).is_empty() {
        vec![]
    } else {
        vec![Step::Unsubscribe]
    }
}

/// Whether a record lacks a subscription to a configured topic, and whether it names one to a topic
/// no longer configured (the topic sets only; [`converge::plan::drift`] is the whole comparison).
pub fn topic_drift(record: &Record, settings: &Settings) -> (bool, bool) {
    let missing = settings.topic_arns().any(|t| !record.may_subscribe(t));
    let retired = record.topics().iter().any(|t| settings.topic(t).is_none());
    (missing, retired)
}

fn working_record(
    names: &TaskNames,
    facts: &TaskFacts,
    stored: Option<&Record>,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Record {
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
        pending: Default::default(),
        refused: Default::default(),
        generation: settings.generation,
        settings_hash: None,
        watch: Default::default(),
        client_filters: Default::default(),
    });
    if stored.is_some_and(is_legacy_provisioning) {
        // Written before intents were recorded: any configured topic may have been subscribed.
        r.pending = settings.topic_arns().map(str::to_owned).collect();
    }
    r.version = r.version.max(event_version);
    r.updated_at = now;
    r
}

/// A PROVISIONING record that names no topic at all was written before intents were recorded (a new
/// claim always names every topic it will subscribe).
fn is_legacy_provisioning(r: &Record) -> bool {
    r.state == State::Provisioning && r.subscriptions.is_empty() && r.pending.is_empty() && r.refused.is_empty()
}

/// The record a step leaves behind (what the conditional write stores): one revision on. MarkReady
/// stamps the writer's generation and settings fingerprint (the record is converged to them); a claim
/// or an intent stamps the generation only (whose intent it is).
pub fn apply(record: &Record, step: Step, settings: &Settings, now: DateTime<Utc>) -> Record {
    let mut r = record.clone();
    r.updated_at = now;
    r.revision = record.revision + 1;
    match step {
        Step::Claim => {
            r.state = State::Provisioning;
            r.generation = settings.generation;
        }
        Step::RecordIntent => r.generation = r.generation.max(settings.generation),
        Step::MarkReady => {
            r.state = State::Ready;
            r.generation = settings.generation;
            r.settings_hash = Some(settings.fingerprint());
            r.client_filters = settings.client_filters();
        }
        Step::MarkDraining => {
            r.state = State::Draining;
            forget_topics(&mut r);
        }
        Step::Tombstone(state) => {
            r.state = state;
            forget_topics(&mut r);
            if state == State::Gone {
                r.queue_url = None;
            }
            r.expires_at = Some(now.timestamp() + settings.tombstone_ttl_seconds as i64);
        }
        _ => {}
    }
    r
}

/// A teardown write: no subscription of the task exists any more; the topics it named stay watched.
fn forget_topics(r: &mut Record) {
    let named: Vec<String> = r.topics().into_iter().map(str::to_owned).collect();
    r.watch.extend(named);
    r.subscriptions.clear();
    r.pending.clear();
    r.refused.clear();
    r.client_filters.clear();
}
