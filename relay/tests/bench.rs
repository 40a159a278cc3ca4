//! Relay vs embedded client on one workload (not part of the normal test run: `#[ignore]`).
//!
//! ```text
//! cargo test --release -p tasksub-relay --test bench -- --ignored --nocapture
//! RELAY_BENCH_MESSAGES=2000 RELAY_BENCH_ROUNDS=2   # defaults
//! ```
//! Each run: a fresh queue on moto pre-filled with N small messages, then one consumer with 10 in flight
//! drains it. `embedded`: tasksub-client in this process with a handler that returns `Ok` at once.
//! `relay`: the `tasksub-relay` binary POSTing to a hyper app in this process that answers 200 at once.
//! Throughput is N over the time from the first to the N-th handled message; CPU is user+system time
//! (`/proc/<pid>/stat`, 10 ms ticks) of the consumer process over the same window (for the relay, the
//! app's CPU, in this process, is reported apart), and of moto when it can be found.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_client::{CancellationToken, Client, Message};
use tasksub_tests::moto::{unique, Moto};
use tokio::process::Command;

const TASK_DOC: &str = "../fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json";
const CONCURRENCY: usize = 10;

/// CPU seconds (user + system) of a process, from /proc (CLK_TCK = 100).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime), counted from 3 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The moto_server process serving the endpoint's port, if it runs on this machine.
fn moto_pid() -> Option<String> {
    let port = Moto::get().endpoint().rsplit(':').next()?.to_owned();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a.contains("moto_server")) && args.iter().any(|a| a == &port) {
            return Some(name);
        }
    }
    None
}

struct Setup {
    sdk: aws_config::SdkConfig,
    prefix: String,
    metadata: MetadataServer,
}

async fn setup(n: usize) -> Setup {
    let sdk = Moto::get().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let task_id = format!("{:032x}", fastrand::u128(..));
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/bench/{task_id}");
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(TASK_DOC)).unwrap();
    let metadata = MetadataServer::serve_task(with_task_arn(&doc, &arn).unwrap())
        .await
        .unwrap();
    let prefix = format!("tasksub-{}-", unique("bench"));
    let url = sqs
        .create_queue()
        .queue_name(format!("{prefix}{task_id}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(format!(r#"{{"n":{i},"kind":"bench"}}"#))
                    .build()
                    .unwrap()
            })
            .collect();
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
    }
    Setup { sdk, prefix, metadata }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    consumer_cpu: f64,
    app_cpu: f64,
    moto_cpu: f64,
}

/// Counts handled messages, recording the first and the N-th.
struct Clock {
    count: AtomicU64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    n: u64,
    done: tokio::sync::Notify,
}

impl Clock {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Self {
            count: AtomicU64::new(0),
            first: Mutex::new(None),
            last: Mutex::new(None),
            n: n as u64,
            done: tokio::sync::Notify::new(),
        })
    }
    fn tick(&self) {
        let now = Instant::now();
        let c = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if c == 1 {
            *self.first.lock().unwrap() = Some(now);
        }
        if c == self.n {
            *self.last.lock().unwrap() = Some(now);
            self.done.notify_one();
        }
    }
    async fn wait(&self) -> f64 {
        while self.count.load(Ordering::SeqCst) < self.n {
            let _ = tokio::time::timeout(Duration::from_millis(200), self.done.notified()).await;
        }
        let (first, last) = (self.first.lock().unwrap().unwrap(), self.last.lock().unwrap().unwrap());
        (last - first).as_secs_f64()
    }
}

async fn embedded(n: usize) -> Sample {
    let s = setup(n).await;
    let clock = Clock::new(n);
    let client = Client::builder()
        .env_lookup(|_| None)
        .metadata_uri(s.metadata.uri())
        .queue_prefix(&s.prefix)
        .max_concurrency(CONCURRENCY)
        .handle_sigterm(false)
        .build(&s.sdk)
        .unwrap();
    let stop = CancellationToken::new();
    let me = std::process::id().to_string();
    let moto = moto_pid();
    let (cpu0, moto0) = (cpu_seconds(&me), moto.as_deref().map_or(0.0, cpu_seconds));
    let c = clock.clone();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move {
            client
                .run(
                    move |_m: Message| {
                        c.tick();
                        async { Ok::<(), std::io::Error>(()) }
                    },
                    stop,
                )
                .await
        }
    });
    let secs = clock.wait().await;
    let (cpu1, moto1) = (cpu_seconds(&me), moto.as_deref().map_or(0.0, cpu_seconds));
    stop.cancel();
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.succeeded, n as u64);
    Sample {
        secs,
        consumer_cpu: cpu1 - cpu0,
        app_cpu: 0.0,
        moto_cpu: moto1 - moto0,
    }
}

