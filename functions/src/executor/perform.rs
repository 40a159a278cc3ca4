//! One step → its calls. Writes are conditional on the revision read; the queue step runs
//! `tasksub_core::converge::queue`'s resolver, the topic steps `topics`; every failure is treated by
//! `tasksub_core::outcome::disposition`.

use tasksub_core::converge::plan::record_outcome;
use tasksub_core::converge::queue::{Owner, QueueAnswer, QueueCall, QueueNext, QueueResolver};
use tasksub_core::converge::topic::TopicOutcome;
use tasksub_core::decide::{self, Step};
use tasksub_core::outcome::{disposition, Disposition};
use tasksub_core::policy;
use tasksub_core::record::Record;
use tracing::{info, warn};

use super::{topics, Cx, StepFailed};
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

/// What a step that is not a write learned, to merge into the record.
pub(super) enum Learned {
    /// The queue URL (made, adopted, looked up).
    Url(Option<String>),
    /// Each topic's outcome.
    Topics(Vec<(String, TopicOutcome)>),
    /// Nothing to keep.
    Nothing,
}

/// One step that is not a write: what it learned, and how it ended.
pub(super) async fn call<P: Ports>(
    ports: &P,
    step: Step,
    record: &Record,
    cx: Cx<'_>,
) -> (Learned, Result<(), StepFailed>) {
    match step {
        Step::CreateQueue => match ensure_queue(ports, record, cx).await {
            Ok(url) => (Learned::Url(Some(url)), Ok(())),
            Err(e) => (Learned::Nothing, Err(e)),
        },
        Step::Subscribe | Step::Unsubscribe | Step::UnsubscribeRetired => {
            let (outcomes, result) = topics::resolve(ports, step, record, cx).await;
            (Learned::Topics(outcomes), result)
        }
        Step::LookupQueueUrl => match ports.url(&record.queue_name).await {
            Ok(url) => (Learned::Url(Some(url)), Ok(())),
            Err(e) => (Learned::Nothing, treat(step, e)),
        },
        Step::DeleteQueue => match &record.queue_url {
            Some(url) => (Learned::Nothing, ports.delete(url).await.or_else(|e| treat(step, e))),
            None => (Learned::Nothing, Ok(())),
        },
        Step::Claim | Step::RecordIntent | Step::MarkReady | Step::MarkDraining | Step::Tombstone(_) => {
            unreachable!("writes go through `write`")
        }
    }
}

/// Takes into the record what a step learned.
pub(super) fn merge(record: &mut Record, learned: Learned, cx: Cx<'_>) {
    match learned {
        Learned::Url(url) => record.queue_url = url,
        Learned::Topics(outcomes) => {
            for (topic, outcome) in &outcomes {
                record_outcome(record, topic, outcome, cx.now);
            }
        }
        Learned::Nothing => {}
    }
}

/// A conditional write: `Ok(Some(..))` applied or conflicting, `Ok(None)` when its failure counts as done.
pub(super) async fn write<P: Ports>(
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

/// The queue as desired: CreateQueue, adopting (tags checked) and converging an existing one.
async fn ensure_queue<P: Ports>(ports: &P, record: &Record, cx: Cx<'_>) -> Result<String, StepFailed> {
    let wanted = policy::queue_attributes(cx.settings, &record.queue_arn);
    let tags = policy::queue_tags(
        cx.settings,
        &record.task_arn,
        &record.cluster_arn,
        record.group.as_deref(),
    );
    let owner = Owner {
        stack: cx.settings.stack.clone(),
        task_id: record.task_id.clone(),
    };
    let mut r = QueueResolver::new(wanted.clone(), owner, cx.observe);
    loop {
        let answer = match r.next_call() {
            QueueNext::Ready(url) => return Ok(url),
            QueueNext::Fail(kind, message) => {
                return treat(Step::CreateQueue, PortError::new(kind, "CreateQueue", message)).map(|()| String::new())
            }
            QueueNext::Call(c) => queue_call(ports, record, &wanted, &tags, c).await,
        };
        r.answer(answer);
    }
}

async fn queue_call<P: Ports>(
    ports: &P,
    record: &Record,
    wanted: &std::collections::BTreeMap<&'static str, String>,
    tags: &std::collections::BTreeMap<&'static str, String>,
    call: QueueCall,
) -> QueueAnswer {
    let failed = |e: PortError| QueueAnswer::Failed(e.kind, e.to_string());
    match call {
        QueueCall::Create => ports
            .create(&record.queue_name, wanted, tags)
            .await
            .map_or_else(failed, QueueAnswer::Url),
        QueueCall::Url => ports
            .url(&record.queue_name)
            .await
            .map_or_else(failed, QueueAnswer::Url),
        QueueCall::Tags(url) => ports.queue_tags(&url).await.map_or_else(failed, QueueAnswer::Tags),
        QueueCall::Attributes(url) => ports
            .queue_attributes(&url)
            .await
            .map_or_else(failed, QueueAnswer::Attributes),
        QueueCall::Set(url, attrs) => ports
            .set_queue_attributes(&url, &attrs)
            .await
            .map_or_else(failed, |()| QueueAnswer::Done),
    }
}

/// A stage of calls of different chains (never a write): all are issued at once, each on the record as it
/// was before the stage; what each learned is merged back, then the first error, if any, ends the
/// invocation.
pub(super) async fn concurrently<P: Ports>(
    ports: &P,
    stage: &[Step],
    record: &mut Record,
    intent: &str,
    cx: Cx<'_>,
) -> Result<(), StepFailed> {
    let before: &Record = record;
    let results = futures_util::future::join_all(stage.iter().map(|&step| async move {
        let (learned, result) = call(ports, step, before, cx).await;
        (step, learned, result)
    }))
    .await;
    let mut first_error = None;
    for (step, learned, result) in results {
        merge(record, learned, cx);
        log_step(record, intent, step, &result.clone().map(|()| None));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
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
