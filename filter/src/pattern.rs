//! One rule of a key's array, parsed and validated: a literal or an operator object.
//!
//! The operators and their operands follow the SNS developer guide's pages "String value matching",
//! "Numeric value matching", "Key matching" and "IP address matching".

use serde_json::{Map, Value};

use crate::cidr::Cidr;
use crate::error::PolicyError;
use crate::number::{Num, Op};

/// A literal of a policy or a message: what exact matching and `anything-but` compare.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    /// A JSON string.
    Str(String),
    /// A number at SNS precision; `None` for a message number outside -1e9..=1e9.
    Num(Option<Num>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// What `anything-but` excludes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Excluded {
    /// These literals (one or a list).
    Values(Vec<Literal>),
    /// Strings that start with this.
    Prefix(String),
    /// Strings that end with this.
    Suffix(String),
}

/// One rule: the value matches when the rule accepts it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pattern {
    /// An exact string, number, boolean or null.
    Exact(Literal),
    /// `{"prefix": s}`
    Prefix(String),
    /// `{"suffix": s}`
    Suffix(String),
    /// `{"equals-ignore-case": s}`
    EqualsIgnoreCase(String),
    /// `{"anything-but": ...}`
    AnythingBut(Excluded),
    /// `{"numeric": [op, n]}` or `{"numeric": [">"|">=", n, "<"|"<=", m]}`: every comparison holds.
    Numeric(Vec<(Op, Num)>),
    /// `{"exists": bool}`
    Exists(bool),
    /// `{"cidr": "net/bits"}`
    Cidr(Cidr),
}

impl Pattern {
    /// Parses one element of `key`'s array.
    pub(crate) fn parse(key: &str, rule: &Value) -> Result<Pattern, PolicyError> {
        match rule {
            Value::Object(map) => operator(key, map),
            Value::Array(_) => Err(PolicyError::BadMatchValue { key: key.into() }),
            literal => literal_of(key, literal).map(Pattern::Exact),
        }
    }
}

/// A policy literal; numbers must lie in SNS's numeric range.
fn literal_of(key: &str, value: &Value) -> Result<Literal, PolicyError> {
    match value {
        Value::String(s) => Ok(Literal::Str(s.clone())),
        Value::Number(n) => number(key, n.as_f64().unwrap_or(f64::NAN)).map(|n| Literal::Num(Some(n))),
        Value::Bool(b) => Ok(Literal::Bool(*b)),
        Value::Null => Ok(Literal::Null),
        _ => Err(PolicyError::BadMatchValue { key: key.into() }),
    }
}

fn number(key: &str, value: f64) -> Result<Num, PolicyError> {
    Num::new(value).ok_or(PolicyError::NumberOutOfRange { key: key.into(), value })
}

fn operator(key: &str, map: &Map<String, Value>) -> Result<Pattern, PolicyError> {
    let mut entries = map.iter();
    let (Some((name, operand)), None) = (entries.next(), entries.next()) else {
        return Err(PolicyError::OperatorCount { key: key.into() });
    };
    let bad = |expected| PolicyError::BadOperand {
        key: key.into(),
        operator: name.clone(),
        expected,
    };
    match name.as_str() {
        "prefix" => string(operand)
            .map(Pattern::Prefix)
            .ok_or_else(|| bad("must be a string")),
        "suffix" => string(operand)
            .map(Pattern::Suffix)
            .ok_or_else(|| bad("must be a string")),
        "equals-ignore-case" => string(operand)
            .map(Pattern::EqualsIgnoreCase)
            .ok_or_else(|| bad("must be a string")),
        "exists" => operand
            .as_bool()
            .map(Pattern::Exists)
            .ok_or_else(|| bad("must be true or false")),
        "cidr" => match operand.as_str() {
            Some(text) => cidr(key, text),
            None => Err(bad("must be a string")),
        },
        "numeric" => numeric(key, operand).map(Pattern::Numeric),
        "anything-but" => anything_but(key, operand).map(Pattern::AnythingBut),
        _ => Err(PolicyError::UnknownOperator {
            key: key.into(),
            operator: name.clone(),
        }),
    }
}

fn string(operand: &Value) -> Option<String> {
    operand.as_str().map(str::to_owned)
}

fn cidr(key: &str, text: &str) -> Result<Pattern, PolicyError> {
    Cidr::parse(text)
        .map(Pattern::Cidr)
        .ok_or_else(|| PolicyError::BadCidr {
            key: key.into(),
            cidr: text.into(),
        })
}

/// `anything-but`: a string, a number, a non-empty list of them, or `{"prefix"|"suffix": s}`.
fn anything_but(key: &str, operand: &Value) -> Result<Excluded, PolicyError> {
    let bad = |expected| PolicyError::BadOperand {
        key: key.into(),
        operator: "anything-but".into(),
        expected,
    };
    match operand {
        Value::String(_) | Value::Number(_) => Ok(Excluded::Values(vec![literal_of(key, operand)?])),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(_) | Value::Number(_) => literal_of(key, item),
                _ => Err(bad("list must hold only strings and numbers")),
            })
            .collect::<Result<_, _>>()
            .map(Excluded::Values),
        Value::Object(map) => excluded_affix(key, map),
        _ => Err(bad(
            "must be a string, a number, a non-empty list of them, or a prefix or suffix",
        )),
    }
}

fn excluded_affix(key: &str, map: &Map<String, Value>) -> Result<Excluded, PolicyError> {
    match operator(key, map)? {
        Pattern::Prefix(prefix) => Ok(Excluded::Prefix(prefix)),
        Pattern::Suffix(suffix) => Ok(Excluded::Suffix(suffix)),
        _ => Err(PolicyError::UnknownOperator {
            key: key.into(),
            operator: format!("anything-but/{}", map.keys().next().map_or("", String::as_str)),
        }),
    }
}

/// `numeric`: `[op, n]`, or a range `[">"|">=", low, "<"|"<=", high]` with `low < high`.
fn numeric(key: &str, operand: &Value) -> Result<Vec<(Op, Num)>, PolicyError> {
    let bad = |expected| PolicyError::BadOperand {
        key: key.into(),
        operator: "numeric".into(),
        expected,
    };
    let items = operand.as_array().ok_or_else(|| bad("must be an array"))?;
    let terms: Vec<(Op, f64)> = items
        .chunks(2)
        .map(|pair| match pair {
            [op, Value::Number(n)] => Some((op.as_str().and_then(Op::parse)?, n.as_f64()?)),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(|| bad("must alternate operators (=, <, <=, >, >=) and numbers"))?;
    match terms.as_slice() {
        [_] => {}
        [(Op::Gt | Op::Ge, low), (Op::Lt | Op::Le, high)] if low < high => {}
        [(Op::Gt | Op::Ge, _), (Op::Lt | Op::Le, _)] => return Err(bad("range's bottom must be less than its top")),
        _ => return Err(bad("must be one comparison or a range: > or >= then < or <=")),
    }
    terms.into_iter().map(|(op, n)| Ok((op, number(key, n)?))).collect()
}
