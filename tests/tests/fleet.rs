//! A fleet under AWS's quotas, in virtual time (`tasksub_tests::fleet`, issue #23): 1,000 tasks scale
//! out within 6 s (the 10,000-task bench's rate), a deployment replaces them all, 50 tasks crash-loop
//! every 30 s throughout and the sweeper runs every 5 minutes, through the real handler, executor and
//! sweeper on the fake behind a token bucket per quota, delivered through the two SQS buffers with
//! `MaximumConcurrency` 5 and batches of 10. Both models of the tagging quota. `TASKSUB_FLEET_TASKS` sets
//! N (default 1,000); the 10,000 and 100,000 runs are a benchmark: `scripts/bench fleet` (BENCHMARKS.md §8).
//!
//! Invariants: no event dead-lettered; after the final sweep no queue, subscription or live record of a
//! stopped task, and every live task READY; every stopped task unsubscribed by a call (not only by the
//! sweeper); no latency beats its quota floor (the model cannot let more through than the quota); the
//! p99 to READY within the goal (1.2× the floor) where the quota binds, and within the documented bound
//! where the deployed `MaximumConcurrency` binds first.

use std::time::Duration;

use tasksub_tests::fleet::{run, Config, Fleet, Leftovers, Tagging};

/// N tasks launching at the 10,000-task bench's rate (10,000 within 60 s): N ÷ 10,000 × 60 s.
fn config(tagging: Tagging) -> Config {
    let tasks = std::env::var("TASKSUB_FLEET_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut c = Config::deployed(tasks, tagging);
    c.launch_window = Duration::from_secs_f64(60.0 * tasks as f64 / 10_000.0);
    if let Some(n) = std::env::var("TASKSUB_FLEET_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.concurrency = n;
    }
    c
}

/// The goal for the p99 to READY of each phase against its quota floor, met where the quota binds
/// (the tagging quota, when tag-on-create counts against it: 30 starts/s).
const GOAL: f64 = 1.2;
/// The documented bound where the deployed event function binds instead (BENCHMARKS.md §8): with
/// SNS's 100 Subscribe/s, `MaximumConcurrency` 5 handles ECS's three start events per task at ~50–80
/// starts/s, so the p99 is ~2.2× its floor here (2.8–2.9× at 10,000 tasks; 1.02× at MaximumConcurrency 10).
const DEPLOYED_BOUND: f64 = 3.0;

fn check(f: &Fleet, ready_bound: f64) {
    assert_eq!(f.dead_letters(), 0, "no event in a buffer's DLQ");
    assert_eq!(f.leftovers, Leftovers::default(), "nothing left after the final sweep");
    assert!(f.sweeps.iter().all(|s| s.completed), "every sweep ran to its end");
    for (name, l) in [("scale-out", &f.scale_out), ("deployment", &f.deploy)] {
        assert_eq!(l.missing, 0, "{name}: every task READY");
        assert_eq!(l.measured.len(), f.config.tasks, "{name}: every task timed");
        let (p99, floor) = (l.p(99.0), l.floor_p(99.0));
        assert!(
            l.p(100.0) >= l.floor_p(100.0) * 0.99,
            "{name}: nothing beats the quota ({} s < {} s)",
            l.p(100.0),
            l.floor_p(100.0)
        );
        assert!(
            p99 <= floor * ready_bound,
            "{name}: p99 to READY {p99:.1} s, floor {floor:.1} s"
        );
    }
    assert_eq!(
        f.gone.missing + f.unsubscribed.missing + f.crash_gone.missing,
        0,
        "every stopped task GONE"
    );
    let stopped = f.launched - f.config.tasks;
    let unsubscribes = f.ops.get("Unsubscribe").map_or(0, |o| o.calls - o.throttles);
    assert!(
        unsubscribes >= stopped,
        "every stopped task unsubscribed: {unsubscribes} Unsubscribe calls went through for {stopped} stopped tasks"
    );
}

fn summary(f: &Fleet) -> String {
    format!(
        "{:?}: READY p99 {:.1}/{:.1} s (floor {:.1}/{:.1}), unsubscribed p99 {:.1} (floor {:.1}), \
         GONE p99 {:.1} (floor {:.1}), crash GONE p99 {:.1}, throttles {}, dead {}, calls/task {:.2}, \
         sweeps {}, left {:?}, {:.0} s virtual",
        f.config.tagging,
        f.scale_out.p(99.0),
        f.deploy.p(99.0),
        f.scale_out.floor_p(99.0),
        f.deploy.floor_p(99.0),
        f.unsubscribed.p(99.0),
        f.unsubscribed.floor_p(99.0),
        f.gone.p(99.0),
        f.gone.floor_p(99.0),
        f.crash_gone.p(99.0),
        f.throttles(),
        f.dead_letters(),
        f.calls_per_task(),
        f.sweeps.len(),
        f.leftovers,
        f.virtual_s
    )
}

#[tokio::test(start_paused = true)]
async fn a_fleet_scales_out_is_replaced_and_leaves_nothing_tag_on_create_free() {
    let f = run(config(Tagging::OnCreateFree)).await;
    eprintln!("{}", summary(&f));
    check(&f, DEPLOYED_BOUND);
}

#[tokio::test(start_paused = true)]
async fn a_fleet_scales_out_is_replaced_and_leaves_nothing_tag_on_create_counts() {
    let f = run(config(Tagging::OnCreateCounts)).await;
    eprintln!("{}", summary(&f));
    check(&f, GOAL);
}
