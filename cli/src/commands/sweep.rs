//! `tasksub sweep`: one sweep from the operator's seat, with the same settings and code as the scheduled
//! `sweeper` function.

use std::process::ExitCode;

use tasksub_core::settings::SweepSettings;
use tasksub_functions::runtime::settings_from_env;
use tasksub_functions::sweeper::{RunOptions, Sweeper};

use super::{EXIT_FAILED, EXIT_TRANSIENT};

/// Arguments of `sweep`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Minimum age, in seconds, before a leftover is touched (default: TASKSUB_SWEEP_GRACE_SECONDS, else 600).
    #[arg(long)]
    grace_seconds: Option<u64>,
    /// Judge as the sweep at this time (RFC 3339) would, e.g. once a refused topic's backoff has passed.
    /// Only with --dry-run: a real sweep acts now.
    #[arg(long, requires = "dry_run", value_name = "TIME")]
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs one sweep and prints its report (counts and every action) as JSON on stdout.
/// Exit 0: done; 1: some action failed, or a read failed for good; 3: a read failed transiently.
pub async fn run(args: Args, sdk: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let settings = settings_from_env()?;
    let sweep = SweepSettings::from_lookup(|k| std::env::var(k).ok())?;
    let sweeper = Sweeper::new(settings, sweep, sdk);
    let options = RunOptions {
        dry_run: args.dry_run,
        grace_seconds: args.grace_seconds,
        stop_by: None,
    };
    match sweeper.run(options, args.at.unwrap_or_else(chrono::Utc::now)).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::from(if report.errors > 0 { EXIT_FAILED } else { 0 }))
        }
        Err(e) => {
            eprintln!("error: {e}");
            let transient = e.0.kind.is_transient();
            Ok(ExitCode::from(if transient { EXIT_TRANSIENT } else { EXIT_FAILED }))
        }
    }
}
