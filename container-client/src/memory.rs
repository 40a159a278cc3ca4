//! In-memory ports for tests: an SQS queue with visibility timeouts, receipt handles, receive counts,
//! call records and fault injection, driven by tokio's (pausable) clock. A FIFO queue
//! ([`MemoryQueue::fifo`]) keeps message groups like SQS: a group whose messages are in flight is held
//! back from later receives, and one receive may return several messages of a group, in order.
#![cfg(test)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasksub_core::record::{ClientFilter, State};
use tokio::time::Instant;

use crate::message::{Attribute, Received, GROUP_ID};
use crate::port::{EntryFailure, QueueApi, QueueLocator, RecordReader, MAX_BATCH};
use crate::BoxError;

/// Granularity of the long poll's checks for newly visible messages.
const POLL_STEP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    body: String,
    attributes: BTreeMap<String, Attribute>,
    visible_at: Instant,
    receive_count: u32,
    receipt: Option<String>,
    deleted: bool,
    group: Option<String>,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    Receive { at: Instant, max: usize },
    Delete { at: Instant, count: usize },
    Visibility { at: Instant, entries: Vec<Duration> },
}

#[derive(Debug, Default)]
struct State0 {
    messages: Vec<Stored>,
    next: u64,
    calls: Vec<Call>,
    fail_receives: usize,
    fail_visibility_calls: usize,
    fail_delete_calls: usize,
    fifo: bool,
    /// Every call waits this long before SQS acts on it.
    latency: Duration,
    receives_in_flight: usize,
    peak_receives_in_flight: usize,
}

/// The queue; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryQueue {
    state: Arc<Mutex<State0>>,
}

impl MemoryQueue {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A FIFO queue: send with [`MemoryQueue::send_to_group`].
    pub(crate) fn fifo() -> Self {
        let q = Self::default();
        q.with(|s| s.fifo = true);
        q
    }

    /// Every call takes `latency` before it acts (a distant SQS).
    pub(crate) fn with_latency(self, latency: Duration) -> Self {
        self.with(|s| s.latency = latency);
        self
    }

    /// The most ReceiveMessage calls that were in flight at once.
    pub(crate) fn peak_receives_in_flight(&self) -> usize {
        self.with(|s| s.peak_receives_in_flight)
    }

    /// Sends a message of a message group (`MessageGroupId`); returns its ID.
    pub(crate) fn send_to_group(&self, body: &str, group: &str) -> String {
        let id = self.send(body);
        self.with(|s| s.messages.last_mut().expect("just sent").group = Some(group.to_owned()));
        id
    }

