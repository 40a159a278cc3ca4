//! Ports that ask the scheduler before every call: one [`Gated`] per invocation, all sharing one
//! [`Board`]. A call parks its invocation at the gate until the scheduler grants it; the fake underneath
//! answers synchronously, so a port call is atomic and the gates are the only interleaving points.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::{Record, State};
use tasksub_functions::fake::Fake;
use tasksub_functions::ports::{Expect, PortError, Records, Written};
use tasksub_functions::wrap::Wrap;

/// What the scheduler and the gates share.
#[derive(Debug, Default)]
pub struct Board {
    /// (invocation, call) → the operation it waits to call. An invocation may wait at two gates at once
    /// (the executor issues independent calls concurrently).
    pub waiting: BTreeMap<(usize, usize), &'static str>,
    /// Calls allowed to proceed.
    pub granted: BTreeSet<(usize, usize)>,
    /// Calls made so far, per invocation (the next call's number).
    pub calls: BTreeMap<usize, usize>,
    /// Granted calls whose answer is lost: the call takes effect, the caller gets a transient error (a
    /// connection dropped after the request went through).
    pub lose_answer: BTreeSet<(usize, usize)>,
    /// Invariant violations seen while running (checked at every write).
    pub violations: Vec<String>,
    /// Emulate the conditions before revisions (state only; MarkReady accepts PROVISIONING or READY).
    pub legacy: bool,
    /// Per invocation, the record it last read or wrote (for the legacy conditions).
    pub seen: BTreeMap<usize, Option<Record>>,
}

/// The shared board.
pub type Shared = Arc<Mutex<Board>>;

/// Locks the board.
pub fn lock(board: &Shared) -> MutexGuard<'_, Board> {
    board.lock().expect("board lock")
}

/// Ports of one invocation.
#[derive(Debug, Clone)]
pub struct Gated {
    inner: Fake,
    board: Shared,
    id: usize,
}

impl Gated {
    /// The ports of invocation `id`.
    pub fn new(inner: Fake, board: Shared, id: usize) -> Self {
        Self { inner, board, id }
    }

    fn gate(&self, op: &'static str) -> Gate<'_> {
        let mut b = lock(&self.board);
        let n = b.calls.entry(self.id).or_default();
        let key = (self.id, *n);
        *n += 1;
        Gate {
            board: &self.board,
            key,
            op,
        }
    }

    fn saw(&self, record: Option<Record>) {
        lock(&self.board).seen.insert(self.id, record);
    }

    /// The pre-revision conditions: the state this invocation last saw (MarkReady: PROVISIONING or READY).
    fn legacy_put(&self, record: &Record) -> Written {
        let current = self.inner.record(&record.task_id);
        let seen = lock(&self.board).seen.get(&self.id).cloned().flatten().map(|r| r.state);
        let holds = match (record.state, current.as_ref()) {
            (State::Ready, Some(c)) => matches!(c.state, State::Provisioning | State::Ready),
            (_, Some(c)) => Some(c.state) == seen,
            (_, None) => false,
        };
        if !holds {
            return Written::Conflict(current);
        }
        let c = current.expect("held on a stored record");
        let mut next = record.clone();
        next.revision = c.revision + 1;
        self.inner.insert_record(next);
        Written::Applied
    }
}

/// Parks until the scheduler grants this invocation its next call.
struct Gate<'a> {
    board: &'a Shared,
    key: (usize, usize),
    op: &'static str,
}

/// The answer of a call whose answer the scheduler chose to lose.
fn answer<T>(lost: bool, op: &'static str, r: Result<T, PortError>) -> Result<T, PortError> {
    if lost {
        return Err(PortError::new(
            ErrorKind::Transient,
            op,
            "connection lost after the request was sent",
        ));
    }
    r
}

impl Future for Gate<'_> {
    /// True when the call's answer is to be lost.
    type Output = bool;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<bool> {
        let mut b = lock(self.board);
        if b.granted.remove(&self.key) {
            b.waiting.remove(&self.key);
            Poll::Ready(b.lose_answer.remove(&self.key))
        } else {
            b.waiting.insert(self.key, self.op);
            Poll::Pending
        }
    }
}

impl Records for Gated {
    async fn get(&self, task_id: &str) -> Result<Option<Record>, PortError> {
        let call = async {
            let r = self.inner.get(task_id).await;
            if let Ok(found) = &r {
                self.saw(found.clone());
            }
            r
        };
        self.around("GetItem", call).await
    }

    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, PortError> {
        let call = async {
            let before = self.inner.record(&record.task_id);
            let legacy = lock(&self.board).legacy;
            let written = match expect {
                Expect::Revision(..) if legacy => self.legacy_put(record),
                _ => self.inner.put(record, expect).await?,
            };
            match &written {
                Written::Applied => {
                    if before.as_ref().is_some_and(|b| b.state == State::Gone) && record.state != State::Gone {
                        lock(&self.board)
                            .violations
                            .push(format!("GONE came back: {} written over a GONE record", record.state));
                    }
                    self.saw(self.inner.record(&record.task_id));
                }
                Written::Conflict(current) => self.saw(current.clone()),
            }
            Ok(written)
        };
        self.around("PutItem", call).await
    }

    async fn list(&self) -> Result<tasksub_functions::ports::Scanned, PortError> {
        self.around("Scan", Records::list(&self.inner)).await
    }
}

impl Wrap for Gated {
    type Inner = Fake;

    fn inner(&self) -> &Fake {
        &self.inner
    }

    /// Parks at the gate, then makes the call; its answer is lost if the scheduler chose so.
    async fn around<T: Send>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> Result<T, PortError> {
        let lost = self.gate(op).await;
        answer(lost, op, call.await)
    }
}

// Records is written out above: reads and writes also keep the board's record of what was seen.
tasksub_functions::wrap_ports!([] Gated: Queues, Subscriptions, Tasks);
