//! Every rule of `decide` is a row.

use std::collections::BTreeMap;

use super::*;
use crate::event::TaskStateChange;
use crate::naming::TaskNames;
use crate::record::State;
use crate::test_support::{now, settings, settings_with_topics, PROD, TOPIC};

const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";

fn event(last: &str, desired: &str) -> TaskEvent {
    serde_json::from_value(serde_json::json!({
        "version": "0", "id": "e1", "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": "123456789012", "time": "2026-11-24T11:59:58Z", "region": "us-east-1",
        "resources": [TASK],
        "detail": {"taskArn": TASK, "clusterArn": PROD, "lastStatus": last, "desiredStatus": desired,
                   "group": "service:orders", "version": 3}
    }))
    .unwrap()
}

fn stored(state: State, sub: bool, url: bool) -> Record {
    Record {
        task_id: "0123456789abcdef0123456789abcdef".into(),
        task_arn: TASK.into(),
        cluster_arn: PROD.into(),
        group: Some("service:orders".into()),
        queue_name: "tasksub-0123456789abcdef0123456789abcdef".into(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:tasksub-0123456789abcdef0123456789abcdef".into(),
        queue_url: url.then(|| "http://q".into()),
        subscriptions: if sub { subs(&[TOPIC]) } else { BTreeMap::new() },
        state,
        version: 2,
        created_at: now(),
        updated_at: now(),
        expires_at: None,
        revision: 3,
        pending: Default::default(),
        refused: Default::default(),
        generation: 0,
        settings_hash: Some(settings().fingerprint()),
        watch: Default::default(),
        client_filters: Default::default(),
    }
}

/// Subscriptions to these topics, each ARN `<topic>:s`.
fn subs(topics: &[&str]) -> BTreeMap<String, String> {
    topics.iter().map(|t| ((*t).to_owned(), format!("{t}:s"))).collect()
}

const FLAGS: &str = "arn:aws:sns:eu-west-1:210987654321:flags";
const OLD: &str = "arn:aws:sns:us-east-1:123456789012:retired";

fn with_subs(state: State, topics: &[&str]) -> Record {
    let mut r = stored(state, false, true);
    r.subscriptions = subs(topics);
    r
}

/// A READY record converged under settings of these topics.
fn converged(topics: &[&str], under: &[&str]) -> Record {
    let mut r = with_subs(State::Ready, topics);
    r.settings_hash = Some(settings_with_topics(under).fingerprint());
    r
}

fn plan(d: Decision) -> Plan {
    match d {
        Decision::Act(p) => *p,
        Decision::Skip(s) => panic!("expected a plan, got {s:?}"),
    }
}

fn steps(d: Decision) -> Result<Vec<Step>, Skip> {
    match d {
        Decision::Act(p) => Ok(p.steps),
        Decision::Skip(s) => Err(s),
    }
}

type Row = (&'static str, &'static str, Option<Record>, Result<Vec<Step>, Skip>);

#[test]
fn decision_table() {
    use State::*;
    use Step::*;
    let gone = Tombstone(Gone);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // provisioning acts on the first desired-RUNNING event, whatever the lastStatus on the way up
        ("PROVISIONING", "RUNNING", None, Ok(vec![Claim, CreateQueue, Subscribe, MarkReady])),
        ("PENDING", "RUNNING", None, Ok(vec![Claim, CreateQueue, Subscribe, MarkReady])),
        ("ACTIVATING", "RUNNING", None, Ok(vec![Claim, CreateQueue, Subscribe, MarkReady])),
        ("RUNNING", "RUNNING", None, Ok(vec![Claim, CreateQueue, Subscribe, MarkReady])),
        // a crashed provisioning is resumed; a ready one is a duplicate; a tombstone wins over a late start
        ("RUNNING", "RUNNING", Some(stored(Provisioning, false, false)), Ok(vec![CreateQueue, Subscribe, MarkReady])),
        ("RUNNING", "RUNNING", Some(stored(Ready, true, true)), Err(Skip::AlreadyReady)),
        ("RUNNING", "RUNNING", Some(stored(Draining, false, true)), Err(Skip::Tombstoned(Draining))),
        ("PENDING", "RUNNING", Some(stored(Gone, false, false)), Err(Skip::Tombstoned(Gone))),
        // desired RUNNING while already going down: nothing to do
        ("DEACTIVATING", "RUNNING", None, Err(Skip::NotActionable { last: TaskStatus::Deactivating, desired: TaskStatus::Running })),
        ("STOPPING", "RUNNING", None, Err(Skip::NotActionable { last: TaskStatus::Stopping, desired: TaskStatus::Running })),
        // stop initiated: unsubscribe first, keep the queue for the draining container
        ("RUNNING", "STOPPED", Some(stored(Ready, true, true)), Ok(vec![Unsubscribe, MarkDraining])),
        ("DEACTIVATING", "STOPPED", Some(stored(Ready, true, true)), Ok(vec![Unsubscribe, MarkDraining])),
        // a PROVISIONING record written before intents names no topic: every configured one may be
        // subscribed, found by listing the topic (never by subscribing)
        ("STOPPING", "STOPPED", Some(stored(Provisioning, false, true)), Ok(vec![Unsubscribe, MarkDraining])),
        ("STOPPING", "STOPPED", Some(stored(Provisioning, true, true)), Ok(vec![Unsubscribe, MarkDraining])),
        ("PENDING", "STOPPED", None, Ok(vec![Tombstone(Draining)])),
        ("STOPPING", "STOPPED", Some(stored(Draining, false, true)), Err(Skip::AlreadyDraining(Draining))),
        ("DEPROVISIONING", "STOPPED", Some(stored(Gone, false, false)), Err(Skip::AlreadyDraining(Gone))),
        // stopped: delete what is left, then the tombstone
        ("STOPPED", "STOPPED", Some(stored(Draining, false, true)), Ok(vec![DeleteQueue, gone])),
        ("STOPPED", "STOPPED", Some(stored(Draining, false, false)), Ok(vec![LookupQueueUrl, DeleteQueue, gone])),
        ("STOPPED", "STOPPED", Some(stored(Ready, true, true)), Ok(vec![Unsubscribe, DeleteQueue, gone])),
        ("STOPPED", "STOPPED", Some(stored(Provisioning, true, true)), Ok(vec![Unsubscribe, DeleteQueue, gone])),
        ("STOPPED", "STOPPED", Some(stored(Provisioning, false, false)), Ok(vec![Unsubscribe, LookupQueueUrl, DeleteQueue, gone])),
        ("STOPPED", "STOPPED", None, Ok(vec![LookupQueueUrl, DeleteQueue, gone])),
        ("STOPPED", "STOPPED", Some(stored(Gone, false, false)), Err(Skip::AlreadyGone)),
        // lastStatus STOPPED is terminal whatever desiredStatus says
        ("STOPPED", "RUNNING", Some(stored(Ready, true, true)), Ok(vec![Unsubscribe, DeleteQueue, gone])),
        // statuses ECS may add later are not acted on
        ("HIBERNATING", "RUNNING", None, Err(Skip::NotActionable { last: TaskStatus::Other("HIBERNATING".into()), desired: TaskStatus::Running })),
    ];
    for (last, desired, rec, want) in rows {
        let got = steps(decide(&event(last, desired), rec.as_ref(), &settings(), now()).unwrap());
        assert_eq!(got, want, "{last}/{desired} with {:?}", rec.map(|r| r.state));
    }
}

