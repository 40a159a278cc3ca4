//! The fake behind every AWS quota the fleet meets: a token bucket per limit, each operation drawing its
//! units from the limits it counts against, 20 ms per call, and the SDK's standard retry (as
//! [`crate::quota::Quota`] models it). It also watches the records written, to time each task's READY,
//! DRAINING and GONE.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::{Record, State};
use tasksub_functions::fake::Fake;
use tasksub_functions::ports::{Expect, PortError, Records, Scanned, Written};
use tasksub_functions::wrap::Wrap;
use tokio::time::Instant;

use crate::quota::{Bucket, CALL_LATENCY};

/// Whether CreateQueue with tags counts against SQS's tagging quota (AWS does not say; both are modelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    /// (a) CreateQueue with tags draws a token from the 30 TPS tagging bucket.
    OnCreateCounts,
    /// (b) it does not (only TagQueue/UntagQueue/ListQueueTags would).
    OnCreateFree,
}

/// One limit: a name, a rate in units a second (burst: one second's worth).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Its name in the report.
    pub name: &'static str,
    /// Units a second.
    pub rate: f64,
}

/// SNS Subscribe, per account and region (AWS General Reference, "Amazon SNS endpoints and quotas").
pub const SUBSCRIBE: Limit = Limit {
    name: "SNS Subscribe",
    rate: 100.0,
};
/// SNS Unsubscribe.
pub const UNSUBSCRIBE: Limit = Limit {
    name: "SNS Unsubscribe",
    rate: 100.0,
};
/// SNS ListSubscriptionsByTopic.
pub const LIST_BY_TOPIC: Limit = Limit {
    name: "SNS ListSubscriptionsByTopic",
    rate: 30.0,
};
/// SQS tagging actions (TagQueue, UntagQueue, ListQueueTags), per account.
pub const TAGGING: Limit = Limit {
    name: "SQS tagging",
    rate: 30.0,
};
/// A new on-demand DynamoDB table's initial write throughput (write request units a second).
pub const DDB_WRITES: Limit = Limit {
    name: "DynamoDB writes (WRU)",
    rate: 4000.0,
};
/// A new on-demand DynamoDB table's initial read throughput (read request units a second).
pub const DDB_READS: Limit = Limit {
    name: "DynamoDB reads (RRU)",
    rate: 12_000.0,
};

/// A record's size as stored (bytes, estimated): what a Scan page of 1 MB holds.
pub const RECORD_BYTES: usize = 500;
/// Read units of one Scan page (1 MB, strongly consistent: one unit per 4 KB).
const SCAN_PAGE_UNITS: f64 = 256.0;

/// The limits `op` counts against, with the units one call draws.
fn draws(op: &str, tagging: Tagging) -> &'static [(Limit, f64)] {
    match op {
        "Subscribe" => &[(SUBSCRIBE, 1.0)],
        "Unsubscribe" => &[(UNSUBSCRIBE, 1.0)],
        "ListSubscriptionsByTopic" => &[(LIST_BY_TOPIC, 1.0)],
        "CreateQueue" if tagging == Tagging::OnCreateCounts => &[(TAGGING, 1.0)],
        "ListQueueTags" => &[(TAGGING, 1.0)],
        "PutItem" => &[(DDB_WRITES, 1.0)],
        "GetItem" => &[(DDB_READS, 1.0)],
        "Scan" => &[(DDB_READS, SCAN_PAGE_UNITS)],
        _ => &[],
    }
}

/// When a task's record first reached a state (virtual time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks {
    /// First written READY.
    pub ready: Option<Instant>,
    /// First written DRAINING or GONE (unsubscribed).
    pub drained: Option<Instant>,
    /// First written GONE.
    pub gone: Option<Instant>,
}

/// Calls and throttles of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCount {
    /// Attempts that reached the service (throttled or not).
    pub calls: usize,
    /// Attempts answered Throttled.
    pub throttles: usize,
    /// Calls that failed after the SDK's last attempt.
    pub exhausted: usize,
}

#[derive(Debug)]
struct Shared {
    buckets: HashMap<&'static str, Bucket>,
    ops: BTreeMap<&'static str, OpCount>,
    marks: HashMap<String, Marks>,
    rng: fastrand::Rng,
}

/// The fake behind the fleet's limits. Cheap to clone; clones share buckets and counts.
#[derive(Debug, Clone)]
pub struct Limits {
    inner: Fake,
    tagging: Tagging,
    shared: Arc<Mutex<Shared>>,
}

