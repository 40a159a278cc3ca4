//! `tasksub doctor` and `tasksub sweep --dry-run` agree with the sweeper on every converge scenario
//! (issue #21's cases, `tasksub_tests::converge::cases`): before each sweep of a scenario, the real
//! binaries judge the same moment (`--at`) through the same fault proxy, and
//! - the CLI's dry run plans exactly what the sweeper's own dry run plans (actions, held, refusals);
//! - doctor's verdicts follow from it: leftovers, desired state and topic refusals are `ok` exactly when
//!   the dry run has none, every task the dry run acts on is named, every reason to hold is a check.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tasksub_core::settings::Settings;
use tasksub_functions::sweeper::Report;
use tasksub_functions::{HandlerError, Outcome};
use tasksub_tests::converge::{cases, Look, MotoStage, Stage};
use tasksub_tests::events::Task;

/// The moto stage, with every sweep first judged by the binaries.
struct CliStage {
    inner: MotoStage,
    /// The settings maps the scenario built, to hand the binaries the same environment.
    maps: Mutex<Vec<(Settings, BTreeMap<String, String>)>>,
    /// How many sweeps were judged (each scenario must judge at least one).
    judged: Mutex<usize>,
}

const ORPHANS: [&str; 3] = ["remove-orphan", "remove-stray-queue", "unsubscribe-orphan"];

impl CliStage {
    async fn new() -> Self {
        Self {
            inner: MotoStage::new().await,
            maps: Mutex::new(Vec::new()),
            judged: Mutex::new(0),
        }
    }

    fn env_of(&self, settings: &Settings) -> Vec<(String, String)> {
        let maps = self.maps.lock().expect("maps");
        let map = maps
            .iter()
            .find(|(s, _)| s == settings)
            .map(|(_, m)| m.clone())
            .expect("the scenario built these settings with Stage::settings");
        let mut env: Vec<(String, String)> = map.into_iter().collect();
        for (k, v) in [
            ("TASKSUB_SWEEP_GRACE_SECONDS", "0"),
            ("TASKSUB_SWEEP_MIN_INTERVAL_MS", "0"),
            ("TASKSUB_SWEEP_MAX_ACTIONS", "1000"),
            ("TASKSUB_SWEEP_AUDIT_PER_RUN", "25"),
        ] {
            env.push((k.into(), v.into()));
        }
        env.push(("AWS_ENDPOINT_URL".into(), self.inner.proxy.url()));
        env
    }

    /// Runs the binary off the runtime's workers (the proxy it talks to runs on them).
    async fn run(&self, args: Vec<String>, env: Vec<(String, String)>) -> (Option<i32>, Value) {
        let shown = args.join(" ");
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            common::tasksub(&args, &env)
        })
        .await
        .expect("tasksub ran");
        let text = common::stdout(&out);
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("tasksub {shown}: not JSON ({e}): {text}\n{}", common::stderr(&out)));
        (out.status.code(), json)
    }

    async fn judge(&self, settings: &Settings, at: DateTime<Utc>) {
        let env = self.env_of(settings);
        let at_arg = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let own = serde_json::to_value(self.inner.sweep(settings, at, true).await).expect("report JSON");
        let sweep_args = vec!["sweep".to_owned(), "--dry-run".into(), "--at".into(), at_arg.clone()];
        let (_, cli) = self.run(sweep_args, env.clone()).await;
        assert_eq!(
            plan(&cli),
            plan(&own),
            "the CLI's dry run plans what the sweeper's plans, at {at_arg}"
        );
        let doctor_args = vec!["doctor".to_owned(), "--json".into(), "--at".into(), at_arg.clone()];
        let (code, doctor) = self.run(doctor_args, env).await;
        agree(&doctor, &own, code);
        *self.judged.lock().expect("judged") += 1;
    }
}

/// What a dry run decides, in a comparable form.
fn plan(r: &Value) -> Value {
    let pick = |key: &str, fields: &[&str]| -> Value {
        let mut rows: Vec<Value> = r[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| Value::Array(fields.iter().map(|f| x[*f].clone()).collect()))
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by_key(|v| v.to_string());
        Value::Array(rows)
    };
    serde_json::json!({
        "actions": pick("actions", &["action", "taskId", "steps", "outcome"]),
        "held": pick("held", &["reason", "taskId", "queue"]),
        "refusals": pick("refusals", &["topic", "taskId", "kind", "attempts"]),
        "counts": [r["quarantined"], r["orphansFound"], r["orphanSubscriptionsFound"], r["waiting"], r["degradedTopics"]],
    })
}

