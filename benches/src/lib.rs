//! tasksub-bench: measurements of tasksub against the reference design (a Python/boto3 baseline) and
//! against the targets, on the same moto, in the same process tree. Run with `scripts/bench`; nothing
//! here runs in the default test run.
//!
//! - [`moto`]: a moto server with per-request timing (`benches/baseline/moto_timed.py`).
//! - [`tap`]: an SDK HTTP client wrapper that counts and times every AWS call and tags it for moto.
//! - [`py`]: the Python baseline worker (`benches/baseline/worker.py`).
//! - [`events`]: ECS task state change events.
//! - [`stats`], [`sys`]: medians and percentiles; CPU time and peak RSS from the kernel.
//! - [`report`]: results files and the generated sections of `BENCHMARKS.md`.

pub mod events;
pub mod moto;
pub mod py;
pub mod report;
pub mod stats;
pub mod sys;
pub mod tap;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The project venv's Python (moto, boto3), made by `scripts/setup`.
pub fn venv_python() -> PathBuf {
    std::env::var_os("BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

/// `benches/baseline/<name>`.
pub fn baseline(name: &str) -> PathBuf {
    repo_root().join("benches/baseline").join(name)
}

/// Region and account of every benchmark (moto's defaults).
pub const REGION: &str = "us-east-1";
/// moto's account.
pub const ACCOUNT: &str = "123456789012";

/// Environment for AWS clients talking to the emulator (fixed fake credentials).
pub fn emulator_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

/// Creates a DynamoDB table keyed by one string attribute, on demand, as the infrastructure does.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str, key: &str) -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// A machine description line: CPU model, cores, kernel, load average.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, Linux {}, load average {}",
        kernel.trim(),
        sys::loadavg()
    )
}
