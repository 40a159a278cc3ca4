//! The client on the real SDK path, against moto: the end-to-end flow with the controller, and the
//! failure cases on the wire (redelivery, heartbeats, shutdown mid-batch, a queue that appears late).
//!
//! Every test uses its own prefix, topic and table, so they run in parallel on one emulator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as Av, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_client::{BoxError, Client, ClientBuilder, Delivery, Message, RunReport, State};
use tasksub_core::record::attr;
use tasksub_core::settings::{vars, Settings};
use tasksub_tests::moto::{unique, Moto};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TASK_DOC: &str = "../fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json";

fn fixture(path: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// A fresh 32-hex-digit task ID (the naming contract accepts only hex IDs).
fn hex_task_id(label: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let keys = std::collections::hash_map::RandomState::new();
    let half = |salt: &[u8]| {
        let mut h = keys.build_hasher();
        h.write(salt);
        h.write(unique(label).as_bytes());
        h.finish()
    };
    format!("{:016x}{:016x}", half(b"a"), half(b"b"))
}

/// One test's world: an SDK config for moto, a task, its metadata endpoint and a unique prefix.
struct World {
    sdk: SdkConfig,
    sqs: aws_sdk_sqs::Client,
    prefix: String,
    task_arn: String,
    queue_name: String,
    metadata: MetadataServer,
}

impl World {
    async fn new(label: &str) -> Self {
        let id = hex_task_id(label);
        Self::for_task(label, &format!("arn:aws:ecs:us-east-1:123456789012:task/tests/{id}")).await
    }

    async fn for_task(label: &str, task_arn: &str) -> Self {
        let sdk = Moto::get().sdk_config().await;
        let prefix = format!("tasksub-{}-", unique(label));
        let task_id = task_arn.rsplit('/').next().unwrap();
        let metadata = MetadataServer::serve_task(with_task_arn(&fixture(TASK_DOC), task_arn).unwrap())
            .await
            .unwrap();
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
            queue_name: format!("{prefix}{task_id}"),
            prefix,
            task_arn: task_arn.to_owned(),
            metadata,
        }
    }

    /// A builder reading nothing from the process environment.
    fn builder(&self) -> ClientBuilder {
        Client::builder()
            .env_lookup(|_| None)
            .metadata_uri(self.metadata.uri())
            .queue_prefix(&self.prefix)
            .handle_sigterm(false)
    }

    /// Stands in for the controller in the failure-case tests (the end-to-end test uses the real one).
    async fn create_queue(&self) -> String {
        self.sqs
            .create_queue()
            .queue_name(&self.queue_name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    async fn send(&self, url: &str, body: &str) {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Visible plus in-flight messages.
    async fn remaining(&self, url: &str) -> (u64, u64) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        let n = |k: QueueAttributeName| attrs.get(&k).map_or(0, |v| v.parse().unwrap());
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Bodies a plain receive gets right now (they are then hidden for 30 s).
    async fn visible_bodies(&self, url: &str) -> Vec<String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let mut bodies: Vec<String> = out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.body)
            .collect();
        bodies.sort();
        bodies
    }
}

/// Forwards every handled message to the test, failing or sleeping as `behave` says.
fn forwarding(
    behave: impl Fn(&Message) -> Option<Duration> + Send + Sync + 'static,
) -> (impl tasksub_client::Handler, mpsc::UnboundedReceiver<Message>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = move |m: Message| {
        let tx = tx.clone();
        let pause = behave(&m);
        async move {
            if let Some(d) = pause {
                tokio::time::sleep(d).await;
            }
            let fail = m.body().starts_with("fail-once") && m.receive_count() == 1;
            tx.send(m).ok();
            if fail {
                Err::<(), BoxError>("failing the first delivery".into())
            } else {
                Ok(())
            }
        }
    };
    (handler, rx)
}

fn spawn_run<H: tasksub_client::Handler>(client: Client, handler: H) -> (CancellationToken, JoinHandle<RunReport>) {
    let stop = CancellationToken::new();
    let s = stop.clone();
    (
        stop,
        tokio::spawn(async move { client.run(handler, s).await.expect("run") }),
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Message>, within: Duration) -> Message {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a message in time")
        .expect("channel open")
}

async fn create_table(sdk: &SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr::TASK_ID)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(attr::TASK_ID)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_provisions_the_queue_from_a_replayed_event() {
    // GIVEN a topic and a record table, and the controller's settings
    let event_json = fixture("../fixtures/ecs-events/fargate-task-running-awsvpc-docs.json");
    let mut event: serde_json::Value = serde_json::from_str(&event_json).unwrap();
    event["time"] = serde_json::Value::String(chrono::Utc::now().to_rfc3339());
    let task_arn = event["detail"]["taskArn"].as_str().unwrap().to_owned();
    let w = World::for_task("e2e", &task_arn).await;
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let topic_arn = sns
        .create_topic()
        .name(unique("e2e"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let table = unique("e2e-records");
    create_table(&w.sdk, &table).await;
    let settings: BTreeMap<String, String> = [
        (vars::TOPIC_ARN, topic_arn.as_str()),
        (vars::ACCOUNT_ID, "123456789012"),
        (vars::AWS_REGION, "us-east-1"),
        (vars::TABLE, table.as_str()),
        (vars::CLUSTERS, "FargateCluster"),
        (vars::QUEUE_PREFIX, w.prefix.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::from_map(&settings).unwrap();
    let controller = tasksub_functions::Controller::new(settings, &w.sdk, tasksub_core::decide::Role::Provisioner);

    // AND a client in that task, started before the queue exists, waiting for READY
    let client = w.builder().wait_for_ready(&table).build(&w.sdk).unwrap();
    let (handler, mut rx) = forwarding(|_| None);
    let (stop, run) = spawn_run(client, handler);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // WHEN the controller handles the replayed RUNNING event
    let outcome = controller.handle_json(&event).await.expect("the controller provisions");
    println!("controller outcome: {outcome:?}");
    // AND a message is published on the topic once the client found its queue
    let url = loop {
        if let Ok(out) = w.sqs.get_queue_url().queue_name(&w.queue_name).send().await {
            break out.queue_url.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let published = sns
        .publish()
        .topic_arn(&topic_arn)
        .message(r#"{"invalidate":"prices"}"#)
        .message_attributes(
            "kind",
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("cache")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // THEN the client receives it (raw delivery, attributes kept) and deletes it
    let m = next(&mut rx, Duration::from_secs(60)).await;
    assert_eq!(m.body(), r#"{"invalidate":"prices"}"#);
    assert_eq!(m.delivery(), Delivery::Raw);
    assert_eq!(m.attribute("kind"), Some("cache"));
    assert_eq!(m.receive_count(), 1);
    assert!(published.message_id.is_some());
    // AND on shutdown it drains and returns
    tokio::time::sleep(Duration::from_millis(1500)).await; // let the 1 s delete flush run
    stop.cancel();
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap();
    assert!(report.subscribed);
    assert_eq!(
        (report.received, report.succeeded, report.deleted, report.returned),
        (1, 1, 1, 0)
    );
    assert_eq!(w.remaining(&url).await, (0, 0), "deleted, nothing in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_envelopes_are_unwrapped_on_the_wire() {
    // GIVEN a subscription with raw delivery off
    let w = World::new("envelope").await;
    let url = w.create_queue().await;
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let topic_arn = sns
        .create_topic()
        .name(unique("envelope"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{}", w.queue_name);
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    let (handler, mut rx) = forwarding(|_| None);
    let (stop, run) = spawn_run(w.builder().build(&w.sdk).unwrap(), handler);
    // WHEN a message with attributes is published
    let published = sns
        .publish()
        .topic_arn(&topic_arn)
        .subject("greeting")
        .message("hello")
        .message_attributes(
            "n",
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("Number")
                .string_value("7")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // THEN the handler sees the published body and attributes, and the SNS identity
    let m = next(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(m.delivery(), Delivery::SnsEnvelope);
    assert_eq!(m.body(), "hello");
    assert_eq!(m.attribute("n"), Some("7"));
    assert_eq!(m.sns_message_id(), published.message_id.as_deref());
    assert_eq!(m.topic_arn(), Some(topic_arn.as_str()));
    assert_eq!(m.subject(), Some("greeting"));
    assert!(m.timestamp().is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let report = run.await.unwrap();
    assert_eq!(report.deleted, 1);
    assert_eq!(w.remaining(&url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_is_redelivered_and_then_deleted() {
    let w = World::new("redeliver").await;
    let url = w.create_queue().await;
    w.send(&url, "fail-once").await;
    let (handler, mut rx) = forwarding(|_| None);
    let client = w
        .builder()
        .visibility_timeout(Duration::from_secs(2))
        .build(&w.sdk)
        .unwrap();
    let (stop, run) = spawn_run(client, handler);
    // The first delivery fails; the same message comes back after its 2 s visibility timeout.
    let first = next(&mut rx, Duration::from_secs(30)).await;
    let second = next(&mut rx, Duration::from_secs(30)).await;
    assert_eq!((first.receive_count(), second.receive_count()), (1, 2));
    assert_eq!(first.sqs_message_id(), second.sqs_message_id());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let report = run.await.unwrap();
    assert_eq!((report.failed, report.succeeded, report.deleted), (1, 1, 1));
    assert_eq!(w.remaining(&url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_visibility_timeout_is_not_redelivered() {
    let w = World::new("slow").await;
    let url = w.create_queue().await;
    w.send(&url, "slow").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let (handler, mut rx) = forwarding(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Some(Duration::from_secs(9))
    });
    // A 4 s visibility timeout, a 9 s handler: only the heartbeat keeps the message hidden (renewed at
    // 2/3 of it; 4 s rather than 2 s leaves the renewal 1.3 s of slack on a loaded machine and moto).
    let client = w
        .builder()
        .visibility_timeout(Duration::from_secs(4))
        .max_concurrency(2)
        .build(&w.sdk)
        .unwrap();
    let (stop, run) = spawn_run(client, handler);
    next(&mut rx, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let report = run.await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "never handed out twice while working");
    assert_eq!((report.received, report.deleted), (1, 1));
    assert_eq!(w.remaining(&url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_batch_returns_unfinished_messages_and_deletes_finished_ones() {
    let w = World::new("midbatch").await;
    let url = w.create_queue().await;
    for body in ["quick-1", "quick-2", "slow-1", "slow-2"] {
        w.send(&url, body).await;
    }
    let (handler, mut rx) = forwarding(|m| m.body().starts_with("slow").then_some(Duration::from_secs(3600)));
    let client = w.builder().drain_timeout(Duration::from_secs(1)).build(&w.sdk).unwrap();
    let (stop, run) = spawn_run(client, handler);
    // WHEN both quick messages were handled (their deletes still pending) and shutdown starts
    let mut quick = Vec::new();
    while quick.len() < 2 {
        quick.push(next(&mut rx, Duration::from_secs(30)).await.into_body());
    }
    let started = Instant::now();
    stop.cancel();
    let report = run.await.unwrap();
    // THEN run returned after the 1 s drain deadline, the quick ones are deleted and the slow ones
    // are visible again at once (not after the 30 s visibility timeout)
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!((report.succeeded, report.deleted, report.returned), (2, 2, 2));
    assert_eq!(w.visible_bodies(&url).await, ["slow-1", "slow-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_may_appear_after_the_client_started() {
    let w = World::new("late").await;
    let (handler, mut rx) = forwarding(|_| None);
    let (stop, run) = spawn_run(w.builder().build(&w.sdk).unwrap(), handler);
    // The client is already waiting when the queue is created.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!run.is_finished());
    let url = w.create_queue().await;
    w.send(&url, "first").await;
    let m = next(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(m.body(), "first");
    stop.cancel();
    assert_eq!(run.await.unwrap().deleted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_never_appears_is_an_error_and_is_never_created() {
    let w = World::new("never").await;
    let client = w.builder().wait_limit(Duration::from_secs(2)).build(&w.sdk).unwrap();
    let e = client
        .run(|_m: Message| async { Ok::<(), BoxError>(()) }, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.is_queue_missing() && e.is_timeout(), "{e}");
    assert!(
        std::error::Error::source(&e).is_none(),
        "moto's answer maps to QueueDoesNotExist, not an error: {e:?}"
    );
    assert!(
        w.sqs.get_queue_url().queue_name(&w.queue_name).send().await.is_err(),
        "the client never creates it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_read_from_the_record() {
    let w = World::new("ready").await;
    w.create_queue().await;
    let table = unique("ready-records");
    create_table(&w.sdk, &table).await;
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    let task_id = w.task_arn.rsplit('/').next().unwrap().to_owned();
    let put = |state: State| {
        ddb.put_item()
            .table_name(&table)
            .item(attr::TASK_ID, Av::S(task_id.clone()))
            .item(attr::STATE, Av::S(state.as_str().to_owned()))
            .send()
    };
    put(State::Provisioning).await.unwrap();
    let client = w.builder().wait_for_ready(&table).build(&w.sdk).unwrap();
    let stop = CancellationToken::new();
    let connecting = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        async move { client.connect(&stop).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!connecting.is_finished(), "PROVISIONING is not READY");
    put(State::Ready).await.unwrap();
    let queue = connecting.await.unwrap().unwrap().expect("connected");
    assert_eq!(queue.queue_name().as_str(), w.queue_name);

    put(State::Draining).await.unwrap();
    let e = client.connect(&stop).await.unwrap_err();
    assert!(e.is_task_stopping(), "{e}");
}

/// Counts `on_subscribed` calls and forwards messages.
struct Hooked {
    subscribed: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<Message>,
}

impl tasksub_client::Handler for Hooked {
    async fn handle(&self, message: Message) -> Result<(), BoxError> {
        self.tx.send(message).ok();
        Ok(())
    }
    async fn on_subscribed(&self, queue: &tasksub_client::TaskQueue) {
        assert!(queue.subscription_confirmed());
        self.subscribed.fetch_add(1, Ordering::SeqCst);
    }
}

fn hooked() -> (Hooked, Arc<AtomicUsize>, mpsc::UnboundedReceiver<Message>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let subscribed = Arc::new(AtomicUsize::new(0));
    (
        Hooked {
            subscribed: subscribed.clone(),
            tx,
        },
        subscribed,
        rx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_subscribed_fires_once_and_only_when_the_record_is_ready() {
    // GIVEN the queue exists (the controller created it) but the record is still PROVISIONING, and
    // the table comes from TASKSUB_TABLE (the READY wait is the default when it is known)
    let w = World::new("hook").await;
    let url = w.create_queue().await;
    w.send(&url, "early").await;
    let table = unique("hook-records");
    create_table(&w.sdk, &table).await;
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    let task_id = w.task_arn.rsplit('/').next().unwrap().to_owned();
    let put = |state: State| {
        ddb.put_item()
            .table_name(&table)
            .item(attr::TASK_ID, Av::S(task_id.clone()))
            .item(attr::STATE, Av::S(state.as_str().to_owned()))
            .send()
    };
    put(State::Provisioning).await.unwrap();
    let t = table.clone();
    let client = w
        .builder()
        .env_lookup(move |k| (k == vars::TABLE).then(|| t.clone()))
        .build(&w.sdk)
        .unwrap();
    let (handler, subscribed, mut rx) = hooked();
    let (stop, run) = spawn_run(client, handler);
    // WHEN the client has been waiting a while: no hook, no message (the queue existing is not enough)
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(subscribed.load(Ordering::SeqCst), 0, "not subscribed before READY");
    assert!(rx.try_recv().is_err(), "nothing consumed before READY");
    // AND the controller marks the record READY
    put(State::Ready).await.unwrap();
    // THEN the hook fires once, before the first message
    let first = next(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(first.body(), "early");
    assert_eq!(subscribed.load(Ordering::SeqCst), 1);
    w.send(&url, "later").await;
    assert_eq!(next(&mut rx, Duration::from_secs(30)).await.body(), "later");
    stop.cancel();
    let report = run.await.unwrap();
    assert!(report.subscribed);
    assert_eq!(subscribed.load(Ordering::SeqCst), 1, "exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_table_on_subscribed_is_never_called() {
    // The queue existing does not prove the subscription: without a table the hook is not called,
    // but messages are still consumed.
    let w = World::new("nohook").await;
    let url = w.create_queue().await;
    w.send(&url, "m").await;
    let (handler, subscribed, mut rx) = hooked();
    let (stop, run) = spawn_run(w.builder().build(&w.sdk).unwrap(), handler);
    assert_eq!(next(&mut rx, Duration::from_secs(30)).await.body(), "m");
    stop.cancel();
    run.await.unwrap();
    assert_eq!(subscribed.load(Ordering::SeqCst), 0);
}

// FIFO: an SNS FIFO topic feeding the task's FIFO queue (`<prefix><task id>.fifo`).

impl World {
    /// The task's FIFO queue (what the controller creates for FIFO topics); returns its URL.
    async fn create_fifo_queue(&self) -> String {
        self.sqs
            .create_queue()
            .queue_name(format!("{}.fifo", self.queue_name))
            .attributes(QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap()
    }

    /// A FIFO client: `.fifo` queue name, per-group order.
    fn fifo_builder(&self) -> ClientBuilder {
        self.builder().queue_fifo(true)
    }

    async fn send_to_group(&self, url: &str, body: &str, group: &str) {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(unique(body))
            .send()
            .await
            .unwrap();
    }
}

/// Start and end of every handler call, in the order they happened: `(true, body)` at the start.
type Journal = Arc<std::sync::Mutex<Vec<(bool, String)>>>;

/// Per group (the body up to its first `-`): the bodies in start order, and the most handlers of one
/// group and of all groups that ran at once.
fn by_group(journal: &Journal) -> (BTreeMap<String, Vec<String>>, usize, usize) {
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut running: BTreeMap<String, usize> = BTreeMap::new();
    let (mut one, mut all) = (0, 0);
    for (start, body) in journal.lock().unwrap().iter() {
        let group = body.split('-').next().unwrap().to_owned();
        let n = running.entry(group.clone()).or_default();
        if *start {
            *n += 1;
            order.entry(group).or_default().push(body.clone());
        } else {
            *n -= 1;
        }
        one = one.max(*n);
        all = all.max(running.values().sum());
    }
    (order, one, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_topic_feeds_the_fifo_queue_and_each_group_is_handled_in_order() {
    // GIVEN the task's FIFO queue subscribed (raw delivery) to an SNS FIFO topic, and 3 groups of 8
    // messages published interleaved before the client starts
    let w = World::new("fifo-order").await;
    let url = w.create_fifo_queue().await;
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let topic_arn = sns
        .create_topic()
        .name(format!("{}.fifo", unique("fifo-order")))
        .attributes("FifoTopic", "true")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{}.fifo", w.queue_name))
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    for i in 0..8 {
        for g in ["g0", "g1", "g2"] {
            let body = format!("{g}-{i}");
            sns.publish()
                .topic_arn(&topic_arn)
                .message(&body)
                .message_group_id(g)
                .message_deduplication_id(unique(&body))
                .send()
                .await
                .unwrap();
        }
    }
    // WHEN a FIFO client with 16 handler slots consumes them; later messages are quicker, so any
    // overtaking within a group would show
    let journal: Journal = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let j = journal.clone();
    let handler = move |m: Message| {
        let (j, tx) = (j.clone(), tx.clone());
        async move {
            let body = m.body().to_owned();
            let i: u64 = body.rsplit('-').next().unwrap().parse().unwrap();
            j.lock().unwrap().push((true, body.clone()));
            tokio::time::sleep(Duration::from_millis(20 * (8 - i))).await;
            j.lock().unwrap().push((false, body));
            tx.send(m).ok();
            Ok::<(), BoxError>(())
        }
    };
    let client = w.fifo_builder().max_concurrency(16).build(&w.sdk).unwrap();
    let (stop, run) = spawn_run(client, handler);
    let mut handled = Vec::new();
    while handled.len() < 24 {
        handled.push(next(&mut rx, Duration::from_secs(60)).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // the last deletes
    stop.cancel();
    let report = run.await.unwrap();
    // THEN every group was handled in publish order, one message at a time, groups side by side
    let (order, one, all) = by_group(&journal);
    for g in ["g0", "g1", "g2"] {
        assert_eq!(order[g], (0..8).map(|i| format!("{g}-{i}")).collect::<Vec<_>>(), "{g}");
    }
    assert_eq!(one, 1, "never two messages of a group at once");
    assert!(all >= 2, "groups run concurrently ({all})");
    // AND the handler saw each message's group; all were deleted
    for m in &handled {
        assert_eq!(m.group_id(), m.body().split('-').next(), "{}", m.body());
    }
    assert!(report.subscribed);
    assert_eq!((report.succeeded, report.deleted, report.released), (24, 24, 0));
    assert_eq!(w.remaining(&url).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_fifo_queue_a_failure_holds_its_group_back_while_heartbeats_and_deletes_work() {
    // GIVEN group x: a message failing its first delivery with two behind it; group y: a handler
    // slower than the 3 s visibility, then one more
    let w = World::new("fifo-fail").await;
    let url = w.create_fifo_queue().await;
    for (body, group) in [
        ("fail-once x0", "x"),
        ("x1", "x"),
        ("y0 slow", "y"),
        ("x2", "x"),
        ("y1", "y"),
    ] {
        w.send_to_group(&url, body, group).await;
    }
    let journal: Journal = Arc::default();
    let j = journal.clone();
    let (handler, mut rx) = forwarding(move |m| {
        j.lock().unwrap().push((true, m.body().to_owned()));
        m.body().ends_with("slow").then_some(Duration::from_secs(7))
    });
    let client = w
        .fifo_builder()
        .visibility_timeout(Duration::from_secs(3))
        .max_concurrency(16)
        .build(&w.sdk)
        .unwrap();
    let (stop, run) = spawn_run(client, handler);
    // WHEN six handler calls happened (x0 twice; x1 and x2 were released once, not handled)
    let mut handled = Vec::new();
    while handled.len() < 6 {
        handled.push(next(&mut rx, Duration::from_secs(60)).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.cancel();
    let report = run.await.unwrap();
    // THEN group x went x0 (failed), x0, x1, x2; group y ran meanwhile, y0 was never redelivered
    // while it worked (heartbeats on a FIFO receipt handle), and every message was deleted (batches)
    let starts: Vec<String> = journal.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    let x: Vec<&String> = starts.iter().filter(|b| b.contains('x')).collect();
    assert_eq!(x, ["fail-once x0", "fail-once x0", "x1", "x2"], "{starts:?}");
    let y: Vec<&String> = starts.iter().filter(|b| b.contains('y')).collect();
    assert_eq!(y, ["y0 slow", "y1"], "{starts:?}");
    let slow = handled.iter().find(|m| m.body() == "y0 slow").unwrap();
    assert_eq!(slow.receive_count(), 1, "{starts:?}");
    assert_eq!(
        (report.failed, report.released, report.succeeded, report.deleted),
        (1, 2, 5, 5),
        "{report:?}"
    );
    assert_eq!(w.remaining(&url).await, (0, 0));
}

/// The controller's settings for one topic in a test's own table and prefix; `topic_settings` is
/// `TASKSUB_TOPIC_SETTINGS`.
fn controller_for(w: &World, topic_arn: &str, table: &str, topic_settings: &str) -> tasksub_functions::Controller {
    let settings: BTreeMap<String, String> = [
        (vars::TOPIC_ARN, topic_arn),
        (vars::ACCOUNT_ID, "123456789012"),
        (vars::AWS_REGION, "us-east-1"),
        (vars::TABLE, table),
        (vars::CLUSTERS, "FargateCluster"),
        (vars::QUEUE_PREFIX, w.prefix.as_str()),
        (vars::TOPIC_SETTINGS, topic_settings),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::from_map(&settings).unwrap();
    tasksub_functions::Controller::new(settings, &w.sdk, tasksub_core::decide::Role::Provisioner)
}

/// The fixture's RUNNING event, for `task_arn`, now.
fn running_event(task_arn: &str) -> serde_json::Value {
    let mut event: serde_json::Value =
        serde_json::from_str(&fixture("../fixtures/ecs-events/fargate-task-running-awsvpc-docs.json")).unwrap();
    event["time"] = serde_json::Value::String(chrono::Utc::now().to_rfc3339());
    event["detail"]["taskArn"] = serde_json::Value::String(task_arn.to_owned());
    event["resources"] = serde_json::json!([task_arn]);
    event
}

/// Issue #23: SNS holds at most 200 filter policies per topic (scripts/moto_server.py emulates the
/// quota). On a topic that already holds 200, a task whose filter SNS would apply is refused (its record
/// says `quota`), while a task whose filter it applies itself (`filterPolicyAt: "client"`) is subscribed
/// without one and receives exactly the messages its policy selects; the others are deleted unhandled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_the_topics_200_filter_policies_receives_what_its_policy_selects() {
    // GIVEN a topic whose subscriptions (other apps') already hold 200 filter policies
    let id = hex_task_id("past200");
    let w = World::for_task(
        "past200",
        &format!("arn:aws:ecs:us-east-1:123456789012:task/FargateCluster/{id}"),
    )
    .await;
    let sns = aws_sdk_sns::Client::new(&w.sdk);
    let topic_name = unique("past200");
    let topic_arn = sns
        .create_topic()
        .name(&topic_name)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let other_app = unique("other-app-");
    for i in 0..200 {
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{other_app}{i}"))
            // (a kind never published here: moto would deliver to these queues, which do not exist)
            .attributes("FilterPolicy", r#"{"kind":["other-app-only"]}"#)
            .send()
            .await
            .expect("Subscribe");
    }
    let table = unique("past200-records");
    create_table(&w.sdk, &table).await;
    let policy = r#"{"kind":["cache"]}"#;

    // WHEN a task's filter is left to SNS: the 201st policy is refused, and the record says so
    let by_sns = controller_for(
        &w,
        &topic_arn,
        &table,
        &format!(r#"{{"{topic_name}":{{"filterPolicy":{policy}}}}}"#),
    );
    let refused_id = hex_task_id("past200-sns");
    let refused_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/FargateCluster/{refused_id}");
    by_sns.handle_json(&running_event(&refused_arn)).await.expect("handled");
    let ddb = aws_sdk_dynamodb::Client::new(&w.sdk);
    let item = ddb
        .get_item()
        .table_name(&table)
        .key(attr::TASK_ID, Av::S(refused_id))
        .send()
        .await
        .unwrap();
    let refused = item.item.unwrap()[attr::REFUSED].as_m().unwrap().clone();
    let kind = refused[&topic_arn].as_m().unwrap()["kind"].as_s().unwrap().clone();
    assert_eq!(kind, "quota", "the 201st filter policy is refused by SNS");

    // WHEN the task applies its filter itself: subscribed without a policy, the policy in its record
    let by_client = controller_for(
        &w,
        &topic_arn,
        &table,
        &format!(r#"{{"{topic_name}":{{"filterPolicy":{policy},"filterPolicyAt":"client"}}}}"#),
    );
    by_client
        .handle_json(&running_event(&w.task_arn))
        .await
        .expect("provisioned");
    let client = w.builder().wait_for_ready(&table).build(&w.sdk).unwrap();
    let (handler, mut rx) = forwarding(|_| None);
    let (stop, run) = spawn_run(client, handler);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // AND messages its policy rejects and selects are published
    let publish = |kind: &'static str, body: &'static str| {
        let sns = sns.clone();
        let topic_arn = topic_arn.clone();
        async move {
            let kind = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(kind)
                .build()
                .unwrap();
            sns.publish()
                .topic_arn(topic_arn)
                .message(body)
                .message_attributes("kind", kind)
                .send()
                .await
                .unwrap();
        }
    };
    publish("other", "not for us").await;
    publish("cache", "invalidate prices").await;
    publish("other", "not for us either").await;

    // THEN the handler sees exactly the selected message; the others are deleted unhandled and counted
    let m = next(&mut rx, Duration::from_secs(60)).await;
    assert_eq!(m.body(), "invalidate prices");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.cancel();
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap();
    assert!(rx.try_recv().is_err(), "nothing else reached the handler");
    assert_eq!(
        (report.received, report.succeeded, report.filtered_out, report.deleted),
        (3, 1, 2, 3),
        "{report:?}"
    );
}
