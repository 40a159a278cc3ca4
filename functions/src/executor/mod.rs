//! The executor: runs a plan's stages against the ports. What to do is decided in
//! `tasksub_core::decide`, which steps may overlap in `decide::stages`, how a queue or a topic gets to
//! its desired state in `tasksub_core::converge`, how to treat each failure in `tasksub_core::outcome`;
//! `perform` maps a step to its calls, `topics` runs the per-topic resolvers all at once.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use tasksub_core::decide::{self, after_lost_race, Admitted, AfterLoss, Decision, Hints, Plan, Skip, Step, Undo};
use tasksub_core::record::{Record, State};
use tasksub_core::settings::Settings;

use crate::ports::{PortError, Ports, Written};

/// How many times a conditional conflict may send us back to `decide` before we give up (and let the
/// invocation be retried). Each round means another invocation changed the record meanwhile.
pub const MAX_ROUNDS: usize = 4;

/// What running a plan led to.
// One value per round, returned and matched at once, never stored: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// Every step ran; the record now is in this state.
    Done {
        /// Steps that ran.
        steps: Vec<Step>,
        /// The final record.
        record: Record,
    },
    /// A conditional write found another state; decide again with it (and these hints). `made`: what
    /// this round made that no record names yet (after a lost MarkReady that chose to decide again).
    Redecide {
        /// The record found.
        current: Option<Record>,
        /// What the next plan should know.
        hints: Hints,
        /// Our work of this round, to undo if the next round finds the task tombstoned.
        made: Option<Record>,
    },
    /// Provisioning lost a race to a teardown and undid its own work.
    Compensated {
        /// Steps that ran, including the compensation.
        steps: Vec<Step>,
        /// The record that won.
        current: Option<Record>,
    },
}

/// A step failed in a way that ends the invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} failed: {error}")]
pub struct StepFailed {
    /// The step.
    pub step: &'static str,
    /// The classified error.
    pub error: PortError,
    /// Retry (transient) or give up (permanent).
    pub retry: bool,
}

/// The result of handling one admitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Nothing to do.
    Skipped(Skip),
    /// A plan ran to completion.
    Applied {
        /// Steps that ran.
        steps: Vec<Step>,
        /// The final state of the record.
        state: State,
        /// Topics that refused this task's subscription in this run (the task is READY on the others).
        refused: Vec<String>,
    },
    /// A race was lost and our work undone.
    Compensated {
        /// Steps that ran.
        steps: Vec<Step>,
    },
}

/// Reads (for teardown), plans, executes, and plans again after a conflict, for an event admitted once.
pub async fn handle<P: Ports>(
    ports: &P,
    admitted: &Admitted,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Handled, HandleError> {
    let stored = if admitted.intent.reads_first() {
        let key = admitted.names.record_key();
        ports.get(key).await.map_err(|e| fail("read-record", e))?
    } else {
        None
    };
    converge(ports, settings, now, stored, |stored, hints| {
        Ok(admitted.plan_with(stored, settings, now, hints))
    })
    .await
}

/// Plans with `decide` from what is stored, executes, and plans again after a conflict. The event
/// functions decide from an event; the sweeper from what it found in ECS and in the table.
pub async fn converge<P: Ports>(
    ports: &P,
    settings: &Settings,
    now: DateTime<Utc>,
    mut stored: Option<Record>,
    decide: impl Fn(Option<&Record>, &Hints) -> Result<Decision, decide::DecideError>,
) -> Result<Handled, HandleError> {
    let mut hints = Hints::default();
    // What earlier rounds made and no record names yet: undone if a later round finds a tombstone.
    let mut unrecorded: Vec<Record> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let plan = match decide(stored.as_ref(), &hints).map_err(HandleError::Decide)? {
            Decision::Skip(skip) => {
                undo_unrecorded(ports, stored.as_ref(), &unrecorded, settings, now).await;
                return Ok(Handled::Skipped(skip));
            }
            Decision::Act(plan) => *plan,
        };
        let task_id = plan.record.task_id.clone();
        let executed = match run(ports, plan, settings, now).await {
            Ok(executed) => executed,
            Err(e) => {
                // The invocation fails (and may be retried); what earlier rounds made and no record names
                // must not wait for a redelivery that may find a tombstone and do nothing.
                if !unrecorded.is_empty() {
                    if let Ok(current) = ports.get(&task_id).await {
                        undo_unrecorded(ports, current.as_ref(), &unrecorded, settings, now).await;
                    }
                }
                return Err(HandleError::Step(e));
            }
        };
        match executed {
            Executed::Done { steps, record } => {
                let refused = record
                    .refused
                    .iter()
                    .filter(|(_, r)| r.last_at == now)
                    .map(|(t, _)| t.clone())
                    .collect();
                return Ok(Handled::Applied {
                    steps,
                    state: record.state,
                    refused,
                });
            }
            Executed::Compensated { steps, current } => {
                undo_unrecorded(ports, current.as_ref(), &unrecorded, settings, now).await;
                return Ok(Handled::Compensated { steps });
            }
            Executed::Redecide {
                current,
                hints: h,
                made,
            } => {
                stored = current;
                hints = h;
                unrecorded.extend(made);
            }
        }
    }
    Err(HandleError::Contention)
}

