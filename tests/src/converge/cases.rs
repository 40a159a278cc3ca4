//! Issue #21's cases, each a scenario on any [`Stage`]: what used to leak, stall or leave a live task
//! deaf, and what must happen now.

use chrono::{Duration, Utc};
use tasksub_core::record::State;
use tasksub_core::settings::vars;

use super::{Look, Stage};
use crate::events::Task;

fn start(task: &Task) -> serde_json::Value {
    task.event("RUNNING", "RUNNING", 3)
}

async fn stop_everything<S: Stage>(s: &S, task: &Task, settings: &tasksub_core::settings::Settings) {
    s.stop_task(task).await;
    let (_, stop_initiated, stopped) = task.lifecycle();
    s.handle(settings, &stop_initiated[0]).await.expect("stop-initiated");
    s.handle(settings, &stopped[0]).await.expect("stopped");
}

fn nothing_left(s: &impl Stage, look: &Look, what: &str) {
    let b = s.name();
    assert!(look.queue.is_none(), "[{b}] {what}: the queue is left");
    assert!(
        look.subscriptions.is_empty(),
        "[{b}] {what}: subscriptions left: {:?}",
        look.topics()
    );
    let r = look
        .record
        .as_ref()
        .unwrap_or_else(|| panic!("[{b}] {what}: no tombstone"));
    assert_eq!(r.state, State::Gone, "[{b}] {what}");
}

/// The topics named in a queue policy's Allow.
fn policy_topics(look: &Look) -> Vec<String> {
    let policy: serde_json::Value =
        serde_json::from_str(&look.queue.as_ref().expect("a queue")["Policy"]).expect("policy JSON");
    let v = &policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"];
    let mut t: Vec<String> = match v {
        serde_json::Value::String(one) => vec![one.clone()],
        many => many
            .as_array()
            .expect("a list")
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_owned())
            .collect(),
    };
    t.sort();
    t
}

/// Case 1: a topic that refuses Subscribe for good (its owner has not admitted us, or revoked us) no
/// longer blocks anything: the task is READY on the other topic with the refusal named in its record and
/// the sweep report; a later sweep subscribes it once admitted; the teardown never subscribes, so a
/// topic still refusing does not keep anything alive; nothing is left.
pub async fn a_refusing_topic_blocks_nothing<S: Stage>(s: &S) {
    let b = s.name();
    let (a, t2) = (s.topics()[0].as_str(), s.topics()[1].as_str());
    let settings = s.settings(&[a, t2], &[]);
    let task = s.running_task().await;
    s.refuse(t2);
    let out = s
        .handle(&settings, &start(&task))
        .await
        .expect("a refusal fails nothing");
    assert_eq!(out.state, Some("READY"), "[{b}] {out:?}");
    let look = s.look(&task, &settings).await;
    assert_eq!(look.topics(), [a], "[{b}]");
    let r = look.record.expect("record");
    assert_eq!(r.refused[t2].kind, "access-denied", "[{b}] {r:?}");
    assert!(
        r.pending.is_empty(),
        "[{b}] a fresh claim's refusal left nothing unknown: {r:?}"
    );
    let report = s.sweep(&settings, Utc::now(), true).await;
    assert!(
        report.refusals.iter().any(|x| x.topic == t2 && x.task_id == task.id),
        "[{b}] {report:?}"
    );
    // admitted again: the next sweep after the backoff subscribes it
    s.admit(t2);
    s.sweep(&settings, Utc::now() + Duration::minutes(6), false).await;
    let look = s.look(&task, &settings).await;
    assert_eq!(look.topics().len(), 2, "[{b}] {:?}", look.topics());
    assert!(look.record.expect("record").refused.is_empty(), "[{b}]");
    // revoked again, then the task stops: the teardown removes both, subscribing nothing
    s.refuse(t2);
    stop_everything(s, &task, &settings).await;
    let look = s.look(&task, &settings).await;
    nothing_left(s, &look, "after the stop");
    s.admit(t2);
}

/// Case 1, the other order: the topic refuses from the first start to the stop.
pub async fn a_topic_refusing_to_the_end_leaves_nothing<S: Stage>(s: &S) {
    let (a, t2) = (s.topics()[0].as_str(), s.topics()[1].as_str());
    let settings = s.settings(&[a, t2], &[]);
    let task = s.running_task().await;
    s.refuse(t2);
    s.handle(&settings, &start(&task)).await.expect("start");
    stop_everything(s, &task, &settings).await;
    s.sweep(&settings, Utc::now() + Duration::minutes(30), false).await;
    nothing_left(s, &s.look(&task, &settings).await, "refused to the end");
    s.admit(t2);
}

