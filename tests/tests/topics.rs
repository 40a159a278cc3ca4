//! Several topics per task, in other regions and accounts, and FIFO, on moto.
//!
//! - One queue per task is fed by three topics: one in the deployment's region and account, one in
//!   another region, one in another account; teardown leaves nothing on any of them.
//! - Adding or removing a topic in the settings converges a live task after one sweep.
//! - FIFO topics deliver in order per message group to the task's `.fifo` queue.
//!
//! moto keeps a cross-account subscription in the subscriber's account and would never deliver to it;
//! the tests' moto (`scripts/moto_server.py`) lists and publishes across accounts as AWS does.

use std::collections::BTreeMap;

use aws_sdk_sns::types::MessageAttributeValue;
use tasksub_core::record::State;
use tasksub_core::settings::{vars, Settings, SweepSettings};
use tasksub_functions::aws::{AwsPorts, AwsTasks};
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::sweeper::{RunOptions, Sweeper};
use tasksub_functions::Controller;
use tasksub_tests::ecs::EcsCluster;
use tasksub_tests::events::Task;
use tasksub_tests::moto::{unique, Moto};
use tasksub_tests::world::create_table;

const HOME: &str = "123456789012";
const OTHER_ACCOUNT: &str = "210987654321";
const OTHER_REGION: &str = "eu-west-1";
const GROUP: &str = "service:orders";

/// The deployment's clients, and a topic owner's in another account and region.
struct Place {
    sdk: aws_config::SdkConfig,
    sqs: aws_sdk_sqs::Client,
}

impl Place {
    async fn new() -> Self {
        let sdk = Moto::get().sdk_config().await;
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
        }
    }

    fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        let conf = aws_sdk_sns::config::Builder::from(&self.sdk)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        aws_sdk_sns::Client::from_conf(conf)
    }

    /// Creates a topic in `region`, owned by `account` (moto picks the account from a header).
    async fn topic(&self, region: &str, account: &str, name: &str, fifo: bool) -> String {
        let mut req = self.sns(region).create_topic().name(name);
        if fifo {
            req = req.attributes("FifoTopic", "true");
        }
        let account = account.to_owned();
        req.customize()
            .mutate_request(move |r| {
                r.headers_mut().insert("x-moto-account-id", account.clone());
            })
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn()
            .expect("topic ARN")
            .to_owned()
    }

    /// Publishes as the topic's owner, in the topic's region.
    async fn publish(&self, topic: &str, body: &str, group: Option<&str>) {
        let t = tasksub_core::naming::TopicArn::parse(topic).unwrap();
        let mut req = self
            .sns(&t.region)
            .publish()
            .topic_arn(topic)
            .message(body)
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("test")
                    .build()
                    .unwrap(),
            );
        if let Some(g) = group {
            req = req.message_group_id(g).message_deduplication_id(unique("dedup"));
        }
        let owner = t.account.clone();
        req.customize()
            .mutate_request(move |r| {
                r.headers_mut().insert("x-moto-account-id", owner.clone());
            })
            .send()
            .await
            .expect("Publish");
    }

    /// Every subscription of the topic whose endpoint is this queue ARN (listed in the topic's region).
    async fn subscriptions_to(&self, topic: &str, queue_arn: &str) -> Vec<String> {
        let t = tasksub_core::naming::TopicArn::parse(topic).unwrap();
        let out = self
            .sns(&t.region)
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .send()
            .await
            .expect("ListSubscriptionsByTopic");
        out.subscriptions()
            .iter()
            .filter(|s| s.endpoint() == Some(queue_arn))
            .filter_map(|s| s.subscription_arn().map(str::to_owned))
            .collect()
    }

    /// The topics the queue's policy admits (`aws:SourceArn` of its Allow), as a list.
    async fn admitted(&self, url: &str) -> Vec<String> {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
            .send()
            .await
            .expect("GetQueueAttributes");
        let raw = &attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::Policy];
        let policy: serde_json::Value = serde_json::from_str(raw).unwrap();
        match &policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] {
            serde_json::Value::String(one) => vec![one.clone()],
            many => serde_json::from_value(many.clone()).unwrap(),
        }
    }

    /// Every body the queue holds (a few receives; each message deleted after reading).
    async fn drain(&self, url: &str, want: usize) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for _ in 0..10 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                .send()
                .await
                .expect("ReceiveMessage");
            for m in got.messages() {
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId))
                    .cloned();
                out.push((m.body().unwrap_or_default().to_owned(), group));
                let handle = m.receipt_handle().unwrap_or_default();
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
            if out.len() >= want {
                break;
            }
        }
        out
    }
}

