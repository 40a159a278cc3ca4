//! Client throughput: `tasksub_client::Client` consuming N messages from its task queue on moto, against a
//! naive receive-one/delete-one loop (`ReceiveMessage(MaxNumberOfMessages=1)` with the SQS default short poll then
//! `DeleteMessage`, per message), with 1, 4 and 16 concurrent handlers. Both use the same SDK config;
//! the runs alternate (which one goes first flips every repetition), each on a fresh queue.
//!
//! The N messages flow through a queue kept about `--backlog` deep by a producer thread (its own
//! runtime and SDK client; its CPU time is measured on its thread and subtracted), instead of being
//! filled up front: moto 5.2.5 scans every message of a queue, through a slow datetime-based clock, on
//! every SendMessage, ReceiveMessage and DeleteMessage entry, so a 10,000-deep queue costs about 50 ms
//! of moto time per message whatever the consumer does (see BENCHMARKS.md). We also read moto's own CPU
//! time (`/proc/<pid>/stat`) and its per-request time, because moto is the bottleneck, not the consumer.
//!
//! Added latency (`--added-latency-ms 10,30`): the timed moto holds every consumer request that long in
//! its own serving thread before handling it (the same for both consumers; concurrent requests wait
//! concurrently). The producer's, setup's and checks' requests are exempt, so feeding the queue never
//! limits the consumer. With several levels, each repetition runs every level, alternating the order.
//!
//! Bounds printed with the results, from the same run: the latency bound of each consumer (naive: one
//! message per receive + delete round trip per handler; tasksub-client: one ReceiveMessage in flight, so
//! messages per receive ÷ receive round trip) and moto's (one core ÷ moto CPU per message).
//!
//! Run: `scripts/bench client`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use serde::Serialize;
use serde_json::json;
use tasksub_bench::events::Task;
use tasksub_bench::moto::{tag_totals, Moto};
use tasksub_bench::report::{ms, ratio, table};
use tasksub_bench::stats::median;
use tasksub_bench::sys::process_cpu;
use tasksub_bench::tap::{sdk_config, Tap};
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_client::{CancellationToken, Client, Message};

#[derive(Parser, Debug)]
#[command(about = "Client throughput: tasksub-client vs a naive receive-one/delete-one loop, on moto")]
struct Args {
    /// Messages per run.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Concurrent handlers.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    handlers: Vec<usize>,
    /// Messages kept in the queue ahead of the consumer (visible + in flight), by the producer.
    #[arg(long, default_value_t = 30)]
    backlog: u64,
    /// Repetitions per (handlers, variant, level).
    #[arg(long, default_value_t = 1)]
    reps: usize,
    /// Latency the timed moto adds to every consumer request (ms; a list runs every level in every
    /// repetition). With any level above 0, results go to `client-latency`.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    added_latency_ms: Vec<u64>,
    /// Do not write results or BENCHMARKS.md.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Run {
    variant: &'static str,
    handlers: usize,
    added_ms: u64,
    rep: usize,
    wall_ms: f64,
    msgs_per_s: f64,
    handled: u64,
    left_in_queue: i64,
    calls: u64,
    client_cpu_ms: f64,
    moto_cpu_ms: f64,
    moto_app_ms: f64,
    receives: u64,
    receive_rt_ms: f64,
    delete_rt_ms: f64,
    probe_rt_ms: f64,
}

/// The per-call baseline at the current level: the median of 10 sequential GetQueueUrl round trips on an
/// otherwise idle moto (nothing else in flight), delayed like the consumers' requests.
async fn probe(sqs: &aws_sdk_sqs::Client, tap: &Tap, url: &str, added_ms: u64) -> anyhow::Result<f64> {
    tap.set_tag(&format!("probe-l{added_ms}"));
    let name = url.rsplit('/').next().unwrap_or(url);
    let mut rts = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        sqs.get_queue_url().queue_name(name).send().await?;
        rts.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(&rts))
}

/// Tags whose requests the timed moto never delays.
const EXEMPT: &[&str] = &["setup", "producer", "check", "cleanup"];

const PREFIX: &str = "tasksub-";

async fn fresh_queue(sqs: &aws_sdk_sqs::Client, tap: &Tap) -> anyhow::Result<(Task, String)> {
    tap.set_tag("setup");
    let task = Task::new();
    let url = sqs
        .create_queue()
        .queue_name(format!("{PREFIX}{}", task.id))
        .send()
        .await?
        .queue_url()
        .context("queue url")?
        .to_owned();
    Ok((task, url))
}

