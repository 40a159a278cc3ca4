//! The typed message a handler sees, built from what SQS returned (pure).
//!
//! With SNS raw delivery (tasksub's default) the SQS body is the published message and the SNS message
//! attributes arrive as SQS message attributes. With raw delivery off, the body is the SNS JSON envelope
//! (`Type: Notification`, `MessageId`, `TopicArn`, `Message`, `Timestamp`, `MessageAttributes`); the
//! client unwraps it so the handler sees the same body and attributes either way.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;

/// The message attribute a publisher sets to name a message for duplicate suppression
/// ([`crate::ClientBuilder::dedup_window`]): copies carrying the same value are handled once.
///
/// Set it on `sns:Publish` (a `String` attribute): it reaches the queue with raw delivery on or off,
/// and it is the only key that also catches a publisher's own retry (a second `Publish` of the same
/// event gets a new SNS message ID).
pub const DEDUP_ID_ATTRIBUTE: &str = "tasksub-dedup-id";

/// The SQS system attribute naming a FIFO message's group.
pub(crate) const GROUP_ID: &str = "MessageGroupId";

/// A message attribute value.
#[derive(Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `String` and `Number` attributes (numbers keep their decimal text).
    String(String),
    /// `Binary` attributes.
    Binary(Vec<u8>),
}

impl fmt::Debug for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.debug_tuple("String").field(s).finish(),
            Self::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
        }
    }
}

/// One message attribute: its data type (`String`, `Number`, `Binary`, with optional `.custom`
/// suffix) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The data type as sent, e.g. `String` or `Number.int`.
    pub data_type: String,
    /// The value.
    pub value: AttributeValue,
}

impl Attribute {
    /// The value as text, for `String` and `Number` attributes.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            AttributeValue::String(s) => Some(s),
            AttributeValue::Binary(_) => None,
        }
    }
}

/// How the message reached the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The body is the message as published (SNS raw delivery, or sent to SQS directly).
    Raw,
    /// The body was an SNS envelope and has been unwrapped.
    SnsEnvelope,
}

/// A message from this task's queue. Its `Debug` output shows the body's size, never its content.
#[derive(Clone)]
pub struct Message {
    pub(crate) sqs_message_id: String,
    pub(crate) body: String,
    pub(crate) attributes: BTreeMap<String, Attribute>,
    pub(crate) delivery: Delivery,
    pub(crate) sns_message_id: Option<String>,
    pub(crate) topic_arn: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) timestamp: Option<DateTime<Utc>>,
    pub(crate) receive_count: u32,
    pub(crate) group_id: Option<String>,
}

impl Message {
    /// The message body: the published message, whatever the delivery mode.
    pub fn body(&self) -> &str {
        &self.body
    }
    /// Takes the body.
    pub fn into_body(self) -> String {
        self.body
    }
    /// Parses the body as JSON.
    pub fn body_json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.body)
    }
    /// Message attributes (SNS message attributes, whatever the delivery mode).
    pub fn attributes(&self) -> &BTreeMap<String, Attribute> {
        &self.attributes
    }
    /// One attribute's text value.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Attribute::as_str)
    }
    /// Raw or unwrapped from an SNS envelope.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }
    /// The SNS message ID; known only when the envelope was delivered (raw delivery drops it).
    pub fn sns_message_id(&self) -> Option<&str> {
        self.sns_message_id.as_deref()
    }
    /// The SQS message ID (stable across redeliveries of the same SQS message).
    pub fn sqs_message_id(&self) -> &str {
        &self.sqs_message_id
    }
    /// The topic the message was published to; known only from an SNS envelope.
    pub fn topic_arn(&self) -> Option<&str> {
        self.topic_arn.as_deref()
    }
    /// The SNS subject, if one was published.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// When the message was published (SNS `Timestamp`) or, for raw delivery, sent to the queue
    /// (SQS `SentTimestamp`).
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.timestamp
    }
    /// How many times SQS has delivered this message (1 on the first delivery).
    pub fn receive_count(&self) -> u32 {
        self.receive_count
    }
    /// The message group of a FIFO queue (`MessageGroupId`); `None` on a standard queue. Messages of
    /// one group are handled one at a time, in order.
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }
    /// The key duplicate suppression uses: the publisher's [`DEDUP_ID_ATTRIBUTE`] if set (non-empty),
    /// else the SNS message ID if known (envelope delivery), else the SQS message ID (which only
    /// matches a redelivery of the very same SQS message).
    pub fn dedup_key(&self) -> &str {
        self.attribute(DEDUP_ID_ATTRIBUTE)
            .filter(|v| !v.is_empty())
            .or(self.sns_message_id.as_deref())
            .unwrap_or(&self.sqs_message_id)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("sqs_message_id", &self.sqs_message_id)
            .field("sns_message_id", &self.sns_message_id)
            .field("body_bytes", &self.body.len())
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .field("delivery", &self.delivery)
            .field("topic_arn", &self.topic_arn)
            .field("timestamp", &self.timestamp)
            .field("receive_count", &self.receive_count)
            .field("group_id", &self.group_id)
            .finish()
    }
}