/// After a settings change a live task converges: the new topics are named first (record-intent), then
/// the queue (its policy), every subscription and the retired topics are brought in line at once, then one
/// conditional write; a task converged under the same settings stays a duplicate.
#[test]
fn ready_records_converge_to_the_settings() {
    use State::*;
    use Step::*;
    let two = settings_with_topics(&[TOPIC, FLAGS]);
    let one = settings();
    type Row<'a> = (&'a Settings, Record, &'a str, &'a str, Result<Vec<Step>, Skip>);
    let mut pending = with_subs(Provisioning, &[TOPIC]);
    pending.pending.insert(FLAGS.into());
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // a topic added: named, then the queue policy, the new subscription (and a look at the old one)
        (&two, converged(&[TOPIC], &[TOPIC]), "RUNNING", "RUNNING", Ok(vec![RecordIntent, CreateQueue, Subscribe, MarkReady])),
        (&two, converged(&[TOPIC, FLAGS], &[TOPIC, FLAGS]), "RUNNING", "RUNNING", Err(Skip::AlreadyReady)),
        // a topic removed
        (&one, converged(&[TOPIC, OLD], &[TOPIC, OLD]), "RUNNING", "RUNNING", Ok(vec![CreateQueue, Subscribe, UnsubscribeRetired, MarkReady])),
        (&one, converged(&[OLD], &[OLD]), "RUNNING", "RUNNING", Ok(vec![RecordIntent, CreateQueue, Subscribe, UnsubscribeRetired, MarkReady])),
        // under the same settings, a topic missing from the record (nothing recorded yet): just that topic
        (&one, converged(&[], &[TOPIC]), "RUNNING", "RUNNING", Ok(vec![RecordIntent, Subscribe, MarkReady])),
        // teardown unsubscribes every recorded subscription, whatever the settings say now
        (&two, converged(&[TOPIC, OLD], &[TOPIC, OLD]), "STOPPED", "STOPPED", Ok(vec![Unsubscribe, DeleteQueue, Tombstone(Gone)])),
        // a half-done provisioning: what it recorded and what it named pending are removed
        (&two, with_subs(Provisioning, &[TOPIC]), "RUNNING", "STOPPED", Ok(vec![Unsubscribe, MarkDraining])),
        (&two, pending.clone(), "RUNNING", "STOPPED", Ok(vec![Unsubscribe, MarkDraining])),
        (&two, pending, "RUNNING", "RUNNING", Ok(vec![CreateQueue, Subscribe, MarkReady])),
    ];
    for (s, rec, last, desired, want) in rows {
        let got = steps(decide(&event(last, desired), Some(&rec), s, now()).unwrap());
        assert_eq!(
            got,
            want,
            "{last}/{desired} {:?} with {:?}",
            s.topic_arns().collect::<Vec<_>>(),
            rec.subscriptions
        );
    }
    assert_eq!(topic_drift(&with_subs(Ready, &[TOPIC]), &two), (true, false));
    assert_eq!(topic_drift(&with_subs(Ready, &[TOPIC, OLD]), &one), (false, true));
    assert_eq!(topic_drift(&with_subs(Ready, &[TOPIC]), &one), (false, false));
}

