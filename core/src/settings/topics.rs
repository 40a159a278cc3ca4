//! The topic list: `TASKSUB_TOPIC_ARNS` (or `TASKSUB_TOPIC_ARN`), each topic's subscription settings
//! from `TASKSUB_TOPIC_SETTINGS` over the global defaults, and the limits the list must respect.
//!
//! ```text
//! TASKSUB_TOPIC_ARNS=arn:aws:sns:us-east-1:111122223333:orders,arn:aws:sns:eu-west-1:444455556666:flags
//! TASKSUB_TOPIC_SETTINGS={"orders":{"filterPolicy":{"kind":["invalidate"]},"rawDelivery":false}}
//! ```
//! A key is a topic name, or the full ARN when two configured topics share a name.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::env::{bad, filter_at, is_sqs_arn, policy_object, scope, strict_json, Env};
use super::{vars, SettingsError, SubscriptionSettings};
use crate::naming::{QueueName, TaskId, TopicArn};
use crate::policy::{queue_policy, MAX_POLICY_BYTES};

/// One topic every task queue subscribes to, with its subscription settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The topic.
    pub arn: TopicArn,
    /// How its subscriptions are made.
    pub subscription: SubscriptionSettings,
}

/// Longest replay window: SNS keeps a FIFO topic's archive at most 365 days.
pub const MAX_REPLAY_SECONDS: u32 = 365 * 86_400;

/// One entry of `TASKSUB_TOPIC_SETTINGS`; every field overrides the global default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Overrides {
    raw_delivery: Option<bool>,
    filter_policy: Option<serde_json::Value>,
    filter_policy_scope: Option<String>,
    dlq_arn: Option<String>,
    replay_seconds: Option<u32>,
    filter_policy_at: Option<String>,
}

/// The configured topics, in order, with their settings.
pub(super) fn parse<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    defaults: SubscriptionSettings,
) -> Result<Vec<Topic>, SettingsError> {
    let arns = topic_arns(env)?;
    let mut overrides = overrides(env.get(vars::TOPIC_SETTINGS))?;
    let mut topics = Vec::with_capacity(arns.len());
    for arn in arns {
        let mut subscription = defaults.clone();
        if let Some(o) = take_override(&mut overrides, &arn)? {
            apply(&mut subscription, o, &arn)?;
        }
        topics.push(Topic { arn, subscription });
    }
    if let Some(key) = overrides.keys().next() {
        let reason = format!("{key:?} names no configured topic (keys are topic names, or ARNs)");
        return Err(bad(vars::TOPIC_SETTINGS, reason));
    }
    check_client_filters(&topics)?;
    Ok(topics)
}

/// A filter applied by the task needs a policy, and a way to tell which topic a message came from: the
/// SNS envelope (`TopicArn`), or being the only raw-delivery topic (a raw message names no topic).
fn check_client_filters(topics: &[Topic]) -> Result<(), SettingsError> {
    let raw = topics.iter().filter(|t| t.subscription.raw_delivery).count();
    for t in topics.iter().filter(|t| t.subscription.filter_at_client) {
        let name = &t.arn.name;
        let Some(policy) = &t.subscription.filter_policy else {
            let reason = format!("{name}: filterPolicyAt \"client\" needs a filterPolicy to apply");
            return Err(bad(vars::TOPIC_SETTINGS, reason));
        };
        // SNS never sees this policy: refuse here what it would refuse (the task applies it as SNS would).
        let scope = t
            .subscription
            .filter_policy_scope
            .as_deref()
            .unwrap_or("MessageAttributes");
        let parsed = scope
            .parse()
            .and_then(|scope| tasksub_filter::FilterPolicy::parse(policy, scope));
        if let Err(e) = parsed {
            return Err(bad(vars::TOPIC_SETTINGS, format!("{name}: filterPolicy: {e}")));
        }
        if t.subscription.raw_delivery && raw > 1 {
            let reason = format!(
                "{name}: a filter the task applies must know a message's topic: with raw delivery on \
                 several topics a message names none; set rawDelivery false on this topic"
            );
            return Err(bad(vars::TOPIC_SETTINGS, reason));
        }
    }
    Ok(())
}

