//! The four consumers on an in-memory SQS ([`MemorySqs`]) with a fixed latency per call: where the
//! emulator does not bind. Each cell runs for a fixed window after a warm-up on a queue kept deep.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tasksub_bench::sys::process_cpu;
use tasksub_client::testing::{run_in_memory, MemorySqs, SqsCalls};
use tasksub_client::{CancellationToken, Message};

use crate::variants::{relay_handler, App, Variant, Work};

/// Messages kept visible in the queue, so it is always deep.
const DEPTH: usize = 10_000;
/// A typical broadcast message.
const BODY: &str = r#"{"kind":"config-changed","key":"prices/eu-west-1","version":12345,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

/// What one cell measured over its window.
#[derive(Debug, Clone, Serialize)]
pub struct MemRun {
    pub variant: Variant,
    pub handlers: usize,
    pub added_ms: u64,
    pub rep: usize,
    pub window_s: f64,
    pub handled: u64,
    pub msgs_per_s: f64,
    /// Mean time of the handler's work, ms.
    pub work_ms: f64,
    pub receives: u64,
    pub empty_receives: u64,
    pub deletes: u64,
    pub visibility_changes: u64,
    pub peak_receives_in_flight: u64,
    /// CPU of the whole bench process (consumer, in-memory SQS, app) over the window, in cores.
    pub cpu_cores: f64,
}

impl MemRun {
    pub fn calls_per_msg(&self) -> f64 {
        (self.receives + self.deletes + self.visibility_changes) as f64 / self.handled.max(1) as f64
    }
}

/// Keeps `q` about [`DEPTH`] messages deep until `stop`.
fn feed(q: MemorySqs, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            while q.visible() < DEPTH {
                q.send(BODY);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// Starts a variant consuming `q`; returns what to await after `stop`.
async fn start(
    variant: Variant,
    handlers: usize,
    q: &MemorySqs,
    work: Arc<Work>,
    stop: CancellationToken,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Option<App>)> {
    let q = q.clone();
    Ok(match variant {
        Variant::Naive => {
            let task = tokio::spawn(async move {
                let mut loops = tokio::task::JoinSet::new();
                for _ in 0..handlers {
                    let (q, work) = (q.clone(), work.clone());
                    loops.spawn(async move {
                        loop {
                            for m in q.receive_messages(1, Duration::ZERO, Duration::from_secs(30)).await {
                                work.run().await;
                                q.delete_message(&m.receipt).await;
                            }
                        }
                    });
                }
                stop.cancelled().await;
                loops.abort_all();
                while loops.join_next().await.is_some() {}
            });
            (task, None)
        }
        Variant::Previous | Variant::Client => {
            let builder = variant.builder(handlers);
            let task = tokio::spawn(async move {
                let handler = move |m: Message| {
                    let work = work.clone();
                    async move {
                        std::hint::black_box(m.body().len());
                        work.run().await;
                        Ok::<(), std::io::Error>(())
                    }
                };
                run_in_memory(&builder, &q, handler, stop)
                    .await
                    .expect("valid settings");
            });
            (task, None)
        }
        Variant::Relay => {
            let app = App::serve(work).await?;
            let relay = relay_handler(&app.target(), handlers, stop.clone());
            let builder = variant.builder(handlers);
            let task = tokio::spawn(async move {
                run_in_memory(&builder, &q, relay, stop).await.expect("valid settings");
            });
            (task, Some(app))
        }
    })
}

/// One cell: warm up, then measure over `window`.
pub async fn run(
    variant: Variant,
    handlers: usize,
    added_ms: u64,
    rep: usize,
    work_per_message: Duration,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<MemRun> {
    let q = MemorySqs::new(Duration::from_millis(added_ms));
    let stop = CancellationToken::new();
    let feeder = feed(q.clone(), stop.clone());
    let work = Work::new(work_per_message, u64::MAX);
    let consumer_stop = CancellationToken::new();
    let (consumer, app) = start(variant, handlers, &q, work.clone(), consumer_stop.clone()).await?;
    tokio::time::sleep(warmup).await;
    let (h0, w0, c0, cpu0, t0) = (
        work.snapshot().0,
        work.snapshot().1,
        q.calls(),
        process_cpu(),
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (h1, w1, c1, cpu1, elapsed) = (
        work.snapshot().0,
        work.snapshot().1,
        q.calls(),
        process_cpu(),
        t0.elapsed(),
    );
    consumer_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), consumer).await;
    stop.cancel();
    let _ = feeder.await;
    drop(app);
    let handled = h1 - h0;
    let d = |f: fn(&SqsCalls) -> u64| f(&c1) - f(&c0);
    Ok(MemRun {
        variant,
        handlers,
        added_ms,
        rep,
        window_s: elapsed.as_secs_f64(),
        handled,
        msgs_per_s: handled as f64 / elapsed.as_secs_f64(),
        work_ms: (w1 - w0).as_secs_f64() * 1e3 / handled.max(1) as f64,
        receives: d(|c| c.receives),
        empty_receives: d(|c| c.empty_receives),
        deletes: d(|c| c.deletes),
        visibility_changes: d(|c| c.visibility_changes),
        peak_receives_in_flight: c1.peak_receives_in_flight,
        cpu_cores: (cpu1 - cpu0).as_secs_f64() / elapsed.as_secs_f64(),
    })
}

/// Calls an idle consumer makes per hour: `handlers` handlers on an empty queue for `period`.
pub async fn idle_calls_per_hour(
    variant: Variant,
    handlers: usize,
    added_ms: u64,
    period: Duration,
) -> anyhow::Result<f64> {
    let q = MemorySqs::new(Duration::from_millis(added_ms));
    let stop = CancellationToken::new();
    let work = Work::new(Duration::ZERO, u64::MAX);
    let (consumer, app) = start(variant, handlers, &q, work, stop.clone()).await?;
    tokio::time::sleep(period).await;
    let calls = q.calls().total();
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), consumer).await;
    drop(app);
    Ok(calls as f64 * 3600.0 / period.as_secs_f64())
}
