//! The converge stage on moto: every call of the controllers and sweepers goes through the fault
//! proxy, whose canned answers play the topic owners (a 403 AuthorizationError) and whose injected 5xx
//! play the interruptions; moto's ECS runs the tasks; what exists is read straight from moto. The other
//! actors' edits go through the proxy too, so its mirror of the AWS rules stays right.

use std::collections::BTreeMap;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::settings::{vars, Settings, SweepSettings};
use tasksub_functions::aws::{AwsPorts, AwsTasks};
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::ports::Records;
use tasksub_functions::sweeper::{Report, RunOptions, Sweeper};
use tasksub_functions::{Controller, HandlerError, Outcome};

use super::{queue_arn, queue_name, Look, Stage};
use crate::ecs::EcsCluster;
use crate::events::{Task, ACCOUNT, REGION};
use crate::moto::{unique, Moto};
use crate::proxy::{wire, Fault, Proxy};
use crate::world::create_table;

/// The moto stage.
pub struct MotoStage {
    direct: SdkConfig,
    proxied: SdkConfig,
    /// The proxy every controller and sweeper goes through.
    pub proxy: Proxy,
    ecs: EcsCluster,
    table: String,
    prefix: String,
    topics: Vec<String>,
}

impl MotoStage {
    /// A fresh stage: three topics, a table, a cluster, a prefix of its own.
    pub async fn new() -> Self {
        let direct = Moto::get().sdk_config().await;
        let proxy = Proxy::start(Moto::get().endpoint(), 21).await;
        let proxied = proxy
            .sdk_config(
                RetryConfig::standard().with_max_attempts(1),
                TimeoutConfig::builder().build(),
            )
            .await;
        let id = unique("cv");
        let sns = aws_sdk_sns::Client::new(&direct);
        let mut topics = Vec::new();
        for name in ["a", "b", "c"] {
            let t = sns
                .create_topic()
                .name(format!("{name}-{id}"))
                .send()
                .await
                .expect("CreateTopic");
            topics.push(t.topic_arn().expect("topic ARN").to_owned());
        }
        let table = format!("records-{id}");
        create_table(&aws_sdk_dynamodb::Client::new(&direct), &table).await;
        let ecs = EcsCluster::new(&direct).await;
        Self {
            prefix: format!("tasksub-{id}-"),
            direct,
            proxied,
            proxy,
            ecs,
            table,
            topics,
        }
    }

    /// The SDK config straight to moto.
    pub fn direct(&self) -> &SdkConfig {
        &self.direct
    }

    fn sweep_settings() -> SweepSettings {
        SweepSettings {
            grace_seconds: 0,
            min_interval_ms: 0,
            max_actions: 1000,
            audit_per_run: 25,
            ..SweepSettings::default()
        }
    }

    async fn queue_attributes(&self, settings: &Settings, task: &Task) -> Option<BTreeMap<String, String>> {
        let sqs = aws_sdk_sqs::Client::new(&self.region_of(settings));
        let url = sqs
            .get_queue_url()
            .queue_name(queue_name(settings, task))
            .send()
            .await
            .ok()?;
        let out = sqs
            .get_queue_attributes()
            .queue_url(url.queue_url()?)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .ok()?;
        Some(
            out.attributes()?
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect(),
        )
    }

    /// The direct SDK config in the settings' home region.
    fn region_of(&self, settings: &Settings) -> SdkConfig {
        self.direct
            .to_builder()
            .region(aws_config::Region::new(settings.home.region.clone()))
            .build()
    }
}

