//! What each task queue and subscription is created with: policy, attributes, tags.
//!
//! Everything is built with serde so no ARN can break the JSON, and everything goes into the one
//! CreateQueue / Subscribe call (no SetQueueAttributes afterwards, so no 60 s propagation window).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::settings::Settings;

/// The queue policy: only `sns.amazonaws.com`, and only for our topic, may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueuePolicy {
    version: &'static str,
    id: String,
    statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement {
    sid: &'static str,
    effect: &'static str,
    principal: Principal,
    action: &'static str,
    resource: String,
    condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Principal {
    #[serde(rename = "Service")]
    service: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Condition {
    #[serde(rename = "ArnEquals")]
    arn_equals: SourceArn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct SourceArn {
    #[serde(rename = "aws:SourceArn")]
    source_arn: String,
}

impl QueuePolicy {
    /// The policy for one queue and one topic.
    pub fn for_topic(queue_arn: &str, topic_arn: &str) -> Self {
        Self {
            version: "2012-10-17",
            id: format!("{queue_arn}/tasksub"),
            statement: vec![Statement {
                sid: "AllowTopicOnly",
                effect: "Allow",
                principal: Principal {
                    service: "sns.amazonaws.com",
                },
                action: "sqs:SendMessage",
                resource: queue_arn.to_owned(),
                condition: Condition {
                    arn_equals: SourceArn {
                        source_arn: topic_arn.to_owned(),
                    },
                },
            }],
        }
    }
    /// The policy as the JSON string SQS expects.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy always serialises")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RedrivePolicy<'a> {
    dead_letter_target_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_receive_count: Option<String>,
}

/// CreateQueue attributes for a task queue (names as the SQS API spells them).
pub fn queue_attributes(settings: &Settings, queue_arn: &str) -> BTreeMap<&'static str, String> {
    let q = &settings.queue;
    let mut attrs = BTreeMap::from([
        (
            "Policy",
            QueuePolicy::for_topic(queue_arn, settings.topic.as_str()).to_json(),
        ),
        ("SqsManagedSseEnabled", "true".to_owned()),
        ("MessageRetentionPeriod", q.retention_seconds.to_string()),
        ("VisibilityTimeout", q.visibility_seconds.to_string()),
        ("ReceiveMessageWaitTimeSeconds", "20".to_owned()),
    ]);
    if let Some(dlq) = &q.dlq_arn {
        let redrive = RedrivePolicy {
            dead_letter_target_arn: dlq,
            max_receive_count: Some(q.max_receive_count.to_string()),
        };
        attrs.insert("RedrivePolicy", serde_json::to_string(&redrive).expect("serialises"));
    }
    attrs
}

/// Tag keys written on every task queue.
pub mod tags {
    /// The task ARN.
    pub const TASK_ARN: &str = "tasksub:task-arn";
    /// The cluster ARN.
    pub const CLUSTER: &str = "tasksub:cluster";
    /// The task's group (`service:<name>`), when it has one.
    pub const GROUP: &str = "tasksub:group";
    /// The tasksub version that created the queue.
    pub const VERSION: &str = "tasksub:version";
}

/// Tags for a task queue: who owns it, so orphans can be attributed and swept.
pub fn queue_tags(task_arn: &str, cluster_arn: &str, group: Option<&str>) -> BTreeMap<&'static str, String> {
    let mut t = BTreeMap::from([
        (tags::TASK_ARN, task_arn.to_owned()),
        (tags::CLUSTER, cluster_arn.to_owned()),
        (tags::VERSION, crate::VERSION.to_owned()),
    ]);
    if let Some(g) = group {
        t.insert(tags::GROUP, g.to_owned());
    }
    t
}

/// Subscribe attributes (names as the SNS API spells them). Always the same for the same settings, so a
/// repeated Subscribe is idempotent on AWS (which refuses a repeat with different attributes).
pub fn subscription_attributes(settings: &Settings) -> BTreeMap<&'static str, String> {
    let s = &settings.subscription;
    let mut attrs = BTreeMap::from([("RawMessageDelivery", s.raw_delivery.to_string())]);
    if let Some(fp) = &s.filter_policy {
        attrs.insert("FilterPolicy", fp.clone());
    }
    if let Some(scope) = &s.filter_policy_scope {
        attrs.insert("FilterPolicyScope", scope.clone());
    }
    if let Some(dlq) = &s.dlq_arn {
        let redrive = RedrivePolicy {
            dead_letter_target_arn: dlq,
            max_receive_count: None,
        };
        attrs.insert("RedrivePolicy", serde_json::to_string(&redrive).expect("serialises"));
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::vars;

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let m: BTreeMap<String, String> = [
            (vars::TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:fanout"),
            (vars::TABLE, "records"),
            (vars::CLUSTERS, "prod"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        Settings::from_map(&m).unwrap()
    }

    #[test]
    fn policy_admits_only_the_topic_through_the_sns_service() {
        let json: serde_json::Value = serde_json::from_str(
            &QueuePolicy::for_topic("arn:aws:sqs:us-east-1:1:q\"x", "arn:aws:sns:us-east-1:1:t").to_json(),
        )
        .unwrap();
        let st = &json["Statement"][0];
        assert_eq!(json["Version"], "2012-10-17");
        assert_eq!(st["Principal"], serde_json::json!({"Service": "sns.amazonaws.com"}));
        assert_eq!(st["Action"], "sqs:SendMessage");
        assert_eq!(st["Resource"], "arn:aws:sqs:us-east-1:1:q\"x");
        assert_eq!(
            st["Condition"]["ArnEquals"]["aws:SourceArn"],
            "arn:aws:sns:us-east-1:1:t"
        );
        assert_eq!(json["Statement"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn queue_attributes_carry_policy_encryption_and_optional_redrive() {
        let a = queue_attributes(&settings(&[]), "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(a["SqsManagedSseEnabled"], "true");
        assert_eq!(a["MessageRetentionPeriod"], "86400");
        assert!(!a.contains_key("RedrivePolicy"));
        let a = queue_attributes(
            &settings(&[(vars::QUEUE_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:dlq")]),
            "arn:aws:sqs:us-east-1:123456789012:q",
        );
        let redrive: serde_json::Value = serde_json::from_str(&a["RedrivePolicy"]).unwrap();
        assert_eq!(redrive["deadLetterTargetArn"], "arn:aws:sqs:us-east-1:123456789012:dlq");
        assert_eq!(redrive["maxReceiveCount"], "5");
    }

    #[test]
    fn subscription_attributes_follow_settings() {
        let a = subscription_attributes(&settings(&[]));
        assert_eq!(a, BTreeMap::from([("RawMessageDelivery", "true".to_owned())]));
        let a = subscription_attributes(&settings(&[
            (vars::RAW_DELIVERY, "false"),
            (vars::FILTER_POLICY, r#"{ "kind": ["cache"] }"#),
            (vars::FILTER_POLICY_SCOPE, "MessageAttributes"),
            (vars::SUBSCRIPTION_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:sdlq"),
        ]));
        assert_eq!(a["RawMessageDelivery"], "false");
        assert_eq!(a["FilterPolicy"], r#"{"kind":["cache"]}"#);
        assert_eq!(a["FilterPolicyScope"], "MessageAttributes");
        assert_eq!(
            a["RedrivePolicy"],
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:sdlq"}"#
        );
    }

    #[test]
    fn tags_name_the_owner() {
        let t = queue_tags("arn:task", "arn:cluster", Some("service:orders"));
        assert_eq!(t[tags::GROUP], "service:orders");
        assert_eq!(t[tags::VERSION], crate::VERSION);
        assert!(!queue_tags("a", "b", None).contains_key(tags::GROUP));
    }
}
