//! What one schedule's world is made of, drawn from its seed: how the task's life ends, the settings
//! before and after a deploy (topics added, removed or swapped, a topic's subscription attributes
//! changed; generations ordered or not), and which other actors may act (topic owners refusing, lifting
//! a refusal, unsubscribing the task, deleting and re-creating a topic; an operator deleting the queue by
//! hand; an unreadable bystander record). And the invariants at the end, checked against what exists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use tasksub_core::converge::attrs::{queue_diff, subscription_diff};
use tasksub_core::outcome::ErrorKind;
use tasksub_core::policy;
use tasksub_core::record::State;
use tasksub_core::settings::{vars, Settings};
use tasksub_functions::fake::Fake;

use crate::events::{Task, ACCOUNT, REGION};
use crate::world::settings_map;

/// Queue name prefix of every schedule.
pub const PREFIX: &str = "tasksub-";

/// Every topic a schedule may use: at home, in another region, in another account.
pub fn universe() -> [String; 3] {
    [
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"),
        "arn:aws:sns:eu-west-1:123456789012:flags".to_owned(),
        "arn:aws:sns:us-east-1:210987654321:events".to_owned(),
    ]
}

/// The fixed start of every schedule's clock.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// How the task's life ends in a schedule (what ECS says at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Never stopped: only start events.
    Running,
    /// Stop initiated, STOPPED never delivered.
    Stopping,
    /// Stopped.
    Stopped,
}

/// Settings of these topics (each with the given subscription overrides), this generation.
pub fn settings_of(topics: &[&str], overrides: &str, generation: u64) -> Settings {
    let mut m = settings_map(topics[0], "records", PREFIX);
    m.remove(vars::TOPIC_ARN);
    m.insert(vars::TOPIC_ARNS.to_owned(), topics.join(","));
    if !overrides.is_empty() {
        m.insert(vars::TOPIC_SETTINGS.to_owned(), overrides.to_owned());
    }
    m.insert(vars::SETTINGS_GENERATION.to_owned(), generation.to_string());
    Settings::from_map(&m).expect("settings")
}

/// The two settings versions of a schedule: `old` runs first; `new` is deployed at some point (they are
/// the same when the settings do not change).
#[derive(Debug, Clone)]
pub struct Versions {
    /// Before the deploy.
    pub old: Settings,
    /// After it: the final settings.
    pub new: Settings,
}

impl Versions {
    /// One version, never changed (the base explorer: `topics` of the universe).
    pub fn fixed(topics: usize) -> Self {
        let all = universe();
        let names: Vec<&str> = all[..topics.clamp(1, 3)].iter().map(String::as_str).collect();
        let s = settings_of(&names, "", 0);
        Self { old: s.clone(), new: s }
    }

    /// A settings change drawn from the seed: topics added, removed or swapped, or a topic's
    /// subscription attributes changed (raw delivery off with a filter policy). Generations 1 then 2,
    /// or both 0 (unordered) in one schedule out of five.
    pub fn drawn(rng: &mut fastrand::Rng) -> Self {
        let all = universe();
        let pick = |rng: &mut fastrand::Rng| -> Vec<&str> {
            let mut v: Vec<&str> = all.iter().map(String::as_str).filter(|_| rng.bool()).collect();
            if v.is_empty() {
                v.push(&all[rng.usize(0..3)]);
            }
            v
        };
        let old_topics = pick(rng);
        let (new_topics, overrides) = if rng.u8(0..4) == 0 {
            let name = old_topics[0].rsplit(':').next().unwrap_or_default().to_owned();
            let o = format!(r#"{{"{name}":{{"rawDelivery":false,"filterPolicy":{{"kind":["invalidate"]}}}}}}"#);
            (old_topics.clone(), o)
        } else {
            (pick(rng), String::new())
        };
        let (g_old, g_new) = if rng.u8(0..5) == 0 { (0, 0) } else { (1, 2) };
        Self {
            old: settings_of(&old_topics, "", g_old),
            new: settings_of(&new_topics, &overrides, g_new),
        }
    }

    /// True when the two versions differ.
    pub fn change(&self) -> bool {
        self.old.fingerprint() != self.new.fingerprint()
    }
}

/// Which version a (re)started invocation runs, as a deploy goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deploy {
    /// Only the old version runs.
    #[default]
    Before,
    /// Both run (old instances, a function updated before another, a stale CLI).
    Both,
    /// Only the new version runs.
    After,
}