/// Undoes what an earlier round made when the task turned out tombstoned (or its record gone) before
/// our work was recorded: nothing else would name it (best effort; the sweeper is the backstop).
async fn undo_unrecorded<P: Ports>(
    ports: &P,
    current: Option<&Record>,
    made: &[Record],
    settings: &Settings,
    now: DateTime<Utc>,
) {
    let inherited = BTreeSet::new();
    let cx = Cx {
        settings,
        now,
        observe: false,
        inherited: &inherited,
    };
    for ours in made {
        if let AfterLoss::Undo(undo) = after_lost_race(current, ours, settings) {
            let _ = compensate(ports, *undo, cx).await;
        }
    }
}

/// Why handling an admitted event failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The event cannot name a queue.
    #[error(transparent)]
    Decide(decide::DecideError),
    /// A step failed.
    #[error(transparent)]
    Step(StepFailed),
    /// Other invocations kept changing the record.
    #[error("the record kept changing under us for {MAX_ROUNDS} rounds")]
    Contention,
}

fn fail(step: &'static str, error: PortError) -> StepFailed {
    let retry = error.kind.is_transient();
    StepFailed { step, error, retry }
}

impl From<StepFailed> for HandleError {
    fn from(e: StepFailed) -> Self {
        Self::Step(e)
    }
}

