//! What one sweep found and did: the Lambda's response, the CLI's output, one log line and EMF metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tasksub_core::listing::Coverage;
use tasksub_core::reconcile::subscriptions::{HeldSubscription, SubscriptionVerdict, Unsubscribe};
use tasksub_core::reconcile::{Action, Held, Hold, Reconciled};

use super::gather::Gathered;

use crate::metrics::{Sink, Unit};

/// The summary of one sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The grace period applied.
    pub grace_seconds: u64,
    /// Records in the table (every state).
    pub records_seen: usize,
    /// Of those, live tasks' records (PROVISIONING or READY): the fleet `tasksub doctor` prices.
    pub live_records: usize,
    /// Queues under the prefix.
    pub queues_seen: usize,
    /// Distinct ECS tasks listed in our clusters (desired RUNNING or STOPPED).
    pub tasks_seen: usize,
    /// Configured clusters ECS does not know (treated as running nothing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_clusters: Vec<String>,
    /// Subscriptions on the topic (every endpoint).
    pub subscriptions_seen: usize,
    /// Subscriptions to our queues that no live record names, due for removal.
    pub orphan_subscriptions_found: usize,
    /// Of those, removed by this run.
    pub orphan_subscriptions_removed: usize,
    /// Tasks whose leftovers (record and/or queue) are due for removal.
    pub orphans_found: usize,
    /// Of those, removed by this run.
    pub orphans_removed: usize,
    /// Interrupted provisionings finished.
    pub resumed: usize,
    /// Running tasks without a record, provisioned.
    pub provisioned: usize,
    /// Stopping tasks whose subscription was removed.
    pub drained: usize,
    /// Live tasks whose subscriptions were brought in line with the configured topics.
    pub converged: usize,
    /// Actions still inside the grace period.
    pub waiting: usize,
    /// Due actions left for the next run (the per-run cap or the deadline was reached).
    pub deferred: usize,
    /// Failed actions and failed reads (the sweep itself went on).
    pub errors: usize,
    /// Records that could not be read (reported by key among the held, left alone).
    pub quarantined: usize,
    /// Topics live records say refuse their task's subscription (each counted per task), before this run.
    pub degraded_topics: usize,
    /// Subscriptions this run found missing from their topic's listing and made again.
    pub resubscribed: usize,
    /// Live tasks in sync whose attributes this run read and converged (the rotating audit).
    pub audited: usize,
    /// Wall-clock duration of the run.
    pub duration_ms: u64,
    /// What each topic's subscription listing covered: a topic bigger than one run's page budget is read
    /// over a cycle of runs, each resuming where the last stopped.
    pub listings: Vec<Coverage>,
    /// The longest last full listing cycle of any topic, in runs (1: every topic is read whole each run).
    pub longest_cycle_runs: u32,
    /// Every due action and what became of it.
    pub actions: Vec<ActionReport>,
    /// What was left alone for a reason worth knowing (healthy tasks are not listed).
    pub held: Vec<HeldReport>,
    /// Topics that refuse a live task's subscription, as the records say (before this run's actions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<RefusalReport>,
}

/// One topic refusing one live task's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusalReport {
    /// The task.
    pub task_id: String,
    /// The topic.
    pub topic: String,
    /// The error kind (`access-denied`, `quota`, `invalid`, `not-found`).
    pub kind: String,
    /// The service's words.
    pub message: String,
    /// Attempts so far.
    pub attempts: u32,
    /// First refusal.
    pub since: DateTime<Utc>,
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionReport {
    /// `remove-orphan`, `remove-stray-queue`, `finish-provisioning`, `provision`, `drain`.
    pub action: &'static str,
    /// The task.
    pub task_id: String,
    /// What ECS says: `running`, `stopping`, `stopped`, `unknown`.
    pub ecs: &'static str,
    /// The queue under the prefix, if one was listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The record's state before the action, if there was a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_state: Option<&'static str>,
    /// The planned steps.
    pub steps: Vec<&'static str>,
    /// `planned` (dry run), `done`, `skipped`, `compensated`, `failed`, `deferred`.
    pub outcome: &'static str,
    /// The record's state after the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ActionReport {
    /// The report of an orphan subscription's removal.
    pub fn unsubscribe(u: &Unsubscribe, outcome: &'static str) -> Self {
        Self {
            action: "unsubscribe-orphan",
            task_id: u.task_id.clone(),
            ecs: "-",
            queue: Some(u.queue.clone()),
            record_state: u.record_state.map(|s| s.as_str()),
            steps: vec!["unsubscribe"],
            outcome,
            state: None,
            detail: Some(u.arn.clone()),
        }
    }

    /// The report of a planned action, before it runs.
    pub fn planned(a: &Action) -> Self {
        Self {
            action: a.kind.as_str(),
            task_id: a.task_id.clone(),
            ecs: a.ecs.as_str(),
            queue: a.queue.clone(),
            record_state: a.record_state.map(|s| s.as_str()),
            steps: a.plan.steps.iter().map(|s| s.as_str()).collect(),
            outcome: "planned",
            state: None,
            detail: None,
        }
    }
}

