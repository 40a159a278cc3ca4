use std::collections::BTreeMap;

use super::*;
use crate::message::{Attribute, Envelopes, Received};

const ORDERS: &str = "arn:aws:sns:us-east-1:123456789012:orders";
const FLAGS: &str = "arn:aws:sns:us-east-1:123456789012:flags";

fn filter(policy: &str, scope: &str, raw: bool) -> ClientFilter {
    ClientFilter {
        policy: policy.into(),
        scope: scope.into(),
        raw,
    }
}

fn received(body: &str, attributes: &[(&str, &str, &str)]) -> Received {
    Received {
        message_id: "m".into(),
        receipt: "r".into(),
        body: body.into(),
        attributes: attributes
            .iter()
            .map(|(k, t, v)| {
                let value = AttributeValue::String((*v).into());
                (
                    (*k).into(),
                    Attribute {
                        data_type: (*t).into(),
                        value,
                    },
                )
            })
            .collect(),
        system: BTreeMap::new(),
    }
}

/// An SNS envelope of `topic` carrying `message` and one String attribute `kind`.
fn envelope(topic: &str, message: &str, kind: &str) -> Message {
    let body = serde_json::json!({
        "Type": "Notification", "MessageId": "sns-1", "TopicArn": topic, "Message": message,
        "Timestamp": "2026-12-07T00:00:00.000Z",
        "MessageAttributes": {"kind": {"Type": "String", "Value": kind}},
    });
    Message::from_received(&received(&body.to_string(), &[]), Envelopes::Unwrap)
}

fn compiled(handed: &[(&str, ClientFilter)]) -> Filters {
    let map = handed.iter().map(|(t, f)| ((*t).to_owned(), f.clone())).collect();
    let (filters, unusable) = Filters::compile(&map);
    assert!(unusable.is_empty(), "{unusable:?}");
    filters
}

/// Enveloped messages are filtered by their own topic's policy; other topics' messages pass.
#[test]
fn an_envelope_is_filtered_by_its_topic_policy() {
    let f = compiled(&[(ORDERS, filter(r#"{"kind":["invalidate"]}"#, "MessageAttributes", false))]);
    assert!(f.admits(&envelope(ORDERS, "x", "invalidate")));
    assert!(!f.admits(&envelope(ORDERS, "x", "refresh")));
    assert!(
        f.admits(&envelope(FLAGS, "x", "refresh")),
        "no policy for flags: every message"
    );
}

/// Body scope evaluates the published message, not the envelope around it.
#[test]
fn body_scope_reads_the_published_message() {
    let f = compiled(&[(
        ORDERS,
        filter(r#"{"order":{"total":[{"numeric":[">",100]}]}}"#, "MessageBody", false),
    )]);
    assert!(f.admits(&envelope(ORDERS, r#"{"order":{"total":150}}"#, "k")));
    assert!(!f.admits(&envelope(ORDERS, r#"{"order":{"total":50}}"#, "k")));
    assert!(
        !f.admits(&envelope(ORDERS, "not json", "k")),
        "a body that is no JSON object matches nothing"
    );
}

/// A raw message names no topic: the filter of the only raw-delivery topic applies to it; without
/// one, raw messages pass.
#[test]
fn a_raw_message_takes_the_raw_topic_filter() {
    let f = compiled(&[(ORDERS, filter(r#"{"kind":["a"]}"#, "MessageAttributes", true))]);
    let raw = |kind: &str| Message::from_received(&received("b", &[("kind", "String", kind)]), Envelopes::Unwrap);
    assert!(f.admits(&raw("a")));
    assert!(!f.admits(&raw("b")));
    let enveloped_only = compiled(&[(ORDERS, filter(r#"{"kind":["a"]}"#, "MessageAttributes", false))]);
    assert!(enveloped_only.admits(&raw("b")));
}

/// A policy that does not compile filters nothing (and is reported); the others still apply.
#[test]
fn an_unusable_policy_filters_nothing_and_is_reported() {
    let map = BTreeMap::from([
        (
            ORDERS.to_owned(),
            filter(r#"{"kind":"not-an-array"}"#, "MessageAttributes", false),
        ),
        (FLAGS.to_owned(), filter(r#"{"kind":["a"]}"#, "Elsewhere", false)),
    ]);
    let (f, unusable) = Filters::compile(&map);
    assert_eq!(
        unusable.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        [FLAGS, ORDERS]
    );
    assert!(f.admits(&envelope(ORDERS, "x", "z")));
}

/// Two handles are equal when the same filters are in force (`TaskQueue`'s equality).
#[test]
fn live_filters_are_equal_when_the_same_filters_are_in_force() {
    let handed = || {
        BTreeMap::from([(
            ORDERS.to_owned(),
            filter(r#"{"kind":["a"]}"#, "MessageAttributes", false),
        )])
    };
    let (a, b) = (LiveFilters::default(), LiveFilters::default());
    assert_eq!(a, b);
    a.load(handed());
    assert_ne!(a, b);
    b.load(handed());
    assert_eq!(a, b);
}

/// A running client re-reads its record's filters every FILTER_REFRESH: a settings change reaches it;
/// until then the ones in force stay.
#[tokio::test(start_paused = true)]
async fn the_refresher_puts_the_records_new_filters_in_force() {
    let records = crate::memory::ScriptedRecords::new([Some(tasksub_core::record::State::Ready)]);
    let live = LiveFilters::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let rejected = || !live.current().admits(&envelope(ORDERS, "x", "b"));
    let refresher = async { refresh(&records, "t", &live, &stop).await };
    let change = async {
        *records.filters.lock().unwrap() = BTreeMap::from([(
            ORDERS.to_owned(),
            filter(r#"{"kind":["a"]}"#, "MessageAttributes", false),
        )]);
        tokio::time::sleep(FILTER_REFRESH / 2).await;
        assert!(!rejected(), "not re-read yet");
        tokio::time::sleep(FILTER_REFRESH).await;
        assert!(rejected(), "re-read: the new policy is in force");
        stop.cancel();
    };
    tokio::join!(refresher, change);
}
