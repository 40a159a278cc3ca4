//! AWS's account quotas on the fake, in virtual time, and a Lambda-shaped driver: how a burst of task
//! starts and stops behaves when SNS throttles, for each way of absorbing it (the SDK's retries, a
//! reserved concurrency, an SQS buffer in front of the function).
//!
//! moto serves ~130 requests/s here, below the quotas themselves, so a quota can only bite on moto when
//! scaled down; at fleet scale the real handler and executor run on the in-memory fake under tokio's
//! paused clock, with every call taking [`CALL_LATENCY`] and drawing from a per-operation token bucket.
//!
//! Quotas (per account and region; AWS General Reference, "Amazon SNS endpoints and quotas", API
//! throttling table): `Subscribe` 100 TPS, `Unsubscribe` 100 TPS, `ListSubscriptionsByTopic` 30 TPS.
//! SQS `CreateQueue`/`DeleteQueue` and DynamoDB on-demand writes have no quota a burst of 1,000 tasks
//! reaches and are not limited here.
//!
//! Lambda's asynchronous invocation (AWS Lambda Developer Guide, "Error handling and automatic retries in
//! Lambda"): a failed event is retried twice, about 1 minute and then 2 minutes later, then goes to the
//! on-failure destination. An SQS event source mapping instead returns a failed message to the queue after
//! its visibility timeout, until maxReceiveCount sends it to the queue's DLQ.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasksub_core::outcome::ErrorKind;
use tasksub_functions::fake::Fake;
use tasksub_functions::ports::PortError;
use tasksub_functions::wrap::Wrap;
use tokio::time::Instant;

/// What one AWS call takes (a round trip inside a region).
pub const CALL_LATENCY: Duration = Duration::from_millis(20);

/// The published per-account quotas the burst meets (requests per second; burst = one second's worth).
pub const SNS_QUOTAS: &[(&str, f64)] = &[
    ("Subscribe", 100.0),
    ("Unsubscribe", 100.0),
    ("ListSubscriptionsByTopic", 30.0),
];

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if one is there.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How the SDK retries a throttled call inside one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkRetry {
    /// No retry: a throttle fails the invocation.
    Off,
    /// The SDK's standard mode: 3 attempts, exponential backoff with full jitter (base 1 s, cap 20 s).
    Standard,
}

#[derive(Debug)]
struct Shared {
    buckets: HashMap<&'static str, Bucket>,
    throttles: usize,
    calls: usize,
    rng: fastrand::Rng,
}

/// The fake behind AWS's quotas, a latency per call and the SDK's retries.
#[derive(Debug, Clone)]
pub struct Quota {
    inner: Fake,
    shared: Arc<Mutex<Shared>>,
    retry: SdkRetry,
}

impl Quota {
    /// The fake with [`SNS_QUOTAS`], seeded jitter.
    pub fn new(inner: Fake, retry: SdkRetry, seed: u64) -> Self {
        let now = Instant::now();
        let buckets = SNS_QUOTAS
            .iter()
            .map(|(op, rate)| (*op, Bucket::new(*rate, *rate, now)))
            .collect();
        Self {
            inner,
            shared: Arc::new(Mutex::new(Shared {
                buckets,
                throttles: 0,
                calls: 0,
                rng: fastrand::Rng::with_seed(seed),
            })),
            retry,
        }
    }

    /// Throttled answers so far.
    pub fn throttles(&self) -> usize {
        self.shared.lock().unwrap().throttles
    }

    /// Calls that reached the service (throttled or not).
    pub fn calls(&self) -> usize {
        self.shared.lock().unwrap().calls
    }

    /// Waits out the call's latency, then asks the bucket; retries as the SDK would.
    async fn admit(&self, op: &'static str) -> Result<(), PortError> {
        let attempts = match self.retry {
            SdkRetry::Off => 1,
            SdkRetry::Standard => 3,
        };
        for attempt in 0..attempts {
            tokio::time::sleep(CALL_LATENCY).await;
            let backoff = {
                let mut s = self.shared.lock().unwrap();
                s.calls += 1;
                let now = Instant::now();
                let ok = s.buckets.get_mut(op).is_none_or(|b| b.take(now));
                if ok {
                    return Ok(());
                }
                s.throttles += 1;
                let cap = 20f64.min(2f64.powi(attempt));
                Duration::from_secs_f64(s.rng.f64() * cap)
            };
            if attempt + 1 < attempts {
                tokio::time::sleep(backoff).await;
            }
        }
        Err(PortError::new(ErrorKind::Throttled, op, "Rate exceeded"))
    }
}

