//! The fleet simulation (BENCHMARKS.md §8, issue #23): N tasks scale out, a deployment replaces them,
//! 50 tasks crash-loop and the sweeper runs every 5 minutes, in virtual time, through the real handler,
//! executor and sweeper on the fake behind AWS's quotas (`tasksub_tests::fleet`), for each N and both
//! models of SQS's tagging quota. Ratios are against each latency's quota floor. Also measured: the
//! simulation's own wall time, CPU time and peak RSS.
//!
//! ```text
//! scripts/bench fleet            # both sizes; or, one size:
//! cargo run --release -p tasksub-bench --bin bench-fleet -- --tasks 10000
//! cargo run --release -p tasksub-bench --bin bench-fleet -- --tasks 100000 --alt-concurrency 0 --out fleet-100k
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tasksub_bench::{report, sys};
use tasksub_tests::fleet::{run, Config, Fleet, Tagging};

#[derive(Parser)]
struct Args {
    /// Fleet sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    tasks: Vec<usize>,
    /// Seconds over which N tasks launch (scale-out, and again for the deployment).
    #[arg(long, default_value_t = 60)]
    launch_window_s: u64,
    /// Each mapping's MaximumConcurrency (the templates deploy 5).
    #[arg(long, default_value_t = 5)]
    concurrency: usize,
    /// Also run the smallest N with this MaximumConcurrency (0: no), to show what the deployed cap costs.
    #[arg(long, default_value_t = 10)]
    alt_concurrency: usize,
    /// Which tagging models to run: `a` (tag-on-create counts against SQS's tagging quota), `b` (it does
    /// not), or `both`.
    #[arg(long, default_value = "both", value_parser = ["a", "b", "both"])]
    tagging: String,
    /// The results' name (`benches/results/<out>.{md,json}`, the `<out>` section of BENCHMARKS.md).
    #[arg(long, default_value = "fleet")]
    out: String,
}

/// What running one simulation cost this machine.
struct Cost {
    wall: Duration,
    cpu: Duration,
    peak_rss_mib: f64,
}

fn simulate(config: Config) -> anyhow::Result<(Fleet, Cost)> {
    // Resets the peak RSS (VmHWM) so each run reports its own; harmless where unsupported.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (wall, cpu) = (Instant::now(), sys::process_cpu());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let fleet = runtime.block_on(run(config));
    drop(runtime);
    let peak = sys::status_kib(std::process::id(), "VmHWM").unwrap_or_default();
    let cost = Cost {
        wall: wall.elapsed(),
        cpu: sys::process_cpu() - cpu,
        peak_rss_mib: peak as f64 / 1024.0,
    };
    Ok((fleet, cost))
}

fn tagging(t: Tagging) -> &'static str {
    match t {
        Tagging::OnCreateCounts => "(a) counts",
        Tagging::OnCreateFree => "(b) free",
    }
}

fn s(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 10.0 {
        format!("{v:.0} s")
    } else {
        format!("{v:.2} s")
    }
}

fn latency_rows(runs: &[(Fleet, Cost)]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|(f, _)| {
            let l = &f.leftovers;
            vec![
                f.config.tasks.to_string(),
                f.config.concurrency.to_string(),
                tagging(f.config.tagging).to_owned(),
                format!("{} ({:.0}/s)", f.binding.0, f.binding.1),
                format!("{} / **{}**", s(f.scale_out.p(50.0)), s(f.scale_out.p(99.0))),
                s(f.scale_out.floor_p(99.0)),
                format!("**{}**", report::ratio(f.scale_out.p(99.0) / f.scale_out.floor_p(99.0))),
                format!("{} / **{}**", s(f.deploy.p(50.0)), s(f.deploy.p(99.0))),
                s(f.deploy.floor_p(99.0)),
                format!("**{}**", report::ratio(f.deploy.p(99.0) / f.deploy.floor_p(99.0))),
                format!("{} ({})", s(f.unsubscribed.p(99.0)), s(f.unsubscribed.floor_p(99.0))),
                format!("{} ({})", s(f.gone.p(99.0)), s(f.gone.floor_p(99.0))),
                s(f.crash_gone.p(99.0)),
                format!("**{}**", f.dead_letters()),
                format!(
                    "**{} / {} / {} / {}**",
                    l.queues, l.subscriptions, l.stopped_records, l.live_not_ready
                ),
            ]
        })
        .collect()
}

