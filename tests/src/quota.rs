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
//! on-failure destination. An SQS event source mapping (what the templates deploy: "Using Lambda with
//! Amazon SQS", "Configuring scaling behavior for SQS event source mappings") instead invokes the function
//! with batches, at most `MaximumConcurrency` at once, and returns a failed record to the queue after its
//! visibility timeout, until maxReceiveCount sends it to the queue's DLQ.

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
        self.take_units(1.0, now)
    }

    /// Takes `units` tokens if that many are there (a DynamoDB request of several capacity units).
    pub fn take_units(&mut self, units: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= units {
            self.tokens -= units;
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
    /// EventBridge sends events to an SQS buffer queue; an event source mapping polls it and invokes the
    /// function with batches of up to `batch_size` visible messages (batching window 0: what is there),
    /// at most `concurrency` invocations at once (`ScalingConfig.MaximumConcurrency`). The function
    /// handles a batch's records one after the other and reports the failed ones
    /// (`ReportBatchItemFailures`): each comes back after the visibility timeout ([`BUFFER_VISIBILITY`]),
    /// and after [`BUFFER_MAX_RECEIVES`] receives the queue's redrive dead-letters it.
    Buffered {
        /// The mapping's maximum concurrency.
        concurrency: usize,
        /// Records per batch.
        batch_size: usize,
    },
}

/// The buffer queues' visibility timeout: six times the event functions' 30 s timeout (AWS Lambda
/// Developer Guide, "Using Lambda with Amazon SQS": at least six times the function's timeout).
pub const BUFFER_VISIBILITY: Duration = Duration::from_secs(180);
/// Receives of a buffered event before the buffer's redrive moves it to the DLQ (the templates' value).
pub const BUFFER_MAX_RECEIVES: usize = 10;
/// How often an idle poller of the model looks at the buffer again (SQS long polling answers as soon as a
/// message arrives; 10 ms is the model's resolution).
const POLL: Duration = Duration::from_millis(10);

impl Delivery {
    /// The delay before delivery `n` (1-based) of a failed event, or `None` when it is dead-lettered.
    pub fn retry_delay(self, failed_deliveries: usize) -> Option<Duration> {
        match self {
            Self::Async { .. } => match failed_deliveries {
                1 => Some(Duration::from_secs(60)),
                2 => Some(Duration::from_secs(120)),
                _ => None,
            },
            Self::Buffered { .. } => (failed_deliveries < BUFFER_MAX_RECEIVES).then_some(BUFFER_VISIBILITY),
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
    /// Invocations in all (first deliveries and retries; a batch is one).
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
    let phase = match delivery {
        Delivery::Async { concurrency } => drive_async(events, spread, concurrency, seed, handle).await,
        Delivery::Buffered {
            concurrency,
            batch_size,
        } => drive_buffered(events, spread, concurrency, batch_size, seed, handle).await,
    };
    let mut p = phase;
    p.latencies.sort_by(f64::total_cmp);
    p
}

/// Lambda's asynchronous invocation: each event its own invocation, behind a reserved concurrency.
async fn drive_async<F, Fut>(
    events: Vec<serde_json::Value>,
    spread: Duration,
    concurrency: usize,
    seed: u64,
    handle: F,
) -> Phase
where
    F: Fn(serde_json::Value) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), bool>> + Send,
{
    let delivery = Delivery::Async { concurrency };
    let mut rng = fastrand::Rng::with_seed(seed);
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.min(100_000)));
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
    let p = std::mem::take(&mut *phase.lock().unwrap());
    p
}

/// A message in the buffer queue.
struct Message {
    event: serde_json::Value,
    arrived: Instant,
    visible_at: Instant,
    receives: usize,
}

/// The buffer queue and what became of its messages.
struct Buffer {
    messages: Vec<Message>,
    settled: usize,
    phase: Phase,
}

impl Buffer {
    /// Takes up to `n` visible messages (oldest first), counting a receive on each.
    fn receive(&mut self, n: usize, now: Instant) -> Vec<Message> {
        let mut taken = Vec::new();
        let mut i = 0;
        while i < self.messages.len() && taken.len() < n {
            if self.messages[i].visible_at <= now {
                let mut m = self.messages.remove(i);
                m.receives += 1;
                taken.push(m);
            } else {
                i += 1;
            }
        }
        taken
    }
}