/// Keeps the queue about `backlog` messages ahead of the consumer until `n` were sent, from its own
/// thread and runtime. Returns the messages sent and the thread's CPU time.
fn producer(
    endpoint: String,
    url: String,
    n: u64,
    backlog: u64,
    handled: Arc<AtomicU64>,
) -> std::thread::JoinHandle<anyhow::Result<(u64, f64)>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let sent = rt.block_on(async {
            let (sdk, tap) = sdk_config(&endpoint).await?;
            tap.set_tag("producer");
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let mut sent = 0u64;
            while sent < n {
                if sent.saturating_sub(handled.load(Ordering::SeqCst)) + 10 > backlog {
                    tokio::time::sleep(std::time::Duration::from_micros(500)).await;
                    continue;
                }
                let count = (n - sent).min(10);
                let mut req = sqs.send_message_batch().queue_url(&url);
                for i in 0..count {
                    let body = json!({"kind": "config-changed", "seq": sent + i, "pad": "x".repeat(160)});
                    req = req.entries(
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body.to_string())
                            .build()?,
                    );
                }
                if !req.send().await?.failed().is_empty() {
                    bail!("SendMessageBatch had failures");
                }
                sent += count;
            }
            Ok::<u64, anyhow::Error>(sent)
        })?;
        Ok((sent, tasksub_bench::sys::thread_cpu().as_secs_f64() * 1e3))
    })
}

async fn left(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<i64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    let get = |a: A| attrs.get(&a).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    Ok(get(A::ApproximateNumberOfMessages) + get(A::ApproximateNumberOfMessagesNotVisible))
}

async fn run_client(
    sdk: &aws_config::SdkConfig,
    task: &Task,
    handlers: usize,
    n: u64,
    handled: Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    let recorded = std::fs::read_to_string(
        tasksub_bench::repo_root().join("fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json"),
    )?;
    let server = MetadataServer::serve_task(with_task_arn(&recorded, &task.arn)?).await?;
    let client = Client::builder()
        .metadata_uri(server.uri())
        .queue_prefix(PREFIX)
        .skip_ready_check()
        .max_concurrency(handlers)
        .handle_sigterm(false)
        .build(sdk)?;
    let stop = CancellationToken::new();
    let (h, s) = (handled, stop.clone());
    let report = client
        .run(
            move |message: Message| {
                let (h, s) = (h.clone(), s.clone());
                async move {
                    std::hint::black_box(message.body().len());
                    if h.fetch_add(1, Ordering::SeqCst) + 1 >= n {
                        s.cancel();
                    }
                    Ok::<(), std::io::Error>(())
                }
            },
            stop,
        )
        .await?;
    if report.deleted != n {
        eprintln!("  client report: {report:?}");
    }
    Ok(report.succeeded)
}