impl Limits {
    /// Full buckets now; seeded jitter.
    pub fn new(inner: Fake, tagging: Tagging, seed: u64) -> Self {
        let now = Instant::now();
        let buckets = [SUBSCRIBE, UNSUBSCRIBE, LIST_BY_TOPIC, TAGGING, DDB_WRITES, DDB_READS]
            .into_iter()
            .map(|l| (l.name, Bucket::new(l.rate, l.rate, now)))
            .collect();
        let shared = Shared {
            buckets,
            ops: BTreeMap::new(),
            marks: HashMap::new(),
            rng: fastrand::Rng::with_seed(seed),
        };
        Self {
            inner,
            tagging,
            shared: Arc::new(Mutex::new(shared)),
        }
    }

    /// Calls and throttles per operation so far.
    pub fn ops(&self) -> BTreeMap<&'static str, OpCount> {
        self.shared.lock().unwrap().ops.clone()
    }

    /// When each task's record reached READY, DRAINING and GONE.
    pub fn marks(&self) -> HashMap<String, Marks> {
        self.shared.lock().unwrap().marks.clone()
    }

    /// Whether every one of these tasks' records was written READY.
    pub fn all_ready(&self, task_ids: &[String]) -> bool {
        let s = self.shared.lock().unwrap();
        task_ids
            .iter()
            .all(|id| s.marks.get(id).is_some_and(|m| m.ready.is_some()))
    }

    /// Whether every one of these tasks' records was written GONE.
    pub fn all_gone(&self, task_ids: &[String]) -> bool {
        let s = self.shared.lock().unwrap();
        task_ids
            .iter()
            .all(|id| s.marks.get(id).is_some_and(|m| m.gone.is_some()))
    }

    /// Waits out the latency and asks every bucket `op` draws from; retries as the SDK's standard mode
    /// does (3 attempts, full-jitter backoff, base 1 s, cap 20 s).
    async fn admit(&self, op: &'static str, times: usize) -> Result<(), PortError> {
        for _ in 0..times {
            self.admit_once(op).await?;
        }
        Ok(())
    }

    async fn admit_once(&self, op: &'static str) -> Result<(), PortError> {
        const ATTEMPTS: i32 = 3;
        for attempt in 0..ATTEMPTS {
            tokio::time::sleep(CALL_LATENCY).await;
            let backoff = {
                let mut s = self.shared.lock().unwrap();
                let now = Instant::now();
                let Shared { buckets, ops, rng, .. } = &mut *s;
                let count = ops.entry(op).or_default();
                count.calls += 1;
                let ok = draws(op, self.tagging)
                    .iter()
                    .all(|(l, units)| buckets.get_mut(l.name).is_none_or(|b| b.take_units(*units, now)));
                if ok {
                    return Ok(());
                }
                count.throttles += 1;
                if attempt + 1 == ATTEMPTS {
                    count.exhausted += 1;
                }
                Duration::from_secs_f64(rng.f64() * 20f64.min(2f64.powi(attempt)))
            };
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(backoff).await;
            }
        }
        Err(PortError::new(ErrorKind::Throttled, op, "Rate exceeded"))
    }

    /// Notes the first time a task's record is written in a state the report times.
    fn mark(&self, record: &Record) {
        let now = Instant::now();
        let mut s = self.shared.lock().unwrap();
        let m = s.marks.entry(record.task_id.clone()).or_default();
        let slot = match record.state {
            State::Ready => &mut m.ready,
            State::Draining => &mut m.drained,
            State::Gone => {
                m.drained.get_or_insert(now);
                &mut m.gone
            }
            State::Provisioning => return,
        };
        slot.get_or_insert(now);
    }
}

impl Wrap for Limits {
    type Inner = Fake;

    fn inner(&self) -> &Fake {
        &self.inner
    }

    async fn around<T: Send>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> Result<T, PortError> {
        self.admit(op, 1).await?;
        call.await
    }
}

tasksub_functions::wrap_ports!([] Limits: Queues, Subscriptions);

impl Records for Limits {
    async fn get(&self, task_id: &str) -> Result<Option<Record>, PortError> {
        self.admit("GetItem", 1).await?;
        self.inner.get(task_id).await
    }

    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, PortError> {
        self.admit("PutItem", 1).await?;
        let written = self.inner.put(record, expect).await?;
        if matches!(written, Written::Applied) {
            self.mark(record);
        }
        Ok(written)
    }

    /// The fake answers a Scan in one call; AWS pages it by 1 MB, each page its own request and units.
    async fn list(&self) -> Result<Scanned, PortError> {
        let scanned = self.inner.list().await?;
        let pages = (scanned.records.len() * RECORD_BYTES).div_ceil(1 << 20).max(1);
        self.admit("Scan", pages).await?;
        Ok(scanned)
    }

    async fn positions(&self) -> Result<tasksub_core::listing::Positions, PortError> {
        self.admit("GetItem", 1).await?;
        self.inner.positions().await
    }

    async fn save_positions(&self, positions: &tasksub_core::listing::Positions) -> Result<bool, PortError> {
        self.admit("PutItem", 1).await?;
        self.inner.save_positions(positions).await
    }
}
