//! `tasksub`: the operator CLI.
//!
//! Exit codes: 0 success; 1 an event failed permanently (or a record was not found); 2 bad usage or
//! settings; 3 a transient failure (retrying may succeed).

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate tasksub: replay ECS events through the controller, inspect task records, prepare an emulator.
///
/// Settings come from the same environment variables as the Lambda functions (TASKSUB_TOPIC_ARN,
/// TASKSUB_TABLE, TASKSUB_CLUSTERS, ...); AWS access from the standard AWS variables, including
/// AWS_ENDPOINT_URL for a local emulator.
#[derive(Debug, Parser)]
#[command(name = "tasksub", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run recorded EventBridge events through exactly the code path of the Lambda functions.
    Replay(commands::replay::Args),
    /// List task records.
    List(commands::records::ListArgs),
    /// Show one task record.
    Show(commands::records::ShowArgs),
    /// Create the SNS topic and the DynamoDB table (with TTL) on the configured endpoint.
    InitLocal(commands::init::Args),
    /// Reconcile records, queues under the prefix and ECS once, as the scheduled sweeper does; print the
    /// report as JSON.
    Sweep(commands::sweep::Args),
    /// Check a deployment (settings, topic, table, clusters, permissions, orphan queues) and say what
    /// is wrong and how to fix it. Exit 0 healthy, 1 problems found.
    Doctor(commands::doctor::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::init_logging();
    let sdk = tasksub_functions::sdk::load().await;
    if let Err(e) = tasksub_functions::sdk::check(&sdk) {
        eprintln!("error: {e}");
        return ExitCode::from(commands::EXIT_USAGE);
    }
    let result = match cli.command {
        Command::Replay(args) => commands::replay::run(args, &sdk).await,
        Command::List(args) => commands::records::list(args, &sdk).await,
        Command::Show(args) => commands::records::show(args, &sdk).await,
        Command::InitLocal(args) => commands::init::run(args, &sdk).await,
        Command::Sweep(args) => commands::sweep::run(args, &sdk).await,
        Command::Doctor(args) => commands::doctor::run(args, &sdk).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(commands::exit_code_of(&e))
        }
    }
}
