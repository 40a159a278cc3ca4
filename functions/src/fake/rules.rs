//! The AWS rules the controller depends on and moto lacks, in one place: the in-memory fake
//! ([`super::Fake`]) applies them to its own calls, and the fault proxy in front of moto (tasksub-tests,
//! `proxy::Emulated`) applies them to the calls it forwards. Each side keeps its own error spelling by
//! mapping one [`Refusal`] (the fake to a `PortError`, the proxy to the service's wire error).
//!
//! - SQS: a queue name deleted less than [`AwsRules::QUEUE_NAME_REUSE`] ago cannot be created again
//!   (`AWS.SimpleQueueService.QueueDeletedRecently`).
//! - SQS: CreateQueue of an existing name with other attributes is `QueueAlreadyExists`
//!   ([`AwsRules::check_queue_attributes`]; moto has this one, so only the fake asks).
//! - SNS: Subscribe of an already subscribed (topic, endpoint) with other attributes is
//!   `InvalidParameter`; with the same attributes it is idempotent and answers the same ARN.
//!
//! Pure: no I/O and no clock; callers pass `now`. The check is separate from the update ("was it
//! refused?" then "it happened") because the proxy learns only from what moto answered with success.
#![cfg(feature = "test-util")]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

/// Attributes as a request carries them (queue or subscription).
pub type Attributes = BTreeMap<String, String>;

/// Why AWS refuses a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// CreateQueue of a name deleted less than 60 s ago.
    QueueDeletedRecently,
    /// CreateQueue of an existing queue with other attributes.
    QueueAlreadyExists,
    /// Subscribe of an existing (topic, endpoint) with other attributes.
    SubscriptionAttributesDiffer,
}

impl Refusal {
    /// The AWS operation refused.
    pub fn op(self) -> &'static str {
        match self {
            Self::QueueDeletedRecently | Self::QueueAlreadyExists => "CreateQueue",
            Self::SubscriptionAttributesDiffer => "Subscribe",
        }
    }
}

/// One subscription as AWS remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic ARN.
    pub topic_arn: String,
    /// Endpoint (queue ARN).
    pub endpoint: String,
    /// Attributes as first subscribed.
    pub attributes: Attributes,
}

/// What the rules remember: when each queue name was deleted, and every subscription by ARN.
#[derive(Debug, Clone, Default)]
pub struct AwsRules {
    deleted: HashMap<String, DateTime<Utc>>,
    subscriptions: BTreeMap<String, Subscription>,
    /// The ARN of each (topic, endpoint) in `subscriptions` (at most one each: a repeat is not stored), so
    /// [`AwsRules::find`] takes constant time at fleet scale instead of a scan of every subscription.
    by_endpoint: HashMap<(String, String), String>,
}

impl AwsRules {
    /// How long SQS refuses to re-create a deleted queue name.
    pub const QUEUE_NAME_REUSE: TimeDelta = TimeDelta::seconds(60);

    /// Whether a CreateQueue of `name` at `now` may reuse the name.
    pub fn check_name_reuse(&self, name: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        match self.deleted.get(name) {
            Some(at) if now - *at < Self::QUEUE_NAME_REUSE => Err(Refusal::QueueDeletedRecently),
            _ => Ok(()),
        }
    }

    /// Whether a CreateQueue with `requested` attributes may answer an existing queue that has `stored`:
    /// every attribute the request names must mean the same (an attribute it does not name is not
    /// compared, as SNS does for Subscribe: so a re-create never removes an attribute).
    pub fn check_queue_attributes(stored: &Attributes, requested: &Attributes) -> Result<(), Refusal> {
        if same_named(stored, requested) {
            Ok(())
        } else {
            Err(Refusal::QueueAlreadyExists)
        }
    }

    /// The queue `name` was deleted at `now`.
    pub fn queue_deleted(&mut self, name: &str, now: DateTime<Utc>) {
        self.deleted.insert(name.to_owned(), now);
    }

    /// Whether a Subscribe may go ahead: `Ok(Some(arn))` when (topic, endpoint) is already subscribed
    /// with the same attributes (AWS answers that ARN), `Ok(None)` when it is new.
    pub fn check_subscribe(
        &self,
        topic_arn: &str,
        endpoint: &str,
        attributes: &Attributes,
    ) -> Result<Option<&str>, Refusal> {
        match self.find(topic_arn, endpoint) {
            Some((_, sub)) if !same_named(&sub.attributes, attributes) => Err(Refusal::SubscriptionAttributesDiffer),
            Some((arn, _)) => Ok(Some(arn)),
            None => Ok(None),
        }
    }

