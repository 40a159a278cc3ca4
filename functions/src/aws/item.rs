//! [`Record`] ⇄ DynamoDB item. Lives beside its adapter; the client crate reads items with the same
//! attribute names from `tasksub_core::record::attr`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use tasksub_core::record::{attr, ClientFilter, Record, Refusal, State};

/// The item for a record.
pub fn to_item(r: &Record) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::new();
    let mut s = |k: &str, v: &str| {
        item.insert(k.to_owned(), AttributeValue::S(v.to_owned()));
    };
    s(attr::TASK_ID, &r.task_id);
    s(attr::TASK_ARN, &r.task_arn);
    s(attr::CLUSTER_ARN, &r.cluster_arn);
    s(attr::QUEUE_NAME, &r.queue_name);
    s(attr::QUEUE_ARN, &r.queue_arn);
    s(attr::STATE, r.state.as_str());
    s(attr::CREATED_AT, &r.created_at.to_rfc3339());
    s(attr::UPDATED_AT, &r.updated_at.to_rfc3339());
    for (k, v) in [(attr::GROUP, &r.group), (attr::QUEUE_URL, &r.queue_url)] {
        if let Some(v) = v {
            s(k, v);
        }
    }
    if !r.subscriptions.is_empty() {
        let map = r
            .subscriptions
            .iter()
            .map(|(topic, sub)| (topic.clone(), AttributeValue::S(sub.clone())))
            .collect();
        item.insert(attr::SUBSCRIPTIONS.to_owned(), AttributeValue::M(map));
    }
    item.insert(attr::VERSION.to_owned(), AttributeValue::N(r.version.to_string()));
    item.insert(attr::REVISION.to_owned(), AttributeValue::N(r.revision.to_string()));
    if let Some(exp) = r.expires_at {
        item.insert(attr::EXPIRES_AT.to_owned(), AttributeValue::N(exp.to_string()));
    }
    if !r.refused.is_empty() {
        let map = r
            .refused
            .iter()
            .map(|(t, why)| (t.clone(), refusal_item(why)))
            .collect();
        item.insert(attr::REFUSED.to_owned(), AttributeValue::M(map));
    }
    if !r.client_filters.is_empty() {
        let json = serde_json::to_string(&r.client_filters).expect("a map of strings serialises");
        item.insert(attr::CLIENT_FILTERS.to_owned(), AttributeValue::S(json));
    }
    if r.generation != 0 {
        item.insert(attr::GENERATION.to_owned(), AttributeValue::N(r.generation.to_string()));
    }
    if let Some(h) = &r.settings_hash {
        item.insert(attr::SETTINGS_HASH.to_owned(), AttributeValue::S(h.clone()));
    }
    for (k, set) in [(attr::PENDING, &r.pending), (attr::WATCH, &r.watch)] {
        if !set.is_empty() {
            let list = set.iter().map(|t| AttributeValue::S(t.clone())).collect();
            item.insert(k.to_owned(), AttributeValue::L(list));
        }
    }
    item
}

/// A list of topic ARNs (absent: empty).
fn topic_list(
    item: &HashMap<String, AttributeValue>,
    k: &'static str,
) -> Result<std::collections::BTreeSet<String>, BadItem> {
    match item.get(k) {
        None => Ok(Default::default()),
        Some(v) => v
            .as_l()
            .map_err(|_| BadItem(k))?
            .iter()
            .map(|t| t.as_s().cloned().map_err(|_| BadItem(k)))
            .collect(),
    }
}

const KIND: &str = "kind";
const MESSAGE: &str = "message";
const SINCE: &str = "since";
const LAST_AT: &str = "lastAt";
const ATTEMPTS: &str = "attempts";

fn refusal_item(r: &Refusal) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        (KIND.to_owned(), AttributeValue::S(r.kind.clone())),
        (MESSAGE.to_owned(), AttributeValue::S(r.message.clone())),
        (SINCE.to_owned(), AttributeValue::S(r.since.to_rfc3339())),
        (LAST_AT.to_owned(), AttributeValue::S(r.last_at.to_rfc3339())),
        (ATTEMPTS.to_owned(), AttributeValue::N(r.attempts.to_string())),
    ]))
}

