//! Evaluates cases for the differential test (scripts/filter-diff.py): one JSON object a line on
//! stdin, `{"policy": "<json text>", "scope": "MessageAttributes"|"MessageBody",
//! "attributes": {"name": {"data_type": "String", "value": "x"}}, "body": "<text>"}`, and one line
//! out for each, `{"valid": bool, "matches": bool|null, "error": string|null}`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};

use serde::Deserialize;
use tasksub_filter::{Attribute, FilterPolicy, Message, Scope};

#[derive(Deserialize)]
struct Case {
    policy: String,
    scope: String,
    #[serde(default)]
    attributes: BTreeMap<String, Attr>,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Attr {
    data_type: String,
    value: String,
}

fn evaluate(case: Case) -> serde_json::Value {
    let attributes: BTreeMap<String, Attribute> = case
        .attributes
        .into_iter()
        .map(|(name, a)| (name, Attribute::new(a.data_type, a.value)))
        .collect();
    let parsed = case
        .scope
        .parse::<Scope>()
        .and_then(|scope| FilterPolicy::parse(&case.policy, scope));
    match parsed {
        Ok(policy) => {
            let matches = policy.matches(&Message {
                attributes: &attributes,
                body: &case.body,
            });
            serde_json::json!({"valid": true, "matches": matches, "error": null})
        }
        Err(e) => serde_json::json!({"valid": false, "matches": null, "error": e.to_string()}),
    }
}

fn main() -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for line in io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let result = match serde_json::from_str::<Case>(&line) {
            Ok(case) => evaluate(case),
            Err(e) => serde_json::json!({"valid": false, "matches": null, "error": format!("bad case: {e}")}),
        };
        writeln!(out, "{result}")?;
    }
    out.flush()
}
