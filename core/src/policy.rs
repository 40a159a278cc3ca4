//! What each task queue and subscription is created with: policy, attributes, tags.
//!
//! Everything is built with serde so no ARN can break the JSON, and everything goes into the one
//! CreateQueue / Subscribe call (no SetQueueAttributes afterwards, so no 60 s propagation window).

use std::collections::BTreeMap;

use serde::Serialize;

use chrono::{DateTime, Utc};

use crate::settings::{Settings, Topic};

pub mod readers;

/// The queue policy: only `sns.amazonaws.com`, and only for our topics, may send; nobody else may send at
/// all (an explicit Deny, so no identity policy of the account can open the queue to other senders); and
/// nothing reaches the queue without TLS.
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
    condition: BTreeMap<&'static str, BTreeMap<&'static str, Values>>,
}

/// A condition's values: one string, or a list (any of them matches; for a negated operator, none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
enum Values {
    One(String),
    Many(Vec<String>),
}

impl Values {
    fn of(values: &[&str]) -> Self {
        match values {
            [one] => Self::One((*one).to_owned()),
            many => Self::Many(many.iter().map(|v| (*v).to_owned()).collect()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
enum Principal {
    Service {
        #[serde(rename = "Service")]
        service: &'static str,
    },
    /// `"*"`: every principal (only ever in a Deny).
    Everyone(&'static str),
}

fn condition(
    operator: &'static str,
    key: &'static str,
    values: &[&str],
) -> BTreeMap<&'static str, BTreeMap<&'static str, Values>> {
    BTreeMap::from([(operator, BTreeMap::from([(key, Values::of(values))]))])
}

/// Longest policy SQS accepts, in bytes.
pub const MAX_POLICY_BYTES: usize = 8192;

impl QueuePolicy {
    /// The policy for one queue and its topics (one statement each, whatever the topic count: an
    /// `ArnEquals` list): the Allow first, then the two Denies.
    pub fn for_topics(queue_arn: &str, topic_arns: &[&str]) -> Self {
        Self {
            version: "2012-10-17",
            id: format!("{queue_arn}/tasksub"),
            statement: vec![
                Statement {
                    sid: "AllowTopicOnly",
                    effect: "Allow",
                    principal: Principal::Service {
                        service: "sns.amazonaws.com",
                    },
                    action: "sqs:SendMessage",
                    resource: queue_arn.to_owned(),
                    condition: condition("ArnEquals", "aws:SourceArn", topic_arns),
                },
                // A request without aws:SourceArn (any direct SendMessage) matches ArnNotEquals too.
                Statement {
                    sid: "DenyOtherSenders",
                    effect: "Deny",
                    principal: Principal::Everyone("*"),
                    action: "sqs:SendMessage",
                    resource: queue_arn.to_owned(),
                    condition: condition("ArnNotEquals", "aws:SourceArn", topic_arns),
                },
                Statement {
                    sid: "DenyInsecureTransport",
                    effect: "Deny",
                    principal: Principal::Everyone("*"),
                    action: "sqs:*",
                    resource: queue_arn.to_owned(),
                    condition: condition("Bool", "aws:SecureTransport", &["false"]),
                },
            ],
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

/// The policy JSON of a task queue: it admits exactly the configured topics. What CreateQueue sets, what
/// a converging task's SetQueueAttributes rewrites, and what the start-up size check measures.
///
/// With task queue isolation on (`settings.readers`), the policy also carries the two reader Denies of
/// [`readers`] for the task the queue name carries (`<prefix><task id>[.fifo]`).
pub fn queue_policy(settings: &Settings, queue_arn: &str) -> String {
    let topics: Vec<&str> = settings.topic_arns().collect();
    let policy = QueuePolicy::for_topics(queue_arn, &topics);
    if !settings.readers.isolated() {
        return policy.to_json();
    }
    let task = crate::naming::queue_name_from_arn(queue_arn).and_then(|n| n.task_id(&settings.queue.prefix));
    let mut doc = serde_json::to_value(&policy).expect("a policy always serialises");
    readers::append(
        &mut doc,
        readers::statements(queue_arn, task.as_ref(), &settings.readers),
    );
    doc.to_string()
}

/// CreateQueue attributes for a task queue (names as the SQS API spells them).
pub fn queue_attributes(settings: &Settings, queue_arn: &str) -> BTreeMap<&'static str, String> {
    let q = &settings.queue;
    let mut attrs = BTreeMap::from([
        ("Policy", queue_policy(settings, queue_arn)),
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
    if q.fifo {
        // SNS FIFO passes each message's deduplication ID and group on; dedup and throughput limits per
        // group (high-throughput FIFO), since groups are independent streams.
        attrs.insert("FifoQueue", "true".to_owned());
        attrs.insert("DeduplicationScope", "messageGroup".to_owned());
        attrs.insert("FifoThroughputLimit", "perMessageGroupId".to_owned());
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
    /// The stack (deployment) that created the queue (`TASKSUB_STACK`): the stack's IAM policies admit
    /// CreateQueue only with this tag and every other queue action only on queues carrying it.
    pub const STACK: &str = "tasksub:stack";
    /// Every key tasksub writes (the `aws:TagKeys` of its CreateQueue).
    pub const ALL: [&str; 5] = [TASK_ARN, CLUSTER, GROUP, VERSION, STACK];
}

/// Longest tag value AWS accepts, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// What replaces the middle of a value that is too long.
pub const ELISION: &str = "...";
const KEEP_HEAD: usize = 100;

/// A tag value within [`MAX_TAG_VALUE_CHARS`]: a longer one keeps its first 100 and its last 153 characters
/// around [`ELISION`]. The end survives, so a long task ARN still parses and names its task ID (an ECS
/// cluster name may have 255 characters, so task and cluster ARNs and groups can exceed 256).
pub fn fit_tag_value(value: &str) -> String {
    let n = value.chars().count();
    if n <= MAX_TAG_VALUE_CHARS {
        return value.to_owned();
    }
    let keep_tail = MAX_TAG_VALUE_CHARS - KEEP_HEAD - ELISION.len();
    let head: String = value.chars().take(KEEP_HEAD).collect();
    let tail: String = value.chars().skip(n - keep_tail).collect();
    format!("{head}{ELISION}{tail}")
}

/// Tags for a task queue: who owns it (the stack, the task), so orphans can be attributed and swept and
/// IAM can tell tasksub's queues from any other. Every value fits AWS's 256-character limit.
pub fn queue_tags(
    settings: &Settings,
    task_arn: &str,
    cluster_arn: &str,
    group: Option<&str>,
) -> BTreeMap<&'static str, String> {
    let mut t = BTreeMap::from([
        (tags::TASK_ARN, fit_tag_value(task_arn)),
        (tags::CLUSTER, fit_tag_value(cluster_arn)),
        (tags::VERSION, fit_tag_value(crate::VERSION)),
        (tags::STACK, fit_tag_value(&settings.stack)),
    ]);
    if let Some(g) = group {
        t.insert(tags::GROUP, fit_tag_value(g));
    }
    t
}

/// Subscribe attributes for one topic (names as the SNS API spells them). Always the same for the same
/// settings and record, so a repeated Subscribe is idempotent on AWS (which refuses a repeat with
/// different attributes): a replay window starts from the record's creation, not from now.
pub fn subscription_attributes(topic: &Topic, created_at: DateTime<Utc>) -> BTreeMap<&'static str, String> {
    let s = &topic.subscription;
    let mut attrs = BTreeMap::from([("RawMessageDelivery", s.raw_delivery.to_string())]);
    // A policy the task applies is handed over in the record (`clientFilters`), never set on SNS.
    if let Some(fp) = s.filter_policy.as_ref().filter(|_| !s.filter_at_client) {
        attrs.insert("FilterPolicy", fp.clone());
    }
    if let Some(scope) = s.filter_policy_scope.as_ref().filter(|_| !s.filter_at_client) {
        attrs.insert("FilterPolicyScope", scope.clone());
    }
    if let Some(dlq) = &s.dlq_arn {
        let redrive = RedrivePolicy {
            dead_letter_target_arn: dlq,
            max_receive_count: None,
        };
        attrs.insert("RedrivePolicy", serde_json::to_string(&redrive).expect("serialises"));
    }
    if let Some(seconds) = s.replay_seconds {
        let start = created_at - chrono::Duration::seconds(i64::from(seconds));
        let replay = serde_json::json!({
            "PointType": "Timestamp",
            "StartingPoint": start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        attrs.insert("ReplayPolicy", replay.to_string());
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
            (vars::ACCOUNT_ID, "123456789012"),
            (vars::AWS_REGION, "us-east-1"),
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
            &QueuePolicy::for_topics("arn:aws:sqs:us-east-1:1:q\"x", &["arn:aws:sns:us-east-1:1:t"]).to_json(),
        )
        .unwrap();
        let st = &json["Statement"][0];
        assert_eq!(json["Version"], "2012-10-17");
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(st["Principal"], serde_json::json!({"Service": "sns.amazonaws.com"}));
        assert_eq!(st["Action"], "sqs:SendMessage");
        assert_eq!(st["Resource"], "arn:aws:sqs:us-east-1:1:q\"x");
        assert_eq!(
            st["Condition"],
            serde_json::json!({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}})
        );
        assert_eq!(json["Statement"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn policy_denies_other_senders_and_plain_http() {
        let (q, t) = ("arn:aws:sqs:us-east-1:1:q", "arn:aws:sns:us-east-1:1:t");
        let json: serde_json::Value = serde_json::from_str(&QueuePolicy::for_topics(q, &[t]).to_json()).unwrap();
        let denies: Vec<_> = json["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Deny")
            .cloned()
            .collect();
        assert_eq!(
            denies,
            vec![
                serde_json::json!({"Sid": "DenyOtherSenders", "Effect": "Deny", "Principal": "*",
                    "Action": "sqs:SendMessage", "Resource": q,
                    "Condition": {"ArnNotEquals": {"aws:SourceArn": t}}}),
                serde_json::json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
                    "Action": "sqs:*", "Resource": q,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
            ]
        );
        // The Allow is never public; only Denies name every principal.
        for st in json["Statement"].as_array().unwrap() {
            assert!(st["Effect"] == "Deny" || st["Principal"] != "*", "{st}");
        }
    }

    #[test]
    fn policy_stays_far_below_the_8_kb_limit() {
        // The longest names AWS allows: an 80-char queue, a 256-char topic, the longest partition/region.
        let q = format!("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:{}", "q".repeat(80));
        let t = format!("arn:aws-us-gov:sns:us-gov-west-1:123456789012:{}", "t".repeat(256));
        let json = QueuePolicy::for_topics(&q, &[&t]).to_json();
        assert!(json.len() < MAX_POLICY_BYTES / 4, "{} bytes", json.len());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["Statement"][1]["Condition"]["ArnNotEquals"]["aws:SourceArn"], t);
    }

    #[test]
    fn several_topics_share_one_statement_and_the_denies_list_them_all() {
        let (q, t1, t2) = (
            "arn:aws:sqs:us-east-1:1:q",
            "arn:aws:sns:us-east-1:1:a",
            "arn:aws:sns:eu-west-1:2:b",
        );
        let v: serde_json::Value = serde_json::from_str(&QueuePolicy::for_topics(q, &[t1, t2]).to_json()).unwrap();
        let statements = v["Statement"].as_array().unwrap();
        assert_eq!(
            statements.len(),
            3,
            "one statement per purpose, whatever the topic count"
        );
        assert_eq!(
            statements[0]["Condition"]["ArnEquals"]["aws:SourceArn"],
            serde_json::json!([t1, t2])
        );
        assert_eq!(
            statements[1]["Condition"]["ArnNotEquals"]["aws:SourceArn"],
            serde_json::json!([t1, t2])
        );
        // the queue attributes carry exactly the configured topics
        let s = settings(&[]);
        let a = queue_attributes(&s, q);
        let p: serde_json::Value = serde_json::from_str(&a["Policy"]).unwrap();
        assert_eq!(
            p["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"],
            s.topics[0].arn.as_str()
        );
        assert!(!a.contains_key("FifoQueue"));
    }

    #[test]
    fn isolation_adds_the_reader_denies_for_the_task_the_queue_name_carries() {
        let role = "arn:aws:iam::123456789012:role/orders-task";
        let id = "0123456789abcdef0123456789abcdef";
        let q = format!("arn:aws:sqs:us-east-1:123456789012:tasksub-{id}");
        // off: the policy is the topics' policy, byte for byte
        let s = settings(&[]);
        let topics: Vec<&str> = s.topic_arns().collect();
        assert_eq!(queue_policy(&s, &q), QueuePolicy::for_topics(&q, &topics).to_json());
        // on: the three statements, then the two reader Denies naming this task's session
        let s = settings(&[(vars::CONSUMER_ROLE_ARNS, role)]);
        let p: serde_json::Value = serde_json::from_str(&queue_policy(&s, &q)).unwrap();
        let sids: Vec<_> = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].clone())
            .collect();
        assert_eq!(
            sids,
            [
                "AllowTopicOnly",
                "DenyOtherSenders",
                "DenyInsecureTransport",
                "DenyOtherReaders",
                "DenyOtherTasks"
            ]
        );
        assert_eq!(p["Version"], "2012-10-17");
        assert_eq!(
            p["Statement"][4]["Condition"]["StringNotLike"]["aws:userid"],
            format!("*:{id}")
        );
        // a FIFO queue's name carries the task too
        let fifo = format!("{q}.fifo");
        let p: serde_json::Value = serde_json::from_str(&queue_policy(&s, &fifo)).unwrap();
        assert_eq!(
            p["Statement"][4]["Condition"]["StringNotLike"]["aws:userid"],
            format!("*:{id}")
        );
        // a queue that is not <prefix><task id> gets no session exemption: closed, not open
        let p: serde_json::Value =
            serde_json::from_str(&queue_policy(&s, "arn:aws:sqs:us-east-1:123456789012:tasksub-billing")).unwrap();
        assert!(p["Statement"][4]["Condition"].get("StringNotLike").is_none());
        assert_eq!(p["Statement"][4]["Effect"], "Deny");
        // within SQS's policy quotas: 20 statements, 10 conditions
        let p: serde_json::Value = serde_json::from_str(&queue_policy(&s, &q)).unwrap();
        let statements = p["Statement"].as_array().unwrap();
        let conditions: usize = statements
            .iter()
            .map(|s| {
                s["Condition"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|k| k.as_object().unwrap().len())
                    .sum::<usize>()
            })
            .sum();
        assert!(
            statements.len() <= 20 && conditions <= 10,
            "{} statements, {conditions} conditions",
            statements.len()
        );
    }

    #[test]
    fn fifo_topics_make_fifo_queues_with_per_group_dedup() {
        let s = settings(&[
            (vars::TOPIC_ARN, ""),
            (
                vars::TOPIC_ARNS,
                "arn:aws:sns:us-east-1:123456789012:a.fifo,arn:aws:sns:us-east-1:123456789012:b.fifo",
            ),
            (vars::TOPIC_SETTINGS, r#"{"a.fifo":{"replaySeconds":3600}}"#),
        ]);
        assert!(s.queue.fifo);
        let a = queue_attributes(&s, "arn:aws:sqs:us-east-1:123456789012:q.fifo");
        assert_eq!(a["FifoQueue"], "true");
        assert_eq!(a["DeduplicationScope"], "messageGroup");
        assert_eq!(a["FifoThroughputLimit"], "perMessageGroupId");
        // the replay window starts an hour before the record was created, the same on every retry
        let created = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let replay = subscription_attributes(&s.topics[0], created);
        assert_eq!(
            replay["ReplayPolicy"],
            r#"{"PointType":"Timestamp","StartingPoint":"2026-11-25T11:00:00.000Z"}"#
        );
        assert!(!subscription_attributes(&s.topics[1], created).contains_key("ReplayPolicy"));
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
        let now = Utc::now();
        let a = subscription_attributes(&settings(&[]).topics[0], now);
        assert_eq!(a, BTreeMap::from([("RawMessageDelivery", "true".to_owned())]));
        let s = settings(&[
            (vars::RAW_DELIVERY, "false"),
            (vars::FILTER_POLICY, r#"{ "kind": ["cache"] }"#),
            (vars::FILTER_POLICY_SCOPE, "MessageAttributes"),
            (vars::SUBSCRIPTION_DLQ_ARN, "arn:aws:sqs:us-east-1:123456789012:sdlq"),
        ]);
        let a = subscription_attributes(&s.topics[0], now);
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
        let s = settings(&[(vars::STACK, "tasksub-prod")]);
        let t = queue_tags(&s, "arn:task", "arn:cluster", Some("service:orders"));
        assert_eq!(t[tags::GROUP], "service:orders");
        assert_eq!(t[tags::VERSION], crate::VERSION);
        assert_eq!(t[tags::STACK], "tasksub-prod");
        assert!(t.keys().all(|k| tags::ALL.contains(k)));
        assert!(!queue_tags(&s, "a", "b", None).contains_key(tags::GROUP));
        assert_eq!(queue_tags(&settings(&[]), "a", "b", None)[tags::STACK], "tasksub");
    }

    #[test]
    fn long_tag_values_are_elided_to_256_chars_and_a_task_arn_still_names_its_task() {
        let cluster = "c".repeat(255);
        let id = "c13b4cb40f1f4fe4a2971f76ae5a47ad";
        let task_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{id}");
        let cluster_arn = format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}");
        let group = format!("service:{}", "s".repeat(255));
        let t = queue_tags(&settings(&[]), &task_arn, &cluster_arn, Some(&group));
        for (k, v) in &t {
            assert!(
                v.chars().count() <= MAX_TAG_VALUE_CHARS,
                "{k}: {} chars",
                v.chars().count()
            );
        }
        assert_eq!(t[tags::TASK_ARN].chars().count(), MAX_TAG_VALUE_CHARS);
        assert!(t[tags::TASK_ARN].contains(ELISION));
        assert!(t[tags::TASK_ARN].starts_with("arn:aws:ecs:us-east-1:123456789012:task/ccc"));
        let parsed = crate::naming::TaskArn::parse(&t[tags::TASK_ARN]).unwrap();
        assert_eq!(parsed.task_id.as_str(), id);
        assert!(t[tags::CLUSTER].contains(ELISION) && t[tags::GROUP].contains(ELISION));
        // Short values, and values of exactly 256 characters, are kept as they are.
        assert_eq!(fit_tag_value(&"x".repeat(256)), "x".repeat(256));
        assert_eq!(fit_tag_value("service:orders"), "service:orders");
        // Characters, not bytes.
        let wide = "é".repeat(300);
        assert_eq!(fit_tag_value(&wide).chars().count(), MAX_TAG_VALUE_CHARS);
    }
}
