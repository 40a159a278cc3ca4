//! The scenario suite. Every function runs on any [`World`]; `tests/fake.rs` and `tests/moto.rs` run
//! all of them on both backends. Each checks real state (records, queues, subscriptions, delivery).

use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::State;
use tasksub_functions::{HandlerError, Outcome};

use crate::events::{public_samples, Task};
use crate::world::World;

/// Handles an event with the world's controller; panics on error.
pub async fn handle<W: World>(w: &W, event: &Value) -> Outcome {
    w.controller()
        .handle_json(event)
        .await
        .unwrap_or_else(|e| panic!("[{}] {e}", w.backend()))
}

/// Handles every event in order.
pub async fn handle_all<W: World>(w: &W, events: &[Value]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for e in events {
        out.push(handle(w, e).await);
    }
    out
}

async fn assert_nothing_left<W: World>(w: &W, task: &Task) {
    let o = w.observe(task).await;
    let b = w.backend();
    assert!(!o.queue_exists, "[{b}] queue left behind");
    assert!(o.subscriptions.is_empty(), "[{b}] subscription left behind");
    let r = o.record.unwrap_or_else(|| panic!("[{b}] no tombstone"));
    assert_eq!(r.state, State::Gone, "[{b}] record is not a tombstone");
    assert!(r.expires_at.is_some(), "[{b}] tombstone without expiry");
    assert_eq!(
        (r.queue_url, r.subscriptions.len()),
        (None, 0),
        "[{b}] tombstone still names resources"
    );
}

async fn assert_ready<W: World>(w: &W, task: &Task) {
    let o = w.observe(task).await;
    let b = w.backend();
    let r = o.record.unwrap_or_else(|| panic!("[{b}] no record"));
    assert_eq!(r.state, State::Ready, "[{b}]");
    assert!(o.queue_exists, "[{b}] no queue");
    assert_eq!(o.subscriptions.len(), 1, "[{b}] expected exactly one subscription");
    assert_eq!(
        r.subscriptions.values().collect::<Vec<_>>(),
        vec![&o.subscriptions[0]],
        "[{b}] record names another subscription"
    );
    assert!(r.queue_url.is_some(), "[{b}] record without queue URL");
}

/// start → publish → receive → stop → nothing left; the wire attributes are what we asked for.
pub async fn full_lifecycle<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let first = handle(w, &start[0]).await;
    assert_eq!(first.outcome, "applied");
    assert_eq!(first.steps, vec!["claim", "create-queue", "subscribe", "mark-ready"]);
    assert_ready(w, &task).await;
    let wire = w.wire(&task).await.expect("queue and subscription");
    let policy: Value = serde_json::from_str(&wire.queue_attributes["Policy"]).expect("policy JSON");
    let st = &policy["Statement"][0];
    assert_eq!(st["Principal"], serde_json::json!({"Service": "sns.amazonaws.com"}));
    assert_eq!(
        st["Condition"]["ArnEquals"]["aws:SourceArn"],
        w.settings().topics[0].arn.as_str()
    );
    assert_eq!(wire.queue_attributes["SqsManagedSseEnabled"], "true");
    assert_eq!(wire.queue_attributes["MessageRetentionPeriod"], "86400");
    assert_eq!(wire.queue_tags["tasksub:task-arn"], task.arn);
    assert_eq!(wire.queue_tags["tasksub:group"], "service:orders");
    assert_eq!(wire.subscription_attributes["RawMessageDelivery"], "true");

    for e in &start[1..] {
        assert_eq!(handle(w, e).await.reason, Some("already-ready"));
    }
    assert!(
        w.delivers(&task).await,
        "[{}] the task's queue did not receive",
        w.backend()
    );

    let drain = handle(w, &stop_initiated[0]).await;
    assert_eq!(drain.steps, vec!["unsubscribe", "mark-draining"]);
    let o = w.observe(&task).await;
    assert!(o.queue_exists && o.subscriptions.is_empty());
    assert_eq!(o.record.unwrap().state, State::Draining);
    assert!(
        !w.delivers(&task).await,
        "a draining queue must not receive new messages"
    );
    for e in &stop_initiated[1..] {
        assert_eq!(handle(w, e).await.reason, Some("already-draining"));
    }
    let gone = handle(w, &stopped[0]).await;
    assert_eq!(gone.steps, vec!["delete-queue", "tombstone-gone"]);
    assert_nothing_left(w, &task).await;
    assert_eq!(w.leftovers().await, (0, 0), "[{}]", w.backend());
}