fn cost_rows(runs: &[(Fleet, Cost)]) -> Vec<Vec<String>> {
    runs.iter()
        .map(|(f, c)| {
            let throttled: Vec<String> = f
                .ops
                .iter()
                .filter(|(_, o)| o.throttles > 0)
                .map(|(op, o)| format!("{op} {} ({} exhausted)", o.throttles, o.exhausted))
                .collect();
            let durations: Vec<f64> = f.sweeps.iter().map(|r| r.duration_s).collect();
            let max_sweep = durations.iter().copied().fold(0.0, f64::max);
            let acted: usize = f.sweeps.iter().map(|r| r.actions).sum();
            let (run_b, stop_b) = f.buffers;
            vec![
                f.config.tasks.to_string(),
                f.config.concurrency.to_string(),
                tagging(f.config.tagging).to_owned(),
                f.launched.to_string(),
                format!("{:.2}", f.calls_per_task()),
                if throttled.is_empty() {
                    "none".into()
                } else {
                    throttled.join(", ")
                },
                format!("{} / {}", run_b.invocations, stop_b.invocations),
                format!("{} / {}", run_b.peak_depth, stop_b.peak_depth),
                format!(
                    "{} runs, {} / {} (final {})",
                    f.sweeps.len(),
                    s(tasksub_tests::fleet::measure::percentile(&sorted(&durations), 50.0)),
                    s(max_sweep),
                    s(f.sweeps.last().map_or(f64::NAN, |r| r.duration_s))
                ),
                acted.to_string(),
                format!("{:.0} s", f.virtual_s),
                format!(
                    "{:.1} s / {:.1} s / {:.0} MiB",
                    c.wall.as_secs_f64(),
                    c.cpu.as_secs_f64(),
                    c.peak_rss_mib
                ),
            ]
        })
        .collect()
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn json_of(f: &Fleet, c: &Cost) -> serde_json::Value {
    let lat = |l: &tasksub_tests::fleet::measure::Latencies| {
        json!({"p50_s": l.p(50.0), "p99_s": l.p(99.0), "max_s": l.p(100.0), "floor_p99_s": l.floor_p(99.0),
               "missing": l.missing, "n": l.measured.len()})
    };
    json!({
        "tasks": f.config.tasks,
        "max_concurrency": f.config.concurrency,
        "tagging": tagging(f.config.tagging),
        "binding": {"quota": f.binding.0, "starts_per_s": f.binding.1},
        "scale_out_ready": lat(&f.scale_out),
        "deploy_ready": lat(&f.deploy),
        "unsubscribed": lat(&f.unsubscribed),
        "gone": lat(&f.gone),
        "crash_gone": lat(&f.crash_gone),
        "dead_letters": f.dead_letters(),
        "leftovers": {"queues": f.leftovers.queues, "subscriptions": f.leftovers.subscriptions,
                      "stopped_records": f.leftovers.stopped_records, "live_not_ready": f.leftovers.live_not_ready},
        "launched": f.launched,
        "calls_per_task": f.calls_per_task(),
        "ops": f.ops.iter().map(|(op, o)| (op.to_string(), json!({"calls": o.calls, "throttles": o.throttles,
                "exhausted": o.exhausted}))).collect::<serde_json::Map<_, _>>(),
        "sweeps": f.sweeps.iter().map(|r| json!({"at_s": r.at_s, "duration_s": r.duration_s,
                "completed": r.completed, "actions": r.actions, "deferred": r.deferred, "errors": r.errors,
                "final": r.last})).collect::<Vec<_>>(),
        "virtual_s": f.virtual_s,
        "wall_s": c.wall.as_secs_f64(),
        "cpu_s": c.cpu.as_secs_f64(),
        "peak_rss_mib": c.peak_rss_mib,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut plan: Vec<(usize, usize)> = args.tasks.iter().map(|&n| (n, args.concurrency)).collect();
    if let Some(&smallest) = args.tasks.iter().min() {
        if args.alt_concurrency > 0 && args.alt_concurrency != args.concurrency {
            plan.insert(1, (smallest, args.alt_concurrency));
        }
    }
    let mut runs = Vec::new();
    for (tasks, concurrency) in plan {
        let models = [Tagging::OnCreateCounts, Tagging::OnCreateFree];
        let chosen = models.into_iter().filter(|t| match args.tagging.as_str() {
            "a" => *t == Tagging::OnCreateCounts,
            "b" => *t == Tagging::OnCreateFree,
            _ => true,
        });
        for t in chosen {
            let mut config = Config::deployed(tasks, t);
            config.launch_window = Duration::from_secs(args.launch_window_s);
            config.concurrency = concurrency;
            eprintln!(
                "{tasks} tasks, concurrency {concurrency}, tagging {} (load {})",
                tagging(t),
                sys::loadavg()
            );
            let (f, c) = simulate(config)?;
            eprintln!(
                "  done in {:.1} s wall, {:.0} s virtual",
                c.wall.as_secs_f64(),
                f.virtual_s
            );
            runs.push((f, c));
        }
    }
    let lat_header = [
        "N",
        "max conc.",
        "tag on create",
        "binding quota (starts/s)",
        "scale-out READY p50 / p99",
        "floor p99",
        "p99 / floor",
        "deploy READY p50 / p99",
        "floor p99",
        "p99 / floor",
        "unsubscribed p99 (floor)",
        "GONE p99 (floor)",
        "crash-loop GONE p99",
        "dead letters",
        "left: queues / subs / stopped records / live not READY",
    ];
    let cost_header = [
        "N",
        "max conc.",
        "tag on create",
        "tasks launched",
        "calls per task",
        "throttled attempts (of which all 3 SDK attempts)",
        "invocations (running / stopped buffer)",
        "peak buffer depth (running / stopped)",
        "sweeps: runs, duration p50 / max",
        "sweep actions",
        "virtual time",
        "simulation: wall / CPU / peak RSS",
    ];
    let markdown = format!(
        "N tasks launch within {} s, then a deployment replaces them (each old task stops 30 s after its \
         replacement launches); 50 tasks crash-loop every 30 s; sweeps every 5 min. Buffers: MaximumConcurrency \
         as given (deployed: 5) per buffer, batch 10, visibility 180 s, 10 receives. Every call 20 ms; SDK \
         standard retry. One run each, virtual time, seeded; latencies in virtual seconds.\n\n{}\n{}",
        args.launch_window_s,
        report::table(&lat_header, &latency_rows(&runs)),
        report::table(&cost_header, &cost_rows(&runs)),
    );
    println!("{markdown}");
    let json = json!({
        "launch_window_s": args.launch_window_s,
        "runs": runs.iter().map(|(f, c)| json_of(f, c)).collect::<Vec<_>>(),
    });
    report::publish(&args.out, &markdown, &json)
}
