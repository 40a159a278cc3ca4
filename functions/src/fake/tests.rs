//! The fake's own tests: every port and every AWS rule it mirrors, so a scenario that passes on the fake
//! passes because the fake behaves as AWS does.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use tasksub_core::event::TaskStatus;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::{EcsTask, SeenSubscription};
use tasksub_core::record::{Record, State};

use super::Fake;
use crate::ports::{
    list_topic, Described, Desired, Expect, PortError, QueueInspect, Queues, Records, Subscriptions, Tasks, Written,
};

const URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/";

fn record(task_id: &str, state: State, revision: u64) -> Record {
    let now = DateTime::UNIX_EPOCH;
    Record {
        task_id: task_id.into(),
        task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/c/{task_id}"),
        cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/c".into(),
        group: None,
        queue_name: format!("q-{task_id}"),
        queue_arn: format!("arn:aws:sqs:us-east-1:123456789012:q-{task_id}"),
        queue_url: None,
        subscriptions: Default::default(),
        state,
        version: 0,
        created_at: now,
        updated_at: now,
        expires_at: None,
        revision,
        pending: Default::default(),
        refused: Default::default(),
        generation: 0,
        settings_hash: None,
        watch: Default::default(),
        client_filters: Default::default(),
    }
}

fn attrs(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn kind<T: std::fmt::Debug>(r: Result<T, PortError>) -> (ErrorKind, &'static str) {
    let e = r.expect_err("an error");
    (e.kind, e.op)
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(1_700_000_000 + seconds)
}

#[tokio::test]
async fn a_put_applies_only_when_its_expectation_holds() {
    let fake = Fake::new();
    assert_eq!(fake.get("t1").await, Ok(None));
    let first = record("t1", State::Provisioning, 1);
    assert_eq!(fake.put(&first, Expect::Absent).await, Ok(Written::Applied));
    assert_eq!(
        fake.put(&record("t1", State::Ready, 2), Expect::Absent).await,
        Ok(Written::Conflict(Some(first.clone()))),
        "Absent over a stored record"
    );
    let stale = Expect::Revision(0, State::Provisioning);
    let wrong_state = Expect::Revision(1, State::Ready);
    for expect in [stale, wrong_state, Expect::State(State::Gone)] {
        assert_eq!(
            fake.put(&record("t1", State::Gone, 2), expect).await,
            Ok(Written::Conflict(Some(first.clone()))),
            "{expect:?}"
        );
    }
    assert_eq!(
        fake.get("t1").await,
        Ok(Some(first.clone())),
        "a conflict changes nothing"
    );
    let ready = record("t1", State::Ready, 2);
    assert_eq!(fake.put(&ready, Expect::over(Some(&first))).await, Ok(Written::Applied));
    assert_eq!(fake.record("t1"), Some(ready.clone()));
    assert_eq!(
        fake.put(&record("t2", State::Ready, 1), Expect::Revision(0, State::Ready))
            .await,
        Ok(Written::Conflict(None)),
        "a revision over no record"
    );
    fake.insert_record(record("t0", State::Gone, 3));
    let ids: Vec<_> = Records::list(&fake)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.task_id)
        .collect();
    assert_eq!(ids, ["t0", "t1"]);
    // an unreadable item is quarantined by the scan and refused by reads and writes, naming its key
    fake.insert_malformed("t1", "malformed record item: attribute state");
    let scanned = Records::list(&fake).await.unwrap();
    assert_eq!(scanned.records.len(), 1);
    assert_eq!(scanned.quarantined["t1"], "malformed record item: attribute state");
    let e = fake.get("t1").await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::Invalid, "GetItem"));
    assert!(e.message.contains("task t1"), "{e}");
    assert!(fake.put(&record("t1", State::Ready, 1), Expect::Absent).await.is_err());
}

