//! Client throughput: tasksub-client (receives in flight adapted to demand), the same client with its
//! previous policy (one receive at a time, no more messages than free handlers), tasksub-relay and a
//! naive receive-one/delete-one loop, at 1, 4, 16 and 64 handlers doing the same work per message, with
//! 0, 10 and 30 ms per SQS call.
//!
//! - `--sqs memory` (default): an in-memory SQS (`tasksub_client::testing::MemorySqs`) that takes the
//!   added latency on every call and nothing else, so the emulator never binds; each cell is a fixed
//!   window after a warm-up on a queue kept deep. The relay is its handler in this process, POSTing to an
//!   HTTP app on loopback that does the work. Also measures each consumer's calls per idle hour.
//! - `--sqs moto`: the timed moto adds the latency to every consumer request; N messages per run through
//!   a shallow backlog; the relay is the release binary.
//!
//! Interleaved: every repetition runs every level (rotating which goes first) and, at each level and
//! handler count, every variant (rotating which goes first). Bounds printed with the results, per row.
//!
//! Run: `scripts/bench client` (both), `scripts/bench latency` (moto only).

mod memory;
mod moto;
mod report;
mod variants;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use serde_json::json;

use variants::Variant;

#[derive(Parser, Debug)]
#[command(about = "Client throughput: tasksub-client, its previous policy, tasksub-relay and a naive loop")]
struct Args {
    /// Where the queue lives: `memory` (an in-memory SQS taking the added latency per call) or `moto`.
    #[arg(long, default_value = "memory")]
    sqs: String,
    /// Concurrent handlers.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    handlers: Vec<usize>,
    /// Latency added to every consumer call (ms).
    #[arg(long, value_delimiter = ',', default_value = "0,10,30")]
    added_latency_ms: Vec<u64>,
    /// Variants: naive, previous, client, relay.
    #[arg(long, value_delimiter = ',', default_value = "naive,previous,client,relay")]
    variants: Vec<String>,
    /// The handler's work per message (µs; a sleep).
    #[arg(long, default_value_t = 1000)]
    work_us: u64,
    /// Repetitions per cell.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// memory: measured window per cell (s), after the warm-up.
    #[arg(long, default_value_t = 3.0)]
    window_s: f64,
    /// memory: warm-up per cell (s).
    #[arg(long, default_value_t = 1.0)]
    warmup_s: f64,
    /// memory: idle period per variant for the idle cost (s; 0 skips it).
    #[arg(long, default_value_t = 60)]
    idle_s: u64,
    /// moto: messages per run.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// moto: messages kept in the queue ahead of the consumer (visible + in flight) by the producer.
    #[arg(long, default_value_t = 100)]
    backlog: u64,
    /// moto: the relay binary.
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Do not write results or BENCHMARKS.md.
    #[arg(long)]
    dry_run: bool,
}

/// The order of `items` for the `k`-th group: rotated by `k`.
fn rotated<T: Copy>(items: &[T], k: usize) -> Vec<T> {
    (0..items.len()).map(|i| items[(i + k) % items.len()]).collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let variants: Vec<Variant> = args
        .variants
        .iter()
        .map(|v| Variant::parse(v).ok_or_else(|| anyhow::anyhow!("unknown variant {v:?}")))
        .collect::<Result<_, _>>()?;
    let mut levels = args.added_latency_ms.clone();
    levels.dedup();
    let load_before = tasksub_bench::sys::loadavg();
    let work = Duration::from_micros(args.work_us);
    let mut k = 0usize;
    let (name, doc, json) = match args.sqs.as_str() {
        "memory" => {
            let mut runs = Vec::new();
            for rep in 0..args.reps {
                for added_ms in rotated(&levels, rep) {
                    for &handlers in &args.handlers {
                        for variant in rotated(&variants, k) {
                            k += 1;
                            let r = memory::run(
                                variant,
                                handlers,
                                added_ms,
                                rep,
                                work,
                                Duration::from_secs_f64(args.warmup_s),
                                Duration::from_secs_f64(args.window_s),
                            )
                            .await?;
                            eprintln!(
                                "{} h={handlers} +{added_ms} ms rep {rep}: {:.0} msg/s, {:.3} calls/msg, work {:.2} ms, peak receives {}, CPU {:.2} (load {})",
                                variant.key(), r.msgs_per_s, r.calls_per_msg(), r.work_ms, r.peak_receives_in_flight, r.cpu_cores,
                                tasksub_bench::sys::loadavg()
                            );
                            runs.push(r);
                        }
                    }
                }
            }
            let mut idle = Vec::new();
            if args.idle_s > 0 {
                let (h, l) = (16, levels.iter().copied().max().unwrap_or(0));
                for &variant in &variants {
                    let per_hour = memory::idle_calls_per_hour(variant, h, l, Duration::from_secs(args.idle_s)).await?;
                    eprintln!("{} idle: {per_hour:.0} calls/hour", variant.key());
                    idle.push((variant, h, l, per_hour));
                }
            }
            let doc = report::memory(&args, &levels, &variants, &runs, &idle, &load_before);
            let json = json!({"machine": tasksub_bench::machine(), "work_us": args.work_us, "runs": runs,
                "idle": idle.iter().map(|(v, h, l, c)| json!({"variant": v, "handlers": h, "added_ms": l, "calls_per_hour": c})).collect::<Vec<_>>()});
            ("client-memory", doc, json)
        }
        "moto" => {
            let relay_bin = args
                .relay_bin
                .clone()
                .unwrap_or_else(|| tasksub_bench::repo_root().join("target/release/tasksub-relay"));
            let bench = moto::Bench::start(relay_bin).await?;
            let mut runs = Vec::new();
            for rep in 0..args.reps {
                for added_ms in rotated(&levels, rep) {
                    bench.set_added_latency(added_ms)?;
                    for &handlers in &args.handlers {
                        for variant in rotated(&variants, k) {
                            k += 1;
                            let r = bench
                                .run(
                                    variant,
                                    handlers,
                                    added_ms,
                                    rep,
                                    args.messages as u64,
                                    args.backlog,
                                    work,
                                )
                                .await?;
                            eprintln!(
                                "{} h={handlers} +{added_ms} ms rep {rep}: {:.0} msg/s, {} calls, moto CPU {:.0} ms, left {} (load {})",
                                variant.key(), r.msgs_per_s, r.calls, r.moto_cpu_ms, r.left_in_queue,
                                tasksub_bench::sys::loadavg()
                            );
                            runs.push(r);
                        }
                    }
                }
            }
            let doc = report::moto(&args, &levels, &variants, &runs, &load_before);
            let json = json!({"machine": tasksub_bench::machine(), "work_us": args.work_us, "runs": runs});
            ("client-moto", doc, json)
        }
        other => bail!("--sqs memory or moto, not {other:?}"),
    };
    println!("{doc}");
    if !args.dry_run {
        tasksub_bench::report::publish(name, &doc, &json)?;
    }
    Ok(())
}
