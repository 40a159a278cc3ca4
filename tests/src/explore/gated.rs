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
use tasksub_functions::ports::{Expect, PortError, Queues, Records, SubscriptionPage, Subscriptions, Written};
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
    /// Old behaviours emulated at the ports (test-only, to show the explorer finds what they broke).
    pub old: OldPorts,
    /// Per invocation, the settings it runs with: generation, and whether they are the new version's
    /// (the deploy's target; true when the settings never change).
    pub versions: BTreeMap<usize, (u64, bool)>,
    /// The deploy has begun: from now on only the new version's settings are the newest (an invocation
    /// of the old version launched before is an older version, even though it was the newest then).
    pub deployed: bool,
    /// The newest deployed settings: generation and topics. An Unsubscribe of a live task's existing
    /// subscription to one of these topics, while the topic accepts it, is a topic lost (unless the
    /// generations are unordered and the writer is the old version).
    pub newest: (u64, BTreeSet<String>),
    /// The task never stops in this schedule.
    pub live_task: bool,
    /// Every subscription ARN an invocation was told (its answer was not lost).
    pub answered: BTreeSet<String>,
    /// What each writing call did, in order (`#id op what`), for failure reports.
    pub trace: Vec<String>,
    /// Every gate is open (the final sweep, run to its end without a scheduler).
    pub free: bool,
}

/// Behaviours before convergence, emulated in the ports (the executor's own are in
/// `tasksub_functions::executor::legacy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OldPorts {
    /// Records never name topics before subscribing (no intents): writes drop `pending`.
    pub forget_intents: bool,
    /// A queue is adopted as it is: SetQueueAttributes does nothing.
    pub adopt_as_is: bool,
    /// No settings generations: writes store generation 0, so every writer converges (the last wins).
    pub ignore_generation: bool,
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
        if b.free {
            return Poll::Ready(false);
        }
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
        let old = lock(&self.board).old;
        let mut record = record.clone();
        if old.forget_intents {
            record.pending.clear();
        }
        if old.ignore_generation {
            record.generation = 0;
        }
        let record = &record;
        let call = async {
            let before = self.inner.record(&record.task_id);
            let legacy = lock(&self.board).legacy;
            let written = match expect {
                Expect::Revision(..) if legacy => self.legacy_put(record),
                _ => self.inner.put(record, expect).await?,
            };
            let subs: Vec<String> = record
                .subscriptions
                .iter()
                .map(|(t, a)| format!("{}={}", short(t), short(a)))
                .collect();
            let pend: Vec<&str> = record.pending.iter().map(|t| short(t)).collect();
            self.trace(format!(
                "Put {} rev{} subs{subs:?} pending{pend:?} -> {}",
                record.state,
                record.revision,
                match &written {
                    Written::Applied => "applied".to_owned(),
                    Written::Conflict(c) => format!("conflict {:?}", c.as_ref().map(|c| (c.state, c.revision))),
                }
            ));
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

    // The sweeper's bookkeeping decides no verdict (a position only says where a listing resumes): not
    // a step of the schedule.
    async fn positions(&self) -> Result<tasksub_core::listing::Positions, PortError> {
        self.inner.positions().await
    }

    async fn save_positions(&self, positions: &tasksub_core::listing::Positions) -> Result<bool, PortError> {
        self.inner.save_positions(positions).await
    }
}

/// The last part of an ARN (a topic's name, a subscription's ID).
fn short(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn lost_tag(lost: bool) -> &'static str {
    if lost {
        " (answer lost)"
    } else {
        ""
    }
}

impl Gated {
    fn trace(&self, what: String) {
        lock(&self.board).trace.push(format!("#{} {what}", self.id));
    }

    /// Checked before an Unsubscribe: a live task must never lose a topic that accepts it, unless the
    /// newest settings no longer want it (or the generations are unordered and this is the old version).
    fn check_unsubscribe(&self, arn: &str) {
        let Some(sub) = self.inner.subscriptions().get(arn).cloned() else {
            return;
        };
        let mut b = lock(&self.board);
        let (gen, runs_new) = b.versions.get(&self.id).copied().unwrap_or((0, true));
        let newest_version = runs_new || !b.deployed;
        let wanted = b.newest.1.contains(&sub.topic_arn);
        let accepts = self.inner.refusal(&sub.topic_arn).is_none();
        let unordered = gen == b.newest.0 && !newest_version;
        if b.live_task && wanted && accepts && !unordered {
            let who = if newest_version {
                "the newest settings"
            } else {
                "an older settings generation"
            };
            b.violations.push(format!(
                "{who} unsubscribed a live task from {}, a topic it should keep",
                sub.topic_arn
            ));
        }
    }
}

