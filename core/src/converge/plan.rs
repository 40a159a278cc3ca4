//! Which topics a step resolves, with which goal, and what each outcome leaves in the record.
//!
//! | step | topics | goal |
//! |---|---|---|
//! | `subscribe` | configured topics without a recorded ARN (unless refused and not yet due), and, when verifying, every configured topic | want, with the topic's attributes |
//! | `unsubscribe-retired` | topics the record names (recorded or pending) that are no longer configured | gone |
//! | `unsubscribe` (teardown) | every topic the record names, whatever the settings say | gone |
//!
//! A topic is *pending* when an earlier attempt may have made its subscription without the ARN being
//! recorded; only then does a refusal lead to a look at the topic's listing, and only then is a
//! subscription that Subscribe answers read back to converge its attributes (it may predate the
//! settings).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::retry_due;
use super::topic::{Goal, TopicOutcome};
use crate::policy::subscription_attributes;
use crate::record::{Record, Refusal};
use crate::settings::Settings;

/// One topic a step resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTarget {
    /// The topic ARN.
    pub topic: String,
    /// What its subscription should end as.
    pub goal: Goal,
    /// The subscription ARN the record names.
    pub known: Option<String>,
    /// An earlier attempt may have made a subscription whose ARN is not recorded.
    pub pending: bool,
    /// Read the subscription's attributes and converge them.
    pub verify: bool,
}

/// The configured topics a live task should be subscribed to now: the subscribe step's targets.
/// `inherited`: the topics pending in the stored record before this invocation (their earlier attempts'
/// outcome is unknown). `verify`: read and converge known subscriptions too.
pub fn subscribe_targets(
    record: &Record,
    inherited: &BTreeSet<String>,
    settings: &Settings,
    now: DateTime<Utc>,
    verify: bool,
) -> Vec<TopicTarget> {
    settings
        .topics
        .iter()
        .filter_map(|t| {
            let topic = t.arn.as_str();
            let known = record.subscriptions.get(topic).cloned();
            let pending = inherited.contains(topic);
            let refused_waiting = record.refused.get(topic).is_some_and(|r| !retry_due(r, now));
            let wanted = match &known {
                Some(_) => verify,
                None => pending || !refused_waiting,
            };
            wanted.then(|| TopicTarget {
                topic: topic.to_owned(),
                goal: Goal::Want(subscription_attributes(t, record.created_at)),
                known,
                pending,
                verify,
            })
        })
        .collect()
}

/// The topics the record names that are no longer configured: `unsubscribe-retired`'s targets.
pub fn retire_targets(record: &Record, settings: &Settings) -> Vec<TopicTarget> {
    gone_targets(record, |t| settings.topic(t).is_none())
}

/// Every topic the record names with a subscription that may exist: a teardown's targets.
pub fn teardown_targets(record: &Record) -> Vec<TopicTarget> {
    gone_targets(record, |_| true)
}

fn gone_targets(record: &Record, which: impl Fn(&str) -> bool) -> Vec<TopicTarget> {
    record
        .topics()
        .into_iter()
        .filter(|t| which(t) && record.may_subscribe(t))
        .map(|t| TopicTarget {
            topic: t.to_owned(),
            goal: Goal::Gone,
            known: record.subscriptions.get(t).cloned(),
            pending: record.pending.contains(t),
            verify: false,
        })
        .collect()
}

/// The configured topics a live record does not name at all: they must be written as pending (the
/// intent) before their first Subscribe, so a crash never leaves an unnamed subscription.
pub fn desired_topics<'a>(targets: &'a [TopicTarget], record: &Record) -> Vec<&'a str> {
    targets
        .iter()
        .filter(|t| t.known.is_none() && !record.pending.contains(&t.topic))
        .map(|t| t.topic.as_str())
        .collect()
}

/// What a live record lacks compared with the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Topics to name as pending before subscribing (a `record-intent` write).
    pub intent: Vec<String>,
    /// The subscribe step has targets.
    pub subscribe: bool,
    /// The record names topics no longer configured.
    pub retire: bool,
    /// The record was converged under other settings (or never): read the attributes and converge them.
    pub stale: bool,
}

impl Drift {
    /// Nothing to do.
    pub fn is_none(&self) -> bool {
        self.intent.is_empty() && !self.subscribe && !self.retire && !self.stale
    }
}

/// The drift of a live record: `verify` forces a look at every known subscription (the sweeper saw one
/// missing, or audits).
pub fn drift(record: &Record, settings: &Settings, now: DateTime<Utc>, verify: bool) -> Drift {
    let stale = record.settings_hash.as_deref() != Some(settings.fingerprint().as_str());
    let targets = subscribe_targets(record, &record.pending, settings, now, stale || verify);
    Drift {
        intent: desired_topics(&targets, record)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        subscribe: !targets.is_empty(),
        retire: !retire_targets(record, settings).is_empty(),
        stale,
    }
}

