//! What every binary does at start: JSON logs, settings parsed once, clients built once; then each
//! invocation of an event function is a batch from its buffer queue or one EventBridge event
//! ([`crate::batch`]).

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, LambdaEvent};
use tasksub_core::decide::Role;
use tasksub_core::settings::{Settings, SweepSettings};
use tracing::Instrument;

use tasksub_core::event::strict::StrictJson;

use crate::batch::{self, Response};
use crate::handler::{Controller, HandlerError};
use crate::metrics::Sink;
use crate::sweeper::{Report, RunOptions, SweepError, Sweeper};

/// Time kept free before the sweeper's Lambda deadline: no action starts later.
pub const SWEEP_DEADLINE_MARGIN: Duration = Duration::from_secs(20);

/// Time kept free before an event function's deadline: no record of a batch starts later (the rest go
/// back to the buffer queue). One event takes a few round trips; the function's timeout is 30 s.
pub const BATCH_DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Installs the JSON log subscriber (binaries only; libraries never do). `RUST_LOG` filters. Every line
/// logged while an invocation runs carries its span, `{"span":{"name":"event","request_id":...}}`, so a
/// line can be tied to its invocation.
pub fn init_logging() {
    let filter = log_filter("info");
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .init();
}

/// The SDK crates that, below `info`, log request details including the access key ID.
const SDK_CRATES_CAPPED_AT_INFO: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_sigv4",
    "aws_config",
];

/// The Lambda runtime crates, which at `trace` log every raw event body ("raw JSON event received from
/// Lambda", with the whole payload) and the invocation metadata. Their `debug` carries no payload.
const RUNTIME_CRATES_CAPPED_AT_DEBUG: &[&str] = &["lambda_runtime", "lambda_runtime_api_client"];

/// `RUST_LOG` (or `default`), with the SDK's credential-touching crates capped at `info` and the Lambda
/// runtime's crates at `debug` whatever it says: credentials, even the access key ID, and raw event bodies
/// never reach the logs.
pub fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    log_filter_from(
        std::env::var(tracing_subscriber::EnvFilter::DEFAULT_ENV)
            .ok()
            .as_deref(),
        default,
    )
}

/// [`log_filter`] for a given `RUST_LOG` value (`None`, or a value that does not parse: `default`).
pub fn log_filter_from(rust_log: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = rust_log
        .and_then(|spec| tracing_subscriber::EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let caps = SDK_CRATES_CAPPED_AT_INFO
        .iter()
        .map(|krate| format!("{krate}=info"))
        .chain(
            RUNTIME_CRATES_CAPPED_AT_DEBUG
                .iter()
                .map(|krate| format!("{krate}=debug")),
        );
    for directive in caps {
        filter = filter.add_directive(directive.parse().expect("a valid directive"));
    }
    filter
}

/// Parses settings from the process environment.
pub fn settings_from_env() -> Result<Settings, tasksub_core::settings::SettingsError> {
    Settings::from_lookup(|k| std::env::var(k).ok())
}

/// The whole life of a Lambda function: settings and clients once, then one handler call per event.
/// A missing or invalid setting fails the cold start with a message naming it.
pub async fn run_lambda(role: Role) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let settings = settings_from_env().inspect_err(|e| tracing::error!(error = %e, "invalid settings"))?;
    let sdk = crate::sdk::load().await;
    crate::sdk::check(&sdk).inspect_err(|e| tracing::error!(error = %e, "unusable AWS configuration"))?;
    let controller = Arc::new(Controller::new(settings, &sdk, role).with_metrics(Sink::Stdout));
    // The payload type sees the bytes: a duplicate key anywhere is noticed before it could be lost.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StrictJson>| {
        let controller = Arc::clone(&controller);
        async move {
            let span = tracing::info_span!("event", request_id = %event.context.request_id);
            let stop_by = stop_by(event.context.deadline, BATCH_DEADLINE_MARGIN);
            let result: Result<Response, HandlerError> = Box::pin(batch::invoke(&controller, event.payload, stop_by))
                .instrument(span)
                .await;
            result
        }
    }))
    .await
}

/// The sweeper function: settings and clients once, then one sweep per scheduled invocation (the payload
/// is ignored). The invocation fails when the sweep was aborted or some action failed, so the function's
/// error alarm sees it; the summary is logged either way.
pub async fn run_sweeper() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let env = |k: &str| std::env::var(k).ok();
    let settings = settings_from_env().inspect_err(|e| tracing::error!(error = %e, "invalid settings"))?;
    let sweep = SweepSettings::from_lookup(env).inspect_err(|e| tracing::error!(error = %e, "invalid settings"))?;
    let sdk = crate::sdk::load().await;
    crate::sdk::check(&sdk).inspect_err(|e| tracing::error!(error = %e, "unusable AWS configuration"))?;
    let sweeper = Arc::new(Sweeper::new(settings, sweep, &sdk).with_metrics(Sink::Stdout));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let sweeper = Arc::clone(&sweeper);
        async move {
            let span = tracing::info_span!("sweep", request_id = %event.context.request_id);
            let options = RunOptions {
                stop_by: stop_by(event.context.deadline, SWEEP_DEADLINE_MARGIN),
                ..RunOptions::default()
            };
            let result: Result<Report, SweepError> = async {
                let report = Box::pin(sweeper.run(options, chrono::Utc::now())).await?;
                match report.errors {
                    0 => Ok(report),
                    errors => Err(SweepError::Incomplete { errors }),
                }
            }
            .instrument(span)
            .await;
            result
        }
    }))
    .await
}

/// The instant after which no action starts, `margin` before the invocation deadline (epoch milliseconds).
fn stop_by(deadline_ms: u64, margin: Duration) -> Option<tokio::time::Instant> {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).ok()?;
    if deadline_ms == 0 {
        return None;
    }
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(tokio::time::Instant::now() + left.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_log::Captured;

    fn logged_with(rust_log: &str) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(log_filter_from(Some(rust_log), "info"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime 1.x logs in layers/api_response.rs for every invocation.
            tracing::trace!(
                target: "lambda_runtime::layers::api_response",
                body = "{\"detail\":{\"overrides\":\"SECRET-ENV\"}}",
                "raw JSON event received from Lambda"
            );
            tracing::trace!(target: "lambda_runtime_api_client::body", "SECRET-CLIENT-TRACE");
            tracing::debug!(target: "lambda_runtime::runtime", "runtime-debug-kept");
            tracing::trace!(target: "aws_sigv4::http_request", "SECRET-SIGNING");
            tracing::trace!(target: "tasksub_functions::handler", "own-trace-kept");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn raw_events_never_reach_the_logs_whatever_rust_log_says() {
        for rust_log in [
            "trace",
            "lambda_runtime=trace,trace",
            "lambda_runtime_api_client=trace,debug",
        ] {
            let logs = logged_with(rust_log);
            assert!(!logs.contains("SECRET"), "{rust_log}: {logs}");
            assert!(!logs.contains("raw JSON event"), "{rust_log}: {logs}");
            assert!(
                logs.contains("runtime-debug-kept"),
                "{rust_log}: the runtime's debug stays: {logs}"
            );
        }
        assert!(logged_with("trace").contains("own-trace-kept"));
    }
}
