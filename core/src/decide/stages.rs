//! Which steps of a plan may run at once. A plan stays a list (the decision table reads it); the
//! executor runs it as stages: the steps of one stage are issued concurrently, a stage starts when the
//! one before it has finished.
//!
//! Three chains of calls are independent of each other: the subscriptions of configured topics
//! (Subscribe, Unsubscribe), those of retired topics (UnsubscribeRetired) and the queue (CreateQueue /
//! LookupQueueUrl → DeleteQueue: delete needs the URL). Subscribe needs no answer of CreateQueue (the queue ARN is
//! derived), and Unsubscribe none of DeleteQueue. A conditional write (claim, MarkReady, MarkDraining,
//! tombstone) is a barrier: it runs alone, after everything before it, so what it records is what
//! happened, and a crash before it leaves the record the redelivery needs. So each step goes to the
//! earliest stage after the last barrier and after the previous step of its own chain:
//!
//! | plan | stages | round trips (+1 read for teardown) |
//! |---|---|---|
//! | claim, CreateQueue, Subscribe, MarkReady | claim · {CreateQueue ‖ Subscribe} · MarkReady | 3 |
//! | Unsubscribe, DeleteQueue, tombstone | {Unsubscribe ‖ DeleteQueue} · tombstone | 2 (+1) |
//! | Unsubscribe, LookupQueueUrl, DeleteQueue, tombstone | {Unsubscribe ‖ Lookup} · DeleteQueue · tombstone | 3 (+1) |
//! | RecordIntent, CreateQueue, Subscribe, UnsubscribeRetired, MarkReady (a topic added, one removed) | intent · {CreateQueue ‖ Subscribe ‖ UnsubscribeRetired} · MarkReady | 3 |
//!
//! Subscribe and Unsubscribe each cover every topic: the executor issues one call per topic at once, so
//! the round trips do not grow with the topic count.

use super::Step;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    Subscription,
    Queue,
    /// Subscriptions to topics no longer configured: other topics than the subscription chain's.
    Retired,
}

fn chain(step: Step) -> Option<Chain> {
    match step {
        Step::Subscribe | Step::Unsubscribe => Some(Chain::Subscription),
        Step::CreateQueue | Step::LookupQueueUrl | Step::DeleteQueue => Some(Chain::Queue),
        Step::UnsubscribeRetired => Some(Chain::Retired),
        Step::Claim | Step::RecordIntent | Step::MarkReady | Step::MarkDraining | Step::Tombstone(_) => None,
    }
}

/// The plan's steps grouped into stages, in plan order within a stage. At most one step per chain in a
/// stage; a write is always alone.
pub fn stages(steps: &[Step]) -> Vec<Vec<Step>> {
    let mut out: Vec<Vec<Step>> = Vec::new();
    let mut after_barrier = 0;
    let mut last = [None::<usize>; 3];
    for &step in steps {
        let at = match chain(step) {
            None => {
                let at = out.len();
                after_barrier = at + 1;
                at
            }
            Some(c) => {
                let i = c as usize;
                let at = last[i].map_or(after_barrier, |s| (s + 1).max(after_barrier));
                last[i] = Some(at);
                at
            }
        };
        if out.len() <= at {
            out.resize_with(at + 1, Vec::new);
        }
        out[at].push(step);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::State;
    use Step::*;

    #[test]
    fn independent_calls_share_a_stage_and_writes_stand_alone() {
        const GONE: Step = Tombstone(State::Gone);
        #[rustfmt::skip]
        let rows: Vec<(&[Step], Vec<Vec<Step>>)> = vec![
            // a start: three round trips whatever happens
            (&[Claim, CreateQueue, Subscribe, MarkReady], vec![vec![Claim], vec![CreateQueue, Subscribe], vec![MarkReady]]),
            (&[CreateQueue, Subscribe, MarkReady], vec![vec![CreateQueue, Subscribe], vec![MarkReady]]),
            // converging to the settings: the intent first, then new topics, retired ones and the queue at once
            (&[RecordIntent, CreateQueue, Subscribe, UnsubscribeRetired, MarkReady],
             vec![vec![RecordIntent], vec![CreateQueue, Subscribe, UnsubscribeRetired], vec![MarkReady]]),
            (&[CreateQueue, UnsubscribeRetired, MarkReady], vec![vec![CreateQueue, UnsubscribeRetired], vec![MarkReady]]),
            // teardown: unsubscribe and delete at once, the tombstone after both
            (&[Unsubscribe, DeleteQueue, GONE], vec![vec![Unsubscribe, DeleteQueue], vec![GONE]]),
            (&[Unsubscribe, MarkDraining], vec![vec![Unsubscribe], vec![MarkDraining]]),
            // each chain keeps its order: the ARN and the URL are learned before they are used
            (&[Unsubscribe, LookupQueueUrl, DeleteQueue, GONE],
             vec![vec![Unsubscribe, LookupQueueUrl], vec![DeleteQueue], vec![GONE]]),
            (&[LookupQueueUrl, DeleteQueue, GONE], vec![vec![LookupQueueUrl], vec![DeleteQueue], vec![GONE]]),
            // nothing crosses a write
            (&[Subscribe, MarkReady, DeleteQueue], vec![vec![Subscribe], vec![MarkReady], vec![DeleteQueue]]),
            (&[DeleteQueue, GONE], vec![vec![DeleteQueue], vec![GONE]]),
            (&[GONE], vec![vec![GONE]]),
            (&[], vec![]),
        ];
        for (steps, want) in rows {
            assert_eq!(stages(steps), want, "{steps:?}");
        }
    }

    #[test]
    fn stages_keep_every_step_once() {
        let steps = [
            RecordIntent,
            Subscribe,
            Unsubscribe,
            LookupQueueUrl,
            DeleteQueue,
            Tombstone(State::Gone),
        ];
        let flat: Vec<Step> = stages(&steps).into_iter().flatten().collect();
        assert_eq!(flat.len(), steps.len());
        assert!(steps.iter().all(|s| flat.contains(s)));
    }
}
