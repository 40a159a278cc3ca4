//! The converge stage in memory: the fake, its ECS tasks, its topic owners.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::event::TaskStatus;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::EcsTask;
use tasksub_core::settings::{Settings, SweepSettings};
use tasksub_functions::fake::Fake;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::ports::{Queues, Subscriptions};
use tasksub_functions::sweeper::{Report, RunOptions, Sweeper};
use tasksub_functions::{Controller, HandlerError, Outcome};

use super::{queue_arn, queue_name, Look, Stage};
use crate::events::{Task, ACCOUNT, REGION};
use crate::world::{settings_map, OUR_CLUSTER};

/// The fake stage.
pub struct FakeStage {
    fake: Fake,
    ports: Instrumented<Fake>,
    topics: Vec<String>,
}

impl FakeStage {
    /// A fresh stage with three topics: at home, in another region, in another account.
    pub fn new() -> Self {
        let fake = Fake::new();
        Self {
            ports: Instrumented::new(fake.clone()),
            fake,
            topics: vec![
                format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"),
                "arn:aws:sns:eu-west-1:123456789012:flags".to_owned(),
                "arn:aws:sns:us-east-1:210987654321:events".to_owned(),
            ],
        }
    }

    /// The fake.
    pub fn fake(&self) -> &Fake {
        &self.fake
    }

    fn ecs(&self, task: &Task, last: TaskStatus, desired: TaskStatus) {
        self.fake.put_task(EcsTask {
            task_arn: task.arn.clone(),
            cluster_arn: task.cluster.clone(),
            group: task.group.clone(),
            last_status: last,
            desired_status: desired,
            version: Some(3),
            created_at: Some(Utc::now() - Duration::hours(1)),
            stopping_at: None,
            stopped_at: None,
        });
    }
}

impl Default for FakeStage {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage for FakeStage {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn topics(&self) -> &[String] {
        &self.topics
    }
    fn base(&self) -> BTreeMap<String, String> {
        settings_map(&self.topics[0], "records", "tasksub-")
    }
    async fn running_task(&self) -> Task {
        let t = Task::new(OUR_CLUSTER);
        self.ecs(&t, TaskStatus::Running, TaskStatus::Running);
        t
    }
    async fn stop_task(&self, task: &Task) {
        self.ecs(task, TaskStatus::Stopped, TaskStatus::Stopped);
    }
    async fn handle(&self, settings: &Settings, event: &Value) -> Result<Outcome, HandlerError> {
        let c = Controller::with_ports(settings.clone(), self.ports.clone(), Role::Any);
        c.handle_json(event).await
    }
    async fn sweep(&self, settings: &Settings, at: DateTime<Utc>, dry_run: bool) -> Report {
        let sweep = SweepSettings {
            grace_seconds: 0,
            min_interval_ms: 0,
            max_actions: 1000,
            audit_per_run: 25,
            ..SweepSettings::default()
        };
        let s = Sweeper::with_ports(settings.clone(), sweep, self.ports.clone(), self.fake.clone());
        let options = RunOptions {
            dry_run,
            grace_seconds: Some(0),
            stop_by: None,
        };
        s.run(options, at).await.expect("sweep")
    }
    fn refuse(&self, topic: &str) {
        self.fake.refuse_topic(topic, ErrorKind::AccessDenied);
    }
    fn admit(&self, topic: &str) {
        self.fake.admit_topic(topic);
    }
    fn fail_once(&self, op: &'static str, skip: usize) {
        self.ports.fail_nth(op, skip + 1, ErrorKind::Transient);
    }
    async fn delete_queue(&self, task: &Task, settings: &Settings) {
        let url = format!(
            "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
            queue_name(settings, task)
        );
        self.fake.delete(&url).await.expect("DeleteQueue");
    }
    async fn owner_unsubscribes(&self, subscription_arn: &str) {
        self.fake.unsubscribe(subscription_arn).await.expect("Unsubscribe");
    }
    async fn delete_topic(&self, topic: &str) {
        self.fake.delete_topic(topic);
    }
    async fn create_topic(&self, topic: &str) {
        self.fake.create_topic(topic);
    }
    async fn corrupt_record(&self, task_id: &str) {
        self.fake
            .insert_malformed(task_id, "malformed record item: attribute state");
    }
    fn after_a_minute(&self) {
        self.fake.set_now(Utc::now() + Duration::seconds(61));
    }
    async fn look(&self, task: &Task, settings: &Settings) -> Look {
        let name = queue_name(settings, task);
        let endpoint = queue_arn(settings, task);
        Look {
            record: self.fake.record(&task.id),
            queue: self
                .fake
                .queues()
                .into_iter()
                .find(|q| q.name == name)
                .map(|q| q.attributes),
            subscriptions: self
                .fake
                .subscriptions()
                .into_iter()
                .filter(|(_, s)| s.endpoint == endpoint)
                .map(|(arn, s)| (s.topic_arn, (arn, s.attributes)))
                .collect(),
        }
    }
}
