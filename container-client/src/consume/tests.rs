//! The consume loop on the in-memory queue, with paused time: every duration below is virtual.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use super::ack::ACK_ATTEMPTS;
use super::*;
use crate::memory::{Call, MemoryQueue};
use crate::{BoxError, Message};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> ConsumeConfig {
    ConsumeConfig {
        max_concurrency: 10,
        long_poll: LONG_POLL_WAIT,
        visibility: secs(30),
        max_extension: secs(3600),
        flush_interval: secs(1),
        drain_timeout: secs(20),
        failure_backoff: None,
        dedup_window: None,
        envelopes: Envelopes::Unwrap,
        receive_backoff: RECEIVE_ERROR_BACKOFF,
        order: Order::Any,
        max_buffered: 500,
        max_receives: 64,
        filters: Default::default(),
    }
}

/// The client's earlier policy: one receive at a time, never more messages than free handlers.
fn unbuffered() -> ConsumeConfig {
    ConsumeConfig {
        max_buffered: 0,
        max_receives: 1,
        ..config()
    }
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<RunReport>,
}

impl Running {
    async fn stop(self) -> RunReport {
        self.stop.cancel();
        self.task.await.expect("the loop does not panic")
    }
}

fn start<H: Handler>(queue: &MemoryQueue, handler: H, cfg: ConsumeConfig) -> Running {
    let stop = CancellationToken::new();
    let task = tokio::spawn(consume(queue.clone(), Arc::new(handler), cfg, stop.clone()));
    Running { stop, task }
}

async fn ok(_: Message) -> Result<(), BoxError> {
    Ok(())
}

fn deletes(q: &MemoryQueue) -> Vec<usize> {
    q.calls()
        .into_iter()
        .filter_map(|c| {
            if let Call::Delete { count, .. } = c {
                Some(count)
            } else {
                None
            }
        })
        .collect()
}

fn receives(q: &MemoryQueue) -> Vec<(Instant, usize)> {
    q.calls()
        .into_iter()
        .filter_map(|c| {
            if let Call::Receive { at, max } = c {
                Some((at, max))
            } else {
                None
            }
        })
        .collect()
}

