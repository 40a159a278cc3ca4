//! Faults on the wire: the real controller on the real SDK (`Controller` on `AwsPorts`), through a proxy
//! that injects throttling, 5xx, slow responses and dropped connections into moto's traffic and enforces
//! the AWS rules moto lacks (QueueDeletedRecently, Subscribe with other attributes). Every scenario
//! checks moto's real state afterwards.
//!
//! `cargo test -p tasksub-tests --test faults` (the moto harness starts moto_server if needed).

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use tasksub_core::decide::Role;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::State;
use tasksub_functions::aws::classify;
use tasksub_tests::events::Task;
use tasksub_tests::proxy::{Fault, Handling, Proxied, Refusal};
use tasksub_tests::world::World;

/// How many deliveries an event may take: Lambda's async invocation tries 3 times, then the on-failure
/// destination keeps the event for a replay; 8 leaves room for one replay round and more.
const MAX_DELIVERIES: usize = 8;

fn default_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder().build()
}

/// The attempt timeout for the slow-response cases, and a delay well past it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
const SLOW: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The first start event.
    Provision,
    /// The first stop-initiated event of a READY task.
    StopInitiated,
    /// The STOPPED event of a DRAINING task.
    Stopped,
    /// The STOPPED event after a provisioning whose Subscribe took effect but whose answer was lost: the
    /// record is PROVISIONING, names no queue URL and its topic as pending; the subscription exists, with
    /// an ARN nobody recorded (found by listing, then unsubscribed; the queue by lookup-queue-url).
    StoppedAfterCrash,
}

/// Every AWS call of provisioning and teardown: (phase, operation, calls of it to let pass first).
const CASES: &[(Phase, &str, usize)] = &[
    (Phase::Provision, "PutItem", 0),
    (Phase::Provision, "CreateQueue", 0),
    (Phase::Provision, "Subscribe", 0),
    (Phase::Provision, "PutItem", 1),
    (Phase::StopInitiated, "GetItem", 0),
    (Phase::StopInitiated, "Unsubscribe", 0),
    (Phase::StopInitiated, "PutItem", 0),
    (Phase::Stopped, "GetItem", 0),
    (Phase::Stopped, "DeleteQueue", 0),
    (Phase::Stopped, "PutItem", 0),
    (Phase::StoppedAfterCrash, "ListSubscriptionsByTopic", 0),
    (Phase::StoppedAfterCrash, "Unsubscribe", 0),
    (Phase::StoppedAfterCrash, "GetQueueUrl", 0),
    (Phase::StoppedAfterCrash, "DeleteQueue", 0),
    (Phase::StoppedAfterCrash, "PutItem", 0),
];