/// Every event delivered twice (and the whole sequence again): same end state, duplicates skipped.
pub async fn duplicates_of_every_event<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    for e in start.iter().chain(&stop_initiated).chain(&stopped) {
        let first = handle(w, e).await;
        let again = handle(w, e).await;
        assert!(
            again.is_skipped(),
            "[{}] duplicate acted: {again:?} after {first:?}",
            w.backend()
        );
    }
    for e in start.iter().chain(&stop_initiated).chain(&stopped) {
        assert!(handle(w, e).await.is_skipped());
    }
    assert_nothing_left(w, &task).await;
}

/// STOPPED arrives before any RUNNING: tombstone first, then the late starts do nothing.
pub async fn stopped_before_running<W: World>(w: &W) {
    let task = w.task();
    let (start, _, stopped) = task.lifecycle();
    let out = handle(w, &stopped[0]).await;
    assert_eq!(out.steps, vec!["lookup-queue-url", "delete-queue", "tombstone-gone"]);
    for e in &start {
        assert_eq!(handle(w, e).await.reason, Some("tombstoned"));
    }
    assert_nothing_left(w, &task).await;
}

/// A RUNNING retried after the task stopped (the reference design's permanent leak).
pub async fn running_after_stopped<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    handle(w, &start[0]).await;
    handle(w, &stop_initiated[0]).await;
    handle(w, &stopped[0]).await;
    let late = handle(w, &start[2]).await;
    assert_eq!(late.reason, Some("tombstoned"));
    let cold = w.cold_controller(Role::Provisioner);
    let late_cold = cold.handle_json(&start[2]).await.unwrap();
    assert_eq!(
        late_cold.reason,
        Some("tombstoned"),
        "a cold instance must find the tombstone too"
    );
    assert_nothing_left(w, &task).await;
}

/// Stop initiated but the STOPPED event never comes: unsubscribed, queue kept for the drain, and a late
/// start still cannot resubscribe.
pub async fn stop_initiated_without_stopped<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, _) = task.lifecycle();
    handle_all(w, &start).await;
    handle_all(w, &stop_initiated).await;
    let o = w.observe(&task).await;
    assert!(o.queue_exists, "the queue stays while the container drains");
    assert!(o.subscriptions.is_empty());
    assert_eq!(o.record.unwrap().state, State::Draining);
    assert_eq!(
        w.cold_controller(Role::Provisioner)
            .handle_json(&start[2])
            .await
            .unwrap()
            .reason,
        Some("tombstoned")
    );
    assert!(w.observe(&task).await.subscriptions.is_empty());
}

/// A stop-initiated for a task we never saw leaves a DRAINING tombstone; STOPPED then finishes it.
pub async fn stop_initiated_for_unknown_task<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    assert_eq!(handle(w, &stop_initiated[1]).await.steps, vec!["tombstone-draining"]);
    assert_eq!(handle(w, &start[1]).await.reason, Some("tombstoned"));
    assert_eq!(
        handle(w, &stopped[0]).await.steps,
        vec!["lookup-queue-url", "delete-queue", "tombstone-gone"]
    );
    assert_nothing_left(w, &task).await;
}

/// Events for another cluster (and another service group) make no AWS call.
pub async fn foreign_events_make_no_call<W: World>(w: &W) {
    let foreign = Task::new("someone-elses");
    w.calls().reset_calls();
    for task in [&foreign] {
        let (start, stop_initiated, stopped) = task.lifecycle();
        for e in start.iter().chain(&stop_initiated).chain(&stopped) {
            assert_eq!(handle(w, e).await.reason, Some("foreign-cluster"));
        }
    }
    // no service groups configured in this world: any group of our cluster is ours
    assert_eq!(
        w.calls().calls(),
        Vec::<&str>::new(),
        "[{}] out-of-scope events made calls",
        w.backend()
    );
    assert!(w.observe(&foreign).await.record.is_none());
}

