//! The executor: runs a plan's steps in order against the ports. It is the only sequential code; what
//! to do is decided in `tasksub_core::decide`, how to treat each failure in `tasksub_core::outcome`.

use chrono::{DateTime, Utc};
use tasksub_core::decide::{self, after_lost_race, Admitted, Decision, Plan, Skip, Step};
use tasksub_core::outcome::{disposition, Disposition, ErrorKind};
use tasksub_core::policy;
use tasksub_core::record::{Record, State};
use tasksub_core::settings::Settings;
use tracing::{info, warn};

use crate::ports::{Expect, PortError, Ports, Written};

/// How many times a conditional conflict may send us back to `decide` before we give up (and let the
/// invocation be retried). Each round means another invocation changed the record meanwhile.
pub const MAX_ROUNDS: usize = 4;

/// What running a plan led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    /// Every step ran; the record now is in this state.
    Done {
        /// Steps that ran.
        steps: Vec<Step>,
        /// The final record.
        record: Record,
    },
    /// A conditional write found another state; decide again with it.
    Redecide(Option<Record>),
    /// Provisioning lost a race to a teardown and undid its own work.
    Compensated {
        /// Steps that ran, including the compensation.
        steps: Vec<Step>,
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
    converge(ports, settings, now, stored, |stored| {
        Ok(admitted.plan(stored, settings, now))
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
    decide: impl Fn(Option<&Record>) -> Result<Decision, decide::DecideError>,
) -> Result<Handled, HandleError> {
    for _ in 0..MAX_ROUNDS {
        let plan = match decide(stored.as_ref()).map_err(HandleError::Decide)? {
            Decision::Skip(skip) => return Ok(Handled::Skipped(skip)),
            Decision::Act(plan) => *plan,
        };
        match run(ports, plan, settings, now).await.map_err(HandleError::Step)? {
            Executed::Done { steps, record } => {
                return Ok(Handled::Applied {
                    steps,
                    state: record.state,
                })
            }
            Executed::Compensated { steps } => return Ok(Handled::Compensated { steps }),
            Executed::Redecide(current) => stored = current,
        }
    }
    Err(HandleError::Contention)
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
    } = plan;
    // Whether the working record is stored (read, or written by us): every write names its revision.
    let mut stored = expected.is_some();
    let mut done = Vec::with_capacity(steps.len());
    let cx = Cx { settings, now };
    for stage in decide::stages(&steps) {
        let [step] = stage[..] else {
            if let Err(e) = run_concurrently(ports, &stage, &mut record, intent.as_str(), cx).await {
                if stage.contains(&Step::Subscribe) {
                    undo_after_failure(ports, &mut record, cx).await;
                }
                return Err(e);
            }
            done.extend(stage);
            continue;
        };
        let result = perform(ports, step, &mut record, &mut stored, settings, now).await;
        log_step(&record, intent.as_str(), step, &result);
        match result? {
            None | Some(Written::Applied) => done.push(step),
            Some(Written::Conflict(current)) if step == Step::MarkReady => {
                let Some(undo) = after_lost_race(current.as_ref(), &record) else {
                    return Ok(Executed::Redecide(current));
                };
                done.push(step);
                done.extend(compensate(ports, undo, &mut record, &mut stored, cx).await?);
                return Ok(Executed::Compensated { steps: done });
            }
            Some(Written::Conflict(current)) => return Ok(Executed::Redecide(current)),
        }
    }
    Ok(Executed::Done { steps: done, record })
}

/// A provisioning stage failed after one of its calls succeeded (e.g. Subscribe made a subscription
/// while CreateQueue met QueueDeletedRecently because a teardown just removed the queue). The
/// redelivered event would find a tombstone and do nothing, so undo now what the current record does
/// not name, exactly as after a lost MarkReady; a PROVISIONING record is left to the redelivery (its
/// Subscribe is idempotent, and the resources may be another provisioning's too). Best effort: the
/// invocation fails with the stage's error whatever happens here, and the sweeper is the backstop.
async fn undo_after_failure<P: Ports>(ports: &P, record: &mut Record, cx: Cx<'_>) {
    let Ok(current) = ports.get(&record.task_id).await else {
        return;
    };
    let undo = after_lost_race(current.as_ref(), record).unwrap_or_default();
    // Best effort: a failed undo is logged by `compensate`, and the stage's error is what is returned.
    let _ = compensate(ports, undo, record, &mut true, cx).await;
}

/// Runs the steps that undo our work, in order, each logged as `compensate`; stops at the first failure.
async fn compensate<P: Ports>(
    ports: &P,
    undo: Vec<Step>,
    record: &mut Record,
    stored: &mut bool,
    cx: Cx<'_>,
) -> Result<Vec<Step>, StepFailed> {
    for &step in &undo {
        let r = perform(ports, step, record, stored, cx.settings, cx.now).await;
        log_step(record, "compensate", step, &r);
        r?;
    }
    Ok(undo)
}

#[derive(Clone, Copy)]
struct Cx<'a> {
    settings: &'a Settings,
    now: DateTime<Utc>,
}

