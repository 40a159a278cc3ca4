//! AWS's API quotas on the wire, on moto: the fault proxy answers Subscribe and Unsubscribe over their
//! token bucket with SNS's own throttling error (`tasksub_tests::proxy::quota`), and a Lambda-shaped driver
//! runs the real controller on the real SDK: a concurrency cap (a semaphore: what the buffer queue's event
//! source mapping does with `MaximumConcurrency`, or a reserved concurrency; an event over it waits), two
//! retries after a failed invocation (Lambda's async 1 and 2 minutes, scaled here to 1 and 2 seconds; the
//! buffer would return it after its visibility timeout instead, and no row here has a failure), then the DLQ.
//!
//! moto serves ~125–155 requests a second here, below AWS's quotas, so the quota is scaled down 20× (5
//! Subscribe/Unsubscribe a second) until it, not moto, is the bottleneck. The fleet-scale version (1,000
//! tasks at AWS's own 100 TPS) runs the same code on the fake in virtual time (`tests/tests/quota.rs`).
//!
//! `cargo test -p tasksub-tests --test quota_wire -- --nocapture` prints the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_tests::events::Task;
use tasksub_tests::proxy::quota::Quotas;
use tasksub_tests::proxy::{Handling, Proxied, ProxiedController};
use tasksub_tests::world::World;
use tokio::sync::Semaphore;

const TASKS: usize = 30;
/// AWS's 100 TPS, divided by this.
const SCALE: f64 = 20.0;
/// Lambda's async retry delays (60 s and 120 s), scaled.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// How one event ended under the driver.
struct Ran {
    ok: bool,
    at: Duration,
}

/// One event as Lambda's async invocation runs it: wait for a concurrency slot, handle, and on a failure
/// retry twice after the scaled delays; then give up (the on-failure destination).
async fn invoke(c: &ProxiedController, event: &Value, slots: &Semaphore, t0: Instant) -> Ran {
    // the first attempt, then one retry after each delay
    let waits = std::iter::once(None).chain(RETRY_DELAYS.iter().map(Some));
    for wait in waits {
        if let Some(delay) = wait {
            tokio::time::sleep(*delay).await;
        }
        let _slot = slots.acquire().await.expect("semaphore");
        if c.handle_json(event).await.is_ok() {
            return Ran {
                ok: true,
                at: t0.elapsed(),
            };
        }
    }
    Ran {
        ok: false,
        at: t0.elapsed(),
    }
}

/// Every event at once (all within the same instant), through `slots`; the end of each.
async fn burst(c: &Arc<ProxiedController>, events: Vec<Value>, slots: usize) -> Vec<Ran> {
    let slots = Arc::new(Semaphore::new(slots));
    let t0 = Instant::now();
    let handles: Vec<_> = events
        .into_iter()
        .map(|e| {
            let (c, slots) = (Arc::clone(c), Arc::clone(&slots));
            tokio::spawn(async move { invoke(&c, &e, &slots, t0).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("invocation"));
    }
    out
}

fn quantile(times: &mut [Duration], q: f64) -> Duration {
    times.sort();
    times[((times.len() as f64 - 1.0) * q).round() as usize]
}

struct Row {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    stop_p99: Duration,
    dead: usize,
    throttled: usize,
}

/// TASKS tasks start at once, then stop at once, with at most `slots` invocations in flight.
async fn scenario(name: &'static str, retry: RetryConfig, slots: usize, seed: u64) -> (Row, Proxied, Vec<Task>) {
    let p = Proxied::new(seed, retry, TimeoutConfig::builder().build()).await;
    p.proxy.set_quotas(Quotas::scaled(SCALE));
    let c = Arc::new(p.controller(Role::Any));
    let tasks: Vec<Task> = (0..TASKS).map(|_| p.world.task()).collect();
    let starts = tasks.iter().map(|t| t.event("RUNNING", "RUNNING", 1)).collect();
    let started = burst(&c, starts, slots).await;
    let stops = tasks.iter().map(|t| t.event("STOPPED", "STOPPED", 2)).collect();
    let stopped = burst(&c, stops, slots).await;
    let dead = started.iter().chain(&stopped).filter(|r| !r.ok).count();
    let mut start_times: Vec<Duration> = started.iter().map(|r| r.at).collect();
    let mut stop_times: Vec<Duration> = stopped.iter().map(|r| r.at).collect();
    let throttled = p
        .proxy
        .seen()
        .iter()
        .filter(|s| matches!(s.handling, Handling::Injected(tasksub_tests::proxy::Fault::Throttle)))
        .count();
    let row = Row {
        name,
        p50: quantile(&mut start_times, 0.5),
        p99: quantile(&mut start_times, 0.99),
        stop_p99: quantile(&mut stop_times, 0.99),
        dead,
        throttled,
    };
    (row, p, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_under_the_subscribe_quota_ends_with_nothing_dead_lettered_or_leaked() {
    let floor = Duration::from_secs_f64(TASKS as f64 / (100.0 / SCALE));
    let standard = RetryConfig::standard;
    let (unbounded, _, _) = scenario("SDK standard retry, no reserved concurrency", standard(), TASKS, 1).await;
    let (adaptive, _, _) = scenario(
        "SDK adaptive retry, no reserved concurrency",
        RetryConfig::adaptive(),
        TASKS,
        3,
    )
    .await;
    let (bounded, p, tasks) = scenario(
        "SDK standard retry, at most 2 at once (the buffer's MaximumConcurrency 5 as deployed, scaled)",
        standard(),
        2,
        2,
    )
    .await;
    println!(
        "{TASKS} tasks start at once, then stop, Subscribe/Unsubscribe quota {} TPS; floor {TASKS} / {} = {:.1} s",
        100.0 / SCALE,
        100.0 / SCALE,
        floor.as_secs_f64()
    );
    println!("| strategy | start p50 | start p99 | stop p99 | dead letters | throttled calls |");
    println!("|---|---|---|---|---|---|");
    for r in [&unbounded, &adaptive, &bounded] {
        println!(
            "| {} | {:.1} s | {:.1} s | {:.1} s | {} | {} |",
            r.name,
            r.p50.as_secs_f64(),
            r.p99.as_secs_f64(),
            r.stop_p99.as_secs_f64(),
            r.dead,
            r.throttled
        );
    }
    // The quota is real: the unbounded burst meets it.
    assert!(
        unbounded.throttled > 0,
        "no call was throttled: the quota is not in the way"
    );
    // As deployed: nothing dead-lettered, nothing leaked, every start within a few floors.
    assert_eq!(bounded.dead, 0, "dead letters with the concurrency cap");
    assert!(
        bounded.p99 < floor * 4,
        "start p99 {:?} against a floor of {floor:?}",
        bounded.p99
    );
    for t in &tasks {
        p.assert_gone(t, "after the stop burst").await;
    }
}
