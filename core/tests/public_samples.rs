//! Every public sample parses; every task state change is understood; every other detail-type is
//! recognised as not ours. Parsed events re-serialise and re-parse to the same value.

use std::path::PathBuf;

use tasksub_core::event::{parse, Incoming, TaskEvent, TaskStatus};

fn samples() -> Vec<(String, serde_json::Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ecs-events");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // Strictly: no sample has a duplicate key.
            let json = tasksub_core::event::strict::from_slice(&std::fs::read(&p).unwrap());
            (name.clone(), json.unwrap_or_else(|e| panic!("{name}: {e}")))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 18, "expected the public samples in {dir:?}");
    out
}

/// Samples the parser refuses, and the field it names: the docs snippet was published with a
/// `resources[0]` (`…6f1cebef`) that is not its `detail.taskArn` (`…6fEXAMPLE`, fixtures/SOURCES.md), and a
/// task event must name a task of its resources.
const REFUSED: &[(&str, &str)] = &[(
    "fargate-spot-task-termination-notice-partial-docs.json",
    "detail.taskArn",
)];

#[test]
fn every_public_sample_parses() {
    for (name, json) in samples() {
        if let Some((_, field)) = REFUSED.iter().find(|(n, _)| *n == name) {
            assert_eq!(parse(&json).expect_err(&name).field(), *field, "{name}");
            continue;
        }
        let parsed = parse(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        match parsed {
            Incoming::Task(event) => {
                assert!(!name.starts_with("ignore-"), "{name} should not be a task event");
                assert!(event.detail.task_arn.contains(":task/"), "{name}");
                assert!(!matches!(event.detail.last_status, TaskStatus::Other(_)), "{name}");
                let again: TaskEvent = serde_json::from_value(serde_json::to_value(&*event).unwrap()).unwrap();
                assert_eq!(again, *event, "{name} round trip");
            }
            Incoming::Other { source, detail_type } => {
                assert!(name.starts_with("ignore-"), "{name} should be a task event");
                assert_eq!(source, "aws.ecs");
                assert_ne!(detail_type, "ECS Task State Change");
            }
        }
    }
}

#[test]
fn malformed_payloads_are_errors_not_skips() {
    let rows = [
        serde_json::json!("just a string"),
        serde_json::json!({"source": "aws.ecs"}),
        serde_json::json!({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {"taskArn": 7}}),
        serde_json::json!({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {}}),
    ];
    for json in rows {
        assert!(parse(&json).is_err(), "{json}");
    }
}

/// A malformed event's error names the field at fault, and calls an envelope field an envelope field.
#[test]
fn malformed_events_name_the_field() {
    let sample = || -> serde_json::Value {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/ecs-events/fargate-task-running-awsvpc-docs.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let mut account = sample();
    account["account"] = serde_json::json!(111122223333u64);
    let mut last = sample();
    last["detail"]["lastStatus"] = serde_json::Value::Null;
    let mut arn = sample();
    arn["detail"].as_object_mut().unwrap().remove("taskArn");
    let mut kind = sample();
    kind["detail-type"] = serde_json::json!(5);
    for (json, field, envelope) in [
        (account, "account", true),
        (last, "detail.lastStatus", false),
        (arn, "detail", false),
        (kind, "detail-type", true),
    ] {
        let e = parse(&json).unwrap_err();
        assert_eq!(e.field(), field, "{e}");
        let text = e.to_string();
        assert!(text.contains(&format!("field `{field}`")), "{text}");
        assert_eq!(text.starts_with("malformed EventBridge event"), envelope, "{text}");
    }
}

#[test]
fn other_sources_are_recognised() {
    let json =
        serde_json::json!({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}});
    assert!(matches!(parse(&json).unwrap(), Incoming::Other { .. }));
}