fn topic_arns<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Vec<TopicArn>, SettingsError> {
    let (name, raw) = match (env.get(vars::TOPIC_ARNS), env.get(vars::TOPIC_ARN)) {
        (Some(_), Some(_)) => {
            let reason = format!("set {} or {}, not both", vars::TOPIC_ARNS, vars::TOPIC_ARN);
            return Err(bad(vars::TOPIC_ARNS, reason));
        }
        (Some(_), None) => (vars::TOPIC_ARNS, env.list(vars::TOPIC_ARNS)),
        (None, Some(one)) => (vars::TOPIC_ARN, vec![one]),
        (None, None) => return Err(SettingsError::Missing(vars::TOPIC_ARNS)),
    };
    if raw.is_empty() {
        return Err(SettingsError::Missing(name));
    }
    let mut seen = BTreeSet::new();
    let mut arns = Vec::with_capacity(raw.len());
    for a in raw {
        let arn = TopicArn::parse(&a).map_err(|e| bad(name, e.to_string()))?;
        if !seen.insert(a.clone()) {
            return Err(bad(name, format!("{a} is listed twice")));
        }
        arns.push(arn);
    }
    let fifo = arns.iter().filter(|t| t.is_fifo()).count();
    if fifo != 0 && fifo != arns.len() {
        let reason = "mixes FIFO (.fifo) and standard topics: SNS FIFO topics deliver only to FIFO queues and \
                      standard topics only to standard queues, and a task has one queue";
        return Err(bad(name, reason));
    }
    Ok(arns)
}

fn overrides(raw: Option<String>) -> Result<BTreeMap<String, Overrides>, SettingsError> {
    let Some(raw) = raw else {
        return Ok(BTreeMap::new());
    };
    strict_json(vars::TOPIC_SETTINGS, &raw)?;
    serde_json::from_str(&raw).map_err(|e| {
        bad(
            vars::TOPIC_SETTINGS,
            format!("not a JSON object of topic settings: {e}"),
        )
    })
}

/// The entry for `arn`, keyed by its ARN or its name (not both).
fn take_override(all: &mut BTreeMap<String, Overrides>, arn: &TopicArn) -> Result<Option<Overrides>, SettingsError> {
    let by_arn = all.remove(arn.as_str());
    match (by_arn, all.contains_key(&arn.name)) {
        (Some(_), true) => {
            let reason = format!("{} is keyed both by its name and by its ARN", arn.name);
            Err(bad(vars::TOPIC_SETTINGS, reason))
        }
        (Some(o), false) => Ok(Some(o)),
        (None, _) => Ok(all.remove(&arn.name)),
    }
}

fn apply(s: &mut SubscriptionSettings, o: Overrides, arn: &TopicArn) -> Result<(), SettingsError> {
    let name = vars::TOPIC_SETTINGS;
    if let Some(raw) = o.raw_delivery {
        s.raw_delivery = raw;
    }
    if let Some(p) = o.filter_policy {
        s.filter_policy = Some(policy_object(name, p).map_err(|e| in_topic(e, arn))?);
    }
    if let Some(sc) = o.filter_policy_scope {
        s.filter_policy_scope = Some(scope(name, sc).map_err(|e| in_topic(e, arn))?);
    }
    if let Some(at) = o.filter_policy_at {
        s.filter_at_client = filter_at(name, at).map_err(|e| in_topic(e, arn))?;
    }
    if let Some(dlq) = o.dlq_arn {
        if !is_sqs_arn(&dlq) {
            return Err(bad(
                name,
                format!("{}: dlqArn {dlq:?} is not an SQS queue ARN", arn.name),
            ));
        }
        s.dlq_arn = Some(dlq);
    }
    if let Some(seconds) = o.replay_seconds {
        if !arn.is_fifo() {
            let reason = format!(
                "{}: replaySeconds needs a FIFO topic (SNS archives only FIFO topics)",
                arn.name
            );
            return Err(bad(name, reason));
        }
        if !(1..=MAX_REPLAY_SECONDS).contains(&seconds) {
            return Err(bad(
                name,
                format!(
                    "{}: replaySeconds {seconds} is outside 1..={MAX_REPLAY_SECONDS}",
                    arn.name
                ),
            ));
        }
        s.replay_seconds = Some(seconds);
    }
    Ok(())
}

