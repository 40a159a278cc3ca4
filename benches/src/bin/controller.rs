//! Controller latency and cost, ours against the reference design, interleaved on one moto; then a burst.
//!
//! Per event: every variant handles its own fresh task's events in every iteration, in an order that
//! rotates from one iteration to the next, so drifts of the machine (other builds, moto's growing state)
//! hit every variant alike. Ratios are of medians over the same iterations, and also the median of
//! per-iteration ratios.
//!
//! Added latency (`--added-latency-ms 0,10,30`): the timed moto delays every request by that much in
//! its own serving thread before moto handles it (`benches/baseline/moto_timed.py`), so the delay is
//! the same for both SDKs and concurrent requests wait concurrently. With several levels, every
//! iteration runs every level (in rotating order), so the levels share the run's conditions too.
//!
//! Variants:
//! - `ours`: `tasksub_functions::Controller::new(settings, &sdk, Role::Any).handle_json(&event)`, the
//!   public path the Lambda functions run (no special path for the benchmark).
//! - `ours-topics` (with `--topics N`): the same controller with N topics per task
//!   (`TASKSUB_TOPIC_ARNS`, one Subscribe per topic, all in the same stage).
//! - `ours-2step`: the same controller on the real ECS stop sequence: the stop-initiated event (RUNNING,
//!   desired STOPPED) and then the STOPPED one.
//! - `reference`: the reference design's 7-call / 5-call boto3 sequences (`benches/baseline/reference.py`).
//! - `reference-faithful`: the same, also creating an SNS client per start invocation, as the sample does.
//! - `lean`: tasksub's 4-call / 4-call sequences in boto3, one after the other (`benches/baseline/lean.py`).
//! - `probe-py`, `probe-rs-<k>`: the per-call baseline: one SQS GetQueueUrl from boto3, and `k` issued
//!   at once from the Rust SDK (k = 1 is the per-call cost; k > 1 shows whether concurrent requests
//!   really overlap under the added latency).
//!
//! Round trips per event are counted, not assumed: for the Rust variants from the start and end of each
//! HTTP request (`tap::round_trips`: a request that starts while none is in flight begins a round trip),
//! for boto3 from its `before-send` / `response-received` events.
//!
//! Run: `scripts/bench controller` (or `cargo run --release -p tasksub-bench --bin bench-controller`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde::Serialize;
use serde_json::{json, Value};
use tasksub_bench::events::{cluster_arn, Task};
use tasksub_bench::moto::{tag_totals, Moto, ServerStats};
use tasksub_bench::py::Worker;
use tasksub_bench::report::{ms, ratio, table};
use tasksub_bench::stats::{mean, median, paired_ratios, quantile, Summary};
use tasksub_bench::sys::process_cpu;
use tasksub_bench::tap::{round_trips, sdk_config, Tap};
use tasksub_bench::{create_table, emulator_env, ACCOUNT, REGION};
use tasksub_core::decide::Role;
use tasksub_core::settings::{vars, Settings};
use tasksub_functions::fake::Fake;
use tasksub_functions::Controller;
use tokio::sync::Semaphore;

#[derive(Parser, Debug)]
#[command(about = "Controller latency and cost: ours vs the reference design, interleaved, on one moto")]
struct Args {
    /// Measured iterations (each runs every variant once per event, at every latency level).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Unmeasured iterations first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Burst sizes (0 or empty: no burst). Bursts run at the first latency level.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    burst: Vec<usize>,
    /// Events in flight at once during a burst (Lambda instances running concurrently).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Events through the in-memory fake (our own code alone).
    #[arg(long, default_value_t = 2000)]
    fake_events: usize,
    /// Latency the timed moto adds to every AWS request (ms; a list runs every level in every
    /// iteration), a stand-in for real AWS's network and service time, which the loopback emulator
    /// lacks. With any level above 0, results go to `controller-latency`.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    added_latency_ms: Vec<u64>,
    /// Topics per task of an extra variant, `ours-topics` (TASKSUB_TOPIC_ARNS, one Subscribe per topic);
    /// 1: no extra variant.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Targets for the added-latency summary (reference ÷ tasksub): start, stop.
    #[arg(long, value_delimiter = ',', default_value = "2.3,2")]
    targets: Vec<f64>,
    /// Do not write results or BENCHMARKS.md.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    /// The same controller with several topics per task.
    OursTopics,
    Ours2Step,
    Py(&'static str),
    /// One GetQueueUrl from boto3.
    PyProbe,
    /// `k` GetQueueUrl at once from the Rust SDK.
    Probe(usize),
}

#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    kind: Kind,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "reference",
        kind: Kind::Py("reference"),
    },
    Variant {
        name: "reference-faithful",
        kind: Kind::Py("reference-faithful"),
    },
    Variant {
        name: "lean",
        kind: Kind::Py("lean"),
    },
    Variant {
        name: "ours",
        kind: Kind::Ours,
    },
    Variant {
        name: "ours-2step",
        kind: Kind::Ours2Step,
    },
    Variant {
        name: "probe-py",
        kind: Kind::PyProbe,
    },
    Variant {
        name: "probe-rs-1",
        kind: Kind::Probe(1),
    },
    Variant {
        name: "probe-rs-2",
        kind: Kind::Probe(2),
    },
    Variant {
        name: "probe-rs-4",
        kind: Kind::Probe(4),
    },
];