/// What a topic's outcome leaves in the record: the ARN of a subscription that exists; a refusal with
/// its count and time (the topic stays pending when whether a subscription exists is unknown); nothing
/// for a subscription that is gone.
pub fn record_outcome(record: &mut Record, topic: &str, outcome: &TopicOutcome, now: DateTime<Utc>) {
    let refuse = |record: &mut Record, kind: &str, message: &str| {
        let previous = record.refused.get(topic);
        let refusal = Refusal {
            kind: kind.to_owned(),
            message: message.to_owned(),
            since: previous.map_or(now, |p| p.since),
            last_at: now,
            attempts: previous.map_or(0, |p| p.attempts).saturating_add(1),
        };
        record.refused.insert(topic.to_owned(), refusal);
    };
    match outcome {
        TopicOutcome::Subscribed(arn) => {
            record.subscriptions.insert(topic.to_owned(), arn.clone());
            record.pending.remove(topic);
            record.refused.remove(topic);
        }
        TopicOutcome::Refused(kind, message) => {
            record.subscriptions.remove(topic);
            record.pending.remove(topic);
            refuse(record, kind.as_str(), message);
        }
        TopicOutcome::Gone => {
            record.subscriptions.remove(topic);
            record.pending.remove(topic);
            record.refused.remove(topic);
            // A writer in flight may still subscribe it (it read the record before): keep listing it.
            record.watch.insert(topic.to_owned());
        }
        TopicOutcome::Unverified(kind, message) => {
            record.subscriptions.remove(topic);
            record.pending.insert(topic.to_owned());
            refuse(record, kind.as_str(), message);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Duration;

    use super::*;
    use crate::outcome::ErrorKind;
    use crate::record::State;
    use crate::test_support::{now, record, settings_with_topics, TOPIC};

    const FLAGS: &str = "arn:aws:sns:eu-west-1:210987654321:flags";
    const OLD: &str = "arn:aws:sns:us-east-1:123456789012:retired";

    fn refusal(minutes_ago: i64, attempts: u32) -> Refusal {
        Refusal {
            kind: "access-denied".into(),
            message: "no".into(),
            since: now() - Duration::days(1),
            last_at: now() - Duration::minutes(minutes_ago),
            attempts,
        }
    }

    fn names(targets: &[TopicTarget]) -> Vec<(&str, Option<&str>, bool)> {
        targets
            .iter()
            .map(|t| (t.topic.as_str(), t.known.as_deref(), t.pending))
            .collect()
    }

    #[test]
    fn the_subscribe_step_resolves_what_is_not_known_and_what_is_due() {
        let s = settings_with_topics(&[TOPIC, FLAGS]);
        let mut r = record(State::Ready);
        let none = BTreeSet::new();
        // nothing recorded: both topics
        assert_eq!(
            names(&subscribe_targets(&r, &none, &s, now(), false)),
            [(TOPIC, None, false), (FLAGS, None, false)]
        );
        // one recorded: trusted unless verifying
        r.subscriptions.insert(TOPIC.into(), "s1".into());
        assert_eq!(
            names(&subscribe_targets(&r, &none, &s, now(), false)),
            [(FLAGS, None, false)]
        );
        assert_eq!(
            names(&subscribe_targets(&r, &none, &s, now(), true)),
            [(TOPIC, Some("s1"), false), (FLAGS, None, false)]
        );
        // a refused topic waits for its backoff, unless an earlier attempt's subscription may exist
        r.refused.insert(FLAGS.into(), refusal(1, 1));
        assert!(subscribe_targets(&r, &none, &s, now(), false).is_empty());
        let inherited = BTreeSet::from([FLAGS.to_owned()]);
        assert_eq!(
            names(&subscribe_targets(&r, &inherited, &s, now(), false)),
            [(FLAGS, None, true)]
        );
        r.refused.insert(FLAGS.into(), refusal(5, 1));
        assert_eq!(
            names(&subscribe_targets(&r, &none, &s, now(), false)),
            [(FLAGS, None, false)]
        );
        // a retired topic is never a subscribe target
        r.subscriptions.insert(OLD.into(), "old".into());
        assert!(subscribe_targets(&r, &none, &s, now(), true)
            .iter()
            .all(|t| t.topic != OLD));
        // wanted attributes are the topic's, replay counted from the record's creation
        let t = &subscribe_targets(&r, &none, &s, now(), false)[0];
        assert!(matches!(&t.goal, Goal::Want(a) if a["RawMessageDelivery"] == "true"));
    }

    #[test]
    fn retired_and_teardown_targets_name_every_subscription_that_may_exist() {
        let s = settings_with_topics(&[TOPIC]);
        let mut r = record(State::Ready);
        r.subscriptions = BTreeMap::from([(TOPIC.into(), "s1".into()), (OLD.into(), "s2".into())]);
        r.pending.insert(FLAGS.into());
        r.refused
            .insert("arn:aws:sns:us-east-1:123456789012:denied".into(), refusal(1, 1));
        assert_eq!(
            names(&retire_targets(&r, &s)),
            [(FLAGS, None, true), (OLD, Some("s2"), false)]
        );
        assert_eq!(
            names(&teardown_targets(&r)),
            [
                (FLAGS, None, true),
                (TOPIC, Some("s1"), false),
                (OLD, Some("s2"), false)
            ],
            "a refused topic without a pending attempt has nothing to remove"
        );
        assert!(teardown_targets(&r).iter().all(|t| t.goal == Goal::Gone));
    }

    #[test]
    fn drift_names_what_a_live_record_lacks() {
        let s = settings_with_topics(&[TOPIC, FLAGS]);
        let mut r = record(State::Ready);
        r.subscriptions = BTreeMap::from([(TOPIC.into(), "s1".into()), (FLAGS.into(), "s2".into())]);
        r.settings_hash = Some(s.fingerprint());
        assert!(drift(&r, &s, now(), false).is_none(), "in sync");
        let verify = drift(&r, &s, now(), true);
        assert!(
            verify.subscribe && !verify.stale && verify.intent.is_empty(),
            "{verify:?}"
        );
        // a topic added: it must be named first
        let three = settings_with_topics(&[TOPIC, FLAGS, OLD]);
        let d = drift(&r, &three, now(), false);
        assert_eq!(d.intent, [OLD]);
        assert!(d.subscribe && d.stale && !d.retire);
        // a topic removed
        let one = settings_with_topics(&[TOPIC]);
        let d = drift(&r, &one, now(), false);
        assert!(d.retire && d.stale && d.intent.is_empty());
        // the settings changed under the same topics (another attribute): stale, verify everything
        let mut raw = s.clone();
        raw.topics[1].subscription.raw_delivery = false;
        let d = drift(&r, &raw, now(), false);
        assert!(d.stale && d.subscribe && d.intent.is_empty());
        // a pending topic is resolved without a new intent
        r.subscriptions.remove(FLAGS);
        r.pending.insert(FLAGS.into());
        let d = drift(&r, &s, now(), false);
        assert!(d.subscribe && d.intent.is_empty());
        // a refused topic waits, then is named again before its retry
        r.pending.clear();
        r.refused.insert(FLAGS.into(), refusal(1, 1));
        assert!(drift(&r, &s, now(), false).is_none());
        r.refused.insert(FLAGS.into(), refusal(6, 1));
        assert_eq!(drift(&r, &s, now(), false).intent, [FLAGS]);
    }

    #[test]
    fn outcomes_leave_the_record_naming_exactly_what_may_exist() {
        let mut r = record(State::Provisioning);
        r.pending = BTreeSet::from([TOPIC.to_owned(), FLAGS.to_owned(), OLD.to_owned()]);
        record_outcome(&mut r, TOPIC, &TopicOutcome::Subscribed("s1".into()), now());
        record_outcome(
            &mut r,
            FLAGS,
            &TopicOutcome::Refused(ErrorKind::AccessDenied, "denied".into()),
            now(),
        );
        record_outcome(
            &mut r,
            OLD,
            &TopicOutcome::Unverified(ErrorKind::AccessDenied, "unlistable".into()),
            now(),
        );
        assert_eq!(r.subscriptions, BTreeMap::from([(TOPIC.to_owned(), "s1".to_owned())]));
        assert_eq!(r.pending, BTreeSet::from([OLD.to_owned()]), "unknown stays pending");
        assert_eq!(
            (r.refused[FLAGS].attempts, r.refused[FLAGS].kind.as_str()),
            (1, "access-denied")
        );
        assert_eq!(r.refused[OLD].message, "unlistable");
        // a second refusal counts on, keeps its first time
        let later = now() + Duration::minutes(10);
        record_outcome(
            &mut r,
            FLAGS,
            &TopicOutcome::Refused(ErrorKind::Quota, "full".into()),
            later,
        );
        let f = &r.refused[FLAGS];
        assert_eq!(
            (f.attempts, f.since, f.last_at, f.kind.as_str()),
            (2, now(), later, "quota")
        );
        // lifted: subscribed, the refusal forgotten; gone: nothing left
        record_outcome(&mut r, FLAGS, &TopicOutcome::Subscribed("s2".into()), later);
        assert!(!r.refused.contains_key(FLAGS) && r.subscriptions[FLAGS] == "s2");
        record_outcome(&mut r, OLD, &TopicOutcome::Gone, later);
        record_outcome(&mut r, TOPIC, &TopicOutcome::Gone, later);
        assert!(r.pending.is_empty() && !r.refused.contains_key(OLD) && !r.subscriptions.contains_key(TOPIC));
        assert_eq!(
            r.watch,
            BTreeSet::from([OLD.to_owned(), TOPIC.to_owned()]),
            "what went stays watched"
        );
    }
}
