//! The real Lambda binaries, driven through a minimal Lambda Runtime API on 127.0.0.1, with moto
//! behind `AWS_ENDPOINT_URL`: proves the wiring the unit tests cannot (settings at cold start, the
//! runtime loop, responses and typed errors, JSON logs and EMF lines on stdout).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tasksub_tests::events::Task;
use tasksub_tests::moto::{unique, Moto};
use tasksub_tests::world::create_table;

/// What the runtime API saw come back.
#[derive(Debug, Clone)]
struct Reply {
    ok: bool,
    body: Value,
}

#[derive(Default)]
struct Api {
    events: VecDeque<(String, Value)>,
    replies: Vec<Reply>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
}

fn serve(conn: TcpStream, api: Arc<Mutex<Api>>) {
    let mut writer = conn.try_clone().expect("clone stream");
    let mut reader = BufReader::new(conn);
    while let Some((method, path, body)) = read_request(&mut reader) {
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = loop {
                if let Some(e) = api.lock().unwrap().events.pop_front() {
                    break e;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let headers = [
                ("Lambda-Runtime-Aws-Request-Id", next.0.clone()),
                ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:t".into(),
                ),
                (
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-00000000-000000000000000000000000".into(),
                ),
                ("Content-Type", "application/json".into()),
            ];
            respond(&mut writer, "200 OK", &headers, next.1.to_string().as_bytes());
        } else if method == "POST" && (path.ends_with("/response") || path.ends_with("/error")) {
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            api.lock().unwrap().replies.push(Reply {
                ok: path.ends_with("/response"),
                body,
            });
            respond(&mut writer, "202 Accepted", &[], b"{}");
        } else {
            respond(&mut writer, "404 Not Found", &[], b"{}");
        }
    }
}

struct Runtime {
    api: Arc<Mutex<Api>>,
    addr: String,
}

