//! Which service and operation a request is, and the few parameters the emulated rules need.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// awsJson1.0, `X-Amz-Target: AmazonSQS.<Op>`.
    Sqs,
    /// awsJson1.0, `X-Amz-Target: DynamoDB_20120810.<Op>`.
    DynamoDb,
    /// Query protocol, form body `Action=<Op>`.
    Sns,
    /// Anything else (forwarded untouched).
    Unknown,
}

/// What the rules need to know about a request's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Params {
    /// Nothing the rules look at.
    None,
    /// SQS CreateQueue.
    CreateQueue {
        /// `QueueName`.
        name: String,
    },
    /// SQS DeleteQueue.
    DeleteQueue {
        /// The last segment of `QueueUrl`.
        name: String,
    },
    /// SNS Subscribe.
    Subscribe {
        /// `TopicArn`.
        topic: String,
        /// `Endpoint`.
        endpoint: String,
        /// `Attributes.entry.N.key/value`.
        attributes: BTreeMap<String, String>,
    },
    /// SNS Unsubscribe.
    Unsubscribe {
        /// `SubscriptionArn`.
        arn: String,
    },
    /// SNS SetSubscriptionAttributes.
    SetSubscriptionAttribute {
        /// `SubscriptionArn`.
        arn: String,
        /// `AttributeName`.
        name: String,
        /// `AttributeValue`.
        value: String,
    },
    /// SNS DeleteTopic.
    DeleteTopic {
        /// `TopicArn`.
        topic: String,
    },
}

/// One request, identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The service.
    pub service: Service,
    /// The operation (`CreateQueue`, `PutItem`, `Subscribe`...); empty when unknown.
    pub op: String,
    /// Parameters the rules need.
    pub params: Params,
}

impl Call {
    /// Identifies a request from its `X-Amz-Target` header (JSON protocols) or its form body (SNS).
    pub fn parse(target: Option<&str>, body: &[u8]) -> Self {
        let json_op = |prefix: &str| target.and_then(|t| t.strip_prefix(prefix)).map(str::to_owned);
        if let Some(op) = json_op("AmazonSQS.") {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let field = |k: &str| v[k].as_str().map(str::to_owned);
            let params = match op.as_str() {
                "CreateQueue" => field("QueueName").map(|name| Params::CreateQueue { name }),
                "DeleteQueue" => field("QueueUrl").map(|url| Params::DeleteQueue {
                    name: url.rsplit('/').next().unwrap_or_default().to_owned(),
                }),
                _ => None,
            };
            return Self {
                service: Service::Sqs,
                op,
                params: params.unwrap_or(Params::None),
            };
        }
        if let Some(op) = json_op("DynamoDB_20120810.") {
            return Self {
                service: Service::DynamoDb,
                op,
                params: Params::None,
            };
        }
        let form: HashMap<String, String> = form_decode(body).into_iter().collect();
        let Some(op) = form.get("Action").cloned() else {
            return Self {
                service: Service::Unknown,
                op: String::new(),
                params: Params::None,
            };
        };
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let params = match op.as_str() {
            "Subscribe" => Params::Subscribe {
                topic: get("TopicArn"),
                endpoint: get("Endpoint"),
                attributes: (1..)
                    .map_while(|i| {
                        let key = form.get(&format!("Attributes.entry.{i}.key"))?;
                        let value = form.get(&format!("Attributes.entry.{i}.value"))?;
                        Some((key.clone(), value.clone()))
                    })
                    .collect(),
            },
            "Unsubscribe" => Params::Unsubscribe {
                arn: get("SubscriptionArn"),
            },
            "SetSubscriptionAttributes" => Params::SetSubscriptionAttribute {
                arn: get("SubscriptionArn"),
                name: get("AttributeName"),
                value: get("AttributeValue"),
            },
            "DeleteTopic" => Params::DeleteTopic { topic: get("TopicArn") },
            _ => Params::None,
        };
        Self {
            service: Service::Sns,
            op,
            params,
        }
    }
}

/// Decodes an `application/x-www-form-urlencoded` body.
pub fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = match bytes.get(i..i + 3) {
                Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h * 16 + l),
                _ => None,
            };
            match (bytes[i], escaped) {
                (_, Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b'+', None) => {
                    out.push(b' ');
                    i += 1;
                }
                (b, None) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_identified_by_target_or_form_action() {
        let c = Call::parse(Some("AmazonSQS.CreateQueue"), br#"{"QueueName":"tasksub-abc"}"#);
        assert_eq!((c.service, c.op.as_str()), (Service::Sqs, "CreateQueue"));
        assert_eq!(
            c.params,
            Params::CreateQueue {
                name: "tasksub-abc".into()
            }
        );
        let c = Call::parse(
            Some("AmazonSQS.DeleteQueue"),
            br#"{"QueueUrl":"http://127.0.0.1:1/123456789012/tasksub-abc"}"#,
        );
        assert_eq!(
            c.params,
            Params::DeleteQueue {
                name: "tasksub-abc".into()
            }
        );
        let c = Call::parse(Some("DynamoDB_20120810.PutItem"), b"{}");
        assert_eq!((c.service, c.op.as_str()), (Service::DynamoDb, "PutItem"));
        let body = b"Action=Subscribe&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At\
            &Protocol=sqs&Endpoint=arn%3Aaws%3Asqs%3Aus-east-1%3A1%3Aq\
            &Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true\
            &Attributes.entry.2.key=FilterPolicy&Attributes.entry.2.value=%7B%22a%22%3A+%5B%22b%22%5D%7D";
        let c = Call::parse(None, body);
        assert_eq!((c.service, c.op.as_str()), (Service::Sns, "Subscribe"));
        let Params::Subscribe {
            topic,
            endpoint,
            attributes,
        } = c.params
        else {
            panic!("{c:?}")
        };
        assert_eq!(topic, "arn:aws:sns:us-east-1:1:t");
        assert_eq!(endpoint, "arn:aws:sqs:us-east-1:1:q");
        assert_eq!(attributes["RawMessageDelivery"], "true");
        assert_eq!(attributes["FilterPolicy"], r#"{"a": ["b"]}"#);
        let c = Call::parse(None, b"Action=Unsubscribe&SubscriptionArn=arn%3Ax");
        assert_eq!(c.params, Params::Unsubscribe { arn: "arn:x".into() });
        assert_eq!(Call::parse(None, b"hello").service, Service::Unknown);
    }

    #[test]
    fn form_decoding_handles_escapes_and_truncation() {
        assert_eq!(
            form_decode(b"a=%41%2b+b&c=&d&e=100%"),
            vec![
                ("a".into(), "A+ b".into()),
                ("c".into(), String::new()),
                ("d".into(), String::new()),
                ("e".into(), "100%".into())
            ]
        );
    }
}
