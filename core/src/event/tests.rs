//! The parser against values that try to become structure.

use serde_json::{json, Value};

use super::*;

const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";
const OTHER: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/fedcba9876543210fedcba9876543210";
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";

/// Hostile ECS groups: quotes, backslashes, braces, a second taskArn, a closed detail.
fn hostile_groups() -> Vec<String> {
    vec![
        format!(r#"x", "taskArn": "{OTHER}"#),
        format!(r#"x", "taskArn": "{OTHER}", "y": ""#),
        format!(r#"x"}}, "resources": ["{OTHER}"], "z": {{"a": ""#),
        format!(r#"x\", \"taskArn\": \"{OTHER}"#),
        r#"\"#.to_owned(),
        r#"{"}"#.to_owned(),
        "service:orders\u{0}\n\t".to_owned(),
    ]
}

/// The trimmed event with `group` pasted as text into `"group": "<group>"` (what a quoted placeholder
/// does when nothing escapes it) or inserted as a JSON value (`"group": <group>`).
fn trimmed(group: &str, as_value: bool) -> String {
    let group = if as_value {
        serde_json::to_string(group).unwrap()
    } else {
        format!("\"{group}\"")
    };
    format!(
        r#"{{"version": "0", "id": "e", "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": "123456789012", "time": "2026-11-25T12:00:00Z", "region": "us-east-1",
        "resources": ["{TASK}"], "detail": {{"taskArn": "{TASK}", "clusterArn": "{CLUSTER}",
        "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "version": 3, "group": {group}}}}}"#
    )
}

fn parse_bytes(text: &str) -> Result<Incoming, EventError> {
    parse(&strict::from_slice(text.as_bytes())?)
}

#[test]
fn a_hostile_group_inserted_as_a_value_stays_a_value() {
    for group in hostile_groups() {
        let Ok(Incoming::Task(event)) = parse_bytes(&trimmed(&group, true)) else {
            panic!("refused: {group:?}");
        };
        assert_eq!(event.detail.task_arn, TASK, "{group:?}");
        assert_eq!(event.detail.group.as_deref(), Some(group.as_str()));
        assert_eq!(event.resources, Some(vec![TASK.to_owned()]));
    }
}

#[test]
fn a_hostile_group_pasted_into_quotes_never_names_another_task() {
    for group in hostile_groups() {
        match parse_bytes(&trimmed(&group, false)) {
            Ok(Incoming::Task(event)) => assert_eq!(event.detail.task_arn, TASK, "{group:?}"),
            Ok(other) => panic!("{group:?}: {other:?}"),
            Err(_) => {}
        }
    }
    // The injection the review found: a second taskArn after the real one.
    let injected = trimmed(&hostile_groups()[0], false);
    assert_eq!(parse_bytes(&injected).unwrap_err().field(), "detail.taskArn");
}

#[test]
fn the_detail_must_name_a_task_of_the_resources() {
    let base: Value = serde_json::from_str(&trimmed("service:orders", true)).unwrap();
    assert!(matches!(parse(&base), Ok(Incoming::Task(_))));
    let mut extra = base.clone();
    extra["resources"] = json!(["arn:aws:ecs:us-east-1:123456789012:container-instance/prod/1", TASK]);
    assert!(
        matches!(parse(&extra), Ok(Incoming::Task(_))),
        "ECS may name more than the task"
    );
    for resources in [json!([OTHER]), json!([]), Value::Null] {
        let mut e = base.clone();
        e["resources"] = resources.clone();
        let err = parse(&e).unwrap_err();
        assert_eq!(err.field(), "detail.taskArn", "{resources}");
        assert!(matches!(err, EventError::MalformedDetail { .. }));
    }
    let mut missing = base;
    missing.as_object_mut().unwrap().remove("resources");
    assert_eq!(parse(&missing).unwrap_err().field(), "detail.taskArn");
}

#[test]
fn other_events_need_no_resources() {
    let e = json!({"detail-type": "ECS Service Action", "source": "aws.ecs", "detail": {}});
    assert!(matches!(parse(&e), Ok(Incoming::Other { .. })));
}
