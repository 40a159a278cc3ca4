//! Issue #21's cases on the fake and on moto behind the fault proxy (`tasksub_tests::converge`): a topic
//! refusing us, a topic retired or added while a start was half done, an unreadable record, two settings
//! versions at once, a changed topic setting, and what operators and topic owners break by hand.

use tasksub_tests::converge::{cases, FakeStage, MotoStage};

macro_rules! on_both {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                use super::*;
                #[tokio::test]
                async fn fake() {
                    cases::$case(&FakeStage::new()).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn moto() {
                    cases::$case(&MotoStage::new().await).await;
                }
            }
        )+
    };
}

on_both!(
    a_refusing_topic_blocks_nothing,
    a_topic_refusing_to_the_end_leaves_nothing,
    a_retired_topic_is_never_forgotten,
    an_adopted_queue_gets_the_new_policy,
    a_malformed_record_is_quarantined,
    an_older_generation_never_undoes_a_newer_one,
    a_changed_topic_setting_reaches_live_tasks,
    what_others_broke_is_repaired,
);

/// Case 8: `TASKSUB_REGION` decides where queues (and the table) live, whatever region the SDK was given:
/// with TASKSUB_REGION=eu-west-1 and AWS_REGION=us-east-1 the queue is made in eu-west-1, where its record,
/// policy and subscription endpoint say it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_region_decides_where_queues_live() {
    use tasksub_core::decide::Role;
    use tasksub_core::settings::{vars, Settings};
    use tasksub_functions::aws::AwsPorts;
    use tasksub_functions::Controller;
    use tasksub_tests::events::{Task, ACCOUNT};
    use tasksub_tests::moto::{unique, Moto};
    use tasksub_tests::world::create_table;

    let sdk = Moto::get().sdk_config().await; // us-east-1
    let eu = sdk.to_builder().region(aws_config::Region::new("eu-west-1")).build();
    let id = unique("rg");
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name(format!("t-{id}"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("ARN")
        .to_owned();
    let table = format!("records-{id}");
    create_table(&aws_sdk_dynamodb::Client::new(&eu), &table).await;
    let prefix = format!("tasksub-{id}-");
    let m = [
        (vars::TOPIC_ARNS, topic.as_str()),
        (vars::TABLE, table.as_str()),
        (vars::QUEUE_PREFIX, prefix.as_str()),
        (vars::ACCOUNT_ID, ACCOUNT),
        (vars::REGION, "eu-west-1"),
        (vars::AWS_REGION, "us-east-1"),
        (vars::CLUSTERS, "prod"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::from_map(&m).expect("settings");
    let c = Controller::with_ports(settings.clone(), AwsPorts::for_settings(&sdk, &settings), Role::Any);
    let task = Task::new("prod");
    let out = Box::pin(c.handle_json(&task.event("RUNNING", "RUNNING", 1)))
        .await
        .expect("start");
    assert_eq!(out.state, Some("READY"), "{out:?}");
    let name = format!("{prefix}{}", task.id);
    let in_eu = aws_sdk_sqs::Client::new(&eu)
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await;
    assert!(in_eu.is_ok(), "the queue is in eu-west-1");
    let in_us = aws_sdk_sqs::Client::new(&sdk)
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await;
    assert!(in_us.is_err(), "no queue in the SDK's region");
    let record = Box::pin(c.handle_json(&task.event("RUNNING", "RUNNING", 2)))
        .await
        .expect("duplicate");
    assert_eq!(record.reason, Some("already-ready"));
}

/// A provisioning whose stage failed after its Subscribe succeeded (CreateQueue refused with
/// QueueDeletedRecently because a teardown just deleted the queue) leaves nothing once the handler
/// returns, before any sweep: the current record is a tombstone, so the subscription is undone at once.
#[tokio::test]
async fn a_failed_stage_undoes_its_subscription_when_a_teardown_won() {
    use std::future::Future;
    use std::sync::{Arc, Mutex};
    use tasksub_core::decide::Role;
    use tasksub_core::outcome::ErrorKind;
    use tasksub_core::record::State;
    use tasksub_functions::fake::Fake;
    use tasksub_functions::ports::PortError;
    use tasksub_functions::wrap::Wrap;
    use tasksub_functions::Controller;
    use tasksub_tests::world::FakeWorld;

    /// Ports that, at the provisioning's CreateQueue, let a whole teardown run first, then refuse the
    /// name as SQS would after a delete.
    #[derive(Clone)]
    struct TeardownFirst {
        fake: Fake,
        teardown: Arc<Mutex<Option<Vec<serde_json::Value>>>>,
        settings: tasksub_core::settings::Settings,
    }
    impl Wrap for TeardownFirst {
        type Inner = Fake;
        fn inner(&self) -> &Fake {
            &self.fake
        }
        fn around<T: Send>(
            &self,
            op: &'static str,
            call: impl Future<Output = Result<T, PortError>> + Send,
        ) -> impl Future<Output = Result<T, PortError>> + Send {
            let events = if op == "CreateQueue" {
                self.teardown.lock().unwrap().take()
            } else {
                None
            };
            let (fake, settings) = (self.fake.clone(), self.settings.clone());
            async move {
                let Some(events) = events else { return call.await };
                let c = Controller::with_ports(settings, fake, Role::Any);
                for e in &events {
                    Box::pin(c.handle_json(e)).await.expect("the teardown");
                }
                Err(PortError::new(
                    ErrorKind::DeletedRecently,
                    "CreateQueue",
                    "QueueDeletedRecently",
                ))
            }
        }
    }
    tasksub_functions::wrap_ports!([] TeardownFirst: Records, Queues, Subscriptions);

    let w = FakeWorld::new();
    let settings = tasksub_tests::world::World::settings(&w).clone();
    let task = tasksub_tests::world::World::task(&w);
    let (start, stop_initiated, stopped) = task.lifecycle();
    // the queue exists (an earlier provisioning made it), so the teardown deletes it
    let first = Controller::with_ports(settings.clone(), w.fake().clone(), Role::Any);
    first.handle_json(&start[0]).await.expect("start");
    w.fake().insert_record({
        let mut r = w.fake().record(&task.id).expect("record");
        r.state = State::Provisioning;
        r.subscriptions.clear();
        r.pending = settings.topic_arns().map(str::to_owned).collect();
        r
    });
    for (arn, _) in w.fake().subscriptions() {
        tasksub_functions::ports::Subscriptions::unsubscribe(w.fake(), &arn)
            .await
            .unwrap();
    }
    let ports = TeardownFirst {
        fake: w.fake().clone(),
        teardown: Arc::new(Mutex::new(Some(vec![stop_initiated[0].clone(), stopped[0].clone()]))),
        settings: settings.clone(),
    };
    let racing = Controller::with_ports(settings, ports, Role::Any);
    let err = racing.handle_json(&start[1]).await.expect_err("the stage failed");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(w.fake().record(&task.id).expect("tombstone").state, State::Gone);
    assert!(
        w.fake().subscriptions().is_empty(),
        "the subscription the failed stage made is undone"
    );
    assert!(w.fake().queues().is_empty());
}

/// A subscription of ours to a topic that refuses Subscribe (made before the owner refused, here by hand
/// while it admitted us) is recorded by the next sweep and the refusal cleared, although the refusal's
/// retry is not due and nothing else changed: the write happens (an audit that changed nothing is the
/// only plan that skips it), so the task is not left deaf on paper while the subscription delivers.
#[tokio::test]
async fn a_listed_subscription_of_a_refusing_topic_is_recorded() {
    use tasksub_core::record::State;
    use tasksub_functions::ports::Subscriptions;
    use tasksub_tests::converge::{queue_arn, Stage};

    let s = FakeStage::new();
    let (a, b) = (s.topics()[0].clone(), s.topics()[2].clone());
    let settings = s.settings(&[&a, &b], &[]);
    let task = s.running_task().await;
    s.refuse(&b);
    s.handle(&settings, &task.event("RUNNING", "RUNNING", 3))
        .await
        .expect("start");
    let look = s.look(&task, &settings).await;
    let r = look.record.expect("record");
    assert_eq!((r.state, r.refused.contains_key(&b)), (State::Ready, true));
    // the owner admits us for a while; someone subscribes the queue by hand; the owner refuses again
    s.admit(&b);
    let attributes = tasksub_core::policy::subscription_attributes(settings.topic(&b).expect("b"), r.created_at);
    let arn = s
        .fake()
        .subscribe(&b, &queue_arn(&settings, &task), &attributes)
        .await
        .expect("by hand");
    s.refuse(&b);
    s.sweep(&settings, chrono::Utc::now() + chrono::Duration::minutes(3), false)
        .await;
    let r = s.look(&task, &settings).await.record.expect("record");
    assert_eq!(r.subscriptions.get(&b), Some(&arn), "recorded: {r:?}");
    assert!(r.refused.is_empty(), "{r:?}");
}