fn in_topic(e: SettingsError, arn: &TopicArn) -> SettingsError {
    match e {
        SettingsError::Invalid { name, reason } => bad(name, format!("{}: {reason}", arn.name)),
        other => other,
    }
}

/// The limits a topic list must respect, checked once at start rather than at the first CreateQueue:
/// the queue name with `.fifo` fits 80 characters, and the queue policy listing every topic fits SQS's
/// 8,192 bytes for the longest queue ARN this deployment can make.
pub(super) fn check_fits(settings: &super::Settings) -> Result<(), SettingsError> {
    check_dlqs(settings)?;
    let longest_id = TaskId::new("b99d40b3-5176-4f71-9a52-9dbd6f1cebef").expect("a valid ID");
    let hex_id = TaskId::new("0123456789abcdef0123456789abcdef").expect("a valid ID");
    let fifo = settings.queue.fifo;
    if let Err(e) = QueueName::for_task(&settings.queue.prefix, &hex_id, fifo) {
        let reason = format!(
            "{e}: the prefix leaves no room for a task ID{}",
            if fifo { " and .fifo" } else { "" }
        );
        return Err(bad(vars::QUEUE_PREFIX, reason));
    }
    let name = QueueName::for_task(&settings.queue.prefix, &longest_id, fifo)
        .or_else(|_| QueueName::for_task(&settings.queue.prefix, &hex_id, fifo))
        .expect("checked above");
    let queue_arn = crate::naming::queue_arn(&settings.home, &name);
    let bytes = queue_policy(settings, &queue_arn).len();
    if !policy_fits(bytes) {
        let readers = &settings.readers;
        let roles = readers.consumer_roles.len() + readers.admin_roles.len();
        let who = match roles {
            0 => format!("{} topics", settings.topics.len()),
            n => format!("{} topics and {n} reader roles", settings.topics.len()),
        };
        let reason = format!(
            "{who} make a queue policy of {bytes} bytes, over SQS's {MAX_POLICY_BYTES}: use fewer topics \
             (or shorter topic names)"
        );
        return Err(bad(vars::TOPIC_ARNS, reason));
    }
    Ok(())
}

/// A FIFO queue's dead-letter queue must be a FIFO queue, and a standard queue's a standard one (SQS
/// refuses the pair with InvalidParameterCombination at every CreateQueue); a subscription to a FIFO topic
/// needs a FIFO dead-letter queue too (SNS). Refused here, once, with the setting's name.
fn check_dlqs(settings: &super::Settings) -> Result<(), SettingsError> {
    let fifo = settings.queue.fifo;
    let kind = |f: bool| if f { "a FIFO" } else { "a standard" };
    let is_fifo = |arn: &str| arn.ends_with(crate::naming::FIFO_SUFFIX);
    if let Some(dlq) = &settings.queue.dlq_arn {
        if is_fifo(dlq) != fifo {
            let reason = format!(
                "{dlq} is {} queue, but the task queues are {} (the topics are {}): SQS refuses the pair",
                kind(is_fifo(dlq)),
                if fifo { "FIFO" } else { "standard" },
                if fifo { "FIFO topics" } else { "standard topics" },
            );
            return Err(bad(vars::QUEUE_DLQ_ARN, reason));
        }
    }
    for t in settings.topics.iter().filter(|t| t.arn.is_fifo()) {
        if let Some(dlq) = t.subscription.dlq_arn.as_deref().filter(|d| !is_fifo(d)) {
            let reason = format!(
                "{}: the subscription dead-letter queue {dlq} must be a FIFO queue for a FIFO topic",
                t.arn.name
            );
            return Err(bad(vars::SUBSCRIPTION_DLQ_ARN, reason));
        }
    }
    Ok(())
}

