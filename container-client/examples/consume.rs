//! A small container app: find this task's queue, consume it, log what arrives (IDs and sizes only,
//! never bodies, receipt handles or credentials), drain on SIGTERM / Ctrl-C.
//!
//! In ECS it needs no flags: `ECS_CONTAINER_METADATA_URI_V4` is set by the agent. Locally, `--task-arn`
//! starts a stand-in metadata endpoint on 127.0.0.1 that serves a recorded v4 `/task` response with
//! that task ARN. AWS settings (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials) come from `aws-config`.
//!
//! ```text
//! cargo run -p tasksub-client --features testing --example consume -- \
//!     --task-arn arn:aws:ecs:us-east-1:123456789012:task/demo/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
//!     --table "$TASKSUB_TABLE" --max-messages 2
//! ```
//! Exit status: 0 after a clean drain (max messages reached, idle limit, SIGTERM or Ctrl-C); 1 when the
//! queue could not be found or discovery failed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_types::error::display::DisplayErrorContext;
use clap::Parser;
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_client::{BoxError, CancellationToken, Client, Handler, Message, TaskQueue};

const RECORDED_TASK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json"
);

/// Consume this task's tasksub queue and log what arrives.
#[derive(Debug, Parser)]
struct Args {
    /// Local runs: serve a stand-in metadata endpoint for this task ARN (otherwise
    /// ECS_CONTAINER_METADATA_URI_V4 is used).
    #[arg(long)]
    task_arn: Option<String>,
    /// The recorded `/task` response the stand-in serves (its TaskARN is replaced).
    #[arg(long, default_value = RECORDED_TASK)]
    metadata_file: PathBuf,
    /// Wait until this table's record for the task is READY.
    #[arg(long, env = "TASKSUB_TABLE")]
    table: Option<String>,
    /// Stop (drain and exit 0) after this many messages were handled.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop (drain and exit 0) after this many seconds without a message, counted from the subscription
    /// (with --table) or from the first message.
    #[arg(long)]
    idle_exit: Option<u64>,
    /// Handlers running at once.
    #[arg(long, default_value_t = tasksub_client::DEFAULT_MAX_CONCURRENCY)]
    concurrency: usize,
    /// Simulated work per message, in milliseconds (to watch a drain: SIGTERM while handlers work).
    #[arg(long, default_value_t = 0)]
    work_ms: u64,
    /// Time in-flight handlers get after SIGTERM, in milliseconds (default: the client's 20 s).
    #[arg(long)]
    drain_timeout_ms: Option<u64>,
}

/// The app: counts messages and stops the client when told to.
struct App {
    handled: AtomicU64,
    work: Duration,
    max_messages: Option<u64>,
    last_activity: Mutex<Option<Instant>>,
    stop: CancellationToken,
}

impl Handler for App {
    async fn handle(&self, message: Message) -> Result<(), BoxError> {
        *self.last_activity.lock().unwrap() = Some(Instant::now());
        let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(
            n,
            message_id = message.sqs_message_id(),
            sns_message_id = message.sns_message_id(),
            bytes = message.body().len(),
            attributes = message.attributes().len(),
            receive_count = message.receive_count(),
            "received message"
        );
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
            tracing::info!(n, message_id = message.sqs_message_id(), "work done");
        }
        if self.max_messages.is_some_and(|max| n >= max) {
            tracing::info!(n, "max messages reached; shutting down");
            self.stop.cancel();
        }
        Ok(())
    }

    async fn on_subscribed(&self, queue: &TaskQueue) {
        // A real app reloads here whatever it may have missed before the subscription existed.
        *self.last_activity.lock().unwrap() = Some(Instant::now());
        tracing::info!(task_id = %queue.identity().task_id(), queue = %queue.queue_name(), "subscribed");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %DisplayErrorContext(&*e), "consume failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut builder = Client::builder().max_concurrency(args.concurrency);
    if let Some(ms) = args.drain_timeout_ms {
        builder = builder.drain_timeout(Duration::from_millis(ms));
    }
    // Kept alive until the end of `run`: the stand-in stops when dropped.
    let _metadata = match &args.task_arn {
        Some(arn) => {
            let recorded = std::fs::read_to_string(&args.metadata_file)?;
            let server = MetadataServer::serve_task(with_task_arn(&recorded, arn)?).await?;
            tracing::info!(uri = server.uri(), "serving a stand-in task metadata endpoint");
            builder = builder.metadata_uri(server.uri());
            Some(server)
        }
        None => None,
    };
    if let Some(table) = &args.table {
        builder = builder.wait_for_ready(table);
    }
    let client = builder.build(&sdk)?;

    let stop = CancellationToken::new();
    let app = Arc::new(App {
        handled: AtomicU64::new(0),
        work: Duration::from_millis(args.work_ms),
        max_messages: args.max_messages,
        last_activity: Mutex::new(None),
        stop: stop.clone(),
    });
    tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received; shutting down");
                stop.cancel();
            }
        }
    });
    if let Some(idle) = args.idle_exit.map(Duration::from_secs) {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let last = *app.last_activity.lock().unwrap();
                if last.is_some_and(|t| t.elapsed() >= idle) {
                    tracing::info!(idle_seconds = idle.as_secs(), "idle; shutting down");
                    stop.cancel();
                    return;
                }
            }
        });
    }

    let report = client.run(SharedApp(app), stop).await?;
    tracing::info!(
        handled = report.succeeded,
        failed = report.failed,
        deleted = report.deleted,
        returned = report.returned,
        subscribed = report.subscribed,
        "done"
    );
    Ok(())
}

/// `Handler` for a shared `App` (the idle watchdog reads it too).
struct SharedApp(Arc<App>);

impl Handler for SharedApp {
    async fn handle(&self, message: Message) -> Result<(), BoxError> {
        self.0.handle(message).await
    }
    async fn on_subscribed(&self, queue: &TaskQueue) {
        self.0.on_subscribed(queue).await
    }
}
