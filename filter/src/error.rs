//! Why a filter policy was refused: one variant per rule SNS enforces, each naming the key at fault.
//!
//! Keys are written as SNS flattens nested body keys, `parent.child`; `$or` branches do not add a
//! segment. `Display` is one sentence without a source (there is none: parsing is pure).

/// A filter policy SNS would refuse (`InvalidParameter`), or a scope name it does not know.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON.
    #[error("filter policy is not valid JSON: {reason}")]
    InvalidJson {
        /// serde_json's description of the syntax error.
        reason: String,
    },
    /// The JSON is valid but its top level is not an object.
    #[error("filter policy must be a JSON object")]
    NotAnObject,
    /// The policy is larger than SNS's 256 KB limit.
    #[error("filter policy is {bytes} bytes, more than the {max} bytes SNS accepts")]
    TooLarge {
        /// The policy's size in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A key maps to something other than an array of rules or (body scope) a nested object.
    #[error("\"{key}\" must be an object or an array")]
    NotObjectOrArray {
        /// The key at fault.
        key: String,
    },
    /// A nested object in a policy of scope `MessageAttributes`.
    #[error("\"{key}\": filter policy scope MessageAttributes does not support nested filter policy")]
    NestedInAttributeScope {
        /// The key holding the nested object.
        key: String,
    },
    /// A key maps to an empty array.
    #[error("\"{key}\": empty arrays are not allowed")]
    EmptyArray {
        /// The key at fault.
        key: String,
    },
    /// A rule is neither a string, number, `true`, `false`, `null` nor an operator object.
    #[error("\"{key}\": match value must be a string, number, true, false, or null")]
    BadMatchValue {
        /// The key at fault.
        key: String,
    },
    /// An operator object with zero or several keys.
    #[error("\"{key}\": only one key allowed in a match expression")]
    OperatorCount {
        /// The key at fault.
        key: String,
    },
    /// An operator SNS does not know (or does not allow at that place).
    #[error("\"{key}\": unrecognized match type {operator}")]
    UnknownOperator {
        /// The key at fault.
        key: String,
        /// The operator as written.
        operator: String,
    },
    /// An operator's operand has the wrong shape, e.g. `{"prefix": 5}` or `{"exists": "yes"}`.
    #[error("\"{key}\": {operator} {expected}")]
    BadOperand {
        /// The key at fault.
        key: String,
        /// The operator.
        operator: String,
        /// What the operand must be.
        expected: &'static str,
    },
    /// A number outside SNS's numeric range, -1e9 to 1e9.
    #[error("\"{key}\": {value} is outside the numeric range -1e9..=1e9")]
    NumberOutOfRange {
        /// The key at fault.
        key: String,
        /// The number as parsed.
        value: f64,
    },
    /// A malformed `cidr` operand.
    #[error("\"{key}\": malformed CIDR {cidr:?}")]
    BadCidr {
        /// The key at fault.
        key: String,
        /// The operand as written.
        cidr: String,
    },
    /// More keys than SNS allows.
    #[error("filter policy has {count} keys, more than {max}")]
    TooManyKeys {
        /// The number of keys counted (leaf keys, across `$or` branches).
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A policy whose combinations exceed SNS's complexity limit.
    #[error("filter policy is too complex: {combinations} combinations, more than {max}")]
    TooComplex {
        /// The combinations counted.
        combinations: u64,
        /// The limit.
        max: u64,
    },
    /// A scope other than `MessageAttributes` or `MessageBody`.
    #[error("unknown filter policy scope {scope:?} (expected MessageAttributes or MessageBody)")]
    UnknownScope {
        /// The scope as written.
        scope: String,
    },
}
