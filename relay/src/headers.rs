//! How a message's metadata travels in HTTP headers (pure; the encoding is documented in the README).
//!
//! | header | value |
//! |---|---|
//! | `X-Tasksub-Message-Id` | the SQS message ID (stable across redeliveries) |
//! | `X-Tasksub-Sns-Message-Id` | the SNS message ID, when known (SNS envelope delivery) |
//! | `X-Tasksub-Topic-Arn` | the topic, when known |
//! | `X-Tasksub-Subject` | the SNS subject, percent-encoded, when one was published |
//! | `X-Tasksub-Receive-Count` | 1 on the first delivery, 2 on the first redelivery, ... |
//! | `X-Tasksub-Sent-Time` | RFC 3339 UTC with milliseconds: SNS `Timestamp`, else SQS `SentTimestamp` |
//! | `X-Tasksub-Delivery` | `raw` or `sns-envelope` |
//! | `X-Tasksub-Attr-<name>` | one per message attribute: `String`/`Number` values percent-encoded, `Binary` values base64 |
//! | `X-Tasksub-Attribute-Types` | `<name>=<DataType>` pairs, comma-separated, names encoded as in the header names |
//!
//! **Names.** HTTP/1 header names are case-insensitive (and sent lower-case), attribute names are not:
//! in `<name>` every byte other than `a-z`, `0-9`, `-`, `_` and `.` (so every upper-case letter) is
//! written `%XX` (upper-case hex). `Kind` → `x-tasksub-attr-%4Bind`, `kind` → `x-tasksub-attr-kind`.
//!
//! **Values.** Text values are UTF-8, percent-encoded: every byte other than `A-Z a-z 0-9 - _ . ~ ! * ' ( )
//! / : @ + , ; = ? [ ]` and `&` becomes `%XX` (so spaces are `%20`, `%` is `%25`, non-ASCII is its UTF-8
//! bytes). This is what JavaScript's `decodeURIComponent`, Python's `urllib.parse.unquote` and Go's
//! `url.PathUnescape` undo. Binary values are standard base64 with padding.

use std::collections::BTreeMap;

use hyper::header::{HeaderName, HeaderValue};
use hyper::HeaderMap;
use tasksub_client::{Attribute, AttributeValue, Delivery, Message};

/// Prefix of the attribute headers.
pub const ATTR_PREFIX: &str = "x-tasksub-attr-";
/// The header listing attribute data types.
pub const ATTR_TYPES: &str = "x-tasksub-attribute-types";
/// SQS message ID.
pub const MESSAGE_ID: &str = "x-tasksub-message-id";
/// SNS message ID.
pub const SNS_MESSAGE_ID: &str = "x-tasksub-sns-message-id";
/// Topic ARN.
pub const TOPIC_ARN: &str = "x-tasksub-topic-arn";
/// SNS subject.
pub const SUBJECT: &str = "x-tasksub-subject";
/// Receive count.
pub const RECEIVE_COUNT: &str = "x-tasksub-receive-count";
/// Sent time.
pub const SENT_TIME: &str = "x-tasksub-sent-time";
/// Delivery mode.
pub const DELIVERY: &str = "x-tasksub-delivery";

fn name_byte_is_plain(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
}

fn value_byte_is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'!'
                | b'*'
                | b'\''
                | b'('
                | b')'
                | b'/'
                | b':'
                | b'@'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'?'
                | b'['
                | b']'
                | b'&'
        )
}

fn encode(text: &str, plain: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes an attribute name for a header name.
pub fn encode_name(name: &str) -> String {
    encode(name, name_byte_is_plain)
}

/// Encodes a text value for a header value.
pub fn encode_value(value: &str) -> String {
    encode(value, value_byte_is_plain)
}

/// Undoes either encoding (hex digits in either case); `None` on a malformed escape or non-UTF-8.
pub fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    // Every name and value built here is header-safe by construction; skip rather than panic if not.
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        headers.insert(n, v);
    }
}

