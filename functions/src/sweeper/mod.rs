//! The sweeper: gathers what exists, asks [`tasksub_core::reconcile`] what to do, and does it through the
//! executor ([`crate::executor::converge`], the code path of the event functions) at a limited pace.
//!
//! It repairs what lost or failed events left behind: queues and records of tasks that stopped or
//! vanished, provisionings a crash interrupted, running tasks that never got a queue, stopping tasks
//! still subscribed. It never touches a queue outside the prefix or the queue of a live task, and
//! leaves GONE tombstones to their TTL. A dry run reports the same plan and changes nothing.

mod gather;
mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tasksub_core::decide::Decision;
use tasksub_core::listing::Positions;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::subscriptions::{orphan_subscriptions, Unsubscribe};
use tasksub_core::reconcile::{self, Action, ActionKind};
use tasksub_core::record::Record;
use tasksub_core::settings::{Settings, SweepSettings};
use tokio::time::Instant;
use tracing::{info, warn};

pub use gather::GatherFailed;
pub use report::{ActionReport, HeldReport, RefusalReport, Report};

use crate::aws::{AwsPorts, AwsTasks};
use crate::executor::{self, HandleError, Handled};
use crate::metrics::Sink;
use crate::pace::Paced;
use crate::ports::{Ports, QueueInspect, Subscriptions, Tasks};

/// How one run goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Overrides the configured grace period.
    pub grace_seconds: Option<u64>,
    /// Start no action after this instant (the Lambda's deadline minus a margin).
    pub stop_by: Option<Instant>,
}

/// The sweeper: settings and clients built once.
#[derive(Debug)]
pub struct Sweeper<P = AwsPorts, T = AwsTasks> {
    settings: Settings,
    sweep: SweepSettings,
    ports: P,
    tasks: T,
    metrics: Sink,
}

impl Sweeper<AwsPorts, AwsTasks> {
    /// A sweeper on the AWS SDK.
    pub fn new(settings: Settings, sweep: SweepSettings, sdk: &aws_config::SdkConfig) -> Self {
        let ports = AwsPorts::for_settings(sdk, &settings);
        Self::with_ports(settings, sweep, ports, AwsTasks::new(sdk))
    }
}

impl<P: Ports + QueueInspect, T: Tasks> Sweeper<P, T> {
    /// A sweeper on any ports (the fake in tests).
    pub fn with_ports(settings: Settings, sweep: SweepSettings, ports: P, tasks: T) -> Self {
        Self {
            settings,
            sweep,
            ports,
            tasks,
            metrics: Sink::Off,
        }
    }

    /// Sends the summary's EMF lines to `sink` (the Lambda uses stdout; the default is off).
    pub fn with_metrics(mut self, sink: Sink) -> Self {
        self.metrics = sink;
        self
    }

    /// The ports.
    pub fn ports(&self) -> &P {
        &self.ports
    }

    /// The ECS port.
    pub fn tasks(&self) -> &T {
        &self.tasks
    }

