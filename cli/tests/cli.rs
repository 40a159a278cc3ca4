//! The CLI as an operator uses it: the real binary, real arguments, moto behind AWS_ENDPOINT_URL.

mod common;

use common::{stderr, stdout, tasksub};

use tasksub_tests::events::Task;
use tasksub_tests::moto::unique;

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec!["--help"],
        vec!["replay", "--help"],
        vec!["list", "--help"],
        vec!["show", "--help"],
        vec!["init-local", "--help"],
        vec!["sweep", "--help"],
        vec!["doctor", "--help"],
    ] {
        let o = tasksub(&sub, &[]);
        assert!(o.status.success(), "{sub:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage:"), "{sub:?}");
    }
    let o = tasksub(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

/// `--at` judges a future moment; only a dry run may (a real sweep acts now), and a time must parse.
#[test]
fn a_sweep_at_another_time_is_only_a_dry_run() {
    for args in [
        vec!["sweep", "--at", "2026-12-07T12:00:00Z"],
        vec!["sweep", "--dry-run", "--at", "tomorrow"],
        vec!["doctor", "--at", "12:00"],
    ] {
        let o = tasksub(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--at") || stderr(&o).contains("--dry-run"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn missing_settings_are_named_and_exit_2() {
    let dir = std::env::temp_dir().join(unique("evt"));
    std::fs::write(&dir, Task::new("prod").event("RUNNING", "RUNNING", 1).to_string()).unwrap();
    let o = tasksub(&["replay", dir.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TASKSUB_TOPIC_ARN"), "{}", stderr(&o));
}

#[test]
fn init_replay_list_show_on_the_emulator() {
    let table = unique("cli-records-");
    let topic = unique("cli-topic-");
    let o = tasksub(&["init-local", "--topic", &topic, "--table", &table], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let exports = stdout(&o);
    let topic_arn = exports
        .lines()
        .find_map(|l| l.strip_prefix("export TASKSUB_TOPIC_ARN="))
        .expect("topic export")
        .to_owned();
    // init-local is idempotent
    assert!(tasksub(&["init-local", "--topic", &topic, "--table", &table], &[])
        .status
        .success());
    // names the settings would refuse are refused here, before anything is created
    for (flag, bad, why) in [
        ("--table", "rt", "is not a table name"),
        ("--topic", "my topic", "may hold only letters, digits"),
    ] {
        let o = tasksub(&["init-local", flag, bad], &[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }

    let prefix = format!("tasksub-{}-", unique("cli"));
    let env = [
        ("TASKSUB_TOPIC_ARN", topic_arn.as_str()),
        ("TASKSUB_ACCOUNT_ID", "123456789012"),
        ("TASKSUB_TABLE", table.as_str()),
        ("TASKSUB_CLUSTERS", "prod"),
        ("TASKSUB_QUEUE_PREFIX", prefix.as_str()),
    ];
    let task = Task::new("prod");
    let (start, stop_initiated, stopped) = task.lifecycle();
    let dir = std::env::temp_dir().join(unique("events"));
    std::fs::create_dir_all(&dir).unwrap();
    let start_file = dir.join("start.json");
    std::fs::write(&start_file, serde_json::to_string(&start).unwrap()).unwrap();
    let o = tasksub(&["replay", "--role", "running", start_file.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["state"], "READY");
    assert_eq!(lines[1]["reason"], "already-ready");

    let o = tasksub(&["list"], &env);
    assert!(
        stdout(&o).contains(&task.id) && stdout(&o).contains("READY"),
        "{}",
        stdout(&o)
    );
    let o = tasksub(&["show", &task.arn], &env);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(shown["state"], "READY");
    assert_eq!(shown["queueName"], format!("{prefix}{}", task.id));

    // stop events as JSON lines through stdin-less files
    let stop_file = dir.join("stop.jsonl");
    let jsonl: Vec<String> = stop_initiated.iter().chain(&stopped).map(|e| e.to_string()).collect();
    std::fs::write(&stop_file, jsonl.join("\n")).unwrap();
    let o = tasksub(&["replay", "--role", "stopped", stop_file.to_str().unwrap()], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tasksub(&["list", "--state", "gone", "--json"], &env);
    let gone: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["taskId"], task.id);

    let o = tasksub(&["show", "0123456789abcdef0123456789abcdef"], &env);
    assert_eq!(o.status.code(), Some(1));

    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{}}"#,
    )
    .unwrap();
    let o = tasksub(&["replay", bad.to_str().unwrap()], &env);
    assert_eq!(o.status.code(), Some(1), "a malformed event is a permanent failure");
    assert!(stdout(&o).contains("tasksub.Permanent.MalformedEvent"));

    // A second taskArn after the real one (what a group pasted into quotes could produce) names another
    // task: refused, nothing replayed.
    let victim = Task::new("prod");
    let text = task.event("STOPPED", "STOPPED", 9).to_string().replacen(
        r#""taskArn":"#,
        &format!(r#""taskArn":"{}","taskArn":"#, victim.arn),
        1,
    );
    assert_eq!(text.matches(r#""taskArn":"#).count(), 2, "{text}");
    let injected = dir.join("injected.json");
    std::fs::write(&injected, text).unwrap();
    let o = tasksub(&["replay", "--role", "stopped", injected.to_str().unwrap()], &env);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("tasksub.Permanent.MalformedEvent"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("duplicate key"), "{}", stdout(&o));
}