/// What each converge plan carries: the topics named before their first Subscribe, whether attributes are
/// read, and which topics an earlier attempt may have left unrecorded.
#[test]
fn plans_name_their_topics_before_subscribing() {
    let two = settings_with_topics(&[TOPIC, FLAGS]);
    // a first start names every topic in its claim
    let p = plan(decide(&event("PENDING", "RUNNING"), None, &two, now()).unwrap());
    assert_eq!(p.record.pending.iter().collect::<Vec<_>>(), [FLAGS, TOPIC]);
    assert!(!p.observe && p.inherited.is_empty());
    // a topic added: the intent names only it; the attributes are read (the settings changed)
    let p = plan(
        decide(
            &event("RUNNING", "RUNNING"),
            Some(&converged(&[TOPIC], &[TOPIC])),
            &two,
            now(),
        )
        .unwrap(),
    );
    assert_eq!(p.record.pending.iter().collect::<Vec<_>>(), [FLAGS]);
    assert!(p.observe && p.inherited.is_empty());
    // a redelivered start inherits what the crashed one left pending
    let mut half = with_subs(State::Provisioning, &[]);
    half.pending.insert(TOPIC.into());
    let p = plan(decide(&event("RUNNING", "RUNNING"), Some(&half), &settings(), now()).unwrap());
    assert_eq!(p.inherited.iter().collect::<Vec<_>>(), [TOPIC]);
    assert_eq!(p.steps, [Step::CreateQueue, Step::Subscribe, Step::MarkReady]);
    // a legacy PROVISIONING record: every configured topic is inherited
    let p = plan(
        decide(
            &event("RUNNING", "RUNNING"),
            Some(&stored(State::Provisioning, false, false)),
            &two,
            now(),
        )
        .unwrap(),
    );
    assert_eq!(p.inherited.len(), 2);
}