/// With `TASKSUB_SERVICE_GROUPS=service:orders` (the world given must be made with it): a task of
/// another group, or of none, is skipped with no AWS call whatever its events; a task of our group gets
/// its queue.
pub async fn service_groups_scope_the_tasks<W: World>(w: &W) {
    let mut other_group = w.task();
    other_group.group = Some("service:billing".into());
    let mut no_group = w.task();
    no_group.group = None;
    w.calls().reset_calls();
    for task in [&other_group, &no_group] {
        let (start, stop_initiated, stopped) = task.lifecycle();
        for e in start.iter().chain(&stop_initiated).chain(&stopped) {
            assert_eq!(
                handle(w, e).await.reason,
                Some("foreign-group"),
                "[{}] {:?}",
                w.backend(),
                task.group
            );
        }
        assert!(
            w.observe(task).await.record.is_none(),
            "[{}] {:?}",
            w.backend(),
            task.group
        );
    }
    assert_eq!(
        w.calls().calls(),
        Vec::<&str>::new(),
        "[{}] out-of-group events made calls",
        w.backend()
    );
    let ours = w.task();
    assert_eq!(ours.group.as_deref(), Some("service:orders"));
    assert_eq!(
        handle(w, &ours.event("RUNNING", "RUNNING", 3)).await.state,
        Some("READY")
    );
}

/// What each public sample leads to in a world scoped to the clusters `prod`, `FargateCluster` and
/// `default`, handled in name order at its own time (they are years old): `outcome:state-or-reason`, or
/// `rejected` for a permanent input error.
const SAMPLE_OUTCOMES: &[(&str, &str)] = &[
    (
        "ec2-task-pending-two-containers-overrides-nri-flex.json",
        "skipped:foreign-cluster",
    ),
    (
        "ec2-task-running-container-stopped-old-arn-docs-2016.json",
        "applied:READY",
    ),
    (
        "ec2-task-stopped-user-initiated-capacity-provider-aws-samples.json",
        "skipped:foreign-cluster",
    ),
    // The docs' placeholder task ID ("...9dbd6fEXAMPLE") is neither 32 hex characters nor a UUID.
    ("fargate-spot-task-termination-notice-partial-docs.json", "rejected"),
    ("fargate-task-running-awsvpc-docs.json", "applied:READY"),
    // The same task as the sample before: a duplicate start.
    ("fargate-task-running-env-override-dotnet.json", "skipped:already-ready"),
    (
        "fargate-task-running-exec-enabled-arkime.json",
        "skipped:foreign-cluster",
    ),
    (
        "fargate-task-stopped-service-scheduler-exit137-arkime.json",
        "skipped:foreign-cluster",
    ),
];

/// Every public sample leads to its expected outcome: the `ignore-*` ones are skipped without a call, the
/// task samples as `SAMPLE_OUTCOMES` says.
pub async fn public_samples_are_handled<W: World>(w: &W) {
    let samples = public_samples();
    let tasks: Vec<&str> = samples
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.starts_with("ignore-"))
        .collect();
    let listed: Vec<&str> = SAMPLE_OUTCOMES.iter().map(|(n, _)| *n).collect();
    assert_eq!(tasks, listed, "every task sample has an expected outcome");
    for (name, json) in samples {
        w.calls().reset_calls();
        let now = json["time"]
            .as_str()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .unwrap()
                    .with_timezone(&chrono::Utc)
                    + chrono::Duration::seconds(2)
            })
            .unwrap_or_else(chrono::Utc::now);
        let got = match w.controller().handle_json_at(&json, now).await {
            Ok(out) => format!("{}:{}", out.outcome, out.state.or(out.reason).unwrap_or("-")),
            Err(e) if !e.is_retryable() => "rejected".to_owned(),
            Err(e) => panic!("{name}: {e}"),
        };
        if name.starts_with("ignore-") {
            assert_eq!(got, "skipped:other-detail-type", "{name}");
        } else {
            let want = SAMPLE_OUTCOMES.iter().find(|(n, _)| *n == name).map(|(_, o)| *o);
            assert_eq!(Some(got.as_str()), want, "[{}] {name}", w.backend());
        }
        if !got.starts_with("applied") {
            assert!(
                w.calls().calls().len() <= 1,
                "[{}] {name} made calls: {:?}",
                w.backend(),
                w.calls().calls()
            );
        }
    }
}

