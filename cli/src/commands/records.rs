//! `tasksub list` and `tasksub show`.

use std::process::ExitCode;

use tasksub_core::naming::TaskArn;
use tasksub_core::record::{Record, State};
use tasksub_functions::aws::AwsPorts;
use tasksub_functions::ports::Records;

use super::EXIT_FAILED;

/// Arguments of `list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The records table.
    #[arg(long, env = "TASKSUB_TABLE")]
    table: String,
    /// Only records in this state (PROVISIONING, READY, DRAINING, GONE).
    #[arg(long, value_parser = parse_state)]
    state: Option<State>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The records table.
    #[arg(long, env = "TASKSUB_TABLE")]
    table: String,
    /// A task ID or a task ARN.
    task: String,
}

fn parse_state(s: &str) -> Result<State, String> {
    State::parse(&s.to_ascii_uppercase()).ok_or_else(|| format!("{s:?} is not PROVISIONING, READY, DRAINING or GONE"))
}

/// Prints every record (optionally of one state).
pub async fn list(args: ListArgs, sdk: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let scanned = AwsPorts::new(sdk, &args.table).list().await?;
    for (key, why) in &scanned.quarantined {
        eprintln!("warning: the record of {key} cannot be read ({why}): repair or delete the item");
    }
    let records: Vec<Record> = scanned
        .records
        .into_iter()
        .filter(|r| args.state.is_none_or(|s| r.state == s))
        .collect();
    if args.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        println!(
            "{:<36} {:<12} {:>7} {:<25} {:<40} TOPICS",
            "TASK ID", "STATE", "VERSION", "UPDATED", "QUEUE"
        );
        for r in &records {
            let updated = r.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            println!(
                "{:<36} {:<12} {:>7} {:<25} {:<40} {}",
                r.task_id,
                r.state.as_str(),
                r.version,
                updated,
                r.queue_name,
                topics_column(r)
            );
        }
        println!("{} record(s)", records.len());
        if !scanned.quarantined.is_empty() {
            println!("{} unreadable record(s), named above", scanned.quarantined.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `2 subscribed, 1 refused`: how a record's topics stand.
fn topics_column(r: &Record) -> String {
    let mut parts = vec![format!("{} subscribed", r.subscriptions.len())];
    if !r.pending.is_empty() {
        parts.push(format!("{} pending", r.pending.len()));
    }
    if !r.refused.is_empty() {
        parts.push(format!("{} refused", r.refused.len()));
    }
    parts.join(", ")
}

/// Prints one record as JSON.
pub async fn show(args: ShowArgs, sdk: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let task_id = match TaskArn::parse(&args.task) {
        Ok(arn) => arn.task_id.as_str().to_owned(),
        Err(_) => args.task.clone(),
    };
    match AwsPorts::new(sdk, &args.table).get(&task_id).await? {
        Some(r) => {
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no record for task {task_id} in table {}", args.table);
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}
