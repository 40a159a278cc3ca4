//! Compensation after MarkReady lost a race: what of our work to undo, and what to leave to the record's
//! current owner.

use super::Step;
use crate::record::{Record, State};

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
/// owner's teardown removes it), a subscription to a topic a live current record names as pending is
/// being adopted by its writer, and a queue is deleted only when the task is GONE (or its record is).
///
/// A DRAINING record that names no queue URL never reached READY: no teardown knows the queue, and a
/// STOPPED that looked the name up before our CreateQueue will not look again, so the queue goes too
/// (found by the explorer: a late provisioner re-created the queue between the lookup and the tombstone).
pub fn after_lost_race(current: Option<&Record>, ours: &Record) -> Option<Undo> {
    let mut record = ours.clone();
    if let Some(c) = current {
        // A subscription the current record names is live; one to a topic a live current record names as
        // pending is the same subscription its writer is adopting (Subscribe answers the same ARN).
        let adopting = |topic: &str| !c.state.is_tombstone() && c.pending.contains(topic);
        record.subscriptions.retain(|topic, arn| !c.names(arn) && !adopting(topic));
    }
    // What is undone is what this invocation knows it made: ARNs. A topic it left pending (unverifiable)
    // is named by our record only, and the sweeper's listing finds it.
    record.pending.clear();
    record.refused.clear();
    let steps = match current.map(|r| (r.state, r.queue_url.is_some())) {
        Some((State::Provisioning, _)) => return None,
        Some((State::Ready, _)) if record.subscriptions.is_empty() => vec![],
        Some((State::Ready, _)) | Some((State::Draining, true)) => vec![Step::Unsubscribe],
        Some((State::Draining, false) | (State::Gone, _)) | None => vec![Step::Unsubscribe, Step::DeleteQueue],
    };
    Some(Undo { steps, record })
}