/// One thing left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldReport {
    /// `grace`, `foreign-cluster`, `foreign-queue`, `unrecognised-name`, `bad-name` or a decide skip code.
    pub reason: &'static str,
    /// The task, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The queue, when one was listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// For `grace`: the action it will be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// For `grace`: when it becomes due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// More words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&Held> for HeldReport {
    fn from(h: &Held) -> Self {
        let (action, due_at, detail) = match &h.hold {
            Hold::Grace { kind, until } => (Some(kind.as_str()), Some(*until), None),
            Hold::ForeignCluster(c) => (None, None, Some(format!("cluster {c} is not in TASKSUB_CLUSTERS"))),
            Hold::ForeignQueue => (None, None, Some("the queue's tags name another task".to_owned())),
            Hold::UnrecognisedName => (
                None,
                None,
                Some("the name after the prefix is not a task ID".to_owned()),
            ),
            Hold::BadName(e) => (None, None, Some(e.clone())),
            Hold::Untagged => (
                None,
                None,
                Some(
                    "no tasksub tags: ownership unproven, never deleted (delete it yourself if it is ours)".to_owned(),
                ),
            ),
            Hold::InFlight => (None, None, Some("its task is being provisioned or runs".to_owned())),
            Hold::OtherStack => (
                None,
                None,
                Some("its tasksub:stack tag names another deployment (or none): not ours to delete".to_owned()),
            ),
            Hold::Quarantined(why) => (
                None,
                None,
                Some(format!(
                    "the record cannot be read ({why}): left alone with its queue and subscriptions; repair or \
                     delete the item"
                )),
            ),
            Hold::Skip(s) => (None, None, Some(s.to_string())),
        };
        Self {
            reason: h.hold.code(),
            task_id: h.task_id.clone(),
            queue: h.queue.clone(),
            action,
            due_at,
            detail,
        }
    }
}

impl From<&HeldSubscription> for HeldReport {
    fn from(h: &HeldSubscription) -> Self {
        let held = Held {
            task_id: Some(h.task_id.clone()),
            queue: None,
            hold: h.hold.clone(),
        };
        let mut r = Self::from(&held);
        r.detail = Some(format!("subscription {}: {}", h.arn, r.detail.unwrap_or_default()));
        r
    }
}

/// Every refused topic of every live record.
fn refusals(g: &Gathered) -> Vec<RefusalReport> {
    g.inventory
        .records
        .iter()
        .filter(|r| !r.state.is_tombstone())
        .flat_map(|r| {
            r.refused.iter().map(|(topic, why)| RefusalReport {
                task_id: r.task_id.clone(),
                topic: topic.clone(),
                kind: why.kind.clone(),
                message: why.message.clone(),
                attempts: why.attempts,
                since: why.since,
            })
        })
        .collect()
}