/// A per-topic setting change (raw delivery off, a filter policy) makes a live record stale: its
/// attributes are read and converged, though the topics are the same.
#[test]
fn a_changed_topic_setting_reaches_live_tasks() {
    let mut s = settings();
    s.topics[0].subscription.raw_delivery = false;
    s.topics[0].subscription.filter_policy = Some(r#"{"kind":["a"]}"#.into());
    let p = plan(
        decide(
            &event("RUNNING", "RUNNING"),
            Some(&stored(State::Ready, true, true)),
            &s,
            now(),
        )
        .unwrap(),
    );
    assert_eq!(p.steps, [Step::CreateQueue, Step::Subscribe, Step::MarkReady]);
    assert!(p.observe);
}

/// A writer of an older settings generation never converges (so never undoes) a record a newer one
/// converged or claimed; it still tears a stopped task down.
#[test]
fn an_older_generation_leaves_a_newer_record_alone() {
    let mut old = settings_with_topics(&[TOPIC]);
    old.generation = 1;
    let mut newer = converged(&[TOPIC, FLAGS], &[TOPIC, FLAGS]);
    newer.generation = 2;
    let skip = Skip::OlderGeneration { writer: 1, record: 2 };
    assert_eq!(
        steps(decide(&event("RUNNING", "RUNNING"), Some(&newer), &old, now()).unwrap()),
        Err(skip.clone())
    );
    let mut claimed = with_subs(State::Provisioning, &[]);
    claimed.pending.insert(FLAGS.into());
    claimed.generation = 2;
    assert_eq!(
        steps(decide(&event("RUNNING", "RUNNING"), Some(&claimed), &old, now()).unwrap()),
        Err(skip)
    );
    assert_eq!(
        steps(decide(&event("STOPPED", "STOPPED"), Some(&newer), &old, now()).unwrap()),
        Ok(vec![Step::Unsubscribe, Step::DeleteQueue, Step::Tombstone(State::Gone)])
    );
    // the same or a newer generation converges (equal generations: the last writer wins)
    for g in [2, 3] {
        let mut s = old.clone();
        s.generation = g;
        assert!(
            steps(decide(&event("RUNNING", "RUNNING"), Some(&newer), &s, now()).unwrap()).is_ok(),
            "{g}"
        );
    }
}

/// A refused topic leaves the task READY; it is tried again after its backoff, named again first.
#[test]
fn refused_topics_wait_for_their_backoff() {
    let two = settings_with_topics(&[TOPIC, FLAGS]);
    let mut r = converged(&[TOPIC], &[TOPIC, FLAGS]);
    let refusal = |minutes_ago| crate::record::Refusal {
        kind: "access-denied".into(),
        message: "not admitted".into(),
        since: now() - Duration::hours(1),
        last_at: now() - Duration::minutes(minutes_ago),
        attempts: 1,
    };
    r.refused.insert(FLAGS.into(), refusal(1));
    assert_eq!(
        steps(decide(&event("RUNNING", "RUNNING"), Some(&r), &two, now()).unwrap()),
        Err(Skip::AlreadyReady)
    );
    r.refused.insert(FLAGS.into(), refusal(5));
    let p = plan(decide(&event("RUNNING", "RUNNING"), Some(&r), &two, now()).unwrap());
    assert_eq!(p.steps, [Step::RecordIntent, Step::Subscribe, Step::MarkReady]);
    assert!(p.record.pending.contains(FLAGS));
}

/// The sweeper's hints: a recorded subscription missing from its topic's listing is made again, after its
/// topic is named; the queue and the other subscriptions are looked at too.
#[test]
fn a_lost_subscription_is_made_again() {
    let two = settings_with_topics(&[TOPIC, FLAGS]);
    let r = converged(&[TOPIC, FLAGS], &[TOPIC, FLAGS]);
    let names = TaskNames::derive(&r.task_arn, two.naming()).unwrap();
    let facts = TaskFacts::of_event(&event("RUNNING", "RUNNING"));
    let hints = Hints {
        lost: [FLAGS.to_owned()].into(),
        ..Hints::default()
    };
    let p = plan(plan_with(
        Intent::Provision,
        &names,
        &facts,
        Some(&r),
        &two,
        now(),
        &hints,
    ));
    assert_eq!(
        p.steps,
        [Step::RecordIntent, Step::CreateQueue, Step::Subscribe, Step::MarkReady]
    );
    assert!(p.observe && !p.record.subscriptions.contains_key(FLAGS) && p.record.pending.contains(FLAGS));
    let verify = Hints {
        verify: true,
        ..Hints::default()
    };
    let p = plan(plan_with(
        Intent::Provision,
        &names,
        &facts,
        Some(&r),
        &two,
        now(),
        &verify,
    ));
    assert_eq!(p.steps, [Step::CreateQueue, Step::Subscribe, Step::MarkReady]);
}

#[test]
fn teardown_never_exceeds_three_steps_after_the_read_on_normal_paths() {
    for (last, state) in [
        ("RUNNING", State::Ready),
        ("STOPPED", State::Ready),
        ("STOPPED", State::Draining),
    ] {
        let d = decide(
            &event(last, "STOPPED"),
            Some(&stored(state, state == State::Ready, true)),
            &settings(),
            now(),
        );
        assert!(steps(d.unwrap()).unwrap().len() <= 3);
    }
}

#[test]
fn scope_is_checked_before_anything_else() {
    let s = settings();
    let mut e = event("RUNNING", "RUNNING");
    e.source = "custom.app".into();
    assert_eq!(
        steps(decide(&e, None, &s, now()).unwrap()),
        Err(Skip::OtherSource("custom.app".into()))
    );

    let mut e = event("RUNNING", "RUNNING");
    e.detail_type = "ECS Service Action".into();
    assert!(matches!(
        steps(decide(&e, None, &s, now()).unwrap()),
        Err(Skip::OtherDetailType(_))
    ));

    let mut e = event("RUNNING", "RUNNING");
    e.detail.cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/other".into();
    assert!(matches!(
        steps(decide(&e, None, &s, now()).unwrap()),
        Err(Skip::ForeignCluster(_))
    ));

    let mut e = event("RUNNING", "RUNNING");
    e.detail.group = Some("service:billing".into());
    assert!(matches!(
        steps(decide(&e, None, &s, now()).unwrap()),
        Err(Skip::ForeignGroup(_))
    ));

    let mut e = event("RUNNING", "RUNNING");
    e.detail.group = None;
    assert!(matches!(
        steps(decide(&e, None, &s, now()).unwrap()),
        Err(Skip::ForeignGroup(None))
    ));
}

#[test]
fn stale_start_events_are_never_acted_on() {
    let mut e = event("RUNNING", "RUNNING");
    e.time = Some(now() - Duration::days(2));
    assert_eq!(
        steps(decide(&e, None, &settings(), now()).unwrap()),
        Err(Skip::TooOld { age_seconds: 172_800 })
    );
    // the boundary: exactly the tombstone lifetime old is still acted on, a second more is not (a
    // tombstone written after the event expires no earlier than the event's time plus the lifetime)
    let ttl = settings().tombstone_ttl_seconds as i64;
    e.time = Some(now() - Duration::seconds(ttl));
    assert!(steps(decide(&e, None, &settings(), now()).unwrap()).is_ok());
    e.time = Some(now() - Duration::seconds(ttl + 1));
    assert_eq!(
        steps(decide(&e, None, &settings(), now()).unwrap()),
        Err(Skip::TooOld { age_seconds: ttl + 1 })
    );
    // a stop event of any age is still acted on: cleanup is always safe
    e.detail.desired_status = TaskStatus::Stopped;
    e.detail.last_status = TaskStatus::Stopped;
    assert!(steps(decide(&e, None, &settings(), now()).unwrap()).is_ok());
}

#[test]
fn a_task_arn_that_cannot_name_a_queue_is_a_permanent_error() {
    let mut e = event("RUNNING", "RUNNING");
    e.detail.task_arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/bad.id".into();
    assert!(decide(&e, None, &settings(), now()).is_err());
}

#[test]
fn the_working_record_keeps_the_highest_version_and_derived_names() {
    let Decision::Act(p) = decide(&event("PENDING", "RUNNING"), None, &settings(), now()).unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!(p.expected, None);
    assert_eq!(p.record.version, 3);
    assert_eq!(p.record.queue_name, "tasksub-0123456789abcdef0123456789abcdef");
    assert_eq!(p.record.state, State::Provisioning);
    let mut old = stored(State::Ready, true, true);
    old.version = 9;
    let Decision::Act(p) = decide(&event("RUNNING", "STOPPED"), Some(&old), &settings(), now()).unwrap() else {
        panic!("expected a plan")
    };
    assert_eq!((p.record.version, p.expected), (9, Some(State::Ready)));
}

#[test]
fn apply_moves_state_and_clears_what_no_longer_exists() {
    let s = settings();
    let r = stored(State::Ready, true, true);
    let d = apply(&r, Step::MarkDraining, &s, now());
    assert_eq!(
        (d.state, d.subscriptions.len(), d.expires_at),
        (State::Draining, 0, None)
    );
    let g = apply(&d, Step::Tombstone(State::Gone), &s, now());
    assert_eq!(g.state, State::Gone);
    assert_eq!(g.queue_url, None);
    assert_eq!(g.expires_at, Some(now().timestamp() + 86_400));
    assert_eq!(apply(&r, Step::CreateQueue, &s, now()).state, State::Ready);
    // a teardown write forgets every topic: nothing of the task is subscribed any more
    let mut named = r.clone();
    named.pending.insert(FLAGS.into());
    named.refused.insert(
        OLD.into(),
        crate::record::Refusal {
            kind: "quota".into(),
            message: "m".into(),
            since: now(),
            last_at: now(),
            attempts: 1,
        },
    );
    for step in [
        Step::MarkDraining,
        Step::Tombstone(State::Gone),
        Step::Tombstone(State::Draining),
    ] {
        let t = apply(&named, step, &s, now());
        assert!(
            t.subscriptions.is_empty() && t.pending.is_empty() && t.refused.is_empty(),
            "{step:?}"
        );
        let watched: Vec<&str> = t.watch.iter().map(String::as_str).collect();
        assert_eq!(
            watched,
            [FLAGS, TOPIC, OLD],
            "{step:?}: the sweeper keeps listing every topic it named"
        );
    }
}

/// MarkReady says which settings the record is converged to; a claim or an intent says only whose
/// intent it is.
#[test]
fn writes_stamp_the_generation_and_mark_ready_the_fingerprint() {
    let mut s = settings_with_topics(&[TOPIC, FLAGS]);
    s.generation = 7;
    let mut r = stored(State::Provisioning, false, true);
    r.settings_hash = None;
    r.generation = 3;
    let claimed = apply(&r, Step::Claim, &s, now());
    assert_eq!((claimed.generation, claimed.settings_hash.as_deref()), (7, None));
    let intent = apply(&r, Step::RecordIntent, &s, now());
    assert_eq!((intent.generation, intent.settings_hash.as_deref()), (7, None));
    let ready = apply(&r, Step::MarkReady, &s, now());
    assert_eq!((ready.generation, ready.settings_hash), (7, Some(s.fingerprint())));
    r.generation = 9;
    assert_eq!(
        apply(&r, Step::RecordIntent, &s, now()).generation,
        9,
        "an intent never lowers it"
    );
}

fn undo(current: Option<&Record>, ours: &Record) -> Option<(Vec<Step>, Vec<String>)> {
    // settings that want no topic of these records: the rule of what the winner names alone
    let s = settings_with_topics(&["arn:aws:sns:us-east-1:123456789012:elsewhere"]);
    match after_lost_race(current, ours, &s) {
        AfterLoss::Undo(u) => Some((u.steps, u.record.subscriptions.into_values().collect())),
        AfterLoss::Redecide(h) => {
            assert_eq!(h, Hints::default());
            None
        }
    }
}

#[test]
fn a_lost_race_is_undone_according_to_who_won() {
    use Step::{DeleteQueue, Unsubscribe};
    let ours = stored(State::Ready, true, true);
    let mine = vec![format!("{TOPIC}:s")];
    // The winner recorded the very subscription we made (Subscribe is idempotent): nothing to undo.
    assert_eq!(undo(Some(&ours), &ours), Some((vec![], vec![])));
    // A teardown won: unsubscribe ours; the queue is the draining container's until STOPPED.
    let draining = stored(State::Draining, false, true);
    assert_eq!(undo(Some(&draining), &ours), Some((vec![Unsubscribe], mine.clone())));
    // ...unless the DRAINING record never knew a queue (it never was READY): nobody else will delete it.
    let both = Some((vec![Unsubscribe, DeleteQueue], mine.clone()));
    assert_eq!(undo(Some(&stored(State::Draining, false, false)), &ours), both);
    // The task is gone (or its record is): everything we made goes.
    assert_eq!(undo(Some(&stored(State::Gone, false, false)), &ours), both);
    assert_eq!(undo(None, &ours), both);
    // Another provisioning holds the record: our resources are its resources; decide again.
    assert_eq!(undo(Some(&stored(State::Provisioning, false, true)), &ours), None);
    // A READY winner naming the topic as pending (settings that do not want it: an older writer's view):
    // its converge adopts ours; kept.
    let mut adopting = stored(State::Ready, false, true);
    adopting.pending.insert(TOPIC.into());
    assert_eq!(undo(Some(&adopting), &ours), Some((vec![], vec![])));
    // A READY winner that names the topic nowhere, and settings that do not want it: ours goes.
    let bare = stored(State::Ready, false, true);
    assert_eq!(undo(Some(&bare), &ours), Some((vec![Unsubscribe], mine.clone())));
    // Several topics: only what the winner does not name is undone.
    let ours2 = with_subs(State::Ready, &[TOPIC, FLAGS]);
    let winner = with_subs(State::Ready, &[TOPIC]);
    assert_eq!(
        undo(Some(&winner), &ours2),
        Some((vec![Unsubscribe], vec![format!("{FLAGS}:s")]))
    );
    // Only ARNs are undone: what our record left pending or refused is not ours to name.
    let mut pend = ours.clone();
    pend.pending.insert(FLAGS.into());
    let AfterLoss::Undo(u) = after_lost_race(Some(&draining), &pend, &settings()) else {
        panic!("a teardown won")
    };
    assert!(u.record.pending.is_empty() && u.record.refused.is_empty());
}

/// What a lost race adopts is recorded by the next plan, even under a READY record that otherwise needs
/// nothing (a refused topic whose subscription a racing writer made before the owner revoked us).
#[test]
fn adopted_subscriptions_are_recorded() {
    let two = settings_with_topics(&[TOPIC, FLAGS]);
    let mut r = converged(&[TOPIC], &[TOPIC, FLAGS]);
    r.refused.insert(
        FLAGS.into(),
        crate::record::Refusal {
            kind: "access-denied".into(),
            message: "revoked".into(),
            since: now(),
            last_at: now(),
            attempts: 1,
        },
    );
    let names = TaskNames::derive(&r.task_arn, two.naming()).unwrap();
    let facts = TaskFacts::of_event(&event("RUNNING", "RUNNING"));
    let adopt = Hints {
        adopt: [
            (FLAGS.to_owned(), "arn:made".to_owned()),
            (OLD.to_owned(), "arn:old".to_owned()),
        ]
        .into(),
        ..Hints::default()
    };
    let p = plan(plan_with(
        Intent::Provision,
        &names,
        &facts,
        Some(&r),
        &two,
        now(),
        &adopt,
    ));
    assert_eq!(p.steps, [Step::MarkReady]);
    assert_eq!(p.record.subscriptions[FLAGS], "arn:made");
    assert!(!p.record.refused.contains_key(FLAGS), "it exists: no longer refused");
    assert!(
        !p.record.subscriptions.contains_key(OLD),
        "a topic these settings do not want is not adopted"
    );
    // a topic the record names with an ARN is not adopted over it (the plan's verify settles which lives)
    let same = Hints {
        adopt: [(TOPIC.to_owned(), "arn:other".to_owned())].into(),
        ..Hints::default()
    };
    assert_eq!(
        steps(plan_with(
            Intent::Provision,
            &names,
            &facts,
            Some(&r),
            &two,
            now(),
            &same
        )),
        Err(Skip::AlreadyReady)
    );
}

/// A live task must not lose a topic because two provisioners raced: under a READY winner, a subscription
/// we just made is recorded by deciding again rather than removed.
#[test]
fn a_lost_race_never_removes_what_a_live_task_wants() {
    let ours = stored(State::Ready, true, true);
    // The winner names a stale ARN for the topic (the topic was re-created): ours is the live one.
    let mut stale = ours.clone();
    stale.subscriptions.insert(TOPIC.into(), "arn:dead".into());
    // Which ARN lives is unknown: decide again reading every subscription; nothing adopted over theirs.
    assert_eq!(
        after_lost_race(Some(&stale), &ours, &settings()),
        AfterLoss::Redecide(Hints {
            verify: true,
            ..Hints::default()
        })
    );
    let adopt = AfterLoss::Redecide(Hints {
        verify: true,
        adopt: [(TOPIC.to_owned(), format!("{TOPIC}:s"))].into(),
        ..Hints::default()
    });
    // The winner names the topic nowhere, as pending (its Subscribe may have come before ours), or as
    // refused (the owner revoked us after our Subscribe), and our settings want it: ours is recorded.
    let bare = stored(State::Ready, false, true);
    assert_eq!(after_lost_race(Some(&bare), &ours, &settings()), adopt);
    let mut pending = bare.clone();
    pending.pending.insert(TOPIC.into());
    assert_eq!(after_lost_race(Some(&pending), &ours, &settings()), adopt);
    // ...unless the winner is of a newer generation: an older writer never leaves its topic on it.
    let mut newer = bare.clone();
    newer.generation = 5;
    let AfterLoss::Undo(u) = after_lost_race(Some(&newer), &ours, &settings()) else {
        panic!("undone")
    };
    assert_eq!(u.steps, [Step::Unsubscribe]);
    // ...but a newer winner naming the topic pending or refused wants it: ours is left for it to record
    for named in ["pending", "refused"] {
        let mut wants = newer.clone();
        if named == "pending" {
            wants.pending.insert(TOPIC.into());
        } else {
            wants.refused.insert(
                TOPIC.into(),
                crate::record::Refusal {
                    kind: "access-denied".into(),
                    message: "revoked".into(),
                    since: now(),
                    last_at: now(),
                    attempts: 1,
                },
            );
        }
        let AfterLoss::Undo(u) = after_lost_race(Some(&wants), &ours, &settings()) else {
            panic!("{named}: an undo with nothing to do")
        };
        assert!(
            u.steps.is_empty() && u.record.subscriptions.is_empty(),
            "{named}: {u:?}"
        );
    }
}

#[test]
fn each_write_stores_its_state() {
    let s = settings();
    let gone = stored(State::Gone, false, false);
    assert_eq!(apply(&gone, Step::Claim, &s, now()).state, State::Provisioning);
    let provisioning = stored(State::Provisioning, true, true);
    let ready = apply(&provisioning, Step::MarkReady, &s, now());
    assert_eq!((ready.state, ready.subscriptions.len()), (State::Ready, 1));
    assert_eq!(apply(&ready, Step::MarkDraining, &s, now()).state, State::Draining);
}

#[test]
fn every_write_moves_the_revision_on_by_one() {
    let s = settings();
    let r = stored(State::Ready, true, true);
    for step in [
        Step::Claim,
        Step::RecordIntent,
        Step::MarkReady,
        Step::MarkDraining,
        Step::Tombstone(State::Gone),
    ] {
        assert_eq!(apply(&r, step, &s, now()).revision, r.revision + 1, "{step:?}");
    }
}

#[test]
fn roles_split_the_intents() {
    assert!(Role::Provisioner.accepts(Intent::Provision));
    assert!(!Role::Provisioner.accepts(Intent::Stopped));
    assert!(Role::Teardown.accepts(Intent::StopInitiated));
    assert!(!Role::Teardown.accepts(Intent::Provision));
    assert!(Role::Any.accepts(Intent::Stopped));
}

#[test]
fn detail_round_trips() {
    let e = event("RUNNING", "RUNNING");
    let json = serde_json::to_value(&e.detail).unwrap();
    let back: TaskStateChange = serde_json::from_value(json).unwrap();
    assert_eq!(back, e.detail);
}

#[test]
fn skips_read_plainly() {
    assert_eq!(
        Skip::ForeignGroup(Some("service:billing".into())).to_string(),
        "group service:billing is not in scope"
    );
    assert_eq!(
        Skip::ForeignGroup(None).to_string(),
        "the task has no group, and service groups are configured"
    );
}

/// The names in logs, metrics, the Lambda response and the CLI output are a contract: each is pinned.
#[test]
fn stable_names_are_pinned() {
    use crate::record::State;
    let intents = [Intent::Provision, Intent::StopInitiated, Intent::Stopped].map(Intent::as_str);
    assert_eq!(intents, ["provision", "stop-initiated", "stopped"]);
    // Only provisioning claims instead of reading first.
    let reads = [Intent::Provision, Intent::StopInitiated, Intent::Stopped].map(Intent::reads_first);
    assert_eq!(reads, [false, true, true]);
    let steps = EVERY_STEP.map(Step::as_str);
    assert_eq!(
        steps,
        [
            "claim",
            "record-intent",
            "create-queue",
            "subscribe",
            "mark-ready",
            "unsubscribe",
            "unsubscribe-retired",
            "lookup-queue-url",
            "delete-queue",
            "mark-draining",
            "tombstone-draining",
            "tombstone-gone"
        ]
    );
    let skips = [
        Skip::OtherSource("x".into()),
        Skip::OtherDetailType("x".into()),
        Skip::ForeignCluster("x".into()),
        Skip::ForeignGroup(None),
        Skip::NotActionable {
            last: crate::event::TaskStatus::Pending,
            desired: crate::event::TaskStatus::Stopped,
        },
        Skip::WrongFunction(Intent::Stopped),
        Skip::TooOld { age_seconds: 1 },
        Skip::AlreadyReady,
        Skip::Tombstoned(State::Gone),
        Skip::AlreadyDraining(State::Draining),
        Skip::AlreadyGone,
        Skip::OlderGeneration { writer: 1, record: 2 },
    ];
    let codes: Vec<&str> = skips.iter().map(Skip::code).collect();
    assert_eq!(
        codes,
        [
            "other-source",
            "other-detail-type",
            "foreign-cluster",
            "foreign-group",
            "not-actionable",
            "wrong-function",
            "too-old",
            "already-ready",
            "tombstoned",
            "already-draining",
            "already-gone",
            "older-generation"
        ]
    );
}

/// Every step, in declaration order.
const EVERY_STEP: [Step; 12] = [
    Step::Claim,
    Step::RecordIntent,
    Step::CreateQueue,
    Step::Subscribe,
    Step::MarkReady,
    Step::Unsubscribe,
    Step::UnsubscribeRetired,
    Step::LookupQueueUrl,
    Step::DeleteQueue,
    Step::MarkDraining,
    Step::Tombstone(State::Draining),
    Step::Tombstone(State::Gone),
];

/// The conditional writes of the record are exactly the steps that run alone, as barriers between stages.
#[test]
fn the_record_writes_are_the_barriers() {
    let writes: Vec<&str> = EVERY_STEP
        .into_iter()
        .filter(|s| s.is_write())
        .map(Step::as_str)
        .collect();
    assert_eq!(
        writes,
        [
            "claim",
            "record-intent",
            "mark-ready",
            "mark-draining",
            "tombstone-draining",
            "tombstone-gone"
        ]
    );
}