/// Doctor's verdicts follow from the sweeper's dry run.
fn agree(doctor: &Value, dry: &Value, code: Option<i32>) {
    let checks: BTreeMap<String, (String, String)> = doctor["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("check"), (s("status"), s("detail")))
        })
        .collect();
    let actions = dry["actions"].as_array().cloned().unwrap_or_default();
    let of = |orphans: bool| -> Vec<&Value> {
        actions
            .iter()
            .filter(|a| a["action"] != "audit")
            .filter(|a| ORPHANS.contains(&a["action"].as_str().unwrap_or_default()) == orphans)
            .collect()
    };
    let refusals = dry["refusals"].as_array().cloned().unwrap_or_default();
    for (check, due) in [("leftovers", of(true)), ("desired state", of(false))] {
        let (status, detail) = &checks[check];
        assert_eq!(
            status == "ok",
            due.is_empty(),
            "doctor's {check}: {status} {detail}; the dry run: {due:?}"
        );
        for a in due {
            let named = [&a["taskId"], &a["queue"], &a["detail"]]
                .iter()
                .any(|v| v.as_str().is_some_and(|n| detail.contains(n)));
            assert!(named, "doctor's {check} does not name {a}: {detail}");
        }
    }
    let (status, detail) = &checks["topic refusals"];
    assert_eq!(
        status == "ok",
        refusals.is_empty(),
        "doctor's refusals: {detail}; the dry run: {refusals:?}"
    );
    for r in &refusals {
        let (topic, task) = (
            r["topic"].as_str().unwrap_or_default(),
            r["taskId"].as_str().unwrap_or_default(),
        );
        assert!(
            detail.contains(topic) && detail.contains(task),
            "{detail} does not name {r}"
        );
    }
    let reasons: BTreeSet<String> = dry["held"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|x| x["reason"].as_str())
                .filter(|r| !matches!(*r, "grace" | "in-flight"))
                .map(|r| format!("held: {r}"))
                .collect()
        })
        .unwrap_or_default();
    let held: BTreeSet<String> = checks.keys().filter(|k| k.starts_with("held: ")).cloned().collect();
    assert_eq!(held, reasons, "doctor's held checks are the dry run's reasons");
    let problems = checks.values().any(|(s, _)| s == "problem");
    assert_eq!(
        code == Some(0),
        !problems,
        "doctor's exit code {code:?} and its problems: {checks:?}"
    );
}

impl Stage for CliStage {
    fn name(&self) -> &'static str {
        "moto+cli"
    }
    fn topics(&self) -> &[String] {
        self.inner.topics()
    }
    fn settings(&self, topics: &[&str], extra: &[(&str, &str)]) -> Settings {
        let mut m = self.base();
        m.remove(tasksub_core::settings::vars::TOPIC_ARN);
        m.insert(tasksub_core::settings::vars::TOPIC_ARNS.to_owned(), topics.join(","));
        m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let s = Settings::from_map(&m).expect("settings");
        self.maps.lock().expect("maps").push((s.clone(), m));
        s
    }
    fn base(&self) -> BTreeMap<String, String> {
        self.inner.base()
    }
    async fn running_task(&self) -> Task {
        self.inner.running_task().await
    }
    async fn stop_task(&self, task: &Task) {
        self.inner.stop_task(task).await
    }
    async fn handle(&self, settings: &Settings, event: &Value) -> Result<Outcome, HandlerError> {
        self.inner.handle(settings, event).await
    }
    async fn sweep(&self, settings: &Settings, at: DateTime<Utc>, dry_run: bool) -> Report {
        self.judge(settings, at).await;
        self.inner.sweep(settings, at, dry_run).await
    }
    fn refuse(&self, topic: &str) {
        self.inner.refuse(topic)
    }
    fn admit(&self, topic: &str) {
        self.inner.admit(topic)
    }
    fn fail_once(&self, op: &'static str, skip: usize) {
        self.inner.fail_once(op, skip)
    }
    async fn delete_queue(&self, task: &Task, settings: &Settings) {
        self.inner.delete_queue(task, settings).await
    }
    async fn owner_unsubscribes(&self, subscription_arn: &str) {
        self.inner.owner_unsubscribes(subscription_arn).await
    }
    async fn delete_topic(&self, topic: &str) {
        self.inner.delete_topic(topic).await
    }
    async fn create_topic(&self, topic: &str) {
        self.inner.create_topic(topic).await
    }
    async fn corrupt_record(&self, task_id: &str) {
        self.inner.corrupt_record(task_id).await
    }
    async fn look(&self, task: &Task, settings: &Settings) -> Look {
        self.inner.look(task, settings).await
    }
    fn after_a_minute(&self) {
        self.inner.after_a_minute()
    }
}

macro_rules! judged {
    ($($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let s = CliStage::new().await;
                cases::$case(&s).await;
                assert!(*s.judged.lock().expect("judged") > 0, "the scenario swept at least once");
            }
        )+
    };
}

// Every case that sweeps (an_adopted_queue_gets_the_new_policy never does).
judged!(
    a_refusing_topic_blocks_nothing,
    a_topic_refusing_to_the_end_leaves_nothing,
    a_retired_topic_is_never_forgotten,
    a_malformed_record_is_quarantined,
    an_older_generation_never_undoes_a_newer_one,
    a_changed_topic_setting_reaches_live_tasks,
    what_others_broke_is_repaired,
);
