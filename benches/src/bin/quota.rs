//! The quota burst (BENCHMARKS.md §2b): N tasks start within one second, then stop, under SNS's 100 TPS
//! Subscribe/Unsubscribe account quota, through the real handler and executor on the fake in tokio's
//! paused time (`tasksub_tests::quota`). Every way of absorbing the burst runs in the same process, with
//! the same seeds; ratios are against the floor (N ÷ 100 TPS) and against the baseline, the reserved
//! concurrency of 5 the templates deployed before (which Lambda refuses in low-quota accounts).
//!
//! ```text
//! scripts/bench quota            # or: cargo run --release -p tasksub-bench --bin bench-quota -- --tasks 1000
//! ```

use clap::Parser;
use serde_json::json;
use tasksub_bench::report;
use tasksub_tests::quota::{burst, Delivery, SdkRetry, BUFFER_MAX_RECEIVES, BUFFER_VISIBILITY};

#[derive(Parser)]
struct Args {
    /// Tasks in the burst.
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
}

const BASELINE: &str = "async, reserved concurrency 5 (before)";
const DEPLOYED: &str = "SQS buffer, max concurrency 5, batch 10 (deployed)";

fn strategies() -> Vec<(&'static str, Delivery)> {
    let unbounded = usize::MAX;
    let buffered = |concurrency, batch_size| Delivery::Buffered {
        concurrency,
        batch_size,
    };
    vec![
        (
            "async, no reserved concurrency",
            Delivery::Async { concurrency: unbounded },
        ),
        (BASELINE, Delivery::Async { concurrency: 5 }),
        (DEPLOYED, buffered(5, 10)),
        ("SQS buffer, max concurrency 2 (the minimum), batch 10", buffered(2, 10)),
        ("SQS buffer, max concurrency 5, batch 1", buffered(5, 1)),
        ("SQS buffer, max concurrency 6, batch 10", buffered(6, 10)),
        ("SQS buffer, max concurrency 10, batch 10", buffered(10, 10)),
    ]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let floor = args.tasks as f64 / 100.0;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut baseline_p99 = f64::NAN;
    for (name, delivery) in strategies() {
        eprintln!("{name}");
        let r = runtime.block_on(burst(args.tasks, SdkRetry::Standard, delivery));
        let p99 = r.starts.percentile(99.0);
        if name == BASELINE {
            baseline_p99 = p99;
        }
        results.push((name, r));
    }
    for (name, r) in &results {
        let p99 = r.starts.percentile(99.0);
        let bold = |s: String| if *name == DEPLOYED { format!("**{s}**") } else { s };
        rows.push(vec![
            bold((*name).to_owned()),
            format!("{:.1} s", r.starts.percentile(50.0)),
            bold(format!("{p99:.1} s")),
            format!("{:.1} s", r.starts.percentile(100.0)),
            bold(report::ratio(p99 / floor)),
            report::ratio(p99 / baseline_p99),
            format!("{:.1} s", r.stops.percentile(99.0)),
            bold((r.starts.dead_letters + r.stops.dead_letters).to_string()),
            r.throttles.to_string(),
            (r.starts.invocations + r.stops.invocations).to_string(),
            format!("{} / {:?}", r.not_ready, r.leaked),
        ]);
    }
    let header = [
        "strategy",
        "start p50",
        "start p99",
        "start max",
        "p99 / floor",
        "p99 / baseline",
        "stop p99",
        "dead letters",
        "throttles",
        "invocations",
        "not READY / left (queues, subs)",
    ];
    let markdown = format!(
        "{} tasks start within 1 s, then stop within 1 s; Subscribe/Unsubscribe 100 TPS (burst 100), every call \
         20 ms, SDK standard retry (3 attempts, full-jitter backoff, base 1 s); buffer: visibility {} s, {} \
         receives, then the DLQ. Floor: {floor:.1} s. Baseline: {BASELINE}. One run, virtual time, seeded.\n\n{}",
        args.tasks,
        BUFFER_VISIBILITY.as_secs(),
        BUFFER_MAX_RECEIVES,
        report::table(&header, &rows)
    );
    println!("{markdown}");
    let json = json!({
        "tasks": args.tasks,
        "floor_s": floor,
        "rows": results.iter().map(|(name, r)| json!({
            "strategy": name,
            "start_p50_s": r.starts.percentile(50.0),
            "start_p99_s": r.starts.percentile(99.0),
            "start_max_s": r.starts.percentile(100.0),
            "stop_p99_s": r.stops.percentile(99.0),
            "dead_letters": r.starts.dead_letters + r.stops.dead_letters,
            "throttles": r.throttles,
            "invocations": r.starts.invocations + r.stops.invocations,
            "not_ready": r.not_ready,
            "leaked": [r.leaked.0, r.leaked.1],
        })).collect::<Vec<_>>(),
    });
    report::publish("quota", &markdown, &json)
}