/// The headers describing `message` (everything but the body).
pub fn message_headers(message: &Message) -> HeaderMap {
    let mut h = HeaderMap::new();
    insert(&mut h, MESSAGE_ID, &encode_value(message.sqs_message_id()));
    if let Some(id) = message.sns_message_id() {
        insert(&mut h, SNS_MESSAGE_ID, &encode_value(id));
    }
    if let Some(topic) = message.topic_arn() {
        insert(&mut h, TOPIC_ARN, &encode_value(topic));
    }
    if let Some(subject) = message.subject() {
        insert(&mut h, SUBJECT, &encode_value(subject));
    }
    insert(&mut h, RECEIVE_COUNT, &message.receive_count().to_string());
    if let Some(t) = message.timestamp() {
        insert(
            &mut h,
            SENT_TIME,
            &t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
    }
    insert(
        &mut h,
        DELIVERY,
        match message.delivery() {
            Delivery::Raw => "raw",
            Delivery::SnsEnvelope => "sns-envelope",
        },
    );
    let mut types = Vec::new();
    for (name, attribute) in message.attributes() {
        let encoded = encode_name(name);
        insert(&mut h, &format!("{ATTR_PREFIX}{encoded}"), &encode_attribute(attribute));
        types.push(format!("{encoded}={}", encode_value(&attribute.data_type)));
    }
    if !types.is_empty() {
        insert(&mut h, ATTR_TYPES, &types.join(","));
    }
    h
}

fn encode_attribute(attribute: &Attribute) -> String {
    match &attribute.value {
        AttributeValue::String(s) => encode_value(s),
        AttributeValue::Binary(b) => aws_smithy_types::base64::encode(b),
    }
}

/// Reads the attributes back from headers (what an app does; used by the tests and the bench).
pub fn decode_attributes(headers: &HeaderMap) -> BTreeMap<String, Attribute> {
    let types: BTreeMap<String, String> = headers
        .get(ATTR_TYPES)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(n, t)| Some((decode(&n.to_ascii_lowercase())?, decode(t)?)))
        .collect();
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let Some(encoded) = name.as_str().strip_prefix(ATTR_PREFIX) else {
            continue;
        };
        let Some(name) = decode(encoded) else { continue };
        let Ok(value) = value.to_str() else { continue };
        let data_type = types.get(&name).cloned().unwrap_or_else(|| "String".to_owned());
        let value = if data_type.starts_with("Binary") {
            match aws_smithy_types::base64::decode(value) {
                Ok(b) => AttributeValue::Binary(b),
                Err(_) => continue,
            }
        } else {
            match decode(value) {
                Some(s) => AttributeValue::String(s),
                None => continue,
            }
        };
        out.insert(name, Attribute { data_type, value });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_case_through_lower_case_headers() {
        assert_eq!(encode_name("kind"), "kind");
        assert_eq!(encode_name("Kind"), "%4Bind");
        assert_eq!(encode_name("a.b-c_d9"), "a.b-c_d9");
        assert_eq!(encode_name("é"), "%C3%A9");
        for name in ["Kind", "camelCaseName", "x.Y-z_9", "é"] {
            let header = format!("{ATTR_PREFIX}{}", encode_name(name));
            let parsed = HeaderName::from_bytes(header.as_bytes()).unwrap();
            let back = parsed.as_str().strip_prefix(ATTR_PREFIX).unwrap();
            assert_eq!(decode(back).as_deref(), Some(name));
        }
    }

    #[test]
    fn values_are_header_safe_and_round_trip() {
        for value in [
            "cache",
            "a b",
            "100%",
            "line\nbreak",
            "ünïcödé ✓",
            " padded ",
            "x=1&y=2",
            "",
        ] {
            let encoded = encode_value(value);
            assert!(HeaderValue::from_str(&encoded).is_ok(), "{encoded}");
            assert!(!encoded.contains(' ') && !encoded.contains('\n'), "{encoded}");
            assert_eq!(decode(&encoded).as_deref(), Some(value));
        }
        assert_eq!(encode_value("a b%"), "a%20b%25");
        assert_eq!(decode("%c3%a9").as_deref(), Some("é"));
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%zz"), None);
    }

    #[test]
    fn attributes_round_trip_through_headers() {
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "Kind".to_owned(),
            Attribute {
                data_type: "String".into(),
                value: AttributeValue::String("cache invalidation ✓".into()),
            },
        );
        attributes.insert(
            "n".to_owned(),
            Attribute {
                data_type: "Number.int".into(),
                value: AttributeValue::String("7".into()),
            },
        );
        attributes.insert(
            "blob".to_owned(),
            Attribute {
                data_type: "Binary".into(),
                value: AttributeValue::Binary(vec![0, 1, 2, 255]),
            },
        );
        let mut h = HeaderMap::new();
        let mut types = Vec::new();
        for (name, a) in &attributes {
            insert(
                &mut h,
                &format!("{ATTR_PREFIX}{}", encode_name(name)),
                &encode_attribute(a),
            );
            types.push(format!("{}={}", encode_name(name), encode_value(&a.data_type)));
        }
        insert(&mut h, ATTR_TYPES, &types.join(","));
        assert_eq!(h.get("x-tasksub-attr-blob").unwrap(), "AAEC/w==");
        assert_eq!(decode_attributes(&h), attributes);
    }
}