/// The queue the probes look up.
const PROBE_QUEUE: &str = "bench-probe";

/// Tags whose requests the timed moto never delays (setting up and checking, not measured).
const EXEMPT: &[&str] = &["setup", "check"];

/// One handled event.
#[derive(Debug, Clone, Default)]
struct One {
    ms: f64,
    cpu_ms: f64,
    calls: u64,
    round_trips: u64,
    in_http_ms: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Samples {
    ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    calls: Vec<f64>,
    round_trips: Vec<f64>,
    in_http_ms: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
}

impl Samples {
    fn push(&mut self, one: One) {
        self.ms.push(one.ms);
        self.cpu_ms.push(one.cpu_ms);
        self.calls.push(one.calls as f64);
        self.round_trips.push(one.round_trips as f64);
        if let Some(h) = one.in_http_ms {
            self.in_http_ms.push(h);
        }
        if let Some(e) = one.error {
            self.errors += 1;
            self.first_error.get_or_insert(e);
        }
    }
}

struct Ctx {
    tap: Arc<Tap>,
    settings: Settings,
    controller: Arc<Controller>,
    controller_topics: Option<Arc<Controller>>,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    ref_topic_name: String,
}

fn since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

fn cpu_since(c0: Duration) -> f64 {
    (process_cpu() - c0).as_secs_f64() * 1e3
}

/// The events a variant handles for one task, by phase.
fn events_of(variant: Variant, task: &Task, phase: &str) -> Vec<(&'static str, Value, &'static str)> {
    match (phase, variant.kind) {
        ("start", Kind::Probe(_) | Kind::PyProbe) => vec![("call", Value::Null, "")],
        (_, Kind::Probe(_) | Kind::PyProbe) => vec![],
        ("start", _) => vec![("start", task.running(), "READY")],
        ("stop", Kind::Ours2Step) => vec![
            ("stop-initiated", task.stop_initiated(), "DRAINING"),
            ("stopped", task.stopped(), "GONE"),
        ],
        _ => vec![("stop", task.stopped(), "GONE")],
    }
}

async fn run_rust(ctx: &Ctx, variant: Variant, tag: &str, event: &Value, expect: &str) -> One {
    ctx.tap.set_tag(tag);
    let m0 = ctx.tap.mark();
    let c0 = process_cpu();
    let t0 = Instant::now();
    let result: Result<String, String> = match variant.kind {
        Kind::Probe(k) => {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..k {
                let sqs = ctx.sqs.clone();
                set.spawn(async move { sqs.get_queue_url().queue_name(PROBE_QUEUE).send().await });
            }
            let mut result = Ok(String::new());
            while let Some(r) = set.join_next().await {
                if let Err(e) = r.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                    result = Err(e);
                }
            }
            result
        }
        Kind::OursTopics => match &ctx.controller_topics {
            Some(c) => c
                .handle_json(event)
                .await
                .map(|o| o.state.unwrap_or(o.outcome).to_owned())
                .map_err(|e| e.to_string()),
            None => Err("no several-topics controller".into()),
        },
        _ => ctx
            .controller
            .handle_json(event)
            .await
            .map(|o| o.state.unwrap_or(o.outcome).to_owned())
            .map_err(|e| e.to_string()),
    };
    let wall = since(t0);
    let cpu = cpu_since(c0);
    let m = ctx.tap.mark() - m0;
    let (trips, in_flight) = round_trips(&ctx.tap.log_since(m0.logged));
    let error = match result {
        Ok(state) if state == expect => None,
        Ok(other) => Some(format!("ended in {other}, expected {expect}")),
        Err(e) => Some(e),
    };
    One {
        ms: wall,
        cpu_ms: cpu,
        calls: m.calls,
        round_trips: trips as u64,
        in_http_ms: Some(in_flight.as_secs_f64() * 1e3),
        error,
    }
}

fn run_py(worker: &mut Worker, variant: Variant, phase: &str, tag: &str, event: &Value) -> anyhow::Result<One> {
    let r = match variant.kind {
        Kind::Py(implementation) => worker.run(
            implementation,
            if phase == "start" { "start" } else { "stop" },
            tag,
            event,
        )?,
        _ => worker.probe(tag)?,
    };
    Ok(One {
        ms: r.ms,
        cpu_ms: r.cpu_ms,
        calls: r.calls,
        round_trips: r.round_trips,
        in_http_ms: None,
        error: r.error,
    })
}

/// The JSON log subscriber of the Lambda binaries (`runtime::init_logging`), writing to a sink: the
/// formatting cost of our logs is measured, the I/O is not.
fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_writer(std::io::sink)
        .init();
}

