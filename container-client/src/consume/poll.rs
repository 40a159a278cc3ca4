//! Polling and dispatch: receive no more messages than there are free handler slots, start a handler
//! per message (FIFO: one at a time per message group, in receive order), settle each outcome.

use std::sync::Arc;

use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::ack::Pending;
use super::dedup::{Outcome, Verdict};
use super::{lock, Order, Shared};
use crate::message::{Message, Received};
use crate::port::{QueueApi, MAX_BATCH};
use crate::Handler;

/// A received message, leased under `key`, holding its handler slot until it is settled.
pub(super) struct Job {
    key: u64,
    message: Message,
    _permit: Option<OwnedSemaphorePermit>,
}

/// What a handler run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Settled(Outcome),
    /// Cut off at the drain deadline: the message stays leased and is returned at shutdown.
    Abandoned,
}

/// What a handler task needs; cheap to clone.
struct Worker<Q, H> {
    shared: Arc<Shared<Q>>,
    handler: Arc<H>,
    abandon: CancellationToken,
}

impl<Q, H> Clone for Worker<Q, H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            handler: self.handler.clone(),
            abandon: self.abandon.clone(),
        }
    }
}

/// The receive loop and the dispatch of what it receives.
pub(super) struct Poller<Q, H> {
    worker: Worker<Q, H>,
    handlers: TaskTracker,
    next_key: u64,
}

impl<Q: QueueApi, H: Handler> Poller<Q, H> {
    pub(super) fn new(
        shared: Arc<Shared<Q>>,
        handler: Arc<H>,
        handlers: TaskTracker,
        abandon: CancellationToken,
    ) -> Self {
        Self {
            worker: Worker {
                shared,
                handler,
                abandon,
            },
            handlers,
            next_key: 0,
        }
    }

