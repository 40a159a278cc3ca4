//! Acknowledgements: settling a handled message, batched deletes and visibility changes, and the one
//! retry loop every batch call goes through ([`BatchCall::send`]).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::batcher::chunks;
use super::dedup::Outcome;
use super::leases::{Lease, Renewal};
use super::{lock, sleep_until_opt, Shared};
use crate::backoff::Backoff;
use crate::port::{EntryFailure, QueueApi};
use crate::BoxError;

/// Attempts of one DeleteMessageBatch / ChangeMessageVisibilityBatch call before giving up on it.
pub(super) const ACK_ATTEMPTS: u32 = 3;
/// Delay between those attempts.
const ACK_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));

/// A message to acknowledge (its receipt handle is never logged).
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub message_id: String,
    pub receipt: String,
}

impl From<Lease> for Pending {
    fn from(l: Lease) -> Self {
        Self {
            message_id: l.message_id,
            receipt: l.receipt,
        }
    }
}

/// An entry of a batch call, named in logs by its message ID (never its receipt handle).
pub(super) trait Entry {
    fn message_id(&self) -> &str;
}

impl Entry for Pending {
    fn message_id(&self) -> &str {
        &self.message_id
    }
}

impl Entry for (Pending, Duration) {
    fn message_id(&self) -> &str {
        &self.0.message_id
    }
}

impl Entry for Renewal {
    fn message_id(&self) -> &str {
        &self.message_id
    }
}

/// The message IDs and error codes of the entries SQS refused.
pub(super) fn refused<'a, E: Entry>(
    batch: &'a [E],
    failures: &'a [EntryFailure],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    failures
        .iter()
        .map(|f| (batch.get(f.index).map_or("?", Entry::message_id), f.code.as_str()))
}

/// How many entries of a batch SQS accepted.
pub(super) fn accepted(len: usize, failures: &[EntryFailure]) -> usize {
    len - failures.len().min(len)
}

/// One kind of batch call: its SQS name and log action, and how often a failed call is tried.
pub(super) struct BatchCall {
    pub op: &'static str,
    pub action: &'static str,
    pub attempts: u32,
}