    fn with<T>(&self, f: impl FnOnce(&mut State0) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Sends a message; returns its ID.
    pub(crate) fn send(&self, body: &str) -> String {
        self.send_with(body, BTreeMap::new())
    }

    /// Sends a message with message attributes; returns its ID.
    pub(crate) fn send_with(&self, body: &str, attributes: BTreeMap<String, Attribute>) -> String {
        self.with(|s| {
            s.next += 1;
            let id = format!("m{}", s.next);
            s.messages.push(Stored {
                id: id.clone(),
                body: body.to_owned(),
                attributes,
                visible_at: Instant::now(),
                receive_count: 0,
                receipt: None,
                deleted: false,
                group: None,
            });
            id
        })
    }

    /// The next `n` receives fail.
    pub(crate) fn fail_receives(&self, n: usize) {
        self.with(|s| s.fail_receives = n);
    }

    /// The next `n` visibility calls fail.
    pub(crate) fn fail_visibility_calls(&self, n: usize) {
        self.with(|s| s.fail_visibility_calls = n);
    }

    /// The next `n` delete calls fail.
    pub(crate) fn fail_delete_calls(&self, n: usize) {
        self.with(|s| s.fail_delete_calls = n);
    }

    /// IDs of deleted messages.
    pub(crate) fn deleted(&self) -> Vec<String> {
        self.with(|s| s.messages.iter().filter(|m| m.deleted).map(|m| m.id.clone()).collect())
    }

    /// IDs of messages that are not deleted and visible now.
    pub(crate) fn visible(&self) -> Vec<String> {
        let now = Instant::now();
        self.with(|s| {
            s.messages
                .iter()
                .filter(|m| !m.deleted && m.visible_at <= now)
                .map(|m| m.id.clone())
                .collect()
        })
    }

    /// How often a message was received.
    pub(crate) fn receive_count(&self, id: &str) -> u32 {
        self.with(|s| s.messages.iter().find(|m| m.id == id).map_or(0, |m| m.receive_count))
    }

    /// Every call so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    fn try_receive(&self, max: usize, visibility: Duration) -> Vec<Received> {
        let now = Instant::now();
        self.with(|s| {
            // FIFO: groups with a message in flight before this receive are held back.
            let held: Vec<String> = s
                .messages
                .iter()
                .filter(|m| s.fifo && !m.deleted && m.receipt.is_some() && m.visible_at > now)
                .filter_map(|m| m.group.clone())
                .collect();
            let mut out = Vec::new();
            let mut next = s.next;
            for m in s
                .messages
                .iter_mut()
                .filter(|m| !m.deleted && m.visible_at <= now)
                .filter(|m| m.group.as_ref().is_none_or(|g| !held.contains(g)))
                .take(max.min(MAX_BATCH))
            {
                next += 1;
                let receipt = format!("rh-{}-{next}", m.id);
                m.receipt = Some(receipt.clone());
                m.receive_count += 1;
                m.visible_at = now + visibility;
                let mut system: BTreeMap<String, String> =
                    [("ApproximateReceiveCount".to_owned(), m.receive_count.to_string())].into();
                if let Some(g) = &m.group {
                    system.insert(GROUP_ID.to_owned(), g.clone());
                }
                out.push(Received {
                    message_id: m.id.clone(),
                    receipt,
                    body: m.body.clone(),
                    attributes: m.attributes.clone(),
                    system,
                });
            }
            s.next = next;
            out
        })
    }
}

/// Counts a receive out of flight when dropped.
struct InFlight<'a>(&'a MemoryQueue);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.with(|s| s.receives_in_flight -= 1);
    }
}

impl QueueApi for MemoryQueue {
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, BoxError> {
        let sent = Instant::now();
        let latency = self.with(|s| {
            s.calls.push(Call::Receive { at: sent, max });
            s.receives_in_flight += 1;
            s.peak_receives_in_flight = s.peak_receives_in_flight.max(s.receives_in_flight);
            s.latency
        });
        // Counted out when the call ends, or when the caller drops it.
        let _in_flight = InFlight(self);
        tokio::time::sleep(latency).await;
        let failing = self.with(|s| {
            let failing = s.fail_receives > 0;
            s.fail_receives = s.fail_receives.saturating_sub(1);
            failing
        });
        if failing {
            return Err("injected receive failure".into());
        }
        let start = Instant::now();
        loop {
            let got = self.try_receive(max, visibility);
            if !got.is_empty() || start.elapsed() >= wait {
                return Ok(got);
            }
            tokio::time::sleep(POLL_STEP.min(wait.saturating_sub(start.elapsed()))).await;
        }
    }

    async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<EntryFailure>, BoxError> {
        assert!(receipts.len() <= MAX_BATCH, "SQS batches hold at most 10 entries");
        tokio::time::sleep(self.with(|s| s.latency)).await;
        let now = Instant::now();
        self.with(|s| {
            s.calls.push(Call::Delete {
                at: now,
                count: receipts.len(),
            });
            if s.fail_delete_calls > 0 {
                s.fail_delete_calls -= 1;
                return Err("injected delete failure".into());
            }
            let mut failures = Vec::new();
            for (index, r) in receipts.iter().enumerate() {
                match s
                    .messages
                    .iter_mut()
                    .find(|m| !m.deleted && m.receipt.as_ref() == Some(r))
                {
                    Some(m) => m.deleted = true,
                    None => failures.push(EntryFailure {
                        index,
                        code: "ReceiptHandleIsInvalid".into(),
                    }),
                }
            }
            Ok(failures)
        })
    }

