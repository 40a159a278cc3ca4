//! A burst under AWS's quotas, in virtual time: 1,000 tasks start within one second, then stop, through
//! the real handler and executor on the fake behind SNS's per-account quotas (see
//! `tasksub_tests::quota`). Each way of absorbing the throttling is measured in the same run; the one the
//! templates deploy must leave no event in the on-failure destination and nothing behind.
//! `TASKSUB_QUOTA_TASKS` sets the burst size (default 1,000); `--nocapture` prints the table.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use tasksub_core::decide::Role;
use tasksub_core::record::State;
use tasksub_core::settings::Settings;
use tasksub_functions::fake::Fake;
use tasksub_functions::Controller;
use tasksub_tests::events::{Task, ACCOUNT, REGION};
use tasksub_tests::quota::{drive, Delivery, Phase, Quota, SdkRetry};
use tasksub_tests::world::{settings_map, OUR_CLUSTER};

fn settings() -> Settings {
    let m = settings_map(&format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"), "records", "tasksub-");
    Settings::from_map(&m).expect("settings")
}

struct Result {
    starts: Phase,
    stops: Phase,
    throttles: usize,
    leaked: (usize, usize),
    not_ready: usize,
}

async fn burst(tasks: usize, retry: SdkRetry, delivery: Delivery) -> Result {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let fake = Fake::new();
    fake.set_now(now);
    let quota = Quota::new(fake.clone(), retry, 7);
    let all: Vec<Task> = (0..tasks).map(|_| Task::new(OUR_CLUSTER)).collect();
    let handler = {
        let quota = quota.clone();
        move |event: serde_json::Value| {
            let c = Controller::with_ports(settings(), quota.clone(), Role::Any);
            async move {
                c.handle_json_at(&event, now)
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
    Result {
        starts,
        stops,
        throttles: quota.throttles(),
        leaked: (fake.queues().len(), fake.subscriptions().len()),
        not_ready,
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_starts_and_stops_under_the_quotas() {
    let tasks: usize = std::env::var("TASKSUB_QUOTA_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let floor = tasks as f64 / 100.0;
    let unbounded = usize::MAX;
    let strategies = [
        (
            "async, no SDK retry, no reserved concurrency",
            SdkRetry::Off,
            Delivery::Async { concurrency: unbounded },
        ),
        (
            "async, SDK standard retry, no reserved concurrency",
            SdkRetry::Standard,
            Delivery::Async { concurrency: unbounded },
        ),
        (
            "async, SDK standard retry, reserved concurrency 10",
            SdkRetry::Standard,
            Delivery::Async { concurrency: 10 },
        ),
        (
            "async, SDK standard retry, reserved concurrency 5",
            SdkRetry::Standard,
            Delivery::Async { concurrency: 5 },
        ),
        (
            "SQS buffer, SDK standard retry, max concurrency 10",
            SdkRetry::Standard,
            Delivery::Buffered { concurrency: 10 },
        ),
    ];
    println!("{tasks} tasks start within 1 s, then stop; Subscribe/Unsubscribe quota 100 TPS: floor {floor:.1} s");
    println!("| strategy | start p50 | start p99 | start max | stop p99 | dead letters | throttles | invocations |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut chosen = None;
    for (name, retry, delivery) in strategies {
        let r = burst(tasks, retry, delivery).await;
        println!(
            "| {name} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {} | {} | {} |",
            r.starts.percentile(50.0),
            r.starts.percentile(99.0),
            r.starts.percentile(100.0),
            r.stops.percentile(99.0),
            r.starts.dead_letters + r.stops.dead_letters,
            r.throttles,
            r.starts.invocations + r.stops.invocations,
        );
        if name.contains("reserved concurrency 5") {
            chosen = Some(r);
        }
    }
    // What the templates deploy: the SDK's standard retries and a reserved concurrency of 5 (an
    // invocation takes three round trips, ~60 ms here, so 5 at once stay under 100 Subscribes a second).
    let r = chosen.expect("the deployed strategy ran");
    assert_eq!(
        (r.starts.dead_letters, r.stops.dead_letters),
        (0, 0),
        "no event in the on-failure destination"
    );
    assert_eq!(r.not_ready, 0, "every task READY after the starts");
    assert_eq!(r.leaked, (0, 0), "no queue or subscription after the stops");
    assert!(
        r.starts.percentile(100.0) >= floor * 0.9,
        "nothing beats the quota's floor"
    );
    assert!(r.starts.percentile(99.0) <= floor * 1.5, "p99 within 1.5x the floor");
}