/// Runs one plan, stage by stage ([`decide::stages`]): the steps of a stage are issued concurrently.
pub async fn run<P: Ports>(
    ports: &P,
    plan: Plan,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Executed, StepFailed> {
    let Plan {
        intent,
        mut record,
        expected,
        steps,
        observe,
        inherited,
        baseline,
    } = plan;
    // Whether the working record is stored (read, or written by us): every write names its revision.
    let mut stored = expected.is_some();
    // A READY record a plan finds already as desired (an audit that changed nothing) is not written again;
    // compared with the record as read, not the plan's (which may already record what the sweeper listed).
    let unchanged = baseline.filter(|_| expected == Some(State::Ready));
    let mut done = Vec::with_capacity(steps.len());
    let cx = Cx {
        settings,
        now,
        observe,
        inherited: &inherited,
    };
    let mut subscribed = false;
    for stage in decide::stages(&steps) {
        let write = match stage[..] {
            [step] if step.is_write() => step,
            _ => {
                subscribed |= stage.contains(&Step::Subscribe);
                if let Err(e) = perform::concurrently(ports, &stage, &mut record, intent.as_str(), cx).await {
                    if subscribed {
                        undo_after_failure(ports, &record, cx).await;
                    }
                    return Err(e);
                }
                done.extend(stage);
                continue;
            }
        };
        if write == Step::MarkReady && unchanged.as_ref().is_some_and(|u| same(u, &record, settings)) {
            continue;
        }
        let result = perform::write(ports, write, &mut record, &mut stored, cx).await;
        log_step(&record, intent.as_str(), write, &result);
        if let (Err(_), true) = (&result, subscribed) {
            // The write's answer was lost, or it failed. A READY record that does not name what this plan
            // subscribed (and that our settings want) must record it now: a redelivery may find a
            // tombstone, and nobody else knows the ARN. Otherwise what the current record does not name
            // goes now (a tombstone), or is left to the redelivery (a PROVISIONING record names its topics).
            if let Some(again) = redecide_after_failure(ports, &record, cx).await {
                return Ok(again);
            }
        }
        match result? {
            None | Some(Written::Applied) => done.push(write),
            Some(Written::Conflict(current)) if write == Step::MarkReady => {
                let undo = match after_lost_race(current.as_ref(), &record, settings) {
                    AfterLoss::Undo(undo) => undo,
                    AfterLoss::Redecide(hints) => {
                        return Ok(Executed::Redecide {
                            current,
                            hints,
                            made: Some(record),
                        })
                    }
                };
                done.push(write);
                done.extend(compensate(ports, *undo, cx).await?);
                return Ok(Executed::Compensated { steps: done, current });
            }
            Some(Written::Conflict(current)) => {
                return Ok(Executed::Redecide {
                    current,
                    hints: Hints::default(),
                    made: None,
                })
            }
        }
    }
    Ok(Executed::Done { steps: done, record })
}

/// True when MarkReady would store nothing new over `before` (a READY record as read): the same
/// resources and topics, already converged to these settings.
fn same(before: &Record, now: &Record, settings: &Settings) -> bool {
    before.subscriptions == now.subscriptions
        && before.pending == now.pending
        && before.refused == now.refused
        && before.queue_url == now.queue_url
        && before.watch == now.watch
        && before.generation == settings.generation
        && before.settings_hash.as_deref() == Some(settings.fingerprint().as_str())
}

/// After a failed write that followed the Subscribe stage: decide again when the current record is READY
/// and does not name what we subscribed (our settings want it); undo what a tombstone does not name.
async fn redecide_after_failure<P: Ports>(ports: &P, record: &Record, cx: Cx<'_>) -> Option<Executed> {
    let current = ports.get(&record.task_id).await.ok()?;
    match after_lost_race(current.as_ref(), record, cx.settings) {
        AfterLoss::Redecide(hints) if current.as_ref().is_some_and(|c| c.state == State::Ready) => {
            Some(Executed::Redecide {
                current,
                hints,
                made: Some(record.clone()),
            })
        }
        AfterLoss::Redecide(_) => None,
        AfterLoss::Undo(undo) => {
            let _ = compensate(ports, *undo, cx).await;
            None
        }
    }
}

/// A provisioning stage failed after one of its calls succeeded (e.g. Subscribe made a subscription
/// while CreateQueue met QueueDeletedRecently because a teardown just removed the queue), or a write
/// after the Subscribe stage failed (its answer may have been lost). The
/// redelivered event would find a tombstone and do nothing, so undo now what the current record does
/// not name, exactly as after a lost MarkReady; a PROVISIONING record is left to the redelivery (its
/// Subscribe is idempotent, and the resources may be another provisioning's too). Best effort: the
/// invocation fails with the stage's error whatever happens here, and the sweeper is the backstop.
async fn undo_after_failure<P: Ports>(ports: &P, record: &Record, cx: Cx<'_>) {
    let Ok(current) = ports.get(&record.task_id).await else {
        return;
    };
    let AfterLoss::Undo(undo) = after_lost_race(current.as_ref(), record, cx.settings) else {
        return;
    };
    // Best effort: a failed undo is logged by `compensate`, and the stage's error is what is returned.
    let _ = compensate(ports, *undo, cx).await;
}

/// Runs the steps that undo our work, in order, each logged as `compensate`; stops at the first failure.
async fn compensate<P: Ports>(ports: &P, undo: Undo, cx: Cx<'_>) -> Result<Vec<Step>, StepFailed> {
    let Undo { steps, mut record } = undo;
    for &step in &steps {
        let (learned, result) = perform::call(ports, step, &record, cx).await;
        perform::merge(&mut record, learned, cx);
        log_step(&record, "compensate", step, &result.clone().map(|()| None));
        result?;
    }
    Ok(steps)
}

/// What every step of one plan shares.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    settings: &'a Settings,
    now: DateTime<Utc>,
    /// Read and converge attributes (the plan's `observe`).
    observe: bool,
    /// Topics an earlier attempt may have left unrecorded (the plan's `inherited`).
    inherited: &'a BTreeSet<String>,
}

pub mod legacy;
mod perform;
mod topics;

use perform::log_step;