    /// One sweep at `now`. Fails only when a read that every verdict depends on fails (then nothing was
    /// changed); failed actions are counted in the report and the sweep goes on.
    pub async fn run(&self, options: RunOptions, now: DateTime<Utc>) -> Result<Report, GatherFailed> {
        let started = Instant::now();
        let grace_seconds = options.grace_seconds.unwrap_or(self.sweep.grace_seconds);
        let paced = Paced::new(&self.ports, Duration::from_millis(self.sweep.min_interval_ms));
        // Subscriptions first, records after: a subscription made meanwhile always finds its claim or intent.
        // A failed listing (the 30 TPS quota is the account's) skips only that topic's subscriptions.
        let loaded = self.load_positions().await;
        let mut positions = loaded.clone().unwrap_or_default();
        let mut lister = gather::Lister {
            pages_per_run: self.sweep.list_pages_per_run,
            positions: &mut positions,
            now,
        };
        let mut listings = gather::Listings::default();
        gather::subscriptions(&paced, self.settings.topic_arns(), &mut lister, &mut listings).await;
        let gathered = gather::gather(&self.ports, &self.tasks, &paced, &self.settings, listings, &mut lister).await;
        let (g, listing_failed) = gathered?;
        if let Some(stored) = loaded.filter(|stored| !options.dry_run && positions.changed_from(stored)) {
            debug_assert_eq!(stored.revision, positions.revision);
            self.save_positions(&positions).await;
        }
        let audit = self.sweep.audit_per_run;
        let verdict = reconcile::reconcile_with(&g.inventory, &self.settings, grace_seconds, now, audit);
        let subs = orphan_subscriptions(&g.inventory, &self.settings, grace_seconds, now);
        let mut report = Report::found(options.dry_run, grace_seconds, &g, listing_failed, &verdict, &subs);
        let mut budget = Budget {
            dry_run: options.dry_run,
            left: self.sweep.max_actions,
            stop_by: options.stop_by,
        };
        // Orphan subscriptions before any queue: a record-less queue is never deleted while subscribed.
        for orphan in &subs.unsubscribe {
            let outcome = self.unsubscribe_orphan(&paced, orphan, &mut budget, &mut report).await;
            report.actions.push(ActionReport::unsubscribe(orphan, outcome));
        }
        let stored: BTreeMap<&str, &Record> = g.inventory.records.iter().map(|r| (r.task_id.as_str(), r)).collect();
        for action in &verdict.actions {
            let stored = stored.get(action.task_id.as_str()).copied();
            let line = self.repair(&paced, action, stored, &mut budget, &mut report, now).await;
            report.actions.push(line);
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        report.log();
        report.emit(&self.metrics, now);
        Ok(report)
    }

    /// Where each topic's listing stands; `None` when they cannot be read (every listing then starts at
    /// its first page, and this run's positions are not saved over the unread ones).
    async fn load_positions(&self) -> Option<Positions> {
        match self.ports.positions().await {
            Ok(p) => Some(p),
            Err(e) => {
                warn!(action = "read-positions", outcome = "failed", error = %e, "listings start at their first page");
                None
            }
        }
    }

    /// Saves where each topic's listing stands, unless another sweep saved first (its positions stand).
    async fn save_positions(&self, positions: &Positions) {
        match self.ports.save_positions(positions).await {
            Ok(true) => {}
            Ok(false) => info!(
                action = "save-positions",
                outcome = "superseded",
                "another sweep saved its listing positions first"
            ),
            Err(e) => {
                warn!(action = "save-positions", outcome = "failed", error = %e, "the next run re-reads this run's pages")
            }
        }
    }

    /// Removes one orphan subscription (not-found counts as done), within the budget; the outcome.
    async fn unsubscribe_orphan(
        &self,
        paced: &Paced<'_, P>,
        orphan: &Unsubscribe,
        budget: &mut Budget,
        report: &mut Report,
    ) -> &'static str {
        let outcome = match budget.gate() {
            Gate::Plan => "planned",
            Gate::Defer => {
                report.deferred += 1;
                "deferred"
            }
            Gate::Go => match paced.unsubscribe(&orphan.arn).await {
                Ok(()) => {
                    report.orphan_subscriptions_removed += 1;
                    "done"
                }
                Err(e) if e.kind == ErrorKind::NotFound => "done",
                Err(e) => {
                    warn!(task_id = orphan.task_id, action = "unsubscribe-orphan", outcome = "failed", error = %e);
                    report.errors += 1;
                    "failed"
                }
            },
        };
        info!(
            task_id = orphan.task_id,
            queue = orphan.queue,
            action = "unsubscribe-orphan",
            outcome
        );
        outcome
    }

