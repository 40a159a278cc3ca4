//! The sweeper's subscription pass: which of the topic's subscriptions are orphans of ours.
//!
//! | subscription endpoint | record of its task | ECS | verdict |
//! |---|---|---|---|
//! | not `sqs`, another account or region, outside the prefix, not a task ID | | | never touched (not listed) |
//! | our queue | READY, names this subscription | any | healthy (not listed) |
//! | our queue | PROVISIONING | any | held `in-flight`: provisioning records it, or the sweeper finishes it |
//! | our queue | READY naming this topic as pending (an earlier attempt's ARN was never recorded) | any | held `in-flight`: the `converge` action records it or removes it |
//! | our queue, a configured topic | READY not naming this ARN (its recorded one was lost; or written before ARNs were recorded) | running / busy | held `in-flight`: the `converge` action records it as listed and converges its attributes (never subscribes again: the topic may refuse) |
//! | our queue | any record, quarantined (unreadable) | any | held `quarantined` |
//! | our queue | none | running / busy | held `in-flight`: the `provision` action subscribes (same ARN) and records it |
//! | our queue | READY of a newer settings generation, not naming it | any | held `older-generation`: a topic these settings retired may be one the newer settings want |
//! | our queue | READY not naming it (a retired topic, or the task is not running), DRAINING, GONE | any | `unsubscribe` once the record is older than the grace |
//! | our queue, existing, with tasksub's tags naming the task | none | stopped / unknown | `unsubscribe` once the queue is older than the grace |
//! | our queue, no longer existing | none | stopped / unknown | `unsubscribe` |
//! | our queue, existing, untagged or tagged for another task | none | stopped / unknown | held `untagged` / `foreign-queue` |
//!
//! Why this is safe: a subscription exists only after its topic is named in its task's record (the claim,
//! or a `record-intent` write, names every topic as pending before its first Subscribe), and the sweeper
//! lists subscriptions before it reads the records, so a subscription made by a writer in flight always
//! finds its topic named (pending) in a live record. A READY record that names neither the ARN nor the
//! topic as pending never comes to name it unless the topic is configured (a converge adopts it), so
//! removing it elsewhere is safe; MarkReady is the only write that records an ARN, and it expects the
//! revision it read.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::judge::proven;
use super::{
    grace_hold, grace_of, index_records, index_tasks, is_alive, ActionKind, EcsTask, Hold, Inventory, SeenQueue,
    SeenSubscription,
};
use crate::converge::{authority, Authority};
use crate::decide::Skip;
use crate::naming::queue_arn;
use crate::record::{Record, State};
use crate::settings::Settings;

/// A subscription to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// The subscription ARN.
    pub arn: String,
    /// The task whose queue it feeds.
    pub task_id: String,
    /// The queue name.
    pub queue: String,
    /// The record's state, if any.
    pub record_state: Option<State>,
}

/// A subscription left alone, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSubscription {
    /// The subscription ARN.
    pub arn: String,
    /// The task whose queue it feeds.
    pub task_id: String,
    /// Why.
    pub hold: Hold,
}

/// The verdict of the subscription pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionVerdict {
    /// Orphans to unsubscribe.
    pub unsubscribe: Vec<Unsubscribe>,
    /// Subscriptions of ours left alone for now.
    pub held: Vec<HeldSubscription>,
}

/// The task ID and queue name of an endpoint that is one of our queues by name and place (same account
/// and region as our queues, under the prefix, a task ID after it); `None` for anything else.
pub fn our_endpoint(s: &SeenSubscription, settings: &Settings) -> Option<(String, String)> {
    if s.protocol != "sqs" {
        return None;
    }
    let name = crate::naming::queue_name_from_arn(&s.endpoint)?;
    if queue_arn(&settings.home, &name) != s.endpoint {
        return None;
    }
    let id = name.task_id(&settings.queue.prefix)?;
    Some((id.as_str().to_owned(), name.as_str().to_owned()))
}

/// Judges every subscription of the inventory.
pub fn orphan_subscriptions(
    inv: &Inventory,
    settings: &Settings,
    grace_seconds: u64,
    now: DateTime<Utc>,
) -> SubscriptionVerdict {
    let pass = Pass {
        inv,
        settings,
        grace: grace_of(grace_seconds),
        now,
        records: index_records(&inv.records),
        queues: inv.queues.iter().map(|q| (q.name.as_str(), q)).collect(),
        tasks: index_tasks(&inv.tasks),
    };
    let mut out = SubscriptionVerdict::default();
    for s in &inv.subscriptions {
        let Some((task_id, queue)) = our_endpoint(s, settings) else {
            continue;
        };
        let record = pass.records.get(task_id.as_str()).copied();
        let Some(since) = pass.since(s, &task_id, &queue, record) else {
            continue;
        };
        let arn = s.arn.clone();
        match since.and_then(|t| pass.wait(t)) {
            Err(hold) => out.held.push(HeldSubscription { arn, task_id, hold }),
            Ok(()) => out.unsubscribe.push(Unsubscribe {
                arn,
                task_id,
                queue,
                record_state: record.map(|r| r.state),
            }),
        }
    }
    out
}

