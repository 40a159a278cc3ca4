//! The relay binary on moto, in front of a real HTTP app (`tests/app.py`, run with `python3`).
//!
//! Each test starts its own metadata stand-in, queue (and topic), app and `tasksub-relay` process, with
//! its own prefix, so the tests run in parallel on one emulator. The relay is the built binary
//! (`CARGO_BIN_EXE_tasksub-relay`), configured only through its environment, and stopped with
//! `kill -TERM` as ECS does.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_tests::moto::{unique, Moto};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const TASK_DOC: &str = "../fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json";

fn manifest(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One test's world: moto, a task with its metadata stand-in, a unique prefix.
struct World {
    sdk: SdkConfig,
    sqs: aws_sdk_sqs::Client,
    prefix: String,
    queue_name: String,
    metadata: MetadataServer,
    label: String,
}

impl World {
    async fn new(label: &str) -> Self {
        let sdk = Moto::get().sdk_config().await;
        // ECS task IDs are 32 lowercase hex characters.
        let task_id = &format!("{:032x}", fastrand::u128(..));
        let task_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/relay/{task_id}");
        let doc = std::fs::read_to_string(manifest(TASK_DOC)).unwrap();
        let metadata = MetadataServer::serve_task(with_task_arn(&doc, &task_arn).unwrap())
            .await
            .unwrap();
        let prefix = format!("tasksub-{}-", unique(label));
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
            queue_name: format!("{prefix}{task_id}"),
            prefix,
            metadata,
            label: label.to_owned(),
        }
    }

    async fn create_queue(&self) -> String {
        self.sqs
            .create_queue()
            .queue_name(&self.queue_name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    async fn send(&self, url: &str, body: &str) -> String {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap()
            .message_id
            .unwrap()
    }

    /// Visible and in-flight messages.
    async fn remaining(&self, url: &str) -> (u64, u64) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        let n = |k: QueueAttributeName| attrs.get(&k).map_or(0, |v| v.parse().unwrap());
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Waits until the queue is empty (the relay's batched deletes land within about 1 s).
    async fn wait_empty(&self, url: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = self.remaining(url).await;
            if left == (0, 0) {
                return;
            }
            assert!(Instant::now() < deadline, "queue not empty: {left:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts the relay binary for this task, delivering to the app on `app_port`.
    fn relay(&self, app_port: u16, env: &[(&str, &str)]) -> Relay {
        let health_port = free_port();
        let log_path = std::env::temp_dir().join(format!("tasksub-relay-{}-{}.log", self.label, std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasksub-relay"));
        cmd.env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("TASKSUB_TABLE")
            .env("AWS_ENDPOINT_URL", Moto::get().endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("ECS_CONTAINER_METADATA_URI_V4", self.metadata.uri())
            .env("TASKSUB_QUEUE_PREFIX", &self.prefix)
            .env("TASKSUB_RELAY_TARGET", format!("http://127.0.0.1:{app_port}/messages"))
            .env(
                "TASKSUB_RELAY_APP_HEALTH",
                format!("http://127.0.0.1:{app_port}/health"),
            )
            .env("TASKSUB_RELAY_LISTEN", format!("127.0.0.1:{health_port}"))
            .env("RUST_LOG", "info,tasksub_relay=debug,tasksub_client=debug")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tasksub-relay");
        println!("relay log: {}", log_path.display());
        Relay { child, health_port }
    }
}

/// The Python app and the JSON lines it prints.
struct App {
    _child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl App {
    async fn start(port: u16) -> Self {
        let mut child = Command::new("python3")
            .arg(manifest("tests/app.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 (the test app)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut app = Self {
            _child: child,
            lines,
            seen: Vec::new(),
        };
        app.next("listening", Duration::from_secs(10)).await;
        app
    }

    /// The next line with this `event`.
    async fn next(&mut self, event: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {event:?} line from the app within {within:?}"))
                .expect("the app is running");
            self.seen.push(line.clone());
            if line["event"] == event {
                return line;
            }
        }
    }

    /// Collects lines for `period`, returning those with `event`.
    async fn collect(&mut self, event: &str, period: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            self.seen.push(line);
        }
        self.seen.iter().filter(|l| l["event"] == event).cloned().collect()
    }
}

struct Relay {
    child: Child,
    health_port: u16,
}

impl Relay {
    /// The status of `GET /healthz`, `None` when not listening.
    async fn health(&self) -> Option<u16> {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.health_port))
            .await
            .ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    }

    async fn wait_health(&self, status: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while self.health().await != Some(status) {
            assert!(Instant::now() < deadline, "healthz never answered {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    async fn exit_code(&mut self, within: Duration) -> i32 {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the relay exits in time")
            .unwrap()
            .code()
            .expect("an exit code, not a signal")
    }

    /// SIGTERM, then the exit code (within ECS's default 30 s stopTimeout).
    async fn stop(&mut self) -> i32 {
        self.sigterm();
        self.exit_code(Duration::from_secs(30)).await
    }
}

fn sns_attr(data_type: &str, value: &str) -> aws_sdk_sns::types::MessageAttributeValue {
    let b = aws_sdk_sns::types::MessageAttributeValue::builder().data_type(data_type);
    if data_type == "Binary" {
        b.binary_value(aws_smithy_types::Blob::new(value.as_bytes()))
    } else {
        b.string_value(value)
    }
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_message_reaches_the_app_once_with_its_attributes() {
    // GIVEN a topic delivering SNS envelopes to the task's queue, an app and a relay
    let w = World::new("rall").await;
    let url = w.create_queue().await;
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let topic_arn = sns
        .create_topic()
        .name(unique("relay"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{}", w.queue_name))
        .send()
        .await
        .unwrap();
    let port = free_port();
    let mut app = App::start(port).await;
    let mut relay = w.relay(port, &[]);
    relay.wait_health(200, Duration::from_secs(30)).await;

    // WHEN 12 messages with attributes (mixed-case names, non-ASCII values, binary) are published
    let mut published = std::collections::BTreeMap::new();
    for i in 0..12 {
        let body = if i % 2 == 0 {
            format!(r#"{{"n":{i}}}"#)
        } else {
            format!("plain {i} ✓")
        };
        let out = sns
            .publish()
            .topic_arn(&topic_arn)
            .message(&body)
            .subject(format!("subject {i}"))
            .message_attributes("Kind", sns_attr("String", "cache invalidation ✓ 100%"))
            .message_attributes("n", sns_attr("Number", &i.to_string()))
            .message_attributes("blob", sns_attr("Binary", "hi"))
            .send()
            .await
            .unwrap();
        published.insert(out.message_id.unwrap(), body);
    }

    // THEN the app answers each exactly once, with the body, the SNS identity and the attributes
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < published.len() {
        let line = app.next("answered", Duration::from_secs(60)).await;
        let id = line["sns_message_id"].as_str().unwrap().to_owned();
        assert!(answered.insert(id, line).is_none(), "delivered twice");
    }
    for (id, line) in &answered {
        let body = &published[id];
        assert_eq!(line["body"], body.as_str());
        assert_eq!(line["status"], 200);
        assert_eq!(line["topic_arn"], topic_arn.as_str());
        assert_eq!(line["delivery"], "sns-envelope");
        assert_eq!(line["receive_count"], 1);
        assert!(line["sent_time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(line["subject"].as_str().unwrap().starts_with("subject "));
        let want_type = if body.starts_with('{') {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        assert_eq!(line["content_type"], want_type);
        let attrs = &line["attributes"];
        assert_eq!(attrs["Kind"]["value"], "cache invalidation ✓ 100%", "{line}");
        assert_eq!(attrs["Kind"]["type"], "String");
        assert_eq!(attrs["n"]["type"], "Number");
        assert_eq!(attrs["blob"], serde_json::json!({"type": "Binary", "value": "6869"}));
    }
    w.wait_empty(&url, Duration::from_secs(10)).await;
    let extra = app.collect("received", Duration::from_secs(1)).await;
    assert_eq!(extra.len(), published.len(), "no redelivery");
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_redelivered_then_deleted() {
    let w = World::new("r500").await;
    let url = w.create_queue().await;
    let id = w.send(&url, "fail-once please").await;
    let port = free_port();
    let mut app = App::start(port).await;
    let mut relay = w.relay(port, &[("TASKSUB_RELAY_VISIBILITY_TIMEOUT", "2s")]);
    // The app answers 500: the message comes back after its 2 s visibility timeout, then 200.
    let first = app.next("answered", Duration::from_secs(30)).await;
    let second = app.next("answered", Duration::from_secs(30)).await;
    assert_eq!(
        (first["status"].as_u64(), second["status"].as_u64()),
        (Some(500), Some(200))
    );
    assert_eq!(
        (first["receive_count"].as_u64(), second["receive_count"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(first["message_id"], id.as_str());
    assert_eq!(second["message_id"], id.as_str());
    assert_eq!(first["delivery"], "raw");
    w.wait_empty(&url, Duration::from_secs(10)).await;
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_app_gets_the_message_again_without_a_redelivery() {
    let w = World::new("r503").await;
    let url = w.create_queue().await;
    w.send(&url, "busy-once").await;
    let port = free_port();
    let mut app = App::start(port).await;
    let mut relay = w.relay(port, &[("TASKSUB_RELAY_VISIBILITY_TIMEOUT", "2s")]);
    // 503 with Retry-After: 1 → the relay pauses and retries the same receive (count stays 1).
    let first = app.next("answered", Duration::from_secs(30)).await;
    let started = Instant::now();
    let second = app.next("answered", Duration::from_secs(30)).await;
    assert_eq!(
        (first["status"].as_u64(), second["status"].as_u64()),
        (Some(503), Some(200))
    );
    assert_eq!(
        second["receive_count"], 1,
        "retried by the relay, not redelivered by SQS"
    );
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After honoured");
    w.wait_empty(&url, Duration::from_secs(10)).await;
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_status_deletes_the_message_even_when_the_body_comes_after_the_request_timeout() {
    let w = World::new("rlate").await;
    let url = w.create_queue().await;
    let id = w.send(&url, "late-body:4").await;
    let port = free_port();
    let mut app = App::start(port).await;
    // GIVEN a 1 s request timeout and an app that sends 200 at once and its body 4 s later
    let mut relay = w.relay(
        port,
        &[
            ("TASKSUB_RELAY_REQUEST_TIMEOUT", "1s"),
            ("TASKSUB_RELAY_VISIBILITY_TIMEOUT", "2s"),
        ],
    );
    let answered = app.next("answered", Duration::from_secs(30)).await;
    assert_eq!(
        (answered["message_id"].as_str(), answered["status"].as_u64()),
        (Some(id.as_str()), Some(200))
    );
    // THEN the status line was the acceptance: deleted, and never POSTed again
    w.wait_empty(&url, Duration::from_secs(10)).await;
    let received = app.collect("received", Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1, "POSTed once: {received:?}");
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_status_within_the_request_timeout_is_left_for_redelivery() {
    let w = World::new("rtime").await;
    let url = w.create_queue().await;
    let id = w.send(&url, "slow-once:4").await;
    let port = free_port();
    let mut app = App::start(port).await;
    // GIVEN a 1 s request timeout and an app that takes 4 s the first time
    let mut relay = w.relay(
        port,
        &[
            ("TASKSUB_RELAY_REQUEST_TIMEOUT", "1s"),
            ("TASKSUB_RELAY_VISIBILITY_TIMEOUT", "2s"),
        ],
    );
    // THEN the message was not deleted: SQS redelivered it (receive count 2), and the quick answer
    // to the second POST deleted it
    let first = app.next("received", Duration::from_secs(30)).await;
    let second = app.next("received", Duration::from_secs(30)).await;
    assert_eq!(first["message_id"], id.as_str());
    assert_eq!(second["message_id"], id.as_str());
    assert_eq!(
        (first["receive_count"].as_u64(), second["receive_count"].as_u64()),
        (Some(1), Some(2))
    );
    w.wait_empty(&url, Duration::from_secs(10)).await;
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_waits_for_an_app_that_is_down_at_start() {
    let w = World::new("rdown").await;
    let url = w.create_queue().await;
    w.send(&url, "hello").await;
    let port = free_port();
    // GIVEN the relay starts while nothing listens on the app's port
    let mut relay = w.relay(port, &[]);
    relay.wait_health(503, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // THEN it is unhealthy and has not touched the queue
    assert_eq!(relay.health().await, Some(503));
    assert_eq!(w.remaining(&url).await, (1, 0), "not received while the app is down");
    // WHEN the app comes up, the message is delivered and the relay turns healthy
    let mut app = App::start(port).await;
    let line = app.next("answered", Duration::from_secs(30)).await;
    assert_eq!(
        (line["body"].as_str(), line["status"].as_u64()),
        (Some("hello"), Some(200))
    );
    relay.wait_health(200, Duration::from_secs(10)).await;
    w.wait_empty(&url, Duration::from_secs(10)).await;
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_keeps_the_message_invisible_without_a_duplicate() {
    let w = World::new("rslow").await;
    let url = w.create_queue().await;
    w.send(&url, "slow:6").await;
    let port = free_port();
    let mut app = App::start(port).await;
    // A 2 s visibility timeout and a 6 s answer: only the heartbeat keeps the message hidden.
    let mut relay = w.relay(port, &[("TASKSUB_RELAY_VISIBILITY_TIMEOUT", "2s")]);
    app.next("received", Duration::from_secs(30)).await;
    let answered = app.next("answered", Duration::from_secs(15)).await;
    assert_eq!(answered["status"], 200);
    w.wait_empty(&url, Duration::from_secs(10)).await;
    let received = app.collect("received", Duration::from_secs(3)).await;
    assert_eq!(received.len(), 1, "delivered once: {received:?}");
    assert_eq!(relay.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_delivery_drains_and_exits_zero() {
    let w = World::new("rterm").await;
    let url = w.create_queue().await;
    w.send(&url, "slow:3").await;
    let port = free_port();
    let mut app = App::start(port).await;
    let mut relay = w.relay(port, &[]);
    // WHEN SIGTERM arrives while the app is working on the message
    app.next("received", Duration::from_secs(30)).await;
    let started = Instant::now();
    relay.sigterm();
    // THEN the relay reports draining, waits for the answer, deletes the message and exits 0
    relay.wait_health(503, Duration::from_secs(2)).await;
    let code = relay.exit_code(Duration::from_secs(30)).await;
    assert_eq!(code, 0);
    assert!(started.elapsed() < Duration::from_secs(25), "{:?}", started.elapsed());
    let answered = app.next("answered", Duration::from_secs(1)).await;
    assert_eq!(answered["status"], 200);
    assert_eq!(w.remaining(&url).await, (0, 0), "deleted during the drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_target_is_a_configuration_error() {
    let w = World::new("rconf").await;
    let mut relay = w.relay(free_port(), &[("TASKSUB_RELAY_TARGET", "http://example.com/messages")]);
    assert_eq!(relay.exit_code(Duration::from_secs(10)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_never_posted_and_stays_for_the_dlq() {
    let w = World::new("rbig").await;
    let url = w.create_queue().await;
    let big = w.send(&url, &"x".repeat(2048)).await;
    let small = w.send(&url, "small enough").await;
    let port = free_port();
    let mut app = App::start(port).await;
    let mut relay = w.relay(
        port,
        &[
            ("TASKSUB_RELAY_MAX_BODY_BYTES", "1024"),
            ("TASKSUB_RELAY_VISIBILITY_TIMEOUT", "2s"),
        ],
    );
    let answered = app.next("answered", Duration::from_secs(30)).await;
    assert_eq!(answered["message_id"], small.as_str());
    // The big one is received again and again (its receive count climbs toward the DLQ) but never posted.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (visible, in_flight) = w.remaining(&url).await;
    assert_eq!(visible + in_flight, 1, "only the oversized message is left");
    while let Ok(line) = app.lines.try_recv() {
        app.seen.push(line);
    }
    assert!(
        app.seen.iter().all(|l| l["message_id"] != big.as_str()),
        "the oversized body was posted: {:?}",
        app.seen
    );
    assert_eq!(relay.stop().await, 0);
}
