//! Matching: every rule a row, `(policy, message, expected)`, examples from the SNS pages.

use std::collections::BTreeMap;

use crate::{Attribute, FilterPolicy, Message, Scope};

/// `name=Type:value` attributes, e.g. `["price=Number:301.5"]`.
fn attrs(spec: &[&str]) -> BTreeMap<String, Attribute> {
    spec.iter()
        .map(|s| {
            let (name, rest) = s.split_once('=').unwrap();
            let (kind, value) = rest.split_once(':').unwrap();
            (name.to_string(), Attribute::new(kind, value))
        })
        .collect()
}

/// A row: policy, attributes (`name=Type:value`), body, whether SNS delivers.
type Row<'a> = (&'a str, &'a [&'a str], &'a str, bool);

fn check(scope: Scope, rows: &[Row]) {
    for (policy, attributes, body, expected) in rows {
        let parsed = FilterPolicy::parse(policy, scope).unwrap_or_else(|e| panic!("{policy}: {e}"));
        let attributes = attrs(attributes);
        let got = parsed.matches(&Message {
            attributes: &attributes,
            body,
        });
        assert_eq!(
            got, *expected,
            "{scope} policy {policy} attributes {attributes:?} body {body}"
        );
    }
}

#[test]
fn attribute_scope() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        // Exact strings are case-sensitive; one of a key's values suffices (OR within a key).
        (r#"{"customer_interests": ["rugby", "tennis"]}"#, &["customer_interests=String:rugby"], "", true),
        (r#"{"customer_interests": ["rugby", "tennis"]}"#, &["customer_interests=String:tennis"], "", true),
        (r#"{"customer_interests": ["rugby", "tennis"]}"#, &["customer_interests=String:baseball"], "", false),
        (r#"{"customer_interests": ["rugby"]}"#, &["customer_interests=String:Rugby"], "", false),
        // A String.Array matches element by element.
        (r#"{"customer_interests": ["rugby"]}"#, &[r#"customer_interests=String.Array:["soccer", "rugby"]"#], "", true),
        (r#"{"customer_interests": ["rugby"]}"#, &[r#"customer_interests=String.Array:["baseball"]"#], "", false),
        (r#"{"n": [5]}"#, &[r#"n=String.Array:[5, "x"]"#], "", true),
        (r#"{"n": [true]}"#, &[r#"n=String.Array:[true]"#], "", true),
        (r#"{"n": [true]}"#, &[r#"n=String.Array:[1]"#], "", false),
        // An unparsable String.Array carries no value, but the key is present.
        (r#"{"a": ["x"]}"#, &["a=String.Array:not json"], "", false),
        (r#"{"a": [{"exists": true}]}"#, &["a=String.Array:[]"], "", true),
        // Keys are ANDed; a missing key fails every rule but exists:false.
        (r#"{"a": ["x"], "b": ["y"]}"#, &["a=String:x", "b=String:y"], "", true),
        (r#"{"a": ["x"], "b": ["y"]}"#, &["a=String:x"], "", false),
        (r#"{"a": [{"anything-but": "x"}]}"#, &[], "", false),
        (r#"{"a": [{"exists": false}]}"#, &[], "", true),
        (r#"{"a": [{"exists": false}]}"#, &["a=String:x"], "", false),
        (r#"{"a": [{"exists": true}]}"#, &["a=String:x"], "", true),
        (r#"{"a": [{"anything-but": "x"}, {"exists": false}]}"#, &[], "", true),
        // Binary attributes are ignored, even by exists.
        (r#"{"a": [{"exists": true}]}"#, &["a=Binary:AAE="], "", false),
        (r#"{"a": [{"exists": false}]}"#, &["a=Binary:AAE="], "", true),
        // Number attributes compare by value (301.5 = 3.015e2), at five decimals.
        (r#"{"price_usd": [{"numeric": ["=", 301.5]}]}"#, &["price_usd=Number:3.015e2"], "", true),
        (r#"{"price_usd": [301.5]}"#, &["price_usd=Number:301.50"], "", true),
        (r#"{"p": [{"numeric": ["=", 1]}]}"#, &["p=Number:1.000001"], "", true),
        (r#"{"p": [{"numeric": ["=", 1]}]}"#, &["p=Number:1.00001"], "", false),
        (r#"{"p": [{"numeric": ["<", 0]}]}"#, &["p=Number:-0.5"], "", true),
        (r#"{"p": [{"numeric": [">", 0, "<=", 150]}]}"#, &["p=Number:150"], "", true),
        (r#"{"p": [{"numeric": [">", 0, "<=", 150]}]}"#, &["p=Number:0"], "", false),
        (r#"{"p": [{"numeric": [">=", 0, "<", 150]}]}"#, &["p=Number:0"], "", true),
        (r#"{"p": [{"numeric": [">=", 0, "<", 150]}]}"#, &["p=Number:150"], "", false),
        (r#"{"p": [{"numeric": [">", 5]}]}"#, &["p=Number:5e10"], "", false),
        (r#"{"p": [{"numeric": [">", 5]}]}"#, &["p=Number.float:6"], "", true),
        // Types are strict: numbers are not strings, strings are not numbers.
        (r#"{"p": [{"numeric": [">", 5]}]}"#, &["p=String:6"], "", false),
        (r#"{"p": ["6"]}"#, &["p=Number:6"], "", false),
        (r#"{"p": [{"prefix": "6"}]}"#, &["p=Number:6"], "", false),
        // Numeric anything-but: 100 and 500 excluded, any other number (or array element) matches.
        (r#"{"price": [{"anything-but": [100, 500]}]}"#, &["price=Number:101"], "", true),
        (r#"{"price": [{"anything-but": [100, 500]}]}"#, &["price=Number:100.1"], "", true),
        (r#"{"price": [{"anything-but": [100, 500]}]}"#, &["price=Number:100"], "", false),
        (r#"{"price": [{"anything-but": [100, 500]}]}"#, &["price=String.Array:[100, 50]"], "", true),
        // String anything-but, and with a prefix or suffix.
        (r#"{"c": [{"anything-but": ["rugby", "tennis"]}]}"#, &["c=String:baseball"], "", true),
        (r#"{"c": [{"anything-but": ["rugby", "tennis"]}]}"#, &["c=String:rugby"], "", false),
        (r#"{"c": [{"anything-but": ["rugby", "tennis"]}]}"#, &[r#"c=String.Array:["rugby", "baseball"]"#], "", true),
        (r#"{"c": [{"anything-but": ["rugby", "tennis"]}]}"#, &[r#"c=String.Array:["rugby"]"#], "", false),
        (r#"{"c": [{"anything-but": {"prefix": "bas"}}]}"#, &["c=String:rugby"], "", true),
        (r#"{"c": [{"anything-but": {"prefix": "bas"}}]}"#, &["c=String:baseball"], "", false),
        (r#"{"c": [{"anything-but": {"suffix": "ball"}}]}"#, &["c=String:baseball"], "", false),
        (r#"{"c": [{"anything-but": {"suffix": "ball"}}]}"#, &["c=String:rugby"], "", true),
        // Prefix, suffix, equals-ignore-case.
        (r#"{"c": [{"prefix": "bas"}]}"#, &["c=String:basketball"], "", true),
        (r#"{"c": [{"prefix": "bas"}]}"#, &["c=String:abas"], "", false),
        (r#"{"c": [{"suffix": "ball"}]}"#, &["c=String:baseball"], "", true),
        (r#"{"c": [{"suffix": "ball"}]}"#, &["c=String:balls"], "", false),
        (r#"{"c": [{"equals-ignore-case": "RuGbY"}]}"#, &["c=String:rugby"], "", true),
        (r#"{"c": [{"equals-ignore-case": "rugby"}]}"#, &["c=String:rugby!"], "", false),
        // IP address matching: inside the network, same family, text that is an address.
        (r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#, &["ip=String:10.0.0.255"], "", true),
        (r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#, &["ip=String:10.0.1.0"], "", false),
        (r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#, &["ip=String:2001:db8::1"], "", true),
        (r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#, &["ip=String:::1"], "", false),
        (r#"{"ip": [{"cidr": "10.0.0.0/8"}]}"#, &["ip=String:10.x"], "", false),
        // $or: "source" && ("metricName" || "namespace").
        (OR_POLICY, &["source=String:aws.cloudwatch", "namespace=String:AWS/EC2"], "", true),
        (OR_POLICY, &["source=String:aws.cloudwatch", "metricName=String:CPUUtilization"], "", true),
        (OR_POLICY, &["source=String:aws.cloudwatch"], "", false),
        (OR_POLICY, &["namespace=String:AWS/EC2"], "", false),
        // An empty policy matches everything.
        ("{}", &[], "", true),
    ];
    check(Scope::MessageAttributes, rows);
}

const OR_POLICY: &str =
    r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}"#;

#[test]
fn body_scope() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        // The body must be a JSON object; attributes are not looked at.
        (r#"{"a": ["x"]}"#, &[], r#"{"a": "x"}"#, true),
        (r#"{"a": ["x"]}"#, &["a=String:x"], r#"{"a": "y"}"#, false),
        (r#"{"a": ["x"]}"#, &[], r#"[{"a": "x"}]"#, false),
        (r#"{"a": ["x"]}"#, &[], "not json", false),
        // Nested keys follow objects, and every element of arrays on the way.
        (r#"{"d": {"c": ["x"]}}"#, &[], r#"{"d": {"c": "x"}}"#, true),
        (r#"{"d": {"c": ["x"]}}"#, &[], r#"{"d": [{"c": "y"}, {"c": "x"}]}"#, true),
        (r#"{"d": {"c": ["x"]}}"#, &[], r#"{"d": {"c": ["y", "x"]}}"#, true),
        (r#"{"d": {"c": ["x"]}}"#, &[], r#"{"d.c": "x"}"#, false),
        (r#"{"d": {"c": ["x"]}}"#, &[], r#"{"c": "x"}"#, false),
        // JSON numbers compare by value; strings are not numbers.
        (r#"{"price_usd": [{"numeric": ["=", 301.5]}]}"#, &[], r#"{"price_usd": 3.015e2}"#, true),
        (r#"{"p": [301.5]}"#, &[], r#"{"p": 301.5}"#, true),
        (r#"{"p": [{"numeric": [">", 1]}]}"#, &[], r#"{"p": "5"}"#, false),
        (r#"{"price": [{"anything-but": [100, 500]}]}"#, &[], r#"{"price": [100, 50]}"#, true),
        (r#"{"price": [{"anything-but": [100, 500]}]}"#, &[], r#"{"price": 100}"#, false),
        // true, false and null are literals of their own.
        (r#"{"f": [true]}"#, &[], r#"{"f": true}"#, true),
        (r#"{"f": [true]}"#, &[], r#"{"f": 1}"#, false),
        (r#"{"f": [null]}"#, &[], r#"{"f": null}"#, true),
        (r#"{"f": [{"anything-but": "x"}]}"#, &[], r#"{"f": null}"#, false),
        (r#"{"f": [""]}"#, &[], r#"{"f": ""}"#, true),
        // exists works on leaves: an object, an empty array or a missing key is absent; null is present.
        (r#"{"f": [{"exists": true}]}"#, &[], r#"{"f": {"g": 1}}"#, false),
        (r#"{"f": [{"exists": false}]}"#, &[], r#"{"f": []}"#, true),
        (r#"{"f": [{"exists": true}]}"#, &[], r#"{"f": null}"#, true),
        (r#"{"d": {"s": [{"exists": false}]}}"#, &[], r#"{"d": [{"s": 1}, {"t": 2}]}"#, false),
        // String operators never match numbers.
        (r#"{"f": [{"prefix": "1"}]}"#, &[], r#"{"f": 12}"#, false),
        (r#"{"f": [{"equals-ignore-case": "1"}]}"#, &[], r#"{"f": 1}"#, false),
        // $or inside a nested object keeps the parent path.
        (r#"{"d": {"$or": [{"a": ["x"]}, {"b": ["y"]}]}}"#, &[], r#"{"d": {"b": "y"}}"#, true),
        (r#"{"d": {"$or": [{"a": ["x"]}, {"b": ["y"]}]}}"#, &[], r#"{"b": "y"}"#, false),
    ];
    check(Scope::MessageBody, rows);
}