/// What the queue port returns for one received message (SDK types stay in the adapter).
#[derive(Clone)]
pub(crate) struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    pub attributes: BTreeMap<String, Attribute>,
    /// SQS system attributes (`ApproximateReceiveCount`, `SentTimestamp`, `MessageGroupId`, ...).
    pub system: BTreeMap<String, String>,
}

impl fmt::Debug for Received {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received")
            .field("message_id", &self.message_id)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    message: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    message_attributes: BTreeMap<String, EnvelopeAttribute>,
}

#[derive(Deserialize)]
struct EnvelopeAttribute {
    #[serde(rename = "Type")]
    data_type: String,
    #[serde(rename = "Value")]
    value: String,
}

impl EnvelopeAttribute {
    fn into_attribute(self) -> Attribute {
        let value = if self.data_type.starts_with("Binary") {
            match aws_smithy_types::base64::decode(&self.value) {
                Ok(bytes) => AttributeValue::Binary(bytes),
                Err(_) => AttributeValue::String(self.value),
            }
        } else {
            AttributeValue::String(self.value)
        };
        Attribute {
            data_type: self.data_type,
            value,
        }
    }
}

/// The first character of a JSON object (a named constant keeps braces out of code lines).
const OBJECT_START: char = '{';

/// Parses an SNS notification envelope; `None` when the body is not one.
fn envelope(body: &str) -> Option<Envelope> {
    if !body.trim_start().starts_with(OBJECT_START) {
        return None;
    }
    serde_json::from_str::<Envelope>(body)
        .ok()
        .filter(|e| e.kind == "Notification")
}

/// Whether SNS envelopes (raw delivery off) are unwrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelopes {
    /// The handler sees the published body and attributes.
    Unwrap,
    /// The handler sees the SQS body as is.
    Keep,
}

impl Message {
    /// Builds the handler's view of a received message, unwrapping an SNS envelope when asked to.
    pub(crate) fn from_received(raw: &Received, envelopes: Envelopes) -> Self {
        let message = Self::raw(raw);
        match envelopes {
            Envelopes::Unwrap => match envelope(&raw.body) {
                Some(env) => message.unwrapped(env),
                None => message,
            },
            Envelopes::Keep => message,
        }
    }