/// A stage of two calls of different chains (never a write): both are issued at once, each on its own
/// copy of the record; what each learned (its chain's field) is merged back, then the first error, if
/// any, ends the invocation.
async fn run_concurrently<P: Ports>(
    ports: &P,
    stage: &[Step],
    record: &mut Record,
    intent: &str,
    cx: Cx<'_>,
) -> Result<(), StepFailed> {
    let &[a, b] = stage else {
        unreachable!("a stage holds one step per chain: {stage:?}");
    };
    let (mut ra, mut rb) = (record.clone(), record.clone());
    let (mut no, mut nope) = (true, true);
    let (xa, xb) = tokio::join!(
        perform(ports, a, &mut ra, &mut no, cx.settings, cx.now),
        perform(ports, b, &mut rb, &mut nope, cx.settings, cx.now)
    );
    for (step, learned, result) in [(a, &ra, &xa), (b, &rb, &xb)] {
        log_step(learned, intent, step, result);
        match step {
            Step::RecoverSubscription | Step::Subscribe | Step::Unsubscribe => {
                record.subscription_arn.clone_from(&learned.subscription_arn)
            }
            _ => record.queue_url.clone_from(&learned.queue_url),
        }
    }
    xa?;
    xb?;
    Ok(())
}

/// One step. `Ok(Some(..))` for conditional writes, `Ok(None)` for the rest.
async fn perform<P: Ports>(
    ports: &P,
    step: Step,
    record: &mut Record,
    stored: &mut bool,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Option<Written>, StepFailed> {
    let treat = |e: PortError| -> Result<(), StepFailed> {
        match disposition(step, e.kind) {
            Disposition::Done => Ok(()),
            Disposition::Retry | Disposition::Redecide => Err(StepFailed {
                step: step.as_str(),
                error: e,
                retry: true,
            }),
            Disposition::Fail => Err(StepFailed {
                step: step.as_str(),
                error: e,
                retry: false,
            }),
        }
    };
    match step {
        Step::Claim | Step::MarkReady | Step::MarkDraining | Step::Tombstone(_) => {
            let next = decide::apply(record, step, settings, now);
            let expect = Expect::over(stored.then_some(&*record));
            match ports.put(&next, expect).await {
                Ok(Written::Applied) => {
                    *record = next;
                    *stored = true;
                    Ok(Some(Written::Applied))
                }
                Ok(conflict) => Ok(Some(conflict)),
                Err(e) => treat(e).map(|()| None),
            }
        }
        Step::CreateQueue => {
            let attrs = policy::queue_attributes(settings, &record.queue_arn);
            let tags = policy::queue_tags(settings, &record.task_arn, &record.cluster_arn, record.group.as_deref());
            match ports.create(&record.queue_name, &attrs, &tags).await {
                Ok(url) => record.queue_url = Some(url),
                // The queue exists with other attributes (a crashed provisioning made it before the
                // settings changed): adopt it as it is rather than stay PROVISIONING for good.
                Err(e) if e.kind == ErrorKind::Invalid => match ports.url(&record.queue_name).await {
                    Ok(url) => record.queue_url = Some(url),
                    Err(_) => treat(e)?,
                },
                Err(e) => treat(e)?,
            }
            Ok(None)
        }
        Step::Subscribe | Step::RecoverSubscription => {
            let attrs = policy::subscription_attributes(settings);
            match ports.subscribe(&record.topic_arn, &record.queue_arn, &attrs).await {
                Ok(arn) => record.subscription_arn = Some(arn),
                // A subscription exists with other attributes (the settings changed since a crashed
                // provisioning made it): find it by listing the topic's subscriptions, to remove it
                // (recover) or to record it (subscribe). Rare, so the 30 TPS list is affordable.
                Err(e) if e.kind == ErrorKind::Invalid => {
                    match ports.find(&record.topic_arn, &record.queue_arn).await {
                        Ok(Some(found)) => record.subscription_arn = Some(found),
                        Ok(None) if step == Step::RecoverSubscription => record.subscription_arn = None,
                        Ok(None) => treat(e)?,
                        Err(e) => treat(e)?,
                    }
                }
                Err(e) => treat(e)?,
            }
            Ok(None)
        }
        Step::Unsubscribe => {
            if let Some(arn) = record.subscription_arn.clone() {
                if let Err(e) = ports.unsubscribe(&arn).await {
                    treat(e)?;
                }
                record.subscription_arn = None;
            }
            Ok(None)
        }
        Step::LookupQueueUrl => {
            match ports.url(&record.queue_name).await {
                Ok(url) => record.queue_url = Some(url),
                Err(e) => treat(e)?,
            }
            Ok(None)
        }
        Step::DeleteQueue => {
            if let Some(url) = record.queue_url.clone() {
                if let Err(e) = ports.delete(&url).await {
                    treat(e)?;
                }
            }
            Ok(None)
        }
    }
}

fn log_step(record: &Record, intent: &str, step: Step, result: &Result<Option<Written>, StepFailed>) {
    let (task_id, cluster, queue) = (&record.task_id, &record.cluster_arn, &record.queue_name);
    let action = step.as_str();
    match result {
        Ok(Some(Written::Conflict(current))) => {
            let found = current.as_ref().map_or("absent", |r| r.state.as_str());
            info!(
                task_id,
                cluster,
                queue,
                intent,
                action,
                outcome = "conflict",
                found,
                "record changed meanwhile"
            );
        }
        Ok(_) => info!(task_id, cluster, queue, intent, action, outcome = "ok"),
        Err(e) => warn!(
            task_id, cluster, queue, intent, action,
            outcome = if e.retry { "retry" } else { "failed" },
            error_kind = e.error.kind.as_str(), error = %e.error
        ),
    }
}
