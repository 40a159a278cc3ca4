//! Burst: N tasks start, then stop, replayed through the real handler (`Controller` on `AwsPorts`)
//! against moto, the way a deployment scaling out and in delivers them: shuffled (seeded RNG), 10 % of
//! the events duplicated, 5 % of the tasks reordered (a task's STOPPED before its RUNNING, and in the
//! stop phase its STOPPED before its stop-initiated), 8 events in flight on 8 warm instances of each
//! function, like parallel Lambda invocations. A failed invocation is redelivered (bounded), as Lambda
//! does. The SDK goes through the fault proxy with no fault armed: only the AWS rules moto lacks
//! (QueueDeletedRecently, Subscribe with other attributes) are added.
//!
//! Checked: after the starts, every started task that was not stopped has exactly one subscription
//! and its queue receives one published message, and every reordered task has no queue; after the
//! stops, zero queues under the prefix, zero subscriptions on the topic, every record a GONE tombstone.
//!
//! Size: `TASKSUB_BURST_TASKS` (default [`CI_TASKS`] = 100, about 11 s in a debug build on a 2-core
//! box; its 95 live tasks fit moto's publish fan-out, see [`MOTO_FANOUT`]); seed: `TASKSUB_BURST_SEED`.
//! The full 1,000 (about 150 s on that box, moto-bound; the summary line shows with `--nocapture`):
//!
//! ```text
//! TASKSUB_BURST_TASKS=1000 cargo test -p tasksub-tests --release --test burst -- --nocapture
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::record::State;
use tasksub_functions::ports::Records;
use tasksub_tests::events::{Task, ACCOUNT, REGION};
use tasksub_tests::moto::unique;
use tasksub_tests::proxy::{Proxied, ProxiedController};
use tasksub_tests::world::World;

/// Tasks in a CI run.
const CI_TASKS: usize = 100;
/// Events in flight (instances of each function).
const IN_FLIGHT: usize = 8;
/// Deliveries an event may take (Lambda's 3 attempts, then a replay round).
const MAX_DELIVERIES: usize = 8;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One event of the replay, with the task it belongs to.
struct Event {
    task: usize,
    payload: Value,
}

/// Shuffles `events`, then duplicates 10 % of them at a random later position.
fn shuffle_with_duplicates(rng: &mut fastrand::Rng, mut events: Vec<Event>) -> (Vec<Event>, usize) {
    rng.shuffle(&mut events);
    let duplicates = events.len() / 10;
    for _ in 0..duplicates {
        let i = rng.usize(..events.len());
        let copy = Event {
            task: events[i].task,
            payload: events[i].payload.clone(),
        };
        let at = rng.usize(i + 1..=events.len());
        events.insert(at, copy);
    }
    (events, duplicates)
}

/// Puts `late`'s first occurrence after `early`'s first occurrence for the given task.
fn order_pair(events: &mut [Event], task: usize, early: &str, late: &str) {
    let pos = |events: &[Event], last: &str| {
        events
            .iter()
            .position(|e| e.task == task && e.payload["detail"]["lastStatus"] == last)
            .expect("event present")
    };
    let (e, l) = (pos(events, early), pos(events, late));
    if l < e {
        events.swap(e, l);
    }
}

/// What the replay of one phase saw.
#[derive(Debug, Default)]
struct Replayed {
    deliveries: usize,
    redelivered: usize,
    max_attempts: usize,
    outcomes: BTreeMap<String, usize>,
}