    /// Receives and dispatches until `stop` fires; receive errors are backed off.
    pub(super) async fn run(mut self, stop: &CancellationToken) {
        let shared = self.worker.shared.clone();
        let permits = Arc::new(Semaphore::new(shared.cfg.max_concurrency));
        let mut rng = fastrand::Rng::new();
        let mut errors = 0u32;
        loop {
            let Some(mut held) = reserve(&permits, stop).await else {
                break;
            };
            let result = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                r = shared.queue.receive(held.len(), shared.cfg.long_poll, shared.cfg.visibility) => r,
            };
            match result {
                Ok(messages) => {
                    errors = 0;
                    for raw in messages {
                        self.dispatch(raw, held.pop());
                    }
                }
                Err(e) => {
                    let delay = shared.cfg.receive_backoff.delay(errors, &mut rng);
                    errors = errors.saturating_add(1);
                    tracing::warn!(action = "receive", error = %DisplayErrorContext(&*e), delay_ms = delay.as_millis() as u64, "ReceiveMessage failed; backing off");
                    drop(held);
                    tokio::select! {
                        biased;
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Leases a received message and starts (or queues) its handler.
    fn dispatch(&mut self, raw: Received, permit: Option<OwnedSemaphorePermit>) {
        let shared = &self.worker.shared;
        let now = Instant::now();
        let message = Message::from_received(&raw, shared.cfg.envelopes);
        lock(&shared.report).received += 1;
        if !admit(shared, &raw, &message, now) {
            return;
        }
        let key = self.next_key;
        self.next_key += 1;
        tracing::debug!(
            action = "receive",
            message_id = raw.message_id.as_str(),
            sns_message_id = message.sns_message_id(),
            group_id = message.group_id(),
            bytes = message.body().len(),
            receive_count = message.receive_count(),
            "message received"
        );
        lock(&shared.leases).insert(key, raw.message_id, raw.receipt, now);
        shared.lease_added.notify_one();
        let job = Job {
            key,
            message,
            _permit: permit,
        };
        let worker = self.worker.clone();
        let span = tracing::Span::current();
        match job.message.group_id().filter(|_| shared.cfg.order == Order::PerGroup) {
            Some(group) => {
                let group = group.to_owned();
                if let Some(job) = lock(&shared.groups).push(&group, job) {
                    self.handlers.spawn(worker.run_group(group, job).instrument(span));
                }
            }
            None => {
                self.handlers
                    .spawn(async move { worker.supervise(job).await }.instrument(span));
            }
        }
    }
}

/// Waits for a free handler slot, then takes every other free one, up to a receive's [`MAX_BATCH`]:
/// SQS is asked only for as many messages as there are free slots. `None` when `stop` fired.
async fn reserve(permits: &Arc<Semaphore>, stop: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        biased;
        _ = stop.cancelled() => return None,
        p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
    };
    let mut held = vec![first];
    while held.len() < MAX_BATCH {
        match permits.clone().try_acquire_owned() {
            Ok(p) => held.push(p),
            Err(_) => break,
        }
    }
    Some(held)
}

/// Duplicate suppression: `false` when the message must not be handled (a copy of a handled message,
/// deleted; or of one being handled, left alone).
fn admit<Q: QueueApi>(shared: &Shared<Q>, raw: &Received, message: &Message, now: Instant) -> bool {
    let Some(dedup) = &shared.dedup else {
        return true;
    };
    let message_id = raw.message_id.as_str();
    match lock(dedup).check(message.dedup_key(), now) {
        Verdict::New => true,
        Verdict::Handled => {
            tracing::debug!(action = "dedup", message_id, "copy of a handled message; deleting it");
            lock(&shared.report).duplicates += 1;
            let pending = Pending {
                message_id: raw.message_id.clone(),
                receipt: raw.receipt.clone(),
            };
            shared.ack(pending, now);
            false
        }
        Verdict::InFlight => {
            tracing::debug!(
                action = "dedup",
                message_id,
                "copy of a message being handled; leaving it"
            );
            false
        }
    }
}

impl<Q: QueueApi, H: Handler> Worker<Q, H> {
    /// Runs a group's jobs one after the other, starting with `job`, until the group has none left. After
    /// a failure the jobs behind it are released unhandled; after the drain deadline they stay leased.
    async fn run_group(self, group: String, mut job: Job) {
        loop {
            match self.supervise(job).await {
                Ran::Settled(Outcome::Succeeded) => {}
                Ran::Settled(Outcome::Failed) => {
                    let behind = lock(&self.shared.groups).fail(&group);
                    for j in behind {
                        self.shared.release(j.key, j.message.dedup_key());
                    }
                    return;
                }
                Ran::Abandoned => return,
            }
            match lock(&self.shared.groups).next(&group) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// Runs one handler call in its own task (a panic is a failure) and settles the message.
    async fn supervise(&self, job: Job) -> Ran {
        let Job { key, message, _permit } = job;
        let message_id = message.sqs_message_id().to_owned();
        let dedup_key = message.dedup_key().to_owned();
        let receive_count = message.receive_count();
        let started = Instant::now();
        let handler = self.handler.clone();
        let mut task = tokio::spawn(async move { handler.handle(message).await }.instrument(tracing::Span::current()));
        let result = tokio::select! {
            r = &mut task => r,
            _ = self.abandon.cancelled() => {
                task.abort();
                match task.await {
                    Err(e) if e.is_cancelled() => {
                        let elapsed_ms = started.elapsed().as_millis() as u64;
                        tracing::debug!(action = "handle", message_id, elapsed_ms, "handler abandoned at the drain deadline");
                        return Ran::Abandoned;
                    }
                    r => r,
                }
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = match result {
            Ok(Ok(())) => {
                tracing::debug!(action = "handle", message_id, elapsed_ms, "handled");
                Outcome::Succeeded
            }
            Ok(Err(e)) => {
                tracing::warn!(action = "handle", message_id, receive_count, elapsed_ms, error = %DisplayErrorContext(&*e), "handler failed; message left for redelivery");
                Outcome::Failed
            }
            Err(_panic) => {
                tracing::error!(
                    action = "handle",
                    message_id,
                    receive_count,
                    elapsed_ms,
                    "handler panicked; message left for redelivery"
                );
                Outcome::Failed
            }
        };
        self.shared.settle(key, &dedup_key, outcome, receive_count);
        Ran::Settled(outcome)
    }
}
