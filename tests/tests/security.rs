//! Security checks on what the functions really create and really log, against moto.
//!
//! - The queue policy, read back from moto, admits only our topic through the SNS service principal.
//! - The logs of a full life cycle (with a throttled call and a retry), captured as the Lambda functions
//!   write them (JSON, through `tracing`, SDK events included), hold no credentials, no receipt handle
//!   and no message body, while a message published without any container client sits in the queue.
//!
//! `cargo test -p tasksub-tests --test security`.

use std::io;
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use serde_json::{json, Value};
use tasksub_core::decide::Role;
use tasksub_functions::aws::AwsPorts;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::Controller;
use tasksub_tests::moto::{unique, Moto};
use tasksub_tests::proxy::{Fault, Proxy};
use tasksub_tests::world::{MotoWorld, World};
use tracing_subscriber::fmt::MakeWriter;

/// Why a queue policy statement is too open, if it is.
fn too_open(statement: &Value, queue_arn: &str, topic_arn: &str) -> Option<String> {
    let principal = &statement["Principal"];
    let public = |v: &Value| v == "*" || v.as_array().is_some_and(|a| a.iter().any(|x| x == "*"));
    if public(principal) || public(&principal["AWS"]) {
        return Some(format!("public principal {principal}"));
    }
    if *principal != json!({"Service": "sns.amazonaws.com"}) {
        return Some(format!("principal {principal} is not the SNS service alone"));
    }
    if statement["Effect"] != "Allow" || statement["Action"] != "sqs:SendMessage" {
        return Some(format!("effect/action {} {}", statement["Effect"], statement["Action"]));
    }
    if statement["Resource"] != queue_arn {
        return Some(format!("resource {} is not the queue", statement["Resource"]));
    }
    if statement["Condition"] != json!({"ArnEquals": {"aws:SourceArn": topic_arn}}) {
        return Some(format!("condition {} does not pin the topic", statement["Condition"]));
    }
    None
}

