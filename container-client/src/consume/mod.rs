//! The consume loop: receives in flight adapted to demand, bounded concurrent handlers, batched deletes,
//! heartbeats, drain.
//!
//! ```text
//!         handler times, receive round trips, held messages
//!       ┌─────────────────────────────────────────────────────────────┐
//!       ▼                                                             │
//!  intake.rs (pure): idle → one long poll; deep → enough receives to keep every handler busy;
//!       │            held + asked ≤ handlers + what they finish before a first heartbeat (≤ max_buffered)
//!       ▼ receives to start                                           │
//!  poll.rs: ReceiveMessage × n ──▶ held, in receive order ──free slot──▶ handler tasks ──ok──▶ deletes ─┐
//!   stop: polling ends at once;   FIFO: one worker per message group,   (≤ max_concurrency)     │ err: left │
//!   held messages that never      in receive order (order.rs); after a         │ for redelivery (or     │
//!   started are returned          failure the rest of the group is released    │ backoff visibility)    ▼
//!                                 leases (every held message) ◀── heartbeat.rs ▼            flusher (ack.rs)
//! ```
//! Every batch call (DeleteMessageBatch, ChangeMessageVisibilityBatch) goes through one retry loop,
//! [`ack::BatchCall::send`], and up to [`ack::ACK_CALLS_IN_FLIGHT`] of them run at once (deletes,
//! heartbeats and returns alike): one at a time, SQS 30 ms away could not delete more than 330
//! messages a second.
//!
//! On shutdown: stop polling, wait for handlers up to the drain deadline, abandon the rest, flush every
//! pending delete, and return unfinished messages to the queue (visibility 0). A message is deleted only
//! after its handler returned `Ok`, and every `Ok` is flushed before the loop returns.

mod ack;
mod batcher;
mod dedup;
mod heartbeat;
mod intake;
mod leases;
mod order;
mod poll;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::message::Envelopes;
use crate::port::QueueApi;
use crate::Handler;
use ack::{Flush, Pending};
use batcher::Batcher;
use dedup::Dedup;
use intake::{Intake, IntakeConfig};
use leases::Leases;
use order::Groups;
use poll::{Job, Poller};

/// Long-poll wait of each ReceiveMessage (the SQS maximum).
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(20);
/// Delay after a failed ReceiveMessage: from about 1 s, doubling, up to about 10 s.
pub(crate) const RECEIVE_ERROR_BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));

/// In which order messages are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Standard queue: every message is handled as soon as a slot is free.
    Any,
    /// FIFO queue: one message of a group (`MessageGroupId`) at a time, in receive order.
    PerGroup,
}

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
    pub envelopes: Envelopes,
    pub receive_backoff: Backoff,
    pub order: Order,
    /// Most messages held beyond one per handler (see `intake.rs`).
    pub max_buffered: usize,
    /// Most ReceiveMessage calls in flight.
    pub max_receives: usize,
    /// Filter policies the task applies itself (from its record; none by default).
    pub filters: crate::filter::LiveFilters,
}

impl ConsumeConfig {
    fn intake(&self) -> IntakeConfig {
        IntakeConfig {
            max_concurrency: self.max_concurrency,
            max_buffered: self.max_buffered,
            max_receives: self.max_receives,
            visibility: self.visibility,
            long_poll: self.long_poll,
            buffer: self.order == Order::Any,
        }
    }
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
    /// Messages the task's own filter policies rejected (`filterPolicyAt: "client"`), deleted without
    /// calling the handler.
    pub filtered_out: u64,
    /// Messages SQS confirmed deleted.
    pub deleted: u64,
    /// Deletes SQS refused or that failed after retries (those messages will be redelivered).
    pub delete_failures: u64,
    /// Unfinished messages returned to the queue (visibility 0) at shutdown.
    pub returned: u64,
    /// FIFO queues: messages received behind a failed message of their group, made visible again
    /// without being handled, so they are redelivered after it, in order.
    pub released: u64,
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
    /// Visibility changes: retry backoffs of failed messages, FIFO releases (visibility 0).
    visibility: Mutex<Batcher<(Pending, Duration)>>,
    flush_now: Notify,
    dedup: Option<Mutex<Dedup>>,
    groups: Mutex<Groups<Job>>,
    /// How many receives to keep in flight; handlers report their times to it.
    intake: Mutex<Intake>,
    /// A message was settled or released, or a handler slot freed: the poller looks again.
    settled: Notify,
    report: Mutex<RunReport>,
}

impl<Q: QueueApi> Shared<Q> {
    fn new(queue: Q, cfg: ConsumeConfig) -> Self {
        Self {
            leases: Mutex::new(Leases::new(cfg.visibility, cfg.max_extension)),
            lease_added: Notify::new(),
            deletes: Mutex::new(Batcher::new(cfg.flush_interval)),
            visibility: Mutex::new(Batcher::new(cfg.flush_interval)),
            flush_now: Notify::new(),
            dedup: cfg.dedup_window.map(|w| Mutex::new(Dedup::new(w))),
            groups: Mutex::new(Groups::default()),
            intake: Mutex::new(Intake::new(cfg.intake())),
            settled: Notify::new(),
            report: Mutex::new(RunReport::default()),
            queue,
            cfg,
        }
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
    let heartbeat = tokio::spawn(heartbeat::run(shared.clone(), background.clone()).instrument(span.clone()));
    let flusher = tokio::spawn(ack::flush_loop(shared.clone(), background.clone()).instrument(span));
    let handlers = TaskTracker::new();

    tracing::info!(
        action = "consume",
        max_concurrency = shared.cfg.max_concurrency,
        max_buffered = shared.cfg.max_buffered,
        max_receives = shared.cfg.max_receives,
        order = ?shared.cfg.order,
        "consuming"
    );
    Poller::new(shared.clone(), handler, handlers.clone(), abandon.clone())
        .run(&stop)
        .await;
    drain(&shared, &handlers, &abandon).await;

    background.cancel();
    let _ = heartbeat.await;
    let _ = flusher.await;
    ack::flush(&shared, Flush::All).await;
    ack::return_unfinished(&shared).await;
    stopped(&shared)
}

/// The final report, logged.
fn stopped<Q>(shared: &Shared<Q>) -> RunReport {
    let report = lock(&shared.report).clone();
    tracing::info!(
        action = "stopped",
        received = report.received,
        succeeded = report.succeeded,
        failed = report.failed,
        duplicates = report.duplicates,
        filtered_out = report.filtered_out,
        deleted = report.deleted,
        delete_failures = report.delete_failures,
        returned = report.returned,
        released = report.released,
        "consumer stopped"
    );
    report
}

/// Waits for in-flight handlers up to the drain deadline, then abandons the rest.
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
