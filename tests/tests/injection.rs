//! No event injection, through the parser and the handler: the task rules' input template, taken from
//! `infra/template.yaml`, rendered as EventBridge documents it for a STOPPED event whose group is hostile,
//! then handled as the function handles a buffer record (`Controller::handle_slice`) while another task
//! is live. That task keeps its record, queue and subscription, whatever the group says.
//!
//! EventBridge inserts a placeholder outside quotes as the JSON value its path selects, and pastes the text
//! of one inside quotes without escaping it (EventBridge User Guide, "Amazon EventBridge input
//! transformation"). The deployed templates have every placeholder outside quotes; the same template with
//! its placeholders quoted (the form it had before) is rendered too, to show that the parser's own checks
//! (no duplicate key, `detail.taskArn` among `resources`) keep that from acting on another task as well.

use serde_json::{json, Value};
use tasksub_core::record::State;
use tasksub_tests::events::Task;
use tasksub_tests::world::{FakeWorld, World, OUR_CLUSTER};

/// Hostile ECS groups naming `other`: quotes, backslashes, braces, a second taskArn, a closed detail.
fn hostile_groups(other: &str) -> Vec<String> {
    vec![
        format!(r#"x", "taskArn": "{other}"#),
        format!(r#"x", "taskArn": "{other}", "y": ""#),
        format!(r#"x"}}, "resources": ["{other}"], "z": {{"a": ""#),
        format!(r#"x\", \"taskArn\": \"{other}"#),
        format!(r#"x"}}, "detail": {{"taskArn": "{other}", "g": ""#),
        r"\".to_owned(),
        r#"{"}"#.to_owned(),
        "service:orders\u{0}\n\t".to_owned(),
    ]
}

/// The stopped rule's transformer as the SAM template writes it: (input paths, template).
fn stopped_rule_transformer() -> (Vec<(String, String)>, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    let rule = &text[text.find("\n  TaskStoppedRule:\n").expect("TaskStoppedRule")..];
    let block = |key: &str| -> Vec<&str> {
        let start = rule.find(key).unwrap_or_else(|| panic!("{key}"));
        let indent = rule[..start].rsplit('\n').next().unwrap_or_default().len();
        rule[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.len() - l.trim_start().len() > indent)
            .map(str::trim)
            .collect()
    };
    let paths = block("InputPathsMap:")
        .into_iter()
        .map(|l| {
            let (name, path) = l.split_once(": ").expect("name: path");
            (name.to_owned(), path.to_owned())
        })
        .collect();
    // A folded block scalar (`>-`): its lines joined by spaces.
    let template = block("InputTemplate: >-").join(" ");
    (paths, template)
}

/// `$.a.b` of `event`.
fn select<'a>(event: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches("$.")
        .split('.')
        .fold(event, |v, step| v.get(step).unwrap_or_else(|| panic!("{path}")))
}

/// Renders `template` for `event` as EventBridge documents it.
fn render(paths: &[(String, String)], template: &str, event: &Value) -> String {
    let mut out = String::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = template;
    while let Some(ch) = rest.chars().next() {
        if ch == '<' {
            if let Some(end) = rest.find('>') {
                if let Some((_, path)) = paths.iter().find(|(name, _)| *name == rest[1..end]) {
                    let value = select(event, path);
                    match (in_string, value) {
                        (true, Value::String(s)) => out.push_str(s),
                        _ => out.push_str(&value.to_string()),
                    }
                    rest = &rest[end + 1..];
                    continue;
                }
            }
        }
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if ch == '"' {
            in_string = true;
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// The template with every string placeholder in quotes, as the stack deployed it before.
fn quoted(paths: &[(String, String)], template: &str) -> String {
    paths
        .iter()
        .filter(|(name, _)| name != "resources" && name != "version")
        .fold(template.to_owned(), |t, (name, _)| {
            t.replace(&format!("<{name}>"), &format!("\"<{name}>\""))
        })
}

async fn ready(w: &FakeWorld, task: &Task) {
    let c = w.controller();
    let outcome = c
        .handle_json(&task.event("RUNNING", "RUNNING", 1))
        .await
        .expect("start");
    assert_eq!(outcome.state, Some("READY"));
}

async fn assert_untouched(w: &FakeWorld, victim: &Task, why: &str) {
    let o = w.observe(victim).await;
    assert_eq!(o.record.map(|r| r.state), Some(State::Ready), "{why}");
    assert!(o.queue_exists && o.subscriptions.len() == 1, "{why}");
}

#[tokio::test]
async fn the_template_renders_a_hostile_group_as_a_value() {
    let (paths, template) = stopped_rule_transformer();
    assert_eq!(paths.len(), 14, "{paths:?}");
    assert!(template.ends_with(r#""group": <group>}}"#), "{template}");
    let w = FakeWorld::new();
    let victim = Task::new(OUR_CLUSTER);
    ready(&w, &victim).await;
    for group in hostile_groups(&victim.arn) {
        let attacker = Task::new(OUR_CLUSTER);
        let mut event = attacker.event("STOPPED", "STOPPED", 9);
        event["detail"]["group"] = json!(group);
        let rendered = render(&paths, &template, &event);
        // WHEN the function handles the buffer record
        let outcome = w.controller().handle_slice(rendered.as_bytes()).await;
        // THEN it acted on the attacker's own task, with the group as a value, and the victim is untouched
        let outcome = outcome.unwrap_or_else(|e| panic!("{group:?}: {e}\n{rendered}"));
        assert_eq!(outcome.task_id.as_deref(), Some(attacker.id.as_str()), "{group:?}");
        let record = w.observe(&attacker).await.record.expect("tombstone");
        assert_eq!(record.state, State::Gone);
        assert_eq!(
            record.group.as_deref(),
            Some(group.as_str()),
            "the group stays one string"
        );
        assert_untouched(&w, &victim, &group).await;
    }
}

#[tokio::test]
async fn pasted_into_quotes_the_parser_still_refuses_another_task() {
    let (paths, template) = stopped_rule_transformer();
    let template = quoted(&paths, &template);
    let w = FakeWorld::new();
    let victim = Task::new(OUR_CLUSTER);
    ready(&w, &victim).await;
    let mut refused = 0;
    for group in hostile_groups(&victim.arn) {
        let attacker = Task::new(OUR_CLUSTER);
        let mut event = attacker.event("STOPPED", "STOPPED", 9);
        event["detail"]["group"] = json!(group);
        let rendered = render(&paths, &template, &event);
        match w.controller().handle_slice(rendered.as_bytes()).await {
            Ok(outcome) => assert_eq!(outcome.task_id.as_deref(), Some(attacker.id.as_str()), "{group:?}"),
            Err(e) => {
                assert_eq!(e.error_type(), "tasksub.Permanent.MalformedEvent", "{group:?}");
                refused += 1;
            }
        }
        assert_untouched(&w, &victim, &group).await;
    }
    assert!(
        refused >= 4,
        "the injections that became structure are refused ({refused})"
    );
}
