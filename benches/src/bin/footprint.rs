//! Lambda footprint: release `bootstrap` sizes (x86_64 and arm64, built by `cargo lambda build`), and the
//! init time, first and warm invocation times and peak RSS of the real binaries driven through a local
//! Lambda Runtime API served here, against the Python reference handlers driven the same way
//! (`benches/baseline/runtime_loop.py`). Everything runs against one moto.
//!
//! Init = process spawn → its first `GET /2018-06-01/runtime/invocation/next`. Peak RSS = `VmHWM` of
//! `/proc/<pid>/status`, read while the process waits for its next event after the last one.
//!
//! Run: `scripts/bench footprint` (builds the bootstraps first).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};
use tasksub_bench::events::{cluster_arn, Task};
use tasksub_bench::moto::Moto;
use tasksub_bench::report::{ms, table};
use tasksub_bench::stats::median;
use tasksub_bench::sys::status_kib;
use tasksub_bench::{create_table, emulator_env, repo_root, ACCOUNT, REGION};
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(about = "Lambda footprint: bootstrap size, init time, peak RSS; ours vs the Python reference")]
struct Args {
    /// cargo-lambda output of the x86_64 build (`<dir>/<function>/bootstrap`).
    #[arg(long, default_value = "target/bench-lambda/x86_64")]
    x86: PathBuf,
    /// cargo-lambda output of the arm64 build.
    #[arg(long, default_value = "target/bench-lambda/arm64")]
    arm: PathBuf,
    /// Build times and notes written by scripts/bench (JSON).
    #[arg(long, default_value = "benches/results/build.json")]
    build_info: PathBuf,
    /// Cold starts per function.
    #[arg(long, default_value_t = 10)]
    cold_starts: usize,
    /// Invocations per cold start (the first one is the cold invocation).
    #[arg(long, default_value_t = 10)]
    invocations: usize,
    /// Do not write results or BENCHMARKS.md.
    #[arg(long)]
    dry_run: bool,
}

const FUNCTIONS: [&str; 2] = ["on-task-running", "on-task-stopped"];

/// What the runtime API saw.
#[derive(Debug)]
enum Seen {
    Next(Instant),
    Response(Instant, Bytes),
    Error(Instant, Bytes),
    InitError(Bytes),
}

struct Api {
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    seen: mpsc::UnboundedSender<Seen>,
}

fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .expect("response")
}