/// Replays `events` in order on `IN_FLIGHT` workers, each one warm instance of each function.
async fn replay(p: &Proxied, events: Vec<Event>) -> Replayed {
    let queue = Arc::new(Mutex::new(events.into_iter().collect::<VecDeque<_>>()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (running, stopping) = (p.controller(Role::Provisioner), p.controller(Role::Teardown));
        let queue = Arc::clone(&queue);
        workers.spawn(async move {
            let mut seen = Replayed::default();
            loop {
                let Some(event) = queue.lock().expect("queue").pop_front() else {
                    return seen;
                };
                let c: &ProxiedController = if event.payload["detail"]["desiredStatus"] == "RUNNING" {
                    &running
                } else {
                    &stopping
                };
                let d = Proxied::deliver(c, &event.payload, MAX_DELIVERIES).await;
                seen.deliveries += d.attempts;
                seen.redelivered += usize::from(d.attempts > 1);
                seen.max_attempts = seen.max_attempts.max(d.attempts);
                let label = d.outcome.reason.or(d.outcome.state).unwrap_or(d.outcome.outcome);
                *seen
                    .outcomes
                    .entry(format!("{}:{label}", d.outcome.outcome))
                    .or_default() += 1;
            }
        });
    }
    let mut all = Replayed::default();
    for w in workers.join_all().await {
        all.deliveries += w.deliveries;
        all.redelivered += w.redelivered;
        all.max_attempts = all.max_attempts.max(w.max_attempts);
        for (k, v) in w.outcomes {
            *all.outcomes.entry(k).or_default() += v;
        }
    }
    assert!(
        !all.outcomes.keys().any(|k| k.contains("wrong-function")),
        "{:?}",
        all.outcomes
    );
    all
}

/// Subscription ARNs on the topic by endpoint (paginated).
async fn subscriptions_by_endpoint(p: &Proxied) -> BTreeMap<String, Vec<String>> {
    let sns = aws_sdk_sns::Client::new(p.world.sdk());
    let mut pages = sns
        .list_subscriptions_by_topic()
        .topic_arn(p.settings().topics[0].arn.as_str())
        .into_paginator()
        .send();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(page) = pages.next().await {
        for s in page.expect("ListSubscriptionsByTopic").subscriptions() {
            let (endpoint, arn) = (
                s.endpoint().unwrap_or_default(),
                s.subscription_arn().unwrap_or_default(),
            );
            out.entry(endpoint.to_owned()).or_default().push(arn.to_owned());
        }
    }
    out
}

/// Queues under the world's prefix (paginated).
async fn queues_left(p: &Proxied) -> usize {
    let sqs = aws_sdk_sqs::Client::new(p.world.sdk());
    let mut pages = sqs
        .list_queues()
        .queue_name_prefix(p.settings().queue.prefix.as_str())
        .max_results(1000)
        .into_paginator()
        .send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        n += page.expect("ListQueues").queue_urls().len();
    }
    n
}

/// moto 5.2.5 fans a Publish out to the first page of the topic's subscriptions only
/// (`moto/sns/models.py`: `Topic.publish` → `list_subscriptions_by_topic`, `DEFAULT_PAGE_SIZE = 100`);
/// SNS itself has no such limit.
const MOTO_FANOUT: usize = 100;