impl Runtime {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let api = Arc::new(Mutex::new(Api::default()));
        let shared = Arc::clone(&api);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let api = Arc::clone(&shared);
                std::thread::spawn(move || serve(conn, api));
            }
        });
        Self { api, addr }
    }

    fn invoke(&self, event: Value) -> Reply {
        let before = self.api.lock().unwrap().replies.len();
        self.api.lock().unwrap().events.push_back((unique("req"), event));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.api.lock().unwrap().replies.get(before) {
                return r.clone();
            }
            assert!(Instant::now() < deadline, "no reply from the function");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn spawn(bin: &str, runtime: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "tasksub-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "stream")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "group")
        .env("AWS_ENDPOINT_URL", Moto::get().endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn the function")
}

fn output_of(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn deployment() -> Vec<(&'static str, String)> {
    let sdk = Moto::get().sdk_config().await;
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name(unique("rt-topic"))
        .send()
        .await
        .unwrap();
    let table = unique("rt-records");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    vec![
        ("TASKSUB_TOPIC_ARN", topic.topic_arn().unwrap().to_owned()),
        ("TASKSUB_ACCOUNT_ID", "123456789012".into()),
        ("TASKSUB_TABLE", table),
        ("TASKSUB_CLUSTERS", "prod".into()),
        ("TASKSUB_QUEUE_PREFIX", format!("tasksub-{}-", unique("rt"))),
        // Everything at trace: even then no credential (not even the access key ID) may reach the logs.
        ("RUST_LOG", "trace".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_functions_run_the_lifecycle_through_the_runtime_api() {
    let env = deployment().await;
    let task = Task::new("prod");
    let (start, stop_initiated, stopped) = task.lifecycle();

    let rt = Runtime::start();
    let running = spawn(env!("CARGO_BIN_EXE_on-task-running"), &rt.addr, &env);
    let r = rt.invoke(start[0].clone());
    assert!(r.ok, "{:?}", r.body);
    assert_eq!(r.body["state"], "READY");
    assert_eq!(rt.invoke(start[2].clone()).body["reason"], "already-ready");
    assert_eq!(rt.invoke(stopped[0].clone()).body["reason"], "wrong-function");
    let bad = rt.invoke(serde_json::json!({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {}}));
    assert!(!bad.ok);
    assert_eq!(bad.body["errorType"], "tasksub.Permanent.MalformedEvent");
    let logs = output_of(running);

    let rt = Runtime::start();
    let stopping = spawn(env!("CARGO_BIN_EXE_on-task-stopped"), &rt.addr, &env);
    assert_eq!(rt.invoke(stop_initiated[0].clone()).body["state"], "DRAINING");
    assert_eq!(rt.invoke(stopped[0].clone()).body["state"], "GONE");
    let logs = logs + &output_of(stopping);

    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["action"] == "claim" && l["fields"]["task_id"] == task.id.as_str()),
        "JSON logs name the action and the task"
    );
    assert!(
        lines.iter().any(|l| l.get("ProvisioningLatency").is_some()),
        "EMF line for provisioning"
    );
    assert!(
        lines.iter().any(|l| l.get("TeardownLatency").is_some()),
        "EMF line for teardown"
    );
    assert!(!logs.contains("testing"), "credentials must never be logged");
    let ours: Vec<&Value> = lines.iter().filter(|l| l["fields"]["task_id"].is_string()).collect();
    assert!(!ours.is_empty());
    for l in ours {
        assert!(
            l["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "every line of an invocation names its request: {l}"
        );
    }
}

#[test]
fn a_missing_setting_fails_the_cold_start_and_names_it() {
    let rt = Runtime::start();
    let child = spawn(
        env!("CARGO_BIN_EXE_on-task-running"),
        &rt.addr,
        &[("TASKSUB_TABLE", "t".into())],
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TASKSUB_TOPIC_ARN"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_removes_an_orphan_on_a_scheduled_invocation() {
    let mut env = deployment().await;
    env.push(("TASKSUB_SWEEP_GRACE_SECONDS", "0".into()));
    let prefix = env
        .iter()
        .find(|(k, _)| *k == "TASKSUB_QUEUE_PREFIX")
        .unwrap()
        .1
        .clone();
    let sqs = aws_sdk_sqs::Client::new(&Moto::get().sdk_config().await);
    let orphan = format!("{prefix}0123456789abcdef0123456789abcdef");
    // Ours by tasksub's tags (a name proves nothing): the task, and the default stack.
    let task_arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";
    sqs.create_queue()
        .queue_name(&orphan)
        .tags("tasksub:task-arn", task_arn)
        .tags("tasksub:stack", "tasksub")
        .send()
        .await
        .unwrap();

    let rt = Runtime::start();
    let sweeper = spawn(env!("CARGO_BIN_EXE_sweeper"), &rt.addr, &env);
    let scheduled = serde_json::json!({"version": "0", "id": "s1", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-24T12:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {}});
    let r = rt.invoke(scheduled.clone());
    assert!(r.ok, "{:?}", r.body);
    assert_eq!(r.body["orphansRemoved"], 1, "{:#}", r.body);
    assert_eq!(r.body["missingClusters"][0], "prod", "{:#}", r.body);
    assert!(
        sqs.get_queue_url().queue_name(&orphan).send().await.is_err(),
        "the orphan queue is gone"
    );
    let again = rt.invoke(scheduled);
    assert_eq!(again.body["orphansFound"], 0);
    let logs = output_of(sweeper);
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "sweep summary" && l["fields"]["orphans_removed"] == 1),
        "one structured summary line per sweep:\n{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["Function"] == "sweeper" && l["OrphansRemoved"] == 1.0),
        "EMF line for the sweep:\n{logs}"
    );
}

#[test]
fn a_bad_sweep_setting_fails_the_sweepers_cold_start_and_names_it() {
    let rt = Runtime::start();
    let env = [
        ("TASKSUB_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t".to_owned()),
        ("TASKSUB_ACCOUNT_ID", "123456789012".to_owned()),
        ("TASKSUB_TABLE", "records".to_owned()),
        ("TASKSUB_CLUSTERS", "prod".to_owned()),
        ("TASKSUB_SWEEP_GRACE_SECONDS", "soon".to_owned()),
    ];
    let out = spawn(env!("CARGO_BIN_EXE_sweeper"), &rt.addr, &env)
        .wait_with_output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TASKSUB_SWEEP_GRACE_SECONDS"), "{text}");
}