/// SQS buffer + event source mapping: `concurrency` pollers, each invoking the function with a batch.
async fn drive_buffered<F, Fut>(
    events: Vec<serde_json::Value>,
    spread: Duration,
    concurrency: usize,
    batch_size: usize,
    seed: u64,
    handle: F,
) -> Phase
where
    F: Fn(serde_json::Value) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), bool>> + Send,
{
    let total = events.len();
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Instant::now();
    let buffer = Arc::new(Mutex::new(Buffer {
        messages: Vec::new(),
        settled: 0,
        phase: Phase::default(),
    }));
    let mut tasks = tokio::task::JoinSet::new();
    for event in events {
        let at = start + spread.mul_f64(rng.f64());
        let buffer = Arc::clone(&buffer);
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            buffer.lock().unwrap().messages.push(Message {
                event,
                arrived: at,
                visible_at: at,
                receives: 0,
            });
        });
    }
    for _ in 0..concurrency {
        let (buffer, handle) = (Arc::clone(&buffer), handle.clone());
        tasks.spawn(async move {
            loop {
                let batch = {
                    let mut b = buffer.lock().unwrap();
                    if b.settled == total {
                        return;
                    }
                    b.receive(batch_size, Instant::now())
                };
                if batch.is_empty() {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                buffer.lock().unwrap().phase.invocations += 1;
                for mut m in batch {
                    let outcome = handle(m.event.clone()).await;
                    let mut b = buffer.lock().unwrap();
                    match outcome {
                        Ok(()) => {
                            b.phase.latencies.push(m.arrived.elapsed().as_secs_f64());
                            b.settled += 1;
                        }
                        Err(_) if m.receives >= BUFFER_MAX_RECEIVES => {
                            b.phase.dead_letters += 1;
                            b.settled += 1;
                        }
                        // Permanent failures too come back: only the redrive moves a message to the DLQ.
                        Err(_) => {
                            m.visible_at = Instant::now() + BUFFER_VISIBILITY;
                            b.messages.push(m);
                        }
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let p = std::mem::take(&mut buffer.lock().unwrap().phase);
    p
}

/// What a burst of starts then stops came to.
#[derive(Debug, Clone)]
pub struct Burst {
    /// The start events.
    pub starts: Phase,
    /// The stop events.
    pub stops: Phase,
    /// Throttled answers in all.
    pub throttles: usize,
    /// Queues and subscriptions left after the stops.
    pub leaked: (usize, usize),
    /// Tasks not READY after the starts.
    pub not_ready: usize,
}

/// `tasks` tasks start within one second, then stop within one second: each event through a cold
/// `Controller` (the real handler and executor) on the fake behind [`SNS_QUOTAS`], delivered as `delivery`
/// says, in tokio's paused time. Seeded: the same arguments give the same numbers.
pub async fn burst(tasks: usize, retry: SdkRetry, delivery: Delivery) -> Burst {
    use chrono::TimeZone;
    use tasksub_core::decide::Role;
    use tasksub_core::record::State;
    use tasksub_core::settings::Settings;
    use tasksub_functions::Controller;

    use crate::events::{Task, ACCOUNT, REGION};
    use crate::world::{settings_map, OUR_CLUSTER};

    let now = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let fake = Fake::new();
    fake.set_now(now);
    let quota = Quota::new(fake.clone(), retry, 7);
    let all: Vec<Task> = (0..tasks).map(|_| Task::new(OUR_CLUSTER)).collect();
    let map = settings_map(&format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"), "records", "tasksub-");
    let settings = Settings::from_map(&map).expect("settings");
    let handler = {
        let quota = quota.clone();
        move |event: serde_json::Value| {
            let c = Controller::with_ports(settings.clone(), quota.clone(), Role::Any);
            async move {
                let bytes = serde_json::to_vec(&event).expect("event");
                c.handle_slice_at(&bytes, now)
                    .await
                    .map(drop)
                    .map_err(|e| e.is_retryable())
            }
        }
    };
    let second = Duration::from_secs(1);
    let starts = all
        .iter()
        .map(|t| t.event_at("PROVISIONING", "RUNNING", 1, now))
        .collect();
    let starts = drive(starts, second, delivery, 1, handler.clone()).await;
    let not_ready = all
        .iter()
        .filter(|t| fake.record(&t.id).map(|r| r.state) != Some(State::Ready))
        .count();
    let stops = all.iter().map(|t| t.event_at("STOPPED", "STOPPED", 8, now)).collect();
    let stops = drive(stops, second, delivery, 2, handler).await;
    Burst {
        starts,
        stops,
        throttles: quota.throttles(),
        leaked: (fake.queues().len(), fake.subscriptions().len()),
        not_ready,
    }
}