/// Publishes one message; returns the queues of `live` (URL, ARN) that did not receive it
/// (`IN_FLIGHT` receives at a time).
async fn publish_and_collect_misses(p: &Proxied, live: Vec<(String, String)>) -> Vec<(String, String)> {
    let marker = unique("burst");
    aws_sdk_sns::Client::new(p.world.sdk())
        .publish()
        .topic_arn(p.settings().topics[0].arn.as_str())
        .message(format!("mid-burst {marker}"))
        .send()
        .await
        .expect("Publish");
    let sqs = aws_sdk_sqs::Client::new(p.world.sdk());
    let live = Arc::new(Mutex::new(live));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (sqs, live, marker) = (sqs.clone(), Arc::clone(&live), marker.clone());
        set.spawn(async move {
            let mut missed = Vec::new();
            loop {
                let Some((url, arn)) = live.lock().expect("queues").pop() else {
                    return missed;
                };
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .expect("ReceiveMessage");
                if !out
                    .messages()
                    .iter()
                    .any(|m| m.body().is_some_and(|b| b.contains(&marker)))
                {
                    missed.push((url, arn));
                }
            }
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

/// The subscription SNS would deliver through: confirmed, raw, from our topic to this queue.
async fn assert_subscription_delivers(p: &Proxied, subscription: &str, queue_arn: &str) {
    let attrs = aws_sdk_sns::Client::new(p.world.sdk())
        .get_subscription_attributes()
        .subscription_arn(subscription)
        .send()
        .await
        .expect("GetSubscriptionAttributes");
    let a = attrs.attributes().expect("attributes");
    let get = |k: &str| a.get(k).map(String::as_str);
    assert_eq!(
        get("TopicArn"),
        Some(p.settings().topics[0].arn.as_str()),
        "{subscription}"
    );
    assert_eq!(get("Endpoint"), Some(queue_arn), "{subscription}");
    assert_eq!(get("RawMessageDelivery"), Some("true"), "{subscription}");
    assert_eq!(get("PendingConfirmation"), Some("false"), "{subscription}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_starts_then_stops_converges() {
    let n: usize = env_or("TASKSUB_BURST_TASKS", CI_TASKS);
    let seed: u64 = env_or("TASKSUB_BURST_SEED", 0xb0257);
    let began = Instant::now();
    let timeouts = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(10))
        .build();
    let p = Proxied::new(seed, RetryConfig::standard(), timeouts).await;
    let mut rng = fastrand::Rng::with_seed(seed);
    let tasks: Vec<Task> = (0..n).map(|_| p.world.task()).collect();
    let lives: Vec<_> = tasks.iter().map(Task::lifecycle).collect();
    let reordered: HashSet<usize> = rng.choose_multiple(0..n, n.div_ceil(20)).into_iter().collect();

    // Phase 1: every start; the reordered tasks' STOPPED comes first.
    let mut starts: Vec<Event> = (0..n)
        .map(|i| Event {
            task: i,
            payload: lives[i].0[2].clone(),
        })
        .collect();
    starts.extend(reordered.iter().map(|&i| Event {
        task: i,
        payload: lives[i].2[0].clone(),
    }));
    let (mut starts, start_duplicates) = shuffle_with_duplicates(&mut rng, starts);
    for &i in &reordered {
        order_pair(&mut starts, i, "STOPPED", "RUNNING");
    }
    let start_events = starts.len();
    let phase1 = replay(&p, starts).await;

    // Mid-burst: each live task has exactly one subscription and receives; reordered ones have nothing.
    let records: BTreeMap<String, _> = p
        .world
        .controller()
        .ports()
        .inner()
        .list()
        .await
        .expect("Scan")
        .records
        .into_iter()
        .map(|r| (r.task_id.clone(), r))
        .collect();
    let subs = subscriptions_by_endpoint(&p).await;
    let prefix = p.settings().queue.prefix.as_str().to_owned();
    let mut live = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let r = records.get(&task.id).unwrap_or_else(|| panic!("task {i}: no record"));
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{prefix}{}", task.id);
        let subscribed = subs.get(&arn).map_or(0, Vec::len);
        if reordered.contains(&i) {
            assert_eq!(r.state, State::Gone, "reordered task {i}");
            assert_eq!(subscribed, 0, "reordered task {i} has a subscription");
        } else {
            assert_eq!(r.state, State::Ready, "task {i}");
            assert_eq!(subscribed, 1, "task {i}: subscriptions");
            assert_eq!(
                r.subscriptions.values().next(),
                Some(&subs[&arn][0]),
                "task {i}: recorded subscription"
            );
            live.push((r.queue_url.clone().expect("queue URL"), arn));
        }
    }
    let live_count = live.len();
    assert_eq!(
        subs.values().map(Vec::len).sum::<usize>(),
        live_count,
        "subscriptions of other queues"
    );
    assert_eq!(queues_left(&p).await, live_count, "queues after the starts");
    let missed = publish_and_collect_misses(&p, live).await;
    let received = live_count - missed.len();
    assert!(
        received >= live_count.min(MOTO_FANOUT),
        "{} of {live_count} live queues did not receive the mid-burst message",
        missed.len()
    );
    for (_, arn) in &missed {
        assert_subscription_delivers(&p, &subs[arn][0], arn).await;
    }

    // Phase 2: every stop (stop-initiated then STOPPED; reordered tasks STOPPED first).
    let stops: Vec<Event> = (0..n)
        .flat_map(|i| {
            [&lives[i].1[0], &lives[i].2[0]].map(|e| Event {
                task: i,
                payload: e.clone(),
            })
        })
        .collect();
    let (mut stops, stop_duplicates) = shuffle_with_duplicates(&mut rng, stops);
    for i in 0..n {
        let (early, late) = if reordered.contains(&i) {
            ("STOPPED", "RUNNING")
        } else {
            ("RUNNING", "STOPPED")
        };
        order_pair(&mut stops, i, early, late);
    }
    let stop_events = stops.len();
    let phase2 = replay(&p, stops).await;

    let queues = queues_left(&p).await;
    let subscriptions = subscriptions_by_endpoint(&p)
        .await
        .values()
        .map(Vec::len)
        .sum::<usize>();
    let records = p.world.controller().ports().inner().list().await.expect("Scan").records;
    let tombstones = records.iter().filter(|r| r.state == State::Gone).count();
    let summary = format!(
        "burst: {n} tasks, {} events ({} duplicates, {} reordered tasks), {} deliveries ({} redelivered, max {}), \
         {received} of {live_count} live queues received (the rest checked by subscription; moto fans out to {MOTO_FANOUT}), queues left {queues}, subscriptions left {subscriptions}, tombstones \
         {tombstones}/{} records, {:.1} s; starts {:?}; stops {:?}",
        start_events + stop_events,
        start_duplicates + stop_duplicates,
        reordered.len(),
        phase1.deliveries + phase2.deliveries,
        phase1.redelivered + phase2.redelivered,
        phase1.max_attempts.max(phase2.max_attempts),
        records.len(),
        began.elapsed().as_secs_f64(),
        phase1.outcomes,
        phase2.outcomes,
    );
    println!("{summary}");
    eprintln!("{summary}");
    assert_eq!((queues, subscriptions), (0, 0), "{summary}");
    assert_eq!((tombstones, records.len()), (n, n), "{summary}");
}