    /// Runs one of the reconciler's actions, within the budget; its report line.
    async fn repair(
        &self,
        paced: &Paced<'_, P>,
        action: &Action,
        stored: Option<&Record>,
        budget: &mut Budget,
        report: &mut Report,
        now: DateTime<Utc>,
    ) -> ActionReport {
        let mut line = ActionReport::planned(action);
        match budget.gate() {
            Gate::Plan => {
                info!(task_id = action.task_id, action = action.kind.as_str(), outcome = "planned", steps = ?line.steps)
            }
            Gate::Defer => {
                line.outcome = "deferred";
                report.deferred += 1;
            }
            Gate::Go => {
                let result = Box::pin(self.execute(paced, action, stored, now)).await;
                if matches!(result, Ok(Handled::Applied { .. })) {
                    report.resubscribed += action.lost.len();
                }
                self.account(report, &mut line, action.kind, result);
            }
        }
        line
    }

    async fn execute(
        &self,
        paced: &Paced<'_, P>,
        action: &Action,
        stored: Option<&Record>,
        now: DateTime<Utc>,
    ) -> Result<Handled, HandleError> {
        // The first round runs the reconciler's plan; after a conflict, decide again from what is stored.
        let first = AtomicBool::new(true);
        let settings = &self.settings;
        executor::converge(paced, settings, now, stored.cloned(), |current, hints| {
            Ok(if first.swap(false, Ordering::Relaxed) {
                Decision::Act(Box::new(action.plan.clone()))
            } else {
                action.replan(current, settings, now, hints)
            })
        })
        .await
    }

    fn account(
        &self,
        report: &mut Report,
        line: &mut ActionReport,
        kind: ActionKind,
        result: Result<Handled, HandleError>,
    ) {
        match result {
            Ok(Handled::Applied { state, refused, .. }) => {
                line.outcome = "done";
                line.state = Some(state.as_str());
                if !refused.is_empty() {
                    line.detail = Some(format!("refused by {}", refused.join(", ")));
                }
                match kind {
                    ActionKind::RemoveOrphan | ActionKind::RemoveStrayQueue => report.orphans_removed += 1,
                    ActionKind::FinishProvisioning => report.resumed += 1,
                    ActionKind::Provision => report.provisioned += 1,
                    ActionKind::Drain => report.drained += 1,
                    ActionKind::Converge => report.converged += 1,
                    ActionKind::Audit => report.audited += 1,
                }
            }
            Ok(Handled::Skipped(skip)) => {
                line.outcome = "skipped";
                line.detail = Some(skip.to_string());
            }
            Ok(Handled::Compensated { .. }) => {
                line.outcome = "compensated";
                line.detail = Some("a teardown won the race; our work was undone".to_owned());
            }
            Err(e) => {
                line.outcome = "failed";
                line.detail = Some(e.to_string());
                report.errors += 1;
            }
        }
    }
}

/// How many actions (orphan subscriptions included) this run may still start, and until when.
struct Budget {
    dry_run: bool,
    left: usize,
    stop_by: Option<Instant>,
}

/// What the budget allows for the next action.
enum Gate {
    /// A dry run: report the plan, change nothing.
    Plan,
    /// The per-run cap or the deadline was reached: left for the next run.
    Defer,
    /// Run it.
    Go,
}

impl Budget {
    fn gate(&mut self) -> Gate {
        if self.dry_run {
            return Gate::Plan;
        }
        if self.left == 0 || self.stop_by.is_some_and(|t| Instant::now() >= t) {
            return Gate::Defer;
        }
        self.left -= 1;
        Gate::Go
    }
}

/// Why a scheduled sweep reports failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    /// A read every verdict depends on failed: nothing was changed.
    #[error(transparent)]
    Aborted(#[from] GatherFailed),
    /// The sweep ran, but some actions or reads failed (the summary names them).
    #[error("{errors} sweep action(s) or read(s) failed; see the sweep summary")]
    Incomplete {
        /// How many.
        errors: usize,
    },
}

impl From<SweepError> for lambda_runtime::Diagnostic {
    fn from(e: SweepError) -> Self {
        let error_type = match e {
            SweepError::Aborted(_) => "tasksub.Sweep.Aborted",
            SweepError::Incomplete { .. } => "tasksub.Sweep.Incomplete",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}
