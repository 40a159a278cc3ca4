//! Controller latency and cost, ours against the reference design, interleaved on one moto; then a burst.
//!
//! Per event: every variant handles its own fresh task's events in every iteration, in an order that
//! rotates from one iteration to the next, so drifts of the machine (other builds, moto's growing state)
//! hit every variant alike. Ratios are of medians over the same iterations, and also the median of
//! per-iteration ratios.
//!
//! Variants:
//! - `ours`: `tasksub_functions::Controller::new(settings, &sdk, Role::Any).handle_json(&event)`, the
//!   public path the Lambda functions run (no special path for the benchmark).
//! - `ours-2step`: the same controller on the real ECS stop sequence: the stop-initiated event (RUNNING,
//!   desired STOPPED) and then the STOPPED one.
//! - `whatif`: a prototype of an identified optimisation, not product code: tasksub's own plan and ports,
//!   with the calls that do not depend on each other issued concurrently (CreateQueue ‖ Subscribe,
//!   Unsubscribe ‖ DeleteQueue).
//! - `reference`: the reference design's 7-call / 5-call boto3 sequences (`benches/baseline/reference.py`).
//! - `reference-faithful`: the same, also creating an SNS client per start invocation, as the sample does.
//! - `lean`: tasksub's 4-call / 4-call sequences in boto3 (`benches/baseline/lean.py`).
//!
//! Run: `scripts/bench controller` (or `cargo run --release -p tasksub-bench --bin bench-controller`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Parser;
use serde::Serialize;
use serde_json::{json, Value};
use tasksub_bench::events::{cluster_arn, Task};
use tasksub_bench::moto::{tag_totals, Moto, ServerStats};
use tasksub_bench::py::Worker;
use tasksub_bench::report::{ms, ratio, table};
use tasksub_bench::stats::{mean, median, paired_ratios, quantile, Summary};
use tasksub_bench::sys::process_cpu;
use tasksub_bench::tap::{sdk_config, Tap};
use tasksub_bench::{create_table, emulator_env, ACCOUNT, REGION};
use tasksub_core::decide::{self, Decision, Plan, Role, Step};
use tasksub_core::event::{self, Incoming};
use tasksub_core::policy;
use tasksub_core::record::State;
use tasksub_core::settings::{vars, Settings};
use tasksub_functions::aws::AwsPorts;
use tasksub_functions::fake::Fake;
use tasksub_functions::ports::{Expect, Queues, Records, Subscriptions, Written};
use tasksub_functions::Controller;
use tokio::sync::Semaphore;

#[derive(Parser, Debug)]
#[command(about = "Controller latency and cost: ours vs the reference design, interleaved, on one moto")]
struct Args {
    /// Measured iterations (each runs every variant once per event).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Unmeasured iterations first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Burst sizes (0 or empty: no burst).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    burst: Vec<usize>,
    /// Events in flight at once during a burst (Lambda instances running concurrently).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Events through the in-memory fake (our own code alone).
    #[arg(long, default_value_t = 2000)]
    fake_events: usize,
    /// Latency added to every AWS request on both sides (ms), a stand-in for real AWS's network and
    /// service time, which the loopback emulator lacks. Results go to `controller-latency<N>`.
    #[arg(long, default_value_t = 0)]
    added_latency_ms: u64,
    /// Do not write results or BENCHMARKS.md.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Ours2Step,
    WhatIf,
    Py(&'static str),
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
        name: "whatif",
        kind: Kind::WhatIf,
    },
];

/// One handled event.
#[derive(Debug, Clone, Default)]
struct One {
    ms: f64,
    cpu_ms: f64,
    calls: u64,
    in_http_ms: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Samples {
    ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    calls: Vec<f64>,
    in_http_ms: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
}

impl Samples {
    fn push(&mut self, one: One) {
        self.ms.push(one.ms);
        self.cpu_ms.push(one.cpu_ms);
        self.calls.push(one.calls as f64);
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
    ports: AwsPorts,
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
        Kind::WhatIf => whatif::handle(&ctx.ports, &ctx.settings, event).await,
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
    let error = match result {
        Ok(state) if state == expect => None,
        Ok(other) => Some(format!("ended in {other}, expected {expect}")),
        Err(e) => Some(e),
    };
    One {
        ms: wall,
        cpu_ms: cpu,
        calls: m.calls,
        in_http_ms: Some(m.in_http.as_secs_f64() * 1e3),
        error,
    }
}

fn run_py(worker: &mut Worker, implementation: &str, phase: &str, tag: &str, event: &Value) -> anyhow::Result<One> {
    let r = worker.run(
        implementation,
        if phase == "start" { "start" } else { "stop" },
        tag,
        event,
    )?;
    Ok(One {
        ms: r.ms,
        cpu_ms: r.cpu_ms,
        calls: r.calls,
        in_http_ms: None,
        error: r.error,
    })
}

mod whatif {
    //! The identified optimisation, prototyped on tasksub's own plan, policy and ports: the same requests
    //! as the executor sends, but CreateQueue ‖ Subscribe and Unsubscribe ‖ DeleteQueue run concurrently.
    //! The claim still precedes CreateQueue and the final conditional write still follows everything.

