//! The sweeper's scenarios, on any [`SweepWorld`]: `tests/sweeper.rs` runs them on the fake and on moto.
//! Each sets up what lost events and crashes leave behind, sweeps, and checks the real state.

use std::collections::BTreeMap;

use tasksub_core::outcome::ErrorKind;
use tasksub_core::policy::tags;
use tasksub_core::record::State;
use tasksub_core::settings::SweepSettings;
use tasksub_functions::sweeper::{Report, RunOptions};

use crate::events::Task;
use crate::moto::unique;
use crate::scenarios::handle;
use crate::sweep_world::{SweepWorld, GROUP};
use crate::world::{Observed, World};

/// One sweep with grace 0.
pub async fn sweep<S: SweepWorld>(s: &S, dry_run: bool) -> Report {
    let options = RunOptions {
        dry_run,
        ..RunOptions::default()
    };
    s.sweeper(0).run(options, chrono::Utc::now()).await.expect("sweep")
}

/// The action planned for a task, and its outcome.
pub fn action_of<'a>(r: &'a Report, task: &Task) -> Option<(&'a str, &'a str)> {
    r.actions
        .iter()
        .find(|a| a.task_id == task.id)
        .map(|a| (a.action, a.outcome))
}

fn queue_name<W: World>(w: &W, task: &Task) -> String {
    format!("{}{}", w.settings().queue.prefix.as_str(), task.id)
}

async fn make_orphan_queue<S: SweepWorld>(s: &S, task: &Task) {
    let name = queue_name(s.world(), task);
    let stack = s.world().settings().stack.clone();
    s.make_queue(
        &name,
        &[
            (tags::TASK_ARN, &task.arn),
            (tags::CLUSTER, &task.cluster),
            (tags::STACK, &stack),
        ],
    )
    .await;
}

async fn assert_gone<W: World>(w: &W, task: &Task, what: &str) {
    let o = w.observe(task).await;
    let b = w.backend();
    assert!(!o.queue_exists, "[{b}] {what}: queue left behind");
    assert!(o.subscriptions.is_empty(), "[{b}] {what}: subscription left behind");
    let r = o.record.unwrap_or_else(|| panic!("[{b}] {what}: no tombstone"));
    assert_eq!(r.state, State::Gone, "[{b}] {what}");
    assert!(r.expires_at.is_some(), "[{b}] {what}: tombstone without expiry");
}

async fn assert_ready<W: World>(w: &W, task: &Task, what: &str) {
    let o = w.observe(task).await;
    let b = w.backend();
    let r = o.record.clone().unwrap_or_else(|| panic!("[{b}] {what}: no record"));
    assert_eq!(r.state, State::Ready, "[{b}] {what}");
    assert!(o.queue_exists, "[{b}] {what}: no queue");
    assert_eq!(o.subscriptions.len(), 1, "[{b}] {what}: {o:?}");
    assert_eq!(
        r.subscriptions.values().collect::<Vec<_>>(),
        vec![&o.subscriptions[0]],
        "[{b}] {what}"
    );
    assert!(w.delivers(task).await, "[{b}] {what}: the queue does not receive");
}

