//! The values a message carries under a key: from its attributes (attribute scope) or from its JSON
//! body (body scope), flattened as SNS flattens them.
//!
//! - `String` (and `String.<label>`) attributes carry one string, `Number` (and `Number.<label>`) one
//!   number, `String.Array` each element of its JSON array; `Binary` attributes are ignored (the
//!   constraints page: SNS compares only String, String.Array and Number attributes).
//! - In the body, a key's path is followed through objects and through every element of arrays;
//!   the values are the scalars found at its end (elements of arrays there too). An object at the
//!   end is not a value: key matching works on leaves only.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::number::Num;
use crate::pattern::Literal;
use crate::Attribute;

/// What a message has under one key.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Found {
    /// Whether the key is present (what `exists` tests).
    pub(crate) exists: bool,
    /// The values under it.
    pub(crate) values: Vec<Literal>,
}

/// The values of attribute `name`.
pub(crate) fn attribute(attributes: &BTreeMap<String, Attribute>, name: &str) -> Found {
    let Some(attribute) = attributes.get(name) else {
        return Found::default();
    };
    let kind = attribute.data_type.as_str();
    let values = if kind == "String.Array" {
        array_elements(&attribute.value)
    } else if kind == "String" || kind.starts_with("String.") {
        vec![Literal::Str(attribute.value.clone())]
    } else if kind == "Number" || kind.starts_with("Number.") {
        vec![Literal::Num(Num::parse(&attribute.value))]
    } else {
        return Found::default();
    };
    Found { exists: true, values }
}

/// The scalars of a `String.Array` value; none when it is not a JSON array.
fn array_elements(text: &str) -> Vec<Literal> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        _ => Vec::new(),
    }
}

/// The values at `path` in a JSON body.
pub(crate) fn body(root: &Value, path: &[String]) -> Found {
    let mut values = Vec::new();
    collect(root, path, &mut values);
    Found {
        exists: !values.is_empty(),
        values,
    }
}

fn collect(node: &Value, path: &[String], out: &mut Vec<Literal>) {
    match (node, path) {
        (Value::Array(items), _) => items.iter().for_each(|item| collect(item, path, out)),
        (Value::Object(map), [first, rest @ ..]) => {
            if let Some(child) = map.get(first) {
                collect(child, rest, out);
            }
        }
        (Value::Object(_), []) | (_, [_, ..]) => {}
        (scalar_value, []) => out.extend(scalar(scalar_value)),
    }
}

/// A JSON scalar as a literal; `None` for arrays and objects.
fn scalar(value: &Value) -> Option<Literal> {
    Some(match value {
        Value::String(s) => Literal::Str(s.clone()),
        Value::Number(n) => Literal::Num(n.as_f64().and_then(Num::new)),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        Value::Array(_) | Value::Object(_) => return None,
    })
}
