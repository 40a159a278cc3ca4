//! An SQS buffer queue and its event source mapping, running for a whole simulation (the deployed event
//! delivery, as [`crate::quota::Delivery::Buffered`] models one burst): events are sent at any time,
//! at most `concurrency` pollers each take a batch of visible messages and invoke the function on it
//! (holding one of the account's concurrent executions), a failed record comes back after the visibility
//! timeout and after [`BUFFER_MAX_RECEIVES`] receives goes to the DLQ.
//!
//! Constant time per message: visible messages wait in a FIFO, returned ones in a heap by visibility time
//! (the burst model's `Vec::remove` scan would be quadratic at 100,000 tasks).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::quota::{BUFFER_MAX_RECEIVES, BUFFER_VISIBILITY};

/// How long an idle poller waits before it looks again when nothing wakes it.
const IDLE: Duration = Duration::from_secs(1);

/// A message in the buffer.
struct Message {
    event: serde_json::Value,
    receives: usize,
}

#[derive(Default)]
struct Queue {
    visible: VecDeque<Message>,
    /// Returned messages by (visible again at, sequence).
    returned: BinaryHeap<Reverse<(Instant, u64)>>,
    held: std::collections::HashMap<u64, Message>,
    seq: u64,
    in_flight: usize,
    stats: Stats,
}

/// What one buffer saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages sent to the buffer.
    pub sent: usize,
    /// Invocations (one per batch).
    pub invocations: usize,
    /// Records the function failed (each comes back or is dead-lettered).
    pub failures: usize,
    /// Messages the redrive moved to the DLQ.
    pub dead_letters: usize,
    /// Most messages waiting at once (visible or not).
    pub peak_depth: usize,
}

impl Queue {
    fn depth(&self) -> usize {
        self.visible.len() + self.held.len()
    }

    /// Makes every returned message whose time has come visible again.
    fn release(&mut self, now: Instant) {
        while let Some(Reverse((at, seq))) = self.returned.peek().copied() {
            if at > now {
                break;
            }
            self.returned.pop();
            if let Some(m) = self.held.remove(&seq) {
                self.visible.push_back(m);
            }
        }
    }

    fn next_release(&self) -> Option<Instant> {
        self.returned.peek().map(|Reverse((at, _))| *at)
    }
}

/// One buffer queue with its mapping. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    closed: Arc<AtomicBool>,
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Buffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            queue: Arc::default(),
            wake: Arc::new(Notify::new()),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// EventBridge puts an event in the buffer.
    pub fn send(&self, event: serde_json::Value) {
        let mut q = self.queue.lock().unwrap();
        q.visible.push_back(Message { event, receives: 0 });
        q.stats.sent += 1;
        q.stats.peak_depth = q.stats.peak_depth.max(q.depth());
        drop(q);
        self.wake.notify_one();
    }

    /// Messages waiting or being handled.
    pub fn pending(&self) -> usize {
        let q = self.queue.lock().unwrap();
        q.depth() + q.in_flight
    }

    /// What the buffer saw so far.
    pub fn stats(&self) -> Stats {
        self.queue.lock().unwrap().stats
    }

    /// No more events will be sent: the pollers end once the buffer is empty.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Starts `concurrency` pollers taking batches of `batch_size`, each invocation holding a permit of
    /// `lambda` (the account's concurrent executions). Each poller is one warm execution environment with
    /// its own function instance, made by `instance`; the function returns `Ok` when an event is done.
    pub fn start<F, Fut>(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        (concurrency, batch_size): (usize, usize),
        lambda: &Arc<Semaphore>,
        instance: impl Fn() -> F,
    ) where
        F: Fn(serde_json::Value) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), bool>> + Send,
    {
        for _ in 0..concurrency {
            let (me, lambda, handle) = (self.clone(), Arc::clone(lambda), instance());
            tasks.spawn(async move { me.poll(batch_size, lambda, handle).await });
        }
    }

    async fn poll<F, Fut>(self, batch_size: usize, lambda: Arc<Semaphore>, handle: F)
    where
        F: Fn(serde_json::Value) -> Fut,
        Fut: Future<Output = Result<(), bool>>,
    {
        loop {
            let (batch, wait) = self.receive(batch_size);
            if batch.is_empty() {
                if self.closed.load(Ordering::SeqCst) && self.pending() == 0 {
                    return;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let _slot = lambda.acquire().await.expect("lambda concurrency");
            self.queue.lock().unwrap().stats.invocations += 1;
            for m in batch {
                let outcome = handle(m.event.clone()).await;
                self.settle(m, outcome.is_ok());
            }
        }
    }

    /// Up to `n` visible messages (a receive counted on each), or how long to wait for more.
    fn receive(&self, n: usize) -> (Vec<Message>, Duration) {
        let now = Instant::now();
        let mut q = self.queue.lock().unwrap();
        q.release(now);
        let take = n.min(q.visible.len());
        let batch: Vec<Message> = q
            .visible
            .drain(..take)
            .map(|mut m| {
                m.receives += 1;
                m
            })
            .collect();
        q.in_flight += batch.len();
        let wait = q.next_release().map_or(IDLE, |at| (at - now).min(IDLE));
        (batch, wait)
    }

    /// A handled message is deleted; a failed one returns after the visibility timeout, or is
    /// dead-lettered after its last receive.
    fn settle(&self, m: Message, ok: bool) {
        let mut q = self.queue.lock().unwrap();
        q.in_flight -= 1;
        if ok {
            return;
        }
        q.stats.failures += 1;
        if m.receives >= BUFFER_MAX_RECEIVES {
            q.stats.dead_letters += 1;
            return;
        }
        q.seq += 1;
        let seq = q.seq;
        q.returned.push(Reverse((Instant::now() + BUFFER_VISIBILITY, seq)));
        q.held.insert(seq, m);
    }
}