    /// The message as SQS returned it.
    fn raw(raw: &Received) -> Self {
        let system = |name: &str| raw.system.get(name);
        Self {
            sqs_message_id: raw.message_id.clone(),
            body: raw.body.clone(),
            attributes: raw.attributes.clone(),
            delivery: Delivery::Raw,
            sns_message_id: None,
            topic_arn: None,
            subject: None,
            timestamp: system("SentTimestamp")
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
            receive_count: system("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
            group_id: system(GROUP_ID).cloned(),
        }
    }

    /// The published message inside the envelope `env` of this SQS message.
    fn unwrapped(self, env: Envelope) -> Self {
        let mut attributes: BTreeMap<String, Attribute> = env
            .message_attributes
            .into_iter()
            .map(|(k, v)| (k, v.into_attribute()))
            .collect();
        // SQS-level attributes (rare with an envelope) never override the published ones.
        for (k, v) in self.attributes {
            attributes.entry(k).or_insert(v);
        }
        let timestamp = env
            .timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .or(self.timestamp);
        Self {
            body: env.message,
            attributes,
            delivery: Delivery::SnsEnvelope,
            sns_message_id: Some(env.message_id),
            topic_arn: Some(env.topic_arn),
            subject: env.subject,
            timestamp,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(body: &str) -> Received {
        Received {
            message_id: "sqs-1".into(),
            receipt: "rh".into(),
            body: body.into(),
            attributes: BTreeMap::new(),
            system: [("ApproximateReceiveCount", "3"), ("SentTimestamp", "1700000000123")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    // The envelope moto (and SNS) delivers when raw delivery is off.
    const ENVELOPE: &str = r#"{
      "Type": "Notification",
      "MessageId": "5e1a7f2e-1111-2222-3333-444455556666",
      "TopicArn": "arn:aws:sns:us-east-1:123456789012:fanout",
      "Subject": "hello",
      "Message": "{\"price\":42}",
      "Timestamp": "2024-05-01T12:00:00.000Z",
      "SignatureVersion": "1",
      "Signature": "EXAMPLE",
      "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
      "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
      "MessageAttributes": {
        "kind": {"Type": "String", "Value": "price"},
        "n": {"Type": "Number", "Value": "7"},
        "blob": {"Type": "Binary", "Value": "aGk="}
      }
    }"#;

    #[test]
    fn envelopes_are_unwrapped() {
        let m = Message::from_received(&received(ENVELOPE), Envelopes::Unwrap);
        assert_eq!(m.delivery(), Delivery::SnsEnvelope);
        assert_eq!(m.body(), r#"{"price":42}"#);
        assert_eq!(m.body_json::<serde_json::Value>().unwrap()["price"], 42);
        assert_eq!(m.sns_message_id(), Some("5e1a7f2e-1111-2222-3333-444455556666"));
        assert_eq!(m.topic_arn(), Some("arn:aws:sns:us-east-1:123456789012:fanout"));
        assert_eq!(m.subject(), Some("hello"));
        assert_eq!(m.timestamp().unwrap().to_rfc3339(), "2024-05-01T12:00:00+00:00");
        assert_eq!(m.attribute("kind"), Some("price"));
        assert_eq!(m.attributes()["n"].data_type, "Number");
        assert_eq!(m.attributes()["blob"].value, AttributeValue::Binary(b"hi".to_vec()));
        assert_eq!(m.receive_count(), 3);
        assert_eq!(m.dedup_key(), "5e1a7f2e-1111-2222-3333-444455556666");
    }

    #[test]
    fn raw_bodies_pass_through() {
        for body in [r#"{"price":42}"#, "plain text", r#"{"Type":"Other","Message":"x"}"#, ""] {
            let m = Message::from_received(&received(body), Envelopes::Unwrap);
            assert_eq!(m.delivery(), Delivery::Raw, "{body:?}");
            assert_eq!(m.body(), body);
            assert_eq!(m.sns_message_id(), None);
            assert_eq!(m.timestamp().unwrap().timestamp_millis(), 1_700_000_000_123);
            assert_eq!(m.dedup_key(), "sqs-1");
        }
    }

    #[test]
    fn the_dedup_attribute_wins_over_every_message_id() {
        let with_attr = |body: &str, v: &str| {
            let mut r = received(body);
            r.attributes.insert(
                DEDUP_ID_ATTRIBUTE.into(),
                Attribute {
                    data_type: "String".into(),
                    value: AttributeValue::String(v.into()),
                },
            );
            r
        };
        // Raw delivery: the attribute, not the SQS message ID.
        assert_eq!(
            Message::from_received(&with_attr("x", "evt-1"), Envelopes::Unwrap).dedup_key(),
            "evt-1"
        );
        // Envelope: the attribute (published inside the envelope or on the SQS message), not the SNS ID.
        assert_eq!(
            Message::from_received(&with_attr(ENVELOPE, "evt-2"), Envelopes::Unwrap).dedup_key(),
            "evt-2"
        );
        let inside = ENVELOPE.replace(
            r#""kind": {"Type": "String", "Value": "price"},"#,
            r#""kind": {"Type": "String", "Value": "price"}, "tasksub-dedup-id": {"Type": "String", "Value": "evt-3"},"#,
        );
        assert_eq!(
            Message::from_received(&received(&inside), Envelopes::Unwrap).dedup_key(),
            "evt-3"
        );
        // An empty attribute is ignored.
        assert_eq!(
            Message::from_received(&with_attr("x", ""), Envelopes::Unwrap).dedup_key(),
            "sqs-1"
        );
    }

    #[test]
    fn unwrapping_can_be_turned_off() {
        let m = Message::from_received(&received(ENVELOPE), Envelopes::Keep);
        assert_eq!(m.delivery(), Delivery::Raw);
        assert_eq!(m.body(), ENVELOPE);
    }

    #[test]
    fn debug_never_shows_the_body() {
        let m = Message::from_received(&received(r#"{"secret":"hunter2"}"#), Envelopes::Unwrap);
        let text = format!("{m:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("body_bytes: 20"), "{text}");
        let r = received("hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{r:?}").contains("rh"));
    }
}
