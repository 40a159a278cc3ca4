//! What a sweep costs (BENCHMARKS.md §7): AWS calls per run and per task of the real sweeper and handler
//! on the in-memory fake, counted per operation by the `Instrumented` wrapper, for a fleet of live tasks
//! in sync, with the rotating audit on and off, after a settings change, and after others broke things.
//! The baseline, measured in the same run, is what a first start costs per task (claim, CreateQueue ‖
//! Subscribe per topic, mark READY). Counting, not timing: on AWS each call's latency and the sweeper's
//! pacing (`TASKSUB_SWEEP_MIN_INTERVAL_MS`) turn these counts into seconds (the method says how).
//!
//! ```text
//! scripts/bench sweep            # or: cargo run --release -p tasksub-bench --bin bench-sweep -- --tasks 1000
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::Parser;
use serde_json::json;
use tasksub_bench::report;
use tasksub_core::decide::Role;
use tasksub_core::event::TaskStatus;
use tasksub_core::reconcile::EcsTask;
use tasksub_core::settings::{vars, Settings, SweepSettings};
use tasksub_functions::fake::Fake;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::pace::PACED_OPS;
use tasksub_functions::ports::{Queues, Subscriptions};
use tasksub_functions::sweeper::{Report, RunOptions, Sweeper};
use tasksub_functions::Controller;
use tasksub_tests::events::{Task, ACCOUNT, REGION};
use tasksub_tests::world::settings_map;

#[derive(Parser)]
struct Args {
    /// Live tasks in the fleet.
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
}

const PREFIX: &str = "tasksub-";

fn topics(k: usize) -> Vec<String> {
    (0..k)
        .map(|i| format!("arn:aws:sns:{REGION}:{ACCOUNT}:topic-{i}"))
        .collect()
}

