//! `tasksub sweep` and `tasksub doctor` as an operator runs them: the real binary against moto.

mod common;

use common::{stdout, tasksub};

use tasksub_tests::ecs::EcsCluster;
use tasksub_tests::moto::{unique, Moto};

/// A deployment on moto: topic and table (with TTL) by `init-local`, an ECS cluster, a queue prefix.
struct Deployment {
    env: Vec<(&'static str, String)>,
    prefix: String,
    sqs: aws_sdk_sqs::Client,
}

impl Deployment {
    async fn new() -> Self {
        let sdk = Moto::get().sdk_config().await;
        let cluster = EcsCluster::new(&sdk).await;
        let (topic, table) = (unique("doc-topic-"), unique("doc-records-"));
        let o = tasksub(&["init-local", "--topic", &topic, "--table", &table], &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let topic_arn = stdout(&o)
            .lines()
            .find_map(|l| l.strip_prefix("export TASKSUB_TOPIC_ARN="))
            .expect("topic export")
            .to_owned();
        let prefix = format!("tasksub-{}-", unique("doc"));
        Self {
            env: vec![
                ("TASKSUB_TOPIC_ARN", topic_arn),
                ("TASKSUB_ACCOUNT_ID", "123456789012".to_owned()),
                ("TASKSUB_TABLE", table),
                ("TASKSUB_CLUSTERS", cluster.arn().to_owned()),
                ("TASKSUB_QUEUE_PREFIX", prefix.clone()),
            ],
            prefix,
            sqs: aws_sdk_sqs::Client::new(&sdk),
        }
    }
    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
    fn with(&self, key: &'static str, value: &str) -> Vec<(&str, String)> {
        self.env
            .iter()
            .map(|(k, v)| (*k, if *k == key { value.to_owned() } else { v.clone() }))
            .collect()
    }
    async fn orphan(&self) -> String {
        let name = format!("{}{}", self.prefix, "0123456789abcdef0123456789abcdef");
        // Ours by tasksub's tags (a name proves nothing): the task, and the default stack.
        let task_arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";
        self.sqs
            .create_queue()
            .queue_name(&name)
            .tags("tasksub:task-arn", task_arn)
            .tags("tasksub:stack", "tasksub")
            .send()
            .await
            .expect("CreateQueue");
        name
    }
    /// A subscription of the topic to a queue of ours whose task nobody knows (no record, no queue).
    async fn orphan_subscription(&self) -> String {
        let sdk = Moto::get().sdk_config().await;
        let topic = &self
            .env
            .iter()
            .find(|(k, _)| *k == "TASKSUB_TOPIC_ARN")
            .expect("topic")
            .1;
        let endpoint = format!(
            "arn:aws:sqs:us-east-1:123456789012:{}{}",
            self.prefix, "fedcba9876543210fedcba9876543210"
        );
        aws_sdk_sns::Client::new(&sdk)
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(endpoint)
            .return_subscription_arn(true)
            .send()
            .await
            .expect("Subscribe")
            .subscription_arn()
            .expect("ARN")
            .to_owned()
    }
    async fn exists(&self, name: &str) -> bool {
        self.sqs.get_queue_url().queue_name(name).send().await.is_ok()
    }
}

fn doctor(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let o = tasksub(&["doctor"], env);
    (o.status.code(), stdout(&o))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_finds_a_healthy_deployment_healthy() {
    let d = Deployment::new().await;
    let (code, out) = doctor(&d.env());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("healthy: no problem found"), "{out}");
    for line in [
        "ok    settings",
        "ok    topic",
        "ok    table ",
        "ok    table TTL",
        "ok    permission sqs:GetQueueUrl",
        "ok    permission ecs:DescribeTasks",
        "ok    leftovers",
        "ok    desired state",
        "ok    topic refusals",
        "skip  permission sns:Subscribe",
    ] {
        assert!(out.lines().any(|l| l.starts_with(line)), "no {line:?} in\n{out}");
    }
    assert!(out.contains("not checkable without side effects"), "{out}");
    let o = tasksub(&["doctor", "--json"], &d.env());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["healthy"], true);
    assert!(
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "problem"),
        "{doc:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_missing_table_and_how_to_fix_it() {
    let d = Deployment::new().await;
    let env = d.with("TASKSUB_TABLE", &unique("no-such-table-"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out) = doctor(&env);
    assert_eq!(code, Some(1), "{out}");
    let fail = out
        .lines()
        .position(|l| l.starts_with("FAIL  table"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out.lines().nth(fail).unwrap().contains("does not exist"), "{out}");
    assert!(
        out.lines().nth(fail + 1).unwrap().contains("fix: fix TASKSUB_TABLE"),
        "{out}"
    );
    assert!(out.contains("tasksub init-local --table"), "{out}");
    assert!(out.contains("1 problem(s) found"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_orphan_queues_and_bad_settings() {
    let d = Deployment::new().await;
    let orphan = d.orphan().await;
    // doctor is the sweeper's dry run: a queue made a moment ago waits for the grace period
    let (code, out) = doctor(&d.env());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok    leftovers") && out.contains("1 more wait for the grace period"),
        "{out}"
    );
    let mut now = d.env();
    now.push(("TASKSUB_SWEEP_GRACE_SECONDS", "0"));
    let (code, out) = doctor(&now);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("FAIL  leftovers"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("1 leftover(s)") && line.contains(&orphan), "{line}");
    assert!(out.contains("tasksub sweep --dry-run"), "{out}");
    // an orphan subscription (the topic's listing feeds the same judgment)
    let sub = d.orphan_subscription().await;
    let (_, out) = doctor(&now);
    let line = out
        .lines()
        .find(|l| l.starts_with("FAIL  leftovers"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("2 leftover(s)") && line.contains(&sub), "{line}");
    // ...and `tasksub sweep --dry-run` plans exactly that
    let o = tasksub(&["sweep", "--dry-run", "--grace-seconds", "0"], &d.env());
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let planned: Vec<&str> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["unsubscribe-orphan", "remove-orphan"], "{plan:#}");
    assert_eq!(plan["actions"][0]["detail"].as_str(), Some(sub.as_str()));
    assert_eq!(plan["actions"][1]["queue"].as_str(), Some(orphan.as_str()));

    let env = d.with("TASKSUB_CLUSTERS", "no-such-cluster");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out) = doctor(&env);
    assert_eq!(code, Some(1));
    assert!(
        out.lines().any(|l| l.starts_with("FAIL  cluster no-such-cluster")),
        "{out}"
    );

    let (code, out) = doctor(&[]);
    assert_eq!(code, Some(2), "unusable settings are a usage problem");
    assert!(
        out.contains("FAIL  settings") && out.contains("TASKSUB_TOPIC_ARN"),
        "{out}"
    );
    assert_eq!(tasksub(&["doctor", "--frobnicate"], &[]).status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_plans_in_a_dry_run_then_removes_the_orphan() {
    let d = Deployment::new().await;
    let orphan = d.orphan().await;
    let o = tasksub(&["sweep", "--dry-run", "--grace-seconds", "0"], &d.env());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["dryRun"], true);
    assert_eq!(plan["orphansFound"], 1);
    assert_eq!(plan["actions"][0]["action"], "remove-orphan");
    assert_eq!(plan["actions"][0]["outcome"], "planned");
    assert_eq!(plan["actions"][0]["queue"], orphan.as_str());
    assert!(d.exists(&orphan).await, "a dry run deleted the queue");

    // the default grace period (600 s) holds a queue created seconds ago
    let o = tasksub(&["sweep"], &d.env());
    let held: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (held["waiting"].as_u64(), held["orphansRemoved"].as_u64()),
        (Some(1), Some(0)),
        "{held:#}"
    );
    assert!(d.exists(&orphan).await);

    let o = tasksub(&["sweep", "--grace-seconds", "0"], &d.env());
    assert_eq!(o.status.code(), Some(0));
    let done: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(done["orphansRemoved"], 1, "{done:#}");
    assert_eq!(done["actions"][0]["outcome"], "done");
    assert!(!d.exists(&orphan).await, "the orphan queue is still there");
    let (code, out) = doctor(&d.env());
    assert_eq!(code, Some(0), "{out}");

    let o = tasksub(&["sweep"], &[]);
    assert_eq!(o.status.code(), Some(2), "missing settings are bad usage");
    assert!(String::from_utf8_lossy(&o.stderr).contains("TASKSUB_TOPIC_ARN"));
}
