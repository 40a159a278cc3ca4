//! Polling and dispatch: keep in flight the receives the intake decides on (`intake.rs`), lease what
//! they return, start a handler per message as handler slots free up (FIFO: one at a time per message
//! group, in receive order), settle each outcome.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::ack::Pending;
use super::dedup::{Outcome, Verdict};
use super::intake::{Ask, Held};
use super::{lock, sleep_until_opt, Order, Shared};
use crate::message::{Message, Received};
use crate::port::QueueApi;
use crate::{BoxError, Handler};

/// A received message, leased under `key`.
pub(super) struct Job {
    key: u64,
    message: Message,
}

/// A job that starts as soon as a handler slot is free.
enum Ready {
    /// A message of a standard queue (or without a group).
    One(Job),
    /// The first message of an idle FIFO group; the group's later messages follow it in the same slot.
    Group(String, Job),
}

/// What one receive task returns: when it was sent, and what SQS answered.
type Receipt = (Instant, Result<Vec<Received>, BoxError>);

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
    /// One permit per handler slot.
    slots: Arc<Semaphore>,
    /// Received messages waiting for a slot, in receive order.
    ready: VecDeque<Ready>,
    /// Receives in flight, and what each asked for.
    receives: JoinSet<Receipt>,
    asks: HashMap<Id, Ask>,
}

impl<Q: QueueApi, H: Handler> Poller<Q, H> {
    pub(super) fn new(
        shared: Arc<Shared<Q>>,
        handler: Arc<H>,
        handlers: TaskTracker,
        abandon: CancellationToken,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(shared.cfg.max_concurrency)),
            worker: Worker {
                shared,
                handler,
                abandon,
            },
            handlers,
            next_key: 0,
            ready: VecDeque::new(),
            receives: JoinSet::new(),
            asks: HashMap::new(),
        }
    }

    /// Receives and dispatches until `stop` fires; receive errors are backed off. Receives still in
    /// flight then are dropped, and messages that never got a handler stay leased (returned at shutdown).
    pub(super) async fn run(mut self, stop: &CancellationToken) {
        let shared = self.worker.shared.clone();
        let mut rng = fastrand::Rng::new();
        let mut errors = 0u32;
        // After a failed receive, none starts before this.
        let mut resume: Option<Instant> = None;
        loop {
            self.start_ready();
            if resume.is_some_and(|at| at <= Instant::now()) {
                resume = None;
            }
            if resume.is_none() {
                self.top_up();
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(done) = self.receives.join_next_with_id() => {
                    let (ask, result) = match done {
                        Ok((id, (sent, result))) => (self.asks.remove(&id), result.map(|m| (m, sent.elapsed()))),
                        Err(e) => (self.asks.remove(&e.id()), Err(format!("the receive task failed: {e}").into())),
                    };
                    let Some(ask) = ask else { continue };
                    match result {
                        Ok((messages, round_trip)) => {
                            errors = 0;
                            lock(&shared.intake).received(ask, messages.len(), round_trip);
                            for raw in messages {
                                self.dispatch(raw);
                            }
                        }
                        Err(e) => {
                            lock(&shared.intake).failed(ask);
                            let delay = shared.cfg.receive_backoff.delay(errors, &mut rng);
                            errors = errors.saturating_add(1);
                            tracing::warn!(action = "receive", error = %DisplayErrorContext(&*e), delay_ms = delay.as_millis() as u64, "ReceiveMessage failed; backing off");
                            let at = Instant::now() + delay;
                            resume = Some(resume.map_or(at, |r| r.max(at)));
                        }
                    }
                }
                _ = shared.settled.notified() => {}
                _ = sleep_until_opt(resume) => {}
            }
        }
    }

    /// Starts the receives the intake asks for, given what is held now.
    fn top_up(&mut self) {
        let shared = &self.worker.shared;
        loop {
            let held = {
                let leases = lock(&shared.leases);
                let now = Instant::now();
                Held {
                    count: leases.len(),
                    oldest: leases.oldest_received().map(|at| now - at),
                }
            };
            let Some(ask) = lock(&shared.intake).next(&held) else {
                return;
            };
            let shared = shared.clone();
            let receive = async move {
                let sent = Instant::now();
                let result = shared.queue.receive(ask.max, ask.wait, shared.cfg.visibility).await;
                (sent, result)
            };
            let task = self.receives.spawn(receive.instrument(tracing::Span::current()));
            self.asks.insert(task.id(), ask);
        }
    }

    /// Starts ready jobs while handler slots are free; each frees its slot and wakes the poller when done.
    fn start_ready(&mut self) {
        while !self.ready.is_empty() {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                return;
            };
            let Some(ready) = self.ready.pop_front() else {
                return;
            };
            let worker = self.worker.clone();
            self.handlers.spawn(
                async move {
                    match ready {
                        Ready::One(job) => {
                            worker.supervise(job).await;
                        }
                        Ready::Group(group, job) => worker.run_group(group, job).await,
                    }
                    drop::<OwnedSemaphorePermit>(slot);
                    worker.shared.settled.notify_one();
                }
                .instrument(tracing::Span::current()),
            );
        }
    }

    /// Leases a received message and queues it for a handler (FIFO: behind its group's running one).
    fn dispatch(&mut self, raw: Received) {
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
        let job = Job { key, message };
        match job.message.group_id().filter(|_| shared.cfg.order == Order::PerGroup) {
            Some(group) => {
                let group = group.to_owned();
                if let Some(job) = lock(&shared.groups).push(&group, job) {
                    self.ready.push_back(Ready::Group(group, job));
                }
            }
            None => self.ready.push_back(Ready::One(job)),
        }
    }
}

/// The task's filter policies, then duplicate suppression: `false` when the message must not be handled
/// (rejected by its topic's filter policy, or a copy of a handled message: deleted; a copy of one being
/// handled: left alone).
fn admit<Q: QueueApi>(shared: &Shared<Q>, raw: &Received, message: &Message, now: Instant) -> bool {
    let message_id = raw.message_id.as_str();
    let delete = || {
        let pending = Pending {
            message_id: raw.message_id.clone(),
            receipt: raw.receipt.clone(),
        };
        shared.ack(pending, now);
    };
    if !shared.cfg.filters.current().admits(message) {
        tracing::debug!(
            action = "client-filter",
            message_id,
            "rejected by its topic's filter policy; deleting it"
        );
        lock(&shared.report).filtered_out += 1;
        delete();
        return false;
    }
    let Some(dedup) = &shared.dedup else {
        return true;
    };
    match lock(dedup).check(message.dedup_key(), now) {
        Verdict::New => true,
        Verdict::Handled => {
            tracing::debug!(action = "dedup", message_id, "copy of a handled message; deleting it");
            lock(&shared.report).duplicates += 1;
            delete();
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
    async fn run_group(&self, group: String, mut job: Job) {
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
        let Job { key, message } = job;
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
        let took = started.elapsed();
        lock(&self.shared.intake).handled(took);
        let elapsed_ms = took.as_millis() as u64;
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