async fn relay(n: usize) -> Sample {
    let s = setup(n).await;
    let clock = Clock::new(n);
    let healthy = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = tokio::spawn({
        let (clock, healthy) = (clock.clone(), healthy.clone());
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (clock, healthy) = (clock.clone(), healthy.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let status = if req.uri().path() == "/health" {
                            if healthy.load(Ordering::SeqCst) {
                                StatusCode::OK
                            } else {
                                StatusCode::SERVICE_UNAVAILABLE
                            }
                        } else {
                            clock.tick();
                            StatusCode::OK
                        };
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    });
    let health_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tasksub-relay"))
        .env_remove("AWS_PROFILE")
        .env_remove("TASKSUB_TABLE")
        .env("AWS_ENDPOINT_URL", Moto::get().endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("ECS_CONTAINER_METADATA_URI_V4", s.metadata.uri())
        .env("TASKSUB_QUEUE_PREFIX", &s.prefix)
        .env("TASKSUB_RELAY_TARGET", format!("http://127.0.0.1:{port}/messages"))
        .env("TASKSUB_RELAY_APP_HEALTH", format!("http://127.0.0.1:{port}/health"))
        .env("TASKSUB_RELAY_LISTEN", format!("127.0.0.1:{health_port}"))
        .env("TASKSUB_RELAY_CONCURRENCY", CONCURRENCY.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await; // started, waiting for the app
    let me = std::process::id().to_string();
    let moto = moto_pid();
    let (cpu0, app0, moto0) = (
        cpu_seconds(&pid),
        cpu_seconds(&me),
        moto.as_deref().map_or(0.0, cpu_seconds),
    );
    healthy.store(true, Ordering::SeqCst);
    let secs = clock.wait().await;
    let (cpu1, app1, moto1) = (
        cpu_seconds(&pid),
        cpu_seconds(&me),
        moto.as_deref().map_or(0.0, cpu_seconds),
    );
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    app.abort();
    Sample {
        secs,
        consumer_cpu: cpu1 - cpu0,
        app_cpu: app1 - app0,
        moto_cpu: moto1 - moto0,
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: cargo test --release -p tasksub-relay --test bench -- --ignored --nocapture"]
async fn relay_against_the_embedded_client() {
    let n = env_usize("RELAY_BENCH_MESSAGES", 2000);
    let rounds = env_usize("RELAY_BENCH_ROUNDS", 2);
    let mut rows: Vec<(&str, Sample)> = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first.
        let order: [&str; 2] = if round % 2 == 0 {
            ["embedded", "relay"]
        } else {
            ["relay", "embedded"]
        };
        for which in order {
            let sample = if which == "embedded" {
                embedded(n).await
            } else {
                relay(n).await
            };
            println!("round {round} {which}: {sample:?}");
            rows.push((which, sample));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{n} messages per run, {CONCURRENCY} in flight, {rounds} round(s); load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("| consumer | run | msgs/s | consumer CPU µs/msg | app CPU µs/msg | moto CPU µs/msg |");
    println!("|---|---|---|---|---|---|");
    for (i, (which, s)) in rows.iter().enumerate() {
        let per = |cpu: f64| (cpu * 1e6 / n as f64).round();
        println!(
            "| {which} | {} | {:.0} | {} | {} | {} |",
            i / 2 + 1,
            n as f64 / s.secs,
            per(s.consumer_cpu),
            if *which == "relay" {
                per(s.app_cpu).to_string()
            } else {
                "(in handler)".into()
            },
            per(s.moto_cpu),
        );
    }
}
