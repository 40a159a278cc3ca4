//! One step → its calls. Writes are conditional on the revision read; the subscription steps fan out
//! per topic ([`super::subscribe`]); every failure is treated by `tasksub_core::outcome::disposition`.

use tasksub_core::decide::{self, Step};
use tasksub_core::outcome::{disposition, Disposition, ErrorKind};
use tasksub_core::policy;
use tasksub_core::record::Record;
use tracing::{info, warn};

use super::{subscribe, Cx, StepFailed};
use crate::ports::{Expect, PortError, Ports, Written};

/// How a failed call of `step` ends: done (e.g. not-found on a delete), or the step's failure.
pub(super) fn treat(step: Step, e: PortError) -> Result<(), StepFailed> {
    let retry = match disposition(step, e.kind) {
        Disposition::Done => return Ok(()),
        Disposition::Retry | Disposition::Redecide => true,
        Disposition::Fail => false,
    };
    Err(StepFailed {
        step: step.as_str(),
        error: e,
        retry,
    })
}

/// One step. `Ok(Some(..))` for conditional writes, `Ok(None)` for the rest.
pub(super) async fn perform<P: Ports>(
    ports: &P,
    step: Step,
    record: &mut Record,
    stored: &mut bool,
    cx: Cx<'_>,
) -> Result<Option<Written>, StepFailed> {
    match step {
        Step::Claim | Step::MarkReady | Step::MarkDraining | Step::Tombstone(_) => {
            write(ports, step, record, stored, cx).await
        }
        Step::CreateQueue => create_queue(ports, record, cx).await.map(|()| None),
        Step::Subscribe | Step::RecoverSubscription => subscribe::missing(ports, step, record, cx).await.map(|()| None),
        Step::Unsubscribe => subscribe::remove(ports, step, record, |_| true).await.map(|()| None),
        Step::UnsubscribeRetired => {
            let retired = |topic: &str| cx.settings.topic(topic).is_none();
            subscribe::remove(ports, step, record, retired).await.map(|()| None)
        }
        Step::UpdatePolicy => {
            if let Some(url) = &record.queue_url {
                let policy = policy::queue_policy(cx.settings, &record.queue_arn);
                if let Err(e) = ports.set_policy(url, &policy).await {
                    treat(step, e)?;
                }
            }
            Ok(None)
        }
        Step::LookupQueueUrl => {
            match ports.url(&record.queue_name).await {
                Ok(url) => record.queue_url = Some(url),
                Err(e) => treat(step, e)?,
            }
            Ok(None)
        }
        Step::DeleteQueue => {
            if let Some(url) = record.queue_url.clone() {
                if let Err(e) = ports.delete(&url).await {
                    treat(step, e)?;
                }
            }
            Ok(None)
        }
    }
}

async fn write<P: Ports>(
    ports: &P,
    step: Step,
    record: &mut Record,
    stored: &mut bool,
    cx: Cx<'_>,
) -> Result<Option<Written>, StepFailed> {
    let next = decide::apply(record, step, cx.settings, cx.now);
    let expect = Expect::over(stored.then_some(&*record));
    match ports.put(&next, expect).await {
        Ok(Written::Applied) => {
            *record = next;
            *stored = true;
            Ok(Some(Written::Applied))
        }
        Ok(conflict) => Ok(Some(conflict)),
        Err(e) => treat(step, e).map(|()| None),
    }
}

async fn create_queue<P: Ports>(ports: &P, record: &mut Record, cx: Cx<'_>) -> Result<(), StepFailed> {
    let attrs = policy::queue_attributes(cx.settings, &record.queue_arn);
    let tags = policy::queue_tags(
        cx.settings,
        &record.task_arn,
        &record.cluster_arn,
        record.group.as_deref(),
    );
    match ports.create(&record.queue_name, &attrs, &tags).await {
        Ok(url) => record.queue_url = Some(url),
        // The queue exists with other attributes (a crashed provisioning made it before the settings
        // changed): adopt it as it is rather than stay PROVISIONING for good.
        Err(e) if e.kind == ErrorKind::Invalid => match ports.url(&record.queue_name).await {
            Ok(url) => record.queue_url = Some(url),
            Err(_) => treat(Step::CreateQueue, e)?,
        },
        Err(e) => treat(Step::CreateQueue, e)?,
    }
    Ok(())
}

/// A stage of calls of different chains (never a write): all are issued at once, each on its own copy
/// of the record; what each learned (its chain's field) is merged back, then the first error, if any,
/// ends the invocation.
pub(super) async fn concurrently<P: Ports>(
    ports: &P,
    stage: &[Step],
    record: &mut Record,
    intent: &str,
    cx: Cx<'_>,
) -> Result<(), StepFailed> {
    let copies: Vec<Record> = stage.iter().map(|_| record.clone()).collect();
    let results = futures_util::future::join_all(stage.iter().zip(copies).map(|(&step, mut copy)| async move {
        let result = perform(ports, step, &mut copy, &mut true, cx).await;
        (step, copy, result)
    }))
    .await;
    let mut first_error = None;
    for (step, learned, result) in results {
        log_step(&learned, intent, step, &result);
        merge(record, step, learned, cx);
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Takes from `learned` what its step changed. Subscribe only adds configured topics and
/// UnsubscribeRetired only removes topics no longer configured, so the two merge in either order.
fn merge(record: &mut Record, step: Step, learned: Record, cx: Cx<'_>) {
    match step {
        Step::RecoverSubscription | Step::Subscribe => record.subscriptions.extend(learned.subscriptions),
        Step::Unsubscribe => record.subscriptions = learned.subscriptions,
        Step::UnsubscribeRetired => record
            .subscriptions
            .retain(|topic, _| cx.settings.topic(topic).is_some() || learned.subscriptions.contains_key(topic)),
        Step::CreateQueue | Step::LookupQueueUrl | Step::DeleteQueue => record.queue_url = learned.queue_url,
        Step::UpdatePolicy => {}
        Step::Claim | Step::MarkReady | Step::MarkDraining | Step::Tombstone(_) => {
            unreachable!("a write never shares a stage")
        }
    }
}

/// One log line per step, with the task, queue, intent and outcome (never bodies or handles).
pub(super) fn log_step(record: &Record, intent: &str, step: Step, result: &Result<Option<Written>, StepFailed>) {
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
