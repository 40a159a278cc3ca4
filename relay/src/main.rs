//! `tasksub-relay`: consume this ECS task's tasksub queue and POST each message to an app on localhost.
//! See the crate docs (`relay/src/lib.rs`) and the README section "Non-Rust apps: the relay".

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hyper::Uri;
#[cfg(feature = "local")]
use tasksub_client::ClientBuilder;
use tasksub_client::{CancellationToken, Client};
use tasksub_relay::config::{client_error_message, Args, Config, LOG_FILTER_VAR};
use tasksub_relay::deliver::{wait_for_app, Phase, Relay, Status};
use tasksub_relay::{health, EXIT_APP_UNHEALTHY, EXIT_CONFIG, EXIT_DISCOVERY, EXIT_INTERNAL, EXIT_LISTEN, EXIT_OK};
use tokio_util::task::AbortOnDropHandle;

#[cfg(feature = "local")]
const RECORDED_TASK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json"
));

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.check_health {
        return if health::check(args.listen).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env(LOG_FILTER_VAR).unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    ExitCode::from(run(args).await)
}

/// Cancels `stop` on SIGTERM or SIGINT and marks the relay as draining.
fn on_signals(stop: CancellationToken, status: Arc<Status>) {
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, name) in [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
    ] {
        match signal(kind) {
            Ok(mut s) => {
                let (stop, status) = (stop.clone(), status.clone());
                tokio::spawn(async move {
                    if s.recv().await.is_some() {
                        tracing::info!(action = "shutdown", signal = name, "signal received; draining");
                        status.set(Phase::Draining);
                        stop.cancel();
                    }
                });
            }
            Err(e) => tracing::warn!(signal = name, error = %e, "cannot listen for the signal"),
        }
    }
}

async fn run(args: Args) -> u8 {
    match relay(args).await {
        Ok(code) | Err(code) => code,
    }
}

/// A stage's result: `Err` carries the exit status the relay stops with (`EXIT_OK` for a shutdown that
/// came first).
type Stage<T> = Result<T, u8>;

/// The relay's life: configure, serve health, build the client, wait for the app, find the queue,
/// consume until SIGTERM.
async fn relay(args: Args) -> Stage<u8> {
    let cfg = config(&args)?;
    let status = Arc::new(Status::default());
    let stop = CancellationToken::new();
    on_signals(stop.clone(), status.clone());
    let _health = serve_health(&cfg, &status).await?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let builder = cfg.client_builder();
    #[cfg(feature = "local")]
    let (builder, _metadata) = stand_in_metadata(&args, builder).await?;
    let client = match builder.build(&sdk) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(setting = e.setting(), error = %client_error_message(&e), "bad configuration");
            return Err(if e.is_config() { EXIT_CONFIG } else { EXIT_INTERNAL });
        }
    };
    if let Some(url) = &cfg.app_health {
        status.set(Phase::WaitingForApp);
        wait_app(url, &cfg, &stop).await?;
    }
    connect(&client, &cfg, &status, &stop).await?;
    Ok(consume(client, cfg, status, stop).await)
}

fn config(args: &Args) -> Stage<Arc<Config>> {
    Config::from_args(args).map(Arc::new).map_err(|e| {
        tracing::error!(setting = e.setting, "{e}");
        EXIT_CONFIG
    })
}

async fn serve_health(cfg: &Config, status: &Arc<Status>) -> Stage<AbortOnDropHandle<()>> {
    match health::serve(cfg.listen, status.clone()).await {
        Ok((addr, handle)) => {
            tracing::info!(action = "listen", %addr, path = health::PATH, "health endpoint up");
            Ok(handle)
        }
        Err(e) => {
            tracing::error!(addr = %cfg.listen, error = %e, "cannot bind the health endpoint");
            Err(EXIT_LISTEN)
        }
    }
}

/// `--task-arn` (local runs): a stand-in task metadata endpoint serving the recorded task under that ARN.
#[cfg(feature = "local")]
async fn stand_in_metadata(
    args: &Args,
    builder: ClientBuilder,
) -> Stage<(ClientBuilder, Option<tasksub_client::testing::MetadataServer>)> {
    let Some(arn) = &args.task_arn else {
        return Ok((builder, None));
    };
    let doc = tasksub_client::testing::with_task_arn(RECORDED_TASK, arn).map_err(|e| {
        tracing::error!(error = %e, "bad recorded task document");
        EXIT_INTERNAL
    })?;
    match tasksub_client::testing::MetadataServer::serve_task(doc).await {
        Ok(server) => {
            tracing::info!(uri = server.uri(), "serving a stand-in task metadata endpoint");
            Ok((builder.metadata_uri(server.uri()), Some(server)))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start the stand-in metadata endpoint");
            Err(EXIT_INTERNAL)
        }
    }
}

async fn wait_app(url: &Uri, cfg: &Config, stop: &CancellationToken) -> Stage<()> {
    match wait_for_app(url, cfg.app_wait, stop).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::info!(action = "stopped", "shutdown while waiting for the app");
            Err(EXIT_OK)
        }
        Err(waited) => {
            tracing::error!(action = "app-health", %url, waited_ms = waited.as_millis() as u64, "the app never became healthy");
            Err(EXIT_APP_UNHEALTHY)
        }
    }
}

/// Connects first so the health endpoint turns 200 as soon as the queue is known (the client calls
/// `on_subscribed` only when a READY record confirms the subscription); `run` then finds it at once.
async fn connect(client: &Client, cfg: &Config, status: &Status, stop: &CancellationToken) -> Stage<()> {
    status.set(Phase::Connecting);
    tracing::info!(action = "connect", target = %cfg.target, concurrency = cfg.concurrency, "finding this task's queue");
    match client.connect(stop).await {
        Ok(Some(queue)) => {
            tracing::info!(action = "connect", queue = %queue.queue_name(), "queue found; relaying");
            status.set(Phase::Consuming);
            Ok(())
        }
        Ok(None) => {
            tracing::info!(action = "stopped", "shutdown before the queue was ready");
            Err(EXIT_OK)
        }
        Err(e) => Err(discovery_failed(&e)),
    }
}

async fn consume(client: Client, cfg: Arc<Config>, status: Arc<Status>, stop: CancellationToken) -> u8 {
    let relay = Relay::new(cfg, status, stop.clone());
    match client.run(relay, stop).await {
        Ok(report) => {
            tracing::info!(
                action = "stopped",
                subscribed = report.subscribed,
                received = report.received,
                delivered = report.succeeded,
                failed = report.failed,
                filtered_out = report.filtered_out,
                deleted = report.deleted,
                returned = report.returned,
                "relay stopped"
            );
            EXIT_OK
        }
        Err(e) => discovery_failed(&e),
    }
}

/// Logs a failed discovery or queue wait; its exit status.
fn discovery_failed(e: &tasksub_client::Error) -> u8 {
    tracing::error!(action = "connect", error = %client_error_message(e), "discovery or the queue wait failed");
    if e.is_config() {
        EXIT_CONFIG
    } else {
        EXIT_DISCOVERY
    }
}
