//! What differs between the attributes a queue or a subscription should have and what AWS reports, as
//! the calls that fix it. AWS reformats JSON attributes (policies, filter policies, redrive policies), so
//! those compare as JSON values; booleans compare without case; an attribute we once set and no longer
//! want is reset explicitly (a filter policy to `{}`, a redrive policy to empty), because a re-subscribe
//! only checks the attributes it names and would leave them in place.

use std::collections::BTreeMap;

/// Queue attributes that never change after creation (SetQueueAttributes refuses them): not diffed.
const QUEUE_IMMUTABLE: &[&str] = &["FifoQueue"];
/// Queue attributes that hold JSON.
const JSON_ATTRIBUTES: &[&str] = &[
    "Policy",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FilterPolicy",
    "ReplayPolicy",
];
/// Attributes whose value is a boolean.
const BOOLEAN_ATTRIBUTES: &[&str] = &["RawMessageDelivery", "SqsManagedSseEnabled", "FifoQueue"];

/// Subscription attribute names as SNS spells them.
pub mod sub {
    /// Raw delivery (no SNS envelope).
    pub const RAW: &str = "RawMessageDelivery";
    /// The filter policy.
    pub const FILTER_POLICY: &str = "FilterPolicy";
    /// Where the filter policy applies.
    pub const FILTER_POLICY_SCOPE: &str = "FilterPolicyScope";
    /// The subscription's dead-letter queue.
    pub const REDRIVE_POLICY: &str = "RedrivePolicy";
    /// SNS's default scope.
    pub const DEFAULT_SCOPE: &str = "MessageAttributes";
    /// The scope where nested keys are allowed.
    pub const BODY_SCOPE: &str = "MessageBody";
    /// What a filter policy is set to to remove it (AWS CLI reference, set-subscription-attributes).
    pub const NO_FILTER_POLICY: &str = "{}";
}

/// True when two values of attribute `name` mean the same.
pub fn same_value(name: &str, want: &str, have: &str) -> bool {
    if JSON_ATTRIBUTES.contains(&name) {
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
        if let (Some(a), Some(b)) = (parse(want), parse(have)) {
            return a == b;
        }
    }
    if BOOLEAN_ATTRIBUTES.contains(&name) {
        return want.eq_ignore_ascii_case(have);
    }
    want == have
}

/// The SetQueueAttributes call that brings `observed` to `desired` (empty: nothing to do). A redrive
/// policy no longer wanted is removed (set to empty); an immutable attribute is never sent.
pub fn queue_diff(
    desired: &BTreeMap<&'static str, String>,
    observed: &BTreeMap<String, String>,
) -> BTreeMap<&'static str, String> {
    let mut out: BTreeMap<&'static str, String> = desired
        .iter()
        .filter(|(k, _)| !QUEUE_IMMUTABLE.contains(k))
        .filter(|(k, v)| observed.get(**k).is_none_or(|have| !same_value(k, v, have)))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let unwanted_redrive = observed.get("RedrivePolicy").is_some_and(|v| !v.is_empty());
    if !desired.contains_key("RedrivePolicy") && unwanted_redrive {
        out.insert("RedrivePolicy", String::new());
    }
    out
}

/// The SetSubscriptionAttributes calls (one attribute each, in order) that bring `observed` to
/// `desired`. Absent attributes are SNS's defaults: raw delivery off, no filter policy, scope
/// `MessageAttributes`, no redrive policy. When the scope changes, the policy valid in the new scope is
/// set on the side of the change where both are valid: scope first when moving to `MessageBody` (nested
/// keys need it), policy first when moving back. A replay policy applies only to a new subscription and
/// is not converged.
pub fn subscription_diff(
    desired: &BTreeMap<&'static str, String>,
    observed: &BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    let want = |k: &str| desired.get(k).map(String::as_str);
    let have = |k: &str| observed.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    let raw = want(sub::RAW).unwrap_or("false");
    if !same_value(sub::RAW, raw, have(sub::RAW).unwrap_or("false")) {
        out.push((sub::RAW, raw.to_owned()));
    }
    let policy = filter_policy_change(want(sub::FILTER_POLICY), have(sub::FILTER_POLICY));
    let scope_want = want(sub::FILTER_POLICY_SCOPE).unwrap_or(sub::DEFAULT_SCOPE);
    let scope_have = have(sub::FILTER_POLICY_SCOPE).unwrap_or(sub::DEFAULT_SCOPE);
    let scope = (scope_want != scope_have).then(|| (sub::FILTER_POLICY_SCOPE, scope_want.to_owned()));
    let policy = policy.map(|p| (sub::FILTER_POLICY, p));
    if scope_want == sub::BODY_SCOPE {
        out.extend(scope.into_iter().chain(policy));
    } else {
        out.extend(policy.into_iter().chain(scope));
    }
    match (want(sub::REDRIVE_POLICY), have(sub::REDRIVE_POLICY)) {
        (Some(w), Some(h)) if same_value(sub::REDRIVE_POLICY, w, h) => {}
        (Some(w), _) => out.push((sub::REDRIVE_POLICY, w.to_owned())),
        (None, Some(_)) => out.push((sub::REDRIVE_POLICY, String::new())),
        (None, None) => {}
    }
    out
}

