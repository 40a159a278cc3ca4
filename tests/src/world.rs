//! A world is a controller plus a way to look at what exists. The same scenarios run in the fake
//! world (in memory) and in the moto world (real SDK calls on the emulator).

use std::collections::BTreeMap;

use aws_sdk_sns::types::MessageAttributeValue;
use tasksub_core::decide::Role;
use tasksub_core::record::Record;
use tasksub_core::settings::{vars, Settings};
use tasksub_functions::aws::AwsPorts;
use tasksub_functions::fake::Fake;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::ports::{Ports, Records};
use tasksub_functions::Controller;

use crate::events::{cluster_arn, Task, ACCOUNT, REGION};
use crate::moto::{unique, Moto};

/// The cluster every world owns.
pub const OUR_CLUSTER: &str = "prod";

/// What exists for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The stored record.
    pub record: Option<Record>,
    /// Whether the task's queue exists.
    pub queue_exists: bool,
    /// Subscription ARNs on the topic whose endpoint is the task's queue.
    pub subscriptions: Vec<String>,
}

/// What a task's queue and subscription were created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    /// Queue attributes (as the service reports them).
    pub queue_attributes: BTreeMap<String, String>,
    /// Queue tags.
    pub queue_tags: BTreeMap<String, String>,
    /// Subscription attributes.
    pub subscription_attributes: BTreeMap<String, String>,
}

/// A backend the scenarios run on.
#[allow(async_fn_in_trait)]
pub trait World {
    /// The ports under the instrumentation.
    type P: Ports;
    /// `fake` or `moto`.
    fn backend(&self) -> &'static str;
    /// The controller (Role::Any, as the CLI's replay).
    fn controller(&self) -> &Controller<Instrumented<Self::P>>;
    /// A new controller on the same backend, as a cold Lambda instance would be.
    fn cold_controller(&self, role: Role) -> Controller<Instrumented<Self::P>>;
    /// What exists for the task.
    async fn observe(&self, task: &Task) -> Observed;
    /// Publishes a message on the topic; true when the task's queue received it.
    async fn delivers(&self, task: &Task) -> bool;
    /// Queues under the prefix and subscriptions on the topic.
    async fn leftovers(&self) -> (usize, usize);
    /// The queue's and subscription's attributes, if both exist.
    async fn wire(&self, task: &Task) -> Option<Wire>;
    /// The calls and faults.
    fn calls(&self) -> &Instrumented<Self::P> {
        self.controller().ports()
    }
    /// Settings of this world.
    fn settings(&self) -> &Settings {
        self.controller().settings()
    }
    /// A new task in our cluster.
    fn task(&self) -> Task {
        Task::new(OUR_CLUSTER)
    }
}