/// Case 2: a start interrupted after Subscribe, then the topic is replaced (`[A]` → `[B]`): the redelivered
/// start (new settings) subscribes B and removes A's subscription, which its record named before the
/// Subscribe (the intent); after the stop nothing is left on either topic.
pub async fn a_retired_topic_is_never_forgotten<S: Stage>(s: &S) {
    let b = s.name();
    let (a, t2) = (s.topics()[0].as_str(), s.topics()[1].as_str());
    let before = s.settings(&[a], &[]);
    let after = s.settings(&[t2], &[]);
    let task = s.running_task().await;
    s.fail_once("PutItem", 1); // the claim passes, MarkReady fails
    assert!(s.handle(&before, &start(&task)).await.is_err(), "[{b}] interrupted");
    assert_eq!(
        s.look(&task, &before).await.topics(),
        [a],
        "[{b}] the interrupted start subscribed A"
    );
    let out = s.handle(&after, &start(&task)).await.expect("redelivered start");
    assert_eq!(out.state, Some("READY"), "[{b}]");
    assert_eq!(
        s.look(&task, &after).await.topics(),
        [t2],
        "[{b}] A's subscription removed"
    );
    stop_everything(s, &task, &after).await;
    s.sweep(&after, Utc::now() + Duration::minutes(30), false).await;
    nothing_left(s, &s.look(&task, &after).await, "after the stop");
}

/// Case 3: a start interrupted, then a topic is added (`[A]` → `[A, B]`): the queue made with the old policy
/// is adopted (its tags say it is ours) and its policy rewritten, so B's deliveries are admitted.
pub async fn an_adopted_queue_gets_the_new_policy<S: Stage>(s: &S) {
    let b = s.name();
    let (a, t2) = (s.topics()[0].as_str(), s.topics()[1].as_str());
    let before = s.settings(&[a], &[]);
    let after = s.settings(&[a, t2], &[]);
    let task = s.running_task().await;
    s.fail_once("PutItem", 1);
    assert!(s.handle(&before, &start(&task)).await.is_err(), "[{b}] interrupted");
    assert_eq!(policy_topics(&s.look(&task, &before).await), [a], "[{b}]");
    let out = s.handle(&after, &start(&task)).await.expect("redelivered start");
    assert_eq!(out.state, Some("READY"), "[{b}]");
    let look = s.look(&task, &after).await;
    let mut want = vec![a.to_owned(), t2.to_owned()];
    want.sort();
    assert_eq!(policy_topics(&look), want, "[{b}] the policy admits both topics");
    assert_eq!(look.topics().len(), 2, "[{b}]");
    stop_everything(s, &task, &after).await;
}

/// Case 4: one record edited by hand so that it no longer reads stops nothing: the sweep goes on, names
/// it (quarantined), and tears down another task whose stop events were lost.
pub async fn a_malformed_record_is_quarantined<S: Stage>(s: &S) {
    let b = s.name();
    let settings = s.settings(&[&s.topics()[0]], &[]);
    let edited = s.running_task().await;
    let lost = s.running_task().await;
    for t in [&edited, &lost] {
        s.handle(&settings, &start(t)).await.expect("start");
    }
    s.corrupt_record(&edited.id).await;
    s.stop_task(&lost).await;
    let report = s.sweep(&settings, Utc::now(), false).await;
    assert_eq!(report.quarantined, 1, "[{b}] {report:?}");
    assert!(
        report
            .held
            .iter()
            .any(|h| h.reason == "quarantined" && h.task_id.as_deref() == Some(edited.id.as_str())),
        "[{b}] {:?}",
        report.held
    );
    nothing_left(s, &s.look(&lost, &settings).await, "the stopped task");
    let look = s.look(&edited, &settings).await;
    assert!(
        look.queue.is_some() && look.subscriptions.len() == 1,
        "[{b}] the edited task is left alone"
    );
}

/// Case 5: two settings versions live at once (an old Lambda version during a deploy, a stale CLI): the
/// newer generation adds a topic; the older one neither removes it on a duplicate start nor in a sweep.
pub async fn an_older_generation_never_undoes_a_newer_one<S: Stage>(s: &S) {
    let b = s.name();
    let (a, t2) = (s.topics()[0].as_str(), s.topics()[1].as_str());
    let old = s.settings(&[a], &[(vars::SETTINGS_GENERATION, "1")]);
    let new = s.settings(&[a, t2], &[(vars::SETTINGS_GENERATION, "2")]);
    let task = s.running_task().await;
    s.handle(&old, &start(&task)).await.expect("start, old version");
    let out = s
        .handle(&new, &start(&task))
        .await
        .expect("duplicate start, new version");
    assert_eq!(out.state, Some("READY"), "[{b}] the new version converges: {out:?}");
    let arn = s.look(&task, &new).await.subscriptions[t2].0.clone();
    let out = s
        .handle(&old, &start(&task))
        .await
        .expect("duplicate start, old version");
    assert_eq!(out.reason, Some("older-generation"), "[{b}] {out:?}");
    s.sweep(&old, Utc::now() + Duration::minutes(10), false).await;
    let look = s.look(&task, &new).await;
    assert_eq!(
        look.subscriptions[t2].0, arn,
        "[{b}] the newer topic's subscription is untouched"
    );
    assert_eq!(look.record.expect("record").generation, 2, "[{b}]");
    stop_everything(s, &task, &new).await;
}