    async fn change_visibility_batch(&self, entries: &[(String, Duration)]) -> Result<Vec<EntryFailure>, BoxError> {
        assert!(entries.len() <= MAX_BATCH, "SQS batches hold at most 10 entries");
        tokio::time::sleep(self.with(|s| s.latency)).await;
        let now = Instant::now();
        self.with(|s| {
            s.calls.push(Call::Visibility {
                at: now,
                entries: entries.iter().map(|(_, d)| *d).collect(),
            });
            if s.fail_visibility_calls > 0 {
                s.fail_visibility_calls -= 1;
                return Err("injected visibility failure".into());
            }
            let mut failures = Vec::new();
            for (index, (r, d)) in entries.iter().enumerate() {
                match s
                    .messages
                    .iter_mut()
                    .find(|m| !m.deleted && m.receipt.as_ref() == Some(r))
                {
                    // Like SQS: a message whose visibility already ended is no longer in flight.
                    Some(m) if m.visible_at > now => m.visible_at = now + *d,
                    Some(_) => failures.push(EntryFailure {
                        index,
                        code: "MessageNotInflight".into(),
                    }),
                    None => failures.push(EntryFailure {
                        index,
                        code: "ReceiptHandleIsInvalid".into(),
                    }),
                }
            }
            Ok(failures)
        })
    }
}

/// A locator whose queue appears after a number of lookups (`None`: never); errors can be scripted.
#[derive(Debug, Default)]
pub(crate) struct ScriptedLocator {
    pub answers: Mutex<VecDeque<Result<Option<String>, String>>>,
    pub calls: Mutex<Vec<Instant>>,
}

impl ScriptedLocator {
    pub(crate) fn new(answers: impl IntoIterator<Item = Result<Option<&'static str>, &'static str>>) -> Self {
        let answers = answers
            .into_iter()
            .map(|a| a.map(|o| o.map(str::to_owned)).map_err(str::to_owned))
            .collect();
        Self {
            answers: Mutex::new(answers),
            calls: Mutex::new(Vec::new()),
        }
    }
}

impl QueueLocator for ScriptedLocator {
    async fn queue_url(&self, _name: &str) -> Result<Option<String>, BoxError> {
        self.calls.lock().unwrap().push(Instant::now());
        match self.answers.lock().unwrap().pop_front() {
            Some(Ok(url)) => Ok(url),
            Some(Err(e)) => Err(e.into()),
            None => Ok(None),
        }
    }
}

/// Records whose states come from a script (then the last one repeats).
#[derive(Debug, Default)]
pub(crate) struct ScriptedRecords {
    pub states: Mutex<VecDeque<Option<State>>>,
    pub calls: Mutex<usize>,
    /// What `client_filters` answers.
    pub filters: Mutex<BTreeMap<String, ClientFilter>>,
}

impl ScriptedRecords {
    pub(crate) fn new(states: impl IntoIterator<Item = Option<State>>) -> Self {
        Self {
            states: Mutex::new(states.into_iter().collect()),
            calls: Mutex::new(0),
            filters: Mutex::new(BTreeMap::new()),
        }
    }
}

impl RecordReader for ScriptedRecords {
    async fn state(&self, _task_id: &str) -> Result<Option<State>, BoxError> {
        *self.calls.lock().unwrap() += 1;
        let mut states = self.states.lock().unwrap();
        Ok(if states.len() > 1 {
            states.pop_front().flatten()
        } else {
            states.front().copied().flatten()
        })
    }

    async fn client_filters(&self, _task_id: &str) -> Result<BTreeMap<String, ClientFilter>, BoxError> {
        Ok(self.filters.lock().unwrap().clone())
    }
}
