//! Batches from the buffer queue on the fake: which records go back, which stay done, and what is logged.

use std::time::Duration;

use serde_json::{json, Value};
use tasksub_core::decide::Role;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::State;
use tasksub_core::settings::{vars, Settings};

use super::*;
use crate::fake::Fake;
use crate::instrumented::Instrumented;
use crate::test_log::Captured;

const ACCOUNT: &str = "123456789012";
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";

fn controller() -> (Fake, Controller<Instrumented<Fake>>) {
    let map = [
        (vars::TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:fanout"),
        (vars::TABLE, "records"),
        (vars::QUEUE_PREFIX, "tasksub-"),
        (vars::ACCOUNT_ID, ACCOUNT),
        (vars::AWS_REGION, "us-east-1"),
        (vars::CLUSTERS, CLUSTER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::from_map(&map).expect("settings");
    let fake = Fake::new();
    let controller = Controller::with_ports(settings, Instrumented::new(fake.clone()), Role::Any);
    (fake, controller)
}

fn task_arn(n: u32) -> String {
    format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task/prod/{n:032x}")
}

fn task_id(n: u32) -> String {
    format!("{n:032x}")
}

/// The trimmed event the task rules send to the buffer queue.
fn trimmed(n: u32, last: &str, desired: &str) -> Value {
    json!({
        "version": "0", "id": format!("e-{n}-{last}"), "detail-type": "ECS Task State Change",
        "source": "aws.ecs", "account": ACCOUNT, "region": "us-east-1",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "resources": [task_arn(n)],
        "detail": {"taskArn": task_arn(n), "clusterArn": CLUSTER, "lastStatus": last,
                   "desiredStatus": desired, "version": 1, "group": "service:orders"}
    })
}

fn record(id: &str, body: &str) -> Value {
    json!({"messageId": id, "receiptHandle": "RH", "body": body, "attributes": {}, "messageAttributes": {},
           "md5OfBody": "", "eventSource": "aws:sqs",
           "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:buffer", "awsRegion": "us-east-1"})
}

fn payload(text: &str) -> StrictJson {
    serde_json::from_str(text).expect("JSON")
}

fn batch(records: &[Value]) -> StrictJson {
    payload(&json!({ "Records": records }).to_string())
}

fn failed(response: Result<Response, HandlerError>) -> Vec<String> {
    match response.expect("a batch never fails as a whole") {
        Response::Batch(b) => b.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
        Response::Event(o) => panic!("not a batch: {o:?}"),
    }
}

#[tokio::test]
async fn only_the_failed_records_go_back_to_the_queue() {
    // GIVEN a batch: a start, a start whose body has a duplicate key, a start that is throttled, a start
    let (fake, c) = controller();
    let duplicate = trimmed(2, "PROVISIONING", "RUNNING").to_string().replacen(
        r#""group":"#,
        &format!(r#""taskArn":"{}","group":"#, task_arn(9)),
        1,
    );
    c.ports().fail_nth("Subscribe", 2, ErrorKind::Throttled);
    let records = [
        record("m1", &trimmed(1, "PROVISIONING", "RUNNING").to_string()),
        record("m2", &duplicate),
        record("m3", &trimmed(3, "PROVISIONING", "RUNNING").to_string()),
        record("m4", &trimmed(4, "PROVISIONING", "RUNNING").to_string()),
    ];
    // WHEN the function handles it
    let failures = failed(invoke(&c, batch(&records), None).await);
    // THEN the duplicate (permanent) and the throttled (retryable) record go back, the others are done
    assert_eq!(failures, ["m2", "m3"]);
    assert_eq!(fake.record(&task_id(1)).map(|r| r.state), Some(State::Ready));
    assert_eq!(fake.record(&task_id(4)).map(|r| r.state), Some(State::Ready));
    assert!(fake.record(&task_id(2)).is_none(), "the refused event changed nothing");
    assert!(
        fake.record(&task_id(9)).is_none(),
        "nor did the task its duplicate named"
    );
}

#[tokio::test(start_paused = true)]
async fn records_not_started_before_the_deadline_go_back_unstarted() {
    let (fake, c) = controller();
    let records: Vec<Value> = (1..=3)
        .map(|n| record(&format!("m{n}"), &trimmed(n, "PROVISIONING", "RUNNING").to_string()))
        .collect();
    let failures = failed(invoke(&c, batch(&records), Some(Instant::now())).await);
    assert_eq!(failures, ["m1", "m2", "m3"]);
    assert!(fake.record(&task_id(1)).is_none());

    let stop_by = Instant::now() + Duration::from_secs(60);
    assert!(failed(invoke(&c, batch(&records), Some(stop_by)).await).is_empty());
    assert_eq!(fake.record(&task_id(3)).map(|r| r.state), Some(State::Ready));
}

#[tokio::test]
async fn a_direct_eventbridge_event_is_handled_as_before() {
    let (fake, c) = controller();
    let response = invoke(&c, payload(&trimmed(5, "RUNNING", "RUNNING").to_string()), None).await;
    match response.expect("handled") {
        Response::Event(o) => assert_eq!(o.state, Some("READY")),
        Response::Batch(b) => panic!("not a batch: {b:?}"),
    }
    assert_eq!(fake.record(&task_id(5)).map(|r| r.state), Some(State::Ready));
}

#[tokio::test]
async fn a_duplicate_key_in_a_direct_event_or_the_envelope_fails_the_invocation() {
    let (fake, c) = controller();
    let text =
        trimmed(6, "RUNNING", "RUNNING")
            .to_string()
            .replacen(r#""source":"#, r#""source":"custom","source":"#, 1);
    let e = invoke(&c, payload(&text), None).await.unwrap_err();
    assert_eq!(e.error_type(), "tasksub.Permanent.MalformedEvent");
    let twice = format!(r#"{{"Records": [], "Records": [{}]}}"#, record("m", "{}"));
    assert!(invoke(&c, payload(&twice), None).await.is_err());
    assert!(fake.record(&task_id(6)).is_none());
}

#[test]
fn a_payload_with_records_must_be_an_sqs_batch() {
    let mut r = record("m", "{}");
    assert!(matches!(
        classify(json!({ "Records": [r.clone()] })),
        Ok(Invocation::Batch(records)) if records.len() == 1
    ));
    r["eventSource"] = json!("aws:kinesis");
    assert_eq!(
        classify(json!({ "Records": [r] })).unwrap_err().field(),
        "Records[].eventSource"
    );
    assert_eq!(
        classify(json!({ "Records": [{"body": "x"}] })).unwrap_err().field(),
        "Records"
    );
    assert!(matches!(
        classify(json!({"source": "aws.ecs"})),
        Ok(Invocation::Direct(_))
    ));
}

#[test]
fn the_response_has_the_shape_lambda_reads() {
    let r = Response::Batch(BatchResponse {
        batch_item_failures: vec![ItemFailure {
            item_identifier: "m1".into(),
        }],
    });
    assert_eq!(
        serde_json::to_value(r).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
    let empty = serde_json::to_value(Response::Batch(BatchResponse::default())).unwrap();
    assert_eq!(empty, json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn bodies_are_never_logged() {
    let (_, c) = controller();
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let mut hostile = trimmed(7, "PROVISIONING", "RUNNING");
    hostile["detail"]["group"] = json!("SECRET-GROUP");
    let records = [
        record("m1", &hostile.to_string()),
        record("m2", r#"{"detail": {"taskArn": "SECRET-1", "taskArn": "SECRET-2"}}"#),
        record("m3", r#"{"detail": "SECRET-UNTERMINATED"#),
    ];
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another test's thread may cache a callsite's interest while this one runs (tracing's interest cache
    // is process-wide; a test of runtime.rs registers a filtering subscriber at the same time), so a
    // line can be missing from the capture. Up to three rounds, until the failures' lines are there; no
    // round may log a body.
    let mut logs = String::new();
    for _ in 0..3 {
        tracing::callsite::rebuild_interest_cache();
        let failures = failed(invoke(&c, batch(&records), None).await);
        assert_eq!(failures, ["m2", "m3"]);
        logs = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!logs.contains("SECRET"), "{logs}");
        if logs.contains("\"m2\"") && logs.contains("\"m3\"") {
            break;
        }
    }
    drop(_guard);
    assert!(logs.contains("\"m2\"") && logs.contains("\"m3\""), "{logs}");
}