impl Report {
    /// What was found, before any action ran (`listing_failed`: topics whose subscriptions could not be
    /// listed, counted as errors).
    pub(super) fn found(
        dry_run: bool,
        grace_seconds: u64,
        g: &Gathered,
        listing_failed: usize,
        verdict: &Reconciled,
        subs: &SubscriptionVerdict,
    ) -> Self {
        let holds = || {
            verdict
                .held
                .iter()
                .map(|h| &h.hold)
                .chain(subs.held.iter().map(|h| &h.hold))
        };
        Self {
            dry_run,
            grace_seconds,
            records_seen: g.inventory.records.len(),
            queues_seen: g.inventory.queues.len(),
            tasks_seen: g.tasks_seen,
            missing_clusters: g.missing_clusters.clone(),
            subscriptions_seen: g.inventory.subscriptions.len(),
            errors: g.errors + listing_failed,
            live_records: g.inventory.records.iter().filter(|r| !r.state.is_tombstone()).count(),
            listings: g.coverage.clone(),
            longest_cycle_runs: g.coverage.iter().filter_map(|c| c.last_cycle_runs).max().unwrap_or(0),
            quarantined: g.inventory.quarantined.len(),
            degraded_topics: refusals(g).len(),
            refusals: refusals(g),
            orphan_subscriptions_found: subs.unsubscribe.len(),
            held: verdict
                .held
                .iter()
                .map(HeldReport::from)
                .chain(subs.held.iter().map(HeldReport::from))
                .collect(),
            waiting: holds().filter(|h| matches!(h, Hold::Grace { .. })).count(),
            orphans_found: verdict.actions.iter().filter(|a| a.kind.is_orphan()).count(),
            ..Self::default()
        }
    }

    /// Logs the summary as one structured line.
    pub fn log(&self) {
        tracing::info!(
            action = "sweep",
            dry_run = self.dry_run,
            grace_seconds = self.grace_seconds,
            records_seen = self.records_seen,
            queues_seen = self.queues_seen,
            tasks_seen = self.tasks_seen,
            orphans_found = self.orphans_found,
            orphans_removed = self.orphans_removed,
            resumed = self.resumed,
            provisioned = self.provisioned,
            drained = self.drained,
            converged = self.converged,
            resubscribed = self.resubscribed,
            audited = self.audited,
            quarantined = self.quarantined,
            degraded_topics = self.degraded_topics,
            waiting = self.waiting,
            deferred = self.deferred,
            errors = self.errors,
            duration_ms = self.duration_ms,
            "sweep summary"
        );
    }

    /// Emits the counts as EMF metrics (dimension `Function=sweeper`). Dry runs emit nothing.
    pub fn emit(&self, sink: &Sink, now: DateTime<Utc>) {
        if self.dry_run {
            return;
        }
        let c = |n: usize| n as f64;
        sink.emit(
            now.timestamp_millis(),
            &[("Function", "sweeper")],
            &[
                ("RecordsSeen", Unit::Count, c(self.records_seen)),
                ("QueuesSeen", Unit::Count, c(self.queues_seen)),
                ("TasksSeen", Unit::Count, c(self.tasks_seen)),
                ("OrphansFound", Unit::Count, c(self.orphans_found)),
                ("OrphansRemoved", Unit::Count, c(self.orphans_removed)),
                (
                    "OrphanSubscriptionsFound",
                    Unit::Count,
                    c(self.orphan_subscriptions_found),
                ),
                (
                    "OrphanSubscriptionsRemoved",
                    Unit::Count,
                    c(self.orphan_subscriptions_removed),
                ),
                ("Resumed", Unit::Count, c(self.resumed)),
                ("Provisioned", Unit::Count, c(self.provisioned)),
                ("Drained", Unit::Count, c(self.drained)),
                ("Converged", Unit::Count, c(self.converged)),
                ("Resubscribed", Unit::Count, c(self.resubscribed)),
                ("Audited", Unit::Count, c(self.audited)),
                ("QuarantinedRecords", Unit::Count, c(self.quarantined)),
                ("DegradedTopics", Unit::Count, c(self.degraded_topics)),
                ("Waiting", Unit::Count, c(self.waiting)),
                ("Deferred", Unit::Count, c(self.deferred)),
                ("SweepErrors", Unit::Count, c(self.errors)),
                ("SweepDuration", Unit::Milliseconds, self.duration_ms as f64),
            ],
        );
    }
}
