//! An evaluator of Amazon SNS subscription filter policies, for subscribers that filter themselves.
//!
//! SNS allows 200 filter policies per topic. tasksub subscribes such topics without a policy and the
//! in-container client evaluates the policy instead, with SNS's semantics: [`FilterPolicy::parse`]
//! validates a policy as SNS's `Subscribe`/`SetSubscriptionAttributes` would, and
//! [`FilterPolicy::matches`] decides delivery for one message.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tasksub_filter::{Attribute, FilterPolicy, Message, Scope};
//!
//! let policy = FilterPolicy::parse(
//!     r#"{"store": ["example_corp"], "price_usd": [{"numeric": [">=", 100]}]}"#,
//!     Scope::MessageAttributes,
//! )?;
//! let attributes = BTreeMap::from([
//!     ("store".to_string(), Attribute::new("String", "example_corp")),
//!     ("price_usd".to_string(), Attribute::new("Number", "210.75")),
//! ]);
//! assert!(policy.matches(&Message { attributes: &attributes, body: "" }));
//! # Ok::<(), tasksub_filter::PolicyError>(())
//! ```
//!
//! # What it implements, and where SNS documents it
//!
//! From the *Amazon SNS Developer Guide* (<https://docs.aws.amazon.com/sns/latest/dg/>):
//! - `sns-subscription-filter-policies.html`, `and-or-logic.html`: keys are ANDed, a key's array is
//!   ORed, `$or` is an operator only with at least two objects none of which uses a reserved keyword.
//! - `subscription-filter-policy-scope.html` ([`Scope`]): attributes by default, or the JSON body,
//!   where keys nest; a body that is not a JSON object matches nothing.
//! - `string-value-matching.html`: exact, `prefix`, `suffix`, `equals-ignore-case`, `anything-but`
//!   (a value or list, or `{"prefix": ..}` / `{"suffix": ..}`), `cidr` (IP address matching);
//!   `String.Array` attributes match element by element, and `anything-but` matches an array holding
//!   any value not listed.
//! - `numeric-value-matching.html`: `{"numeric": [op, n]}` and ranges, numeric `anything-but` and
//!   exact numbers, compared by value (`301.5` equals `3.015e2`); "prefixes are supported for string
//!   matching only", so string operators never match numbers and numeric ones never match strings.
//! - `attribute-key-matching.html`: `{"exists": true|false}`, on leaves only.
//! - `subscription-filter-policy-constraints.html`: numbers from -1e9 to 1e9 with five digits after
//!   the decimal point, at most 150 combinations (values per key times its nesting depth, multiplied;
//!   `$or` branches added), at most five keys, 256 KB; SNS compares only `String`, `String.Array`
//!   and `Number` attributes (`Binary` ones are ignored).
//!
//! docs/filter.md records the differential test against LocalStack's engine and the places where
//! LocalStack departs from these pages.
//!
//! # Layout
//!
//! - [`error`]: [`PolicyError`], one variant per refusal.
//! - `policy`: the policy's structure (keys, nesting, `$or`) and its limits; `pattern`: one rule;
//!   `number`: SNS's fixed-precision numbers; `cidr`: networks.
//! - `values`: what a message carries under a key; `matching`: the evaluation.

pub mod error;

mod cidr;
mod matching;
mod number;
mod pattern;
mod policy;
mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use error::PolicyError;

/// The largest policy SNS accepts, in bytes (256 KB).
pub const MAX_POLICY_BYTES: usize = 256 * 1024;

/// What a filter policy is evaluated against: SNS's `FilterPolicyScope` subscription attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// The message attributes (SNS's default).
    #[default]
    MessageAttributes,
    /// The message body, parsed as a JSON object.
    MessageBody,
}

impl Scope {
    /// SNS's spelling: `MessageAttributes` or `MessageBody`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessageAttributes => "MessageAttributes",
            Scope::MessageBody => "MessageBody",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Scope, PolicyError> {
        match text {
            "MessageAttributes" => Ok(Scope::MessageAttributes),
            "MessageBody" => Ok(Scope::MessageBody),
            _ => Err(PolicyError::UnknownScope { scope: text.into() }),
        }
    }
}

/// An SNS/SQS message attribute: `String`, `Number`, `String.Array` (the value is a JSON array) or
/// `Binary` (which no policy value matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The data type, e.g. `String`, `Number`, `String.Array`, `Binary` (custom labels such as
    /// `Number.float` count as their base type).
    pub data_type: String,
    /// The value as text (base64 for `Binary`).
    pub value: String,
}

impl Attribute {
    /// An attribute of `data_type` holding `value`.
    pub fn new(data_type: impl Into<String>, value: impl Into<String>) -> Attribute {
        Attribute {
            data_type: data_type.into(),
            value: value.into(),
        }
    }
}

/// The parts of a message a policy can look at.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The message attributes, by name (what [`Scope::MessageAttributes`] evaluates).
    pub attributes: &'a BTreeMap<String, Attribute>,
    /// The message body (what [`Scope::MessageBody`] evaluates, as a JSON object).
    pub body: &'a str,
}

/// A validated SNS subscription filter policy and its scope.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    scope: Scope,
    expr: policy::Expr,
}

impl FilterPolicy {
    /// Parses and validates `json` as SNS would for a subscription of `scope`.
    pub fn parse(json: &str, scope: Scope) -> Result<FilterPolicy, PolicyError> {
        if json.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                bytes: json.len(),
                max: MAX_POLICY_BYTES,
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| PolicyError::InvalidJson { reason: e.to_string() })?;
        let object = value.as_object().ok_or(PolicyError::NotAnObject)?;
        let expr = policy::parse(object, scope)?;
        Ok(FilterPolicy { scope, expr })
    }

    /// The scope the policy was parsed for.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// Whether SNS would deliver `message` to a subscription with this policy.
    pub fn matches(&self, message: &Message<'_>) -> bool {
        match self.scope {
            Scope::MessageAttributes => matching::expr(&self.expr, &|path: &[String]| {
                values::attribute(message.attributes, &path.join("."))
            }),
            Scope::MessageBody => match serde_json::from_str::<serde_json::Value>(message.body) {
                Ok(root) if root.is_object() => {
                    matching::expr(&self.expr, &|path: &[String]| values::body(&root, path))
                }
                _ => false,
            },
        }
    }
}