fn settings(topics: &[String], overrides: &str) -> Settings {
    let mut m = settings_map(&topics[0], "records", PREFIX);
    m.remove(vars::TOPIC_ARN);
    m.insert(vars::TOPIC_ARNS.to_owned(), topics.join(","));
    if !overrides.is_empty() {
        m.insert(vars::TOPIC_SETTINGS.to_owned(), overrides.to_owned());
    }
    Settings::from_map(&m).expect("settings")
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

/// Calls per AWS operation.
type Counts = BTreeMap<&'static str, usize>;

fn counts(ports: &Instrumented<Fake>) -> Counts {
    let mut c = Counts::new();
    for op in ports.calls() {
        *c.entry(op).or_default() += 1;
    }
    ports.reset_calls();
    c
}

struct Fleet {
    fake: Fake,
    ports: Instrumented<Fake>,
    tasks: Vec<Task>,
}

impl Fleet {
    /// `n` running tasks, each provisioned by its start event; the calls of those starts.
    async fn new(n: usize, settings: &Settings, at: DateTime<Utc>) -> (Self, Counts) {
        let fake = Fake::new();
        fake.set_now(at);
        let ports = Instrumented::new(fake.clone());
        let mut tasks = Vec::new();
        for _ in 0..n {
            let task = Task::new("prod");
            fake.put_task(EcsTask {
                task_arn: task.arn.clone(),
                cluster_arn: task.cluster.clone(),
                group: task.group.clone(),
                last_status: TaskStatus::Running,
                desired_status: TaskStatus::Running,
                version: Some(3),
                created_at: Some(at - Duration::minutes(30)),
                stopping_at: None,
                stopped_at: None,
            });
            let c = Controller::with_ports(settings.clone(), ports.clone(), Role::Any);
            let out = c
                .handle_json_at(&task.event_at("RUNNING", "RUNNING", 3, at), at)
                .await
                .expect("start");
            assert_eq!(out.state, Some("READY"), "{out:?}");
            tasks.push(task);
        }
        let starts = counts(&ports);
        (Self { fake, ports, tasks }, starts)
    }

    async fn sweep(&self, settings: &Settings, audit: usize, at: DateTime<Utc>) -> (Report, Counts) {
        self.fake.set_now(at);
        let sweep = SweepSettings {
            grace_seconds: 600,
            min_interval_ms: 0,
            max_actions: 100_000,
            audit_per_run: audit,
            ..SweepSettings::default()
        };
        let s = Sweeper::with_ports(settings.clone(), sweep, self.ports.clone(), self.ports.clone());
        let report = s.run(RunOptions::default(), at).await.expect("sweep");
        assert_eq!(report.errors, 0, "{report:?}");
        (report, counts(&self.ports))
    }
}

fn total(c: &Counts) -> usize {
    c.values().sum()
}

fn row(case: &str, k: usize, n: usize, per: usize, c: &Counts, baseline: f64) -> serde_json::Value {
    let calls = total(c);
    let paced: usize = c.iter().filter(|(op, _)| PACED_OPS.contains(op)).map(|(_, n)| n).sum();
    let per_task = if per == 0 { 0.0 } else { calls as f64 / per as f64 };
    json!({
        "case": case,
        "topics": k,
        "tasks": n,
        "acted_on": per,
        "calls": calls,
        "paced_calls": paced,
        "paced_seconds_at_default_interval": paced as f64 * 0.1,
        "calls_per_task_acted_on": per_task,
        "ratio_to_first_start": if per == 0 { f64::NAN } else { per_task / baseline },
        "by_operation": c,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut results = Vec::new();
    for k in [1usize, 3] {
        let t = topics(k);
        let base = settings(&t, "");
        let n = args.tasks;
        eprintln!("{n} tasks, {k} topic(s)");
        runtime.block_on(async {
            let at = start();
            let (fleet, starts) = Fleet::new(n, &base, at).await;
            let first = total(&starts) as f64 / n as f64;
            results.push(row("first start (baseline)", k, n, n, &starts, first));
            // Steady state: nothing drifted; the audit off, then on.
            let later = at + Duration::minutes(10);
            let (_, quiet) = fleet.sweep(&base, 0, later).await;
            results.push(row("sweep, in sync, audit off", k, n, 0, &quiet, first));
            let (r, audited) = fleet.sweep(&base, 25, later + Duration::minutes(5)).await;
            assert!(r.audited > 0 && r.audited <= 25, "{r:?}");
            let mut audit_only = audited.clone();
            for (op, c) in &quiet {
                if let Some(v) = audit_only.get_mut(op) {
                    *v = v.saturating_sub(*c);
                }
            }
            audit_only.retain(|_, v| *v > 0);
            results.push(row("sweep, in sync, audit 25", k, n, 0, &audited, first));
            results.push(row("  of which the audit", k, n, r.audited, &audit_only, first));
            // A filter policy added to every topic: every live task converges.
            let names: Vec<String> = t
                .iter()
                .map(|a| a.rsplit(':').next().unwrap_or_default().to_owned())
                .collect();
            let overrides = format!(
                "{{{}}}",
                names
                    .iter()
                    .map(|nm| format!(r#""{nm}":{{"filterPolicy":{{"kind":["invalidate"]}}}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let filtered = settings(&t, &overrides);
            let (r, changed) = fleet.sweep(&filtered, 0, later + Duration::minutes(10)).await;
            assert_eq!(r.converged, n, "{r:?}");
            results.push(row(
                "sweep after a filter policy change",
                k,
                n,
                r.converged,
                &changed,
                first,
            ));
            // A topic added: every live task subscribes it and gets the new queue policy.
            let mut more = t.clone();
            more.push(format!("arn:aws:sns:{REGION}:{ACCOUNT}:added"));
            let added = settings(&more, &overrides);
            let (r, grown) = fleet.sweep(&added, 0, later + Duration::minutes(15)).await;
            assert_eq!(r.converged, n, "{r:?}");
            results.push(row("sweep after a topic is added", k, n, r.converged, &grown, first));
            // Others broke things: a tenth of the live tasks lose a subscription (the topic's owner) and
            // their queue is deleted by hand for another tenth.
            let tenth = (n / 10).max(1);
            for task in &fleet.tasks[..tenth] {
                let rec = fleet.fake.record(&task.id).expect("record");
                let arn = rec.subscriptions.values().next().expect("a subscription").clone();
                fleet.fake.unsubscribe(&arn).await.expect("the owner unsubscribes");
            }
            for task in &fleet.tasks[tenth..2 * tenth] {
                let url = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{PREFIX}{}", task.id);
                fleet.fake.delete(&url).await.expect("an operator deletes the queue");
            }
            let at = later + Duration::minutes(30);
            let (r, repaired) = fleet.sweep(&added, 0, at).await;
            let fixed = r.converged + r.resumed + r.provisioned;
            assert_eq!(fixed, 2 * tenth, "{r:?}");
            results.push(row(
                "sweep repairing 10 % lost subscriptions, 10 % deleted queues",
                k,
                n,
                fixed,
                &repaired,
                first,
            ));
            // A tenth of the tasks stopped, their events lost: the sweep tears them down.
            for task in &fleet.tasks[..tenth] {
                let mut t = fleet
                    .fake
                    .tasks()
                    .into_iter()
                    .find(|t| t.task_arn == task.arn)
                    .expect("task");
                t.last_status = TaskStatus::Stopped;
                t.desired_status = TaskStatus::Stopped;
                t.stopping_at = Some(at - Duration::minutes(20));
                t.stopped_at = Some(at - Duration::minutes(15));
                fleet.fake.put_task(t);
            }
            let (r, removed) = fleet.sweep(&added, 0, at + Duration::minutes(5)).await;
            assert_eq!(r.orphans_removed, tenth, "{r:?}");
            results.push(row(
                "sweep removing 10 % stopped tasks (events lost)",
                k,
                n,
                r.orphans_removed,
                &removed,
                first,
            ));
        });
    }
    let md = render(&results);
    print!("{md}");
    report::publish("sweep", &md, &json!({ "tasks": args.tasks, "results": results }))?;
    Ok(())
}

fn render(rows: &[serde_json::Value]) -> String {
    let mut s = String::from(
        "| case | topics | tasks acted on | calls | calls per task acted on | ÷ first start | paced calls (s at 100 ms) | by operation |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ops: Vec<String> = r["by_operation"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| format!("{k} {v}")).collect())
            .unwrap_or_default();
        let per = r["calls_per_task_acted_on"].as_f64().unwrap_or(0.0);
        let ratio = r["ratio_to_first_start"].as_f64().filter(|x| x.is_finite());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["case"].as_str().unwrap_or_default(),
            r["topics"],
            r["acted_on"],
            r["calls"],
            if per > 0.0 { format!("{per:.2}") } else { "–".into() },
            ratio.map_or("–".into(), |x| format!("{x:.2}×")),
            if r["case"].as_str().is_some_and(|c| c.starts_with("first start")) {
                "– (events are not paced)".to_owned()
            } else {
                format!(
                    "{} ({:.0} s)",
                    r["paced_calls"],
                    r["paced_seconds_at_default_interval"].as_f64().unwrap_or(0.0)
                )
            },
            ops.join(", ")
        ));
    }
    s
}
