//! The scenario suite on the in-memory fake.

use tasksub_tests::scenarios as s;
use tasksub_tests::world::FakeWorld;

macro_rules! on_fake {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            s::$name(&FakeWorld::new()).await;
        }
    )*};
}

on_fake!(
    full_lifecycle,
    duplicates_of_every_event,
    stopped_before_running,
    running_after_stopped,
    stop_initiated_without_stopped,
    stop_initiated_for_unknown_task,
    foreign_events_make_no_call,
    public_samples_are_handled,
    malformed_events_change_nothing,
    unrecorded_subscription_is_recovered,
    permanent_errors_are_not_retryable,
    the_two_functions_split_the_work,
);

#[tokio::test]
async fn call_budget() {
    for (label, calls) in s::call_budget(&FakeWorld::new()).await {
        println!("fake call budget: {label}: {} calls {calls:?}", calls.len());
    }
}

#[tokio::test]
async fn crash_during_provisioning_then_redelivery() {
    s::crash_during_provisioning_then_redelivery(async || FakeWorld::new()).await;
}

#[tokio::test]
async fn crash_during_teardown_then_redelivery() {
    s::crash_during_teardown_then_redelivery(async || FakeWorld::new()).await;
}

#[tokio::test]
async fn metrics_lines_parse_back() {
    use tasksub_core::decide::Role;
    use tasksub_functions::metrics::Sink;
    use tasksub_tests::world::World;
    let w = FakeWorld::new();
    let (sink, buf) = Sink::buffer();
    let running = w.cold_controller(Role::Provisioner).with_metrics(sink.clone());
    let stopping = w.cold_controller(Role::Teardown).with_metrics(sink);
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    running.handle_json(&start[0]).await.unwrap();
    running.handle_json(&start[1]).await.unwrap();
    running
        .handle_json(&tasksub_tests::events::Task::new("elsewhere").event("RUNNING", "RUNNING", 1))
        .await
        .unwrap();
    stopping.handle_json(&stop_initiated[0]).await.unwrap();
    stopping.handle_json(&stopped[0]).await.unwrap();
    stopping
        .ports()
        .fail_nth("GetItem", 1, tasksub_core::outcome::ErrorKind::Throttled);
    assert!(stopping.handle_json(&stopped[0]).await.unwrap_err().is_retryable());
    let lines: Vec<serde_json::Value> = buf
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).expect("EMF line is JSON"))
        .collect();
    let has = |name: &str| lines.iter().any(|l| l.get(name).is_some());
    for name in [
        "ProvisioningLatency",
        "TeardownLatency",
        "EventsSkipped",
        "Throttles",
        "Retries",
    ] {
        assert!(has(name), "no {name} in {lines:?}");
    }
    let skipped: Vec<&str> = lines
        .iter()
        .filter(|l| l.get("EventsSkipped").is_some())
        .map(|l| l["Reason"].as_str().unwrap())
        .collect();
    assert!(
        skipped.contains(&"already-ready") && skipped.contains(&"foreign-cluster"),
        "{skipped:?}"
    );
    for l in &lines {
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Namespace"], "tasksub");
        assert!(l["Function"] == "on-task-running" || l["Function"] == "on-task-stopped");
    }
}

#[tokio::test]
async fn service_groups_scope_the_tasks() {
    use tasksub_core::settings::vars;
    s::service_groups_scope_the_tasks(&FakeWorld::with(&[(vars::SERVICE_GROUPS, "service:orders")])).await;
}

/// A provisioning that crashed after CreateQueue and Subscribe, then a settings change (other queue and
/// subscription attributes), then the redelivered start: AWS refuses both re-creations (QueueAlreadyExists,
/// Subscribe with other attributes; the fake enforces both), so the executor adopts the existing queue
/// and finds the existing subscription, and the task ends READY instead of PROVISIONING for good.
#[tokio::test]
async fn a_provisioning_interrupted_by_a_settings_change_still_finishes() {
    use tasksub_core::decide::Role;
    use tasksub_core::outcome::ErrorKind;
    use tasksub_functions::instrumented::Instrumented;
    use tasksub_functions::Controller;
    use tasksub_tests::world::World;
    let w = FakeWorld::new();
    let task = w.task();
    let start = task.event("RUNNING", "RUNNING", 3);
    w.calls().fail_nth("PutItem", 2, ErrorKind::Transient);
    assert!(
        w.controller().handle_json(&start).await.is_err(),
        "crashed before MarkReady"
    );
    let mut changed = w.settings().clone();
    let sub = &mut changed.topics[0].subscription;
    sub.raw_delivery = !sub.raw_delivery;
    changed.queue.visibility_seconds += 7;
    let redelivery = Controller::with_ports(changed, Instrumented::new(w.fake().clone()), Role::Any);
    let out = redelivery.handle_json(&start).await.expect("the redelivery finishes");
    assert_eq!(out.state, Some("READY"));
    let o = w.observe(&task).await;
    assert_eq!(o.subscriptions.len(), 1);
    assert_eq!(
        o.record.unwrap().subscriptions.values().collect::<Vec<_>>(),
        vec![&o.subscriptions[0]]
    );
}
