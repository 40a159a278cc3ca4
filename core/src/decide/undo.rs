//! Compensation after MarkReady lost a race: what of our work to undo, and what to leave to the record's
//! current owner.

use super::{Hints, Step};
use crate::record::{Record, State};
use crate::settings::Settings;

/// What undoes our work after MarkReady lost a race: the steps, and the record they run on (ours, less
/// every subscription the current record names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Our record, naming only the subscriptions to undo.
    pub record: Record,
}

/// What to do after MarkReady lost a race.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLoss {
    /// Undo our work (maybe nothing: every subscription we made is the winner's too).
    Undo(Box<Undo>),
    /// Decide again from the current record, with these hints: another provisioning holds the record
    /// (our resources are the ones it is making), or the READY winner names a stale subscription for a
    /// topic we just subscribed (ours is the live one: the next plan records it), or does not name a
    /// topic our settings want (the next plan adopts ours).
    Redecide(Hints),
}

/// After MarkReady lost a race (the record moved on while we provisioned): what undoes our work, or
/// why to decide again. `ours` holds the queue URL and subscription ARNs this invocation has.
///
/// Only what the current record does not name is undone: a subscription ARN it names is live (or its
/// owner's teardown removes it), and a queue is deleted only when the task is GONE (or its record is).
/// Under a live (READY) winner, a subscription of ours that it does not name by its ARN is never simply
/// removed when our settings want its topic and are at least as new (a live task must not lose a topic
/// that accepts it): we decide again, verifying every subscription, and the plan records ours where the
/// winner names none (it may name it pending: its own Subscribe may have come before ours, so it cannot
/// be trusted to adopt ours). An older writer keeps what the winner names in any way and undoes the rest.
///
/// A DRAINING record that names no queue URL never reached READY: no teardown knows the queue, and a
/// STOPPED that looked the name up before our CreateQueue will not look again, so the queue goes too
/// (found by the explorer: a late provisioner re-created the queue between the lookup and the tombstone).
pub fn after_lost_race(current: Option<&Record>, ours: &Record, settings: &Settings) -> AfterLoss {
    let mut record = ours.clone();
    if let Some(c) = current.filter(|c| c.state == State::Ready) {
        let as_new = settings.generation >= c.generation;
        let unnamed: Vec<&String> = record
            .subscriptions
            .iter()
            .filter(|(_, arn)| !c.names(arn))
            .map(|(t, _)| t)
            .collect();
        if as_new && unnamed.iter().any(|t| settings.topic(t).is_some()) {
            // Which of two ARNs for one topic (ours, the winner's) still exists is not known: either may
            // have been removed by a teardown since, and there is one subscription per topic and queue.
            // So the next plan records ours where the winner names none, and reads every subscription
            // (verify): a missing one is made again, and the record ends naming the live one.
            let adopt = unnamed
                .iter()
                .filter(|t| settings.topic(t).is_some() && !c.subscriptions.contains_key(**t))
                .map(|t| ((*t).clone(), record.subscriptions[*t].clone()))
                .collect();
            return AfterLoss::Redecide(Hints {
                verify: true,
                adopt,
                ..Hints::default()
            });
        }
        // An older writer keeps what the newer winner names in any way, subscribed, pending or refused
        // (the newer settings want the topic: its converge records ours, and a live task never loses a
        // topic to an older generation); it undoes the rest.
        let named = c.topics();
        record
            .subscriptions
            .retain(|t, arn| !c.names(arn) && !named.contains(&t.as_str()));
    } else if let Some(c) = current {
        record.subscriptions.retain(|_, arn| !c.names(arn));
    }
    // What is undone is what this invocation knows it made: ARNs. A topic it left pending (unverifiable)
    // is named by our record only, and the sweeper's listing finds it.
    record.pending.clear();
    record.refused.clear();
    let steps = match current.map(|r| (r.state, r.queue_url.is_some())) {
        Some((State::Provisioning, _)) => return AfterLoss::Redecide(Hints::default()),
        Some((State::Ready, _)) if record.subscriptions.is_empty() => vec![],
        Some((State::Ready, _)) | Some((State::Draining, true)) => vec![Step::Unsubscribe],
        Some((State::Draining, false) | (State::Gone, _)) | None => vec![Step::Unsubscribe, Step::DeleteQueue],
    };
    AfterLoss::Undo(Box::new(Undo { steps, record }))
}
