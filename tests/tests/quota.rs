//! A burst under AWS's quotas, in virtual time: 1,000 tasks start within one second, then stop, through
//! the real handler and executor on the fake behind SNS's per-account quotas (see
//! `tasksub_tests::quota`), delivered as the templates deploy it: EventBridge → an SQS buffer queue → an
//! event source mapping with `MaximumConcurrency` 5 and batches of 10. No event may end in the DLQ, every
//! task must be READY after the starts and nothing may be left after the stops; no task can be READY
//! before the quota allows. `TASKSUB_QUOTA_TASKS` sets the burst size (default 1,000). The latencies of
//! this and the other designs are a benchmark: `scripts/bench quota` (BENCHMARKS.md §2b).

use tasksub_tests::quota::{burst, Delivery, SdkRetry};

#[tokio::test(start_paused = true)]
async fn a_burst_of_starts_and_stops_through_the_buffer_under_the_quotas() {
    let tasks: usize = std::env::var("TASKSUB_QUOTA_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let floor = tasks as f64 / 100.0;
    let deployed = Delivery::Buffered {
        concurrency: 5,
        batch_size: 10,
    };
    let r = burst(tasks, SdkRetry::Standard, deployed).await;
    assert_eq!(
        (r.starts.dead_letters, r.stops.dead_letters),
        (0, 0),
        "no event in the buffer's DLQ"
    );
    assert_eq!(
        r.starts.latencies.len() + r.stops.latencies.len(),
        2 * tasks,
        "every event handled"
    );
    assert_eq!(r.not_ready, 0, "every task READY after the starts");
    assert_eq!(r.leaked, (0, 0), "no queue or subscription after the stops");
    assert!(
        r.starts.percentile(100.0) >= floor * 0.9,
        "nothing beats the quota's floor: the model lets no more than 100 Subscribes a second through"
    );
}