/// What one subscription pass knows, indexed.
struct Pass<'a> {
    inv: &'a Inventory,
    settings: &'a Settings,
    grace: Duration,
    now: DateTime<Utc>,
    records: BTreeMap<&'a str, &'a Record>,
    queues: BTreeMap<&'a str, &'a SeenQueue>,
    tasks: BTreeMap<&'a str, &'a EcsTask>,
}

impl Pass<'_> {
    /// The rows of the module table: `None` for a healthy subscription, a hold, or the time the grace
    /// period counts from (`None` inside: no time, no wait).
    fn since(
        &self,
        s: &SeenSubscription,
        id: &str,
        queue: &str,
        record: Option<&Record>,
    ) -> Option<Result<Option<DateTime<Utc>>, Hold>> {
        let topic = s.topic().unwrap_or_default();
        let alive = || is_alive(self.inv, &self.tasks, id);
        Some(match record {
            Some(r) if r.state == State::Ready && r.names(&s.arn) => return None,
            Some(r) if r.state == State::Provisioning => Err(Hold::InFlight),
            // An earlier attempt's subscription whose ARN was never recorded: the next converge records it
            // (a configured topic) or removes it (a retired one).
            Some(r) if r.state == State::Ready && r.pending.contains(topic) => Err(Hold::InFlight),
            // A live task's subscription to a configured topic that its record does not name (its recorded
            // one was lost, or the record predates recorded ARNs): the converge records it as listed (never subscribing again: the topic may refuse; Subscribe would answer
            // this same ARN), so it is never removed under a running task.
            Some(r) if r.state == State::Ready && self.settings.topic(topic).is_some() && alive() => {
                Err(Hold::InFlight)
            }
            // A live record a newer settings generation converged: what these (older) settings call a
            // retired topic may be one the newer settings want; left to the newer writer.
            Some(r) if r.state == State::Ready && authority(self.settings, r) == Authority::Older => {
                Err(Hold::Skip(Skip::OlderGeneration {
                    writer: self.settings.generation,
                    record: r.generation,
                }))
            }
            Some(r) => Ok(Some(r.updated_at)),
            None if self.inv.quarantined.contains_key(id) => Err(Hold::Quarantined(self.inv.quarantined[id].clone())),
            None if alive() => Err(Hold::InFlight),
            None => match self.queues.get(queue) {
                None => Ok(None),
                Some(q) => proven(self.inv.details.get(&q.name), id, self.settings)
                    .map(|()| self.inv.details[&q.name].created_at),
            },
        })
    }

    /// Held while `since` is younger than the grace period.
    fn wait(&self, since: Option<DateTime<Utc>>) -> Result<(), Hold> {
        match since.and_then(|t| grace_hold(ActionKind::RemoveOrphan, t, self.grace, self.now)) {
            Some(hold) => Err(hold),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tags;
    use crate::reconcile::QueueDetails;
    use crate::test_support::{now, settings};

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn sub(endpoint: &str, protocol: &str) -> SeenSubscription {
        SeenSubscription {
            arn: format!("arn:aws:sns:us-east-1:123456789012:fanout:{}", endpoint.len()),
            endpoint: endpoint.to_owned(),
            protocol: protocol.to_owned(),
        }
    }

    fn ours() -> String {
        format!("arn:aws:sqs:us-east-1:123456789012:tasksub-{ID}")
    }

    fn record(state: State, sub: Option<&str>, age_seconds: i64) -> Record {
        Record {
            task_id: ID.into(),
            task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{ID}"),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            group: None,
            queue_name: format!("tasksub-{ID}"),
            queue_arn: ours(),
            queue_url: None,
            subscriptions: sub
                .map(|a| ("arn:aws:sns:us-east-1:123456789012:fanout".to_owned(), a.to_owned()))
                .into_iter()
                .collect(),
            state,
            version: 1,
            created_at: now(),
            updated_at: now() - Duration::seconds(age_seconds),
            expires_at: None,
            revision: 2,
            pending: Default::default(),
            refused: Default::default(),
            generation: 0,
            settings_hash: None,
            watch: Default::default(),
            client_filters: Default::default(),
        }
    }

    fn queue(tags: &[(&str, String)], age_seconds: i64) -> (SeenQueue, QueueDetails) {
        let name = format!("tasksub-{ID}");
        let q = SeenQueue {
            url: format!("http://sqs/{name}"),
            name,
        };
        let d = QueueDetails {
            created_at: Some(now() - Duration::seconds(age_seconds)),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        };
        (q, d)
    }

    fn judge(inv: Inventory) -> (Vec<String>, Vec<&'static str>) {
        let v = orphan_subscriptions(&inv, &settings(), 600, now());
        let codes = v.held.iter().map(|h| h.hold.code()).collect();
        (v.unsubscribe.into_iter().map(|u| u.arn).collect(), codes)
    }

    fn with(s: SeenSubscription, records: Vec<Record>, queue: Option<(SeenQueue, QueueDetails)>) -> Inventory {
        let mut inv = Inventory {
            subscriptions: vec![s],
            records,
            ..Inventory::default()
        };
        if let Some((q, d)) = queue {
            inv.details.insert(q.name.clone(), d);
            inv.queues.push(q);
        }
        inv
    }

    #[test]
    fn endpoints_that_are_not_ours_are_never_touched() {
        let other_account = format!("arn:aws:sqs:us-east-1:999999999999:tasksub-{ID}");
        let other_region = format!("arn:aws:sqs:eu-west-1:123456789012:tasksub-{ID}");
        for s in [
            sub(&ours(), "lambda"),
            sub("https://example.invalid/hook", "https"),
            sub(&other_account, "sqs"),
            sub(&other_region, "sqs"),
            sub("arn:aws:sqs:us-east-1:123456789012:orders", "sqs"),
            sub("arn:aws:sqs:us-east-1:123456789012:tasksub-not.a.task", "sqs"),
        ] {
            assert_eq!(judge(with(s.clone(), vec![], None)), (vec![], vec![]), "{s:?}");
        }
    }

    #[test]
    fn a_subscription_the_ready_record_names_is_healthy() {
        let s = sub(&ours(), "sqs");
        let inv = with(s.clone(), vec![record(State::Ready, Some(&s.arn), 9999)], None);
        assert_eq!(judge(inv), (vec![], vec![]));
    }

    #[test]
    fn unnamed_subscriptions_of_stopping_or_gone_tasks_go_after_the_grace() {
        let s = sub(&ours(), "sqs");
        for (state, named) in [
            (State::Ready, Some("arn:other")),
            (State::Draining, None),
            (State::Gone, None),
        ] {
            let old = with(s.clone(), vec![record(state, named, 601)], None);
            assert_eq!(judge(old), (vec![s.arn.clone()], vec![]), "{state}");
            let young = with(s.clone(), vec![record(state, named, 5)], None);
            assert_eq!(judge(young), (vec![], vec!["grace"]), "{state}");
        }
    }

    #[test]
    fn the_grace_period_is_exact_and_says_when_it_ends() {
        let s = sub(&ours(), "sqs");
        let inv = |age| with(s.clone(), vec![record(State::Draining, None, age)], None);
        // exactly the grace old: due
        assert_eq!(judge(inv(600)), (vec![s.arn.clone()], vec![]));
        // a second younger: held until the record's update plus the grace
        let v = orphan_subscriptions(&inv(599), &settings(), 600, now());
        let until = now() - Duration::seconds(599) + Duration::seconds(600);
        assert_eq!(
            v.held[0].hold,
            Hold::Grace {
                kind: ActionKind::RemoveOrphan,
                until
            }
        );
        // a long grace is honoured as given (no wrap-around in the overflow guard)
        let v = orphan_subscriptions(&inv(9_000), &settings(), 10_000, now());
        assert!(v.unsubscribe.is_empty() && v.held.len() == 1, "{v:?}");
        // an absurd grace holds everything, and does not panic
        let v = orphan_subscriptions(&inv(9_000), &settings(), u64::MAX, now());
        assert!(v.unsubscribe.is_empty(), "{v:?}");
    }

    #[test]
    fn provisioning_and_running_tasks_keep_their_subscription() {
        let s = sub(&ours(), "sqs");
        let inv = with(s.clone(), vec![record(State::Provisioning, None, 9999)], None);
        assert_eq!(judge(inv), (vec![], vec!["in-flight"]));
        let mut inv = with(s.clone(), vec![], None);
        inv.opaque.insert(ID.into());
        assert_eq!(judge(inv), (vec![], vec!["in-flight"]));
        // a READY record naming the topic as pending: an earlier attempt's ARN, recorded by the converge
        let mut pending = record(State::Ready, None, 9999);
        pending
            .pending
            .insert("arn:aws:sns:us-east-1:123456789012:fanout".into());
        assert_eq!(judge(with(s.clone(), vec![pending], None)), (vec![], vec!["in-flight"]));
        // a running task's READY record not naming this subscription of a configured topic (its recorded
        // one was lost, or it predates recorded ARNs): the converge adopts it, never removed
        let running = |r: Record| {
            let mut inv = with(s.clone(), vec![r], None);
            inv.opaque.insert(ID.into());
            judge(inv)
        };
        assert_eq!(running(record(State::Ready, None, 9999)), (vec![], vec!["in-flight"]));
        assert_eq!(
            running(record(State::Ready, Some("arn:stale"), 9999)),
            (vec![], vec!["in-flight"])
        );
        // ...but a task ECS does not say runs keeps nothing its record does not name
        let legacy = with(s.clone(), vec![record(State::Ready, None, 9999)], None);
        assert_eq!(judge(legacy), (vec![s.arn.clone()], vec![]));
        // a retired topic's subscription that the record does not name goes, even under a running task
        let retired = sub(&ours(), "sqs");
        let mut retired = retired;
        retired.arn = "arn:aws:sns:us-east-1:123456789012:retired:1".into();
        let mut inv = with(retired.clone(), vec![record(State::Ready, None, 9999)], None);
        inv.opaque.insert(ID.into());
        assert_eq!(judge(inv), (vec![retired.arn.clone()], vec![]));
        // ...unless a newer settings generation converged the record: the topic these settings retired
        // may be one the newer settings want (a deploy half done, an old sweeper still running)
        let mut newer = record(State::Ready, None, 9999);
        newer.generation = settings().generation + 1;
        let mut inv = with(retired.clone(), vec![newer.clone()], None);
        inv.opaque.insert(ID.into());
        assert_eq!(judge(inv), (vec![], vec!["older-generation"]));
        // a teardown's record of any generation: the subscription goes
        newer.state = State::Draining;
        assert_eq!(
            judge(with(retired.clone(), vec![newer], None)),
            (vec![retired.arn], vec![])
        );
    }

    #[test]
    fn a_quarantined_task_keeps_its_subscription() {
        let s = sub(&ours(), "sqs");
        let mut inv = with(s, vec![], None);
        inv.quarantined.insert(ID.into(), "malformed".into());
        assert_eq!(judge(inv), (vec![], vec!["quarantined"]));
    }

    #[test]
    fn record_less_subscriptions_go_only_when_the_queue_is_gone_or_proven_ours() {
        let s = sub(&ours(), "sqs");
        // The queue is gone: nothing can claim the subscription.
        assert_eq!(judge(with(s.clone(), vec![], None)), (vec![s.arn.clone()], vec![]));
        let task_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{ID}");
        let tagged = queue(
            &[(tags::TASK_ARN, task_arn.clone()), (tags::STACK, "tasksub".into())],
            601,
        );
        assert_eq!(
            judge(with(s.clone(), vec![], Some(tagged))),
            (vec![s.arn.clone()], vec![])
        );
        let young = queue(
            &[(tags::TASK_ARN, task_arn.clone()), (tags::STACK, "tasksub".into())],
            5,
        );
        assert_eq!(judge(with(s.clone(), vec![], Some(young))), (vec![], vec!["grace"]));
        let untagged = queue(&[("team", "payments".into())], 9999);
        assert_eq!(
            judge(with(s.clone(), vec![], Some(untagged))),
            (vec![], vec!["untagged"])
        );
        let other = "arn:aws:ecs:us-east-1:123456789012:task/prod/ffffffffffffffffffffffffffffffff".to_owned();
        let foreign = queue(&[(tags::TASK_ARN, other), (tags::STACK, "tasksub".into())], 9999);
        assert_eq!(
            judge(with(s.clone(), vec![], Some(foreign))),
            (vec![], vec!["foreign-queue"])
        );
        // another deployment's queue (or one made before stack tags) is not ours to unsubscribe
        let other_stack = queue(
            &[
                (tags::TASK_ARN, task_arn.clone()),
                (tags::STACK, "tasksub-staging".into()),
            ],
            9999,
        );
        assert_eq!(
            judge(with(s.clone(), vec![], Some(other_stack))),
            (vec![], vec!["other-stack"])
        );
        let no_stack = queue(&[(tags::TASK_ARN, task_arn)], 9999);
        assert_eq!(judge(with(s, vec![], Some(no_stack))), (vec![], vec!["other-stack"]));
    }
}