    /// A Subscribe succeeded with this ARN. A repeat of a known (topic, endpoint) changes nothing: the
    /// first attributes stay.
    pub fn subscribed(&mut self, arn: &str, sub: Subscription) {
        if self.find(&sub.topic_arn, &sub.endpoint).is_none() {
            let key = (sub.topic_arn.clone(), sub.endpoint.clone());
            self.by_endpoint.insert(key, arn.to_owned());
            self.subscriptions.insert(arn.to_owned(), sub);
        }
    }

    /// A SetSubscriptionAttributes succeeded: the attribute changes (an empty value, or `{}` for a
    /// filter policy, removes it). False when the subscription is unknown.
    pub fn set_subscription_attribute(&mut self, arn: &str, name: &str, value: &str) -> bool {
        let Some(sub) = self.subscriptions.get_mut(arn) else {
            return false;
        };
        if value.is_empty() || (name == "FilterPolicy" && value == "{}") {
            sub.attributes.remove(name);
        } else {
            sub.attributes.insert(name.to_owned(), value.to_owned());
        }
        true
    }

    /// Every subscription of a deleted topic is gone with it.
    pub fn topic_deleted(&mut self, topic_arn: &str) {
        self.subscriptions.retain(|_, s| s.topic_arn != topic_arn);
        self.by_endpoint.retain(|(topic, _), _| topic != topic_arn);
    }

    /// An Unsubscribe succeeded; the subscription it removed, if known.
    pub fn unsubscribed(&mut self, arn: &str) -> Option<Subscription> {
        let sub = self.subscriptions.remove(arn)?;
        self.by_endpoint.remove(&(sub.topic_arn.clone(), sub.endpoint.clone()));
        Some(sub)
    }

    /// The subscription of `endpoint` to the topic, with its ARN.
    pub fn find(&self, topic_arn: &str, endpoint: &str) -> Option<(&str, &Subscription)> {
        let arn = self.by_endpoint.get(&(topic_arn.to_owned(), endpoint.to_owned()))?;
        self.subscriptions.get_key_value(arn).map(|(arn, s)| (arn.as_str(), s))
    }

    /// Every known subscription, by ARN.
    pub fn subscriptions(&self) -> &BTreeMap<String, Subscription> {
        &self.subscriptions
    }
}

