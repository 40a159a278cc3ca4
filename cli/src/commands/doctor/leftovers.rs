//! What the table, the queues and the topic's subscriptions say together: queues without a record,
//! subscriptions to our queues that no live record names, live records whose queue is missing. Pure:
//! the probes gather, these judge.

use std::collections::{BTreeMap, BTreeSet};

use tasksub_core::reconcile::subscriptions::our_endpoint;
use tasksub_core::reconcile::SeenSubscription;
use tasksub_core::record::{Record, State};
use tasksub_core::settings::Settings;

use super::Check;

/// How many names a finding prints.
pub const NAMES_SHOWN: usize = 20;

const SWEEP_FIX: &str =
    "review with `tasksub sweep --dry-run`, then remove with `tasksub sweep` (the scheduled sweeper does the same)";

fn listed(names: &[String]) -> String {
    let mut s = names.iter().take(NAMES_SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > NAMES_SHOWN {
        s.push_str(&format!(", and {} more", names.len() - NAMES_SHOWN));
    }
    s
}

/// Queues under the prefix without any record: left by a crash or a deleted record.
pub fn orphan_queues(records: &[Record], queues: &[String], settings: &Settings) -> Check {
    let prefix = settings.queue.prefix.as_str();
    let recorded: BTreeSet<&str> = records.iter().map(|r| r.queue_name.as_str()).collect();
    let orphans: Vec<String> = queues
        .iter()
        .filter(|n| n.starts_with(prefix) && !recorded.contains(n.as_str()))
        .cloned()
        .collect();
    if orphans.is_empty() {
        let detail = format!(
            "none: every one of the {} queue(s) under {prefix:?} has a record",
            queues.len()
        );
        return Check::ok("orphan queues", detail);
    }
    let detail = format!(
        "{} queue(s) under {prefix:?} have no record: {}",
        orphans.len(),
        listed(&orphans)
    );
    Check::problem("orphan queues", detail, SWEEP_FIX)
}

/// Subscriptions to our queues that no READY record names (a PROVISIONING record may still record its
/// own): they feed queues nobody consumes, and with a filter policy count toward the topic's quota.
pub fn orphan_subscriptions(records: &[Record], subscriptions: &[SeenSubscription], settings: &Settings) -> Check {
    let by_task: BTreeMap<&str, &Record> = records.iter().map(|r| (r.task_id.as_str(), r)).collect();
    let orphans: Vec<String> = subscriptions
        .iter()
        .filter_map(|s| {
            let (id, _) = our_endpoint(s, settings)?;
            let live = by_task
                .get(id.as_str())
                .is_some_and(|r| r.state == State::Provisioning || (r.state == State::Ready && r.names(&s.arn)));
            (!live).then(|| s.arn.clone())
        })
        .collect();
    let ours = subscriptions
        .iter()
        .filter(|s| our_endpoint(s, settings).is_some())
        .count();
    if orphans.is_empty() {
        let detail = format!("none: every one of the {ours} subscription(s) to our queues is named by a live record");
        return Check::ok("orphan subscriptions", detail);
    }
    let detail = format!(
        "{} subscription(s) to our queues are named by no live record: {}",
        orphans.len(),
        listed(&orphans)
    );
    Check::problem("orphan subscriptions", detail, SWEEP_FIX)
}

/// Live records (PROVISIONING older than a provisioning takes, READY, DRAINING) whose queue does not
/// exist: a READY task there receives nothing.
pub fn records_without_queue(records: &[Record], queues: &[String]) -> Check {
    let existing: BTreeSet<&str> = queues.iter().map(String::as_str).collect();
    let missing: Vec<String> = records
        .iter()
        .filter(|r| matches!(r.state, State::Ready | State::Draining) && !existing.contains(r.queue_name.as_str()))
        .map(|r| format!("{} ({})", r.task_id, r.state))
        .collect();
    if missing.is_empty() {
        return Check::ok(
            "records without queue",
            "none: every READY or DRAINING record's queue exists",
        );
    }
    let detail = format!(
        "{} live record(s) name a queue that does not exist: {}",
        missing.len(),
        listed(&missing)
    );
    Check::problem(
        "records without queue",
        detail,
        "if the task still runs, its provisioning must be redone: `tasksub sweep` tears down records of stopped tasks; for a running one, delete its record and let the sweeper provision it",
    )
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn settings() -> Settings {
        let m: BTreeMap<String, String> = [
            ("TASKSUB_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:fanout"),
            ("TASKSUB_ACCOUNT_ID", "123456789012"),
            ("AWS_REGION", "us-east-1"),
            ("TASKSUB_TABLE", "records"),
            ("TASKSUB_CLUSTERS", "prod"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Settings::from_map(&m).expect("settings")
    }

    fn record(state: State, sub: Option<&str>) -> Record {
        let now = chrono::Utc::now();
        Record {
            task_id: ID.into(),
            task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{ID}"),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            group: None,
            queue_name: format!("tasksub-{ID}"),
            queue_arn: format!("arn:aws:sqs:us-east-1:123456789012:tasksub-{ID}"),
            queue_url: None,
            subscriptions: sub
                .map(|a| ("arn:aws:sns:us-east-1:123456789012:fanout".to_owned(), a.to_owned()))
                .into_iter()
                .collect(),
            state,
            version: 1,
            created_at: now,
            updated_at: now,
            expires_at: None,
            revision: 2,
            pending: Default::default(),
            refused: Default::default(),
            generation: 0,
            settings_hash: None,
        }
    }

    fn sub(arn: &str, endpoint: &str) -> SeenSubscription {
        SeenSubscription {
            arn: arn.into(),
            endpoint: endpoint.into(),
            protocol: "sqs".into(),
        }
    }

    #[test]
    fn a_subscription_no_live_record_names_is_an_orphan_and_others_are_not_ours() {
        let s = settings();
        let ours = format!("arn:aws:sqs:us-east-1:123456789012:tasksub-{ID}");
        let named = sub("arn:s1", &ours);
        let stray = sub("arn:s2", &ours);
        let foreign = sub("arn:s3", "arn:aws:sqs:us-east-1:123456789012:orders");
        let ready = [record(State::Ready, Some("arn:s1"))];
        let c = orphan_subscriptions(&ready, &[named.clone(), foreign.clone()], &s);
        assert_eq!(c.status, Status::Ok, "{c:?}");
        let c = orphan_subscriptions(&ready, &[stray.clone(), foreign], &s);
        assert_eq!(c.status, Status::Problem);
        assert!(
            c.detail.contains("arn:s2") && !c.detail.contains("arn:s3"),
            "{}",
            c.detail
        );
        let gone = [record(State::Gone, None)];
        assert_eq!(
            orphan_subscriptions(&gone, std::slice::from_ref(&named), &s).status,
            Status::Problem
        );
        assert_eq!(
            orphan_subscriptions(&[], std::slice::from_ref(&named), &s).status,
            Status::Problem
        );
        let provisioning = [record(State::Provisioning, None)];
        assert_eq!(orphan_subscriptions(&provisioning, &[named], &s).status, Status::Ok);
    }

    #[test]
    fn a_live_record_whose_queue_is_missing_is_reported() {
        let q = vec![format!("tasksub-{ID}")];
        assert_eq!(
            records_without_queue(&[record(State::Ready, None)], &q).status,
            Status::Ok
        );
        let c = records_without_queue(&[record(State::Ready, None)], &[]);
        assert_eq!(c.status, Status::Problem);
        assert!(c.detail.contains(ID) && c.detail.contains("READY"), "{}", c.detail);
        assert_eq!(
            records_without_queue(&[record(State::Gone, None)], &[]).status,
            Status::Ok
        );
    }

    #[test]
    fn record_less_queues_under_the_prefix_are_orphans() {
        let s = settings();
        let q = vec![format!("tasksub-{ID}"), "tasksub-other".to_owned(), "orders".to_owned()];
        let c = orphan_queues(&[record(State::Ready, None)], &q, &s);
        assert_eq!(c.status, Status::Problem);
        assert!(
            c.detail.contains("tasksub-other") && !c.detail.contains("orders,"),
            "{}",
            c.detail
        );
    }
}