impl Stage for MotoStage {
    fn name(&self) -> &'static str {
        "moto"
    }
    fn topics(&self) -> &[String] {
        &self.topics
    }
    fn base(&self) -> BTreeMap<String, String> {
        [
            (vars::TOPIC_ARNS, self.topics[0].clone()),
            (vars::TABLE, self.table.clone()),
            (vars::QUEUE_PREFIX, self.prefix.clone()),
            (vars::ACCOUNT_ID, ACCOUNT.to_owned()),
            (vars::AWS_REGION, REGION.to_owned()),
            (vars::CLUSTERS, self.ecs.arn().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
    async fn running_task(&self) -> Task {
        self.ecs.run(1, "service:orders").await.remove(0)
    }
    async fn stop_task(&self, task: &Task) {
        self.ecs.stop(task).await;
    }
    async fn handle(&self, settings: &Settings, event: &Value) -> Result<Outcome, HandlerError> {
        let ports = AwsPorts::for_settings(&self.proxied, settings);
        let c = Controller::with_ports(settings.clone(), Instrumented::new(ports), Role::Any);
        Box::pin(c.handle_json(event)).await
    }
    async fn sweep(&self, settings: &Settings, at: DateTime<Utc>, dry_run: bool) -> Report {
        let ports = Instrumented::new(AwsPorts::for_settings(&self.proxied, settings));
        let s = Sweeper::with_ports(
            settings.clone(),
            Self::sweep_settings(),
            ports,
            AwsTasks::new(&self.proxied),
        );
        let options = RunOptions {
            dry_run,
            grace_seconds: Some(0),
            stop_by: None,
        };
        Box::pin(s.run(options, at)).await.expect("sweep")
    }
    fn refuse(&self, topic: &str) {
        self.proxy.answer("Subscribe", topic, wire::AUTHORIZATION_ERROR);
        self.proxy
            .answer("ListSubscriptionsByTopic", topic, wire::AUTHORIZATION_ERROR);
    }
    fn admit(&self, topic: &str) {
        self.proxy.stop_answering(topic);
    }
    fn fail_once(&self, op: &'static str, skip: usize) {
        self.proxy.fail_after(op, skip, 1, Fault::Status(500));
    }
    async fn delete_queue(&self, task: &Task, settings: &Settings) {
        let sqs = aws_sdk_sqs::Client::new(&self.proxied);
        let url = sqs
            .get_queue_url()
            .queue_name(queue_name(settings, task))
            .send()
            .await
            .expect("GetQueueUrl");
        sqs.delete_queue()
            .queue_url(url.queue_url().expect("URL"))
            .send()
            .await
            .expect("DeleteQueue");
    }
    async fn owner_unsubscribes(&self, subscription_arn: &str) {
        aws_sdk_sns::Client::new(&self.proxied)
            .unsubscribe()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .expect("Unsubscribe");
    }
    async fn delete_topic(&self, topic: &str) {
        let sns = aws_sdk_sns::Client::new(&self.proxied);
        // moto keeps a deleted topic's subscriptions (AWS deletes them with the topic): its owner removes
        // them first, as AWS would have.
        let subs = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .send()
            .await
            .expect("List");
        for s in subs.subscriptions() {
            let arn = s.subscription_arn().unwrap_or_default();
            let _ = sns.unsubscribe().subscription_arn(arn).send().await;
        }
        sns.delete_topic().topic_arn(topic).send().await.expect("DeleteTopic");
    }
    async fn create_topic(&self, topic: &str) {
        let sns = aws_sdk_sns::Client::new(&self.proxied);
        let name = topic.rsplit(':').next().expect("a topic name");
        let again = sns.create_topic().name(name).send().await.expect("CreateTopic");
        assert_eq!(again.topic_arn(), Some(topic), "a re-created topic keeps its ARN");
    }
    async fn corrupt_record(&self, task_id: &str) {
        aws_sdk_dynamodb::Client::new(&self.direct)
            .update_item()
            .table_name(&self.table)
            .key("taskId", AttributeValue::S(task_id.to_owned()))
            .update_expression("SET #s = :s")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":s", AttributeValue::S("ready".into()))
            .send()
            .await
            .expect("UpdateItem");
    }
    fn after_a_minute(&self) {
        self.proxy.advance(std::time::Duration::from_secs(61));
    }
    async fn look(&self, task: &Task, settings: &Settings) -> Look {
        let record = AwsPorts::for_settings(&self.direct, settings)
            .get(&task.id)
            .await
            .ok()
            .flatten();
        let endpoint = queue_arn(settings, task);
        let mut subscriptions = BTreeMap::new();
        for topic in &self.topics {
            let sns = aws_sdk_sns::Client::new(&self.direct);
            let Ok(page) = sns.list_subscriptions_by_topic().topic_arn(topic).send().await else {
                continue;
            };
            for s in page
                .subscriptions()
                .iter()
                .filter(|s| s.endpoint() == Some(endpoint.as_str()))
            {
                let arn = s.subscription_arn().unwrap_or_default().to_owned();
                let attrs = sns
                    .get_subscription_attributes()
                    .subscription_arn(&arn)
                    .send()
                    .await
                    .ok()
                    .and_then(|a| a.attributes().cloned())
                    .unwrap_or_default();
                subscriptions.insert(topic.clone(), (arn, attrs.into_iter().collect()));
            }
        }
        Look {
            record,
            queue: self.queue_attributes(settings, task).await,
            subscriptions,
        }
    }
}