/// The topics refusing the task at the end, by how (access also refuses the listing; a quota does not;
/// a deleted topic is not found).
pub fn refusing(fake: &Fake) -> BTreeMap<String, ErrorKind> {
    universe()
        .into_iter()
        .filter_map(|t| fake.refusal(&t).map(|k| (t, k)))
        .collect()
}

/// The invariants at quiescence after one sweep under the final settings. `answered`: subscription ARNs
/// some invocation was told (a subscription whose ARN nobody ever learnt, on a topic that refuses its
/// listing, cannot be found by anyone: tolerated, and counted by the caller).
pub fn check(fake: &Fake, task: &Task, fate: Fate, settings: &Settings, answered: &BTreeSet<String>) -> Vec<String> {
    let mut v = Vec::new();
    let queue = format!("{PREFIX}{}", task.id);
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}");
    let refusing = refusing(fake);
    let unreachable = |t: &str, arn: &str| refusing.get(t) == Some(&ErrorKind::AccessDenied) && !answered.contains(arn);
    let ours: Vec<(String, tasksub_functions::fake::FakeSubscription)> = fake
        .subscriptions()
        .into_iter()
        .filter(|(_, s)| s.endpoint == queue_arn)
        .collect();
    let on = |t: &str| ours.iter().filter(|(_, s)| s.topic_arn == t).collect::<Vec<_>>();
    let record = fake.record(&task.id);
    let state = record.as_ref().map(|r| r.state);
    let queue_now = fake.queues().into_iter().find(|q| q.name == queue);
    let gone_all = |v: &mut Vec<String>, what: &str| {
        for (arn, s) in &ours {
            if !unreachable(&s.topic_arn, arn) {
                v.push(format!("leaked subscription of a {what} task: {arn}"));
            }
        }
    };
    match fate {
        Fate::Running => {
            if state != Some(State::Ready) {
                v.push(format!("a task never stopped ends {state:?}, not READY"));
            }
            let Some(r) = record else { return v };
            match &queue_now {
                None => v.push("a live task has no queue".into()),
                Some(q) => {
                    let desired = policy::queue_attributes(settings, &queue_arn);
                    let diff = queue_diff(&desired, &q.attributes);
                    if !diff.is_empty() {
                        v.push(format!(
                            "a live task's queue differs from its desired state in {:?}",
                            diff.keys()
                        ));
                    }
                }
            }
            for t in universe() {
                let subs = on(&t);
                let desired = settings.topic(&t);
                match (desired, subs.as_slice()) {
                    (Some(topic), [(arn, s)]) => {
                        if r.subscriptions.get(&t) != Some(arn) {
                            v.push(format!(
                                "{t}: a live task's subscription {arn} is not the one its record names"
                            ));
                        }
                        let want = policy::subscription_attributes(topic, r.created_at);
                        let diff = subscription_diff(&want, &s.attributes);
                        if !diff.is_empty() {
                            v.push(format!("{t}: a live task's subscription differs in {diff:?}"));
                        }
                    }
                    (Some(_), []) if refusing.contains_key(&t) => {
                        if !r.refused.contains_key(&t) {
                            v.push(format!("{t} refuses, and the live task's record does not say so"));
                        }
                    }
                    (Some(_), []) => v.push(format!("a live task lost {t}, a topic that accepts it")),
                    (None, []) => {}
                    (None, subs) => {
                        for (arn, s) in subs {
                            if !unreachable(&s.topic_arn, arn) {
                                v.push(format!("{t} is not configured, and the live task keeps {arn}"));
                            }
                        }
                    }
                    (Some(_), many) => v.push(format!("{t}: {} subscriptions", many.len())),
                }
            }
        }
        Fate::Stopping => {
            if state != Some(State::Draining) {
                v.push(format!("a stopping task ends {state:?}, not DRAINING"));
            }
            gone_all(&mut v, "stopping");
        }
        Fate::Stopped => {
            if state != Some(State::Gone) {
                v.push(format!("a stopped task ends {state:?}, not GONE"));
            }
            gone_all(&mut v, "stopped");
            if queue_now.is_some() {
                v.push("leaked queue of a stopped task".into());
            }
        }
    }
    v
}

/// The clock of the final sweep: past every refused topic's backoff and every grace.
pub fn final_clock(clock: DateTime<Utc>) -> DateTime<Utc> {
    clock + tasksub_core::converge::RETRY_MAX + Duration::hours(1)
}
