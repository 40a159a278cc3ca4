//! Start/stop races on moto through the real handler on the real SDK: the deterministic reproduction of
//! the leaked subscription (three delaying proxies), and a crash-looping service (tasks that start and
//! stop within a second, with EventBridge duplicates, many invocations at once).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::record::State;
use tasksub_functions::aws::AwsPorts;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::ports::Records;
use tasksub_functions::Controller;
use tasksub_tests::moto::Moto;
use tasksub_tests::proxy::{Fault, Proxied, Proxy};
use tasksub_tests::world::{MotoWorld, World};

/// Deliveries an event may take (Lambda's 3 attempts, then a replay round).
const MAX_DELIVERIES: usize = 8;

/// The reproduction of issue 11, one task: its PROVISIONING event through a proxy delaying CreateQueue
/// by 2 s; at 0.5 s a duplicate RUNNING event through a proxy delaying Subscribe by 4 s; at 3 s its
/// stop-initiated event through a proxy delaying PutItem by 3 s; then its STOPPED event. Before
/// revisions this left one subscription to the deleted queue; now the duplicate's MarkReady finds the
/// revision moved on and unsubscribes the subscription it made (and only it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reproduced_start_stop_race_leaves_nothing_behind() {
    let p = Proxied::new(11, RetryConfig::disabled(), TimeoutConfig::builder().build()).await;
    let slow_subscribe = Proxy::start(Moto::get().endpoint(), 12).await;
    let slow_put = Proxy::start(Moto::get().endpoint(), 13).await;
    p.proxy.fail_next("CreateQueue", 1, Fault::Slow(Duration::from_secs(2)));
    slow_subscribe.fail_next("Subscribe", 1, Fault::Slow(Duration::from_secs(4)));
    slow_put.fail_next("PutItem", 1, Fault::Slow(Duration::from_secs(3)));
    let settings = p.settings().clone();
    let through = |sdk: aws_config::SdkConfig| {
        let ports = AwsPorts::for_settings(&sdk, &settings);
        Controller::with_ports(settings.clone(), Instrumented::new(ports), Role::Any)
    };
    let none = || (RetryConfig::disabled(), TimeoutConfig::builder().build());
    let a = p.controller(Role::Any);
    let (r, t) = none();
    let b = through(slow_subscribe.sdk_config(r, t).await);
    let (r, t) = none();
    let c = through(slow_put.sdk_config(r, t).await);
    let task = p.world.task();
    let (start, stop_initiated, stopped) = task.lifecycle();
    let running = task.event("RUNNING", "RUNNING", 3);
    let t0 = tokio::time::Instant::now();
    let provision = tokio::spawn(async move { a.handle_json(&start[0]).await });
    tokio::time::sleep_until(t0 + Duration::from_millis(500)).await;
    let duplicate = tokio::spawn(async move { b.handle_json(&running).await });
    tokio::time::sleep_until(t0 + Duration::from_secs(3)).await;
    let stop = stop_initiated[0].clone();
    let stopping = tokio::spawn(async move { c.handle_json(&stop).await });
    let outcomes = [provision.await, duplicate.await, stopping.await].map(|r| r.expect("join").expect("handled"));
    let summary: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{} {:?} {:?}", o.outcome, o.state, o.steps))
        .collect();
    println!("race: {summary:?}");
    assert_eq!(
        outcomes[1].outcome, "compensated",
        "the duplicate lost the race: {summary:?}"
    );
    Proxied::deliver(&p.controller(Role::Any), &stopped[0], MAX_DELIVERIES).await;
    p.assert_gone(&task, "after the reproduced race").await;
    assert_eq!(
        p.world.leftovers().await,
        (0, 0),
        "nothing of ours on the topic or under the prefix"
    );
}

/// A crash-looping service: per round, 50 tasks each get two RUNNING, one PROVISIONING, one
/// stop-initiated and two STOPPED events, all shuffled together and handled 8 at a time by cold
/// instances (retryable failures redelivered, as Lambda does). After each round: no queue under the
/// prefix, no subscription on the topic, every record a GONE tombstone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_looping_service_leaks_nothing() {
    const TASKS: usize = 50;
    const ROUNDS: u64 = 3;
    const IN_FLIGHT: usize = 8;
    let w = Arc::new(MotoWorld::new().await);
    for round in 0..ROUNDS {
        let mut rng = fastrand::Rng::with_seed(1100 + round);
        let tasks: Vec<_> = (0..TASKS).map(|_| w.task()).collect();
        let mut events: Vec<Value> = Vec::new();
        for t in &tasks {
            events.push(t.event("RUNNING", "RUNNING", 3));
            events.push(t.event("RUNNING", "RUNNING", 3));
            events.push(t.event("PROVISIONING", "RUNNING", 1));
            events.push(t.event("RUNNING", "STOPPED", 4));
            events.push(t.event("STOPPED", "STOPPED", 8));
            events.push(t.event("STOPPED", "STOPPED", 8));
        }
        rng.shuffle(&mut events);
        let queue = Arc::new(Mutex::new(events.into_iter().collect::<VecDeque<_>>()));
        let mut workers = Vec::new();
        for _ in 0..IN_FLIGHT {
            let (w, queue) = (Arc::clone(&w), Arc::clone(&queue));
            workers.push(tokio::spawn(async move {
                loop {
                    let Some(e) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let c = w.cold_controller(Role::Any);
                    let mut delivered = false;
                    for _ in 0..MAX_DELIVERIES {
                        match c.handle_json(&e).await {
                            Ok(_) => {
                                delivered = true;
                                break;
                            }
                            Err(err) if err.is_retryable() => continue,
                            Err(err) => panic!("permanent error: {err}"),
                        }
                    }
                    assert!(delivered, "an event did not converge in {MAX_DELIVERIES} deliveries");
                }
            }));
        }
        for worker in workers {
            worker.await.expect("worker");
        }
        assert_eq!(
            w.leftovers().await,
            (0, 0),
            "round {round}: queues and subscriptions left"
        );
        let records = Records::list(w.calls().inner()).await.expect("scan").records;
        for t in &tasks {
            let r = records
                .iter()
                .find(|r| r.task_id == t.id)
                .expect("a tombstone per task");
            assert_eq!(r.state, State::Gone, "round {round}: task {}", t.id);
        }
    }
}
