//! The converge scenarios (issue #21's ten cases) on two stages: the in-memory fake, and moto behind the
//! fault proxy, whose canned answers play the topic owners (a 403 AuthorizationError for a topic that
//! refuses us). Each scenario runs the real handler and sweeper with the settings of its moment, plays
//! the other actors (operators, topic owners, a second settings version), and checks what really exists.

pub mod cases;
mod fake_stage;
mod moto_stage;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tasksub_core::record::Record;
use tasksub_core::settings::{vars, Settings};
use tasksub_functions::sweeper::Report;
use tasksub_functions::{HandlerError, Outcome};

pub use fake_stage::FakeStage;
pub use moto_stage::MotoStage;

use crate::events::Task;

/// What exists for one task, as the service reports it.
#[derive(Debug, Clone, Default)]
pub struct Look {
    /// The record.
    pub record: Option<Record>,
    /// The queue's attributes, when it exists.
    pub queue: Option<BTreeMap<String, String>>,
    /// The task's subscriptions: topic → (ARN, attributes).
    pub subscriptions: BTreeMap<String, (String, BTreeMap<String, String>)>,
}

impl Look {
    /// The topics the task is subscribed to.
    pub fn topics(&self) -> Vec<&str> {
        self.subscriptions.keys().map(String::as_str).collect()
    }
}

/// Where the scenarios run.
#[allow(async_fn_in_trait)]
pub trait Stage {
    /// `fake` or `moto`.
    fn name(&self) -> &'static str;
    /// The topics of this stage (three, all existing).
    fn topics(&self) -> &[String];
    /// The settings of this stage with these topics and extra settings.
    fn settings(&self, topics: &[&str], extra: &[(&str, &str)]) -> Settings {
        let mut m = self.base();
        m.remove(vars::TOPIC_ARN);
        m.insert(vars::TOPIC_ARNS.to_owned(), topics.join(","));
        m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Settings::from_map(&m).unwrap_or_else(|e| panic!("[{}] settings: {e}", self.name()))
    }
    /// The stage's settings map (table, account, region, clusters, prefix).
    fn base(&self) -> BTreeMap<String, String>;
    /// A task in our cluster that ECS says runs.
    async fn running_task(&self) -> Task;
    /// ECS says the task stopped.
    async fn stop_task(&self, task: &Task);
    /// Handles an event with a cold controller on these settings.
    async fn handle(&self, settings: &Settings, event: &Value) -> Result<Outcome, HandlerError>;
    /// One sweep (grace 0) at `at` on these settings.
    async fn sweep(&self, settings: &Settings, at: DateTime<Utc>, dry_run: bool) -> Report;
    /// The topic's owner refuses us Subscribe and ListSubscriptionsByTopic (AuthorizationError).
    fn refuse(&self, topic: &str);
    /// The topic's owner admits us again.
    fn admit(&self, topic: &str);
    /// The next calls of `op` after `skip` of them pass fail once with a 5xx (a transient error).
    fn fail_once(&self, op: &'static str, skip: usize);
    /// An operator deletes the task's queue by hand.
    async fn delete_queue(&self, task: &Task, settings: &Settings);
    /// The topic's owner removes a subscription.
    async fn owner_unsubscribes(&self, subscription_arn: &str);
    /// The topic is deleted (with every subscription to it, as AWS does).
    async fn delete_topic(&self, topic: &str);
    /// The deleted topic is created again under the same name (the same ARN).
    async fn create_topic(&self, topic: &str);
    /// The topic is deleted and re-created under the same name.
    async fn recreate_topic(&self, topic: &str) {
        self.delete_topic(topic).await;
        self.create_topic(topic).await;
    }
    /// Someone edits the task's record by hand so that it no longer reads (`state` = `ready`).
    async fn corrupt_record(&self, task_id: &str);
    /// What exists for the task.
    async fn look(&self, task: &Task, settings: &Settings) -> Look;
    /// More than a minute passes for SQS's rule on deleted queue names.
    fn after_a_minute(&self);
}

/// The queue name of a task under these settings.
pub fn queue_name(settings: &Settings, task: &Task) -> String {
    format!("{}{}", settings.queue.prefix.as_str(), task.id)
}

/// The queue ARN of a task under these settings.
pub fn queue_arn(settings: &Settings, task: &Task) -> String {
    let h = &settings.home;
    format!(
        "arn:{}:sqs:{}:{}:{}",
        h.partition,
        h.region,
        h.account,
        queue_name(settings, task)
    )
}