#[test]
fn the_policy_check_rejects_open_policies() {
    let (q, t) = ("arn:aws:sqs:us-east-1:1:q", "arn:aws:sns:us-east-1:1:t");
    let good = json!({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": q, "Condition": {"ArnEquals": {"aws:SourceArn": t}}});
    assert_eq!(too_open(&good, q, t), None);
    let with = |k: &str, v: Value| {
        let mut s = good.clone();
        s[k] = v;
        s
    };
    for bad in [
        with("Principal", json!("*")),
        with("Principal", json!({"AWS": "*"})),
        with("Principal", json!({"AWS": ["arn:aws:iam::1:root", "*"]})),
        with(
            "Principal",
            json!({"Service": "sns.amazonaws.com", "AWS": "arn:aws:iam::1:root"}),
        ),
        with("Action", json!("sqs:*")),
        with("Resource", json!("*")),
        with("Condition", json!({})),
        with("Condition", json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*"}})),
        with(
            "Condition",
            json!({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:other"}}),
        ),
    ] {
        assert!(too_open(&bad, q, t).is_some(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_policy_admits_only_the_topic() {
    let w = MotoWorld::new().await;
    let topic = w.settings().topics[0].arn.as_str().to_owned();
    for task in [w.task(), w.task()] {
        w.controller()
            .handle_json(&task.event("RUNNING", "RUNNING", 3))
            .await
            .unwrap();
        let wire = w.wire(&task).await.expect("queue and subscription");
        let policy: Value = serde_json::from_str(&wire.queue_attributes["Policy"]).expect("policy JSON");
        assert_eq!(policy["Version"], "2012-10-17");
        let queue_arn = &wire.queue_attributes["QueueArn"];
        assert!(queue_arn.ends_with(&task.id), "{queue_arn}");
        let statements = policy["Statement"].as_array().expect("statements");
        // Every Allow admits the topic alone; the Denies only narrow (TLS only, the topic only).
        let allows: Vec<&Value> = statements.iter().filter(|s| s["Effect"] == "Allow").collect();
        assert_eq!(allows.len(), 1, "{policy}");
        for st in allows {
            assert_eq!(too_open(st, queue_arn, &topic), None, "{policy}");
        }
        let denies: Vec<&Value> = statements.iter().filter(|s| s["Effect"] == "Deny").collect();
        assert!(
            denies
                .iter()
                .any(|d| d["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
            "a TLS-only deny: {policy}"
        );
        assert!(
            denies
                .iter()
                .any(|d| d["Condition"]["ArnNotEquals"]["aws:SourceArn"] == topic.as_str()),
            "a deny for any sender but the topic: {policy}"
        );
        assert_eq!(
            wire.queue_attributes["SqsManagedSseEnabled"], "true",
            "encrypted at rest"
        );
    }
}

/// A log buffer the JSON formatter writes into.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// The subscriber `tasksub_functions::runtime::init_logging` installs, writing here, at `filter`.
    fn dispatch(&self, filter: &str) -> tracing::Dispatch {
        keep_a_second_dispatcher();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .without_time()
            .with_writer(self.clone())
            .finish();
        tracing::Dispatch::new(subscriber)
    }
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("log buffer").clone()).expect("UTF-8 logs")
    }
}

/// While exactly one dispatcher exists, tracing-core computes the interest of a callsite from the
/// default dispatcher of the thread that first hits it (`Rebuilder::JustOne`), and caches it: an event
/// first reached on another test's thread (no subscriber) would stay disabled for the capture. With a
/// second, idle dispatcher alive, it asks every registered dispatcher instead.
fn keep_a_second_dispatcher() {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

/// Credentials no log may show.
const ACCESS_KEY: &str = "AKIATASKSUBLOGCHECK7";
const SECRET_KEY: &str = "tasksub/Secret+Key/never-in-logs/0123456789";
const SESSION_TOKEN: &str = "TaskSubSessionToken//never-in-logs==";

/// A full life cycle on the current thread (so every task the SDK spawns logs into the capture), with
/// a throttled CreateQueue and its redelivery, while a message sits in the queue. Only the handler
/// calls are captured: they are what the functions log.
async fn lifecycle_logs(filter: &str) -> (String, Vec<String>) {
    let w = MotoWorld::new().await;
    let proxy = Proxy::start(Moto::get().endpoint(), 21).await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            Some(SESSION_TOKEN.to_owned()),
            None,
            "security-test",
        ))
        .endpoint_url(proxy.url())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let controller = Controller::with_ports(
        w.settings().clone(),
        Instrumented::new(AwsPorts::new(&sdk, &w.settings().table)),
        Role::Any,
    );
    let captured = Captured::default();
    let dispatch = captured.dispatch(filter);
    let handle = async |event: &Value| {
        let _in = tracing::dispatcher::set_default(&dispatch);
        controller.handle_json(event).await
    };
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();

    proxy.fail_next("CreateQueue", 1, Fault::Throttle);
    assert!(handle(&start[0]).await.unwrap_err().is_retryable());
    handle(&start[0]).await.unwrap();
    handle(&start[1]).await.unwrap();

    // a publisher with no container client; the test reads the message (and its receipt handle) back
    let body = format!("confidential-{}", unique("body"));
    let sns = aws_sdk_sns::Client::new(w.sdk());
    sns.publish()
        .topic_arn(w.settings().topics[0].arn.as_str())
        .message(&body)
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(w.sdk());
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{}{}", w.settings().queue.prefix.as_str(), task.id));
    let url = url.send().await.unwrap().queue_url.unwrap();
    let got = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let message = got.messages().first().expect("the published message");
    assert_eq!(message.body(), Some(body.as_str()));
    let receipt = message.receipt_handle().expect("receipt handle").to_owned();
    assert!(receipt.len() > 16, "{receipt}");

    handle(&stop_initiated[0]).await.unwrap();
    handle(&stopped[0]).await.unwrap();
    handle(&stopped[0]).await.unwrap();
    (captured.text(), vec![body, receipt, task.id])
}

/// Nothing secret in `logs`. The access key ID is allowed only at verbose levels and only in the SDK's
/// own events: aws-smithy-runtime prints the resolved identity (secret redacted) at debug and trace.
fn assert_clean(logs: &str, body: &str, receipt: &str, filter: &str) {
    for (what, secret) in [
        ("secret key", SECRET_KEY),
        ("session token", SESSION_TOKEN),
        ("signature", "Signature="),
        ("signed authorization header", "AWS4-HMAC-SHA256 Credential"),
        ("message body", body),
        ("receipt handle", receipt),
        ("access key", ACCESS_KEY),
    ] {
        let leaks: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret))
            .filter(|l| secret != ACCESS_KEY || filter == "info" || l.contains("\"action\""))
            .collect();
        assert!(leaks.is_empty(), "[{filter}] the logs show the {what}: {leaks:#?}");
    }
}

/// At `info`, the functions' default, nothing; at `trace` for every crate, nothing but the access key ID
/// in the SDK's identity events.
#[tokio::test]
async fn logs_hold_no_credentials_receipt_handles_or_bodies() {
    for filter in ["info", "trace"] {
        let (logs, seen) = lifecycle_logs(filter).await;
        let [body, receipt, task_id] = [&seen[0], &seen[1], &seen[2]];
        // the capture really captures: every line is JSON, and every action of the life cycle is there
        let lines: Vec<Value> = logs
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("[{filter}] not JSON ({e}): {l}")))
            .collect();
        let field = |l: &Value, k: &str| l["fields"][k].as_str().map(str::to_owned);
        let ours: Vec<&Value> = lines
            .iter()
            .filter(|l| field(l, "task_id").as_deref() == Some(task_id))
            .collect();
        for action in [
            "claim",
            "create-queue",
            "subscribe",
            "mark-ready",
            "unsubscribe",
            "mark-draining",
            "delete-queue",
            "tombstone-gone",
            "done",
            "skip",
        ] {
            assert!(
                ours.iter().any(|l| field(l, "action").as_deref() == Some(action)),
                "[{filter}] no action={action} line in {} lines",
                lines.len()
            );
        }
        assert!(
            ours.iter()
                .any(|l| field(l, "error_kind").as_deref() == Some("throttled")),
            "[{filter}] the throttled CreateQueue was not logged"
        );
        assert_clean(&logs, body, receipt, filter);
        if filter == "debug" {
            assert!(
                lines.len() > ours.len(),
                "[debug] the SDK's own events are captured too"
            );
        }
    }
}