/// With SDK retries off, each call of provisioning and teardown fails once with `fault`: the invocation
/// fails as retryable, one redelivery (on a cold instance) converges, the rest of the life cycle ends
/// with nothing left, and a late start changes nothing.
async fn each_call_fails_once_then_redelivery_converges(fault: Fault, timeouts: TimeoutConfig) {
    for (i, &(phase, op, skip)) in CASES.iter().enumerate() {
        let p = Proxied::new(i as u64, RetryConfig::disabled(), timeouts.clone()).await;
        let ctx = format!("{fault} at {op} #{} during {phase:?}", skip + 1);
        let task = p.world.task();
        let (start, stop_initiated, stopped) = task.lifecycle();
        let c = p.controller(Role::Any);
        // GIVEN the task where the phase starts
        match phase {
            Phase::Provision => {}
            Phase::StopInitiated => {
                c.handle_json(&start[0]).await.unwrap();
            }
            Phase::Stopped => {
                c.handle_json(&start[0]).await.unwrap();
                c.handle_json(&stop_initiated[0]).await.unwrap();
            }
            Phase::StoppedAfterCrash => {
                p.proxy.fail_next("Subscribe", 1, Fault::DropAfterForward);
                c.handle_json(&start[0]).await.unwrap_err();
                let o = p.world.observe(&task).await;
                assert!(o.queue_exists && o.subscriptions.len() == 1, "{ctx}: {o:?}");
                let r = o.record.expect("a claimed record");
                assert_eq!((r.state, r.queue_url), (State::Provisioning, None), "{ctx}");
            }
        }
        let target = match phase {
            Phase::Provision => &start[0],
            Phase::StopInitiated => &stop_initiated[0],
            Phase::Stopped | Phase::StoppedAfterCrash => &stopped[0],
        };
        // WHEN one call fails
        p.proxy.reset_seen();
        p.proxy.fail_after(op, skip, 1, fault);
        let err = c.handle_json(target).await.expect_err(&ctx);
        assert!(err.is_retryable(), "{ctx}: {err}");
        assert_eq!(p.proxy.injected(), 1, "{ctx}: the fault did not fire");
        // THEN one redelivery converges
        let redelivered = Proxied::deliver(&p.controller(Role::Any), target, 1).await;
        match phase {
            Phase::Provision => {
                // applied, or skipped as already-ready when the failed call had taken effect
                let out = &redelivered.outcome;
                assert!(
                    out.state == Some("READY") || out.reason == Some("already-ready"),
                    "{ctx}: {out:?}"
                );
                p.assert_ready(&task, &ctx).await;
                assert!(p.world.delivers(&task).await, "{ctx}: the queue does not receive");
                c.handle_json(&stop_initiated[0]).await.unwrap();
                c.handle_json(&stopped[0]).await.unwrap();
            }
            Phase::StopInitiated => {
                let o = p.world.observe(&task).await;
                assert!(o.queue_exists && o.subscriptions.is_empty(), "{ctx}: {o:?}");
                assert_eq!(o.record.unwrap().state, State::Draining, "{ctx}");
                c.handle_json(&stopped[0]).await.unwrap();
            }
            Phase::Stopped | Phase::StoppedAfterCrash => {}
        }
        p.assert_gone(&task, &ctx).await;
        // AND a late start on a cold instance finds the tombstone
        let late = p.controller(Role::Provisioner).handle_json(&start[2]).await.unwrap();
        assert_eq!(late.reason, Some("tombstoned"), "{ctx}");
        p.assert_gone(&task, &ctx).await;
        assert_eq!(p.world.leftovers().await, (0, 0), "{ctx}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_throttled_once_then_redelivered() {
    each_call_fails_once_then_redelivery_converges(Fault::Throttle, default_timeouts()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_answered_500_once_then_redelivered() {
    each_call_fails_once_then_redelivery_converges(Fault::Status(500), default_timeouts()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_answered_503_once_then_redelivered() {
    each_call_fails_once_then_redelivery_converges(Fault::Status(503), default_timeouts()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_dropped_once_then_redelivered() {
    each_call_fails_once_then_redelivery_converges(Fault::Drop, default_timeouts()).await;
}

/// The worst kind: the call took effect but the answer was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_dropped_after_taking_effect_then_redelivered() {
    each_call_fails_once_then_redelivery_converges(Fault::DropAfterForward, default_timeouts()).await;
}

/// The call took effect, the answer came after the SDK's attempt timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_too_slow_once_then_redelivered() {
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    each_call_fails_once_then_redelivery_converges(Fault::Slow(SLOW), timeouts).await;
}

/// With the SDK's default standard retries (3 attempts), the first attempt of every call of a life
/// cycle fails with `fault`; every event succeeds at its first delivery.
async fn sdk_retries_absorb_one_fault_per_call(fault: Fault) {
    let p = Proxied::new(11, RetryConfig::standard(), default_timeouts()).await;
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let c = p.controller(Role::Any);
    let events: [(&serde_json::Value, &[(&str, usize)]); 3] = [
        // PutItem: the claim's first attempt, and MarkReady's (the third call: the claim was retried)
        (
            &start[0],
            &[("PutItem", 0), ("CreateQueue", 0), ("Subscribe", 0), ("PutItem", 2)],
        ),
        (
            &stop_initiated[0],
            &[("GetItem", 0), ("Unsubscribe", 0), ("PutItem", 0)],
        ),
        (&stopped[0], &[("GetItem", 0), ("DeleteQueue", 0), ("PutItem", 0)]),
    ];
    for (event, faults) in events {
        p.proxy.reset_seen();
        for (op, skip) in faults {
            p.proxy.fail_after(op, *skip, 1, fault);
        }
        let out = c.handle_json(event).await.unwrap_or_else(|e| panic!("{fault}: {e}"));
        assert_eq!(
            p.proxy.injected(),
            faults.len(),
            "{fault}: {out:?} {:?}",
            p.proxy.seen()
        );
        if out.outcome == "applied" && out.state == Some("READY") {
            p.assert_ready(&task, &fault.to_string()).await;
        }
    }
    p.assert_gone(&task, &fault.to_string()).await;
    assert_eq!(p.world.leftovers().await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_absorb_a_throttle_per_call() {
    sdk_retries_absorb_one_fault_per_call(Fault::Throttle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_absorb_a_503_per_call() {
    sdk_retries_absorb_one_fault_per_call(Fault::Status(503)).await;
}

/// A retried call that had taken effect: the idempotent calls and conditional writes absorb it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_absorb_a_lost_answer_per_call() {
    sdk_retries_absorb_one_fault_per_call(Fault::DropAfterForward).await;
}

/// When all 3 SDK attempts fail, the invocation fails as retryable and Lambda's redelivery converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_redelivery_converges_when_the_sdk_gives_up() {
    let p = Proxied::new(12, RetryConfig::standard(), default_timeouts()).await;
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let c = p.controller(Role::Any);

    p.proxy.fail_next("CreateQueue", 3, Fault::Throttle);
    let err = c.handle_json(&start[0]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.error_type(), "tasksub.Transient");
    assert!(err.to_string().contains("throttled"), "{err}");
    assert_eq!(p.proxy.count("CreateQueue"), 3, "the SDK made its 3 attempts");
    let d = Proxied::deliver(&c, &start[0], MAX_DELIVERIES).await;
    assert_eq!((d.attempts, d.outcome.state), (1, Some("READY")));
    p.assert_ready(&task, "after the redelivered start").await;

    c.handle_json(&stop_initiated[0]).await.unwrap();
    p.proxy.fail_next("DeleteQueue", 3, Fault::Status(503));
    let err = c.handle_json(&stopped[0]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(p.proxy.count("DeleteQueue"), 3);
    assert!(p.world.observe(&task).await.queue_exists);
    Proxied::deliver(&c, &stopped[0], MAX_DELIVERIES).await;
    p.assert_gone(&task, "after the redelivered stop").await;
}

/// 30 % of every call throttled (seeded) while 20 tasks start (with a duplicate each) and stop, 8 in
/// flight: SDK retries plus bounded redelivery converge every task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_storm_during_a_burst_converges() {
    const TASKS: usize = 20;
    const IN_FLIGHT: usize = 8;
    let p = Proxied::new(0x5eed, RetryConfig::standard(), default_timeouts()).await;
    let c = Arc::new(p.controller(Role::Any));
    let tasks: Vec<_> = (0..TASKS).map(|_| p.world.task()).collect();
    p.proxy.fail_randomly(None, 0.3, Fault::Throttle);
    let run = |pick: fn(&Task) -> Vec<serde_json::Value>| {
        let (c, limit) = (Arc::clone(&c), Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)));
        let mut set = tokio::task::JoinSet::new();
        for task in &tasks {
            let (c, limit, events) = (Arc::clone(&c), Arc::clone(&limit), pick(task));
            set.spawn(async move {
                let _permit = limit.acquire().await.expect("semaphore");
                let mut attempts = Vec::new();
                for e in &events {
                    attempts.push(Proxied::deliver(&c, e, MAX_DELIVERIES).await.attempts);
                }
                attempts
            });
        }
        async move { set.join_all().await.into_iter().flatten().collect::<Vec<usize>>() }
    };
    let starts = run(|t| {
        let (start, _, _) = t.lifecycle();
        vec![start[1].clone(), start[2].clone()]
    })
    .await;
    for (i, task) in tasks.iter().enumerate() {
        p.assert_ready(task, &format!("task {i} after the starts")).await;
    }
    let stops = run(|t| {
        let (_, stop_initiated, stopped) = t.lifecycle();
        vec![stop_initiated[0].clone(), stopped[0].clone()]
    })
    .await;
    for (i, task) in tasks.iter().enumerate() {
        p.assert_gone(task, &format!("task {i} after the stops")).await;
    }
    assert_eq!(p.world.leftovers().await, (0, 0));
    let seen = p.proxy.seen();
    let throttled = seen
        .iter()
        .filter(|s| s.handling == Handling::Injected(Fault::Throttle))
        .count();
    let attempts: Vec<usize> = starts.into_iter().chain(stops).collect();
    let redelivered = attempts.iter().filter(|a| **a > 1).count();
    eprintln!(
        "storm: {TASKS} tasks, {} events, {} calls, {throttled} throttled, {redelivered} events redelivered, \
         max {} deliveries",
        attempts.len(),
        seen.len(),
        attempts.iter().max().unwrap()
    );
    assert!(
        throttled * 5 >= seen.len(),
        "the storm was too light: {throttled} of {}",
        seen.len()
    );
}

/// A late or duplicate start after the task's queue was deleted must not re-create it: on AWS a
/// CreateQueue of that name within 60 s fails (QueueDeletedRecently), and after 60 s it would leak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_start_never_recreates_a_deleted_queue() {
    let p = Proxied::new(13, RetryConfig::disabled(), default_timeouts()).await;
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let c = p.controller(Role::Any);
    for e in [&start[0], &stop_initiated[0], &stopped[0]] {
        c.handle_json(e).await.unwrap();
    }
    let queue = format!("{}{}", p.settings().queue.prefix.as_str(), task.id);
    assert!(p
        .proxy
        .seen()
        .iter()
        .any(|s| s.op == "DeleteQueue" && s.queue.as_deref() == Some(&queue)));
    p.proxy.reset_seen();
    for late in &start {
        let out = p.controller(Role::Provisioner).handle_json(late).await.unwrap();
        assert_eq!(out.reason, Some("tombstoned"));
    }
    p.proxy.advance(Duration::from_secs(61));
    let out = p.controller(Role::Provisioner).handle_json(&start[2]).await.unwrap();
    assert_eq!(out.reason, Some("tombstoned"), "a minute later");
    assert_eq!(p.proxy.count("CreateQueue"), 0, "{:?}", p.proxy.seen());
    p.assert_gone(&task, "after late starts").await;
}

/// The proxy's QueueDeletedRecently as the SDK and our classifier see it, on the simulated clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_queue_of_a_recently_deleted_name_is_refused_for_60_seconds() {
    let p = Proxied::new(14, RetryConfig::disabled(), default_timeouts()).await;
    let sqs = aws_sdk_sqs::Client::new(p.sdk());
    let name = format!("{}direct", p.settings().queue.prefix.as_str());
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
    for wait in [0, 59] {
        p.proxy.advance(Duration::from_secs(wait));
        let err = sqs.create_queue().queue_name(&name).send().await.unwrap_err();
        assert_eq!(classify("CreateQueue", &err).kind, ErrorKind::DeletedRecently);
        assert!(err.into_service_error().is_queue_deleted_recently(), "after {wait} s");
    }
    let other = format!("{}other", p.settings().queue.prefix.as_str());
    sqs.create_queue()
        .queue_name(&other)
        .send()
        .await
        .expect("another name is fine");
    p.proxy.advance(Duration::from_secs(1));
    sqs.create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("allowed after 60 s");
    let direct = aws_sdk_sqs::Client::new(p.world.sdk());
    assert!(
        direct.get_queue_url().queue_name(&name).send().await.is_ok(),
        "moto has it again"
    );
    let refused = p
        .proxy
        .seen()
        .iter()
        .filter(|s| s.handling == Handling::Refused(Refusal::QueueDeletedRecently))
        .count();
    assert_eq!(refused, 2);
}

/// A provisioning crashed after CreateQueue; the orphan queue was deleted (by an operator or a sweep)
/// before the start was redelivered: the re-create is refused as retryable until 60 s have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_start_waits_out_queue_deleted_recently() {
    let p = Proxied::new(15, RetryConfig::disabled(), default_timeouts()).await;
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let c = p.controller(Role::Any);
    p.proxy.fail_next("Subscribe", 1, Fault::Status(503));
    c.handle_json(&start[0]).await.unwrap_err();
    let sqs = aws_sdk_sqs::Client::new(p.sdk());
    let name = format!("{}{}", p.settings().queue.prefix.as_str(), task.id);
    let url = sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.delete_queue().queue_url(url).send().await.unwrap();

    let err = c.handle_json(&start[1]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("deleted-recently"), "{err}");
    assert!(!p.world.observe(&task).await.queue_exists);
    p.proxy.advance(Duration::from_secs(60));
    let d = Proxied::deliver(&c, &start[1], MAX_DELIVERIES).await;
    assert_eq!(d.outcome.state, Some("READY"));
    p.assert_ready(&task, "after 60 s").await;
    c.handle_json(&stop_initiated[0]).await.unwrap();
    c.handle_json(&stopped[0]).await.unwrap();
    p.assert_gone(&task, "after the stop").await;
}

/// A configuration change (raw delivery off) deployed while a provisioning had crashed after Subscribe:
/// the new instance's Subscribe carries other attributes and AWS refuses it with InvalidParameter (the
/// proxy emulates it; moto alone would silently change the subscription). Rather than stay PROVISIONING
/// for good, the executor finds the existing subscription by listing the topic's subscriptions, converges
/// its attributes to the new settings (SetSubscriptionAttributes) and records it; the task ends READY, and
/// its teardown then leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_changed_attributes_adopts_the_existing_subscription() {
    let p = Proxied::new(16, RetryConfig::disabled(), default_timeouts()).await;
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let old = p.controller(Role::Any);
    p.proxy.fail_after("PutItem", 1, 1, Fault::Status(500));
    old.handle_json(&start[0]).await.unwrap_err();
    assert_eq!(
        p.world.observe(&task).await.subscriptions.len(),
        1,
        "the crash left a subscription"
    );

    let mut changed = p.settings().clone();
    changed.topics[0].subscription.raw_delivery = false;
    let new = p.controller_with(changed, Role::Any);
    let out = new.handle_json(&start[1]).await.expect("the redelivery finishes");
    assert_eq!(out.state, Some("READY"));
    let refused = p
        .proxy
        .seen()
        .iter()
        .filter(|s| s.handling == Handling::Refused(Refusal::SubscriptionAttributesDiffer))
        .count();
    assert_eq!(refused, 1);
    assert!(p.proxy.count("ListSubscriptionsByTopic") >= 1, "found by listing");
    p.assert_ready(&task, "adopted").await;
    assert!(
        p.proxy.count("SetSubscriptionAttributes") >= 1,
        "its attributes converged"
    );
    let wire = p.world.wire(&task).await.expect("queue and subscription");
    assert_eq!(
        wire.subscription_attributes["RawMessageDelivery"], "false",
        "the new settings"
    );

    new.handle_json(&stop_initiated[0]).await.unwrap();
    new.handle_json(&stopped[0]).await.unwrap();
    p.assert_gone(&task, "after the stop").await;
}

/// Injected errors reach the SDK in each protocol's shape: it reports the AWS error code, and our
/// classifier maps it as it would the real one. Forwarded errors come back untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_parse_as_the_real_ones() {
    let p = Proxied::new(17, RetryConfig::disabled(), default_timeouts()).await;
    let sqs = aws_sdk_sqs::Client::new(p.sdk());
    let sns = aws_sdk_sns::Client::new(p.sdk());
    let ddb = aws_sdk_dynamodb::Client::new(p.sdk());
    let topic = p.settings().topics[0].arn.as_str().to_owned();
    let table = p.settings().table.clone();
    let name = format!("{}shape", p.settings().queue.prefix.as_str());
    let create = || sqs.create_queue().queue_name(&name).send();
    let subscribe = || {
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint("arn:aws:sqs:us-east-1:123456789012:x")
            .send()
    };
    let get = || {
        ddb.get_item()
            .table_name(&table)
            .key("taskId", AttributeValue::S("x".into()))
            .send()
    };

    p.proxy.fail_next("CreateQueue", 1, Fault::Throttle);
    let e = create().await.unwrap_err();
    assert_eq!(e.code(), Some("RequestThrottled"));
    assert_eq!(classify("CreateQueue", &e).kind, ErrorKind::Throttled);
    assert!(e.into_service_error().is_request_throttled());
    p.proxy.fail_next("Subscribe", 1, Fault::Throttle);
    let e = subscribe().await.unwrap_err();
    assert_eq!((e.code(), e.message()), (Some("Throttling"), Some("Rate exceeded")));
    assert_eq!(classify("Subscribe", &e).kind, ErrorKind::Throttled);
    p.proxy.fail_next("GetItem", 1, Fault::Throttle);
    let e = get().await.unwrap_err();
    assert_eq!(e.code(), Some("ThrottlingException"));
    assert_eq!(classify("GetItem", &e).kind, ErrorKind::Throttled);

    for status in [500, 503] {
        p.proxy.fail_next("CreateQueue", 1, Fault::Status(status));
        p.proxy.fail_next("Subscribe", 1, Fault::Status(status));
        p.proxy.fail_next("GetItem", 1, Fault::Status(status));
        let (a, b, c) = (
            create().await.unwrap_err(),
            subscribe().await.unwrap_err(),
            get().await.unwrap_err(),
        );
        for (kind, raw) in [
            (
                classify("CreateQueue", &a).kind,
                a.raw_response().map(|r| r.status().as_u16()),
            ),
            (
                classify("Subscribe", &b).kind,
                b.raw_response().map(|r| r.status().as_u16()),
            ),
            (
                classify("GetItem", &c).kind,
                c.raw_response().map(|r| r.status().as_u16()),
            ),
        ] {
            assert_eq!((kind, raw), (ErrorKind::Transient, Some(status)));
        }
    }

    p.proxy.fail_next("CreateQueue", 1, Fault::Drop);
    let e = create().await.unwrap_err();
    assert!(matches!(e, SdkError::DispatchFailure(_)), "{e:?}");
    assert_eq!(classify("CreateQueue", &e).kind, ErrorKind::Transient);
    assert!(
        sqs.get_queue_url().queue_name(&name).send().await.is_err(),
        "a dropped call never reached moto"
    );

    let slow_sdk = p
        .proxy
        .sdk_config(
            RetryConfig::disabled(),
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(300))
                .build(),
        )
        .await;
    p.proxy.fail_next("CreateQueue", 1, Fault::Slow(Duration::from_secs(2)));
    let e = aws_sdk_sqs::Client::new(&slow_sdk)
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, SdkError::TimeoutError(_)), "{e:?}");
    assert_eq!(classify("CreateQueue", &e).kind, ErrorKind::Transient);
    assert!(
        sqs.get_queue_url().queue_name(&name).send().await.is_ok(),
        "the slow call took effect"
    );

    p.proxy.fail_next("DeleteQueue", 1, Fault::DropAfterForward);
    let url = format!("{}/123456789012/{name}", p.proxy.url());
    let e = sqs.delete_queue().queue_url(&url).send().await.unwrap_err();
    assert_eq!(classify("DeleteQueue", &e).kind, ErrorKind::Transient);
    let e = sqs.get_queue_url().queue_name(&name).send().await.unwrap_err();
    assert_eq!(
        classify("GetQueueUrl", &e).kind,
        ErrorKind::NotFound,
        "forwarded answers pass untouched"
    );
    assert_eq!(p.proxy.seen().last().unwrap().handling, Handling::Forwarded(400));
}

/// A provisioning crashed after Subscribe, then the subscription settings changed before the task
/// stopped. Teardown's idempotent Subscribe (to learn the unrecorded subscription's ARN) now carries
/// the *new* attributes, which AWS refuses (InvalidParameter; the proxy emulates it, moto accepts):
/// the executor then finds the subscription by listing the topic's subscriptions (a rare path, so the
/// 30 TPS ListSubscriptionsByTopic is affordable) and removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_after_a_settings_change_recovers_the_unrecorded_subscription() {
    let p = Proxied::new(18, RetryConfig::disabled(), default_timeouts()).await;
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    p.proxy.fail_after("PutItem", 1, 1, Fault::Status(500));
    p.controller(Role::Any).handle_json(&start[0]).await.unwrap_err();
    let mut changed = p.settings().clone();
    changed.topics[0].subscription.raw_delivery = false;
    let new = p.controller_with(changed, Role::Teardown);
    for e in [&stop_initiated[0], &stopped[0]] {
        Proxied::deliver(&new, e, MAX_DELIVERIES).await;
    }
    p.assert_gone(&task, "after the stop with the new settings").await;
}