fn extensions(q: &MemoryQueue) -> Vec<(Instant, Vec<Duration>)> {
    q.calls()
        .into_iter()
        .filter_map(|c| {
            if let Call::Visibility { at, entries } = c {
                Some((at, entries))
            } else {
                None
            }
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn successes_are_deleted_in_batches_of_up_to_ten() {
    // GIVEN 25 messages and a handler that always succeeds
    let q = MemoryQueue::new();
    for i in 0..25 {
        q.send(&format!("m{i}"));
    }
    // WHEN the loop runs for a few seconds
    let run = start(&q, ok, config());
    sleep(secs(5)).await;
    let report = run.stop().await;
    // THEN every message is deleted, in a handful of DeleteMessageBatch calls of at most ten
    assert_eq!(q.deleted().len(), 25);
    let sizes = deletes(&q);
    assert_eq!(sizes.iter().sum::<usize>(), 25);
    assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    assert!(sizes.len() <= 4, "batched, not one call per message: {sizes:?}");
    assert_eq!(
        (report.received, report.succeeded, report.deleted, report.failed),
        (25, 25, 25, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_is_flushed_after_the_interval() {
    // GIVEN one message
    let q = MemoryQueue::new();
    let id = q.send("one");
    let run = start(&q, ok, config());
    // WHEN it was handled at once
    sleep(Duration::from_millis(900)).await;
    // THEN its delete waits for the 1 s flush interval
    assert!(q.deleted().is_empty(), "not before the interval");
    sleep(Duration::from_millis(200)).await;
    assert_eq!(q.deleted(), [id]);
    assert_eq!(deletes(&q), [1]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_message_is_redelivered_after_its_visibility_timeout() {
    // GIVEN a handler that fails the first delivery only
    let q = MemoryQueue::new();
    let id = q.send("flaky");
    let handler = |m: Message| async move {
        if m.receive_count() == 1 {
            Err::<(), BoxError>("first delivery fails".into())
        } else {
            Ok(())
        }
    };
    let run = start(&q, handler, config());
    // WHEN the visibility timeout (30 s) has not passed yet
    sleep(secs(29)).await;
    // THEN the message is neither deleted nor redelivered
    assert_eq!(q.receive_count(&id), 1);
    assert!(q.deleted().is_empty());
    // AND after it, it is redelivered, handled and deleted
    sleep(secs(3)).await;
    assert_eq!(q.receive_count(&id), 2);
    assert_eq!(q.deleted(), [id]);
    let report = run.stop().await;
    assert_eq!((report.failed, report.succeeded, report.deleted), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn retry_backoff_sets_the_visibility_of_a_failed_message() {
    // GIVEN a retry backoff of 5 s (doubling per receive) and a handler that fails twice
    let q = MemoryQueue::new();
    let id = q.send("flaky");
    let handler = |m: Message| async move {
        if m.receive_count() <= 2 {
            Err::<(), BoxError>("not yet".into())
        } else {
            Ok(())
        }
    };
    let cfg = ConsumeConfig {
        failure_backoff: Some(Backoff::new(secs(5), secs(60))),
        ..config()
    };
    let run = start(&q, handler, cfg);
    // WHEN the run goes on for 20 s
    sleep(secs(20)).await;
    // THEN the visibility was set to 5 s, then 10 s, and the third delivery succeeded
    let backoffs: Vec<Vec<Duration>> = extensions(&q).into_iter().map(|(_, e)| e).collect();
    assert_eq!(backoffs, [vec![secs(5)], vec![secs(10)]]);
    assert_eq!(q.receive_count(&id), 3);
    assert_eq!(q.deleted(), [id]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_handler_slower_than_the_visibility_timeout_keeps_its_message() {
    // GIVEN a handler that works 90 s with a 30 s visibility timeout
    let q = MemoryQueue::new();
    let id = q.send("slow");
    let handler = |_m: Message| async move {
        sleep(secs(90)).await;
        Ok::<(), BoxError>(())
    };
    let run = start(&q, handler, config());
    // WHEN it finishes
    sleep(secs(92)).await;
    // THEN the message was never redelivered, and deleted once
    assert_eq!(q.receive_count(&id), 1);
    assert_eq!(q.deleted(), [id]);
    // AND the heartbeat renewed it every 20 s (a third of the timeout left), to 30 s each time
    let beats = extensions(&q);
    assert_eq!(beats.len(), 4, "{beats:?}");
    let t0 = receives(&q)[0].0;
    for (i, (at, entries)) in beats.iter().enumerate() {
        assert_eq!(*at - t0, secs(20 * (i as u64 + 1)));
        assert_eq!(entries, &[secs(30)]);
    }
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn renewals_stop_at_the_max_extension() {
    // GIVEN a stuck handler and renewals limited to 45 s
    let q = MemoryQueue::new();
    let id = q.send("stuck");
    let handler = |_m: Message| std::future::pending::<Result<(), BoxError>>();
    let cfg = ConsumeConfig {
        max_extension: secs(45),
        max_concurrency: 2,
        ..config()
    };
    let run = start(&q, handler, cfg);
    // WHEN 60 s pass
    sleep(secs(60)).await;
    // THEN the message became visible at 45 s and was delivered again
    assert_eq!(q.receive_count(&id), 2);
    let report = run.stop().await;
    assert_eq!(
        report.returned, 1,
        "the second delivery goes back at shutdown; the first receipt is stale"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_heartbeat_is_retried() {
    // GIVEN a 50 s handler and a first extension call that fails
    let q = MemoryQueue::new();
    let id = q.send("slow");
    q.fail_visibility_calls(1);
    let handler = |_m: Message| async move {
        sleep(secs(50)).await;
        Ok::<(), BoxError>(())
    };
    let run = start(&q, handler, config());
    sleep(secs(52)).await;
    // THEN the failed renewal at 20 s was retried a second later, and the message was never redelivered
    let t0 = receives(&q)[0].0;
    let at: Vec<Duration> = extensions(&q).iter().map(|(at, _)| *at - t0).collect();
    assert_eq!(at[..2], [secs(20), secs(21)]);
    assert_eq!(q.receive_count(&id), 1);
    assert_eq!(q.deleted(), [id]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unbuffered_concurrency_is_bounded_and_receives_ask_only_for_free_slots() {
    // GIVEN 10 messages, 3 handler slots, 5 s handlers and no buffer
    let q = MemoryQueue::new();
    for i in 0..10 {
        q.send(&format!("m{i}"));
    }
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (a, p) = (active.clone(), peak.clone());
    let handler = move |_m: Message| {
        let (a, p) = (a.clone(), p.clone());
        async move {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            sleep(secs(5)).await;
            a.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), BoxError>(())
        }
    };
    let run = start(
        &q,
        handler,
        ConsumeConfig {
            max_concurrency: 3,
            ..unbuffered()
        },
    );
    sleep(secs(25)).await;
    let report = run.stop().await;
    // THEN never more than 3 ran at once, and no receive asked for more than the free slots
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert!(receives(&q).iter().all(|&(_, max)| max <= 3), "{:?}", receives(&q));
    assert_eq!(report.succeeded, 10);
    assert!(q.visible().is_empty() && q.deleted().len() == 10);
}

#[tokio::test(start_paused = true)]
async fn receive_errors_are_backed_off_never_a_hot_loop() {
    // GIVEN five failing receives, then a message
    let q = MemoryQueue::new();
    q.fail_receives(5);
    let id = q.send("after the outage");
    let run = start(&q, ok, config());
    sleep(secs(60)).await;
    run.stop().await;
    // THEN the gaps follow the backoff schedule (at least half of 1, 2, 4, 8, 10 s)
    let at: Vec<Instant> = receives(&q).iter().map(|(t, _)| *t).collect();
    assert!(at.len() >= 6, "{at:?}");
    for (i, pair) in at.windows(2).take(5).enumerate() {
        let gap = pair[1] - pair[0];
        let ceiling = RECEIVE_ERROR_BACKOFF.ceiling(i as u32);
        assert!(
            gap >= ceiling / 2 && gap <= ceiling,
            "gap {i}: {gap:?} vs ceiling {ceiling:?}"
        );
    }
    // AND once SQS answers again the message is handled
    assert_eq!(q.deleted(), [id]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_a_long_poll_at_once() {
    // GIVEN an empty queue and a loop in its 20 s long poll
    let q = MemoryQueue::new();
    let run = start(&q, ok, config());
    sleep(secs(3)).await;
    // WHEN shutdown starts
    let asked = Instant::now();
    let report = run.stop().await;
    // THEN the loop returns without waiting for the poll to end
    assert!(asked.elapsed() < Duration::from_millis(100), "{:?}", asked.elapsed());
    assert_eq!(receives(&q).len(), 1);
    assert_eq!(report, RunReport::default());
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_batch_returns_unfinished_messages_and_deletes_finished_ones() {
    // GIVEN two quick and two endless messages
    let q = MemoryQueue::new();
    let quick = [q.send("quick"), q.send("quick")];
    let endless = [q.send("endless"), q.send("endless")];
    let handler = |m: Message| async move {
        if m.body() == "endless" {
            std::future::pending::<()>().await;
        }
        Ok::<(), BoxError>(())
    };
    let run = start(&q, handler, config());
    sleep(Duration::from_millis(100)).await;
    // WHEN shutdown starts before the quick deletes were flushed
    assert!(q.deleted().is_empty());
    let asked = Instant::now();
    let report = run.stop().await;
    // THEN the loop waited the 20 s drain deadline for the endless ones, then returned them
    assert_eq!(asked.elapsed(), secs(20));
    let mut deleted = q.deleted();
    deleted.sort();
    assert_eq!(deleted, quick);
    let mut visible = q.visible();
    visible.sort();
    assert_eq!(visible, endless, "returned with visibility 0: visible at once");
    assert_eq!((report.succeeded, report.deleted, report.returned), (2, 2, 2));
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_in_flight_handlers_finish_within_the_deadline() {
    let q = MemoryQueue::new();
    let ids = [q.send("a"), q.send("b")];
    let handler = |_m: Message| async move {
        sleep(secs(5)).await;
        Ok::<(), BoxError>(())
    };
    let run = start(&q, handler, config());
    sleep(secs(1)).await;
    let asked = Instant::now();
    let report = run.stop().await;
    // The loop returned as soon as both handlers finished (4 s later), with both deleted.
    assert_eq!(asked.elapsed(), secs(4));
    let mut deleted = q.deleted();
    deleted.sort();
    assert_eq!(deleted, ids);
    assert_eq!((report.deleted, report.returned), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_a_failure() {
    let q = MemoryQueue::new();
    let id = q.send("boom");
    let handler = |m: Message| async move {
        assert!(m.receive_count() > 1, "handler panics on the first delivery");
        Ok::<(), BoxError>(())
    };
    let run = start(&q, handler, config());
    sleep(secs(35)).await;
    let report = run.stop().await;
    assert_eq!(q.receive_count(&id), 2);
    assert_eq!(q.deleted(), [id]);
    assert_eq!((report.failed, report.succeeded), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn redelivered_copies_are_deleted_without_calling_the_handler() {
    // GIVEN the same SNS message delivered twice (two SQS messages, one SNS message ID)
    let envelope =
        r#"{"Type":"Notification","MessageId":"sns-1","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"hi"}"#;
    let q = MemoryQueue::new();
    let ids = [q.send(envelope), q.send(envelope)];
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |m: Message| {
        c.fetch_add(1, Ordering::SeqCst);
        assert_eq!(m.body(), "hi");
        async { Ok::<(), BoxError>(()) }
    };
    let cfg = ConsumeConfig {
        dedup_window: Some(secs(300)),
        max_concurrency: 1,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(3)).await;
    let report = run.stop().await;
    // THEN the handler ran once and both copies are gone
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let mut deleted = q.deleted();
    deleted.sort();
    assert_eq!(deleted, ids);
    assert_eq!(
        (report.received, report.succeeded, report.duplicates, report.deleted),
        (2, 1, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn raw_copies_with_the_same_dedup_attribute_are_handled_once() {
    // GIVEN raw delivery: two SQS messages with new IDs, one publisher-set tasksub-dedup-id, and a
    // third message with another ID
    let attrs = |v: &str| {
        [(
            crate::DEDUP_ID_ATTRIBUTE.to_owned(),
            crate::Attribute {
                data_type: "String".into(),
                value: crate::AttributeValue::String(v.into()),
            },
        )]
        .into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
    };
    let q = MemoryQueue::new();
    let ids = [
        q.send_with("order-7", attrs("evt-7")),
        q.send_with("order-7", attrs("evt-7")),
        q.send_with("order-8", attrs("evt-8")),
    ];
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |_m: Message| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), BoxError>(()) }
    };
    let cfg = ConsumeConfig {
        dedup_window: Some(secs(300)),
        max_concurrency: 1,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(3)).await;
    let report = run.stop().await;
    // THEN the handler ran once per dedup ID, and every copy is deleted
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let mut deleted = q.deleted();
    deleted.sort();
    assert_eq!(deleted, ids);
    assert_eq!((report.received, report.succeeded, report.duplicates), (3, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn without_a_dedup_attribute_raw_copies_are_all_handled() {
    // Raw delivery without tasksub-dedup-id: nothing identifies the copies, as documented.
    let q = MemoryQueue::new();
    q.send("same");
    q.send("same");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |_m: Message| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), BoxError>(()) }
    };
    let cfg = ConsumeConfig {
        dedup_window: Some(secs(300)),
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(3)).await;
    let report = run.stop().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(report.duplicates, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_delete_call_is_retried() {
    let q = MemoryQueue::new();
    let id = q.send("a");
    q.fail_delete_calls(2);
    let run = start(&q, ok, config());
    sleep(secs(5)).await;
    let report = run.stop().await;
    // Two failed calls, then the third attempt deletes it.
    assert_eq!(deletes(&q), [1, 1, 1]);
    assert_eq!(q.deleted(), [id]);
    assert_eq!((report.deleted, report.delete_failures), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_delete_failing_every_attempt_is_given_up_and_counted() {
    let q = MemoryQueue::new();
    q.send("a");
    q.send("b");
    q.fail_delete_calls(usize::MAX);
    let run = start(&q, ok, config());
    sleep(secs(5)).await;
    let report = run.stop().await;
    // ACK_ATTEMPTS calls for the one batch of two, then given up: both will be redelivered.
    assert_eq!(deletes(&q), [2; ACK_ATTEMPTS as usize]);
    assert!(q.deleted().is_empty());
    assert_eq!((report.succeeded, report.deleted, report.delete_failures), (2, 0, 2));
}

#[tokio::test(start_paused = true)]
async fn refused_delete_entries_are_counted_apart_from_the_deleted_ones() {
    // GIVEN a handler slower than the visibility timeout with renewals capped at the receive's
    // visibility: the message is redelivered, so the first receipt is stale by the time it is acked
    let q = MemoryQueue::new();
    let id = q.send("slow");
    q.send("quick");
    let handler = |m: Message| async move {
        if m.body() == "slow" && m.receive_count() == 1 {
            sleep(secs(10)).await;
        }
        Ok::<(), BoxError>(())
    };
    let cfg = ConsumeConfig {
        visibility: secs(2),
        max_extension: secs(2),
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(20)).await;
    let report = run.stop().await;
    assert!(q.deleted().contains(&id));
    // The redelivered copy and "quick" were deleted; the stale receipt was refused.
    assert_eq!((report.deleted, report.delete_failures), (2, 1), "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_receive_never_asks_for_more_than_ten() {
    let q = MemoryQueue::new();
    for i in 0..25 {
        q.send(&format!("m{i}"));
    }
    let slow = |_m: Message| async {
        sleep(secs(1)).await;
        Ok::<(), BoxError>(())
    };
    let cfg = ConsumeConfig {
        max_concurrency: 30,
        ..config()
    };
    let run = start(&q, slow, cfg);
    sleep(secs(5)).await;
    run.stop().await;
    let asked: Vec<usize> = receives(&q).into_iter().map(|(_, max)| max).collect();
    assert_eq!(asked.iter().max(), Some(&10), "{asked:?}");
}

#[tokio::test(start_paused = true)]
async fn returning_unfinished_messages_is_retried_with_backoff_then_given_up() {
    // GIVEN an endless handler, a 1 s drain deadline, and visibility calls that always fail
    let q = MemoryQueue::new();
    q.send("endless");
    let handler = |_m: Message| async move {
        std::future::pending::<()>().await;
        Ok::<(), BoxError>(())
    };
    let cfg = ConsumeConfig {
        drain_timeout: secs(1),
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(Duration::from_millis(100)).await;
    q.fail_visibility_calls(usize::MAX);
    let asked = Instant::now();
    let report = run.stop().await;
    // THEN ACK_ATTEMPTS calls, with the backoff between them only (100-200 ms, then 200-400 ms),
    // none after the last, and nothing counted as returned
    let calls: Vec<Instant> = extensions(&q).into_iter().map(|(at, _)| at).collect();
    assert_eq!(calls.len(), ACK_ATTEMPTS as usize, "{calls:?}");
    let ms = Duration::from_millis;
    let (first, second) = (calls[1] - calls[0], calls[2] - calls[1]);
    assert!(first >= ms(100) && first <= ms(200), "{first:?}");
    assert!(second >= ms(200) && second <= ms(400), "{second:?}");
    assert_eq!(asked.elapsed(), calls[2] - asked, "no pause after the last attempt");
    assert_eq!(report.returned, 0);
}

// FIFO queues: one message of a group at a time, in receive order; a failure releases the rest.

fn fifo_config() -> ConsumeConfig {
    ConsumeConfig {
        order: Order::PerGroup,
        max_concurrency: 16,
        ..config()
    }
}

/// What a recording handler saw: `(event, body)` in the order it happened, `event` "start" or "end".
type Journal = Arc<std::sync::Mutex<Vec<(&'static str, String)>>>;

/// A handler that records its start and end, works `work(body)`, and fails the first
/// delivery of bodies starting with "fail".
fn recording(work: fn(&str) -> Duration) -> (impl Handler, Journal) {
    let journal: Journal = Arc::default();
    let j = journal.clone();
    let handler = move |m: Message| {
        let j = j.clone();
        async move {
            j.lock().unwrap().push(("start", m.body().to_owned()));
            sleep(work(m.body())).await;
            j.lock().unwrap().push(("end", m.body().to_owned()));
            if m.body().starts_with("fail") && m.receive_count() == 1 {
                return Err::<(), BoxError>("first delivery fails".into());
            }
            Ok(())
        }
    };
    (handler, journal)
}

/// Bodies in the order their handlers started.
fn starts(journal: &Journal) -> Vec<String> {
    let j = journal.lock().unwrap();
    j.iter()
        .filter(|(e, _)| *e == "start")
        .map(|(_, b)| b.clone())
        .collect()
}

/// The most handlers of one group (the body's first letter) and of all groups running at once.
fn peaks(journal: &Journal) -> (usize, usize) {
    let mut running: std::collections::HashMap<char, usize> = Default::default();
    let (mut per_group, mut all) = (0, 0);
    for (event, body) in journal.lock().unwrap().iter() {
        let group = body.chars().next().unwrap();
        let n = running.entry(group).or_default();
        if *event == "start" {
            *n += 1;
        } else {
            *n -= 1;
        }
        per_group = per_group.max(*n);
        all = all.max(running.values().sum());
    }
    (per_group, all)
}

#[tokio::test(start_paused = true)]
async fn fifo_groups_run_one_at_a_time_in_order_while_groups_run_concurrently() {
    // GIVEN three groups of five messages, sent interleaved, and 16 handler slots
    let q = MemoryQueue::fifo();
    for i in 0..5 {
        for g in ["a", "b", "c"] {
            q.send_to_group(&format!("{g}{i}"), g);
        }
    }
    let (handler, journal) = recording(|body| Duration::from_millis(100 * (5 - body[1..].parse::<u64>().unwrap())));
    // WHEN the loop runs (later messages are quicker: any overtaking within a group would show)
    let run = start(&q, handler, fifo_config());
    sleep(secs(10)).await;
    let report = run.stop().await;
    // THEN each group ran in send order, never two of a group at once, and the groups overlapped
    let started = starts(&journal);
    for g in ["a", "b", "c"] {
        let order: Vec<&String> = started.iter().filter(|b| b.starts_with(g)).collect();
        assert_eq!(
            order,
            (0..5)
                .map(|i| format!("{g}{i}"))
                .collect::<Vec<_>>()
                .iter()
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(peaks(&journal), (1, 3));
    assert_eq!((report.received, report.succeeded, report.deleted), (15, 15, 15));
    // AND the deletes were batched
    assert!(deletes(&q).len() < 15, "{:?}", deletes(&q));
}

#[tokio::test(start_paused = true)]
async fn fifo_a_failure_releases_the_rest_of_its_group_to_be_redelivered_in_order() {
    // GIVEN group a: a0 fails its first delivery, a1 and a2 behind it; group b unaffected
    let q = MemoryQueue::fifo();
    let ids: Vec<String> = ["fail-a0", "a1", "b0", "a2", "b1"]
        .iter()
        .map(|b| q.send_to_group(b, &b.replace("fail-", "")[..1]))
        .collect();
    let (handler, journal) = recording(|_| Duration::from_millis(10));
    // (duplicate suppression on: a released message must be handled when it comes back)
    let cfg = ConsumeConfig {
        dedup_window: Some(secs(300)),
        ..fifo_config()
    };
    let run = start(&q, handler, cfg);
    // WHEN the failed message's visibility (30 s) has passed
    sleep(secs(5)).await;
    // THEN before it: a1 and a2 were not run but made visible again; b ran
    assert_eq!(starts(&journal), ["fail-a0", "b0", "b1"]);
    let released: Vec<Vec<Duration>> = extensions(&q).into_iter().map(|(_, e)| e).collect();
    assert_eq!(released, [vec![Duration::ZERO; 2]]);
    assert_eq!(q.receive_count(&ids[1]), 1);
    sleep(secs(30)).await;
    let report = run.stop().await;
    // AND after it, a0, a1, a2 were handled in order, each once more
    assert_eq!(starts(&journal), ["fail-a0", "b0", "b1", "fail-a0", "a1", "a2"]);
    assert_eq!(q.receive_count(&ids[1]), 2);
    assert_eq!(q.deleted().len(), 5);
    assert_eq!((report.failed, report.released, report.succeeded), (1, 2, 5));
}

#[tokio::test(start_paused = true)]
async fn fifo_messages_waiting_for_their_group_are_kept_invisible_by_the_heartbeat() {
    // GIVEN three 40 s messages of one group and a 30 s visibility: the last waits 80 s
    let q = MemoryQueue::fifo();
    let ids: Vec<String> = (0..3).map(|i| q.send_to_group(&format!("a{i}"), "a")).collect();
    let (handler, journal) = recording(|_| secs(40));
    let run = start(&q, handler, fifo_config());
    sleep(secs(125)).await;
    let report = run.stop().await;
    // THEN none was redelivered while waiting or working, and all were handled in order
    for id in &ids {
        assert_eq!(q.receive_count(id), 1, "{id}");
    }
    assert_eq!(starts(&journal), ["a0", "a1", "a2"]);
    assert!(!extensions(&q).is_empty(), "renewed");
    assert_eq!((report.succeeded, report.deleted, report.released), (3, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn fifo_the_drain_deadline_returns_a_group_s_unstarted_messages() {
    // GIVEN three 15 s messages of one group; shutdown at 1 s with a 20 s drain
    let q = MemoryQueue::fifo();
    for i in 0..3 {
        q.send_to_group(&format!("a{i}"), "a");
    }
    let (handler, journal) = recording(|_| secs(15));
    let run = start(&q, handler, fifo_config());
    sleep(secs(1)).await;
    let asked = Instant::now();
    let report = run.stop().await;
    // THEN a0 finished, a1 started during the drain and was abandoned at its deadline; a1 and a2
    // went back to the queue at once
    assert_eq!(asked.elapsed(), secs(20));
    assert_eq!(starts(&journal), ["a0", "a1"]);
    assert_eq!((report.succeeded, report.deleted, report.returned), (1, 1, 2));
    assert_eq!(q.visible().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_standard_queue_ignores_message_groups() {
    // GIVEN messages carrying one group on a standard-order consumer
    let q = MemoryQueue::new();
    for i in 0..3 {
        q.send_to_group(&format!("a{i}"), "a");
    }
    let (handler, journal) = recording(|_| secs(1));
    let run = start(&q, handler, config());
    sleep(secs(3)).await;
    let report = run.stop().await;
    // THEN they ran concurrently, as always
    assert_eq!(peaks(&journal), (3, 3));
    assert_eq!(report.succeeded, 3);
}

// Receives in flight adapted to demand (intake.rs): several while the queue is deep, one long poll while
// it is idle; held messages within the handlers plus what they finish before a first heartbeat.

/// A handler that works `work`, counting its calls.
fn working(work: Duration) -> (impl Handler, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handler = move |_m: Message| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            sleep(work).await;
            Ok::<(), BoxError>(())
        }
    };
    (handler, calls)
}

#[tokio::test(start_paused = true)]
async fn an_idle_queue_costs_one_long_poll_per_20_seconds() {
    let q = MemoryQueue::new();
    let run = start(&q, ok, config());
    sleep(secs(3590)).await;
    run.stop().await;
    // 3,590 s: long polls at 0, 20, ..., 3,580 s, one at a time.
    assert_eq!(receives(&q).len(), 180);
    assert_eq!(q.peak_receives_in_flight(), 1);
    assert!(receives(&q).iter().all(|&(_, max)| max == 10));
}

#[tokio::test(start_paused = true)]
async fn a_deep_queue_keeps_several_receives_in_flight_then_one_long_poll_when_idle() {
    // GIVEN SQS 30 ms away, 2,000 messages and 16 handlers of 1 ms
    let q = MemoryQueue::new().with_latency(Duration::from_millis(30));
    let ids: Vec<String> = (0..2000).map(|i| q.send(&format!("m{i}"))).collect();
    let (handler, calls) = working(Duration::from_millis(1));
    let run = start(
        &q,
        handler,
        ConsumeConfig {
            max_concurrency: 16,
            ..config()
        },
    );
    // WHEN it drains the queue, then the queue stays idle for 10 minutes
    sleep(secs(10)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2000, "drained within 10 s");
    let idle_from = Instant::now();
    sleep(secs(600)).await;
    let report = run.stop().await;
    // THEN several receives were in flight at once while the queue was deep, each message was
    // received once and deleted
    let peak = q.peak_receives_in_flight();
    assert!(peak >= 10, "peak receives in flight: {peak}");
    assert!(ids.iter().all(|id| q.receive_count(id) == 1));
    assert_eq!((report.succeeded, report.deleted), (2000, 2000));
    // AND while idle, one receive at a time: no two started within a long poll of each other
    let idle: Vec<Instant> = receives(&q)
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at >= idle_from)
        .collect();
    assert!(idle.len() >= 29, "{}", idle.len());
    for pair in idle.windows(2) {
        assert!(pair[1] - pair[0] >= LONG_POLL_WAIT, "{:?}", pair[1] - pair[0]);
    }
}

#[tokio::test(start_paused = true)]
async fn deletes_keep_up_with_a_fast_consumer_when_sqs_is_far() {
    // GIVEN SQS 30 ms away, 5,000 messages and 64 handlers of 1 ms: about 20,000 handled a second,
    // while one delete call at a time would delete 330 a second
    let q = MemoryQueue::new().with_latency(Duration::from_millis(30));
    let ids: Vec<String> = (0..5000).map(|i| q.send(&format!("m{i}"))).collect();
    let (handler, calls) = working(Duration::from_millis(1));
    let cfg = ConsumeConfig {
        max_concurrency: 64,
        max_buffered: 3200,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(2)).await;
    // THEN within 2 s every message was handled and deleted, each received once
    assert_eq!(calls.load(Ordering::SeqCst), 5000);
    assert_eq!(q.deleted().len(), 5000);
    assert!(ids.iter().all(|id| q.receive_count(id) == 1));
    let report = run.stop().await;
    assert_eq!((report.deleted, report.delete_failures), (5000, 0));
}

#[tokio::test(start_paused = true)]
async fn held_messages_are_handled_before_their_first_heartbeat_would_be_due() {
    // GIVEN 2 handlers of 6 s, a 30 s visibility and 30 messages: the handlers finish one message every
    // 3 s, and a message may wait 20 - 6 = 14 s for a handler: 4 held beyond the 2 running
    let q = MemoryQueue::new();
    let ids: Vec<String> = (0..30).map(|i| q.send(&format!("m{i}"))).collect();
    let (handler, _) = working(secs(6));
    let cfg = ConsumeConfig {
        max_concurrency: 2,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(100)).await;
    let report = run.stop().await;
    // THEN receives asked for more than the free handlers (messages were held ahead)
    let asked: Vec<usize> = receives(&q).iter().map(|&(_, max)| max).collect();
    assert_eq!(asked.iter().max(), Some(&6), "{asked:?}");
    // AND none needed a heartbeat or came back: every one was handled within 20 s of its receipt
    assert!(extensions(&q).is_empty(), "{:?}", extensions(&q));
    assert!(ids.iter().all(|id| q.receive_count(id) == 1));
    assert_eq!(report.deleted, 30);
}

#[tokio::test(start_paused = true)]
async fn a_held_message_older_than_expected_stops_the_buffering() {
    // GIVEN 3 handlers of 1 s, and one message whose handler never ends, among 200
    let q = MemoryQueue::new();
    q.send("m0");
    q.send("stuck");
    for i in 0..200 {
        q.send(&format!("m{i}"));
    }
    let handler = |m: Message| async move {
        if m.body() == "stuck" {
            std::future::pending::<()>().await;
        }
        sleep(secs(1)).await;
        Ok::<(), BoxError>(())
    };
    let cfg = ConsumeConfig {
        max_concurrency: 3,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(80)).await;
    run.stop().await;
    // THEN the stuck message, held past 19 s (20 s - 1 s of handling) after its receipt, ends the
    // buffering: once the 57 messages held then are handled (2 a second), receives ask only for the
    // free handlers (at most 2, one is stuck)
    let t0 = receives(&q)[0].0;
    let late: Vec<usize> = receives(&q)
        .into_iter()
        .filter(|(at, _)| *at - t0 > secs(50))
        .map(|(_, max)| max)
        .collect();
    assert!(!late.is_empty());
    assert!(late.iter().all(|&max| max <= 2), "{late:?}");
    let early = receives(&q)
        .into_iter()
        .filter(|(at, _)| *at - t0 < secs(19))
        .map(|(_, max)| max)
        .max();
    assert_eq!(early, Some(10), "buffered before");
}

#[tokio::test(start_paused = true)]
async fn shutdown_returns_held_messages_that_never_started() {
    // GIVEN one handler of 2 s and 20 messages: after the first, 9 more are held ahead
    let q = MemoryQueue::new();
    for i in 0..20 {
        q.send(&format!("m{i}"));
    }
    let (handler, calls) = working(secs(2));
    let cfg = ConsumeConfig {
        max_concurrency: 1,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(5)).await;
    // WHEN shutdown starts while one runs (until 6 s)
    let asked = Instant::now();
    let report = run.stop().await;
    // THEN only the running one is waited for; the held ones are returned unhandled, visible at once
    assert_eq!(asked.elapsed(), secs(1));
    let handled = calls.load(Ordering::SeqCst) as u64;
    assert_eq!(report.succeeded, handled);
    assert!(report.returned >= 5, "{report:?}");
    assert_eq!(report.succeeded + report.returned, report.received);
    assert_eq!(q.visible().len() as u64, 20 - handled);
}

#[tokio::test(start_paused = true)]
async fn a_message_its_topic_policy_rejects_is_deleted_unhandled_and_counted() {
    // GIVEN raw delivery from the only raw topic, whose filter the task applies itself, and three
    // messages: two the policy selects, one it rejects
    let kind = |v: &str| {
        let a = crate::Attribute {
            data_type: "String".into(),
            value: crate::AttributeValue::String(v.into()),
        };
        std::collections::BTreeMap::from([("kind".to_owned(), a)])
    };
    let q = MemoryQueue::new();
    let ids = [
        q.send_with("a", kind("invalidate")),
        q.send_with("b", kind("refresh")),
        q.send_with("c", kind("invalidate")),
    ];
    let filters = crate::filter::LiveFilters::default();
    let handed = tasksub_core::record::ClientFilter {
        policy: r#"{"kind":["invalidate"]}"#.into(),
        scope: "MessageAttributes".into(),
        raw: true,
    };
    filters.load(std::collections::BTreeMap::from([(
        "arn:aws:sns:us-east-1:1:t".to_owned(),
        handed,
    )]));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let handler = move |m: Message| {
        s.lock().unwrap().push(m.body().to_owned());
        async { Ok::<(), BoxError>(()) }
    };
    let cfg = ConsumeConfig {
        max_concurrency: 1,
        filters,
        ..config()
    };
    let run = start(&q, handler, cfg);
    sleep(secs(3)).await;
    let report = run.stop().await;
    // THEN the handler saw only what the policy selects, and every message is deleted
    let mut bodies = seen.lock().unwrap().clone();
    bodies.sort();
    assert_eq!(bodies, ["a", "c"]);
    let mut deleted = q.deleted();
    deleted.sort();
    assert_eq!(deleted, ids);
    assert_eq!((report.received, report.succeeded, report.filtered_out), (3, 2, 1));
}