/// Malformed events change nothing and say why.
pub async fn malformed_events_change_nothing<W: World>(w: &W) {
    let task = w.task();
    let mut broken = task.event("RUNNING", "RUNNING", 3);
    broken["detail"]["lastStatus"] = Value::Null;
    let mut bad_arn = task.event("RUNNING", "RUNNING", 3);
    bad_arn["detail"]["taskArn"] = Value::String("arn:aws:ecs:us-east-1:123456789012:task/prod/bad.id".into());
    w.calls().reset_calls();
    for e in [serde_json::json!({"hello": "world"}), broken, bad_arn] {
        let err = w.controller().handle_json(&e).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(err.error_type().starts_with("tasksub.Permanent"), "{err}");
    }
    assert!(w.calls().calls().is_empty());
    assert_eq!(w.observe(&task).await.record, None);
}

/// The call budget: 4 calls to provision, none for a duplicate on a warm instance and one rejected
/// claim (no write applied) on a cold one, at most 4 per teardown event.
pub async fn call_budget<W: World>(w: &W) -> Vec<(String, Vec<&'static str>)> {
    let mut report = Vec::new();
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let mut step = |label: &str, calls: Vec<&'static str>| report.push((label.to_owned(), calls));
    w.calls().reset_calls();
    handle(w, &start[0]).await;
    let provision = w.calls().calls();
    assert_eq!(
        provision,
        vec!["PutItem", "CreateQueue", "Subscribe", "PutItem"],
        "[{}]",
        w.backend()
    );
    step("provision", provision);

    w.calls().reset_calls();
    handle(w, &start[1]).await;
    assert!(w.calls().calls().is_empty(), "a warm duplicate makes no call");
    step("duplicate start (warm instance)", w.calls().calls());

    let cold = w.cold_controller(Role::Provisioner);
    let before = w.observe(&task).await.record;
    cold.handle_json(&start[2]).await.unwrap();
    assert_eq!(
        cold.ports().calls(),
        vec!["PutItem"],
        "a cold duplicate costs one conditional claim"
    );
    assert_eq!(
        w.observe(&task).await.record,
        before,
        "the rejected claim wrote nothing"
    );
    step("duplicate start (cold instance, claim rejected)", cold.ports().calls());

    for (label, e) in [("stop initiated", &stop_initiated[0]), ("stopped", &stopped[0])] {
        w.calls().reset_calls();
        handle(w, e).await;
        let calls = w.calls().calls();
        assert!(calls.len() <= 4, "[{}] {label}: {calls:?}", w.backend());
        step(label, calls);
    }
    w.calls().reset_calls();
    handle(w, &stopped[0]).await;
    assert!(w.calls().write_calls().is_empty(), "a duplicate STOPPED writes nothing");
    step("duplicate stopped", w.calls().calls());
    report
}

/// Provisioning calls, in order, with the op each maps to.
const PROVISION_OPS: [(&str, usize); 4] = [("PutItem", 1), ("CreateQueue", 1), ("Subscribe", 1), ("PutItem", 2)];

/// A crash (a transient failure) after each provisioning step, then the event is redelivered: the task
/// converges to exactly one queue and one subscription.
pub async fn crash_during_provisioning_then_redelivery<W: World>(make: impl AsyncFn() -> W) {
    for (op, nth) in PROVISION_OPS {
        let w = make().await;
        let task = w.task();
        let event = task.event("PENDING", "RUNNING", 2);
        w.calls().fail_nth(op, nth, ErrorKind::Transient);
        let err = w.controller().handle_json(&event).await.unwrap_err();
        assert!(err.is_retryable(), "{op}#{nth}: {err}");
        let fresh = w.cold_controller(Role::Provisioner);
        let out = fresh.handle_json(&event).await.unwrap();
        assert_eq!(out.outcome, "applied", "[{}] {op}#{nth}: {out:?}", w.backend());
        assert_ready(&w, &task).await;
        assert!(w.delivers(&task).await, "[{}] after crash at {op}#{nth}", w.backend());
        // and the task can still be torn down completely
        let (_, stop_initiated, stopped) = task.lifecycle();
        handle(&w, &stop_initiated[0]).await;
        handle(&w, &stopped[0]).await;
        assert_nothing_left(&w, &task).await;
    }
}

