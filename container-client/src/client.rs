//! The client: discover → wait → `on_subscribed` → consume, with what [`ClientBuilder`] validated.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sqs::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::timeout::TimeoutConfig;
use tasksub_core::naming::{QueueName, QueuePrefix, TaskId};
use tasksub_core::settings::vars;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::aws::{DynamoRecords, SqsLocator, SqsQueue};
use crate::consume::{self, ConsumeConfig, RunReport};
use crate::filter::LiveFilters;
use crate::metadata::MetadataEndpoint;
use crate::port::RecordReader;
use crate::wait;
use crate::{ClientBuilder, Error, Handler, TaskIdentity, TaskQueue};

/// A standard queue, or a FIFO queue (`.fifo` name, ordered message groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueKind {
    Standard,
    Fifo,
}

/// The task's queue name: `<prefix><task id>`, with `.fifo` for a FIFO queue (the naming contract
/// the controller uses, at most 80 characters).
fn queue_name(prefix: &QueuePrefix, task: &TaskId, kind: QueueKind) -> Result<QueueName, Error> {
    QueueName::for_task(prefix, task, kind == QueueKind::Fifo)
        .map_err(|e| Error::invalid_config(vars::QUEUE_PREFIX, e.to_string()))
}

/// Everything [`ClientBuilder::build`] resolved.
pub(crate) struct Inner {
    pub sqs: aws_sdk_sqs::Client,
    pub records: Option<DynamoRecords>,
    pub credentials: SharedCredentialsProvider,
    pub receive_timeouts: TimeoutConfig,
    pub metadata: MetadataEndpoint,
    pub prefix: QueuePrefix,
    pub kind: QueueKind,
    pub wait_limit: Duration,
    pub consume: ConsumeConfig,
    pub handle_sigterm: bool,
}

/// Finds this task's queue and consumes it. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("metadata_uri", &self.inner.metadata.base)
            .field("prefix", &self.inner.prefix.as_str())
            .field("ready_table", &self.inner.records.as_ref().map(|r| r.table.as_str()))
            .finish_non_exhaustive()
    }
}

impl Client {
    pub(crate) fn new(inner: Inner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// A builder with every default; finish with [`ClientBuilder::build`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Asks the task metadata endpoint which task this is and derives its queue name.
    pub async fn discover(&self) -> Result<TaskIdentity, Error> {
        let (task_arn, parsed) = self.inner.metadata.task_arn().await?;
        let queue_name = queue_name(&self.inner.prefix, &parsed.task_id, self.inner.kind)?;
        tracing::info!(action = "discover", task_id = %parsed.task_id, queue = %queue_name, "task discovered");
        Ok(TaskIdentity {
            task_arn,
            parsed,
            queue_name,
        })
    }

    /// Resolves credentials once: none found (or a broken credentials setup) is a configuration error,
    /// not something to retry for the whole wait limit. Other provider failures (a timeout) are left
    /// to the SDK calls, which retry them.
    async fn check_credentials(&self) -> Result<(), Error> {
        match self.inner.credentials.provide_credentials().await {
            Ok(_) => Ok(()),
            Err(e @ (CredentialsError::CredentialsNotLoaded(_) | CredentialsError::InvalidConfiguration(_))) => {
                Err(Error::invalid_config(
                    "credentials",
                    "no AWS credentials found (in ECS: give the task a task role; locally: set \
                     AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)",
                )
                .with_source(e))
            }
            Err(e) => {
                tracing::warn!(action = "credentials", error = %DisplayErrorContext(&e), "credentials not resolved yet; continuing");
                Ok(())
            }
        }
    }

    /// Discovers the task, then waits (never creates) until its queue exists and, if a table is
    /// known, its record is READY ([`TaskQueue::subscription_confirmed`]). `Ok(None)` when `shutdown`
    /// fired first.
    pub async fn connect(&self, shutdown: &CancellationToken) -> Result<Option<TaskQueue>, Error> {
        let identity = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(None),
            r = self.discover() => r?,
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(None),
            r = self.check_credentials() => r?,
        };
        let deadline = Instant::now() + self.inner.wait_limit;
        let mut rng = fastrand::Rng::new();
        let locator = SqsLocator {
            client: self.inner.sqs.clone(),
        };
        let name = identity.queue_name.as_str();
        let Some(url) = wait::queue_url(&locator, name, deadline, shutdown, &mut rng).await? else {
            return Ok(None);
        };
        let mut confirmed = false;
        let filters = LiveFilters::default();
        if let Some(records) = &self.inner.records {
            let task_id = identity.task_id().as_str();
            if !wait::ready(records, task_id, deadline, shutdown, &mut rng).await? {
                return Ok(None);
            }
            confirmed = true;
            match records.client_filters(task_id).await {
                Ok(handed) => filters.load(handed),
                Err(e) => tracing::warn!(
                    action = "client-filter",
                    error = %DisplayErrorContext(&*e),
                    "could not read the record's filters; retried every {} s",
                    crate::filter::FILTER_REFRESH.as_secs()
                ),
            }
        }
        Ok(Some(TaskQueue {
            identity,
            url,
            confirmed,
            filters,
        }))
    }