    use super::*;

    fn parse(payload: &Value) -> Result<tasksub_core::event::TaskEvent, String> {
        match event::parse(payload).map_err(|e| e.to_string())? {
            Incoming::Task(e) => Ok(*e),
            Incoming::Other { .. } => Err("not a task event".into()),
        }
    }

    fn plan(
        e: &tasksub_core::event::TaskEvent,
        stored: Option<&tasksub_core::record::Record>,
        s: &Settings,
    ) -> Result<Plan, String> {
        match decide::decide(e, stored, s, Utc::now()).map_err(|e| e.to_string())? {
            Decision::Act(p) => Ok(*p),
            Decision::Skip(skip) => Err(format!("skipped: {skip}")),
        }
    }

    fn written(w: Result<Written, tasksub_functions::ports::PortError>) -> Result<(), String> {
        match w.map_err(|e| e.to_string())? {
            Written::Applied => Ok(()),
            Written::Conflict(_) => Err("conditional write lost".into()),
        }
    }

    pub(super) async fn handle(ports: &AwsPorts, s: &Settings, payload: &Value) -> Result<String, String> {
        let now = Utc::now();
        let e = parse(payload)?;
        let admitted = match decide::admit(&e, s, now).map_err(|e| e.to_string())? {
            Ok(a) => a,
            Err(skip) => return Err(format!("skipped: {skip}")),
        };
        if admitted.intent.reads_first() {
            let stored = ports
                .get(admitted.names.record_key())
                .await
                .map_err(|e| e.to_string())?;
            let Plan { mut record, steps, .. } = plan(&e, stored.as_ref(), s)?;
            if steps != [Step::Unsubscribe, Step::DeleteQueue, Step::Tombstone(State::Gone)] {
                return Err(format!("prototype covers READY → GONE only, plan was {steps:?}"));
            }
            let (sub, url) = (record.subscription_arn.clone(), record.queue_url.clone());
            let (a, b) = tokio::join!(
                async {
                    match &sub {
                        Some(arn) => ports.unsubscribe(arn).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &url {
                        Some(u) => ports.delete(u).await,
                        None => Ok(()),
                    }
                }
            );
            a.map_err(|e| e.to_string())?;
            b.map_err(|e| e.to_string())?;
            record.subscription_arn = None;
            let gone = decide::apply(&record, Step::Tombstone(State::Gone), s, now);
            written(ports.put(&gone, Expect::State(State::Ready)).await)?;
            Ok("GONE".into())
        } else {
            let Plan { record, steps, .. } = plan(&e, None, s)?;
            if steps != [Step::Claim, Step::CreateQueue, Step::Subscribe, Step::MarkReady] {
                return Err(format!("prototype covers a fresh provision only, plan was {steps:?}"));
            }
            let mut record = decide::apply(&record, Step::Claim, s, now);
            written(ports.put(&record, Expect::Absent).await)?;
            let attrs = policy::queue_attributes(s, &record.queue_arn);
            let tags = policy::queue_tags(s, &record.task_arn, &record.cluster_arn, record.group.as_deref());
            let sub_attrs = policy::subscription_attributes(s);
            let (url, sub) = tokio::join!(
                ports.create(&record.queue_name, &attrs, &tags),
                ports.subscribe(&record.topic_arn, &record.queue_arn, &sub_attrs)
            );
            record.queue_url = Some(url.map_err(|e| e.to_string())?);
            record.subscription_arn = Some(sub.map_err(|e| e.to_string())?);
            let ready = decide::apply(&record, Step::MarkReady, s, now);
            written(
                ports
                    .put(&ready, Expect::AnyOf(&[State::Provisioning, State::Ready]))
                    .await,
            )?;
            Ok("READY".into())
        }
    }
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

fn settings_for(topic_arn: &str, table: &str, prefix: &str) -> anyhow::Result<Settings> {
    let m: BTreeMap<String, String> = [
        (vars::TOPIC_ARN, topic_arn.to_owned()),
        (vars::TABLE, table.to_owned()),
        (vars::QUEUE_PREFIX, prefix.to_owned()),
        (vars::CLUSTERS, cluster_arn()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok(Settings::from_map(&m)?)
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
    let load_before = tasksub_bench::sys::loadavg();
    let moto = Moto::start()?;
    eprintln!("moto (timed) on {} pid {}", moto.endpoint(), moto.pid());
    let (sdk, tap) = sdk_config(moto.endpoint()).await?;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    tap.set_tag("setup");
    let name = if args.added_latency_ms > 0 {
        format!("controller-latency{}", args.added_latency_ms)
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
    let settings = settings_for(&ours_topic, "bench-records", "tasksub-")?;
    let controller = Arc::new(Controller::new(settings.clone(), &sdk, Role::Any));
    let ctx = Ctx {
        tap: tap.clone(),
        settings: settings.clone(),
        controller,
        ports: AwsPorts::new(&sdk, "bench-records"),
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
        ("BENCH_ADDED_LATENCY_MS", args.added_latency_ms.to_string()),
    ]);
    let mut worker = Worker::start(&env)?;
    tap.set_added_latency(Duration::from_millis(args.added_latency_ms));

    // Our own code alone (in-memory ports), before anything else loads the machine.
    let (fake_start, fake_stop) = fake_cost(&settings, args.fake_events).await?;
    eprintln!(
        "fake ports: start {:.1} µs, stop {:.1} µs (median)",
        median(&fake_start),
        median(&fake_stop)
    );

    // Interleaved per-event latency.
    let mut samples: BTreeMap<String, Samples> = BTreeMap::new();
    let (moto_cpu0, t_all) = (moto.cpu(), Instant::now());
    for i in 0..args.warmup + args.iterations {
        if i == args.warmup {
            moto.reset()?;
            tap.clear_log();
            samples.clear();
        }
        let n = VARIANTS.len();
        let order: Vec<Variant> = (0..n).map(|k| VARIANTS[(i + k) % n]).collect();
        let tasks: Vec<Task> = order.iter().map(|_| Task::new()).collect();
        for phase in ["start", "stop"] {
            for (v, task) in order.iter().zip(&tasks) {
                for (event_name, event, expect) in events_of(*v, task, phase) {
                    let tag = format!("{}/{event_name}", v.name);
                    let one = match v.kind {
                        Kind::Py(implementation) => run_py(&mut worker, implementation, event_name, &tag, &event)?,
                        _ => run_rust(&ctx, *v, &tag, &event, expect).await,
                    };
                    samples.entry(tag).or_default().push(one);
                }
            }
        }
        if (i + 1) % 50 == 0 {
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

    // Bursts: ours and the reference, alternating which goes first.
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

fn key(v: &str, e: &str) -> String {
    format!("{v}/{e}")
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &Args,
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
    let get = |v: &str, e: &str| samples.get(&key(v, e)).cloned().unwrap_or_default();
    if args.added_latency_ms > 0 {
        out.push_str(&format!(
            "**{} ms added to every AWS request on both sides** (before it is sent), as a stand-in for the \
             network and service time of real AWS.\n\n",
            args.added_latency_ms
        ));
    }
    out.push_str(&format!(
        "Run: {} measured iterations after {} warm-up, every variant once per iteration in rotating order, \
         on one timed moto 5.2.5. Machine: {}. Load average before / after latency / after bursts: {} / {} / {}.\n\n",
        args.iterations,
        args.warmup,
        tasksub_bench::machine(),
        load[0],
        load[1],
        load[2]
    ));

    // Table 1: per event.
    let rows_spec: &[(&str, &str, &str)] = &[
        ("reference", "start", "reference (boto3, 7 calls)"),
        (
            "reference-faithful",
            "start",
            "reference + SNS client per invocation (as the sample)",
        ),
        ("lean", "start", "lean boto3 (tasksub's 4 calls)"),
        ("ours", "start", "**tasksub** (`Controller::handle_json`)"),
        ("whatif", "start", "what-if: tasksub plan, independent calls concurrent"),
        ("reference", "stop", "reference (boto3, 5 calls)"),
        ("lean", "stop", "lean boto3 (tasksub's 4 calls)"),
        ("ours", "stop", "**tasksub** (`Controller::handle_json`)"),
        ("whatif", "stop", "what-if: tasksub plan, independent calls concurrent"),
        (
            "ours-2step",
            "stop-initiated",
            "tasksub, real ECS stop sequence: stop-initiated",
        ),
        ("ours-2step", "stopped", "tasksub, real ECS stop sequence: stopped"),
    ];
    let mut rows = Vec::new();
    for &(v, e, label) in rows_spec {
        let s = get(v, e);
        if s.ms.is_empty() {
            continue;
        }
        let base_event = if e == "start" { "start" } else { "stop" };
        let base = get("reference", base_event);
        let (r_med, r_pair) = if v == "reference" || e.starts_with("stop") && e != "stop" {
            (f64::NAN, f64::NAN)
        } else {
            (
                median(&base.ms) / median(&s.ms),
                median(&paired_ratios(&base.ms, &s.ms)),
            )
        };
        let (server_n, server_wall, _) = tag_totals(server, &key(v, e));
        let events = s.ms.len() as f64;
        rows.push(vec![
            label.to_owned(),
            e.to_owned(),
            format!("{:.0} / {:.0}", mean(&s.calls), server_n as f64 / events),
            ms(median(&s.ms)),
            ms(quantile(&s.ms, 0.9)),
            ms(median(&s.cpu_ms)),
            ms(server_wall / events),
            ratio(r_med),
            ratio(r_pair),
            if s.errors > 0 {
                format!("{} ({})", s.errors, s.first_error.clone().unwrap_or_default())
            } else {
                "0".into()
            },
        ]);
    }
    out.push_str("### Per event (medians; ratio = reference ÷ variant)\n\n");
    out.push_str(&table(
        &[
            "variant",
            "event",
            "AWS calls (client / moto)",
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

    // Table 2: where the time goes (means, additive).
    let mut rows = Vec::new();
    for (v, e) in [
        ("reference", "start"),
        ("lean", "start"),
        ("ours", "start"),
        ("whatif", "start"),
        ("reference", "stop"),
        ("lean", "stop"),
        ("ours", "stop"),
        ("whatif", "stop"),
    ] {
        let s = get(v, e);
        if s.ms.is_empty() {
            continue;
        }
        let events = s.ms.len() as f64;
        let (_, server_wall, server_cpu) = tag_totals(server, &key(v, e));
        let total = mean(&s.ms);
        let moto_app = server_wall / events;
        let (in_http, outside) = if s.in_http_ms.is_empty() {
            ("n/a".to_owned(), "n/a".to_owned())
        } else if v == "whatif" {
            ("(calls overlap)".to_owned(), "(calls overlap)".to_owned())
        } else {
            let h = mean(&s.in_http_ms);
            (ms(h - moto_app), ms(total - h))
        };
        let ours_code = match (v, e) {
            ("ours", "start") => format!("{:.3}", median(fake.0) / 1e3),
            ("ours", "stop") => format!("{:.3}", median(fake.1) / 1e3),
            _ => "".into(),
        };
        rows.push(vec![
            v.to_owned(),
            e.to_owned(),
            ms(total),
            ms(moto_app),
            ms(server_cpu / events),
            ms(total - moto_app),
            in_http,
            outside,
            ours_code,
        ]);
    }
    out.push_str(
        "\n### Where the time goes (means per event, ms)\n\n\
         `moto app`: inside moto's WSGI application (timed by the server); `client side`: everything else \
         (loopback, werkzeug's HTTP parsing, the SDK, our code). For the Rust variants the client side splits \
         into `wire + werkzeug` (inside the SDK's HTTP client, minus moto app time) and `SDK + our code` \
         (outside the HTTP client); `our code alone` is the same controller on in-memory ports (median).\n\n",
    );
    out.push_str(&table(
        &[
            "variant",
            "event",
            "total",
            "moto app",
            "moto CPU",
            "client side",
            "wire + werkzeug",
            "SDK + our code",
            "our code alone",
        ],
        &rows,
    ));

    // Table 3: per operation, moto time by SDK.
    let mut per_op: BTreeMap<String, (Vec<f64>, f64, u64, f64, u64)> = BTreeMap::new();
    for c in calls_log {
        if c.tag.starts_with("ours/") {
            per_op
                .entry(c.op.clone())
                .or_default()
                .0
                .push(c.dur.as_secs_f64() * 1e3);
        }
    }
    for (tag, actions) in server {
        let rust = tag.starts_with("ours/");
        let py = tag.starts_with("reference/") || tag.starts_with("lean/");
        for (action, t) in actions {
            let op = action.split(':').nth(1).unwrap_or(action).to_owned();
            let e = per_op.entry(op).or_default();
            if rust {
                e.1 += t.wall_ms_sum;
                e.2 += t.n;
            } else if py {
                e.3 += t.wall_ms_sum;
                e.4 += t.n;
            }
        }
    }
    let mut rows = Vec::new();
    for (op, (rt, rw, rn, pw, pn)) in &per_op {
        rows.push(vec![
            op.clone(),
            if rt.is_empty() { "".into() } else { ms(median(rt)) },
            if *rn == 0 { "".into() } else { ms(rw / *rn as f64) },
            if *pn == 0 { "".into() } else { ms(pw / *pn as f64) },
        ]);
    }
    out.push_str(
        "\n### Per AWS operation\n\n`round trip`: tasksub's SDK HTTP client, request handed over → response head \
         (median); `moto app`: mean time inside moto per request, by the SDK that sent it.\n\n",
    );
    out.push_str(&table(
        &[
            "operation",
            "tasksub round trip p50",
            "moto app (Rust SDK requests)",
            "moto app (boto3 requests)",
        ],
        &rows,
    ));
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