/// SQS accepts a policy of at most [`MAX_POLICY_BYTES`] bytes, that many included.
fn policy_fits(bytes: usize) -> bool {
    bytes <= MAX_POLICY_BYTES
}

#[cfg(test)]
mod tests {
    use super::super::{vars, Settings};

    const A: &str = "arn:aws:sns:us-east-1:123456789012:orders";
    const B: &str = "arn:aws:sns:eu-west-1:210987654321:flags";

    fn env(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        crate::test_support::settings_from_env(pairs)
    }

    #[test]
    fn several_topics_in_any_account_and_region_each_with_its_settings() {
        let s = env(&[
            (vars::TOPIC_ARNS, &format!(" {A} , {B} ,")),
            (vars::RAW_DELIVERY, "false"),
            (
                vars::TOPIC_SETTINGS,
                r#"{"flags":{"rawDelivery":true,"filterPolicy":{"kind":["flag"]},"filterPolicyScope":"MessageBody","dlqArn":"arn:aws:sqs:us-east-1:123456789012:dlq"}}"#,
            ),
        ])
        .unwrap();
        assert_eq!(s.topic_arns().collect::<Vec<_>>(), [A, B]);
        let (a, b) = (&s.topics[0].subscription, &s.topics[1].subscription);
        assert!(
            !a.raw_delivery && a.filter_policy.is_none(),
            "defaults apply to a topic without entry"
        );
        assert!(b.raw_delivery);
        assert_eq!(b.filter_policy.as_deref(), Some(r#"{"kind":["flag"]}"#));
        assert_eq!(b.filter_policy_scope.as_deref(), Some("MessageBody"));
        assert_eq!(b.dlq_arn.as_deref(), Some("arn:aws:sqs:us-east-1:123456789012:dlq"));
        assert_eq!(s.topic(B).unwrap().arn.account, "210987654321");
        assert!(s.topic("arn:aws:sns:us-east-1:123456789012:nope").is_none());
        // keyed by ARN when names collide
        let twin = "arn:aws:sns:us-west-2:123456789012:orders";
        let keyed = format!(r#"{{"{twin}":{{"rawDelivery":false}}}}"#);
        let s = env(&[
            (vars::TOPIC_ARNS, &format!("{A},{twin}")),
            (vars::TOPIC_SETTINGS, &keyed),
        ])
        .unwrap();
        assert!(s.topics[0].subscription.raw_delivery && !s.topics[1].subscription.raw_delivery);
    }

    /// A filter the task applies (past SNS's 200 filter policies per topic): the subscription carries no
    /// policy, the record hands it over, and the fingerprint changes with it (a policy edit converges).
    #[test]
    fn a_filter_policy_applied_by_the_task() {
        let settings = |policy: &str| {
            let per_topic = format!(
                r#"{{"orders":{{"filterPolicyAt":"client","filterPolicy":{policy},"rawDelivery":false}},"flags":{{"filterPolicy":{{"k":["v"]}}}}}}"#
            );
            env(&[
                (vars::TOPIC_ARNS, &format!("{A},{B}")),
                (vars::TOPIC_SETTINGS, &per_topic),
            ])
            .unwrap()
        };
        let s = settings(r#"{"kind":["a"]}"#);
        let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let orders = crate::policy::subscription_attributes(&s.topics[0], epoch);
        assert!(
            !orders.contains_key("FilterPolicy") && !orders.contains_key("FilterPolicyScope"),
            "{orders:?}"
        );
        let flags = crate::policy::subscription_attributes(&s.topics[1], epoch);
        assert_eq!(
            flags.get("FilterPolicy").map(String::as_str),
            Some(r#"{"k":["v"]}"#),
            "SNS filters the other"
        );
        let handed = s.client_filters();
        assert_eq!(handed.keys().collect::<Vec<_>>(), [A]);
        assert_eq!(
            (handed[A].policy.as_str(), handed[A].scope.as_str(), handed[A].raw),
            (r#"{"kind":["a"]}"#, "MessageAttributes", false)
        );
        assert_ne!(
            s.fingerprint(),
            settings(r#"{"kind":["b"]}"#).fingerprint(),
            "a policy edit converges"
        );
        let global = env(&[
            (vars::TOPIC_ARNS, A),
            (vars::FILTER_POLICY, r#"{"k":["v"]}"#),
            (vars::FILTER_POLICY_AT, "client"),
        ])
        .unwrap();
        assert_eq!(
            global.client_filters().len(),
            1,
            "the one raw topic may be filtered by the task"
        );
    }

    #[test]
    fn every_bad_topic_setting_is_named_and_refused() {
        let fifo = "arn:aws:sns:us-east-1:123456789012:cfg.fifo";
        let rows: Vec<(Vec<(&str, String)>, &str)> = vec![
            (
                vec![(vars::TOPIC_ARNS, " , ".into())],
                "missing required setting TASKSUB_TOPIC_ARNS",
            ),
            (
                vec![(vars::TOPIC_ARNS, A.into()), (vars::TOPIC_ARN, A.into())],
                "invalid setting TASKSUB_TOPIC_ARNS: set TASKSUB_TOPIC_ARNS or TASKSUB_TOPIC_ARN, not both",
            ),
            (vec![(vars::TOPIC_ARNS, format!("{A},{A}"))], "is listed twice"),
            (
                vec![(vars::TOPIC_ARNS, format!("{A},arn:aws:sqs:us-east-1:1:q"))],
                "invalid setting TASKSUB_TOPIC_ARNS: not an SNS topic ARN",
            ),
            (
                vec![(vars::TOPIC_ARNS, format!("{A},{fifo}"))],
                "mixes FIFO (.fifo) and standard topics",
            ),
            (
                vec![(vars::TOPIC_ARNS, A.into()), (vars::TOPIC_SETTINGS, "[1]".into())],
                "invalid setting TASKSUB_TOPIC_SETTINGS: not a JSON object",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"nope":{}}"#.into()),
                ],
                "\"nope\" names no configured topic",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"raw":true}}"#.into()),
                ],
                "unknown field `raw`",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, format!(r#"{{"orders":{{}},"{A}":{{}}}}"#)),
                ],
                "keyed both by its name and by its ARN",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"filterPolicy":[1]}}"#.into()),
                ],
                "orders: a filter policy must be a JSON object",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (
                        vars::TOPIC_SETTINGS,
                        r#"{"orders":{"filterPolicyScope":"Body"}}"#.into(),
                    ),
                ],
                "orders: \"Body\" is not MessageAttributes or MessageBody",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (
                        vars::TOPIC_SETTINGS,
                        r#"{"orders":{"dlqArn":"arn:aws:sns:x:1:t"}}"#.into(),
                    ),
                ],
                "is not an SQS queue ARN",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"replaySeconds":60}}"#.into()),
                ],
                "replaySeconds needs a FIFO topic",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, fifo.into()),
                    (vars::TOPIC_SETTINGS, r#"{"cfg.fifo":{"replaySeconds":0}}"#.into()),
                ],
                "replaySeconds 0 is outside",
            ),
            // a filter the task applies: needs a policy, and a way to know each message's topic
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"filterPolicyAt":"client"}}"#.into()),
                ],
                "orders: filterPolicyAt \"client\" needs a filterPolicy",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, format!("{A},{B}")),
                    (
                        vars::TOPIC_SETTINGS,
                        r#"{"orders":{"filterPolicyAt":"client","filterPolicy":{"k":["v"]}}}"#.into(),
                    ),
                ],
                "orders: a filter the task applies must know a message's topic",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"filterPolicyAt":"sns"}}"#.into()),
                ],
                "invalid setting TASKSUB_TOPIC_SETTINGS: orders: \"sns\": a filter policy is applied at",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (
                        vars::TOPIC_SETTINGS,
                        r#"{"orders":{"filterPolicyAt":"client","filterPolicy":{"k":[{"numeric":["<"]}]}}}"#.into(),
                    ),
                ],
                "invalid setting TASKSUB_TOPIC_SETTINGS: orders: filterPolicy:",
            ),
            (
                vec![(vars::TOPIC_ARNS, A.into()), (vars::FILTER_POLICY_AT, "task".into())],
                "invalid setting TASKSUB_FILTER_POLICY_AT: \"task\"",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, fifo.into()),
                    (vars::QUEUE_PREFIX, format!("tasksub-{}", "p".repeat(38))),
                ],
                "invalid setting TASKSUB_QUEUE_PREFIX",
            ),
            // topic ARNs AWS would refuse, named at start-up rather than failing every start
            (
                vec![(vars::TOPIC_ARNS, "arn:aws:sns:us-east-1 :123456789012:t".into())],
                "region \"us-east-1 \" is not an AWS region name",
            ),
            (
                vec![(vars::TOPIC_ARNS, "arn:aws:sns:not a region:123456789012:t".into())],
                "is not an AWS region name",
            ),
            (
                vec![(vars::TOPIC_ARNS, "arn:aws:sns:us-east-1:12345:t".into())],
                "account \"12345\" is not a 12-digit AWS account ID",
            ),
            (
                vec![(vars::TOPIC_ARNS, "arn:aws:sns:us-east-1:123456789012:my topic".into())],
                "may hold only letters, digits, - and _",
            ),
            (
                vec![(vars::TOPIC_ARNS, format!("arn:aws:sns:us-east-1:123456789012:{}", "t".repeat(257)))],
                "must have 1 to 256 characters",
            ),
            (
                vec![(vars::TOPIC_ARNS, "arn:aws-cn:sns:us-east-1:123456789012:t".into())],
                "partition \"aws-cn\" is not \"aws\"",
            ),
            (
                vec![(vars::TOPIC_ARNS, "arn:aws:sns:us-east-1:123456789012:.fifo".into())],
                "must have 1 to 256 characters",
            ),
            // a repeated key would silently lose an entry
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"rawDelivery":true},"orders":{"rawDelivery":false}}"#.into()),
                ],
                "invalid setting TASKSUB_TOPIC_SETTINGS: key \"orders\" appears twice in the object at $",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::TOPIC_SETTINGS, r#"{"orders":{"filterPolicy":{"k":["a"],"k":["b"]}}}"#.into()),
                ],
                "key \"k\" appears twice in the object at $.orders.filterPolicy",
            ),
            (
                vec![(vars::TOPIC_ARNS, A.into()), (vars::FILTER_POLICY, r#"{"k":["a"],"k":["b"]}"#.into())],
                "invalid setting TASKSUB_FILTER_POLICY: key \"k\" appears twice",
            ),
            // dead-letter queues of the wrong kind: SQS and SNS refuse them at every call
            (
                vec![
                    (vars::TOPIC_ARNS, fifo.into()),
                    (vars::QUEUE_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:dlq".into()),
                ],
                "invalid setting TASKSUB_QUEUE_DLQ_ARN: arn:aws:sqs:us-east-1:123456789012:dlq is a standard queue, but the task queues are FIFO",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, A.into()),
                    (vars::QUEUE_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:dlq.fifo".into()),
                ],
                "is a FIFO queue, but the task queues are standard",
            ),
            (
                vec![
                    (vars::TOPIC_ARNS, fifo.into()),
                    (vars::SUBSCRIPTION_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:dlq".into()),
                ],
                "cfg.fifo: the subscription dead-letter queue arn:aws:sqs:us-east-1:123456789012:dlq must be a FIFO queue",
            ),
            (
                vec![(vars::TOPIC_ARNS, A.into()), (vars::SETTINGS_GENERATION, "-1".into())],
                "invalid setting TASKSUB_SETTINGS_GENERATION",
            ),
        ];
        for (pairs, want) in rows {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let err = env(&pairs).unwrap_err();
            assert!(err.contains(want), "{pairs:?}: got {err:?}");
        }
        // FIFO dead-letter queues for a FIFO deployment are accepted; a generation is read
        let ok = env(&[
            (vars::TOPIC_ARNS, fifo),
            (vars::QUEUE_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:dlq.fifo"),
            (
                vars::SUBSCRIPTION_DLQ_ARN,
                "arn:aws:sqs:us-east-1:123456789012:sdlq.fifo",
            ),
            (vars::SETTINGS_GENERATION, "1765000000"),
        ])
        .unwrap();
        assert_eq!(ok.generation, 1_765_000_000);
        assert_eq!(env(&[(vars::TOPIC_ARNS, A)]).unwrap().generation, 0, "unset: 0");
        // a prefix that fits a standard name but not `.fifo` is fine for standard topics
        assert!(env(&[
            (vars::TOPIC_ARNS, A),
            (vars::QUEUE_PREFIX, &format!("tasksub-{}", "p".repeat(38)))
        ])
        .is_ok());
    }

    #[test]
    fn limits_include_their_bound() {
        assert!(super::policy_fits(8192) && !super::policy_fits(8193));
        let fifo = "arn:aws:sns:us-east-1:123456789012:cfg.fifo";
        let window = |s: u32| {
            env(&[
                (vars::TOPIC_ARNS, fifo),
                (
                    vars::TOPIC_SETTINGS,
                    &format!(r#"{{"cfg.fifo":{{"replaySeconds":{s}}}}}"#),
                ),
            ])
        };
        // an archive keeps at most 365 days: that window is accepted, a second more is not
        let year = 365 * 86_400;
        assert_eq!(window(year).unwrap().topics[0].subscription.replay_seconds, Some(year));
        assert!(window(year + 1).unwrap_err().contains("is outside 1..=31536000"));
        assert_eq!(window(1).unwrap().topics[0].subscription.replay_seconds, Some(1));
    }

    #[test]
    fn the_queue_policy_must_fit_8_kb() {
        // 70-character topic ARNs: how many fit is documented in docs/contract.md.
        let arns = |n: usize| -> String {
            (0..n)
                .map(|i| format!("arn:aws:sns:us-east-1:123456789012:topic-{i:03}-{}", "x".repeat(25)))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(arns(1).split(',').next().unwrap().len(), 70);
        let fits = (1..200)
            .take_while(|&n| env(&[(vars::TOPIC_ARNS, &arns(n))]).is_ok())
            .last()
            .unwrap();
        assert_eq!(fits, 50, "70-char ARNs: the largest list whose policy fits");
        let err = env(&[(vars::TOPIC_ARNS, &arns(fits + 1))]).unwrap_err();
        assert!(
            err.contains("51 topics make a queue policy of") && err.contains("over SQS's 8192"),
            "{err}"
        );
        let fifo = env(&[(vars::TOPIC_ARNS, "arn:aws:sns:us-east-1:123456789012:a.fifo")]).unwrap();
        assert!(fifo.queue.fifo);
        // Task queue isolation lists the consumer and admin roles (twice for consumers): fewer topics fit,
        // and the check counts them with the longest task ID.
        let role = |i: usize| format!("arn:aws:iam::123456789012:role/app/role-{i:02}-{}", "r".repeat(40));
        let roles = (0..3).map(role).collect::<Vec<_>>().join(",");
        let admins = (3..5).map(role).collect::<Vec<_>>().join(",");
        let with_roles = |n: usize| {
            env(&[
                (vars::TOPIC_ARNS, &arns(n)),
                (vars::CONSUMER_ROLE_ARNS, &roles),
                (vars::QUEUE_ADMIN_ROLE_ARNS, &admins),
            ])
        };
        let fits_isolated = (1..200).take_while(|&n| with_roles(n).is_ok()).last().unwrap();
        assert_eq!(role(0).len(), 83);
        assert_eq!(
            fits_isolated, 41,
            "70-char ARNs with 3 consumer and 2 admin roles of 83 chars"
        );
        let err = with_roles(fits_isolated + 1).unwrap_err();
        assert!(
            err.contains("42 topics and 5 reader roles make a queue policy of"),
            "{err}"
        );
    }
}
