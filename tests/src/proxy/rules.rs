//! The injection rules ([`Faults`]) and the AWS rules moto lacks ([`Emulated`]: the fake's
//! [`AwsRules`], fed from the wire). No I/O, no clock of their own: the proxy asks them about each call.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
pub use tasksub_functions::fake::rules::Refusal;
use tasksub_functions::fake::rules::{AwsRules, Subscription};

use super::call::{Call, Params};

/// A fault to inject into one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling error (SQS `RequestThrottled`, DynamoDB `ThrottlingException`, SNS
    /// `Throttling`); not forwarded.
    Throttle,
    /// HTTP 500 (`InternalError`) or 503 (`ServiceUnavailable`) in the service's error shape; not forwarded.
    Status(u16),
    /// Forwarded (the call takes effect at once), then the response is held back this long.
    Slow(Duration),
    /// The connection is closed without forwarding and without a response.
    Drop,
    /// Forwarded (the call takes effect), then the connection is closed without a response: the caller
    /// cannot know whether it worked.
    DropAfterForward,
}

impl Fault {
    /// True when moto sees the call.
    pub fn forwards(self) -> bool {
        matches!(self, Self::Slow(_) | Self::DropAfterForward)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Throttle => f.write_str("throttle"),
            Self::Status(s) => write!(f, "http-{s}"),
            Self::Slow(d) => write!(f, "slow-{}ms", d.as_millis()),
            Self::Drop => f.write_str("drop"),
            Self::DropAfterForward => f.write_str("drop-after-forward"),
        }
    }
}

#[derive(Debug, Clone)]
enum Trigger {
    /// Let `skip` calls pass, then fail `left` calls.
    Next {
        skip: usize,
        left: usize,
    },
    Probability(f64),
}

#[derive(Debug, Clone)]
struct Rule {
    op: Option<String>,
    fault: Fault,
    trigger: Trigger,
}

/// The injection rules, in the order they were added; the first that fires wins. Every "after N" rule
/// counts every call of its operation, whichever rule fires.
#[derive(Debug)]
pub struct Faults {
    rules: Vec<Rule>,
    rng: fastrand::Rng,
}

impl Faults {
    /// No rules; probabilities drawn from an RNG seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next `n` calls of `op` get `fault`.
    pub fn fail_next(&mut self, op: &str, n: usize, fault: Fault) {
        self.fail_after(op, 0, n, fault);
    }

    /// The next `skip` calls of `op` pass, the `n` after them get `fault` (`fail_after("PutItem", 1, 1,
    /// ..)` fails provisioning's second PutItem, MarkReady).
    pub fn fail_after(&mut self, op: &str, skip: usize, n: usize, fault: Fault) {
        if n > 0 {
            self.rules.push(Rule {
                op: Some(op.to_owned()),
                fault,
                trigger: Trigger::Next { skip, left: n },
            });
        }
    }

    /// Every call of `op` (of any operation when `None`) gets `fault` with probability `p`.
    pub fn fail_randomly(&mut self, op: Option<&str>, p: f64, fault: Fault) {
        self.rules.push(Rule {
            op: op.map(str::to_owned),
            fault,
            trigger: Trigger::Probability(p.clamp(0.0, 1.0)),
        });
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The fault for this call of `op`, if a rule fires (a "next N" rule is used up by firing).
    pub fn pick(&mut self, op: &str) -> Option<Fault> {
        let mut fired = None;
        for rule in self.rules.iter_mut() {
            if rule.op.as_deref().is_some_and(|o| o != op) {
                continue;
            }
            match &mut rule.trigger {
                Trigger::Next { skip, .. } if *skip > 0 => *skip -= 1,
                Trigger::Next { left, .. } if fired.is_none() => {
                    *left -= 1;
                    fired = Some(rule.fault);
                }
                Trigger::Probability(p) if fired.is_none() && self.rng.f64() < *p => fired = Some(rule.fault),
                _ => {}
            }
        }
        self.rules
            .retain(|r| !matches!(r.trigger, Trigger::Next { left: 0, .. }));
        fired
    }
}

/// The AWS rules moto lacks, as the fake applies them ([`AwsRules`]), on a simulated clock. moto itself
/// refuses a CreateQueue with other attributes, so only the 60 s name reuse and the Subscribe attributes
/// are asked here.
#[derive(Debug, Default)]
pub struct Emulated {
    now: Duration,
    rules: AwsRules,
}

impl Emulated {
    /// The simulated time (starts at zero).
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Moves the simulated clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// The simulated time as the rules' clock (zero is the Unix epoch).
    fn clock(&self) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::from_std(self.now).expect("a simulated time in range")
    }

    /// Whether AWS would refuse this call.
    pub fn check(&self, call: &Call) -> Option<Refusal> {
        let verdict = match &call.params {
            Params::CreateQueue { name } => self.rules.check_name_reuse(name, self.clock()),
            Params::Subscribe {
                topic,
                endpoint,
                attributes,
            } => self.rules.check_subscribe(topic, endpoint, attributes).map(|_| ()),
            _ => Ok(()),
        };
        verdict.err()
    }