impl Subscriptions for Gated {
    async fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        let lost = self.gate("Subscribe").await;
        let r = self.inner.subscribe(topic_arn, queue_arn, attributes).await;
        if let (false, Ok(arn)) = (lost, &r) {
            lock(&self.board).answered.insert(arn.clone());
        }
        self.trace(format!(
            "Subscribe {} -> {:?}{}",
            short(topic_arn),
            r.as_ref().map(|a| short(a)),
            lost_tag(lost)
        ));
        answer(lost, "Subscribe", r)
    }

    async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), PortError> {
        let lost = self.gate("Unsubscribe").await;
        self.check_unsubscribe(subscription_arn);
        let r = self.inner.unsubscribe(subscription_arn).await;
        self.trace(format!(
            "Unsubscribe {} -> {:?}{}",
            short(subscription_arn),
            r.as_ref().map_err(|e| e.kind),
            lost_tag(lost)
        ));
        answer(lost, "Unsubscribe", r)
    }

    async fn subscription_attributes(&self, subscription_arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.around(
            "GetSubscriptionAttributes",
            self.inner.subscription_attributes(subscription_arn),
        )
        .await
    }

    async fn set_subscription_attribute(
        &self,
        subscription_arn: &str,
        name: &'static str,
        value: &str,
    ) -> Result<(), PortError> {
        let call = self.inner.set_subscription_attribute(subscription_arn, name, value);
        self.around("SetSubscriptionAttributes", call).await
    }

    async fn find(&self, topic_arn: &str, endpoint: &str) -> Result<Option<String>, PortError> {
        let lost = self.gate("ListSubscriptionsByTopic").await;
        let r = self.inner.find(topic_arn, endpoint).await;
        if let (false, Ok(Some(arn))) = (lost, &r) {
            lock(&self.board).answered.insert(arn.clone());
        }
        answer(lost, "ListSubscriptionsByTopic", r)
    }

    async fn list_own(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        let lost = self.gate("ListSubscriptions").await;
        let r = self.inner.list_own(topic_arn, next).await;
        if let (false, Ok(page)) = (lost, &r) {
            let mut b = lock(&self.board);
            b.answered.extend(page.subscriptions.iter().map(|s| s.arn.clone()));
        }
        answer(lost, "ListSubscriptions", r)
    }

    async fn list_by_topic(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        let lost = self.gate("ListSubscriptionsByTopic").await;
        let r = self.inner.list_by_topic(topic_arn, next).await;
        if let (false, Ok(page)) = (lost, &r) {
            let mut b = lock(&self.board);
            b.answered.extend(page.subscriptions.iter().map(|s| s.arn.clone()));
        }
        answer(lost, "ListSubscriptionsByTopic", r)
    }
}

impl Queues for Gated {
    async fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<&'static str, String>,
        tags: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        self.around("CreateQueue", self.inner.create(name, attributes, tags))
            .await
    }
    async fn url(&self, name: &str) -> Result<String, PortError> {
        self.around("GetQueueUrl", self.inner.url(name)).await
    }
    async fn delete(&self, url: &str) -> Result<(), PortError> {
        self.around("DeleteQueue", self.inner.delete(url)).await
    }
    async fn queue_attributes(&self, url: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.around("GetQueueAttributes", self.inner.queue_attributes(url))
            .await
    }
    async fn queue_tags(&self, url: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.around("ListQueueTags", self.inner.queue_tags(url)).await
    }
    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<(), PortError> {
        let adopt_as_is = lock(&self.board).old.adopt_as_is;
        let call = async move {
            if adopt_as_is {
                return Ok(());
            }
            self.inner.set_queue_attributes(url, attributes).await
        };
        self.around("SetQueueAttributes", call).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        self.around("ListQueues", Queues::list(&self.inner, prefix)).await
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

// Records, Queues and Subscriptions are written out above: they keep the board's record of what was seen
// and answered, check every Unsubscribe, and emulate old behaviours.
tasksub_functions::wrap_ports!([] Gated: Tasks);
