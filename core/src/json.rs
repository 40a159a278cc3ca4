//! Strict JSON: a document whose objects repeat a key is refused. `serde_json` keeps the last of two equal
//! keys without a word, so a setting such as `{"orders":{"rawDelivery":true},"orders":{...}}` would lose
//! its first entry silently; here it is an error that names the key and where it is.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A key repeated within one JSON object, with the path of that object (`$`, `$.orders`, `$.a[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// The same key twice in one object.
    #[error("key {key:?} appears twice in the object at {path}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the object is.
        path: String,
    },
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    Syntax(String),
}

/// Checks that no object of `raw` repeats a key (and that `raw` is JSON).
pub fn check_no_duplicate_keys(raw: &str) -> Result<(), StrictJsonError> {
    let mut d = serde_json::Deserializer::from_str(raw);
    let found = Walk { path: "$".to_owned() }
        .deserialize(&mut d)
        .map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
    d.end().map_err(|e| StrictJsonError::Syntax(e.to_string()))?;
    found.map_or(Ok(()), Err)
}

/// Walks one value; its output is the first duplicate found below it (syntax errors are serde's).
struct Walk {
    path: String,
}

type Found = Option<StrictJsonError>;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Found;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Found, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Found, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let mut first = None;
        let mut i = 0;
        while let Some(found) = seq.next_element_seed(Walk {
            path: format!("{}[{i}]", self.path),
        })? {
            first = first.or(found);
            i += 1;
        }
        Ok(first)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        let mut first = None;
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.path);
            if !seen.insert(key.clone()) && first.is_none() {
                first = Some(StrictJsonError::DuplicateKey {
                    key,
                    path: self.path.clone(),
                });
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let below = map.next_value_seed(Walk { path })?;
            first = first.or(below);
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_named_with_its_place() {
        type Row = (&'static str, Result<(), (&'static str, &'static str)>);
        let rows: &[Row] = &[
            (r#"{"a":1,"b":{"c":[1,{"d":2}]}}"#, Ok(())),
            (r#"{"a":1,"a":2}"#, Err(("a", "$"))),
            (
                r#"{"orders":{"rawDelivery":true,"rawDelivery":false}}"#,
                Err(("rawDelivery", "$.orders")),
            ),
            (r#"[{"x":1},{"y":1,"y":2}]"#, Err(("y", "$[1]"))),
            (r#"{"k":{"v":1},"k":{"v":1}}"#, Err(("k", "$"))),
            // the same key in two different objects is fine
            (r#"{"a":{"k":1},"b":{"k":1}}"#, Ok(())),
            ("[]", Ok(())),
            ("\"s\"", Ok(())),
        ];
        for (raw, want) in rows {
            let got = check_no_duplicate_keys(raw).map_err(|e| match e {
                StrictJsonError::DuplicateKey { key, path } => (key, path),
                other => panic!("{raw}: {other}"),
            });
            let want = want.map_err(|(k, p)| (k.to_owned(), p.to_owned()));
            assert_eq!(got, want, "{raw}");
        }
    }

    #[test]
    fn not_json_is_a_syntax_error() {
        for raw in ["{", "{\"a\":1} trailing", ""] {
            assert!(
                matches!(check_no_duplicate_keys(raw), Err(StrictJsonError::Syntax(_))),
                "{raw}"
            );
        }
        let e = check_no_duplicate_keys(r#"{"a":1,"a":2}"#).unwrap_err();
        assert_eq!(e.to_string(), "key \"a\" appears twice in the object at $");
    }
}