fn refusal_of(v: &AttributeValue) -> Result<Refusal, BadItem> {
    let bad = || BadItem(attr::REFUSED);
    let m = v.as_m().map_err(|_| bad())?;
    let s = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned().ok_or_else(bad);
    let time = |k: &str| -> Result<DateTime<Utc>, BadItem> {
        DateTime::parse_from_rfc3339(&s(k)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad())
    };
    let attempts = m
        .get(ATTEMPTS)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    Ok(Refusal {
        kind: s(KIND)?,
        message: s(MESSAGE)?,
        since: time(SINCE)?,
        last_at: time(LAST_AT)?,
        attempts,
    })
}

/// The `clientFilters` attribute: one JSON string (topic ARN → [`ClientFilter`]), which the container
/// client parses with the same type; absent: none.
fn client_filters(item: &HashMap<String, AttributeValue>) -> Result<BTreeMap<String, ClientFilter>, BadItem> {
    match item.get(attr::CLIENT_FILTERS) {
        None => Ok(BTreeMap::new()),
        Some(v) => {
            let json = v.as_s().map_err(|_| BadItem(attr::CLIENT_FILTERS))?;
            serde_json::from_str(json).map_err(|_| BadItem(attr::CLIENT_FILTERS))
        }
    }
}

/// Why an item is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed record item: attribute {0}")]
pub struct BadItem(pub &'static str);

/// The record of an item.
pub fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Record, BadItem> {
    let opt = |k: &'static str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let req = |k: &'static str| opt(k).ok_or(BadItem(k));
    let num = |k: &'static str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .map(|n| n.parse::<i64>().map_err(|_| BadItem(k)))
    };
    let time = |k: &'static str| -> Result<DateTime<Utc>, BadItem> {
        DateTime::parse_from_rfc3339(&req(k)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| BadItem(k))
    };
    Ok(Record {
        task_id: req(attr::TASK_ID)?,
        task_arn: req(attr::TASK_ARN)?,
        cluster_arn: req(attr::CLUSTER_ARN)?,
        group: opt(attr::GROUP),
        queue_name: req(attr::QUEUE_NAME)?,
        queue_arn: req(attr::QUEUE_ARN)?,
        queue_url: opt(attr::QUEUE_URL),
        subscriptions: subscriptions(item)?,
        state: State::parse(&req(attr::STATE)?).ok_or(BadItem(attr::STATE))?,
        version: num(attr::VERSION).transpose()?.unwrap_or(0).max(0) as u64,
        created_at: time(attr::CREATED_AT)?,
        updated_at: time(attr::UPDATED_AT)?,
        expires_at: num(attr::EXPIRES_AT).transpose()?,
        revision: num(attr::REVISION).transpose()?.unwrap_or(0).max(0) as u64,
        pending: topic_list(item, attr::PENDING)?,
        watch: topic_list(item, attr::WATCH)?,
        refused: match item.get(attr::REFUSED) {
            None => Default::default(),
            Some(v) => v
                .as_m()
                .map_err(|_| BadItem(attr::REFUSED))?
                .iter()
                .map(|(t, r)| Ok((t.clone(), refusal_of(r)?)))
                .collect::<Result<_, BadItem>>()?,
        },
        generation: num(attr::GENERATION).transpose()?.unwrap_or(0).max(0) as u64,
        settings_hash: opt(attr::SETTINGS_HASH),
        client_filters: client_filters(item)?,
    })
}

