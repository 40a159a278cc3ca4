//! An in-memory SQS standard queue with a fixed latency per call, and the client's consume loop on it:
//! for benchmarks where an emulator must not be the bottleneck (one lock, no scans: a message costs a
//! few microseconds), and for trying settings without AWS.
//!
//! It keeps what the consume loop relies on: visibility timeouts counted from the receipt, receipt
//! handles (a stale one is refused), receive counts, long polls that return as soon as a message is
//! visible, ChangeMessageVisibility (0 makes a message visible at once), batch calls of at most 10.
//! Every call (receive, delete, visibility change) first waits the latency, as a distant SQS would;
//! sending is immediate (the producer's side is not what is measured).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::consume::{self, RunReport};
use crate::message::Received;
use crate::port::{EntryFailure, QueueApi, MAX_BATCH};
use crate::{BoxError, ClientBuilder, Error, Handler};

/// Longest sleep of a waiting long poll between looks at the queue (visibility timeouts that end
/// wake nobody).
const POLL_STEP: Duration = Duration::from_millis(10);

/// Calls and messages since the queue was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqsCalls {
    /// ReceiveMessage calls.
    pub receives: u64,
    /// ReceiveMessage calls that returned no message.
    pub empty_receives: u64,
    /// Messages returned by ReceiveMessage.
    pub received: u64,
    /// DeleteMessage and DeleteMessageBatch calls.
    pub deletes: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// ChangeMessageVisibility(Batch) calls.
    pub visibility_changes: u64,
    /// The most ReceiveMessage calls in flight at once.
    pub peak_receives_in_flight: u64,
}

impl SqsCalls {
    /// Every call: receives, deletes and visibility changes.
    pub fn total(&self) -> u64 {
        self.receives + self.deletes + self.visibility_changes
    }
}

/// A received message, as a hand-written consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    /// The message ID.
    pub message_id: String,
    /// This receipt's handle (for the delete).
    pub receipt: String,
    /// The body.
    pub body: String,
    /// 1 at the first receive.
    pub receive_count: u32,
}

#[derive(Debug)]
struct Stored {
    body: String,
    sent: i64,
    receive_count: u32,
    /// The receipt generation of the last receive (0: never received).
    receipt: u64,
    /// While in flight: when it becomes visible again.
    until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    visible: VecDeque<u64>,
    messages: HashMap<u64, Stored>,
    /// (visible again at, message, receipt generation); stale entries are skipped.
    expiries: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    next_id: u64,
    next_receipt: u64,
}