impl Wrap for Quota {
    type Inner = Fake;

    fn inner(&self) -> &Fake {
        &self.inner
    }

    async fn around<T: Send>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> Result<T, PortError> {
        self.admit(op).await?;
        call.await
    }
}

tasksub_functions::wrap_ports!([] Quota: Records, Queues, Subscriptions);

/// How events reach the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// EventBridge invokes the function asynchronously, at most `concurrency` at once (a reserved
    /// concurrency; `usize::MAX` for none). A failure is retried after 1 and 2 minutes, then dead-lettered.
    Async {
        /// Most concurrent invocations.
        concurrency: usize,
    },
    /// EventBridge sends events to an SQS queue, which an event source mapping drains with at most
    /// `concurrency` invocations; a failure comes back after the visibility timeout (30 s), up to 10
    /// receives.
    Buffered {
        /// The mapping's maximum concurrency.
        concurrency: usize,
    },
}

impl Delivery {
    fn concurrency(self) -> usize {
        match self {
            Self::Async { concurrency } | Self::Buffered { concurrency } => concurrency,
        }
    }
    /// The delay before delivery `n` (1-based) of a failed event, or `None` when it is dead-lettered.
    pub fn retry_delay(self, failed_deliveries: usize) -> Option<Duration> {
        match self {
            Self::Async { .. } => match failed_deliveries {
                1 => Some(Duration::from_secs(60)),
                2 => Some(Duration::from_secs(120)),
                _ => None,
            },
            Self::Buffered { .. } => (failed_deliveries < 10).then_some(Duration::from_secs(30)),
        }
    }
}

/// What one phase (all starts, or all stops) of a burst came to.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// Seconds from each event's arrival to its successful handling, sorted.
    pub latencies: Vec<f64>,
    /// Events that ended in the on-failure destination (or the buffer's DLQ).
    pub dead_letters: usize,
    /// Invocations in all (first deliveries and retries).
    pub invocations: usize,
}

impl Phase {
    /// The `p`-th percentile of the latencies (0..=100), in seconds.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[i]
    }
}

/// Delivers `events` (all arriving within `spread`) through `handle`, as `delivery` says. `handle`
/// returns `Ok` when the event is done and `Err(retryable)` otherwise. Runs in tokio's (paused) time.
pub async fn drive<F, Fut>(
    events: Vec<serde_json::Value>,
    spread: Duration,
    delivery: Delivery,
    seed: u64,
    handle: F,
) -> Phase
where
    F: Fn(serde_json::Value) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), bool>> + Send,
{
    let mut rng = fastrand::Rng::with_seed(seed);
    let limit = Arc::new(tokio::sync::Semaphore::new(delivery.concurrency().min(100_000)));
    let phase = Arc::new(Mutex::new(Phase::default()));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for event in events {
        let arrival = spread.mul_f64(rng.f64());
        let (limit, phase, handle) = (Arc::clone(&limit), Arc::clone(&phase), handle.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(start + arrival).await;
            let arrived = Instant::now();
            let mut failed = 0;
            loop {
                let outcome = {
                    let _slot = limit.acquire().await.expect("semaphore");
                    phase.lock().unwrap().invocations += 1;
                    handle(event.clone()).await
                };
                match outcome {
                    Ok(()) => {
                        phase.lock().unwrap().latencies.push(arrived.elapsed().as_secs_f64());
                        return;
                    }
                    Err(false) => break,
                    Err(true) => {
                        failed += 1;
                        match delivery.retry_delay(failed) {
                            Some(d) => tokio::time::sleep(d).await,
                            None => break,
                        }
                    }
                }
            }
            phase.lock().unwrap().dead_letters += 1;
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut p = std::mem::take(&mut *phase.lock().unwrap());
    p.latencies.sort_by(f64::total_cmp);
    p
}
