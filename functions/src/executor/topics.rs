//! The topic steps (subscribe, unsubscribe, unsubscribe-retired): which topics a step resolves comes from
//! `tasksub_core::converge::plan`, how each topic gets to its goal from `tasksub_core::converge::topic`;
//! here the resolvers' calls are made, one chain per topic, all topics at once, so a start costs the same
//! round trips whatever the topic count. Every topic's outcome is kept (a subscription made is recorded
//! even when another topic's call failed, so the undo or the redelivery knows it); the first failure is
//! the step's.

use futures_util::future::join_all;
use tasksub_core::converge::plan::{retire_targets, subscribe_targets, teardown_targets, TopicTarget};
use tasksub_core::converge::topic::{Goal, Next, TopicAnswer, TopicCall, TopicOutcome, TopicResolver};
use tasksub_core::decide::Step;
use tasksub_core::record::Record;
use tracing::warn;

use super::perform::treat;
use super::{legacy, Cx, StepFailed};
use crate::ports::{PortError, Ports};

/// What a topic step learned: each topic's outcome, and the step's first failure.
pub(super) type Resolved = (Vec<(String, TopicOutcome)>, Result<(), StepFailed>);

/// The targets of a topic step on this record.
fn targets(step: Step, record: &Record, cx: Cx<'_>) -> Vec<TopicTarget> {
    match step {
        Step::Subscribe => subscribe_targets(record, cx.inherited, cx.settings, cx.now, cx.observe),
        Step::UnsubscribeRetired => retire_targets(record, cx.settings),
        _ => teardown_targets(record),
    }
}

/// Resolves every target of `step` at once.
pub(super) async fn resolve<P: Ports>(ports: &P, step: Step, record: &Record, cx: Cx<'_>) -> Resolved {
    let targets = targets(step, record, cx);
    let ends = join_all(targets.iter().map(|t| drive(ports, &record.queue_arn, t))).await;
    let mut outcomes = Vec::with_capacity(targets.len());
    let mut first_error = None;
    for (t, end) in targets.iter().zip(ends) {
        let end = match end {
            Next::Done(TopicOutcome::Refused(kind, message)) if legacy::get().refusal_fails => {
                Next::Fail(kind, message)
            }
            end => end,
        };
        match end {
            Next::Done(outcome) => {
                log_outcome(record, step, &t.topic, &outcome);
                outcomes.push((t.topic.clone(), outcome));
            }
            Next::Fail(kind, message) => {
                let failed = treat(step, PortError::new(kind, op_of(step), message));
                if let Err(e) = failed {
                    first_error.get_or_insert(e);
                }
            }
            Next::Call(_) => unreachable!("drive runs a resolver to its end"),
        }
    }
    (outcomes, first_error.map_or(Ok(()), Err))
}

fn op_of(step: Step) -> &'static str {
    match step {
        Step::Subscribe => "Subscribe",
        _ => "Unsubscribe",
    }
}

/// Runs one topic's resolver to its end, making each call it asks for.
async fn drive<P: Ports>(ports: &P, queue_arn: &str, target: &TopicTarget) -> Next {
    let mut r = TopicResolver::new(target.goal.clone(), target.known.clone(), target.pending, target.verify);
    loop {
        let call = match r.next_call() {
            Next::Call(call) => call,
            end => return end,
        };
        let answer = answer(ports, &target.topic, queue_arn, &target.goal, call).await;
        r.answer(answer);
    }
}

async fn answer<P: Ports>(ports: &P, topic: &str, queue_arn: &str, goal: &Goal, call: TopicCall) -> TopicAnswer {
    let failed = |e: PortError| TopicAnswer::Failed(e.kind, e.to_string());
    match call {
        TopicCall::Subscribe => {
            let Goal::Want(attrs) = goal else {
                unreachable!("only a wanted subscription is subscribed")
            };
            match ports.subscribe(topic, queue_arn, attrs).await {
                Ok(arn) => TopicAnswer::Arn(arn),
                Err(e) => failed(e),
            }
        }
        TopicCall::Attributes(arn) => match ports.subscription_attributes(&arn).await {
            Ok(a) => TopicAnswer::Attributes(a),
            Err(e) => failed(e),
        },
        TopicCall::Set { arn, name, value } => match ports.set_subscription_attribute(&arn, name, &value).await {
            Ok(()) => TopicAnswer::Done,
            Err(e) => failed(e),
        },
        TopicCall::Find if legacy::get().teardown_subscribes => {
            legacy::find_by_subscribing(ports, topic, queue_arn).await
        }
        TopicCall::Find => match ports.find(topic, queue_arn).await {
            Ok(found) => TopicAnswer::Found(found),
            Err(e) => failed(e),
        },
        TopicCall::FindOwn => match crate::ports::find_own(ports, topic, queue_arn).await {
            Ok(found) => TopicAnswer::Found(found),
            Err(e) => failed(e),
        },
        TopicCall::Unsubscribe(arn) => match ports.unsubscribe(&arn).await {
            Ok(()) => TopicAnswer::Done,
            Err(e) => failed(e),
        },
    }
}

/// A refused or unverifiable topic is worth a warning naming it (the task is READY on the others).
fn log_outcome(record: &Record, step: Step, topic: &str, outcome: &TopicOutcome) {
    let (task_id, queue, action) = (&record.task_id, &record.queue_name, step.as_str());
    match outcome {
        TopicOutcome::Refused(kind, error) => warn!(
            task_id,
            queue,
            topic,
            action,
            outcome = "refused",
            error_kind = kind.as_str(),
            error,
            "the topic refuses this task's subscription: the task stays ready on the other topics, and the \
             sweeper tries again with backoff"
        ),
        TopicOutcome::Unverified(kind, error) => warn!(
            task_id,
            queue,
            topic,
            action,
            outcome = "unverified",
            error_kind = kind.as_str(),
            error,
            "whether a subscription to this topic exists cannot be learned (the topic refuses the listing)"
        ),
        TopicOutcome::Subscribed(_) | TopicOutcome::Gone => {}
    }
}