#[tokio::test]
async fn create_queue_is_idempotent_for_the_same_attributes_only() {
    let fake = Fake::new();
    let a = attrs(&[("VisibilityTimeout", "30")]);
    let tags = attrs(&[("tasksub:stack", "s")]);
    let url = fake.create("q1", &a, &tags).await.unwrap();
    assert_eq!(url, format!("{URL}q1"));
    assert_eq!(
        fake.create("q1", &a, &BTreeMap::new()).await,
        Ok(url.clone()),
        "same attributes"
    );
    assert_eq!(
        kind(fake.create("q1", &attrs(&[("VisibilityTimeout", "60")]), &tags).await),
        (ErrorKind::Exists, "CreateQueue")
    );
    assert_eq!(
        fake.create("q1", &BTreeMap::new(), &tags).await,
        Ok(url.clone()),
        "attributes the request does not name are not compared"
    );
    let q = &fake.queues()[0];
    assert_eq!((q.name.as_str(), q.tags.len()), ("q1", 1), "the first tags stay");
    assert_eq!(fake.url("q1").await, Ok(url));
    assert_eq!(kind(fake.url("q2").await), (ErrorKind::NotFound, "GetQueueUrl"));
}

#[tokio::test]
async fn a_deleted_queue_name_is_blocked_for_60_seconds_of_the_fakes_clock() {
    let fake = Fake::new();
    fake.set_now(at(0));
    let url = fake.create("q1", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
    fake.set_now(at(10));
    assert_eq!(fake.delete(&url).await, Ok(()));
    assert_eq!(kind(fake.delete(&url).await), (ErrorKind::NotFound, "DeleteQueue"));
    assert_eq!(kind(fake.url("q1").await), (ErrorKind::NotFound, "GetQueueUrl"));
    fake.set_now(at(69));
    let a = attrs(&[("VisibilityTimeout", "60")]);
    assert_eq!(
        kind(fake.create("q1", &a, &BTreeMap::new()).await),
        (ErrorKind::DeletedRecently, "CreateQueue")
    );
    assert!(
        fake.create("q2", &a, &BTreeMap::new()).await.is_ok(),
        "other names are free"
    );
    fake.set_now(at(70));
    assert_eq!(fake.create("q1", &a, &BTreeMap::new()).await, Ok(url.clone()));
    let q1 = fake.queues().into_iter().find(|q| q.name == "q1").unwrap();
    assert_eq!(q1.created_at, at(70), "a new queue, with the new attributes");
    assert_eq!(q1.attributes["VisibilityTimeout"], "60");
}

#[tokio::test]
async fn set_queue_attributes_changes_an_existing_queue() {
    let fake = Fake::new();
    let a = attrs(&[("Policy", "p1"), ("RedrivePolicy", "{}")]);
    let url = fake.create("q1", &a, &attrs(&[("tasksub:stack", "s")])).await.unwrap();
    let set = BTreeMap::from([("Policy", "p2".to_owned()), ("RedrivePolicy", String::new())]);
    assert_eq!(fake.set_queue_attributes(&url, &set).await, Ok(()));
    let now = fake.queue_attributes(&url).await.unwrap();
    assert_eq!(now["Policy"], "p2");
    assert!(!now.contains_key("RedrivePolicy"), "an empty value removes it");
    assert!(now.contains_key("QueueArn"), "read-only attributes are reported too");
    assert_eq!(fake.queue_tags(&url).await.unwrap()["tasksub:stack"], "s");
    assert_eq!(
        kind(fake.create("q1", &a, &BTreeMap::new()).await),
        (ErrorKind::Exists, "CreateQueue"),
        "CreateQueue compares with the current attributes"
    );
    assert!(fake
        .create("q1", &attrs(&[("Policy", "p2")]), &BTreeMap::new())
        .await
        .is_ok());
    for missing in [
        kind(fake.set_queue_attributes(&format!("{URL}q2"), &set).await),
        kind(fake.queue_attributes(&format!("{URL}q2")).await),
        kind(fake.queue_tags(&format!("{URL}q2")).await),
    ] {
        assert_eq!(missing.0, ErrorKind::NotFound);
    }
}

#[tokio::test]
async fn topics_refuse_disappear_and_come_back() {
    let fake = Fake::new();
    let (topic, queue) = ("arn:aws:sns:us-east-1:1:t", "arn:aws:sqs:us-east-1:1:q");
    let raw = BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
    let arn = fake.subscribe(topic, queue, &raw).await.unwrap();
    fake.refuse_topic(topic, ErrorKind::AccessDenied);
    assert_eq!(
        kind(fake.subscribe(topic, queue, &raw).await),
        (ErrorKind::AccessDenied, "Subscribe")
    );
    assert_eq!(
        kind(fake.find(topic, queue).await).0,
        ErrorKind::AccessDenied,
        "the listing too"
    );
    assert!(
        fake.subscription_attributes(&arn).await.is_ok(),
        "the subscription itself stays ours"
    );
    fake.refuse_topic(topic, ErrorKind::Quota);
    assert_eq!(
        fake.find(topic, queue).await,
        Ok(Some(arn.clone())),
        "a quota refuses Subscribe only"
    );
    fake.admit_topic(topic);
    fake.delete_topic(topic);
    assert!(
        fake.subscriptions().is_empty(),
        "a deleted topic's subscriptions go with it"
    );
    assert_eq!(
        kind(fake.subscribe(topic, queue, &raw).await),
        (ErrorKind::NotFound, "Subscribe")
    );
    fake.create_topic(topic);
    let again = fake.subscribe(topic, queue, &raw).await.unwrap();
    assert_ne!(again, arn, "a re-created topic gives a new subscription");
    // attributes: read with the identity fields, set one at a time, {} removes a filter policy
    fake.set_subscription_attribute(&again, "FilterPolicy", r#"{"k":["a"]}"#)
        .await
        .unwrap();
    assert_eq!(
        fake.subscription_attributes(&again).await.unwrap()["FilterPolicy"],
        r#"{"k":["a"]}"#
    );
    fake.set_subscription_attribute(&again, "FilterPolicy", "{}")
        .await
        .unwrap();
    let a = fake.subscription_attributes(&again).await.unwrap();
    assert!(!a.contains_key("FilterPolicy") && a["TopicArn"] == topic && a["Endpoint"] == queue);
    assert_eq!(
        kind(
            fake.set_subscription_attribute("arn:nope", "RawMessageDelivery", "true")
                .await
        )
        .0,
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn list_queues_filters_by_prefix_and_leaves_out_hidden_queues() {
    let fake = Fake::new();
    for name in ["app-a", "app-b", "other"] {
        fake.insert_queue(name);
    }
    assert_eq!(
        Queues::list(&fake, "app-").await.unwrap(),
        [format!("{URL}app-a"), format!("{URL}app-b")]
    );
    fake.hide_from_listing("app-a");
    assert_eq!(Queues::list(&fake, "app-").await.unwrap(), [format!("{URL}app-b")]);
    assert!(fake.url("app-a").await.is_ok(), "hidden from the listing only");
}

#[tokio::test]
async fn details_are_the_creation_time_and_tags() {
    let fake = Fake::new();
    fake.set_now(at(5));
    let tags = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let url = fake.insert_tagged_queue("q1", tags.clone());
    let d = fake.details(&url).await.unwrap();
    assert_eq!((d.created_at, d.tags), (Some(at(5)), tags));
    assert_eq!(
        kind(fake.details(&format!("{URL}q2")).await),
        (ErrorKind::NotFound, "GetQueueAttributes")
    );
}

#[tokio::test]
async fn subscribe_is_idempotent_and_refuses_changed_attributes() {
    let fake = Fake::new();
    let raw = attrs(&[("RawMessageDelivery", "true")]);
    let arn = fake.subscribe("t", "q1", &raw).await.unwrap();
    assert_eq!(fake.subscribe("t", "q1", &raw).await, Ok(arn.clone()), "same ARN");
    assert_eq!(
        kind(
            fake.subscribe("t", "q1", &attrs(&[("RawMessageDelivery", "false")]))
                .await
        ),
        (ErrorKind::Invalid, "Subscribe")
    );
    let other = fake.subscribe("t", "q2", &BTreeMap::new()).await.unwrap();
    assert_ne!(other, arn);
    assert_eq!(fake.subscriptions().len(), 2);
    assert_eq!(fake.subscriptions()[&arn].attributes["RawMessageDelivery"], "true");
    assert_eq!(fake.find("t", "q1").await, Ok(Some(arn.clone())));
    assert_eq!(fake.find("t2", "q1").await, Ok(None));
    assert_eq!(fake.unsubscribe(&arn).await, Ok(()));
    assert_eq!(kind(fake.unsubscribe(&arn).await), (ErrorKind::NotFound, "Unsubscribe"));
    assert_eq!(fake.find("t", "q1").await, Ok(None));
    let again = fake.subscribe("t", "q1", &BTreeMap::new()).await;
    assert!(
        again.is_ok_and(|a| a != arn),
        "after Unsubscribe: a new subscription, any attributes"
    );
}

#[tokio::test]
async fn list_by_topic_pages_100_at_a_time_over_one_topic() {
    let fake = Fake::new();
    for i in 0..250 {
        fake.subscribe("t", &format!("q{i:03}"), &BTreeMap::new())
            .await
            .unwrap();
    }
    fake.subscribe("other", "q000", &BTreeMap::new()).await.unwrap();
    let first = fake.list_by_topic("t", None).await.unwrap();
    assert_eq!(first.subscriptions.len(), 100);
    assert_eq!(
        first.subscriptions[0],
        SeenSubscription {
            arn: fake.find("t", "q000").await.unwrap().unwrap(),
            endpoint: "q000".into(),
            protocol: "sqs".into(),
        }
    );
    let second = fake.list_by_topic("t", first.next.clone()).await.unwrap();
    let third = fake.list_by_topic("t", second.next.clone()).await.unwrap();
    assert_eq!((second.subscriptions.len(), third.subscriptions.len()), (100, 50));
    assert!(second.next.is_some() && third.next.is_none());
    assert_eq!(third.subscriptions[49].endpoint, "q249", "in subscription order");
    let (all, truncated) = list_topic(&fake, "t", 10).await.unwrap();
    assert_eq!((all.len(), truncated), (250, false));
    let (some, truncated) = list_topic(&fake, "t", 2).await.unwrap();
    assert_eq!((some.len(), truncated), (200, true));
    let empty = fake.list_by_topic("none", None).await.unwrap();
    assert!(empty.subscriptions.is_empty() && empty.next.is_none());
}

fn task(id: &str, cluster: &str, desired: TaskStatus) -> EcsTask {
    EcsTask {
        task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{id}"),
        cluster_arn: format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}"),
        group: None,
        last_status: desired.clone(),
        desired_status: desired,
        version: Some(1),
        created_at: None,
        stopping_at: None,
        stopped_at: None,
    }
}

#[tokio::test]
async fn list_tasks_filters_by_cluster_name_or_arn_and_desired_status() {
    let fake = Fake::new();
    let running = task("a", "c1", TaskStatus::Running);
    let stopped = task("b", "c1", TaskStatus::Stopped);
    fake.put_task(running.clone());
    fake.put_task(stopped.clone());
    fake.put_task(task("c", "c2", TaskStatus::Running));
    assert_eq!(
        fake.list_tasks("c1", Desired::Running).await,
        Ok(vec![running.task_arn.clone()])
    );
    assert_eq!(
        fake.list_tasks(&running.cluster_arn, Desired::Stopped).await,
        Ok(vec![stopped.task_arn.clone()])
    );
    assert_eq!(fake.list_tasks("c3", Desired::Running).await, Ok(vec![]));
}

#[tokio::test]
async fn describe_tasks_takes_at_most_100_and_reports_the_rest_missing() {
    let fake = Fake::new();
    let a = task("a", "c1", TaskStatus::Running);
    let b = task("b", "c1", TaskStatus::Running);
    let elsewhere = task("c", "c2", TaskStatus::Running);
    for t in [&a, &b, &elsewhere] {
        fake.put_task(t.clone());
    }
    let unknown = "arn:aws:ecs:us-east-1:123456789012:task/c1/zzz".to_owned();
    let asked = [a.task_arn.clone(), unknown.clone(), elsewhere.task_arn.clone()];
    let d = fake.describe_tasks("c1", &asked).await.unwrap();
    let missing = vec![unknown.clone(), elsewhere.task_arn.clone()];
    assert_eq!(
        d,
        Described {
            tasks: vec![a.clone()],
            missing,
            failed: vec![]
        }
    );
    fake.describe_as_missing(&b.task_arn);
    let d = fake
        .describe_tasks(&a.cluster_arn, std::slice::from_ref(&b.task_arn))
        .await
        .unwrap();
    assert_eq!((d.tasks.len(), d.missing), (0, vec![b.task_arn.clone()]));
    assert_eq!(
        fake.list_tasks("c1", Desired::Running).await.unwrap().len(),
        2,
        "still listed"
    );
    let hundred = vec![unknown.clone(); 100];
    assert_eq!(fake.describe_tasks("c1", &hundred).await.unwrap().missing.len(), 100);
    let too_many = vec![unknown; 101];
    assert_eq!(
        kind(fake.describe_tasks("c1", &too_many).await),
        (ErrorKind::Invalid, "DescribeTasks")
    );
    assert_eq!(fake.tasks().len(), 3);
}