/// True when every attribute `requested` names has the same meaning in `stored` (JSON values as JSON,
/// booleans without case); attributes the request does not name are not compared. This is what SNS does
/// for a repeated Subscribe (LocalStack's AWS-validated behaviour, localstack/localstack#9167).
fn same_named(stored: &Attributes, requested: &Attributes) -> bool {
    use tasksub_core::converge::attrs::same_value;
    let default = |k: &str| match k {
        "RawMessageDelivery" => Some("false"),
        _ => None,
    };
    requested.iter().all(|(k, v)| {
        let have = stored.get(k).map(String::as_str).or_else(|| default(k));
        have.is_some_and(|h| same_value(k, v, h))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(raw: &str) -> Attributes {
        BTreeMap::from([("RawMessageDelivery".to_owned(), raw.to_owned())])
    }

    fn sub(raw: &str) -> Subscription {
        Subscription {
            topic_arn: "t".into(),
            endpoint: "q".into(),
            attributes: attrs(raw),
        }
    }

    #[test]
    fn a_deleted_queue_name_is_refused_for_60_seconds_then_free() {
        let t0 = DateTime::UNIX_EPOCH;
        let mut rules = AwsRules::default();
        assert_eq!(rules.check_name_reuse("q1", t0), Ok(()));
        rules.queue_deleted("q1", t0 + TimeDelta::seconds(5));
        let at = |s| t0 + TimeDelta::seconds(s);
        assert_eq!(rules.check_name_reuse("q1", at(5)), Err(Refusal::QueueDeletedRecently));
        assert_eq!(rules.check_name_reuse("q2", at(5)), Ok(()), "other names are free");
        assert_eq!(rules.check_name_reuse("q1", at(64)), Err(Refusal::QueueDeletedRecently));
        assert_eq!(rules.check_name_reuse("q1", at(65)), Ok(()));
        rules.queue_deleted("q1", at(100));
        assert_eq!(
            rules.check_name_reuse("q1", at(101)),
            Err(Refusal::QueueDeletedRecently),
            "each delete restarts it"
        );
    }

    #[test]
    fn an_existing_queue_must_be_asked_for_with_the_same_attributes() {
        assert_eq!(AwsRules::check_queue_attributes(&attrs("a"), &attrs("a")), Ok(()));
        assert_eq!(
            AwsRules::check_queue_attributes(&attrs("a"), &attrs("b")),
            Err(Refusal::QueueAlreadyExists)
        );
        assert_eq!(
            AwsRules::check_queue_attributes(&attrs("a"), &Attributes::new()),
            Ok(()),
            "an attribute the request does not name is not compared"
        );
        let json = |p: &str| BTreeMap::from([("Policy".to_owned(), p.to_owned())]);
        assert_eq!(
            AwsRules::check_queue_attributes(&json(r#"{"a":1,"b":2}"#), &json(r#"{"b":2,"a":1}"#)),
            Ok(())
        );
    }

    #[test]
    fn a_repeated_subscribe_must_carry_the_first_attributes_until_unsubscribed() {
        let mut rules = AwsRules::default();
        assert_eq!(rules.check_subscribe("t", "q", &attrs("true")), Ok(None));
        rules.subscribed("t:1", sub("true"));
        assert_eq!(rules.check_subscribe("t", "q", &attrs("true")), Ok(Some("t:1")));
        assert_eq!(
            rules.check_subscribe("t", "q", &attrs("false")),
            Err(Refusal::SubscriptionAttributesDiffer)
        );
        assert_eq!(
            rules.check_subscribe("t", "q", &attrs("TRUE")),
            Ok(Some("t:1")),
            "booleans ignore case"
        );
        assert_eq!(
            rules.check_subscribe("t", "q", &Attributes::new()),
            Ok(Some("t:1")),
            "an attribute the request does not name is not compared"
        );
        let filtered = BTreeMap::from([("FilterPolicy".to_owned(), "{}".to_owned())]);
        assert_eq!(
            rules.check_subscribe("t", "q", &filtered),
            Err(Refusal::SubscriptionAttributesDiffer)
        );
        assert!(rules.set_subscription_attribute("t:1", "FilterPolicy", r#"{"k":["a"]}"#));
        assert_eq!(
            rules.subscriptions()["t:1"].attributes["FilterPolicy"],
            r#"{"k":["a"]}"#
        );
        assert!(rules.set_subscription_attribute("t:1", "FilterPolicy", "{}"));
        assert!(
            !rules.subscriptions()["t:1"].attributes.contains_key("FilterPolicy"),
            "{{}} removes it"
        );
        assert!(!rules.set_subscription_attribute("nope", "RawMessageDelivery", "true"));
        assert_eq!(rules.check_subscribe("t", "other", &attrs("false")), Ok(None));
        rules.subscribed("t:2", sub("false"));
        assert_eq!(
            rules.find("t", "q").map(|(arn, _)| arn),
            Some("t:1"),
            "a repeat changes nothing"
        );
        assert_eq!(rules.subscriptions().len(), 1);
        assert_eq!(rules.unsubscribed("t:1"), Some(sub("true")));
        assert_eq!(rules.unsubscribed("t:1"), None);
        assert_eq!(
            rules.check_subscribe("t", "q", &attrs("false")),
            Ok(None),
            "after Unsubscribe any attributes go"
        );
    }

    #[test]
    fn find_follows_subscribe_unsubscribe_and_topic_deletion() {
        let mut rules = AwsRules::default();
        let on = |topic: &str, endpoint: &str| Subscription {
            topic_arn: topic.into(),
            endpoint: endpoint.into(),
            attributes: Attributes::new(),
        };
        rules.subscribed("t:1", on("t", "q"));
        rules.subscribed("u:1", on("u", "q"));
        assert_eq!(rules.find("t", "q").map(|(arn, _)| arn), Some("t:1"));
        assert_eq!(rules.find("t", "r"), None, "another endpoint");
        rules.unsubscribed("t:1");
        assert_eq!(rules.find("t", "q"), None, "gone with its Unsubscribe");
        rules.subscribed("t:2", on("t", "q"));
        assert_eq!(
            rules.find("t", "q").map(|(arn, _)| arn),
            Some("t:2"),
            "a new ARN after a re-subscribe"
        );
        rules.topic_deleted("t");
        assert_eq!(rules.find("t", "q"), None, "gone with its topic");
        assert_eq!(
            rules.find("u", "q").map(|(arn, _)| arn),
            Some("u:1"),
            "other topics stay"
        );
    }
}