pub fn settings_map(topic_arn: &str, table: &str, prefix: &str) -> BTreeMap<String, String> {
    [
        (vars::TOPIC_ARN, topic_arn.to_owned()),
        (vars::TABLE, table.to_owned()),
        (vars::QUEUE_PREFIX, prefix.to_owned()),
        (vars::ACCOUNT_ID, ACCOUNT.to_owned()),
        (vars::AWS_REGION, REGION.to_owned()),
        (
            vars::CLUSTERS,
            format!("{},{}", cluster_arn(OUR_CLUSTER), "FargateCluster,default"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The in-memory world.
pub struct FakeWorld {
    fake: Fake,
    controller: Controller<Instrumented<Fake>>,
}

impl FakeWorld {
    /// A fresh world.
    pub fn new() -> Self {
        Self::with(&[])
    }
    /// A fresh world with extra settings.
    pub fn with(extra: &[(&str, &str)]) -> Self {
        let mut m = settings_map(&format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"), "records", "tasksub-");
        m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let settings = Settings::from_map(&m).expect("settings");
        let fake = Fake::new();
        let controller = Controller::with_ports(settings, Instrumented::new(fake.clone()), Role::Any);
        Self { fake, controller }
    }
    /// The fake behind the instrumentation.
    pub fn fake(&self) -> &Fake {
        &self.fake
    }
}

impl Default for FakeWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl World for FakeWorld {
    type P = Fake;
    fn backend(&self) -> &'static str {
        "fake"
    }
    fn controller(&self) -> &Controller<Instrumented<Fake>> {
        &self.controller
    }
    fn cold_controller(&self, role: Role) -> Controller<Instrumented<Fake>> {
        Controller::with_ports(self.settings().clone(), Instrumented::new(self.fake.clone()), role)
    }
    async fn observe(&self, task: &Task) -> Observed {
        let name = format!("{}{}", self.settings().queue.prefix.as_str(), task.id);
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        Observed {
            record: self.fake.record(&task.id),
            queue_exists: self.fake.queues().iter().any(|q| q.name == name),
            subscriptions: self
                .fake
                .subscriptions()
                .into_iter()
                .filter(|(_, s)| s.endpoint == arn)
                .map(|(a, _)| a)
                .collect(),
        }
    }
    async fn delivers(&self, task: &Task) -> bool {
        let o = self.observe(task).await;
        o.queue_exists && !o.subscriptions.is_empty()
    }
    async fn leftovers(&self) -> (usize, usize) {
        (self.fake.queues().len(), self.fake.subscriptions().len())
    }
    async fn wire(&self, task: &Task) -> Option<Wire> {
        let name = format!("{}{}", self.settings().queue.prefix.as_str(), task.id);
        let q = self.fake.queues().into_iter().find(|q| q.name == name)?;
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        let s = self.fake.subscriptions().into_values().find(|s| s.endpoint == arn)?;
        Some(Wire {
            queue_attributes: q.attributes,
            queue_tags: q.tags,
            subscription_attributes: s.attributes,
        })
    }
}

/// The world on moto: its own topic, table and queue prefix on the shared emulator.
pub struct MotoWorld {
    sdk: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    aws: AwsPorts,
    controller: Controller<Instrumented<AwsPorts>>,
}

impl MotoWorld {
    /// A fresh world (creates a topic and a table).
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// A fresh world with extra settings.
    pub async fn with(extra: &[(&str, &str)]) -> Self {
        let sdk = Moto::get().sdk_config().await;
        let id = unique("w");
        let sns = aws_sdk_sns::Client::new(&sdk);
        let topic = sns
            .create_topic()
            .name(format!("topic-{id}"))
            .send()
            .await
            .expect("CreateTopic");
        let topic_arn = topic.topic_arn().expect("topic arn").to_owned();
        let table = format!("records-{id}");
        create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
        let mut m = settings_map(&topic_arn, &table, &format!("tasksub-{id}-"));
        m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let settings = Settings::from_map(&m).expect("settings");
        let aws = AwsPorts::new(&sdk, &table);
        let controller = Controller::with_ports(settings, Instrumented::new(aws.clone()), Role::Any);
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns,
            aws,
            controller,
            sdk,
        }
    }

    /// The SDK config pointing at moto.
    pub fn sdk(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    fn queue_name(&self, task: &Task) -> String {
        format!("{}{}", self.settings().queue.prefix.as_str(), task.id)
    }

    async fn queue_url(&self, task: &Task) -> Option<String> {
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(self.queue_name(task))
            .send()
            .await
            .ok()?;
        out.queue_url().map(str::to_owned)
    }

    async fn topic_subscriptions(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut pages = self
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(self.settings().topics[0].arn.as_str())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for s in page.expect("ListSubscriptionsByTopic").subscriptions() {
                out.push((
                    s.subscription_arn().unwrap_or_default().to_owned(),
                    s.endpoint().unwrap_or_default().to_owned(),
                ));
            }
        }
        out
    }
}

/// Creates a records table the way the infrastructure does (key `taskId`, on demand).
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("taskId")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("taskId")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");
}

impl World for MotoWorld {
    type P = AwsPorts;
    fn backend(&self) -> &'static str {
        "moto"
    }
    fn controller(&self) -> &Controller<Instrumented<AwsPorts>> {
        &self.controller
    }
    fn cold_controller(&self, role: Role) -> Controller<Instrumented<AwsPorts>> {
        Controller::with_ports(self.settings().clone(), Instrumented::new(self.aws.clone()), role)
    }
    async fn observe(&self, task: &Task) -> Observed {
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", self.queue_name(task));
        Observed {
            record: self.aws.get(&task.id).await.expect("GetItem"),
            queue_exists: self.queue_url(task).await.is_some(),
            subscriptions: self
                .topic_subscriptions()
                .await
                .into_iter()
                .filter(|(_, e)| *e == arn)
                .map(|(a, _)| a)
                .collect(),
        }
    }
    async fn delivers(&self, task: &Task) -> bool {
        let marker = unique("msg");
        self.sns
            .publish()
            .topic_arn(self.settings().topics[0].arn.as_str())
            .message(format!("hello {marker}"))
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("test")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("Publish");
        let Some(url) = self.queue_url(task).await else {
            return false;
        };
        let out = self
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let mut got = false;
        for m in out.messages() {
            got |= m.body().is_some_and(|b| b.contains(&marker));
            if let Some(h) = m.receipt_handle() {
                self.sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
        got
    }
    async fn leftovers(&self) -> (usize, usize) {
        let prefix = self.settings().queue.prefix.as_str().to_owned();
        let queues = self
            .sqs
            .list_queues()
            .queue_name_prefix(&prefix)
            .send()
            .await
            .expect("ListQueues");
        (queues.queue_urls().len(), self.topic_subscriptions().await.len())
    }
    async fn wire(&self, task: &Task) -> Option<Wire> {
        use aws_sdk_sqs::types::QueueAttributeName;
        let url = self.queue_url(task).await?;
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("GetQueueAttributes");
        let tags = self
            .sqs
            .list_queue_tags()
            .queue_url(&url)
            .send()
            .await
            .expect("ListQueueTags");
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", self.queue_name(task));
        let (sub, _) = self.topic_subscriptions().await.into_iter().find(|(_, e)| *e == arn)?;
        let sattrs = self
            .sns
            .get_subscription_attributes()
            .subscription_arn(sub)
            .send()
            .await
            .expect("GetSubscriptionAttributes");
        Some(Wire {
            queue_attributes: attrs
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect(),
            queue_tags: tags
                .tags()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            subscription_attributes: sattrs
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}