/// A crash after each teardown step, then redelivery: nothing is left.
pub async fn crash_during_teardown_then_redelivery<W: World>(make: impl AsyncFn() -> W) {
    let faults: [(&str, usize, bool); 5] = [
        ("GetItem", 1, true),
        ("Unsubscribe", 1, true),
        ("PutItem", 1, true),
        ("DeleteQueue", 1, false),
        ("PutItem", 1, false),
    ];
    for (op, nth, during_stop_initiated) in faults {
        let w = make().await;
        let task = w.task();
        let (start, stop_initiated, stopped) = task.lifecycle();
        handle(&w, &start[0]).await;
        let target = if during_stop_initiated {
            &stop_initiated[0]
        } else {
            &stopped[0]
        };
        if !during_stop_initiated {
            handle(&w, &stop_initiated[0]).await;
        }
        w.calls().fail_nth(op, nth, ErrorKind::Throttled);
        let err: HandlerError = w.controller().handle_json(target).await.unwrap_err();
        assert!(err.is_retryable(), "{op}: {err}");
        handle(&w, target).await;
        if during_stop_initiated {
            assert!(w.observe(&task).await.subscriptions.is_empty());
            handle(&w, &stopped[0]).await;
        }
        assert_nothing_left(&w, &task).await;
    }
}

/// A crash after Subscribe but before MarkReady, then the task stops before any redelivery: the claim
/// named the topic (pending), so the teardown finds the unrecorded subscription by listing the topic
/// (never by subscribing) and removes it.
pub async fn unrecorded_subscription_is_recovered<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    w.calls().fail_nth("PutItem", 2, ErrorKind::Transient);
    assert!(w.controller().handle_json(&start[0]).await.is_err());
    assert_eq!(
        w.observe(&task).await.subscriptions.len(),
        1,
        "the crash left a subscription"
    );
    let pending = w.observe(&task).await.record.expect("the claim").pending;
    assert_eq!(pending.len(), 1, "the claim named its topic before subscribing");
    w.calls().reset_calls();
    let out = handle(w, &stop_initiated[0]).await;
    assert_eq!(out.steps, vec!["unsubscribe", "mark-draining"]);
    let calls = w.calls().calls();
    assert!(!calls.contains(&"Subscribe"), "a teardown never subscribes: {calls:?}");
    assert!(calls.contains(&"ListSubscriptionsByTopic"), "{calls:?}");
    assert!(w.observe(&task).await.subscriptions.is_empty());
    handle(w, &stopped[0]).await;
    assert_nothing_left(w, &task).await;
}

/// Permanent errors are reported as such and not retried.
pub async fn permanent_errors_are_not_retryable<W: World>(w: &W) {
    let task = w.task();
    w.calls().fail_nth("CreateQueue", 1, ErrorKind::AccessDenied);
    let err = w
        .controller()
        .handle_json(&task.event("PENDING", "RUNNING", 2))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(err.error_type(), "tasksub.Permanent");
    assert!(err.to_string().contains("create-queue"), "{err}");
}

/// Two functions, as deployed: each acts only on its own intents.
pub async fn the_two_functions_split_the_work<W: World>(w: &W) {
    let task = w.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let running = w.cold_controller(Role::Provisioner);
    let stopping = w.cold_controller(Role::Teardown);
    assert_eq!(
        stopping.handle_json(&start[0]).await.unwrap().reason,
        Some("wrong-function")
    );
    assert!(stopping.ports().calls().is_empty());
    assert_eq!(running.handle_json(&start[0]).await.unwrap().state, Some("READY"));
    assert_eq!(
        running.handle_json(&stopped[0]).await.unwrap().reason,
        Some("wrong-function")
    );
    assert_eq!(
        stopping.handle_json(&stop_initiated[0]).await.unwrap().state,
        Some("DRAINING")
    );
    assert_eq!(stopping.handle_json(&stopped[0]).await.unwrap().state, Some("GONE"));
    assert_nothing_left(w, &task).await;
}
