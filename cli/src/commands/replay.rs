//! `tasksub replay FILE...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tasksub_core::decide::Role;
use tasksub_core::event::{strict, EventError};
use tasksub_functions::runtime::settings_from_env;
use tasksub_functions::{Controller, HandlerError};

use super::{EXIT_FAILED, EXIT_TRANSIENT};

/// Which function's code path to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Both: provisioning and teardown (default).
    Any,
    /// As `on-task-running`: provisioning only.
    Running,
    /// As `on-task-stopped`: teardown only.
    Stopped,
}

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files holding one event, a JSON array of events, or one event per line. `-` reads stdin.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Act as this function.
    #[arg(long, value_enum, default_value_t = RoleArg::Any)]
    role: RoleArg,
    /// Judge each event's age against its own `time` instead of now (for recorded samples).
    #[arg(long)]
    at_event_time: bool,
}

/// The events of a file, each parsed strictly (a duplicate key is refused: it would be lost in a `Value`,
/// and a value that became structure looks like one). A duplicate in a file of one event or an array
/// refuses the whole file as one malformed event; in a file of one event per line, only its line.
fn load(path: &PathBuf) -> anyhow::Result<Vec<Result<serde_json::Value, EventError>>> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    match strict::from_slice(text.as_bytes()) {
        Ok(serde_json::Value::Array(events)) => Ok(events.into_iter().map(Ok).collect()),
        Ok(event) => Ok(vec![Ok(event)]),
        Err(e) if e.field() != "." => Ok(vec![Err(e)]),
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| match strict::from_slice(l.as_bytes()) {
                Err(e) if e.field() == "." => Err(anyhow::anyhow!("{} line {}: not JSON", path.display(), i + 1)),
                parsed => Ok(parsed),
            })
            .collect(),
    }
}

/// Runs every event in order; prints one JSON outcome per event on stdout.
pub async fn run(args: Args, sdk: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let settings = settings_from_env()?;
    let role = match args.role {
        RoleArg::Any => Role::Any,
        RoleArg::Running => Role::Provisioner,
        RoleArg::Stopped => Role::Teardown,
    };
    let controller = Controller::new(settings, sdk, role);
    let mut worst = 0u8;
    let mut events = Vec::new();
    for path in &args.files {
        events.extend(load(path)?);
    }
    if events.is_empty() {
        let files: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
        anyhow::bail!("no event in {}: nothing was replayed", files.join(", "));
    }
    {
        for event in events {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    let e = HandlerError::Malformed(e);
                    let line =
                        serde_json::json!({"outcome": "error", "errorType": e.error_type(), "error": e.to_string()});
                    println!("{line}");
                    worst = worst.max(EXIT_FAILED);
                    continue;
                }
            };
            let now = match (args.at_event_time, event.get("time").and_then(|t| t.as_str())) {
                (true, Some(t)) => chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|_| chrono::Utc::now()),
                _ => chrono::Utc::now(),
            };
            match controller.handle_json_at(&event, now).await {
                Ok(outcome) => println!("{}", serde_json::to_string(&outcome)?),
                Err(e) => {
                    let line =
                        serde_json::json!({"outcome": "error", "errorType": e.error_type(), "error": e.to_string()});
                    println!("{line}");
                    worst = worst.max(if e.is_retryable() { EXIT_TRANSIENT } else { EXIT_FAILED });
                }
            }
        }
    }
    Ok(ExitCode::from(worst))
}