    /// Runs the whole life of the consumer: [`connect`](Client::connect), then
    /// [`Handler::on_subscribed`] once if the subscription is confirmed (a READY record), then consume
    /// until `shutdown` (or SIGTERM) and drain.
    ///
    /// Returns `Ok` with what was done once draining finished, also when shutdown came before the
    /// queue was ready (`subscribed: false`); errors are discovery and wait failures.
    pub async fn run<H: Handler>(&self, handler: H, shutdown: CancellationToken) -> Result<RunReport, Error> {
        let stop = shutdown.child_token();
        let _sigterm = if self.inner.handle_sigterm {
            on_sigterm(stop.clone())
        } else {
            None
        };
        let Some(queue) = self.connect(&stop).await? else {
            tracing::info!(action = "stopped", "shutdown before the queue was ready");
            return Ok(RunReport::default());
        };
        let span = tracing::info_span!(
            "tasksub",
            task_id = %queue.identity.task_id(),
            queue = %queue.queue_name()
        );
        async {
            if queue.subscription_confirmed() {
                handler.on_subscribed(&queue).await;
            }
            let sqs = SqsQueue {
                client: self.inner.sqs.clone(),
                url: queue.url.clone(),
                receive_timeouts: self.inner.receive_timeouts.clone(),
                kind: self.inner.kind,
            };
            let mut cfg = self.inner.consume.clone();
            cfg.filters = queue.filters.clone();
            // The record's filters are re-read while consuming (a settings change reaches running tasks).
            let refresher = self.inner.records.clone().map(|records| {
                let (live, stop, task_id) = (
                    queue.filters.clone(),
                    stop.clone(),
                    queue.identity.task_id().to_string(),
                );
                AbortOnDropHandle::new(tokio::spawn(
                    async move { crate::filter::refresh(&records, &task_id, &live, &stop).await }.in_current_span(),
                ))
            });
            let mut report = consume::consume(sqs, Arc::new(handler), cfg, stop).await;
            drop(refresher);
            report.subscribed = true;
            Ok(report)
        }
        .instrument(span)
        .await
    }
}

/// Cancels `stop` on SIGTERM, for as long as the returned handle lives.
fn on_sigterm(stop: CancellationToken) -> Option<AbortOnDropHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => Some(AbortOnDropHandle::new(tokio::spawn(async move {
                if sigterm.recv().await.is_some() {
                    tracing::info!(action = "shutdown", "SIGTERM received; shutting down");
                    stop.cancel();
                }
            }))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; relying on the shutdown token");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = stop;
        None
    }
}

#[cfg(test)]
mod tests {
    use aws_config::SdkConfig;
    use tasksub_core::naming::TaskArn;