impl BatchCall {
    /// Makes the call, retrying a failed call (not refused entries) with a short backoff. Returns the
    /// refused entries, or the last error once every attempt failed (the caller logs it).
    pub(super) async fn send<F, Fut>(&self, count: usize, call: F) -> Result<Vec<EntryFailure>, BoxError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<EntryFailure>, BoxError>>,
    {
        let mut rng = fastrand::Rng::new();
        let mut attempt = 0;
        loop {
            match call().await {
                Err(e) if attempt + 1 < self.attempts => {
                    let (op, action) = (self.op, self.action);
                    tracing::warn!(action, count, error = %DisplayErrorContext(&*e), "{op} failed; retrying");
                    tokio::time::sleep(ACK_RETRY.delay(attempt, &mut rng)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

const DELETE: BatchCall = BatchCall {
    op: "DeleteMessageBatch",
    action: "delete",
    attempts: ACK_ATTEMPTS,
};

impl<Q: QueueApi> Shared<Q> {
    /// Queues the delete of a message.
    pub(super) fn ack(&self, pending: Pending, now: Instant) {
        lock(&self.deletes).push(pending, now);
        self.flush_now.notify_one();
    }

    /// Queues a visibility change of a message.
    fn change_visibility(&self, pending: Pending, visibility: Duration, now: Instant) {
        lock(&self.visibility).push((pending, visibility), now);
        self.flush_now.notify_one();
    }

    /// Settles a handled message: deleted after a success; after a failure left for redelivery, or
    /// made visible after the retry backoff.
    pub(super) fn settle(&self, key: u64, dedup_key: &str, outcome: Outcome, receive_count: u32) {
        let now = Instant::now();
        let Some(lease) = lock(&self.leases).remove(key) else {
            return;
        };
        if let Some(d) = &self.dedup {
            lock(d).finish(dedup_key, outcome, now);
        }
        match outcome {
            Outcome::Succeeded => {
                lock(&self.report).succeeded += 1;
                self.ack(lease.into(), now);
            }
            Outcome::Failed => {
                lock(&self.report).failed += 1;
                if let Some(backoff) = self.cfg.failure_backoff {
                    let visibility = backoff.ceiling(receive_count.saturating_sub(1));
                    self.change_visibility(lease.into(), visibility, now);
                }
            }
        }
        self.settled.notify_one();
    }

    /// Gives a message back unhandled (FIFO: it was behind a failed message of its group): visible at
    /// once, so SQS redelivers it after the failed one.
    pub(super) fn release(&self, key: u64, dedup_key: &str) {
        let now = Instant::now();
        let Some(lease) = lock(&self.leases).remove(key) else {
            return;
        };
        if let Some(d) = &self.dedup {
            lock(d).finish(dedup_key, Outcome::Failed, now);
        }
        lock(&self.report).released += 1;
        tracing::debug!(action = "release", message_id = %lease.message_id, "behind a failed message of its group; released unhandled");
        self.change_visibility(lease.into(), Duration::ZERO, now);
        self.settled.notify_one();
    }

    /// One DeleteMessageBatch, retried on call failure.
    async fn delete(&self, batch: Vec<Pending>) {
        let receipts: Vec<String> = batch.iter().map(|p| p.receipt.clone()).collect();
        match DELETE.send(batch.len(), || self.queue.delete_batch(&receipts)).await {
            Ok(failures) => {
                for (message_id, code) in refused(&batch, &failures) {
                    tracing::warn!(
                        action = "delete",
                        message_id,
                        code,
                        "delete refused; the message will be redelivered"
                    );
                }
                let deleted = accepted(batch.len(), &failures) as u64;
                let mut report = lock(&self.report);
                report.deleted += deleted;
                report.delete_failures += failures.len() as u64;
                tracing::debug!(action = "delete", count = deleted, "messages deleted");
            }
            Err(e) => {
                tracing::error!(action = "delete", count = batch.len(), error = %DisplayErrorContext(&*e), "DeleteMessageBatch failed; these messages will be redelivered");
                lock(&self.report).delete_failures += batch.len() as u64;
            }
        }
    }

    /// One ChangeMessageVisibilityBatch, retried on call failure; returns how many SQS accepted.
    async fn set_visibility(&self, batch: &[(Pending, Duration)], action: &'static str) -> usize {
        let entries: Vec<(String, Duration)> = batch.iter().map(|(p, d)| (p.receipt.clone(), *d)).collect();
        let call = BatchCall {
            op: "ChangeMessageVisibilityBatch",
            action,
            attempts: ACK_ATTEMPTS,
        };
        match call
            .send(batch.len(), || self.queue.change_visibility_batch(&entries))
            .await
        {
            Ok(failures) => {
                for (message_id, code) in refused(batch, &failures) {
                    tracing::warn!(action, message_id, code, "visibility change refused");
                }
                accepted(batch.len(), &failures)
            }
            Err(e) => {
                tracing::error!(action, count = batch.len(), error = %DisplayErrorContext(&*e), "ChangeMessageVisibilityBatch failed");
                0
            }
        }
    }
}

/// Which pending acknowledgements to send.
#[derive(Debug, Clone, Copy)]
pub(super) enum Flush {
    /// Full batches, and partial ones whose oldest entry has waited the flush interval.
    Due(Instant),
    /// Everything (shutdown).
    All,
}

/// Most batch calls (DeleteMessageBatch, ChangeMessageVisibilityBatch) in flight at once: with SQS
/// 30 ms away, 64 calls of 10 acknowledge about 21,000 messages a second (one call at a time: 330).
pub(super) const ACK_CALLS_IN_FLIGHT: usize = 64;

/// One batch call to send.
enum AckCall {
    Delete(Vec<Pending>),
    /// Retry backoffs of failed messages and FIFO releases.
    Visibility(Vec<(Pending, Duration)>),
}

impl AckCall {
    async fn send<Q: QueueApi>(self, shared: Arc<Shared<Q>>) {
        match self {
            AckCall::Delete(batch) => shared.delete(batch).await,
            AckCall::Visibility(batch) => {
                shared.set_visibility(&batch, "retry-backoff").await;
            }
        }
    }
}

/// The calls `which` says are due: deletes first, then visibility changes.
fn take_calls<Q>(shared: &Shared<Q>, which: Flush) -> Vec<AckCall> {
    let (deletes, changes) = match which {
        Flush::Due(now) => (
            lock(&shared.deletes).take_ready(now),
            lock(&shared.visibility).take_ready(now),
        ),
        Flush::All => (lock(&shared.deletes).take_all(), lock(&shared.visibility).take_all()),
    };
    deletes
        .into_iter()
        .map(AckCall::Delete)
        .chain(changes.into_iter().map(AckCall::Visibility))
        .collect()
}

/// Runs `calls` concurrently, at most [`ACK_CALLS_IN_FLIGHT`] at a time, until every one ended; their
/// outputs, in no particular order.
pub(super) async fn concurrently<T, F>(calls: impl IntoIterator<Item = F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut out = Vec::new();
    for call in calls {
        if set.len() >= ACK_CALLS_IN_FLIGHT {
            if let Some(Ok(t)) = set.join_next().await {
                out.push(t);
            }
        }
        set.spawn(call.instrument(tracing::Span::current()));
    }
    while let Some(done) = set.join_next().await {
        if let Ok(t) = done {
            out.push(t);
        }
    }
    out
}

/// Sends the pending deletes and visibility changes `which` names, concurrently.
pub(super) async fn flush<Q: QueueApi>(shared: &Arc<Shared<Q>>, which: Flush) {
    let calls = take_calls(shared, which);
    concurrently(calls.into_iter().map(|call| call.send(shared.clone()))).await;
}

/// Sends deletes (and visibility changes) when a batch is full or its interval passed, up to
/// [`ACK_CALLS_IN_FLIGHT`] calls at once, without waiting for one call to end before the next starts.
/// On `stop`, sends what it had taken and waits for its calls (the caller then flushes the rest).
pub(super) async fn flush_loop<Q: QueueApi>(shared: Arc<Shared<Q>>, stop: CancellationToken) {
    let mut in_flight = JoinSet::new();
    let mut taken: VecDeque<AckCall> = VecDeque::new();
    loop {
        taken.extend(take_calls(&shared, Flush::Due(Instant::now())));
        while in_flight.len() < ACK_CALLS_IN_FLIGHT {
            let Some(call) = taken.pop_front() else { break };
            in_flight.spawn(call.send(shared.clone()).instrument(tracing::Span::current()));
        }
        let next = [lock(&shared.deletes).next_due(), lock(&shared.visibility).next_due()]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(_) = in_flight.join_next() => {}
            _ = shared.flush_now.notified() => {}
            _ = sleep_until_opt(next) => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
    concurrently(taken.into_iter().map(|call| call.send(shared.clone()))).await;
}

/// Shutdown: makes every message still held visible again (visibility 0), in concurrent batches.
pub(super) async fn return_unfinished<Q: QueueApi>(shared: &Arc<Shared<Q>>) {
    let unfinished = lock(&shared.leases).drain();
    if unfinished.is_empty() {
        return;
    }
    tracing::info!(
        action = "return",
        count = unfinished.len(),
        "returning unfinished messages to the queue"
    );
    let entries: Vec<(Pending, Duration)> = unfinished.into_iter().map(|l| (l.into(), Duration::ZERO)).collect();
    let calls = chunks(entries).into_iter().map(|batch| {
        let shared = shared.clone();
        async move { shared.set_visibility(&batch, "return").await }
    });
    let accepted: usize = concurrently(calls).await.into_iter().sum();
    lock(&shared.report).returned += accepted as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str) -> Pending {
        Pending {
            message_id: id.into(),
            receipt: format!("rh-{id}"),
        }
    }

    fn failure(index: usize, code: &str) -> EntryFailure {
        EntryFailure {
            index,
            code: code.into(),
        }
    }

    #[test]
    fn refused_entries_are_named_by_message_id_never_by_receipt() {
        let batch = [pending("a"), pending("b"), pending("c")];
        let failures = [failure(2, "ReceiptHandleIsInvalid"), failure(7, "Odd")];
        let named: Vec<(&str, &str)> = refused(&batch, &failures).collect();
        assert_eq!(named, [("c", "ReceiptHandleIsInvalid"), ("?", "Odd")]);
        let with_visibility = [(pending("v"), Duration::ZERO)];
        let not_in_flight = [failure(0, "MessageNotInflight")];
        let named: Vec<(&str, &str)> = refused(&with_visibility, &not_in_flight).collect();
        assert_eq!(named, [("v", "MessageNotInflight")]);
        let mut leases = super::super::leases::Leases::new(Duration::from_secs(30), Duration::from_secs(3600));
        let t0 = Instant::now();
        leases.insert(1, "r".into(), "rh-r".into(), t0);
        let due = leases.take_due(t0 + Duration::from_secs(20));
        let x = [failure(0, "x")];
        let named: Vec<(&str, &str)> = refused(&due, &x).collect();
        assert_eq!(named, [("r", "x")]);
    }

    #[test]
    fn accepted_is_the_batch_minus_its_refusals_never_below_zero() {
        assert_eq!(accepted(3, &[]), 3);
        assert_eq!(accepted(3, &[failure(0, "x")]), 2);
        assert_eq!(accepted(1, &[failure(0, "x"), failure(5, "y")]), 0);
    }
}
