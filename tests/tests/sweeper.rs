//! The sweeper: the same scenarios on the fake and on moto's ECS, then the fake alone for what needs
//! fault injection or a paused clock (rate limit, caps, deadline, aborted and partial sweeps, metrics).

use tasksub_core::event::TaskStatus;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::State;
use tasksub_core::settings::SweepSettings;
use tasksub_functions::metrics::Sink;
use tasksub_functions::sweeper::RunOptions;
use tasksub_tests::events::Task;
use tasksub_tests::scenarios::handle;
use tasksub_tests::sweep_scenarios as s;
use tasksub_tests::sweep_world::{FakeSweepWorld, MotoSweepWorld, SweepWorld, GROUP};
use tasksub_tests::world::World;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test]
async fn fake_sweep_converges_every_situation() {
    s::sweep_converges_every_situation(&FakeSweepWorld::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_sweep_converges_every_situation() {
    s::sweep_converges_every_situation(&MotoSweepWorld::new().await).await;
}

#[tokio::test]
async fn fake_grace_holds_back_fresh_leftovers() {
    s::grace_holds_back_fresh_leftovers(&FakeSweepWorld::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_grace_holds_back_fresh_leftovers() {
    s::grace_holds_back_fresh_leftovers(&MotoSweepWorld::new().await).await;
}

#[tokio::test]
async fn fake_sweep_at_scale() {
    let r = s::sweep_at_scale(&FakeSweepWorld::new(), 250, 150).await;
    println!(
        "fake sweep: {} tasks, {} queues, {} orphans removed in {} ms",
        r.tasks_seen, r.queues_seen, r.orphans_removed, r.duration_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_sweep_at_scale() {
    let r = s::sweep_at_scale(&MotoSweepWorld::new().await, 120, 150).await;
    println!(
        "moto sweep: {} tasks, {} queues, {} orphans removed in {} ms",
        r.tasks_seen, r.queues_seen, r.orphans_removed, r.duration_ms
    );
}

/// Records of tasks ECS does not know (READY, so each teardown is three writes).
async fn vanished(w: &FakeSweepWorld, n: usize) -> Vec<Task> {
    let mut out = Vec::new();
    for _ in 0..n {
        let t = w.unknown_task();
        handle(w.world(), &t.event("RUNNING", "RUNNING", 1)).await;
        out.push(t);
    }
    out
}

#[tokio::test]
async fn the_rate_limit_spaces_the_sweepers_writes() {
    let w = FakeSweepWorld::new();
    vanished(&w, 5).await;
    let sweeper = w.sweeper_with(SweepSettings {
        grace_seconds: 0,
        min_interval_ms: 20,
        max_actions: 100,
        audit_per_run: 0,
        ..SweepSettings::default()
    });
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(report.orphans_removed, 5);
    let writes = sweeper.ports().write_calls().len();
    assert_eq!(writes, 15, "Unsubscribe, DeleteQueue, PutItem per task");
    assert!(
        report.duration_ms >= (writes as u64 - 1) * 20,
        "at least one interval between two writes: {report:?}"
    );
}

#[tokio::test]
async fn the_cap_defers_the_rest_to_the_next_run() {
    let w = FakeSweepWorld::new();
    let tasks = vanished(&w, 3).await;
    let sweeper = w.sweeper_with(SweepSettings {
        grace_seconds: 0,
        min_interval_ms: 0,
        max_actions: 2,
        audit_per_run: 0,
        ..SweepSettings::default()
    });
    let first = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!((first.orphans_found, first.orphans_removed, first.deferred), (3, 2, 1));
    assert_eq!(first.actions.iter().filter(|a| a.outcome == "deferred").count(), 1);
    let second = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(
        (second.orphans_found, second.orphans_removed, second.deferred),
        (1, 1, 0)
    );
    for t in &tasks {
        assert_eq!(w.world().observe(t).await.record.unwrap().state, State::Gone);
    }
}

#[tokio::test]
async fn past_the_deadline_no_action_starts() {
    let w = FakeSweepWorld::new();
    vanished(&w, 2).await;
    let sweeper = w.sweeper(0);
    let options = RunOptions {
        stop_by: Some(tokio::time::Instant::now()),
        ..RunOptions::default()
    };
    let report = sweeper.run(options, now()).await.unwrap();
    assert_eq!(
        (report.orphans_found, report.deferred, report.orphans_removed),
        (2, 2, 0)
    );
    assert!(sweeper.ports().write_calls().is_empty());
}

#[tokio::test]
async fn a_failed_listing_aborts_the_sweep_before_any_change() {
    for (on_tasks, op) in [(true, "ListTasks"), (false, "Scan"), (false, "ListQueues")] {
        let w = FakeSweepWorld::new();
        vanished(&w, 1).await;
        let sweeper = w.sweeper(0);
        if on_tasks {
            sweeper.tasks().fail_nth(op, 1, ErrorKind::Throttled);
        } else {
            sweeper.ports().fail_nth(op, 1, ErrorKind::Throttled);
        }
        let err = sweeper.run(RunOptions::default(), now()).await.unwrap_err();
        assert!(err.to_string().contains("nothing changed"), "{op}: {err}");
        assert!(sweeper.ports().write_calls().is_empty(), "{op}");
    }
}

#[tokio::test]
async fn tasks_that_cannot_be_described_are_left_alone() {
    let w = FakeSweepWorld::new();
    let t = w.start_tasks(1, GROUP).await.remove(0);
    handle(w.world(), &t.event("RUNNING", "RUNNING", 1)).await;
    w.stop_task(&t).await;
    let sweeper = w.sweeper(0);
    sweeper.tasks().fail_nth("DescribeTasks", 1, ErrorKind::Throttled);
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!((report.errors, report.orphans_found), (1, 0), "{report:#?}");
    assert_eq!(w.world().observe(&t).await.record.unwrap().state, State::Ready);
    let report = w.sweeper(0).run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(report.orphans_removed, 1, "the next sweep removes it");
}

#[tokio::test]
async fn a_failed_action_is_counted_and_the_others_go_on() {
    let w = FakeSweepWorld::new();
    vanished(&w, 2).await;
    let sweeper = w.sweeper(0);
    sweeper.ports().fail_nth("DeleteQueue", 1, ErrorKind::AccessDenied);
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!((report.orphans_found, report.orphans_removed, report.errors), (2, 1, 1));
    let failed = report.actions.iter().find(|a| a.outcome == "failed").unwrap();
    assert!(failed.detail.as_deref().unwrap().contains("delete-queue"), "{failed:?}");
}

#[tokio::test]
async fn a_cluster_ecs_does_not_know_runs_no_task() {
    let w = FakeSweepWorld::new();
    let t = vanished(&w, 1).await.remove(0);
    let sweeper = w.sweeper(0);
    // the first configured cluster is `prod`, where the task ran
    sweeper.tasks().fail_nth("ListTasks", 1, ErrorKind::NotFound);
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(report.missing_clusters.len(), 1, "{report:#?}");
    assert_eq!(report.orphans_removed, 1);
    assert_eq!(w.world().observe(&t).await.record.unwrap().state, State::Gone);
}

#[tokio::test]
async fn a_stopping_task_still_subscribed_is_drained() {
    let w = FakeSweepWorld::new();
    let t = w.start_tasks(1, GROUP).await.remove(0);
    handle(w.world(), &t.event("RUNNING", "RUNNING", 1)).await;
    let mut ecs = w.fake().tasks().remove(0);
    ecs.desired_status = TaskStatus::Stopped;
    ecs.stopping_at = Some(now());
    w.fake().put_task(ecs);
    let report = w.sweeper(0).run(RunOptions::default(), now()).await.unwrap();
    assert_eq!((report.drained, report.orphans_found), (1, 0), "{report:#?}");
    let o = w.world().observe(&t).await;
    assert_eq!(o.record.unwrap().state, State::Draining);
    assert!(o.queue_exists, "the draining queue stays until the task stops");
    assert!(o.subscriptions.is_empty());
}

#[tokio::test]
async fn a_queue_that_outlived_its_tombstone_is_deleted() {
    let w = FakeSweepWorld::new();
    let t = w.unknown_task();
    let (start, _, stopped) = t.lifecycle();
    handle(w.world(), &start[0]).await;
    handle(w.world(), &stopped[0]).await;
    let name = format!("tasksub-{}", t.id);
    w.make_queue(&name, &[]).await;
    let report = w.sweeper(0).run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(report.actions[0].action, "remove-stray-queue");
    assert_eq!(report.actions[0].steps, vec!["delete-queue"]);
    assert!(!w.queue_exists(&name).await);
    assert_eq!(w.world().observe(&t).await.record.unwrap().state, State::Gone);
}

#[tokio::test]
async fn the_summary_is_emitted_as_emf_and_serialises_in_camel_case() {
    let w = FakeSweepWorld::new();
    vanished(&w, 2).await;
    let (sink, buf) = Sink::buffer();
    let dry = w.sweeper(0).with_metrics(sink.clone());
    dry.run(
        RunOptions {
            dry_run: true,
            ..RunOptions::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert!(buf.lock().unwrap().is_empty(), "a dry run emits no metrics");
    let report = w
        .sweeper(0)
        .with_metrics(sink)
        .run(RunOptions::default(), now())
        .await
        .unwrap();
    let lines = buf.lock().unwrap().clone();
    assert_eq!(lines.len(), 1);
    let emf: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(emf["Function"], "sweeper");
    assert_eq!(emf["OrphansFound"], 2.0);
    assert_eq!(emf["OrphansRemoved"], 2.0);
    // The mass-removal alarms (SAM and CDK) watch these two.
    assert_eq!(emf["OrphanSubscriptionsRemoved"], 0.0);
    assert!(emf["OrphanSubscriptionsFound"].is_number());
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "tasksub");
    let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    for n in [
        "RecordsSeen",
        "QueuesSeen",
        "TasksSeen",
        "Resumed",
        "Provisioned",
        "Converged",
        "SweepErrors",
        "SweepDuration",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["orphansRemoved"], 2);
    assert_eq!(json["actions"][0]["action"], "remove-orphan");
    assert_eq!(json["actions"][0]["outcome"], "done");
    assert_eq!(json["actions"][0]["state"], "GONE");
}

#[tokio::test]
async fn describe_batches_hold_at_most_100_tasks() {
    let w = FakeSweepWorld::new();
    w.start_tasks(201, "service:other").await;
    let sweeper = w.sweeper(0);
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(report.tasks_seen, 201);
    let calls = sweeper.tasks().calls();
    assert_eq!(calls.iter().filter(|c| **c == "DescribeTasks").count(), 3, "{calls:?}");
    assert_eq!(report.errors, 0, "the fake refuses batches over 100");
}

#[tokio::test]
async fn fake_planted_orphans_are_removed_and_foreign_ones_kept() {
    s::planted_orphans_are_removed_and_foreign_ones_kept(&FakeSweepWorld::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_planted_orphans_are_removed_and_foreign_ones_kept() {
    s::planted_orphans_are_removed_and_foreign_ones_kept(&MotoSweepWorld::new().await).await;
}

/// What the subscription pass costs per 1,000 subscriptions on the topic (900 healthy, 100 orphans) at
/// the default pace (one paced call every 100 ms; the clock is tokio's, paused): 10 pages of
/// ListSubscriptionsByTopic and one Unsubscribe per orphan, nothing else written. The figures printed
/// are virtual seconds, the cost of the pacing (a measurement, not an assertion on time).
#[tokio::test(start_paused = true)]
async fn the_subscription_pass_costs_ten_list_calls_per_thousand_subscriptions() {
    use tasksub_core::naming::{queue_arn, QueueName};
    use tasksub_functions::ports::Subscriptions;
    let w = FakeSweepWorld::new();
    for t in w.start_tasks(900, GROUP).await {
        handle(w.world(), &t.event("RUNNING", "RUNNING", 1)).await;
    }
    let settings = w.world().settings().clone();
    let attrs = std::collections::BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
    for _ in 0..100 {
        let gone = w.unknown_task();
        let name = format!("{}{}", settings.queue.prefix.as_str(), gone.id);
        let endpoint = queue_arn(&settings.home, &QueueName::from_existing(&name));
        w.fake()
            .subscribe(settings.topics[0].arn.as_str(), &endpoint, &attrs)
            .await
            .unwrap();
    }
    // The rotating audit (which reads 25 live tasks a run, CreateQueue included) is off: its cost is
    // measured by bench-sweep (BENCHMARKS §7); this counts the subscription pass alone.
    let sweeper = w.sweeper_with(SweepSettings {
        grace_seconds: 0,
        audit_per_run: 0,
        ..SweepSettings::default()
    });
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    let calls = sweeper.ports().calls();
    let count = |op: &str| calls.iter().filter(|c| **c == op).count();
    assert_eq!(count("ListSubscriptionsByTopic"), 10, "100 subscriptions a page");
    assert_eq!(report.subscriptions_seen, 1000);
    assert_eq!(
        (report.orphan_subscriptions_found, report.orphan_subscriptions_removed),
        (100, 100)
    );
    assert_eq!(
        sweeper.ports().write_calls(),
        vec!["Unsubscribe"; 100],
        "nothing else changed"
    );
    println!(
        "subscription pass, 1,000 subscriptions (100 orphans) at 100 ms pace: {} list calls, {} unsubscribes, {:.1} s (virtual)",
        count("ListSubscriptionsByTopic"),
        count("Unsubscribe"),
        report.duration_ms as f64 / 1000.0
    );
}

/// A task ListTasks lists and DescribeTasks then reports MISSING is alive as far as the sweeper knows:
/// it is never torn down on that pass (a GONE tombstone would be final for a live task).
#[tokio::test]
async fn a_listed_task_reported_missing_is_left_alone() {
    let w = FakeSweepWorld::new();
    let t = w.start_tasks(1, GROUP).await.remove(0);
    handle(w.world(), &t.event("RUNNING", "RUNNING", 1)).await;
    w.fake().describe_as_missing(&t.arn);
    let report = w.sweeper(0).run(RunOptions::default(), now()).await.unwrap();
    assert_eq!((report.orphans_found, report.orphans_removed), (0, 0), "{report:#?}");
    let o = w.world().observe(&t).await;
    assert_eq!(o.record.unwrap().state, State::Ready);
    assert_eq!(o.subscriptions.len(), 1);
}

/// ListQueues lags behind new queues: a subscription to a record-less queue that is not listed yet is not
/// taken for an orphan of a vanished queue; GetQueueUrl finds the queue, its tags say it is another
/// deployment's, and its subscription is kept.
#[tokio::test]
async fn a_subscription_to_an_unlisted_queue_of_another_stack_is_kept() {
    use tasksub_core::naming::{queue_arn, QueueName};
    use tasksub_core::policy::tags;
    use tasksub_functions::ports::Subscriptions;
    let w = FakeSweepWorld::new();
    let t = w.unknown_task();
    let settings = w.world().settings().clone();
    let name = format!("{}{}", settings.queue.prefix.as_str(), t.id);
    w.make_queue(&name, &[(tags::TASK_ARN, &t.arn), (tags::STACK, "tasksub-staging")])
        .await;
    w.fake().hide_from_listing(&name);
    let endpoint = queue_arn(&settings.home, &QueueName::from_existing(&name));
    let attrs = std::collections::BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
    let arn = w
        .fake()
        .subscribe(settings.topics[0].arn.as_str(), &endpoint, &attrs)
        .await
        .unwrap();
    let report = w.sweeper(0).run(RunOptions::default(), now()).await.unwrap();
    assert_eq!(report.orphan_subscriptions_found, 0, "{report:#?}");
    assert!(
        w.fake().subscriptions().contains_key(&arn),
        "another deployment's subscription is kept"
    );
    assert!(
        report.held.iter().any(|h| h.reason == "other-stack"),
        "{:#?}",
        report.held
    );
}

/// A throttled ListSubscriptionsByTopic (its 30 TPS quota is the whole account's) skips the subscription
/// pass only: the rest of the sweep runs, and the failure is counted.
#[tokio::test]
async fn a_failed_subscription_listing_skips_only_that_pass() {
    let w = FakeSweepWorld::new();
    vanished(&w, 1).await;
    let sweeper = w.sweeper(0);
    sweeper
        .ports()
        .fail_nth("ListSubscriptionsByTopic", 1, ErrorKind::Throttled);
    let report = sweeper.run(RunOptions::default(), now()).await.unwrap();
    assert_eq!((report.errors, report.subscriptions_seen), (1, 0), "{report:#?}");
    assert_eq!(report.orphans_removed, 1, "the rest of the sweep ran");
}

#[tokio::test]
async fn fake_an_audit_repairs_a_hand_edit() {
    s::an_audit_repairs_a_hand_edit(&FakeSweepWorld::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_an_audit_repairs_a_hand_edit() {
    s::an_audit_repairs_a_hand_edit(&MotoSweepWorld::new().await).await;
}

/// Issue #23's report: an orphan behind 10,100 subscriptions of another app survived every sweep (each
/// read the first 10,000 and stopped). With the listing resumed, the second run reaches and removes it.
#[tokio::test]
async fn fake_an_orphan_behind_ten_thousand_subscriptions_is_removed() {
    let reports = s::an_orphan_behind_a_big_listing_is_removed(&FakeSweepWorld::new(), 10_100, 100).await;
    assert_eq!(
        reports.len(),
        2,
        "{:#?}",
        reports.iter().map(|r| &r.listings).collect::<Vec<_>>()
    );
    let second = &reports[1].listings[0];
    assert!(second.cycle_finished && !second.complete, "{second:?}");
    assert_eq!((second.cycle_pages, second.cycle_runs), (102, 2), "{second:?}");
    assert_eq!(reports[1].longest_cycle_runs, 2);
}

/// The same on moto, with a budget of one page a run: the position is kept in the DynamoDB table
/// between runs (and the table's scan does not take that item for a record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_an_orphan_behind_a_big_listing_is_removed() {
    let w = MotoSweepWorld::new().await;
    let reports = s::an_orphan_behind_a_big_listing_is_removed(&w, 250, 1).await;
    assert_eq!(
        reports.len(),
        3,
        "{:#?}",
        reports.iter().map(|r| &r.listings).collect::<Vec<_>>()
    );
    assert!(
        reports.iter().all(|r| r.quarantined == 0),
        "the positions item is not a record"
    );
}

/// Issue #23, done when: the sweeper judges 100,000 subscriptions on one topic without a blind spot, on
/// the fake behind SNS's ListSubscriptionsByTopic quota (30 TPS, 20 ms a call, the SDK's retries) in
/// virtual time, with the sweeper's default settings, one run every 5 minutes. An orphan of ours behind
/// 100,000 subscriptions of another app is removed by the run that reaches it, within the first cycle of
/// ⌈1,001 pages ÷ 100⌉ = 11 runs; the report gives the cycle's length.
#[tokio::test(start_paused = true)]
async fn a_topic_of_100k_subscriptions_is_judged_within_one_cycle_under_the_list_quota() {
    use std::collections::BTreeMap;
    use tasksub_core::naming::{queue_arn, QueueName};
    use tasksub_functions::ports::Subscriptions;
    use tasksub_functions::sweeper::Sweeper;
    use tasksub_tests::quota::{Quota, SdkRetry};
    const FOREIGN: usize = 100_000;
    let w = FakeSweepWorld::new();
    let fake = w.fake().clone();
    let settings = w.world().settings().clone();
    let topic = settings.topics[0].arn.as_str().to_owned();
    let attrs = BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
    for i in 0..FOREIGN {
        let endpoint = queue_arn(&settings.home, &QueueName::from_existing(&format!("other-app-{i:06}")));
        fake.subscribe(&topic, &endpoint, &attrs).await.expect("Subscribe");
    }
    let vanished = w.unknown_task();
    let name = QueueName::from_existing(&format!("{}{}", settings.queue.prefix.as_str(), vanished.id));
    fake.subscribe(&topic, &queue_arn(&settings.home, &name), &attrs)
        .await
        .expect("Subscribe");
    let quota = Quota::new(fake.clone(), SdkRetry::Standard, 23);
    let sweep = SweepSettings {
        grace_seconds: 0,
        audit_per_run: 0,
        ..SweepSettings::default()
    };
    let sweeper = Sweeper::with_ports(settings, sweep, quota.clone(), fake.clone());
    let started = tokio::time::Instant::now();
    let epoch = chrono::Utc::now();
    let mut reports = Vec::new();
    for run in 0..11 {
        let at = epoch + chrono::Duration::minutes(5 * run);
        tokio::time::sleep_until(started + std::time::Duration::from_secs(300 * run as u64)).await;
        let report = sweeper.run(RunOptions::default(), at).await.expect("sweep");
        let done = report.orphan_subscriptions_removed == 1;
        reports.push(report);
        if done {
            break;
        }
    }
    let last = reports.last().unwrap();
    let listing = &last.listings[0];
    println!(
        "100,000 subscriptions: orphan removed by run {} of the cycle; {} pages in {} runs; the longest run took {} ms of virtual time; {} throttles",
        reports.len(),
        listing.cycle_pages,
        listing.cycle_runs,
        reports.iter().map(|r| r.duration_ms).max().unwrap_or(0),
        quota.throttles()
    );
    assert_eq!(
        last.orphan_subscriptions_removed,
        1,
        "{:#?}",
        reports.iter().map(|r| &r.listings).collect::<Vec<_>>()
    );
    assert_eq!(
        (reports.len(), listing.cycle_runs, listing.cycle_pages),
        (11, 11, 1001),
        "{listing:?}"
    );
    assert!(
        listing.cycle_finished && listing.last_cycle_seconds == Some(3000),
        "{listing:?}"
    );
    assert!(
        reports.iter().all(|r| r.errors == 0),
        "paced under the quota: nothing failed"
    );
}