    use super::*;
    use crate::{LONG_POLL_WAIT, SDK_ATTEMPT_TIMEOUT, SDK_CONNECT_TIMEOUT, SDK_OPERATION_TIMEOUT};

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(aws_sdk_sqs::config::Credentials::new(
                "a", "b", None, None, "test",
            )))
            .build()
    }

    fn builder() -> ClientBuilder {
        Client::builder()
            .env_lookup(|_| None)
            .metadata_uri("http://127.0.0.1:9/v4/x")
            .handle_sigterm(false)
    }

    #[test]
    fn every_sdk_client_has_connect_attempt_and_operation_timeouts() {
        let client = builder().wait_for_ready("records").build(&sdk()).unwrap();
        let expected = TimeoutConfig::builder()
            .connect_timeout(SDK_CONNECT_TIMEOUT)
            .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
            .operation_timeout(SDK_OPERATION_TIMEOUT)
            .build();
        assert_eq!(client.inner.sqs.config().timeout_config(), Some(&expected));
        let ddb = &client.inner.records.as_ref().unwrap().client;
        assert_eq!(ddb.config().timeout_config(), Some(&expected));
        // ReceiveMessage: the long poll's 20 s on top of the attempt and operation limits.
        let receive = &client.inner.receive_timeouts;
        assert_eq!(receive.connect_timeout(), Some(SDK_CONNECT_TIMEOUT));
        assert_eq!(
            receive.operation_attempt_timeout(),
            Some(SDK_ATTEMPT_TIMEOUT + LONG_POLL_WAIT)
        );
        assert_eq!(
            receive.operation_timeout(),
            Some(SDK_OPERATION_TIMEOUT + LONG_POLL_WAIT)
        );
        assert!(SDK_ATTEMPT_TIMEOUT <= SDK_OPERATION_TIMEOUT);
    }

    #[test]
    fn the_buffer_defaults_to_50_messages_per_handler_and_receives_to_64() {
        let consume = |b: ClientBuilder| {
            let c = b.build(&sdk()).unwrap().inner.consume.clone();
            (c.max_buffered, c.max_receives)
        };
        assert_eq!(consume(builder()), (500, crate::DEFAULT_MAX_RECEIVES_IN_FLIGHT));
        assert_eq!(crate::DEFAULT_MAX_RECEIVES_IN_FLIGHT, 64);
        assert_eq!(consume(builder().max_concurrency(16)), (800, 64));
        assert_eq!(consume(builder().max_concurrency(1000)).0, 50_000);
        assert_eq!(consume(builder().max_buffered(7).max_receives_in_flight(2)), (7, 2));
        assert_eq!(consume(builder().max_buffered(0).max_receives_in_flight(1)), (0, 1));
    }

    #[test]
    fn the_ready_wait_is_the_default_when_the_table_is_in_the_environment() {
        let with_table = builder()
            .env_lookup(|k| (k == vars::TABLE).then(|| "records".to_owned()))
            .build(&sdk())
            .unwrap();
        assert_eq!(
            with_table.inner.records.as_ref().map(|r| r.table.as_str()),
            Some("records")
        );
        let skipped = builder()
            .env_lookup(|k| (k == vars::TABLE).then(|| "records".to_owned()))
            .skip_ready_check()
            .build(&sdk())
            .unwrap();
        assert!(skipped.inner.records.is_none());
        assert!(builder().build(&sdk()).unwrap().inner.records.is_none());
    }

    #[test]
    fn fifo_queues_are_named_with_the_fifo_suffix() {
        let arn = TaskArn::parse("arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef").unwrap();
        let prefix = QueuePrefix::default();
        let name = |kind| queue_name(&prefix, &arn.task_id, kind).unwrap();
        assert_eq!(
            name(QueueKind::Standard).as_str(),
            "tasksub-0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            name(QueueKind::Fifo).as_str(),
            "tasksub-0123456789abcdef0123456789abcdef.fifo"
        );
        // 80 characters at most, `.fifo` included: a 44-character prefix fits, a 45-character one does not.
        let long = |n: usize| QueuePrefix::new(&format!("tasksub-{}", "p".repeat(n - 8))).unwrap();
        let fits = queue_name(&long(43), &arn.task_id, QueueKind::Fifo).unwrap();
        assert_eq!(fits.as_str().len(), tasksub_core::naming::MAX_QUEUE_NAME_LEN);
        let e = queue_name(&long(44), &arn.task_id, QueueKind::Fifo).unwrap_err();
        assert!(e.is_config(), "{e}");
        assert!(queue_name(&long(44), &arn.task_id, QueueKind::Standard).is_ok());
    }

    #[test]
    fn fifo_comes_from_the_builder_then_the_environment_then_defaults_to_standard() {
        let env = |value: &'static str| move |k: &str| (k == crate::QUEUE_FIFO_VAR).then(|| value.to_owned());
        let kind = |b: ClientBuilder| {
            let client = b.build(&sdk()).unwrap();
            (client.inner.kind, client.inner.consume.order)
        };
        let (fifo, standard) = (
            (QueueKind::Fifo, consume::Order::PerGroup),
            (QueueKind::Standard, consume::Order::Any),
        );
        assert_eq!(kind(builder()), standard);
        for v in ["true", "TRUE", "1", "yes"] {
            assert_eq!(kind(builder().env_lookup(env(v))), fifo, "{v}");
        }
        for v in ["false", "0", "no", " "] {
            assert_eq!(kind(builder().env_lookup(env(v))), standard, "{v:?}");
        }
        assert_eq!(kind(builder().env_lookup(env("true")).queue_fifo(false)), standard);
        assert_eq!(kind(builder().env_lookup(env("false")).queue_fifo(true)), fifo);
        let e = builder().env_lookup(env("fifo")).build(&sdk()).unwrap_err();
        assert_eq!(e.setting(), Some(crate::QUEUE_FIFO_VAR), "{e}");
    }
}