impl State {
    /// Makes messages whose visibility timeout ended visible again.
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, id, receipt))) = self.expiries.peek().copied() {
            if at > now {
                return;
            }
            self.expiries.pop();
            if let Some(m) = self.messages.get_mut(&id) {
                if m.receipt == receipt && m.until == Some(at) {
                    m.until = None;
                    self.visible.push_back(id);
                }
            }
        }
    }

    fn take(&mut self, max: usize, visibility: Duration, now: Instant) -> Vec<(u64, u64)> {
        self.expire(now);
        let mut out = Vec::new();
        while out.len() < max.min(MAX_BATCH) {
            let Some(id) = self.visible.pop_front() else { break };
            let Some(m) = self.messages.get_mut(&id) else { continue };
            if m.until.is_some() {
                continue;
            }
            self.next_receipt += 1;
            let until = now + visibility;
            m.receipt = self.next_receipt;
            m.receive_count += 1;
            m.until = Some(until);
            self.expiries.push(Reverse((until, id, m.receipt)));
            out.push((id, m.receipt));
        }
        out
    }

    /// The message a receipt handle names, if the handle is its latest.
    fn by_receipt(&mut self, receipt: &str) -> Option<(u64, &mut Stored)> {
        let (id, generation) = receipt.split_once(':')?;
        let (id, generation) = (id.parse::<u64>().ok()?, generation.parse::<u64>().ok()?);
        self.messages
            .get_mut(&id)
            .filter(|m| m.receipt == generation)
            .map(|m| (id, m))
    }

    fn set_visibility(&mut self, receipt: &str, visibility: Duration, now: Instant) -> Result<(), &'static str> {
        let Some((id, m)) = self.by_receipt(receipt) else {
            return Err("ReceiptHandleIsInvalid");
        };
        if m.until.is_none_or(|u| u <= now) {
            return Err("MessageNotInflight");
        }
        if visibility.is_zero() {
            m.until = None;
            self.visible.push_back(id);
        } else {
            let until = now + visibility;
            m.until = Some(until);
            let receipt = m.receipt;
            self.expiries.push(Reverse((until, id, receipt)));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counters {
    receives: AtomicU64,
    empty_receives: AtomicU64,
    received: AtomicU64,
    deletes: AtomicU64,
    deleted: AtomicU64,
    visibility_changes: AtomicU64,
    receives_in_flight: AtomicU64,
    peak_receives_in_flight: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    latency: Duration,
    state: Mutex<State>,
    arrived: Notify,
    counters: Counters,
}

/// An in-memory SQS standard queue; clones share it. See the module docs.
#[derive(Debug, Clone)]
pub struct MemorySqs {
    inner: Arc<Inner>,
}

/// Counts a receive out of flight when dropped.
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.receives_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl MemorySqs {
    /// An empty queue whose every call takes `latency` before it acts.
    pub fn new(latency: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                latency,
                state: Mutex::new(State::default()),
                arrived: Notify::new(),
                counters: Counters::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends a message (at once: no latency); returns its ID.
    pub fn send(&self, body: &str) -> String {
        let id = {
            let mut s = self.state();
            s.next_id += 1;
            let id = s.next_id;
            s.messages.insert(
                id,
                Stored {
                    body: body.to_owned(),
                    sent: chrono::Utc::now().timestamp_millis(),
                    receive_count: 0,
                    receipt: 0,
                    until: None,
                },
            );
            s.visible.push_back(id);
            id
        };
        self.inner.arrived.notify_waiters();
        format!("m{id}")
    }

    /// Messages visible now.
    pub fn visible(&self) -> usize {
        let mut s = self.state();
        s.expire(Instant::now());
        s.visible.len()
    }

    /// Messages not deleted (visible or in flight).
    pub fn len(&self) -> usize {
        self.state().messages.len()
    }

    /// True when every message was deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls and messages so far.
    pub fn calls(&self) -> SqsCalls {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SqsCalls {
            receives: get(&c.receives),
            empty_receives: get(&c.empty_receives),
            received: get(&c.received),
            deletes: get(&c.deletes),
            deleted: get(&c.deleted),
            visibility_changes: get(&c.visibility_changes),
            peak_receives_in_flight: get(&c.peak_receives_in_flight),
        }
    }

    /// One ReceiveMessage: after the latency, up to `max` (at most 10) messages, waiting up to `wait`
    /// for one to be visible; each stays invisible for `visibility`.
    pub async fn receive_messages(&self, max: usize, wait: Duration, visibility: Duration) -> Vec<SqsMessage> {
        let c = &self.inner.counters;
        add(&c.receives, 1);
        let now_in_flight = c.receives_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        c.peak_receives_in_flight.fetch_max(now_in_flight, Ordering::Relaxed);
        let _in_flight = InFlight(c);
        tokio::time::sleep(self.inner.latency).await;
        let deadline = Instant::now() + wait;
        loop {
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let got = {
                let mut s = self.state();
                let taken = s.take(max, visibility, Instant::now());
                taken
                    .into_iter()
                    .map(|(id, receipt)| {
                        let m = &s.messages[&id];
                        SqsMessage {
                            message_id: format!("m{id}"),
                            receipt: format!("{id}:{receipt}"),
                            body: m.body.clone(),
                            receive_count: m.receive_count,
                        }
                    })
                    .collect::<Vec<_>>()
            };
            let now = Instant::now();
            if !got.is_empty() || now >= deadline {
                add(&c.received, got.len() as u64);
                if got.is_empty() {
                    add(&c.empty_receives, 1);
                }
                return got;
            }
            let _ = tokio::time::timeout(POLL_STEP.min(deadline - now), arrived).await;
        }
    }

    /// One DeleteMessage: true when the receipt handle was the message's latest.
    pub async fn delete_message(&self, receipt: &str) -> bool {
        self.delete(&[receipt.to_owned()]).await.is_empty()
    }

    async fn delete(&self, receipts: &[String]) -> Vec<EntryFailure> {
        assert!(receipts.len() <= MAX_BATCH, "SQS batches hold at most 10 entries");
        add(&self.inner.counters.deletes, 1);
        tokio::time::sleep(self.inner.latency).await;
        let mut s = self.state();
        let mut failures = Vec::new();
        for (index, r) in receipts.iter().enumerate() {
            match s.by_receipt(r).map(|(id, _)| id) {
                Some(id) => {
                    s.messages.remove(&id);
                    add(&self.inner.counters.deleted, 1);
                }
                None => failures.push(EntryFailure {
                    index,
                    code: "ReceiptHandleIsInvalid".into(),
                }),
            }
        }
        failures
    }

    fn sent_timestamp(&self, message_id: &str) -> Option<i64> {
        let id = message_id.strip_prefix('m')?.parse::<u64>().ok()?;
        self.state().messages.get(&id).map(|m| m.sent)
    }
}

impl QueueApi for MemorySqs {
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, BoxError> {
        let got = self.receive_messages(max, wait, visibility).await;
        Ok(got
            .into_iter()
            .map(|m| {
                let mut system: BTreeMap<String, String> =
                    [("ApproximateReceiveCount".to_owned(), m.receive_count.to_string())].into();
                if let Some(sent) = self.sent_timestamp(&m.message_id) {
                    system.insert("SentTimestamp".to_owned(), sent.to_string());
                }
                Received {
                    message_id: m.message_id,
                    receipt: m.receipt,
                    body: m.body,
                    attributes: BTreeMap::new(),
                    system,
                }
            })
            .collect())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<EntryFailure>, BoxError> {
        Ok(self.delete(receipts).await)
    }

    async fn change_visibility_batch(&self, entries: &[(String, Duration)]) -> Result<Vec<EntryFailure>, BoxError> {
        assert!(entries.len() <= MAX_BATCH, "SQS batches hold at most 10 entries");
        add(&self.inner.counters.visibility_changes, 1);
        tokio::time::sleep(self.inner.latency).await;
        let now = Instant::now();
        let failures = {
            let mut s = self.state();
            entries
                .iter()
                .enumerate()
                .filter_map(|(index, (r, d))| {
                    s.set_visibility(r, *d, now).err().map(|code| EntryFailure {
                        index,
                        code: code.into(),
                    })
                })
                .collect()
        };
        self.inner.arrived.notify_waiters();
        Ok(failures)
    }
}

/// Runs the client's consume loop, with `builder`'s consume settings (concurrency, buffer, receives in
/// flight, visibility, ...), on an in-memory queue instead of the task's SQS queue: no discovery, no
/// wait, no SDK. Returns when `shutdown` fired and the loop drained, like [`crate::Client::run`].
pub async fn run_in_memory<H: Handler>(
    builder: &ClientBuilder,
    queue: &MemorySqs,
    handler: H,
    shutdown: CancellationToken,
) -> Result<RunReport, Error> {
    let cfg = builder.standard_consume_config()?;
    let mut report = consume::consume(queue.clone(), Arc::new(handler), cfg, shutdown).await;
    report.subscribed = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn every_call_takes_the_latency_and_a_long_poll_waits_for_a_message() {
        let q = MemorySqs::new(Duration::from_millis(30));
        let t0 = Instant::now();
        assert!(q.receive_messages(10, Duration::ZERO, V).await.is_empty());
        assert_eq!(t0.elapsed(), Duration::from_millis(30));
        let sender = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            sender.send("late");
        });
        let got = q.receive_messages(10, Duration::from_secs(20), V).await;
        assert_eq!(got.len(), 1, "returned as soon as one arrived");
        assert_eq!(t0.elapsed(), Duration::from_millis(2030));
        let calls = q.calls();
        assert_eq!((calls.receives, calls.empty_receives, calls.received), (2, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn received_messages_are_invisible_until_deleted_or_their_timeout_ends() {
        let q = MemorySqs::new(Duration::ZERO);
        for i in 0..12 {
            q.send(&format!("m{i}"));
        }
        let first = q.receive_messages(20, Duration::ZERO, V).await;
        assert_eq!(first.len(), 10, "at most 10 a receive");
        assert_eq!(q.visible(), 2);
        assert!(q.delete_message(&first[0].receipt).await);
        assert!(!q.delete_message(&first[0].receipt).await, "already deleted");
        tokio::time::sleep(V).await;
        assert_eq!(q.visible(), 11, "the 9 undeleted came back");
        let again = q.receive_messages(10, Duration::ZERO, V).await;
        let redelivered = again.iter().find(|m| m.message_id == first[1].message_id).unwrap();
        assert_eq!(redelivered.receive_count, 2);
        assert!(!q.delete_message(&first[1].receipt).await, "a stale receipt is refused");
        assert!(q.delete_message(&redelivered.receipt).await);
        assert_eq!(q.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn visibility_changes_extend_or_end_the_timeout() {
        let q = MemorySqs::new(Duration::ZERO);
        q.send("a");
        q.send("b");
        let got = q.receive_messages(2, Duration::ZERO, V).await;
        let entries = [
            (got[0].receipt.clone(), Duration::from_secs(60)),
            (got[1].receipt.clone(), Duration::ZERO),
            ("9:9".to_owned(), Duration::ZERO),
        ];
        let failures = q.change_visibility_batch(&entries).await.unwrap();
        assert_eq!(failures.iter().map(|f| f.index).collect::<Vec<_>>(), [2]);
        assert_eq!(q.visible(), 1, "b at once");
        tokio::time::sleep(V + Duration::from_secs(1)).await;
        assert_eq!(q.visible(), 1, "a extended to 60 s");
        tokio::time::sleep(V).await;
        assert_eq!(q.visible(), 2);
        let calls = q.calls();
        assert_eq!(calls.visibility_changes, 1);
    }
}
