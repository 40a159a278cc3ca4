//! CloudWatch Embedded Metric Format: one JSON line per metric set on stdout, turned into metrics by
//! CloudWatch Logs with no API call. Tests capture the lines through a [`Sink`].

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

/// Namespace of every tasksub metric.
pub const NAMESPACE: &str = "tasksub";

/// Metric units used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Milliseconds,
    /// A count.
    Count,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Milliseconds => "Milliseconds",
            Self::Count => "Count",
        }
    }
}

/// Where EMF lines go.
#[derive(Debug, Clone, Default)]
pub enum Sink {
    /// Standard output (Lambda ships it to CloudWatch Logs).
    #[default]
    Stdout,
    /// Nowhere (CLI runs that should not print metrics).
    Off,
    /// A buffer, for tests.
    Buffer(Arc<Mutex<Vec<String>>>),
}

impl Sink {
    /// A capturing sink and its buffer.
    pub fn buffer() -> (Self, Arc<Mutex<Vec<String>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (Self::Buffer(Arc::clone(&buf)), buf)
    }

    /// Emits one metric set: `dimensions` (name, value) pairs, then (name, unit, value) metrics.
    pub fn emit(&self, timestamp_ms: i64, dimensions: &[(&str, &str)], metrics: &[(&str, Unit, f64)]) {
        if matches!(self, Self::Off) || metrics.is_empty() {
            return;
        }
        let line = render(timestamp_ms, dimensions, metrics);
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            Self::Buffer(buf) => buf.lock().expect("metrics buffer").push(line),
            Self::Off => {}
        }
    }
}

/// Renders one EMF line.
pub fn render(timestamp_ms: i64, dimensions: &[(&str, &str)], metrics: &[(&str, Unit, f64)]) -> String {
    let dim_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let defs: Vec<Value> = metrics
        .iter()
        .map(|(n, u, _)| json!({"Name": n, "Unit": u.as_str()}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dim_names], "Metrics": defs}],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).to_owned(), json!(v));
    }
    for (n, _, v) in metrics {
        root.insert((*n).to_owned(), json!(v));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_emf() {
        let (sink, buf) = Sink::buffer();
        sink.emit(
            1_700_000_000_000,
            &[("Function", "on-task-running")],
            &[("ProvisioningLatency", Unit::Milliseconds, 1234.0)],
        );
        sink.emit(1, &[], &[]);
        let lines = buf.lock().unwrap().clone();
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "tasksub");
        assert_eq!(cw["Dimensions"], json!([["Function"]]));
        assert_eq!(
            cw["Metrics"][0],
            json!({"Name": "ProvisioningLatency", "Unit": "Milliseconds"})
        );
        assert_eq!(v["Function"], "on-task-running");
        assert_eq!(v["ProvisioningLatency"], 1234.0);
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