/// Case 6: a topic's subscription settings changed (raw delivery off, a filter policy): live tasks'
/// subscriptions converge at the next sweep.
pub async fn a_changed_topic_setting_reaches_live_tasks<S: Stage>(s: &S) {
    let b = s.name();
    let a = s.topics()[0].as_str();
    let name = a.rsplit(':').next().expect("a name").to_owned();
    let before = s.settings(&[a], &[]);
    let overrides = format!(r#"{{"{name}":{{"rawDelivery":false,"filterPolicy":{{"kind":["invalidate"]}}}}}}"#);
    let after = s.settings(&[a], &[(vars::TOPIC_SETTINGS, &overrides)]);
    let task = s.running_task().await;
    s.handle(&before, &start(&task)).await.expect("start");
    s.sweep(&after, Utc::now(), false).await;
    let attrs = &s.look(&task, &after).await.subscriptions[a].1;
    assert!(
        attrs
            .get("RawMessageDelivery")
            .is_some_and(|v| v.eq_ignore_ascii_case("false")),
        "[{b}] {attrs:?}"
    );
    let fp: serde_json::Value = serde_json::from_str(attrs.get("FilterPolicy").map_or("null", String::as_str)).unwrap();
    assert_eq!(fp, serde_json::json!({"kind": ["invalidate"]}), "[{b}] {attrs:?}");
    // and back: the filter policy removed, raw delivery on
    s.sweep(&before, Utc::now(), false).await;
    let attrs = &s.look(&task, &before).await.subscriptions[a].1;
    let no_filter = attrs.get("FilterPolicy").is_none_or(|p| p.is_empty() || p == "{}");
    assert!(
        no_filter && attrs["RawMessageDelivery"].eq_ignore_ascii_case("true"),
        "[{b}] {attrs:?}"
    );
    stop_everything(s, &task, &before).await;
}

/// Case 7: what others broke is repaired by the next sweep: a live task's queue deleted by hand, a
/// subscription removed by the topic's owner, a topic deleted and re-created.
pub async fn what_others_broke_is_repaired<S: Stage>(s: &S) {
    let b = s.name();
    let (a, t2) = (s.topics()[0].as_str(), s.topics()[2].as_str());
    let settings = s.settings(&[a, t2], &[]);
    let task = s.running_task().await;
    s.handle(&settings, &start(&task)).await.expect("start");
    // a recorded subscription counts as lost only once its record is older than LOST_AFTER
    let later = || Utc::now() + Duration::minutes(5);
    s.delete_queue(&task, &settings).await;
    s.after_a_minute();
    s.sweep(&settings, later() + Duration::minutes(1), false).await;
    let look = s.look(&task, &settings).await;
    assert!(look.queue.is_some(), "[{b}] the deleted queue is made again");
    assert_eq!(look.topics().len(), 2, "[{b}]");
    let arn = look.subscriptions[a].0.clone();
    s.owner_unsubscribes(&arn).await;
    let report = s.sweep(&settings, later() + Duration::minutes(10), false).await;
    assert_eq!(report.resubscribed, 1, "[{b}] {report:?}");
    let look = s.look(&task, &settings).await;
    let again = &look.subscriptions.get(a).expect("subscribed again").0;
    assert_eq!(look.record.expect("record").subscriptions[a], *again, "[{b}] recorded");
    s.recreate_topic(t2).await;
    s.sweep(&settings, later() + Duration::minutes(20), false).await;
    assert_eq!(
        s.look(&task, &settings).await.topics().len(),
        2,
        "[{b}] the re-created topic"
    );
    // a topic deleted and not (yet) re-created: the task stays READY on the other, the record says
    // why, and the sweep after the topic is back (and the backoff is over) subscribes it again
    s.delete_topic(t2).await;
    s.sweep(&settings, later() + Duration::minutes(30), false).await;
    let look = s.look(&task, &settings).await;
    let r = look.record.as_ref().expect("record");
    assert_eq!(r.state, State::Ready, "[{b}]");
    assert_eq!(look.topics(), vec![a.to_owned()], "[{b}] only the topic that exists");
    assert_eq!(
        r.refused.get(t2).map(|x| x.kind.as_str()),
        Some("not-found"),
        "[{b}] {r:?}"
    );
    assert!(!r.subscriptions.contains_key(t2), "[{b}] no dead ARN recorded");
    s.create_topic(t2).await;
    s.sweep(&settings, later() + Duration::minutes(40), false).await;
    let look = s.look(&task, &settings).await;
    assert_eq!(look.topics().len(), 2, "[{b}] subscribed again once the topic is back");
    assert!(look.record.expect("record").refused.is_empty(), "[{b}]");
    stop_everything(s, &task, &settings).await;
}
