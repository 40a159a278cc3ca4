//! Strict JSON: a payload with the same key twice in one object is refused, wherever it is.
//!
//! `serde_json::Value` keeps the *last* of two equal keys, so once a payload is a `Value` a duplicate is
//! invisible. A duplicate is what a value pasted unescaped into a template looks like when it became
//! structure (an ECS group `x", "taskArn": "<another task>` inside `"group": "<group>"`), so the check
//! must run on the bytes: [`from_slice`] builds the `Value` in one pass and remembers the path of the
//! first key it saw twice, and [`StrictJson`] does the same as the payload type of a Lambda function.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::EventError;

/// A JSON payload and the path of its first duplicate key, if it has one.
///
/// Deserializing never fails on a duplicate (only on JSON that is not JSON), so the caller decides how to
/// refuse it; [`StrictJson::into_value`] is the usual way.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictJson {
    value: Value,
    duplicate: Option<String>,
}

impl StrictJson {
    /// The value, or a refusal naming the first duplicate key's path (`detail.taskArn`).
    pub fn into_value(self) -> Result<Value, EventError> {
        match self.duplicate {
            None => Ok(self.value),
            Some(field) => Err(duplicate(field)),
        }
    }

    /// The path of the first duplicate key, if any.
    pub fn duplicate(&self) -> Option<&str> {
        self.duplicate.as_deref()
    }
}

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seen = RefCell::new(None);
        let value = Node {
            path: String::new(),
            duplicate: &seen,
        }
        .deserialize(deserializer)?;
        Ok(Self {
            value,
            duplicate: seen.into_inner(),
        })
    }
}

/// Parses `bytes` as JSON, refusing a duplicate key anywhere (and trailing data, as `serde_json` does).
pub fn from_slice(bytes: &[u8]) -> Result<Value, EventError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let strict = StrictJson::deserialize(&mut de)
        .and_then(|s| de.end().map(|()| s))
        .map_err(|e| EventError::Malformed {
            field: ".".to_owned(),
            problem: e.to_string(),
        })?;
    strict.into_value()
}

fn duplicate(field: String) -> EventError {
    let problem = "duplicate key: refused (with two, a JSON parser keeps one of them, so a value may have \
                   become structure)"
        .to_owned();
    if field.starts_with("detail") {
        EventError::MalformedDetail { field, problem }
    } else {
        EventError::Malformed { field, problem }
    }
}

/// One JSON value at `path`; records the first key seen twice in `duplicate`.
struct Node<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
}

impl Node<'_> {
    fn child(&self, step: &str) -> Self {
        let path = match (self.path.is_empty(), step.starts_with('[')) {
            (true, _) | (false, true) => format!("{}{step}", self.path),
            (false, false) => format!("{}.{step}", self.path),
        };
        Node {
            path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.child(&format!("[{}]", items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.child(&key))?;
            if object.contains_key(&key) {
                let mut first = self.duplicate.borrow_mut();
                if first.is_none() {
                    *first = Some(self.child(&key).path);
                }
                continue;
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused_at(text: &str) -> String {
        from_slice(text.as_bytes()).expect_err(text).field().to_owned()
    }

    #[test]
    fn a_payload_without_duplicates_is_the_value_serde_json_reads() {
        let text = r#"{"a": [1, -2, 3.5, true, null, {"b": "c\"d"}], "detail": {"x": {"y": []}}, "e": {}}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_slice(text.as_bytes()).unwrap(), expected);
    }

    #[test]
    fn a_duplicate_is_refused_with_its_path_at_any_depth() {
        assert_eq!(refused_at(r#"{"a": 1, "a": 2}"#), "a");
        assert_eq!(
            refused_at(r#"{"detail": {"taskArn": "x", "group": "g", "taskArn": "y"}}"#),
            "detail.taskArn"
        );
        assert_eq!(refused_at(r#"{"r": [{"k": 1}, {"k": 1, "k": 1}]}"#), "r[1].k");
        assert_eq!(refused_at(r#"[{"k": {"k": {"z": 0, "z": 0}}}]"#), "[0].k.k.z");
    }

    #[test]
    fn the_first_duplicate_is_named_and_the_detail_ones_are_detail_errors() {
        let e = from_slice(br#"{"detail": {"a": 1, "a": 1}, "b": 1, "b": 1}"#).unwrap_err();
        assert!(
            matches!(&e, EventError::MalformedDetail { field, .. } if field == "detail.a"),
            "{e}"
        );
        let e = from_slice(br#"{"b": 1, "b": 1, "detail": {"a": 1, "a": 1}}"#).unwrap_err();
        assert!(matches!(&e, EventError::Malformed { field, .. } if field == "b"), "{e}");
    }

    #[test]
    fn equal_keys_in_different_objects_are_not_duplicates() {
        let v = from_slice(br#"{"a": {"id": 1}, "b": {"id": 1}, "id": [{"id": 2}]}"#).unwrap();
        assert_eq!(v, json!({"a": {"id": 1}, "b": {"id": 1}, "id": [{"id": 2}]}));
    }

    #[test]
    fn escaped_keys_are_compared_decoded() {
        // "\u0061" is "a": the same key written two ways is still two of one key.
        assert_eq!(refused_at(r#"{"a": 1, "\u0061": 2}"#), "a");
    }

    #[test]
    fn not_json_and_trailing_data_are_refused_at_the_root() {
        for text in ["", "{", r#"{"a": 1} {"a": 2}"#, r#"{"a": 1}x"#] {
            assert_eq!(refused_at(text), ".", "{text}");
        }
    }

    #[test]
    fn as_a_payload_type_it_reports_rather_than_fails() {
        let s: StrictJson = serde_json::from_str(r#"{"k": 1, "k": 2}"#).unwrap();
        assert_eq!(s.duplicate(), Some("k"));
        assert!(s.into_value().is_err());
        let s: StrictJson = serde_json::from_str(r#"{"k": 1}"#).unwrap();
        assert_eq!(s.into_value().unwrap(), json!({"k": 1}));
    }
}
