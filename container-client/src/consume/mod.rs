//! The consume loop: long polls, bounded concurrent handlers, batched deletes, heartbeats, drain.
//!
//! ```text
//!  poller ──receive(≤ free permits)──▶ handler tasks (≤ max_concurrency) ──ok──▶ delete batcher ─┐
//!    ▲ stop: polling ends at once           │ err ──▶ left for redelivery (or backoff visibility)│
//!    │                                      ▼                                                    ▼
//!  shutdown token / SIGTERM          leases ◀── heartbeat (ChangeMessageVisibilityBatch)    flusher
//! ```
//! On shutdown: stop polling, wait for handlers up to the drain deadline, abandon the rest, flush every
//! pending delete, and return unfinished messages to the queue (visibility 0). A message is deleted only
//! after its handler returned `Ok`, and every `Ok` is flushed before the loop returns.

mod batcher;
mod dedup;
mod leases;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::message::{Message, Received};
use crate::port::{QueueApi, MAX_BATCH};
use crate::Handler;
use batcher::{chunks, Batcher};
use dedup::{Dedup, Verdict};
use leases::{Lease, Leases};

/// Long-poll wait of each ReceiveMessage (the SQS maximum).
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(20);
/// Delay after a failed ReceiveMessage: from about 1 s, doubling, up to about 10 s.
pub(crate) const RECEIVE_ERROR_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
/// Attempts of one DeleteMessageBatch / ChangeMessageVisibilityBatch call before giving up on it.
const ACK_ATTEMPTS: u32 = 3;
/// Delay between those attempts.
const ACK_RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
/// Pause of the heartbeat after a failed extension call, before it tries again.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

/// How the loop behaves (validated by the builder).
#[derive(Debug, Clone)]
pub(crate) struct ConsumeConfig {
    pub max_concurrency: usize,
    pub long_poll: Duration,
    pub visibility: Duration,
    pub max_extension: Duration,
    pub flush_interval: Duration,
    pub drain_timeout: Duration,
    pub failure_backoff: Option<Backoff>,
    pub dedup_window: Option<Duration>,
    pub unwrap_envelope: bool,
    pub receive_backoff: Backoff,
}

/// What one [`Client::run`](crate::Client::run) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The queue was found and consumption started (false when shutdown came first).
    pub subscribed: bool,
    /// Messages received (duplicates included).
    pub received: u64,
    /// Handler calls that returned `Ok`.
    pub succeeded: u64,
    /// Handler calls that returned `Err` or panicked (left for redelivery).
    pub failed: u64,
    /// Redelivered copies of already handled messages, deleted without calling the handler.
    pub duplicates: u64,
    /// Messages SQS confirmed deleted.
    pub deleted: u64,
    /// Deletes SQS refused or that failed after retries (those messages will be redelivered).
    pub delete_failures: u64,
    /// Unfinished messages returned to the queue (visibility 0) at shutdown.
    pub returned: u64,
}

/// A message to acknowledge (its receipt handle is never logged).
#[derive(Debug, Clone)]
struct Pending {
    message_id: String,
    receipt: String,
}

