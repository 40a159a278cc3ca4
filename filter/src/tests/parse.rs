//! Parsing and validation: every refusal a row, with the variant SNS's rule maps to.

use crate::{FilterPolicy, PolicyError, Scope};

const ATTR: Scope = Scope::MessageAttributes;
const BODY: Scope = Scope::MessageBody;

fn refused(json: &str, scope: Scope) -> PolicyError {
    FilterPolicy::parse(json, scope).expect_err(json)
}

fn key(e: &PolicyError) -> Option<&str> {
    use PolicyError::*;
    match e {
        NotObjectOrArray { key }
        | NestedInAttributeScope { key }
        | EmptyArray { key }
        | BadMatchValue { key }
        | OperatorCount { key }
        | UnknownOperator { key, .. }
        | BadOperand { key, .. }
        | NumberOutOfRange { key, .. }
        | BadCidr { key, .. } => Some(key),
        _ => None,
    }
}

#[test]
fn accepted() {
    #[rustfmt::skip]
    let rows: &[(&str, Scope)] = &[
        // Every operator of the SNS pages, in both scopes.
        (r#"{"a": ["x", 1, true, false, null]}"#, ATTR),
        (r#"{"a": [{"prefix": "x"}, {"suffix": "y"}, {"equals-ignore-case": "Z"}]}"#, ATTR),
        (r#"{"a": [{"anything-but": "x"}, {"anything-but": 5}, {"anything-but": ["x", 5]}]}"#, ATTR),
        (r#"{"a": [{"anything-but": {"prefix": "x"}}, {"anything-but": {"suffix": "y"}}]}"#, ATTR),
        (r#"{"a": [{"numeric": ["=", 1]}, {"numeric": [">", 0, "<=", 150]}, {"exists": false}]}"#, ATTR),
        (r#"{"a": [{"cidr": "10.0.0.0/24"}, {"cidr": "2001:db8::/32"}, {"cidr": "10.0.0.1/32"}]}"#, ATTR),
        // The numeric range's limits are inclusive.
        (r#"{"a": [1000000000, -1000000000, {"numeric": [">=", -1e9, "<=", 1e9]}]}"#, ATTR),
        // Nesting is for the body only.
        (r#"{"d": {"e": {"f": ["x"]}}}"#, BODY),
        // Exactly 5 keys, exactly 150 combinations (5 x 5 x 6).
        (r#"{"a": ["1"], "b": ["1"], "c": ["1"], "d": ["1"], "e": ["1"]}"#, ATTR),
        (r#"{"a": ["1","2","3","4","5"], "b": ["1","2","3","4","5"], "c": ["1","2","3","4","5","6"]}"#, ATTR),
        // "$or" with one object, or with reserved words, is an ordinary key (here: holding bad rules is
        // refused, see below); with two plain objects it is the OR operator.
        (r#"{"$or": [{"a": ["x"]}, {"b": ["y"]}]}"#, ATTR),
        (r#"{"$or": ["x", "y"]}"#, ATTR),
        ("{}", ATTR),
    ];
    for (json, scope) in rows {
        FilterPolicy::parse(json, *scope).unwrap_or_else(|e| panic!("{json}: {e}"));
    }
}

#[test]
fn refusals() {
    #[rustfmt::skip]
    let rows: &[(&str, Scope, &str, Option<&str>)] = &[
        // Not a policy at all.
        ("{", ATTR, "not valid JSON", None),
        (r#"["a"]"#, ATTR, "must be a JSON object", None),
        // A key holds an array of rules, or (body scope) an object.
        (r#"{"a": "x"}"#, ATTR, "must be an object or an array", Some("a")),
        (r#"{"d": {"e": ["x"]}}"#, ATTR, "does not support nested", Some("d")),
        (r#"{"a": []}"#, ATTR, "empty arrays", Some("a")),
        (r#"{"d": {"e": []}}"#, BODY, "empty arrays", Some("d.e")),
        (r#"{"a": [["x"]]}"#, ATTR, "match value must be", Some("a")),
        // Operator objects: one known operator with an operand of the right shape.
        (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, ATTR, "only one key", Some("a")),
        (r#"{"a": [{}]}"#, ATTR, "only one key", Some("a")),
        (r#"{"a": [{"wildcard-ish": "x"}]}"#, ATTR, "unrecognized match type wildcard-ish", Some("a")),
        (r#"{"a": [{"prefix": 5}]}"#, ATTR, "prefix must be a string", Some("a")),
        (r#"{"a": [{"suffix": null}]}"#, ATTR, "suffix must be a string", Some("a")),
        (r#"{"a": [{"equals-ignore-case": 1}]}"#, ATTR, "must be a string", Some("a")),
        (r#"{"a": [{"exists": "yes"}]}"#, ATTR, "must be true or false", Some("a")),
        (r#"{"a": [{"anything-but": []}]}"#, ATTR, "anything-but", Some("a")),
        (r#"{"a": [{"anything-but": [true]}]}"#, ATTR, "only strings and numbers", Some("a")),
        (r#"{"a": [{"anything-but": {"equals-ignore-case": "x"}}]}"#, ATTR, "anything-but/equals", Some("a")),
        (r#"{"a": [{"anything-but": {"prefix": 1}}]}"#, ATTR, "prefix must be a string", Some("a")),
        (r#"{"a": [{"cidr": 10}]}"#, ATTR, "cidr must be a string", Some("a")),
        (r#"{"a": [{"cidr": "10.0.0.1/8"}]}"#, ATTR, "malformed CIDR", Some("a")),
        (r#"{"a": [{"cidr": "10.0.0.0"}]}"#, ATTR, "malformed CIDR", Some("a")),
        (r#"{"a": [{"cidr": "10.0.0.0/33"}]}"#, ATTR, "malformed CIDR", Some("a")),
        // numeric: one comparison, or a range from > / >= to < / <= with bottom below top.
        (r#"{"a": [{"numeric": []}]}"#, ATTR, "one comparison or a range", Some("a")),
        (r#"{"a": [{"numeric": 5}]}"#, ATTR, "must be an array", Some("a")),
        (r#"{"a": [{"numeric": ["~", 1]}]}"#, ATTR, "must alternate", Some("a")),
        (r#"{"a": [{"numeric": ["=", "5"]}]}"#, ATTR, "must alternate", Some("a")),
        (r#"{"a": [{"numeric": [">"]}]}"#, ATTR, "must alternate", Some("a")),
        (r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, ATTR, "one comparison or a range", Some("a")),
        (r#"{"a": [{"numeric": ["=", 1, "<", 5]}]}"#, ATTR, "one comparison or a range", Some("a")),
        (r#"{"a": [{"numeric": [">", 1, "<", 5, "<", 9]}]}"#, ATTR, "one comparison or a range", Some("a")),
        (r#"{"a": [{"numeric": [">", 5, "<", 5]}]}"#, ATTR, "bottom must be less", Some("a")),
        // Numbers lie in -1e9..=1e9, in rules and in anything-but.
        (r#"{"a": [{"numeric": [">", 1000000001]}]}"#, ATTR, "outside the numeric range", Some("a")),
        (r#"{"a": [-1e10]}"#, ATTR, "outside the numeric range", Some("a")),
        (r#"{"a": [{"anything-but": [5e9]}]}"#, ATTR, "outside the numeric range", Some("a")),
        // At most five keys, counted at the leaves and across $or branches.
        (r#"{"a": ["1"], "b": ["1"], "c": ["1"], "d": ["1"], "e": ["1"], "f": ["1"]}"#, ATTR, "6 keys", None),
        (r#"{"d": {"a": ["1"], "b": ["1"], "c": ["1"], "e": ["1"], "f": ["1"], "g": ["1"]}}"#, BODY, "6 keys", None),
        (r#"{"a": ["1"], "b": ["1"], "c": ["1"], "d": ["1"], "$or": [{"e": ["1"]}, {"f": ["1"]}]}"#, ATTR, "6 keys", None),
        // At most 150 combinations: 4 x 4 x 4 x 4; nested keys count their depth ((2 x 2) x (5 x 2) x 4).
        (r#"{"a": ["1","2","3","4"], "b": ["1","2","3","4"], "c": ["1","2","3","4"], "d": ["1","2","3","4"]}"#, ATTR, "256 combinations", None),
        (r#"{"d": {"a": ["1","2"], "b": ["1","2","3","4","5"]}, "e": ["1","2","3","4"]}"#, BODY, "160 combinations", None),
        // "$or" with reserved words is a key like any other, and its objects are then rules.
        (r#"{"$or": [{"numeric": 123}, {"prefix": "abc"}]}"#, ATTR, "numeric must be an array", Some("$or")),
        (r#"{"$or": [{"a": ["x"]}]}"#, ATTR, "unrecognized match type a", Some("$or")),
    ];
    for (json, scope, needle, at) in rows {
        let error = refused(json, *scope);
        assert!(error.to_string().contains(needle), "{json}: {error} lacks {needle:?}");
        assert_eq!(key(&error), *at, "{json}: {error}");
    }
}

#[test]
fn scope_names() {
    // SNS's spellings both ways; MessageAttributes is the default.
    assert_eq!("MessageBody".parse::<Scope>(), Ok(Scope::MessageBody));
    assert_eq!("MessageAttributes".parse::<Scope>(), Ok(Scope::MessageAttributes));
    assert_eq!(Scope::default(), Scope::MessageAttributes);
    assert_eq!(Scope::MessageBody.to_string(), "MessageBody");
    assert!(matches!(
        "messagebody".parse::<Scope>(),
        Err(PolicyError::UnknownScope { .. })
    ));
    let policy = FilterPolicy::parse("{}", Scope::MessageBody).unwrap();
    assert_eq!(policy.scope(), Scope::MessageBody);
}

#[test]
fn size_limit() {
    // SNS refuses policies over 256 KB, before parsing them.
    assert_eq!(crate::MAX_POLICY_BYTES, 262_144);
    let exactly = |bytes: usize| format!(r#"{{"a": ["{}"]}}"#, "x".repeat(bytes - r#"{"a": [""]}"#.len()));
    assert!(FilterPolicy::parse(&exactly(crate::MAX_POLICY_BYTES), ATTR).is_ok());
    let over = exactly(crate::MAX_POLICY_BYTES + 1);
    assert!(matches!(
        refused(&over, ATTR),
        PolicyError::TooLarge { bytes: 262_145, .. }
    ));
}
