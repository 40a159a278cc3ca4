//! The subscription steps over several topics: one call per topic, all issued at once, so a start costs
//! the same round trips whatever the topic count. Every call's answer is kept (a subscription made is
//! recorded even when another topic's call failed, so the undo or the redelivery knows it); the first
//! failure is the step's.

use futures_util::future::join_all;
use tasksub_core::decide::Step;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::policy;
use tasksub_core::record::Record;
use tasksub_core::settings::Topic;

use super::perform::treat;
use super::{Cx, StepFailed};
use crate::ports::Ports;

/// Subscribe (or recover) every configured topic the record has no subscription for.
pub(super) async fn missing<P: Ports>(
    ports: &P,
    step: Step,
    record: &mut Record,
    cx: Cx<'_>,
) -> Result<(), StepFailed> {
    let topics: Vec<&Topic> = cx
        .settings
        .topics
        .iter()
        .filter(|t| !record.subscriptions.contains_key(t.arn.as_str()))
        .collect();
    let r: &Record = record;
    let answers = join_all(topics.iter().map(|t| one(ports, step, t, r))).await;
    let mut first_error = None;
    for (topic, answer) in topics.iter().zip(answers) {
        match answer {
            Ok(Some(arn)) => {
                record.subscriptions.insert(topic.arn.as_str().to_owned(), arn);
            }
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One topic's Subscribe: `Some(arn)`, or `None` when recovering found nothing to recover.
async fn one<P: Ports>(ports: &P, step: Step, topic: &Topic, record: &Record) -> Result<Option<String>, StepFailed> {
    let attrs = policy::subscription_attributes(topic, record.created_at);
    let topic_arn = topic.arn.as_str();
    match ports.subscribe(topic_arn, &record.queue_arn, &attrs).await {
        Ok(arn) => Ok(Some(arn)),
        // A subscription exists with other attributes (the settings changed since a crashed provisioning
        // made it): find it by listing the topic's subscriptions, to remove it (recover) or to record it
        // (subscribe). Rare, so the 30 TPS list is affordable.
        Err(e) if e.kind == ErrorKind::Invalid => match ports.find(topic_arn, &record.queue_arn).await {
            Ok(Some(found)) => Ok(Some(found)),
            Ok(None) if step == Step::RecoverSubscription => Ok(None),
            Ok(None) => treat(step, e).map(|()| None),
            Err(e) => treat(step, e).map(|()| None),
        },
        Err(e) => treat(step, e).map(|()| None),
    }
}

/// Unsubscribe every recorded subscription whose topic `which` selects; each one removed (or already
/// gone) leaves the record, a failed one stays in it.
pub(super) async fn remove<P: Ports>(
    ports: &P,
    step: Step,
    record: &mut Record,
    which: impl Fn(&str) -> bool,
) -> Result<(), StepFailed> {
    let targets: Vec<(String, String)> = record
        .subscriptions
        .iter()
        .filter(|(topic, _)| which(topic))
        .map(|(t, a)| (t.clone(), a.clone()))
        .collect();
    let answers = join_all(targets.iter().map(|(_, arn)| ports.unsubscribe(arn))).await;
    let mut first_error = None;
    for ((topic, _), answer) in targets.into_iter().zip(answers) {
        match answer.map_err(|e| treat(step, e)) {
            Ok(()) | Err(Ok(())) => {
                record.subscriptions.remove(&topic);
            }
            Err(Err(failed)) => {
                first_error.get_or_insert(failed);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