async fn run_naive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    handlers: usize,
    n: u64,
    handled: Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    let done = Arc::new(tokio::sync::Notify::new());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..handlers {
        let (sqs, url, handled, done) = (sqs.clone(), url.to_owned(), handled.clone(), done.clone());
        set.spawn(async move {
            loop {
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(1)
                    .wait_time_seconds(0)
                    .send()
                    .await?;
                for m in out.messages() {
                    std::hint::black_box(m.body().map(str::len));
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .send()
                        .await?;
                    if handled.fetch_add(1, Ordering::SeqCst) + 1 >= n {
                        done.notify_one();
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), anyhow::Error>(())
        });
    }
    tokio::select! {
        _ = done.notified() => {}
        Some(r) = set.join_next() => { r??; bail!("a naive loop ended early"); }
    }
    // The other loops poll an empty queue: stop them.
    set.abort_all();
    while set.join_next().await.is_some() {}
    Ok(handled.load(Ordering::SeqCst))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load_before = tasksub_bench::sys::loadavg();
    let moto = Moto::start()?;
    moto.set_added_latency(0, EXEMPT)?;
    let (sdk, tap) = sdk_config(moto.endpoint()).await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let n = args.messages as u64;
    let mut levels = args.added_latency_ms.clone();
    levels.dedup();
    if levels.is_empty() {
        levels.push(0);
    }
    let mut runs = Vec::new();
    let mut k = 0usize;
    for &handlers in &args.handlers {
        for rep in 0..args.reps {
            for j in 0..levels.len() {
                let added_ms = levels[(rep + j) % levels.len()];
                moto.set_added_latency(added_ms, EXEMPT)?;
                let order: [&'static str; 2] = if k % 2 == 0 {
                    ["naive", "tasksub-client"]
                } else {
                    ["tasksub-client", "naive"]
                };
                k += 1;
                for variant in order {
                    let (task, url) = fresh_queue(&sqs, &tap).await?;
                    let probe_rt_ms = probe(&sqs, &tap, &url, added_ms).await?;
                    let tag = format!("{variant}-h{handlers}-l{added_ms}-r{rep}");
                    tap.set_tag(&tag);
                    let handled_count = Arc::new(AtomicU64::new(0));
                    let m0 = tap.mark();
                    let (c0, mc0) = (process_cpu(), moto.cpu());
                    let t0 = Instant::now();
                    let feed = producer(
                        moto.endpoint().to_owned(),
                        url.clone(),
                        n,
                        args.backlog,
                        handled_count.clone(),
                    );
                    let handled = match variant {
                        "naive" => run_naive(&sqs, &url, handlers, n, handled_count).await?,
                        _ => run_client(&sdk, &task, handlers, n, handled_count).await?,
                    };
                    let wall = t0.elapsed().as_secs_f64();
                    let (sent, producer_cpu) = feed.join().map_err(|_| anyhow::anyhow!("producer panicked"))??;
                    let client_cpu = (process_cpu() - c0).as_secs_f64() * 1e3 - producer_cpu;
                    let moto_cpu = (moto.cpu() - mc0).as_secs_f64() * 1e3;
                    let m = tap.mark() - m0;
                    let calls = m.calls;
                    let log = tap.log_since(m0.logged);
                    let rt = |op: &str| {
                        median(
                            &log.iter()
                                .filter(|c| c.op == op && *c.tag == *tag)
                                .map(|c| c.dur.as_secs_f64() * 1e3)
                                .collect::<Vec<_>>(),
                        )
                    };
                    let receives = log
                        .iter()
                        .filter(|c| c.op == "ReceiveMessage" && *c.tag == *tag)
                        .count() as u64;
                    let (receive_rt_ms, delete_rt_ms) = (
                        rt("ReceiveMessage"),
                        if variant == "naive" {
                            rt("DeleteMessage")
                        } else {
                            rt("DeleteMessageBatch")
                        },
                    );
                    tap.set_tag("check");
                    let left_in_queue = left(&sqs, &url).await?;
                    let (_, moto_app, _) = tag_totals(&moto.stats()?, &tag);
                    if sent != n {
                        bail!("the producer sent {sent} of {n}");
                    }
                    let r = Run {
                        variant,
                        handlers,
                        added_ms,
                        rep,
                        wall_ms: wall * 1e3,
                        msgs_per_s: handled as f64 / wall,
                        handled,
                        left_in_queue,
                        calls,
                        client_cpu_ms: client_cpu,
                        moto_cpu_ms: moto_cpu,
                        moto_app_ms: moto_app,
                        receives,
                        receive_rt_ms,
                        delete_rt_ms,
                        probe_rt_ms,
                    };
                    eprintln!(
                    "{variant} h={handlers} +{added_ms} ms rep {rep}: {:.0} msg/s, {} calls, client CPU {:.0} ms, moto CPU {:.0} ms, left {} (load {})",
                    r.msgs_per_s,
                    calls,
                    client_cpu,
                    moto_cpu,
                    left_in_queue,
                    tasksub_bench::sys::loadavg()
                );
                    runs.push(r);
                    tap.set_tag("cleanup");
                    sqs.delete_queue().queue_url(&url).send().await?;
                }
            }
        }
    }

    let mut rows = Vec::new();
    let mut bounds = Vec::new();
    for &handlers in &args.handlers {
        for &added_ms in &levels {
            let pick = |v: &str| -> Vec<&Run> {
                runs.iter()
                    .filter(|r| r.variant == v && r.handlers == handlers && r.added_ms == added_ms)
                    .collect()
            };
            let (naive, ours) = (pick("naive"), pick("tasksub-client"));
            let med = |rs: &[&Run], f: fn(&Run) -> f64| median(&rs.iter().map(|r| f(r)).collect::<Vec<_>>());
            // Runs are pushed in pairs (same handlers, level and repetition), so zip pairs them.
            let paired: Vec<f64> = ours
                .iter()
                .zip(&naive)
                .map(|(o, v)| o.msgs_per_s / v.msgs_per_s)
                .collect();
            let moto_bound = |rs: &[&Run]| 1e6 / med(rs, |r| r.moto_cpu_ms * 1e3 / r.handled.max(1) as f64);
            // Latency bounds from the idle per-call round trip: naive, every handler one message per
            // receive + delete; tasksub-client, one ReceiveMessage in flight at a time, of at most
            // min(10, handlers) messages (deletes are batched off the receive path).
            let rt = median(&naive.iter().chain(&ours).map(|r| r.probe_rt_ms).collect::<Vec<_>>());
            let naive_latency_bound = handlers as f64 * 1e3 / (2.0 * rt);
            let ours_latency_bound = handlers.min(10) as f64 * 1e3 / rt;
            for (label, rs) in [("naive receive-one/delete-one", &naive), ("**tasksub-client**", &ours)] {
                let per_msg = |f: fn(&Run) -> f64| med(rs, f);
                let is_ours = std::ptr::eq(rs, &ours);
                rows.push(vec![
                    label.to_owned(),
                    handlers.to_string(),
                    added_ms.to_string(),
                    format!("{:.0}", per_msg(|r| r.msgs_per_s)),
                    format!("{:.2}", per_msg(|r| r.calls as f64 / r.handled.max(1) as f64)),
                    format!("{:.1}", per_msg(|r| r.handled as f64 / r.receives.max(1) as f64)),
                    format!(
                        "{} / {}",
                        ms(per_msg(|r| r.receive_rt_ms)),
                        ms(per_msg(|r| r.delete_rt_ms))
                    ),
                    format!("{:.0}", per_msg(|r| r.client_cpu_ms * 1e3 / r.handled.max(1) as f64)),
                    format!("{:.0}", per_msg(|r| r.moto_cpu_ms * 1e3 / r.handled.max(1) as f64)),
                    if is_ours {
                        format!(
                            "{} ({} paired)",
                            ratio(med(&ours, |r| r.msgs_per_s) / med(&naive, |r| r.msgs_per_s)),
                            ratio(median(&paired))
                        )
                    } else {
                        String::new()
                    },
                    rs.iter()
                        .map(|r| r.left_in_queue.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
            bounds.push(vec![
                handlers.to_string(),
                added_ms.to_string(),
                ms(rt),
                format!("{:.0} / {:.0}", naive_latency_bound, ours_latency_bound),
                ratio(ours_latency_bound / naive_latency_bound),
                format!("{:.0} / {:.0}", moto_bound(&naive), moto_bound(&ours)),
                ratio(moto_bound(&ours) / moto_bound(&naive)),
                format!(
                    "{} ({} paired)",
                    ratio(med(&ours, |r| r.msgs_per_s) / med(&naive, |r| r.msgs_per_s)),
                    ratio(median(&paired))
                ),
            ]);
        }
    }
    let mut doc = String::new();
    if levels.iter().any(|&l| l > 0) {
        doc.push_str(&format!(
            "**Added latency: {} per consumer request, the same for both consumers**: the timed moto holds every \
             request for that long in its own serving thread before moto handles it (requests in flight together \
             wait together); the producer's requests are not delayed.\n\n",
            levels.iter().map(|l| format!("{l} ms")).collect::<Vec<_>>().join(", ")
        ));
    }
    doc.push_str(&format!(
        "{} messages per run through a queue kept about {} messages deep by a producer; {} repetitions per cell, \
         alternating order (and levels); each run on a fresh queue on one timed moto. Machine: {}; load average \
         before: {load_before}, after: {}.\n\n",
        args.messages,
        args.backlog,
        args.reps,
        tasksub_bench::machine(),
        tasksub_bench::sys::loadavg()
    ));
    doc.push_str(&table(
        &[
            "consumer",
            "handlers",
            "added ms",
            "msgs/s (median)",
            "AWS calls / msg",
            "msgs / receive",
            "round trip p50 ms: receive / delete",
            "client CPU µs / msg",
            "moto CPU µs / msg",
            "speed-up",
            "left in queue",
        ],
        &rows,
    ));
    doc.push_str(
        "\n**Bounds (msgs/s, from the same runs).** `call`: the per-call baseline, median of 10 sequential \
         GetQueueUrl round trips before each run, nothing else in flight (ms). `latency`: naive = handlers ÷ (2 × \
         call), every handler waits for a receive and a delete per message; tasksub-client = min(10, handlers) ÷ \
         call, it keeps one ReceiveMessage in flight, asking for at most as many messages as it has free \
         handlers (≤ 10), and deletes in batches off the receive path. `moto`: one core ÷ moto CPU per message \
         (moto serves under one GIL). The measured rate is at most the smaller of the two; the round trips in \
         the table above are longer than `call` by the time requests queue for moto.\n\n",
    );
    doc.push_str(&table(
        &[
            "handlers",
            "added ms",
            "call ms",
            "latency bound: naive / tasksub-client",
            "ratio of latency bounds",
            "moto bound: naive / tasksub-client",
            "ratio of moto bounds",
            "measured speed-up",
        ],
        &bounds,
    ));
    let name = if levels.iter().any(|&l| l > 0) {
        "client-latency"
    } else {
        "client"
    };
    let json = json!({"machine": tasksub_bench::machine(), "added_latency_ms": levels, "runs": runs});
    println!("{doc}");
    if !args.dry_run {
        tasksub_bench::report::publish(name, &doc, &json)?;
    }
    Ok(())
}