async fn handle(req: Request<hyper::body::Incoming>, api: Arc<Api>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let _ = api.seen.send(Seen::Next(Instant::now()));
        let next = api.events.lock().await.recv().await;
        let Some((id, event)) = next else {
            // No more events: hold the request like Lambda does while the sandbox is frozen.
            std::future::pending::<()>().await;
            unreachable!()
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        let resp = Response::builder()
            .status(200)
            .header("Content-Type", "application/json")
            .header("Lambda-Runtime-Aws-Request-Id", &id)
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench"),
            )
            .header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000;Sampled=0",
            )
            .body(Full::new(Bytes::from(event.to_string())))
            .expect("response");
        return Ok(resp);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let now = Instant::now();
    if path.ends_with("/response") {
        let _ = api.seen.send(Seen::Response(now, body));
    } else if path.starts_with("/2018-06-01/runtime/init/error") {
        let _ = api.seen.send(Seen::InitError(body));
    } else if path.ends_with("/error") {
        let _ = api.seen.send(Seen::Error(now, body));
    } else {
        return Ok(respond(404, "not found"));
    }
    Ok(respond(202, r#"{"status":"OK"}"#))
}

/// A runtime API on a free port for one process.
async fn runtime_api() -> anyhow::Result<(
    String,
    mpsc::UnboundedSender<(String, Value)>,
    mpsc::UnboundedReceiver<Seen>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let api = Arc::new(Api {
        events: tokio::sync::Mutex::new(event_rx),
        seen: seen_tx,
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let api = api.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(req, api.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, event_tx, seen_rx))
}

#[derive(Debug, Clone, Serialize)]
struct ColdStart {
    init_ms: f64,
    first_invoke_ms: f64,
    warm_invoke_ms: Vec<f64>,
    rss_after_init_kib: u64,
    peak_rss_kib: u64,
    errors: Vec<String>,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn recv(seen: &mut mpsc::UnboundedReceiver<Seen>, limit: Duration) -> anyhow::Result<Seen> {
    tokio::time::timeout(limit, seen.recv())
        .await
        .context("timed out waiting for the function")?
        .context("runtime API closed")
}

/// Spawns `cmd`, serves it `events` through the runtime API, measures.
async fn drive(mut cmd: Command, events: Vec<Value>) -> anyhow::Result<ColdStart> {
    let (addr, event_tx, mut seen) = runtime_api().await?;
    cmd.env("AWS_LAMBDA_RUNTIME_API", &addr)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let t0 = Instant::now();
    let child = Proc(cmd.spawn().context("spawn the function")?);
    let pid = child.0.id();
    let init = match recv(&mut seen, Duration::from_secs(60)).await? {
        Seen::Next(at) => at - t0,
        Seen::InitError(body) => bail!("init error: {}", String::from_utf8_lossy(&body)),
        other => bail!("unexpected {other:?} before the first next"),
    };
    let rss_after_init = status_kib(pid, "VmHWM").unwrap_or(0);
    let mut times = Vec::new();
    let mut errors = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let sent = Instant::now();
        event_tx.send((format!("req-{i}"), event))?;
        match recv(&mut seen, Duration::from_secs(60)).await? {
            Seen::Response(at, body) => {
                times.push((at - sent).as_secs_f64() * 1e3);
                let text = String::from_utf8_lossy(&body);
                if !text.contains("\"applied\"") {
                    errors.push(text.chars().take(200).collect());
                }
            }
            Seen::Error(at, body) => {
                times.push((at - sent).as_secs_f64() * 1e3);
                errors.push(String::from_utf8_lossy(&body).chars().take(200).collect());
            }
            other => bail!("unexpected {other:?}"),
        }
        match recv(&mut seen, Duration::from_secs(60)).await? {
            Seen::Next(_) => {}
            other => bail!("unexpected {other:?} instead of the next request"),
        }
    }
    let peak = status_kib(pid, "VmHWM").unwrap_or(0);
    drop(child);
    Ok(ColdStart {
        init_ms: init.as_secs_f64() * 1e3,
        first_invoke_ms: times.first().copied().unwrap_or(f64::NAN),
        warm_invoke_ms: times.get(1..).unwrap_or_default().to_vec(),
        rss_after_init_kib: rss_after_init,
        peak_rss_kib: peak,
        errors,
    })
}

fn lambda_env(cmd: &mut Command, name: &str, endpoint: &str, extra: &[(&str, String)]) {
    cmd.env_clear()
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("LANG", "C.UTF-8")
        .env("TZ", ":UTC");
    for (k, v) in emulator_env(endpoint) {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
}

fn file_size(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// Size of the bootstrap zipped as a Lambda deployment package (`zip -9`).
fn zipped_size(p: &Path) -> Option<u64> {
    let out = std::env::temp_dir().join(format!("tasksub-bench-{}.zip", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let ok = Command::new("zip")
        .args(["-q", "-9", "-j"])
        .arg(&out)
        .arg(p)
        .status()
        .ok()?
        .success();
    let size = if ok { file_size(&out) } else { None };
    let _ = std::fs::remove_file(&out);
    size
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB ({:.2} MB)", bytes as f64 / 1048576.0, bytes as f64 / 1e6)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = repo_root();
    let abs = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { root.join(p) };
    let (x86, arm) = (abs(&args.x86), abs(&args.arm));
    let build: Value = std::fs::read_to_string(abs(&args.build_info))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(json!({}));

    // Sizes.
    let mut size_rows = Vec::new();
    let mut sizes = BTreeMap::new();
    for (arch, dir) in [("x86_64", &x86), ("arm64", &arm)] {
        for f in FUNCTIONS.iter().chain(&["sweeper"]) {
            let p = dir.join(f).join("bootstrap");
            if *f == "sweeper" && !p.exists() {
                continue;
            }
            let note = build[arch]["note"].as_str().unwrap_or("").to_owned();
            match file_size(&p) {
                Some(bytes) => {
                    let zipped = zipped_size(&p);
                    sizes.insert(format!("{arch}/{f}"), json!({"bytes": bytes, "zipped": zipped}));
                    size_rows.push(vec![
                        arch.to_owned(),
                        (*f).to_owned(),
                        mib(bytes),
                        zipped.map(mib).unwrap_or_default(),
                        if bytes <= 8_000_000 {
                            "yes".into()
                        } else {
                            "**no**".into()
                        },
                        build[arch]["seconds"]
                            .as_f64()
                            .map(|s| format!("{s:.0} s"))
                            .unwrap_or_default(),
                    ]);
                }
                None => size_rows.push(vec![
                    arch.to_owned(),
                    (*f).to_owned(),
                    "not built".into(),
                    String::new(),
                    String::new(),
                    note,
                ]),
            }
        }
    }

    // Runtime: the x86_64 binaries (this machine's architecture) and the Python reference.
    let moto = Moto::start()?;
    let (sdk, _tap) = tasksub_bench::tap::sdk_config(moto.endpoint()).await?;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("bench-footprint")
        .send()
        .await?
        .topic_arn()
        .context("arn")?
        .to_owned();
    create_table(&ddb, "bench-footprint", "taskId").await?;
    create_table(&ddb, "SQSContainerMappping", "id").await?;
    let ours_env = vec![
        ("TASKSUB_TOPIC_ARN", topic.clone()),
        ("TASKSUB_ACCOUNT_ID", "123456789012".to_owned()),
        ("TASKSUB_TABLE", "bench-footprint".to_owned()),
        ("TASKSUB_CLUSTERS", cluster_arn()),
    ];
    let py_env = vec![
        ("TOPIC_NAME", "SNS-DynamicSubscription-Topic".to_owned()),
        ("SQS_CONTAINER_MAPPING_TABLE", "SQSContainerMappping".to_owned()),
        ("PYTHONPATH", tasksub_bench::baseline("").display().to_string()),
        ("PYTHONDONTWRITEBYTECODE", "1".to_owned()),
    ];
    let have_rust = FUNCTIONS.iter().all(|f| x86.join(f).join("bootstrap").exists());
    if !have_rust {
        eprintln!(
            "no x86_64 bootstraps under {}: runtime rows for tasksub are skipped",
            x86.display()
        );
    }
    let mut runs: BTreeMap<&str, Vec<ColdStart>> = BTreeMap::new();
    for rep in 0..args.cold_starts {
        // Start functions first (they provision the tasks the stop functions tear down), rotating
        // which language goes first.
        let ours_tasks: Vec<Task> = (0..args.invocations).map(|_| Task::new()).collect();
        let py_tasks: Vec<Task> = (0..args.invocations).map(|_| Task::new()).collect();
        let mut order: Vec<(&str, bool)> = vec![("ours", true), ("python", true)];
        if rep % 2 == 1 {
            order.reverse();
        }
        for phase in ["start", "stop"] {
            for &(who, _) in &order {
                let (label, cmd, events): (&str, Command, Vec<Value>) = match (who, phase) {
                    ("ours", "start") | ("ours", "stop") if !have_rust => continue,
                    ("ours", _) => {
                        let f = if phase == "start" { FUNCTIONS[0] } else { FUNCTIONS[1] };
                        let mut c = Command::new(x86.join(f).join("bootstrap"));
                        lambda_env(&mut c, f, moto.endpoint(), &ours_env);
                        let ev = ours_tasks
                            .iter()
                            .map(|t| if phase == "start" { t.running() } else { t.stopped() })
                            .collect();
                        (
                            if phase == "start" {
                                "ours/on-task-running"
                            } else {
                                "ours/on-task-stopped"
                            },
                            c,
                            ev,
                        )
                    }
                    _ => {
                        let h = if phase == "start" {
                            "start_handler"
                        } else {
                            "stop_handler"
                        };
                        let mut c = Command::new(tasksub_bench::venv_python());
                        c.arg(tasksub_bench::baseline("runtime_loop.py")).args(["reference", h]);
                        lambda_env(&mut c, h, moto.endpoint(), &py_env);
                        let ev = py_tasks
                            .iter()
                            .map(|t| if phase == "start" { t.running() } else { t.stopped() })
                            .collect();
                        (
                            if phase == "start" {
                                "reference/start"
                            } else {
                                "reference/stop"
                            },
                            c,
                            ev,
                        )
                    }
                };
                let mut r = drive(cmd, events).await?;
                if who == "python" {
                    // The Python loop answers `null`: count only runtime-API errors for it.
                    r.errors.retain(|e| e != "null");
                }
                eprintln!(
                    "{label}: init {:.1} ms, first {:.1} ms, warm {:.1} ms, peak {} KiB, errors {}",
                    r.init_ms,
                    r.first_invoke_ms,
                    median(&r.warm_invoke_ms),
                    r.peak_rss_kib,
                    r.errors.len()
                );
                runs.entry(label).or_default().push(r);
            }
        }
    }

    let mut rows = Vec::new();
    for (label, rs) in &runs {
        let init: Vec<f64> = rs.iter().map(|r| r.init_ms).collect();
        let first: Vec<f64> = rs.iter().map(|r| r.first_invoke_ms).collect();
        let warm: Vec<f64> = rs.iter().flat_map(|r| r.warm_invoke_ms.clone()).collect();
        let peak: Vec<f64> = rs.iter().map(|r| r.peak_rss_kib as f64).collect();
        let after_init: Vec<f64> = rs.iter().map(|r| r.rss_after_init_kib as f64).collect();
        let errors: usize = rs.iter().map(|r| r.errors.len()).sum();
        rows.push(vec![
            (*label).to_owned(),
            rs.len().to_string(),
            format!(
                "{} (max {})",
                ms(median(&init)),
                ms(init.iter().copied().fold(0.0, f64::max))
            ),
            ms(median(&first)),
            ms(median(&warm)),
            format!("{:.1}", median(&after_init) / 1024.0),
            format!("{:.1}", median(&peak) / 1024.0),
            errors.to_string(),
        ]);
    }
    let mut doc = String::new();
    doc.push_str(&format!(
        "Machine: {}. Bootstraps from `cargo lambda build --release` (workspace release profile: fat LTO, 1 codegen \
         unit, opt-level 3, stripped, panic=abort).\n\n",
        tasksub_bench::machine()
    ));
    doc.push_str(&table(
        &[
            "arch",
            "function",
            "bootstrap",
            "zipped (zip -9)",
            "≤ 8 MB",
            "build time",
        ],
        &size_rows,
    ));
    doc.push_str(&format!(
        "\nThrough a local Runtime API ({} cold starts per function, {} events each; x86_64 binaries; Python \
         3.11 + boto3 {} for the reference, in a minimal runtime loop). `init` = spawn → first `/next`; \
         `first` = the cold invocation (connections, credentials); RSS from `/proc/<pid>/status`.\n\n",
        args.cold_starts,
        args.invocations,
        boto3_version()
    ));
    doc.push_str(&table(
        &[
            "function",
            "cold starts",
            "init ms p50 (max)",
            "first invoke ms p50",
            "warm invoke ms p50",
            "RSS after init MiB",
            "peak RSS MiB",
            "errors",
        ],
        &rows,
    ));
    let json = json!({
        "machine": tasksub_bench::machine(),
        "sizes": sizes,
        "build": build,
        "runs": runs,
    });
    println!("{doc}");
    if !args.dry_run {
        tasksub_bench::report::publish("footprint", &doc, &json)?;
    }
    Ok(())
}

fn boto3_version() -> String {
    Command::new(tasksub_bench::venv_python())
        .args(["-c", "import boto3; print(boto3.__version__)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