/// Settings for these topics, scoped to `cluster`, with a fresh table and prefix.
async fn settings(p: &Place, topics: &[&str], cluster: &str, extra: &[(&str, &str)]) -> Settings {
    let table = unique("topics-records");
    create_table(&aws_sdk_dynamodb::Client::new(&p.sdk), &table).await;
    settings_on(&table, &format!("tasksub-{}-", unique("tp")), topics, cluster, extra)
}

fn settings_on(table: &str, prefix: &str, topics: &[&str], cluster: &str, extra: &[(&str, &str)]) -> Settings {
    let topics = topics.join(",");
    let mut m: BTreeMap<String, String> = [
        (vars::TOPIC_ARNS, topics.as_str()),
        (vars::TABLE, table),
        (vars::CLUSTERS, cluster),
        (vars::QUEUE_PREFIX, prefix),
        (vars::ACCOUNT_ID, HOME),
        (vars::AWS_REGION, "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Settings::from_map(&m).expect("settings")
}

fn controller(p: &Place, s: &Settings) -> Controller<Instrumented<AwsPorts>> {
    let ports = Instrumented::new(AwsPorts::new(&p.sdk, &s.table));
    Controller::with_ports(s.clone(), ports, tasksub_core::decide::Role::Any)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_topics_in_three_places_feed_one_queue_and_teardown_leaves_nothing() {
    let p = Place::new().await;
    let id = unique("t3");
    let here = p.topic("us-east-1", HOME, &format!("here-{id}"), false).await;
    let far = p.topic(OTHER_REGION, HOME, &format!("far-{id}"), false).await;
    let foreign = p
        .topic("us-east-1", OTHER_ACCOUNT, &format!("foreign-{id}"), false)
        .await;
    assert!(
        foreign.contains(OTHER_ACCOUNT) && far.contains(OTHER_REGION),
        "{foreign} {far}"
    );
    let s = settings(&p, &[&here, &far, &foreign], "prod", &[]).await;
    let c = controller(&p, &s);
    let task = Task::new("prod");
    let (start, stop_initiated, stopped) = task.lifecycle();

    let out = c.handle_json(&start[0]).await.expect("start");
    assert_eq!(out.state, Some("READY"));
    // one Subscribe per topic, all in the stage of CreateQueue: 3 round trips for 3 topics
    let ops = c.ports().calls();
    assert_eq!(ops.iter().filter(|o| **o == "Subscribe").count(), 3, "{ops:?}");
    let record = c.ports().inner().clone();
    let stored = tasksub_functions::ports::Records::get(&record, &task.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.subscriptions.len(), 3);
    assert!(
        stored.queue_arn.starts_with(&format!("arn:aws:sqs:us-east-1:{HOME}:")),
        "home, never a topic's"
    );
    for topic in [&here, &far, &foreign] {
        let subs = p.subscriptions_to(topic, &stored.queue_arn).await;
        assert_eq!(subs, vec![stored.subscriptions[topic.as_str()].clone()], "{topic}");
        assert!(
            subs[0].starts_with(topic.as_str()),
            "the subscription lives in the topic's region and account"
        );
    }
    // the queue policy admits exactly the three topics
    let url = stored.queue_url.clone().unwrap();
    let attrs = p
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(&attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::Policy]).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        serde_json::json!([here, far, foreign])
    );

    // one message from each topic arrives
    for (topic, body) in [(&here, "from-here"), (&far, "from-far"), (&foreign, "from-foreign")] {
        p.publish(topic, &format!("{body}-{id}"), None).await;
    }
    let mut got: Vec<String> = p.drain(&url, 3).await.into_iter().map(|(b, _)| b).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            format!("from-far-{id}"),
            format!("from-foreign-{id}"),
            format!("from-here-{id}")
        ]
    );

    // teardown: nothing left on any topic, no queue, a GONE tombstone
    for e in stop_initiated.iter().chain(&stopped) {
        c.handle_json(e).await.expect("teardown");
    }
    for topic in [&here, &far, &foreign] {
        assert!(
            p.subscriptions_to(topic, &stored.queue_arn).await.is_empty(),
            "{topic}: subscription left"
        );
    }
    assert!(
        p.sqs
            .get_queue_url()
            .queue_name(&stored.queue_name)
            .send()
            .await
            .is_err(),
        "queue left"
    );
    let gone = tasksub_functions::ports::Records::get(&record, &task.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((gone.state, gone.subscriptions.len()), (State::Gone, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_or_removing_a_topic_converges_live_tasks_after_one_sweep() {
    let p = Place::new().await;
    let id = unique("cv");
    let first = p.topic("us-east-1", HOME, &format!("first-{id}"), false).await;
    let second = p.topic(OTHER_REGION, HOME, &format!("second-{id}"), false).await;
    let ecs = EcsCluster::new(&p.sdk).await;
    let table = unique("cv-records");
    create_table(&aws_sdk_dynamodb::Client::new(&p.sdk), &table).await;
    let prefix = format!("tasksub-{}-", unique("cv"));
    let groups = [(vars::SERVICE_GROUPS, GROUP)];
    let only_first = settings_on(&table, &prefix, &[&first], ecs.name(), &groups);
    let both = settings_on(&table, &prefix, &[&first, &second], ecs.name(), &groups);
    let only_second = settings_on(&table, &prefix, &[&second], ecs.name(), &groups);
    let tasks = ecs.run(2, GROUP).await;
    let c = controller(&p, &only_first);
    for t in &tasks {
        c.handle_json(&t.event("RUNNING", "RUNNING", 2)).await.expect("start");
    }
    let sweep = |s: &Settings| {
        let ports = Instrumented::new(AwsPorts::new(&p.sdk, &s.table));
        let sweep = SweepSettings {
            grace_seconds: 0,
            min_interval_ms: 0,
            max_actions: 100,
            audit_per_run: 25,
            ..SweepSettings::default()
        };
        Sweeper::with_ports(s.clone(), sweep, ports, Instrumented::new(AwsTasks::new(&p.sdk)))
    };
    let records = AwsPorts::new(&p.sdk, &table);
    let topics_of = |r: &tasksub_core::record::Record| r.subscriptions.keys().cloned().collect::<Vec<_>>();
    let record = |id: String| {
        let records = records.clone();
        async move {
            tasksub_functions::ports::Records::get(&records, &id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let sweep_once = |s: &Settings| {
        let sweeper = sweep(s);
        async move {
            sweeper
                .run(RunOptions::default(), chrono::Utc::now())
                .await
                .expect("sweep")
        }
    };

    // a topic added: one sweep subscribes every live task to it, and it delivers
    let report = sweep_once(&both).await;
    assert_eq!((report.converged, report.errors), (2, 0), "{report:?}");
    for t in &tasks {
        let r = record(t.id.clone()).await;
        assert_eq!(r.state, State::Ready);
        let mut want = vec![first.clone(), second.clone()];
        want.sort();
        assert_eq!(topics_of(&r), want);
        assert_eq!(p.subscriptions_to(&second, &r.queue_arn).await.len(), 1);
        // the queue was created admitting only the first topic; its policy now admits both
        let url = r.queue_url.as_deref().unwrap();
        assert_eq!(p.admitted(url).await, vec![first.clone(), second.clone()]);
    }
    let again = sweep_once(&both).await;
    assert_eq!(again.converged, 0, "converged tasks stay put");
    p.publish(&second, &format!("added-{id}"), None).await;
    let r0 = record(tasks[0].id.clone()).await;
    let got = p.drain(r0.queue_url.as_deref().unwrap(), 1).await;
    assert_eq!(
        got.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(),
        vec![format!("added-{id}")]
    );

    // a topic removed: one sweep unsubscribes every live task from it
    let report = sweep_once(&only_second).await;
    assert_eq!((report.converged, report.errors), (2, 0), "{report:?}");
    for t in &tasks {
        let r = record(t.id.clone()).await;
        assert_eq!(topics_of(&r), vec![second.clone()]);
        assert!(
            p.subscriptions_to(&first, &r.queue_arn).await.is_empty(),
            "removed topic still subscribed"
        );
        assert_eq!(p.subscriptions_to(&second, &r.queue_arn).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_topics_deliver_in_order_per_group_to_a_fifo_task_queue() {
    let p = Place::new().await;
    let id = unique("ff");
    let a = p.topic("us-east-1", HOME, &format!("cfg-{id}.fifo"), true).await;
    let b = p.topic("us-east-1", HOME, &format!("flags-{id}.fifo"), true).await;
    let s = settings(&p, &[&a, &b], "prod", &[]).await;
    assert!(s.queue.fifo);
    let c = controller(&p, &s);
    let task = Task::new("prod");
    let (start, stop_initiated, stopped) = task.lifecycle();
    c.handle_json(&start[0]).await.expect("start");
    let r = tasksub_functions::ports::Records::get(c.ports().inner(), &task.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        r.queue_name.ends_with(".fifo") && r.queue_name.len() <= 80,
        "{}",
        r.queue_name
    );
    let url = r.queue_url.clone().unwrap();
    let attrs = p
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let fifo = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::FifoQueue].clone();
    assert_eq!(fifo, "true");
    // two groups on one topic, one on the other, interleaved
    for i in 0..4 {
        p.publish(&a, &format!("g1-{i}"), Some("g1")).await;
        p.publish(&a, &format!("g2-{i}"), Some("g2")).await;
        p.publish(&b, &format!("g3-{i}"), Some("g3")).await;
    }
    let got = p.drain(&url, 12).await;
    assert_eq!(got.len(), 12, "{got:?}");
    for g in ["g1", "g2", "g3"] {
        let seen: Vec<&str> = got
            .iter()
            .filter(|(_, group)| group.as_deref() == Some(g))
            .map(|(b, _)| b.as_str())
            .collect();
        let want: Vec<String> = (0..4).map(|i| format!("{g}-{i}")).collect();
        assert_eq!(seen, want, "group {g} out of order");
    }
    for e in stop_initiated.iter().chain(&stopped) {
        c.handle_json(e).await.expect("teardown");
    }
    for topic in [&a, &b] {
        assert!(p.subscriptions_to(topic, &r.queue_arn).await.is_empty());
    }
    assert!(p.sqs.get_queue_url().queue_name(&r.queue_name).send().await.is_err());
}

/// Settings refuse a FIFO topic next to a standard one, before any call.
#[test]
fn mixing_fifo_and_standard_topics_is_a_settings_error() {
    let m: BTreeMap<String, String> = [
        (
            vars::TOPIC_ARNS,
            "arn:aws:sns:us-east-1:123456789012:a.fifo,arn:aws:sns:us-east-1:123456789012:b",
        ),
        (vars::TABLE, "records"),
        (vars::CLUSTERS, "prod"),
        (vars::ACCOUNT_ID, HOME),
        (vars::AWS_REGION, "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let err = Settings::from_map(&m).unwrap_err().to_string();
    assert!(
        err.contains("TASKSUB_TOPIC_ARNS") && err.contains("mixes FIFO"),
        "{err}"
    );
}

/// moto refuses the ReplayPolicy subscription attribute (its Subscribe knows six attributes), so the
/// catch-up window is checked on the fake, which keeps every attribute as subscribed: the policy starts
/// `replaySeconds` before the record was created, the same on every retry, on the topic that asked for it.
#[tokio::test]
async fn a_fifo_replay_window_is_asked_for_on_subscribe() {
    use tasksub_tests::world::{FakeWorld, World};
    let cfg = "arn:aws:sns:us-east-1:123456789012:cfg.fifo";
    let flags = "arn:aws:sns:us-east-1:123456789012:flags.fifo";
    let w = FakeWorld::with(&[
        (vars::TOPIC_ARN, ""),
        (vars::TOPIC_ARNS, &format!("{cfg},{flags}")),
        (vars::TOPIC_SETTINGS, r#"{"cfg.fifo":{"replaySeconds":3600}}"#),
    ]);
    let task = w.task();
    let out = w
        .controller()
        .handle_json(&task.event("RUNNING", "RUNNING", 1))
        .await
        .unwrap();
    assert_eq!(out.state, Some("READY"));
    let record = w.fake().record(&task.id).unwrap();
    assert!(record.queue_name.ends_with(".fifo"));
    let start = (record.created_at - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let subs = w.fake().subscriptions();
    let replay = |topic: &str| {
        subs.values()
            .find(|s| s.topic_arn == topic)
            .and_then(|s| s.attributes.get("ReplayPolicy").cloned())
    };
    assert_eq!(
        replay(cfg),
        Some(format!(r#"{{"PointType":"Timestamp","StartingPoint":"{start}"}}"#))
    );
    assert_eq!(replay(flags), None, "only the topic that asked for a window replays");
    let queue = w
        .fake()
        .queues()
        .into_iter()
        .find(|q| q.name == record.queue_name)
        .unwrap();
    assert_eq!(queue.attributes["FifoQueue"], "true");
}