/// The `subscriptions` map; a record written before several topics existed has `topicArn` and maybe
/// `subscriptionArn` instead, read as a map of one (or none).
fn subscriptions(item: &HashMap<String, AttributeValue>) -> Result<BTreeMap<String, String>, BadItem> {
    if let Some(v) = item.get(attr::SUBSCRIPTIONS) {
        let map = v.as_m().map_err(|_| BadItem(attr::SUBSCRIPTIONS))?;
        return map
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_s().map_err(|_| BadItem(attr::SUBSCRIPTIONS))?.clone())))
            .collect();
    }
    let legacy = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    Ok(match (legacy(attr::TOPIC_ARN), legacy(attr::SUBSCRIPTION_ARN)) {
        (Some(topic), Some(sub)) => BTreeMap::from([(topic, sub)]),
        _ => BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_items() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = Record {
            task_id: "abc".into(),
            task_arn: "arn:aws:ecs:us-east-1:1:task/c/abc".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:1:cluster/c".into(),
            group: Some("service:orders".into()),
            queue_name: "tasksub-abc".into(),
            queue_arn: "arn:aws:sqs:us-east-1:1:tasksub-abc".into(),
            queue_url: Some("https://q".into()),
            subscriptions: BTreeMap::from([
                ("arn:aws:sns:us-east-1:1:t".into(), "arn:aws:sns:us-east-1:1:t:s".into()),
                ("arn:aws:sns:eu-west-1:2:u".into(), "arn:aws:sns:eu-west-1:2:u:s".into()),
            ]),
            state: State::Ready,
            version: 7,
            created_at: now,
            updated_at: now,
            expires_at: None,
            revision: 4,
            pending: ["arn:aws:sns:us-east-1:1:p".to_owned()].into(),
            refused: BTreeMap::from([(
                "arn:aws:sns:us-east-1:1:d".to_owned(),
                Refusal {
                    kind: "access-denied".into(),
                    message: "not admitted".into(),
                    since: now,
                    last_at: now,
                    attempts: 3,
                },
            )]),
            generation: 1_765_000_000,
            settings_hash: Some("0123456789abcdef".into()),
            watch: ["arn:aws:sns:us-east-1:1:w".to_owned()].into(),
            client_filters: BTreeMap::from([(
                "arn:aws:sns:us-east-1:1:f".to_owned(),
                ClientFilter {
                    policy: r#"{"kind":["a"]}"#.into(),
                    scope: "MessageBody".into(),
                    raw: true,
                },
            )]),
        };
        assert_eq!(from_item(&to_item(&r)).unwrap(), r);
        for k in [attr::PENDING, attr::REFUSED, attr::WATCH, attr::CLIENT_FILTERS] {
            let mut bad = to_item(&r);
            bad.insert(k.into(), AttributeValue::S("x".into()));
            assert_eq!(from_item(&bad), Err(BadItem(k)), "{k}");
        }
        let mut broken = to_item(&r);
        if let Some(AttributeValue::M(m)) = broken.get_mut(attr::REFUSED) {
            m.insert("t".into(), AttributeValue::M(HashMap::new()));
        }
        assert_eq!(from_item(&broken), Err(BadItem(attr::REFUSED)));
        // A record written before revisions existed reads as revision 0.
        let mut legacy = to_item(&r);
        legacy.remove(attr::REVISION);
        assert_eq!(from_item(&legacy).unwrap().revision, 0);
        // A record written before several topics: topicArn + subscriptionArn read as a map of one.
        let mut single = to_item(&r);
        single.remove(attr::SUBSCRIPTIONS);
        single.insert(
            attr::TOPIC_ARN.into(),
            AttributeValue::S("arn:aws:sns:us-east-1:1:t".into()),
        );
        single.insert(
            attr::SUBSCRIPTION_ARN.into(),
            AttributeValue::S("arn:aws:sns:us-east-1:1:t:s".into()),
        );
        assert_eq!(
            from_item(&single).unwrap().subscriptions,
            BTreeMap::from([("arn:aws:sns:us-east-1:1:t".into(), "arn:aws:sns:us-east-1:1:t:s".into())])
        );
        single.remove(attr::SUBSCRIPTION_ARN);
        assert!(from_item(&single).unwrap().subscriptions.is_empty());
        let mut bad = to_item(&r);
        bad.insert(attr::SUBSCRIPTIONS.into(), AttributeValue::S("x".into()));
        assert_eq!(from_item(&bad), Err(BadItem(attr::SUBSCRIPTIONS)));
        r.group = None;
        r.subscriptions.clear();
        r.pending.clear();
        r.refused.clear();
        r.generation = 0;
        r.settings_hash = None;
        r.watch.clear();
        r.expires_at = Some(1_800_000_000);
        r.state = State::Gone;
        assert_eq!(from_item(&to_item(&r)).unwrap(), r);
        let mut item = to_item(&r);
        item.insert(attr::STATE.into(), AttributeValue::S("WEIRD".into()));
        assert_eq!(from_item(&item), Err(BadItem(attr::STATE)));
        item.remove(attr::TASK_ARN);
        assert_eq!(from_item(&item), Err(BadItem(attr::TASK_ARN)));
    }
}