    /// Learns from a call the service answered with success (`body` is its response).
    pub fn observe(&mut self, call: &Call, body: &[u8]) {
        match &call.params {
            Params::DeleteQueue { name } => {
                let now = self.clock();
                self.rules.queue_deleted(name, now);
            }
            Params::Subscribe {
                topic,
                endpoint,
                attributes,
            } => {
                // moto always answers the ARN; without one the subscription is still remembered.
                let arn = xml_text(body, "SubscriptionArn").unwrap_or_else(|| format!("{topic}?{endpoint}"));
                let sub = Subscription {
                    topic_arn: topic.clone(),
                    endpoint: endpoint.clone(),
                    attributes: attributes.clone(),
                };
                self.rules.subscribed(&arn, sub);
            }
            Params::Unsubscribe { arn } => {
                self.rules.unsubscribed(arn);
            }
            Params::SetSubscriptionAttribute { arn, name, value } => {
                self.rules.set_subscription_attribute(arn, name, value);
            }
            Params::DeleteTopic { topic } => self.rules.topic_deleted(topic),
            _ => {}
        }
    }
}

fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = s.find(&open)? + open.len();
    let len = s[start..].find(&format!("</{tag}>"))?;
    Some(s[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_n_rules_fire_n_times_in_order_then_vanish() {
        let mut f = Faults::new(1);
        f.fail_next("PutItem", 2, Fault::Throttle);
        f.fail_next("PutItem", 1, Fault::Drop);
        assert_eq!(f.pick("GetItem"), None);
        assert_eq!(f.pick("PutItem"), Some(Fault::Throttle));
        assert_eq!(f.pick("PutItem"), Some(Fault::Throttle));
        assert_eq!(f.pick("PutItem"), Some(Fault::Drop));
        assert_eq!(f.pick("PutItem"), None);
        f.fail_next("CreateQueue", 0, Fault::Drop);
        assert_eq!(f.pick("CreateQueue"), None);
        f.fail_after("PutItem", 1, 1, Fault::Status(500));
        f.fail_next("PutItem", 1, Fault::Throttle);
        assert_eq!(
            f.pick("PutItem"),
            Some(Fault::Throttle),
            "the skipping rule counts this call"
        );
        assert_eq!(f.pick("PutItem"), Some(Fault::Status(500)));
        assert_eq!(f.pick("PutItem"), None);
        f.fail_next("CreateQueue", 1, Fault::Drop);
        f.clear();
        assert_eq!(f.pick("CreateQueue"), None);
    }

    #[test]
    fn probability_rules_are_seeded_and_roughly_fair() {
        let draws = |seed| {
            let mut f = Faults::new(seed);
            f.fail_randomly(None, 0.3, Fault::Throttle);
            (0..1000).map(|_| f.pick("Subscribe").is_some()).collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7), "same seed, same faults");
        assert_ne!(a, draws(8));
        let hits = a.iter().filter(|x| **x).count();
        assert!((240..=360).contains(&hits), "{hits} of 1000 at p=0.3");
        let mut f = Faults::new(1);
        f.fail_randomly(Some("CreateQueue"), 1.0, Fault::Status(503));
        f.fail_randomly(Some("PutItem"), 0.0, Fault::Status(503));
        assert!((0..100).all(|_| f.pick("CreateQueue") == Some(Fault::Status(503))));
        assert!((0..100).all(|_| f.pick("PutItem").is_none()));
    }

    fn call(target: &str, body: &str) -> Call {
        Call::parse(Some(target), body.as_bytes())
    }

    #[test]
    fn deleted_queue_names_are_refused_for_60_simulated_seconds() {
        let mut aws = Emulated::default();
        let create = call("AmazonSQS.CreateQueue", r#"{"QueueName":"q1"}"#);
        let delete = call("AmazonSQS.DeleteQueue", r#"{"QueueUrl":"http://h/123/q1"}"#);
        assert_eq!(aws.check(&create), None);
        aws.advance(Duration::from_secs(5));
        aws.observe(&delete, b"{}");
        assert_eq!(aws.check(&create), Some(Refusal::QueueDeletedRecently));
        assert_eq!(aws.check(&call("AmazonSQS.CreateQueue", r#"{"QueueName":"q2"}"#)), None);
        aws.advance(Duration::from_secs(59));
        assert_eq!(aws.check(&create), Some(Refusal::QueueDeletedRecently));
        aws.advance(Duration::from_secs(1));
        assert_eq!(aws.now(), Duration::from_secs(65));
        assert_eq!(aws.check(&create), None);
    }

    #[test]
    fn a_repeated_subscribe_must_carry_the_same_attributes_until_unsubscribed() {
        let sub = |raw: &str| {
            Call::parse(
                None,
                format!(
                    "Action=Subscribe&TopicArn=t&Endpoint=q&Attributes.entry.1.key=RawMessageDelivery\
                     &Attributes.entry.1.value={raw}"
                )
                .as_bytes(),
            )
        };
        let mut aws = Emulated::default();
        assert_eq!(aws.check(&sub("true")), None);
        aws.observe(
            &sub("true"),
            b"<SubscribeResponse><SubscribeResult><SubscriptionArn>t:1</SubscriptionArn></SubscribeResult>",
        );
        assert_eq!(aws.check(&sub("true")), None, "identical repeat is idempotent");
        assert_eq!(aws.check(&sub("false")), Some(Refusal::SubscriptionAttributesDiffer));
        aws.observe(&Call::parse(None, b"Action=Unsubscribe&SubscriptionArn=t%3A1"), b"");
        assert_eq!(aws.check(&sub("false")), None, "after Unsubscribe any attributes go");
    }
}