/// Settings for `topics` (one: `TASKSUB_TOPIC_ARN`, or `TASKSUB_TOPIC_ARNS` where the build wants it;
/// several: `TASKSUB_TOPIC_ARNS`, comma separated). Names spelled out, so the bench builds whichever of
/// the two the controller knows; a build without `TASKSUB_TOPIC_ARNS` refuses several topics here.
fn settings_for(topics: &[String], table: &str, prefix: &str) -> anyhow::Result<Settings> {
    let with = |var: &str| -> anyhow::Result<Settings> {
        let m: BTreeMap<String, String> = [
            (var, topics.join(",")),
            ("TASKSUB_ACCOUNT_ID", ACCOUNT.to_owned()),
            ("TASKSUB_REGION", REGION.to_owned()),
            (vars::TABLE, table.to_owned()),
            (vars::QUEUE_PREFIX, prefix.to_owned()),
            (vars::CLUSTERS, cluster_arn()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(Settings::from_map(&m)?)
    };
    if topics.len() == 1 {
        if let Ok(s) = with("TASKSUB_TOPIC_ARN") {
            return Ok(s);
        }
    }
    with("TASKSUB_TOPIC_ARNS").with_context(|| format!("settings for {} topic(s)", topics.len()))
}

/// Our own code alone: the same controller on the in-memory fake ports.
async fn fake_cost(settings: &Settings, n: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let controller = Controller::with_ports(settings.clone(), Fake::new(), Role::Any);
    let (mut start, mut stop) = (Vec::new(), Vec::new());
    for i in 0..n + n / 10 {
        let task = Task::new();
        let (a, b) = (task.running(), task.stopped());
        let t0 = Instant::now();
        let o = controller.handle_json(&a).await?;
        let d1 = since(t0);
        let t1 = Instant::now();
        let p = controller.handle_json(&b).await?;
        let d2 = since(t1);
        if o.state != Some("READY") || p.state != Some("GONE") {
            bail!("fake: unexpected outcomes {o:?} {p:?}");
        }
        if i >= n / 10 {
            start.push(d1 * 1e3);
            stop.push(d2 * 1e3);
        }
    }
    Ok((start, stop))
}

#[derive(Debug, Serialize)]
struct BurstResult {
    variant: &'static str,
    n: usize,
    concurrency: usize,
    start_wall_ms: f64,
    start_events_per_s: f64,
    ready_ms: Summary,
    start_service_ms: Summary,
    start_calls: u64,
    start_errors: u64,
    start_client_cpu_ms: f64,
    start_moto_cpu_ms: f64,
    publish_ms: f64,
    delivered: usize,
    stop_wall_ms: f64,
    stop_events_per_s: f64,
    stop_service_ms: Summary,
    stop_calls: u64,
    stop_errors: u64,
    stop_client_cpu_ms: f64,
    stop_moto_cpu_ms: f64,
    first_error: Option<String>,
}

struct Phase {
    wall_ms: f64,
    done_ms: Vec<f64>,
    service_ms: Vec<f64>,
    calls: u64,
    errors: u64,
    cpu_ms: f64,
    moto_cpu_ms: f64,
    first_error: Option<String>,
}

async fn ours_phase(ctx: &Ctx, moto: &Moto, events: Vec<Value>, expect: &'static str, conc: usize) -> Phase {
    let sem = Arc::new(Semaphore::new(conc));
    let m0 = ctx.tap.mark();
    let (c0, mc0) = (process_cpu(), moto.cpu());
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for ev in events {
        let (sem, controller) = (sem.clone(), ctx.controller.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let s = Instant::now();
            let r = controller.handle_json(&ev).await;
            let ok = match r {
                Ok(o) if o.state == Some(expect) => None,
                Ok(o) => Some(format!("{o:?}")),
                Err(e) => Some(e.to_string()),
            };
            (since(t0), since(s), ok)
        });
    }
    let mut out = Phase {
        wall_ms: 0.0,
        done_ms: vec![],
        service_ms: vec![],
        calls: 0,
        errors: 0,
        cpu_ms: 0.0,
        moto_cpu_ms: 0.0,
        first_error: None,
    };
    while let Some(r) = set.join_next().await {
        let (done, service, err) = r.expect("join");
        out.done_ms.push(done);
        out.service_ms.push(service);
        if let Some(e) = err {
            out.errors += 1;
            out.first_error.get_or_insert(e);
        }
    }
    out.wall_ms = since(t0);
    out.cpu_ms = cpu_since(c0);
    out.moto_cpu_ms = (moto.cpu() - mc0).as_secs_f64() * 1e3;
    out.calls = (ctx.tap.mark() - m0).calls;
    out
}

fn py_phase(
    worker: &mut Worker,
    moto: &Moto,
    phase: &str,
    tag: &str,
    events: &[Value],
    conc: usize,
) -> anyhow::Result<Phase> {
    let mc0 = moto.cpu();
    let r = worker.burst("reference", phase, tag, events, conc)?;
    Ok(Phase {
        wall_ms: r.wall_ms,
        done_ms: r.done_ms,
        service_ms: r.service_ms,
        calls: r.calls,
        errors: r.errors,
        cpu_ms: r.cpu_ms,
        moto_cpu_ms: (moto.cpu() - mc0).as_secs_f64() * 1e3,
        first_error: r.first_error,
    })
}

/// Publishes one message and counts the queues it reached.
async fn publish_and_check(
    ctx: &Ctx,
    topic_arn: &str,
    queue_names: &[String],
    conc: usize,
) -> anyhow::Result<(f64, usize)> {
    let marker = format!("burst-{}", Task::new().id);
    let t0 = Instant::now();
    ctx.sns.publish().topic_arn(topic_arn).message(&marker).send().await?;
    let publish_ms = since(t0);
    let sem = Arc::new(Semaphore::new(conc));
    let mut set = tokio::task::JoinSet::new();
    for name in queue_names {
        let (sem, sqs, name, marker) = (sem.clone(), ctx.sqs.clone(), name.clone(), marker.clone());
        set.spawn(async move {
            let _p = sem.acquire_owned().await.expect("semaphore");
            let url = sqs
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .ok()?
                .queue_url()?
                .to_owned();
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .ok()?;
            out.messages()
                .iter()
                .any(|m| m.body().is_some_and(|b| b.contains(&marker)))
                .then_some(())
        });
    }
    let mut delivered = 0;
    while let Some(r) = set.join_next().await {
        delivered += usize::from(r?.is_some());
    }
    Ok((publish_ms, delivered))
}

#[allow(clippy::too_many_arguments)]
async fn burst(
    ctx: &Ctx,
    moto: &Moto,
    worker: &mut Worker,
    variant: &'static str,
    n: usize,
    conc: usize,
    ours_topic: &str,
    ref_topic: &str,
) -> anyhow::Result<BurstResult> {
    let tasks: Vec<Task> = (0..n).map(|_| Task::new()).collect();
    let tag = format!("burst-{variant}-{n}");
    let starts: Vec<Value> = tasks.iter().map(Task::running).collect();
    let stops: Vec<Value> = tasks.iter().map(Task::stopped).collect();
    ctx.tap.set_tag(&tag);
    let (start, names, topic) = if variant == "ours" {
        let p = ours_phase(ctx, moto, starts, "READY", conc).await;
        let prefix = ctx.settings.queue.prefix.as_str().to_owned();
        (
            p,
            tasks.iter().map(|t| format!("{prefix}{}", t.id)).collect::<Vec<_>>(),
            ours_topic,
        )
    } else {
        let p = py_phase(worker, moto, "start", &tag, &starts, conc)?;
        (p, tasks.iter().map(|t| t.id.clone()).collect(), ref_topic)
    };
    let (publish_ms, delivered) = publish_and_check(ctx, topic, &names, conc).await?;
    ctx.tap.set_tag(&tag);
    let stop = if variant == "ours" {
        ours_phase(ctx, moto, stops, "GONE", conc).await
    } else {
        py_phase(worker, moto, "stop", &tag, &stops, conc)?
    };
    Ok(BurstResult {
        variant,
        n,
        concurrency: conc,
        start_wall_ms: start.wall_ms,
        start_events_per_s: n as f64 / (start.wall_ms / 1e3),
        ready_ms: Summary::of(&start.done_ms),
        start_service_ms: Summary::of(&start.service_ms),
        start_calls: start.calls,
        start_errors: start.errors,
        start_client_cpu_ms: start.cpu_ms,
        start_moto_cpu_ms: start.moto_cpu_ms,
        publish_ms,
        delivered,
        stop_wall_ms: stop.wall_ms,
        stop_events_per_s: n as f64 / (stop.wall_ms / 1e3),
        stop_service_ms: Summary::of(&stop.service_ms),
        stop_calls: stop.calls,
        stop_errors: stop.errors,
        stop_client_cpu_ms: stop.cpu_ms,
        stop_moto_cpu_ms: stop.moto_cpu_ms,
        first_error: start.first_error.or(stop.first_error),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging();
    let mut levels = args.added_latency_ms.clone();
    levels.dedup();
    if levels.is_empty() {
        levels.push(0);
    }
    let load_before = tasksub_bench::sys::loadavg();
    let moto = Moto::start()?;
    moto.set_added_latency(0, EXEMPT)?;
    eprintln!("moto (timed) on {} pid {}", moto.endpoint(), moto.pid());
    let (sdk, tap) = sdk_config(moto.endpoint()).await?;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    tap.set_tag("setup");
    let name = if levels.iter().any(|&l| l > 0) {
        "controller-latency".to_owned()
    } else {
        "controller".to_owned()
    };
    let ours_topic = sns
        .create_topic()
        .name("bench-ours")
        .send()
        .await?
        .topic_arn()
        .context("arn")?
        .to_owned();
    create_table(&ddb, "bench-records", "taskId").await?;
    create_table(&ddb, "bench-lean", "taskId").await?;
    let ref_table = "SQSContainerMappping";
    create_table(&ddb, ref_table, "id").await?;
    let ref_topic_name = "SNS-DynamicSubscription-Topic".to_owned();
    let ref_topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{ref_topic_name}");
    sns.create_topic().name(&ref_topic_name).send().await?;
    sqs.create_queue().queue_name(PROBE_QUEUE).send().await?;
    let settings = settings_for(std::slice::from_ref(&ours_topic), "bench-records", "tasksub-")?;
    let controller = Arc::new(Controller::new(settings.clone(), &sdk, Role::Any));
    let mut variants: Vec<Variant> = VARIANTS.to_vec();
    let controller_topics = if args.topics > 1 {
        let mut topics = vec![ours_topic.clone()];
        for k in 2..=args.topics {
            let arn = sns.create_topic().name(format!("bench-ours-{k}")).send().await?;
            topics.push(arn.topic_arn().context("arn")?.to_owned());
        }
        let s = settings_for(&topics, "bench-records", "tasksub-")?;
        variants.push(Variant {
            name: "ours-topics",
            kind: Kind::OursTopics,
        });
        Some(Arc::new(Controller::new(s, &sdk, Role::Any)))
    } else {
        None
    };
    let ctx = Ctx {
        tap: tap.clone(),
        settings: settings.clone(),
        controller,
        controller_topics,
        sns,
        sqs,
        ref_topic_name,
    };
    let mut env = emulator_env(moto.endpoint());
    env.extend([
        ("TOPIC_NAME", ctx.ref_topic_name.clone()),
        ("SQS_CONTAINER_MAPPING_TABLE", ref_table.to_owned()),
        ("LEAN_TOPIC_ARN", ours_topic.clone()),
        ("LEAN_TABLE", "bench-lean".to_owned()),
        ("LEAN_PREFIX", "lean-".to_owned()),
        ("PROBE_QUEUE", PROBE_QUEUE.to_owned()),
    ]);
    let mut worker = Worker::start(&env)?;

    // Our own code alone (in-memory ports), before anything else loads the machine.
    let (fake_start, fake_stop) = fake_cost(&settings, args.fake_events).await?;
    eprintln!(
        "fake ports: start {:.1} µs, stop {:.1} µs (median)",
        median(&fake_start),
        median(&fake_stop)
    );

    // Interleaved per-event latency: every iteration runs every level, every variant at each.
    let mut samples: BTreeMap<String, Samples> = BTreeMap::new();
    let (moto_cpu0, t_all) = (moto.cpu(), Instant::now());
    for i in 0..args.warmup + args.iterations {
        if i == args.warmup {
            moto.reset()?;
            tap.clear_log();
            samples.clear();
        }
        for j in 0..levels.len() {
            let level = levels[(i + j) % levels.len()];
            moto.set_added_latency(level, EXEMPT)?;
            let n = variants.len();
            let order: Vec<Variant> = (0..n).map(|k| variants[(i + k) % n]).collect();
            let tasks: Vec<Task> = order.iter().map(|_| Task::new()).collect();
            for phase in ["start", "stop"] {
                for (v, task) in order.iter().zip(&tasks) {
                    for (event_name, event, expect) in events_of(*v, task, phase) {
                        let tag = key(level, v.name, event_name);
                        let one = match v.kind {
                            Kind::Py(_) | Kind::PyProbe => run_py(&mut worker, *v, event_name, &tag, &event)?,
                            _ => run_rust(&ctx, *v, &tag, &event, expect).await,
                        };
                        samples.entry(tag).or_default().push(one);
                    }
                }
            }
        }
        if (i + 1) % 25 == 0 {
            eprintln!(
                "iteration {}/{} (load {})",
                i + 1,
                args.warmup + args.iterations,
                tasksub_bench::sys::loadavg()
            );
        }
    }
    let latency_wall_s = t_all.elapsed().as_secs_f64();
    let moto_cpu_latency = (moto.cpu() - moto_cpu0).as_secs_f64();
    let server = moto.stats()?;
    let calls_log = tap.log();
    let load_mid = tasksub_bench::sys::loadavg();

    // Bursts: ours and the reference, alternating which goes first, at the first level.
    moto.set_added_latency(levels[0], EXEMPT)?;
    let mut bursts = Vec::new();
    for (k, &n) in args.burst.iter().filter(|&&n| n > 0).enumerate() {
        let order: [&'static str; 2] = if k % 2 == 0 {
            ["ours", "reference"]
        } else {
            ["reference", "ours"]
        };
        for variant in order {
            eprintln!("burst {variant} n={n} (load {})", tasksub_bench::sys::loadavg());
            let r = burst(
                &ctx,
                &moto,
                &mut worker,
                variant,
                n,
                args.concurrency,
                &ours_topic,
                &ref_topic,
            )
            .await?;
            eprintln!(
                "  start {:.0} ev/s, ready p50 {:.0} ms, delivered {}/{}, stop {:.0} ev/s, errors {}+{}",
                r.start_events_per_s,
                r.ready_ms.p50,
                r.delivered,
                n,
                r.stop_events_per_s,
                r.start_errors,
                r.stop_errors
            );
            bursts.push(r);
        }
    }
    let load_after = tasksub_bench::sys::loadavg();

    let doc = render(
        &args,
        &levels,
        &samples,
        &server,
        &calls_log,
        (&fake_start, &fake_stop),
        &bursts,
        [&load_before, &load_mid, &load_after],
        latency_wall_s,
        moto_cpu_latency,
    );
    let json = json!({
        "machine": tasksub_bench::machine(),
        "load": [load_before, load_mid, load_after],
        "iterations": args.iterations,
        "warmup": args.warmup,
        "added_latency_ms": levels,
        "samples": samples,
        "moto": server,
        "fake_us": {"start": Summary::of(&fake_start), "stop": Summary::of(&fake_stop)},
        "bursts": bursts,
    });
    println!("{doc}");
    if !args.dry_run {
        tasksub_bench::report::publish(&name, &doc, &json)?;
    }
    drop(worker);
    Ok(())
}

/// The tag (and sample key) of one variant's event at one latency level.
fn key(level: u64, v: &str, e: &str) -> String {
    format!("{v}/{e}@{level}")
}

/// An error message fit for a table cell: one line, at most 120 characters (the JSON has it whole).
fn one_line(e: &str) -> String {
    let flat = e.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "/");
    match flat.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// `a ≥ target`, as the summary tables say it.
fn met(a: f64, target: f64) -> &'static str {
    if a >= target {
        "yes"
    } else {
        "**no**"
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &Args,
    levels: &[u64],
    samples: &BTreeMap<String, Samples>,
    server: &ServerStats,
    calls_log: &[tasksub_bench::tap::Call],
    fake: (&[f64], &[f64]),
    bursts: &[BurstResult],
    load: [&str; 3],
    latency_wall_s: f64,
    moto_cpu_latency_s: f64,
) -> String {
    let mut out = String::new();
    let get = |l: u64, v: &str, e: &str| samples.get(&key(l, v, e)).cloned().unwrap_or_default();
    let level_list = levels.iter().map(|l| format!("{l} ms")).collect::<Vec<_>>().join(", ");
    if levels.iter().any(|&l| l > 0) {
        out.push_str(&format!(
            "**Added latency: {level_list} per AWS request, the same on both sides**: the timed moto holds every \
             request for that long in its own serving thread before moto handles it (GIL released, so requests in \
             flight together wait together), as a stand-in for the network and service time of real AWS. Every \
             iteration runs every level, in rotating order.\n\n"
        ));
    }
    out.push_str(&format!(
        "Run: {} measured iterations after {} warm-up, every variant once per iteration and level in rotating \
         order, on one timed moto 5.2.5. Machine: {}. Load average before / after latency / after bursts: {} / {} / {}.\n\n",
        args.iterations,
        args.warmup,
        tasksub_bench::machine(),
        load[0],
        load[1],
        load[2]
    ));

    // Against the targets: one row per level and event.
    let targets = |e: &str| match e {
        "start" => args.targets.first().copied().unwrap_or(f64::NAN),
        _ => args.targets.get(1).copied().unwrap_or(f64::NAN),
    };
    let mut rows = Vec::new();
    for &l in levels {
        let topics_start = format!("start, {} topics", args.topics);
        let topics_stop = format!("STOPPED, {} topics", args.topics);
        for (v, e, base_e, label) in [
            ("ours", "start", "start", "start (RUNNING)"),
            ("ours-topics", "start", "start", topics_start.as_str()),
            ("ours", "stop", "stop", "STOPPED"),
            ("ours-topics", "stop", "stop", topics_stop.as_str()),
            ("ours-2step", "stop-initiated", "stop", "stop-initiated (ECS sequence)"),
            ("ours-2step", "stopped", "stop", "STOPPED after stop-initiated"),
        ] {
            let (s, base) = (get(l, v, e), get(l, "reference", base_e));
            if s.ms.is_empty() || base.ms.is_empty() {
                continue;
            }
            let r_med = median(&base.ms) / median(&s.ms);
            let r_pair = median(&paired_ratios(&base.ms, &s.ms));
            let (rt_ref, rt_ours) = (median(&base.round_trips), median(&s.round_trips));
            let target = targets(e);
            let primary = v.starts_with("ours") && v != "ours-2step" && l > 0;
            rows.push(vec![
                format!("{l}"),
                label.to_owned(),
                format!("{rt_ref:.0} / {rt_ours:.0}"),
                format!("{:.0} / {:.0}", mean(&base.calls), mean(&s.calls)),
                ms(median(&base.ms)),
                ms(median(&s.ms)),
                ratio(r_med),
                ratio(r_pair),
                ratio(rt_ref / rt_ours),
                if primary { format!("{target}×") } else { String::new() },
                if primary {
                    met(r_pair.min(r_med), target).to_owned()
                } else {
                    String::new()
                },
            ]);
        }
    }
    out.push_str("### Against the targets (ratio = reference ÷ tasksub, same run)\n\n");
    out.push_str(
        "Round trips are counted per event (median), not taken from the plans. `limit`: the ratio of round trips, \
         which the speed-up tends to as the added latency dominates. `met?` takes the lower of the two ratios; \
         the stop-initiated and second STOPPED rows are the real ECS sequence, each event against the \
         reference's one STOPPED handler.\n\n",
    );
    out.push_str(&table(
        &[
            "added ms",
            "event",
            "round trips: reference / tasksub",
            "AWS calls: reference / tasksub",
            "reference p50 ms",
            "tasksub p50 ms",
            "speed-up (medians)",
            "speed-up (paired)",
            "limit",
            "target",
            "met?",
        ],
        &rows,
    ));

    // The per-call baseline, and a model from it.
    let mut rows = Vec::new();
    for &l in levels {
        let p = |v: &str| median(&get(l, v, "call").ms);
        let (py, r1, r2, r4) = (p("probe-py"), p("probe-rs-1"), p("probe-rs-2"), p("probe-rs-4"));
        if r1.is_nan() {
            continue;
        }
        let model_start = 7.0 * py / (r1 + r2 + r1);
        let model_stop = 5.0 * py / (r1 + r2 + r1);
        rows.push(vec![
            format!("{l}"),
            ms(py),
            ms(r1),
            ms(r2),
            ms(r4),
            ms((r4 - r1) / 3.0),
            format!("{} / {}", ratio(model_start), ratio(model_stop),),
            format!(
                "{} / {}",
                ratio(median(&get(l, "reference", "start").ms) / median(&get(l, "ours", "start").ms)),
                ratio(median(&get(l, "reference", "stop").ms) / median(&get(l, "ours", "stop").ms)),
            ),
        ]);
    }
    out.push_str(
        "\n### Per-call baseline (same run)\n\n`boto3 1 call`, `Rust k at once`: one SQS GetQueueUrl from boto3, and k \
         issued together from the Rust SDK (p50, ms). If concurrent requests overlap, k at once costs one round trip \
         plus moto's serialised work per extra call (`+ per extra call`), not k round trips. `model`: the reference \
         as 7 (start) or 5 (stop) sequential boto3 calls against tasksub as call, 2 calls at once, call \
         (claim, CreateQueue ‖ Subscribe, MarkReady; read, Unsubscribe ‖ DeleteQueue, tombstone).\n\n",
    );
    out.push_str(&table(
        &[
            "added ms",
            "boto3 1 call",
            "Rust 1 call",
            "Rust 2 at once",
            "Rust 4 at once",
            "+ per extra call",
            "model start / stop",
            "measured start / stop",
        ],
        &rows,
    ));

    // Per event, every variant.
    let rows_spec: &[(&str, &str, &str)] = &[
        ("reference", "start", "reference (boto3, 7 calls)"),
        (
            "reference-faithful",
            "start",
            "reference + SNS client per invocation (as the sample)",
        ),
        ("lean", "start", "lean boto3 (tasksub's 4 calls, one after the other)"),
        ("ours", "start", "**tasksub** (`Controller::handle_json`)"),
        ("ours-topics", "start", "tasksub, several topics (`TASKSUB_TOPIC_ARNS`)"),
        ("reference", "stop", "reference (boto3, 5 calls)"),
        ("lean", "stop", "lean boto3 (tasksub's 4 calls, one after the other)"),
        ("ours", "stop", "**tasksub** (`Controller::handle_json`)"),
        ("ours-topics", "stop", "tasksub, several topics (`TASKSUB_TOPIC_ARNS`)"),
        (
            "ours-2step",
            "stop-initiated",
            "tasksub, real ECS stop sequence: stop-initiated",
        ),
        ("ours-2step", "stopped", "tasksub, real ECS stop sequence: stopped"),
    ];
    let mut rows = Vec::new();
    for &l in levels {
        for &(v, e, label) in rows_spec {
            let s = get(l, v, e);
            if s.ms.is_empty() {
                continue;
            }
            let base_event = if e == "start" { "start" } else { "stop" };
            let base = get(l, "reference", base_event);
            let (r_med, r_pair) = if v == "reference" {
                (f64::NAN, f64::NAN)
            } else {
                (
                    median(&base.ms) / median(&s.ms),
                    median(&paired_ratios(&base.ms, &s.ms)),
                )
            };
            let (server_n, server_wall, _) = tag_totals(server, &key(l, v, e));
            let events = s.ms.len() as f64;
            rows.push(vec![
                format!("{l}"),
                label.to_owned(),
                e.to_owned(),
                format!("{:.0} / {:.0}", mean(&s.calls), server_n as f64 / events),
                format!(
                    "{:.0} ({:.0}–{:.0})",
                    median(&s.round_trips),
                    quantile(&s.round_trips, 0.0),
                    quantile(&s.round_trips, 1.0)
                ),
                ms(median(&s.ms)),
                ms(quantile(&s.ms, 0.9)),
                ms(median(&s.cpu_ms)),
                ms(server_wall / events),
                ratio(r_med),
                ratio(r_pair),
                if s.errors > 0 {
                    format!(
                        "{} ({})",
                        s.errors,
                        one_line(s.first_error.as_deref().unwrap_or_default())
                    )
                } else {
                    "0".into()
                },
            ]);
        }
    }
    out.push_str("\n### Per event (medians; ratio = reference ÷ variant)\n\n");
    out.push_str(&table(
        &[
            "added ms",
            "variant",
            "event",
            "AWS calls (client / moto)",
            "round trips p50 (min–max)",
            "p50 ms",
            "p90 ms",
            "client CPU ms",
            "moto app ms (mean)",
            "speed-up (medians)",
            "speed-up (paired)",
            "errors",
        ],
        &rows,
    ));

    // Where the time goes (means, additive).
    let mut rows = Vec::new();
    for &l in levels {
        for (v, e) in [
            ("reference", "start"),
            ("lean", "start"),
            ("ours", "start"),
            ("reference", "stop"),
            ("lean", "stop"),
            ("ours", "stop"),
        ] {
            let s = get(l, v, e);
            if s.ms.is_empty() {
                continue;
            }
            let events = s.ms.len() as f64;
            let (_, server_wall, server_cpu) = tag_totals(server, &key(l, v, e));
            let total = mean(&s.ms);
            let moto_app = server_wall / events;
            let outside = if s.in_http_ms.is_empty() {
                "n/a".to_owned()
            } else {
                ms(total - mean(&s.in_http_ms))
            };
            let ours_code = match (v, e) {
                ("ours", "start") => format!("{:.3}", median(fake.0) / 1e3),
                ("ours", "stop") => format!("{:.3}", median(fake.1) / 1e3),
                _ => "".into(),
            };
            rows.push(vec![
                format!("{l}"),
                v.to_owned(),
                e.to_owned(),
                ms(total),
                ms(moto_app),
                ms(server_cpu / events),
                ms(total - moto_app),
                outside,
                ours_code,
            ]);
        }
    }
    out.push_str(
        "\n### Where the time goes (means per event, ms)\n\n\
         `moto app`: inside moto's WSGI application, summed over the event's requests (timed by the server; the \
         added latency is not in it); `client side`: the rest of the wall time (added latency, loopback, \
         werkzeug, the SDK, our code). `outside HTTP`: wall time minus the time at least one request was inside \
         the SDK's HTTP client (SDK serialisation, signing, parsing, retry bookkeeping and our code); `our code \
         alone`: the same controller on in-memory ports (median).\n\n",
    );
    out.push_str(&table(
        &[
            "added ms",
            "variant",
            "event",
            "total",
            "moto app",
            "moto CPU",
            "client side",
            "outside HTTP",
            "our code alone",
        ],
        &rows,
    ));

    // Per operation: tasksub's round trip by level, moto's time by SDK.
    let mut round_trip: BTreeMap<(String, u64), Vec<f64>> = BTreeMap::new();
    for c in calls_log {
        if let Some(l) = c
            .tag
            .strip_prefix("ours")
            .and_then(|t| t.rsplit_once('@'))
            .and_then(|(_, l)| l.parse::<u64>().ok())
        {
            round_trip
                .entry((c.op.clone(), l))
                .or_default()
                .push(c.dur.as_secs_f64() * 1e3);
        }
    }
    let mut moto_app: BTreeMap<String, (f64, u64, f64, u64)> = BTreeMap::new();
    for (tag, actions) in server {
        let rust = tag.starts_with("ours");
        let py = tag.starts_with("reference/") || tag.starts_with("lean/");
        for (action, t) in actions {
            let op = action.split(':').nth(1).unwrap_or(action).to_owned();
            let e = moto_app.entry(op).or_default();
            if rust {
                e.0 += t.wall_ms_sum;
                e.1 += t.n;
            } else if py {
                e.2 += t.wall_ms_sum;
                e.3 += t.n;
            }
        }
    }
    let mut rows = Vec::new();
    for (op, (rw, rn, pw, pn)) in &moto_app {
        if *rn == 0 && *pn == 0 {
            continue;
        }
        let mut row = vec![op.clone()];
        for &l in levels {
            row.push(
                round_trip
                    .get(&(op.clone(), l))
                    .map_or(String::new(), |v| ms(median(v))),
            );
        }
        row.push(if *rn == 0 { "".into() } else { ms(rw / *rn as f64) });
        row.push(if *pn == 0 { "".into() } else { ms(pw / *pn as f64) });
        rows.push(row);
    }
    let mut header: Vec<String> = vec!["operation".into()];
    header.extend(levels.iter().map(|l| format!("tasksub round trip p50, +{l} ms")));
    header.push("moto app (Rust SDK requests)".into());
    header.push("moto app (boto3 requests)".into());
    out.push_str(
        "\n### Per AWS operation\n\n`round trip`: tasksub's SDK HTTP client, request handed over → response head \
         (median, ms); `moto app`: mean time inside moto per request, by the SDK that sent it, over all levels.\n\n",
    );
    out.push_str(&table(&header.iter().map(String::as_str).collect::<Vec<_>>(), &rows));
    out.push_str(&format!(
        "\nmoto used {:.1} s of CPU over the {:.1} s of the interleaved run ({:.0}% of one core).\n",
        moto_cpu_latency_s,
        latency_wall_s,
        100.0 * moto_cpu_latency_s / latency_wall_s
    ));
    if !bursts.is_empty() {
        let mut rows = Vec::new();
        for b in bursts {
            rows.push(vec![
                b.variant.to_owned(),
                b.n.to_string(),
                format!("{:.0}", b.start_events_per_s),
                format!(
                    "{} / {} / {}",
                    ms(b.ready_ms.p50),
                    ms(b.ready_ms.p90),
                    ms(b.ready_ms.max)
                ),
                ms(b.start_service_ms.p50),
                format!("{:.1}", b.start_calls as f64 / b.n as f64),
                format!(
                    "{:.2} / {:.2}",
                    b.start_client_cpu_ms / b.n as f64,
                    b.start_moto_cpu_ms / b.n as f64
                ),
                format!("{}/{}", b.delivered, b.n),
                format!("{:.0}", b.stop_events_per_s),
                ms(b.stop_service_ms.p50),
                format!("{:.1}", b.stop_calls as f64 / b.n as f64),
                format!("{}", b.start_errors + b.stop_errors),
            ]);
        }
        out.push_str(&format!(
            "\n### Burst: N tasks start, one message published, N tasks stop ({} events in flight)\n\n\
             All N start events are emitted at t=0; `event → ready` is each task's time from then until its \
             handler returned READY (queue created, subscribed, record written). The reference runs in one \
             Python process with a thread pool of the same size.\n\n",
            bursts[0].concurrency
        ));
        out.push_str(&table(
            &[
                "variant",
                "N",
                "start events/s",
                "event → ready p50 / p90 / max ms",
                "start handler p50 ms",
                "calls/start",
                "CPU ms per start: client / moto",
                "delivered",
                "stop events/s",
                "stop handler p50 ms",
                "calls/stop",
                "errors",
            ],
            &rows,
        ));
    }
    out
}