/// The new filter policy value, if it must change: the wanted one, or `{}` to remove one.
fn filter_policy_change(want: Option<&str>, have: Option<&str>) -> Option<String> {
    let have = have.filter(|h| !same_value(sub::FILTER_POLICY, sub::NO_FILTER_POLICY, h));
    match (want, have) {
        (Some(w), Some(h)) if same_value(sub::FILTER_POLICY, w, h) => None,
        (Some(w), _) => Some(w.to_owned()),
        (None, Some(_)) => Some(sub::NO_FILTER_POLICY.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }
    fn have(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn queue_attributes_differ_only_where_they_mean_something_else() {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A"}]}"#;
        let reformatted = r#"{ "Statement": [ { "Sid": "A" } ], "Version": "2012-10-17" }"#;
        let desired = want(&[
            ("Policy", policy),
            ("VisibilityTimeout", "30"),
            ("SqsManagedSseEnabled", "true"),
            ("FifoQueue", "true"),
        ]);
        #[rustfmt::skip]
        let rows: Vec<(BTreeMap<String, String>, Vec<&str>)> = vec![
            // the same, as AWS reports it (JSON reformatted, booleans capitalised, read-only extras)
            (have(&[("Policy", reformatted), ("VisibilityTimeout", "30"), ("SqsManagedSseEnabled", "True"),
                    ("FifoQueue", "true"), ("QueueArn", "arn"), ("ApproximateNumberOfMessages", "4")]), vec![]),
            // an old policy (a topic was added since)
            (have(&[("Policy", r#"{"Statement":[]}"#), ("VisibilityTimeout", "30"), ("SqsManagedSseEnabled", "true")]),
             vec!["Policy"]),
            // a missing attribute is set; the immutable FIFO flag is never sent
            (have(&[("Policy", policy), ("SqsManagedSseEnabled", "true"), ("FifoQueue", "false")]), vec!["VisibilityTimeout"]),
            // a policy that is not JSON differs
            (have(&[("Policy", "nonsense"), ("VisibilityTimeout", "30"), ("SqsManagedSseEnabled", "true")]), vec!["Policy"]),
            // a redrive policy no longer configured is removed
            (have(&[("Policy", policy), ("VisibilityTimeout", "30"), ("SqsManagedSseEnabled", "true"),
                    ("RedrivePolicy", r#"{"deadLetterTargetArn":"arn:dlq"}"#)]), vec!["RedrivePolicy"]),
        ];
        for (observed, names) in rows {
            let diff = queue_diff(&desired, &observed);
            assert_eq!(diff.keys().copied().collect::<Vec<_>>(), names, "{observed:?}");
        }
        let d = queue_diff(&desired, &have(&[("RedrivePolicy", "{\"x\":1}")]));
        assert_eq!(d["RedrivePolicy"], "", "removal is an empty value");
        assert_eq!(d["Policy"], policy, "the desired value is sent");
        // a wanted redrive policy is compared as JSON
        let r = want(&[("RedrivePolicy", r#"{"deadLetterTargetArn":"a","maxReceiveCount":"5"}"#)]);
        assert!(queue_diff(
            &r,
            &have(&[("RedrivePolicy", r#"{"maxReceiveCount":"5","deadLetterTargetArn":"a"}"#)])
        )
        .is_empty());
        assert_eq!(queue_diff(&r, &have(&[])).len(), 1);
    }

    #[test]
    fn subscription_attributes_converge_in_an_order_sns_accepts() {
        let flat = r#"{"kind":["a"]}"#;
        let nested = r#"{"detail":{"kind":["a"]}}"#;
        type Row = (
            BTreeMap<&'static str, String>,
            BTreeMap<String, String>,
            Vec<(&'static str, &'static str)>,
        );
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // in sync (SNS reports booleans and JSON its own way)
            (want(&[("RawMessageDelivery", "true"), ("FilterPolicy", flat)]),
             have(&[("RawMessageDelivery", "True"), ("FilterPolicy", r#"{ "kind" : [ "a" ] }"#), ("TopicArn", "t")]), vec![]),
            // raw delivery switched off (absent means false)
            (want(&[("RawMessageDelivery", "false")]), have(&[("RawMessageDelivery", "true")]), vec![("RawMessageDelivery", "false")]),
            (want(&[("RawMessageDelivery", "false")]), have(&[]), vec![]),
            (want(&[("RawMessageDelivery", "true")]), have(&[]), vec![("RawMessageDelivery", "true")]),
            // a filter policy added, changed, removed ({} removes it; {} observed is none)
            (want(&[("FilterPolicy", flat)]), have(&[]), vec![("FilterPolicy", flat)]),
            (want(&[("FilterPolicy", flat)]), have(&[("FilterPolicy", r#"{"kind":["b"]}"#)]), vec![("FilterPolicy", flat)]),
            (want(&[]), have(&[("FilterPolicy", flat)]), vec![("FilterPolicy", "{}")]),
            (want(&[]), have(&[("FilterPolicy", "{}")]), vec![]),
            (want(&[]), have(&[("FilterPolicy", "")]), vec![]),
            // moving to body scope with a nested policy: scope first; back to attributes: policy first
            (want(&[("FilterPolicy", nested), ("FilterPolicyScope", "MessageBody")]), have(&[("FilterPolicy", flat)]),
             vec![("FilterPolicyScope", "MessageBody"), ("FilterPolicy", nested)]),
            (want(&[("FilterPolicy", flat)]), have(&[("FilterPolicy", nested), ("FilterPolicyScope", "MessageBody")]),
             vec![("FilterPolicy", flat), ("FilterPolicyScope", "MessageAttributes")]),
            (want(&[("FilterPolicyScope", "MessageAttributes")]), have(&[]), vec![]),
            // a redrive policy added, equal as JSON, removed
            (want(&[("RedrivePolicy", r#"{"deadLetterTargetArn":"d"}"#)]), have(&[]), vec![("RedrivePolicy", r#"{"deadLetterTargetArn":"d"}"#)]),
            (want(&[("RedrivePolicy", r#"{"deadLetterTargetArn":"d"}"#)]), have(&[("RedrivePolicy", r#"{ "deadLetterTargetArn": "d" }"#)]), vec![]),
            (want(&[("RedrivePolicy", r#"{"deadLetterTargetArn":"d"}"#)]), have(&[("RedrivePolicy", r#"{"deadLetterTargetArn":"old"}"#)]), vec![("RedrivePolicy", r#"{"deadLetterTargetArn":"d"}"#)]),
            (want(&[]), have(&[("RedrivePolicy", r#"{"deadLetterTargetArn":"d"}"#)]), vec![("RedrivePolicy", "")]),
            // a replay policy is for new subscriptions only
            (want(&[("ReplayPolicy", "{}")]), have(&[]), vec![]),
        ];
        for (desired, observed, calls) in rows {
            let got = subscription_diff(&desired, &observed);
            let want: Vec<(&str, String)> = calls.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
            assert_eq!(got, want, "{desired:?} over {observed:?}");
        }
    }

    #[test]
    fn values_compare_by_meaning() {
        assert!(same_value("Policy", r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#));
        assert!(!same_value("Policy", r#"{"a":1}"#, r#"{"a":2}"#));
        assert!(same_value("RawMessageDelivery", "true", "TRUE"));
        assert!(!same_value("VisibilityTimeout", "30", "030"));
        assert!(!same_value("Name", "true", "TRUE"), "only booleans ignore case");
        assert!(
            same_value("Policy", "x", "x") && !same_value("Policy", "x", "y"),
            "non-JSON compares as text"
        );
    }
}