impl From<Lease> for Pending {
    fn from(l: Lease) -> Self {
        Self {
            message_id: l.message_id,
            receipt: l.receipt,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// State shared by the poller, the handler tasks, the heartbeat and the flusher.
struct Shared<Q> {
    queue: Q,
    cfg: ConsumeConfig,
    leases: Mutex<Leases>,
    lease_added: Notify,
    deletes: Mutex<Batcher<Pending>>,
    backoffs: Mutex<Batcher<(Pending, Duration)>>,
    flush_now: Notify,
    dedup: Option<Mutex<Dedup>>,
    report: Mutex<RunReport>,
}

impl<Q: QueueApi> Shared<Q> {
    fn new(queue: Q, cfg: ConsumeConfig) -> Self {
        Self {
            leases: Mutex::new(Leases::new(cfg.visibility, cfg.max_extension)),
            lease_added: Notify::new(),
            deletes: Mutex::new(Batcher::new(cfg.flush_interval)),
            backoffs: Mutex::new(Batcher::new(cfg.flush_interval)),
            flush_now: Notify::new(),
            dedup: cfg.dedup_window.map(|w| Mutex::new(Dedup::new(w))),
            report: Mutex::new(RunReport::default()),
            queue,
            cfg,
        }
    }

    fn ack(&self, pending: Pending, now: Instant) {
        lock(&self.deletes).push(pending, now);
        self.flush_now.notify_one();
    }

    fn settle_success(&self, key: u64, dedup_key: &str, now: Instant) {
        let Some(lease) = lock(&self.leases).remove(key) else {
            return;
        };
        if let Some(d) = &self.dedup {
            lock(d).finish(dedup_key, true, now);
        }
        lock(&self.report).succeeded += 1;
        self.ack(lease.into(), now);
    }

    fn settle_failure(&self, key: u64, dedup_key: &str, receive_count: u32, now: Instant) {
        let Some(lease) = lock(&self.leases).remove(key) else {
            return;
        };
        if let Some(d) = &self.dedup {
            lock(d).finish(dedup_key, false, now);
        }
        lock(&self.report).failed += 1;
        if let Some(backoff) = self.cfg.failure_backoff {
            let visibility = backoff.ceiling(receive_count.saturating_sub(1));
            lock(&self.backoffs).push((lease.into(), visibility), now);
            self.flush_now.notify_one();
        }
    }

    /// One DeleteMessageBatch, retried on call failure.
    async fn delete(&self, batch: Vec<Pending>) {
        let receipts: Vec<String> = batch.iter().map(|p| p.receipt.clone()).collect();
        let mut rng = fastrand::Rng::new();
        for attempt in 0..ACK_ATTEMPTS {
            match self.queue.delete_batch(&receipts).await {
                Ok(failures) => {
                    for f in &failures {
                        let message_id = batch.get(f.index).map_or("?", |p| p.message_id.as_str());
                        tracing::warn!(action = "delete", message_id, code = %f.code, "delete refused; the message will be redelivered");
                    }
                    let deleted = (batch.len() - failures.len().min(batch.len())) as u64;
                    let mut report = lock(&self.report);
                    report.deleted += deleted;
                    report.delete_failures += failures.len() as u64;
                    tracing::debug!(action = "delete", count = deleted, "messages deleted");
                    return;
                }
                Err(e) if attempt + 1 < ACK_ATTEMPTS => {
                    tracing::warn!(action = "delete", count = batch.len(), error = %DisplayErrorContext(&*e), "DeleteMessageBatch failed; retrying");
                    tokio::time::sleep(ACK_RETRY.delay(attempt, &mut rng)).await;
                }
                Err(e) => {
                    tracing::error!(action = "delete", count = batch.len(), error = %DisplayErrorContext(&*e), "DeleteMessageBatch failed; these messages will be redelivered");
                    lock(&self.report).delete_failures += batch.len() as u64;
                }
            }
        }
    }

    /// One ChangeMessageVisibilityBatch, retried on call failure; returns how many SQS accepted.
    async fn set_visibility(&self, batch: &[(Pending, Duration)], action: &'static str) -> usize {
        let entries: Vec<(String, Duration)> = batch.iter().map(|(p, d)| (p.receipt.clone(), *d)).collect();
        let mut rng = fastrand::Rng::new();
        for attempt in 0..ACK_ATTEMPTS {
            match self.queue.change_visibility_batch(&entries).await {
                Ok(failures) => {
                    for f in &failures {
                        let message_id = batch.get(f.index).map_or("?", |(p, _)| p.message_id.as_str());
                        tracing::warn!(action, message_id, code = %f.code, "visibility change refused");
                    }
                    return batch.len() - failures.len().min(batch.len());
                }
                Err(e) if attempt + 1 < ACK_ATTEMPTS => {
                    tracing::warn!(action, count = batch.len(), error = %DisplayErrorContext(&*e), "ChangeMessageVisibilityBatch failed; retrying");
                    tokio::time::sleep(ACK_RETRY.delay(attempt, &mut rng)).await;
                }
                Err(e) => {
                    tracing::error!(action, count = batch.len(), error = %DisplayErrorContext(&*e), "ChangeMessageVisibilityBatch failed");
                }
            }
        }
        0
    }
}

/// Consumes until `stop` fires, then drains; see the module docs.
pub(crate) async fn consume<Q: QueueApi, H: Handler>(
    queue: Q,
    handler: Arc<H>,
    cfg: ConsumeConfig,
    stop: CancellationToken,
) -> RunReport {
    let shared = Arc::new(Shared::new(queue, cfg));
    let span = tracing::Span::current();
    // Dropping this future (instead of cancelling `stop`) still ends the background tasks and handlers.
    let background = CancellationToken::new();
    let _background_guard = background.clone().drop_guard();
    let abandon = CancellationToken::new();
    let _abandon_guard = abandon.clone().drop_guard();
    let heartbeat = tokio::spawn(heartbeat_loop(shared.clone(), background.clone()).instrument(span.clone()));
    let flusher = tokio::spawn(flush_loop(shared.clone(), background.clone()).instrument(span));
    let handlers = TaskTracker::new();

    tracing::info!(
        action = "consume",
        max_concurrency = shared.cfg.max_concurrency,
        "consuming"
    );
    poll_loop(&shared, &handler, &handlers, &abandon, &stop).await;
    drain(&shared, &handlers, &abandon).await;

    background.cancel();
    let _ = heartbeat.await;
    let _ = flusher.await;
    let deletes = lock(&shared.deletes).take_all();
    for batch in deletes {
        shared.delete(batch).await;
    }
    let backoffs = lock(&shared.backoffs).take_all();
    for batch in backoffs {
        shared.set_visibility(&batch, "retry-backoff").await;
    }
    return_unfinished(&shared).await;

    let report = lock(&shared.report).clone();
    tracing::info!(
        action = "stopped",
        received = report.received,
        succeeded = report.succeeded,
        failed = report.failed,
        duplicates = report.duplicates,
        deleted = report.deleted,
        delete_failures = report.delete_failures,
        returned = report.returned,
        "consumer stopped"
    );
    report
}

async fn poll_loop<Q: QueueApi, H: Handler>(
    shared: &Arc<Shared<Q>>,
    handler: &Arc<H>,
    handlers: &TaskTracker,
    abandon: &CancellationToken,
    stop: &CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(shared.cfg.max_concurrency));
    let mut rng = fastrand::Rng::new();
    let mut errors = 0u32;
    let mut next_key = 0u64;
    loop {
        // Backpressure: ask SQS only for as many messages as there are free handler slots.
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let mut held = vec![first];
        while held.len() < MAX_BATCH {
            match permits.clone().try_acquire_owned() {
                Ok(p) => held.push(p),
                Err(_) => break,
            }
        }
        let result = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = shared.queue.receive(held.len(), shared.cfg.long_poll, shared.cfg.visibility) => r,
        };
        match result {
            Ok(messages) => {
                errors = 0;
                for raw in messages {
                    dispatch(shared, handler, handlers, abandon, raw, held.pop(), &mut next_key);
                }
            }
            Err(e) => {
                let delay = shared.cfg.receive_backoff.delay(errors, &mut rng);
                errors = errors.saturating_add(1);
                tracing::warn!(
                    action = "receive",
                    error = %DisplayErrorContext(&*e),
                    delay_ms = delay.as_millis() as u64,
                    "ReceiveMessage failed; backing off"
                );
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

fn dispatch<Q: QueueApi, H: Handler>(
    shared: &Arc<Shared<Q>>,
    handler: &Arc<H>,
    handlers: &TaskTracker,
    abandon: &CancellationToken,
    raw: Received,
    permit: Option<OwnedSemaphorePermit>,
    next_key: &mut u64,
) {
    let now = Instant::now();
    let message = Message::from_received(&raw, shared.cfg.unwrap_envelope);
    lock(&shared.report).received += 1;
    let message_id = raw.message_id.as_str();
    if let Some(dedup) = &shared.dedup {
        match lock(dedup).check(message.dedup_key(), now) {
            Verdict::New => {}
            Verdict::Handled => {
                tracing::debug!(action = "dedup", message_id, "copy of a handled message; deleting it");
                lock(&shared.report).duplicates += 1;
                shared.ack(
                    Pending {
                        message_id: raw.message_id,
                        receipt: raw.receipt,
                    },
                    now,
                );
                return;
            }
            Verdict::InFlight => {
                tracing::debug!(
                    action = "dedup",
                    message_id,
                    "copy of a message being handled; leaving it"
                );
                return;
            }
        }
    }
    let key = *next_key;
    *next_key += 1;
    tracing::debug!(
        action = "receive",
        message_id,
        sns_message_id = message.sns_message_id(),
        bytes = message.body().len(),
        receive_count = message.receive_count(),
        "message received"
    );
    lock(&shared.leases).insert(key, raw.message_id, raw.receipt, now);
    shared.lease_added.notify_one();
    let task = supervise(shared.clone(), handler.clone(), key, message, abandon.clone(), permit);
    handlers.spawn(task.instrument(tracing::Span::current()));
}

/// Runs one handler call in its own task (a panic is a failure) and settles the message.
async fn supervise<Q: QueueApi, H: Handler>(
    shared: Arc<Shared<Q>>,
    handler: Arc<H>,
    key: u64,
    message: Message,
    abandon: CancellationToken,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let message_id = message.sqs_message_id().to_owned();
    let dedup_key = message.dedup_key().to_owned();
    let receive_count = message.receive_count();
    let started = Instant::now();
    let mut job = tokio::spawn(async move { handler.handle(message).await }.instrument(tracing::Span::current()));
    let outcome = tokio::select! {
        r = &mut job => Some(r),
        _ = abandon.cancelled() => {
            job.abort();
            match job.await {
                Err(e) if e.is_cancelled() => None,
                r => Some(r),
            }
        }
    };
    let now = Instant::now();
    let elapsed_ms = (now - started).as_millis() as u64;
    match outcome {
        None => tracing::debug!(
            action = "handle",
            message_id,
            elapsed_ms,
            "handler abandoned at the drain deadline"
        ),
        Some(Ok(Ok(()))) => {
            tracing::debug!(action = "handle", message_id, elapsed_ms, "handled");
            shared.settle_success(key, &dedup_key, now);
        }
        Some(Ok(Err(e))) => {
            tracing::warn!(action = "handle", message_id, receive_count, elapsed_ms, error = %DisplayErrorContext(&*e), "handler failed; message left for redelivery");
            shared.settle_failure(key, &dedup_key, receive_count, now);
        }
        Some(Err(_panic)) => {
            tracing::error!(
                action = "handle",
                message_id,
                receive_count,
                elapsed_ms,
                "handler panicked; message left for redelivery"
            );
            shared.settle_failure(key, &dedup_key, receive_count, now);
        }
    }
}

async fn drain<Q: QueueApi>(shared: &Shared<Q>, handlers: &TaskTracker, abandon: &CancellationToken) {
    handlers.close();
    let in_flight = lock(&shared.leases).len();
    let drain_ms = shared.cfg.drain_timeout.as_millis() as u64;
    tracing::info!(
        action = "drain",
        in_flight,
        drain_ms,
        "polling stopped; waiting for in-flight handlers"
    );
    if tokio::time::timeout(shared.cfg.drain_timeout, handlers.wait())
        .await
        .is_err()
    {
        let unfinished = lock(&shared.leases).len();
        tracing::warn!(
            action = "drain",
            unfinished,
            "drain deadline passed; abandoning unfinished handlers"
        );
        abandon.cancel();
        handlers.wait().await;
    }
}

async fn return_unfinished<Q: QueueApi>(shared: &Shared<Q>) {
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
    for batch in chunks(entries) {
        let accepted = shared.set_visibility(&batch, "return").await;
        lock(&shared.report).returned += accepted as u64;
    }
}

/// Renews the visibility of messages whose handlers are still working.
async fn heartbeat_loop<Q: QueueApi>(shared: Arc<Shared<Q>>, stop: CancellationToken) {
    loop {
        let next = lock(&shared.leases).next_due();
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = shared.lease_added.notified() => continue,
            _ = sleep_until_opt(next) => {}
        }
        let due = lock(&shared.leases).take_due(Instant::now());
        let mut failed = false;
        for batch in chunks(due) {
            let entries: Vec<(String, Duration)> = batch.iter().map(|r| (r.receipt.clone(), r.visibility)).collect();
            match shared.queue.change_visibility_batch(&entries).await {
                Ok(failures) => {
                    for f in &failures {
                        let message_id = batch.get(f.index).map_or("?", |r| r.message_id.as_str());
                        tracing::debug!(action = "heartbeat", message_id, code = %f.code, "extension refused (settled meanwhile?)");
                    }
                    tracing::debug!(
                        action = "heartbeat",
                        count = batch.len() - failures.len().min(batch.len()),
                        "visibility extended"
                    );
                }
                Err(e) => {
                    tracing::warn!(action = "heartbeat", count = batch.len(), error = %DisplayErrorContext(&*e), "ChangeMessageVisibilityBatch failed; retrying shortly");
                    let mut leases = lock(&shared.leases);
                    for r in &batch {
                        leases.restore(r);
                    }
                    failed = true;
                }
            }
        }
        if failed {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(HEARTBEAT_RETRY) => {}
            }
        }
    }
}

/// Sends deletes (and retry-backoff visibility changes) when a batch is full or its interval passed.
async fn flush_loop<Q: QueueApi>(shared: Arc<Shared<Q>>, stop: CancellationToken) {
    loop {
        let next = [lock(&shared.deletes).next_due(), lock(&shared.backoffs).next_due()]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = shared.flush_now.notified() => {}
            _ = sleep_until_opt(next) => {}
        }
        let now = Instant::now();
        let deletes = lock(&shared.deletes).take_ready(now);
        for batch in deletes {
            shared.delete(batch).await;
        }
        let backoffs = lock(&shared.backoffs).take_ready(now);
        for batch in backoffs {
            shared.set_visibility(&batch, "retry-backoff").await;
        }
    }
}