/// Every situation at once, one dry run, one sweep, one more sweep:
/// - a live task's READY queue is untouched;
/// - the READY queue of a task that stopped (its stop events were lost) is removed;
/// - a provisioning a crash interrupted (queue, no subscription) is finished;
/// - a running task that never got its start event is provisioned;
/// - the READY record of a task ECS does not know is torn down;
/// - orphan queues without a record (of a stopped task, of a task ECS does not know) are removed;
/// - a running task outside our groups and a queue outside our prefix are untouched;
/// - the dry run plans exactly this and changes nothing; the second sweep finds nothing to do.
pub async fn sweep_converges_every_situation<S: SweepWorld>(s: &S) {
    let w = s.world();
    let b = w.backend();
    let mut running = s.start_tasks(5, GROUP).await;
    let (live, stopped, crashed, unprovisioned, stopped_queue_only) = (
        running.pop().unwrap(),
        running.pop().unwrap(),
        running.pop().unwrap(),
        running.pop().unwrap(),
        running.pop().unwrap(),
    );
    let foreign = s.start_tasks(1, "service:other").await.remove(0);
    handle(w, &live.event("RUNNING", "RUNNING", 1)).await;
    handle(w, &stopped.event("RUNNING", "RUNNING", 1)).await;
    s.stop_task(&stopped).await;
    w.calls().fail_nth("Subscribe", 1, ErrorKind::Transient);
    let crash = w
        .controller()
        .handle_json(&crashed.event("PENDING", "RUNNING", 1))
        .await;
    assert!(crash.is_err(), "[{b}] the injected crash");
    let vanished = s.unknown_task();
    handle(w, &vanished.event("RUNNING", "RUNNING", 1)).await;
    let lost = s.unknown_task();
    make_orphan_queue(s, &lost).await;
    s.stop_task(&stopped_queue_only).await;
    make_orphan_queue(s, &stopped_queue_only).await;
    let outside = unique("outside-");
    s.make_queue(&outside, &[]).await;

    let all = [
        &live,
        &stopped,
        &crashed,
        &unprovisioned,
        &stopped_queue_only,
        &foreign,
        &vanished,
        &lost,
    ];
    let mut before: Vec<Observed> = Vec::new();
    for t in all {
        before.push(w.observe(t).await);
    }
    assert_eq!(
        before[2].record.as_ref().map(|r| r.state),
        Some(State::Provisioning),
        "[{b}]"
    );

    let sweeper = s.sweeper(0);
    let dry = sweeper
        .run(
            RunOptions {
                dry_run: true,
                ..RunOptions::default()
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let expected: BTreeMap<&str, &str> = [
        (stopped.id.as_str(), "remove-orphan"),
        (crashed.id.as_str(), "finish-provisioning"),
        (unprovisioned.id.as_str(), "provision"),
        (stopped_queue_only.id.as_str(), "remove-orphan"),
        (vanished.id.as_str(), "remove-orphan"),
        (lost.id.as_str(), "remove-orphan"),
    ]
    .into_iter()
    .collect();
    let planned: BTreeMap<&str, &str> = dry.actions.iter().map(|a| (a.task_id.as_str(), a.action)).collect();
    assert_eq!(planned, expected, "[{b}] {dry:#?}");
    assert!(dry.actions.iter().all(|a| a.outcome == "planned"), "[{b}]");
    assert_eq!(
        sweeper.ports().write_calls(),
        Vec::<&str>::new(),
        "[{b}] a dry run wrote"
    );
    for (t, was) in all.iter().zip(&before) {
        assert_eq!(&w.observe(t).await, was, "[{b}] the dry run changed {}", t.id);
    }
    assert!(s.queue_exists(&outside).await);

    let report = sweeper.run(RunOptions::default(), chrono::Utc::now()).await.unwrap();
    assert_eq!(report.errors, 0, "[{b}] {report:#?}");
    assert_eq!(
        (
            report.orphans_found,
            report.orphans_removed,
            report.resumed,
            report.provisioned
        ),
        (4, 4, 1, 1),
        "[{b}] {report:#?}"
    );
    assert!(report.actions.iter().all(|a| a.outcome == "done"), "[{b}] {report:#?}");
    assert_ready(w, &live, "live task").await;
    assert_eq!(
        w.observe(&live).await.record,
        before[0].record,
        "[{b}] the live task's record changed"
    );
    assert_gone(w, &stopped, "stopped task").await;
    assert_ready(w, &crashed, "crashed provisioning").await;
    assert_ready(w, &unprovisioned, "task without its start event").await;
    assert_gone(w, &stopped_queue_only, "orphan queue of a stopped task").await;
    assert_gone(w, &vanished, "record of a task ECS does not know").await;
    assert_gone(w, &lost, "orphan queue of a task ECS does not know").await;
    assert_eq!(
        w.observe(&foreign).await,
        before[5],
        "[{b}] a task outside our groups was touched"
    );
    assert!(
        s.queue_exists(&outside).await,
        "[{b}] a queue outside the prefix was touched"
    );

    let again = sweep(s, false).await;
    assert!(
        again.actions.is_empty(),
        "[{b}] the second sweep still acts: {again:#?}"
    );
    assert_eq!(again.errors, 0);
}

/// The grace period holds back what might still be in flight: a fresh record of a task ECS does not
/// know, and a fresh orphan queue, are left alone and reported as waiting.
pub async fn grace_holds_back_fresh_leftovers<S: SweepWorld>(s: &S) {
    let w = s.world();
    let vanished = s.unknown_task();
    handle(w, &vanished.event("RUNNING", "RUNNING", 1)).await;
    let lost = s.unknown_task();
    make_orphan_queue(s, &lost).await;
    let sweeper = s.sweeper(3600);
    let report = sweeper.run(RunOptions::default(), chrono::Utc::now()).await.unwrap();
    assert!(report.actions.is_empty(), "[{}] {report:#?}", w.backend());
    assert_eq!(report.waiting, 2, "[{}] {report:#?}", w.backend());
    assert!(report.held.iter().all(|h| h.reason == "grace" && h.due_at.is_some()));
    assert_eq!(sweeper.ports().write_calls(), Vec::<&str>::new());
    assert_eq!(w.observe(&vanished).await.record.map(|r| r.state), Some(State::Ready));
    assert!(w.observe(&lost).await.queue_exists);
}

/// A sweep over many tasks and queues: DescribeTasks in batches of at most 100, every orphan removed,
/// every live task untouched. Returns the report (its duration is the measurement).
pub async fn sweep_at_scale<S: SweepWorld>(s: &S, tasks: usize, orphans: usize) -> Report {
    let w = s.world();
    let live = s.start_tasks(tasks, GROUP).await;
    for t in &live {
        handle(w, &t.event("RUNNING", "RUNNING", 1)).await;
    }
    let lost: Vec<Task> = (0..orphans).map(|_| s.unknown_task()).collect();
    for t in &lost {
        make_orphan_queue(s, t).await;
    }
    let sweeper = s.sweeper(0);
    let report = sweeper.run(RunOptions::default(), chrono::Utc::now()).await.unwrap();
    let b = w.backend();
    assert_eq!(
        (report.orphans_found, report.orphans_removed, report.errors),
        (orphans, orphans, 0),
        "[{b}]"
    );
    assert_eq!(report.queues_seen, tasks + orphans, "[{b}]");
    assert!(report.tasks_seen >= tasks, "[{b}]");
    let describes = sweeper
        .tasks()
        .calls()
        .iter()
        .filter(|c| **c == "DescribeTasks")
        .count();
    assert!(
        describes >= tasks.div_ceil(100),
        "[{b}] {describes} DescribeTasks for {tasks} tasks"
    );
    for t in &lost {
        assert!(!w.observe(t).await.queue_exists, "[{b}] orphan left");
    }
    assert_eq!(
        w.leftovers().await,
        (tasks, tasks),
        "[{b}] queues and subscriptions of the live tasks"
    );
    report
}

/// Planted orphans: (1) a record-less queue of ours (tasksub's tags) with a live subscription; (2) a
/// subscription whose queue and record are gone; (3) an untagged queue under the prefix named exactly
/// like a task's queue, subscribed; (4) a foreign queue outside the prefix, subscribed. One sweep removes the
/// first two (the subscription before the queue) and touches neither the third nor the fourth, which
/// it reports as held; a second sweep finds nothing more to do.
pub async fn planted_orphans_are_removed_and_foreign_ones_kept<S: SweepWorld>(s: &S) {
    let w = s.world();
    let b = w.backend();
    let ports = w.calls().inner();
    let topic = w.settings().topics[0].arn.as_str();
    let subscribe = |name: String| async move { subscribe_queue(w, &name).await };
    // (1) record-less, tagged, subscribed
    let lost = s.unknown_task();
    make_orphan_queue(s, &lost).await;
    let lost_sub = subscribe(queue_name(w, &lost)).await;
    // (2) a subscription to a queue that no longer exists, no record
    let vanished = s.unknown_task();
    let vanished_sub = subscribe(queue_name(w, &vanished)).await;
    // (3) untagged, under the prefix, named exactly like a task's queue
    let untagged = queue_name(w, &s.unknown_task());
    s.make_queue(&untagged, &[]).await;
    let untagged_sub = subscribe(untagged.clone()).await;
    // (4) outside the prefix
    let foreign = unique("orders-");
    s.make_queue(&foreign, &[("team", "payments")]).await;
    let foreign_sub = subscribe(foreign.clone()).await;

    let report = s
        .sweeper(0)
        .run(RunOptions::default(), chrono::Utc::now())
        .await
        .expect("sweep");
    let subs = listed_subscriptions(ports, topic).await;
    assert!(
        !subs.contains(&lost_sub),
        "[{b}] the lost queue's subscription was removed"
    );
    assert!(
        !subs.contains(&vanished_sub),
        "[{b}] the vanished queue's subscription was removed"
    );
    assert!(
        subs.contains(&untagged_sub),
        "[{b}] an untagged queue's subscription is kept"
    );
    assert!(
        subs.contains(&foreign_sub),
        "[{b}] a foreign queue's subscription is kept"
    );
    assert!(
        !s.queue_exists(&queue_name(w, &lost)).await,
        "[{b}] the lost queue was removed"
    );
    assert!(s.queue_exists(&untagged).await, "[{b}] the untagged queue is kept");
    assert!(s.queue_exists(&foreign).await, "[{b}] the foreign queue is kept");
    assert_eq!(
        (report.orphan_subscriptions_found, report.orphan_subscriptions_removed),
        (2, 2),
        "[{b}] {report:#?}"
    );
    let first_unsubscribe = report.actions.iter().position(|a| a.action == "unsubscribe-orphan");
    let first_delete = report.actions.iter().position(|a| a.steps.contains(&"delete-queue"));
    assert!(
        first_unsubscribe < first_delete,
        "[{b}] subscriptions go before queues: {report:#?}"
    );
    let untagged_held = report.held.iter().filter(|h| h.reason == "untagged").count();
    assert_eq!(
        untagged_held, 2,
        "[{b}] the untagged queue and its subscription are held: {:#?}",
        report.held
    );
    let again = s
        .sweeper(0)
        .run(RunOptions::default(), chrono::Utc::now())
        .await
        .expect("sweep");
    assert_eq!(
        (again.orphan_subscriptions_found, again.orphans_found),
        (0, 0),
        "[{b}] {again:#?}"
    );
}

/// Subscribes the world's first topic to the queue `name` of the home account (raw delivery), directly
/// (no record): a planted subscription. Its ARN.
async fn subscribe_queue<W: World>(w: &W, name: &str) -> String {
    use tasksub_core::naming::{queue_arn, QueueName};
    use tasksub_functions::ports::Subscriptions;
    let settings = w.settings();
    let endpoint = queue_arn(&settings.home, &QueueName::from_existing(name));
    let attrs = BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
    let topic = settings.topics[0].arn.as_str();
    w.calls()
        .inner()
        .subscribe(topic, &endpoint, &attrs)
        .await
        .expect("Subscribe")
}

async fn listed_subscriptions<P: tasksub_functions::ports::Subscriptions>(ports: &P, topic: &str) -> Vec<String> {
    let (subs, _) = tasksub_functions::ports::list_topic(ports, topic, usize::MAX)
        .await
        .expect("ListSubscriptionsByTopic");
    subs.into_iter().map(|s| s.arn).collect()
}

/// The rotating audit: a live task in sync is read (its queue's attributes, its subscriptions') and
/// what differs is set; the policy an operator replaced by hand comes back. An audit that finds nothing
/// to fix writes no record.
pub async fn an_audit_repairs_a_hand_edit<S: SweepWorld>(s: &S) {
    let w = s.world();
    let b = w.backend();
    let task = s.start_tasks(1, GROUP).await.remove(0);
    handle(w, &task.event("RUNNING", "RUNNING", 1)).await;
    let name = format!("{}{}", w.settings().queue.prefix.as_str(), task.id);
    let desired = s.policy(&name).await.expect("a policy");
    let auditing = s.sweeper_with(SweepSettings {
        grace_seconds: 0,
        min_interval_ms: 0,
        max_actions: 10_000,
        audit_per_run: 10,
        ..SweepSettings::default()
    });
    let before = w.observe(&task).await.record;
    let r = auditing.run(RunOptions::default(), chrono::Utc::now()).await.unwrap();
    assert_eq!((r.audited, r.errors), (1, 0), "[{b}] {r:#?}");
    assert_eq!(
        w.observe(&task).await.record,
        before,
        "[{b}] an audit in sync wrote the record"
    );
    assert!(!auditing.ports().write_calls().contains(&"PutItem"), "[{b}]");
    s.set_policy(&name, r#"{"Version":"2012-10-17","Statement":[]}"#).await;
    let r = auditing.run(RunOptions::default(), chrono::Utc::now()).await.unwrap();
    assert_eq!((r.audited, r.errors), (1, 0), "[{b}] {r:#?}");
    let now: serde_json::Value = serde_json::from_str(&s.policy(&name).await.expect("a policy")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&desired).unwrap();
    assert_eq!(now, want, "[{b}] the hand edit is undone");
}

/// No blind spot (issue #23): an orphan subscription of ours behind `foreign` subscriptions of another
/// app, on a topic bigger than one run's page budget (`pages_per_run`). Each run resumes the listing
/// where the last stopped, so the orphan is judged (and removed) by the run that reaches it: within one
/// listing cycle, ⌈pages ÷ budget⌉ runs. A sweeper that started every run at the first page never would.
/// Returns the reports of the runs it took.
pub async fn an_orphan_behind_a_big_listing_is_removed<S: SweepWorld>(
    s: &S,
    foreign: usize,
    pages_per_run: usize,
) -> Vec<Report> {
    let w = s.world();
    let b = w.backend();
    let ports = w.calls().inner();
    let topic = w.settings().topics[0].arn.as_str();
    let other_app = unique("other-app-");
    for i in 0..foreign {
        subscribe_queue(w, &format!("{other_app}{i}")).await;
    }
    let orphan = subscribe_queue(w, &queue_name(w, &s.unknown_task())).await;
    let sweeper = s.sweeper_with(SweepSettings {
        grace_seconds: 0,
        min_interval_ms: 0,
        max_actions: 10_000,
        audit_per_run: 0,
        list_pages_per_run: pages_per_run,
    });
    let pages = (foreign + 1).div_ceil(100);
    let cycle = pages.div_ceil(pages_per_run);
    let mut reports = Vec::new();
    for _ in 0..cycle {
        let r = sweeper
            .run(RunOptions::default(), chrono::Utc::now())
            .await
            .expect("sweep");
        let removed = r.orphan_subscriptions_removed;
        reports.push(r);
        if removed > 0 {
            break;
        }
    }
    assert!(
        !listed_subscriptions(ports, topic).await.contains(&orphan),
        "[{b}] the orphan behind {foreign} subscriptions was removed within one cycle ({cycle} runs): {:#?}",
        reports.iter().map(|r| &r.listings).collect::<Vec<_>>()
    );
    let first = &reports[0].listings[0];
    assert!(
        !first.complete && first.pages == pages_per_run as u64,
        "[{b}] the first run read one budget's worth, not the whole topic: {first:?}"
    );
    reports
}
