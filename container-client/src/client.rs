//! The builder and the client: configuration once, then discover → wait → `on_subscribed` → consume.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sqs::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::timeout::TimeoutConfig;
use tasksub_core::naming::{QueueName, QueuePrefix};
use tasksub_core::settings::vars;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::aws::{DynamoRecords, SqsLocator, SqsQueue};
use crate::backoff::Backoff;
use crate::consume::{self, ConsumeConfig, Order, RunReport, LONG_POLL_WAIT, RECEIVE_ERROR_BACKOFF};
use crate::message::Envelopes;
use crate::metadata::{
    MetadataEndpoint, METADATA_ATTEMPTS, METADATA_CONNECT_TIMEOUT, METADATA_READ_TIMEOUT, METADATA_URI_VAR,
};
use crate::wait::{self, QUEUE_WAIT_LIMIT};
use crate::{Error, Handler, TaskIdentity, TaskQueue};

/// Default number of handlers running at once (and the most messages held at once).
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;
/// Default visibility timeout set on each receive and renewed while a handler works.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit of visibility renewals, counted from the receive: a stuck handler cannot hold a
/// message longer than this.
pub const MAX_VISIBILITY_EXTENSION: Duration = Duration::from_secs(3600);
/// Default longest wait before a partial batch of deletes is sent.
pub const DELETE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default time in-flight handlers get to finish after shutdown starts: below ECS's default
/// `stopTimeout` of 30 s, leaving room to flush deletes and return unfinished messages.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest visibility timeout SQS accepts.
const SQS_MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// Default time to establish a TCP (and TLS) connection to SQS or DynamoDB.
pub const SDK_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default limit of one attempt of an SQS or DynamoDB call (GetQueueUrl, GetItem, deletes, visibility
/// changes). ReceiveMessage gets [`LONG_POLL_WAIT`] more, since SQS holds a long poll that long.
pub const SDK_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit of one SQS or DynamoDB call, its retries included (ReceiveMessage: [`LONG_POLL_WAIT`]
/// more). An endpoint that accepts connections and never answers fails within this.
pub const SDK_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Clone)]
enum ReadyCheck {
    FromEnv,
    Table(String),
    Off,
}

/// Configures a [`Client`]. Every setting has a default; see [`Client::builder`].
///
/// Resolution order, for each value that can come from the environment: the builder method, then the
/// environment variable (read through [`ClientBuilder::env_lookup`], the process environment by
/// default), then the default.
#[derive(Clone)]
pub struct ClientBuilder {
    env: Lookup,
    metadata_uri: Option<String>,
    metadata_connect_timeout: Duration,
    metadata_read_timeout: Duration,
    metadata_attempts: u32,
    queue_prefix: Option<String>,
    ready: ReadyCheck,
    wait_limit: Duration,
    max_concurrency: usize,
    visibility_timeout: Duration,
    max_visibility_extension: Duration,
    delete_flush_interval: Duration,
    drain_timeout: Duration,
    retry_backoff: Option<Backoff>,
    dedup_window: Option<Duration>,
    unwrap_sns_envelope: bool,
    handle_sigterm: bool,
    sdk_timeouts: SdkTimeouts,
}

/// Timeouts of the SQS and DynamoDB clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SdkTimeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
}

impl SdkTimeouts {
    pub(crate) const DEFAULT: Self = Self {
        connect: SDK_CONNECT_TIMEOUT,
        attempt: SDK_ATTEMPT_TIMEOUT,
        operation: SDK_OPERATION_TIMEOUT,
    };

    /// The SDK's form, with `extra` added to the attempt and operation limits (a long poll's wait).
    pub(crate) fn config(&self, extra: Duration) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt + extra)
            .operation_timeout(self.operation + extra)
            .build()
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("metadata_uri", &self.metadata_uri)
            .field("queue_prefix", &self.queue_prefix)
            .field("max_concurrency", &self.max_concurrency)
            .field("visibility_timeout", &self.visibility_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            env: Arc::new(|name| std::env::var(name).ok()),
            metadata_uri: None,
            metadata_connect_timeout: METADATA_CONNECT_TIMEOUT,
            metadata_read_timeout: METADATA_READ_TIMEOUT,
            metadata_attempts: METADATA_ATTEMPTS,
            queue_prefix: None,
            ready: ReadyCheck::FromEnv,
            wait_limit: QUEUE_WAIT_LIMIT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            max_visibility_extension: MAX_VISIBILITY_EXTENSION,
            delete_flush_interval: DELETE_FLUSH_INTERVAL,
            drain_timeout: DRAIN_TIMEOUT,
            retry_backoff: None,
            dedup_window: None,
            unwrap_sns_envelope: true,
            handle_sigterm: true,
            sdk_timeouts: SdkTimeouts::DEFAULT,
        }
    }
}

impl ClientBuilder {
    /// Where environment variables are read from (default: the process environment). Tests pass a map.
    pub fn env_lookup(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// The task metadata endpoint, instead of `ECS_CONTAINER_METADATA_URI_V4` (local runs).
    pub fn metadata_uri(mut self, uri: impl Into<String>) -> Self {
        self.metadata_uri = Some(uri.into());
        self
    }

    /// Connect and read timeouts of each metadata request (defaults:
    /// [`METADATA_CONNECT_TIMEOUT`](crate::METADATA_CONNECT_TIMEOUT),
    /// [`METADATA_READ_TIMEOUT`](crate::METADATA_READ_TIMEOUT)).
    pub fn metadata_timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.metadata_connect_timeout = connect;
        self.metadata_read_timeout = read;
        self
    }

    /// Attempts of the metadata request, the first included (default
    /// [`METADATA_ATTEMPTS`](crate::METADATA_ATTEMPTS)).
    pub fn metadata_attempts(mut self, attempts: u32) -> Self {
        self.metadata_attempts = attempts;
        self
    }

    /// The queue name prefix, instead of `TASKSUB_QUEUE_PREFIX` (default `tasksub-`). It must match
    /// the controller's.
    pub fn queue_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.queue_prefix = Some(prefix.into());
        self
    }

    /// Also wait until the controller's record in this DynamoDB table says READY (the subscription is
    /// live), instead of taking the table from `TASKSUB_TABLE`. This is the only way the client can
    /// confirm the subscription, so [`Handler::on_subscribed`] is called only when a table is known.
    pub fn wait_for_ready(mut self, table: impl Into<String>) -> Self {
        self.ready = ReadyCheck::Table(table.into());
        self
    }

    /// Do not wait for READY, even when `TASKSUB_TABLE` is set: the queue existing is enough to start
    /// consuming. The subscription is then unconfirmed and [`Handler::on_subscribed`] is not called.
    pub fn skip_ready_check(mut self) -> Self {
        self.ready = ReadyCheck::Off;
        self
    }

    /// How long to wait for the queue (and READY) before failing (default
    /// [`QUEUE_WAIT_LIMIT`](crate::QUEUE_WAIT_LIMIT), 2 minutes).
    pub fn wait_limit(mut self, limit: Duration) -> Self {
        self.wait_limit = limit;
        self
    }

    /// Handlers running at once (default [`DEFAULT_MAX_CONCURRENCY`]); the client never holds more
    /// unhandled messages than free handler slots.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Visibility timeout set on each receive and renewed while the handler works (default
    /// [`DEFAULT_VISIBILITY_TIMEOUT`]; whole seconds, rounded up).
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// Longest time a message is kept invisible by renewals (default [`MAX_VISIBILITY_EXTENSION`]).
    pub fn max_visibility_extension(mut self, limit: Duration) -> Self {
        self.max_visibility_extension = limit;
        self
    }

    /// Longest wait before a partial batch of deletes is sent (default [`DELETE_FLUSH_INTERVAL`]).
    pub fn delete_flush_interval(mut self, interval: Duration) -> Self {
        self.delete_flush_interval = interval;
        self
    }

    /// Time in-flight handlers get after shutdown starts (default [`DRAIN_TIMEOUT`]). Keep it below the
    /// container's `stopTimeout` (30 s by default) minus a few seconds.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// After a handler failure, make the message visible again after `initial * 2^(receives - 1)`,
    /// capped at `max`. Without this (the default) a failed message reappears when its current
    /// visibility timeout ends.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = Some(Backoff::new(initial, max));
        self
    }

    /// Delete, without calling the handler, copies of a message already handled within `window`, keyed
    /// by [`Message::dedup_key`](crate::Message::dedup_key). Off by default.
    ///
    /// With raw delivery (tasksub's default) the SNS message ID is gone and every SNS redelivery is a
    /// new SQS message with a new ID, so **only a publisher-set
    /// [`DEDUP_ID_ATTRIBUTE`](crate::DEDUP_ID_ATTRIBUTE) (`tasksub-dedup-id`) makes this catch SNS
    /// duplicates**. Without it, it catches SNS duplicates only when raw delivery is off (the envelope's
    /// `MessageId`), and otherwise nothing beyond a redelivery of the same SQS message.
    pub fn dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = Some(window);
        self
    }

    /// Unwrap SNS envelopes (raw delivery off) so the handler sees the published body (default true).
    pub fn unwrap_sns_envelope(mut self, unwrap: bool) -> Self {
        self.unwrap_sns_envelope = unwrap;
        self
    }

    /// Start shutdown on SIGTERM (default true). Note that once a process listens for SIGTERM, the
    /// signal no longer terminates it by default: return from `main` after [`Client::run`].
    pub fn handle_sigterm(mut self, handle: bool) -> Self {
        self.handle_sigterm = handle;
        self
    }

    /// Timeouts of the SQS and DynamoDB clients (defaults: [`SDK_CONNECT_TIMEOUT`],
    /// [`SDK_ATTEMPT_TIMEOUT`], [`SDK_OPERATION_TIMEOUT`]): to connect, for one attempt of a call, and
    /// for the whole call with its retries. ReceiveMessage gets [`LONG_POLL_WAIT`] more on the last two.
    /// They replace any timeouts of the `SdkConfig` passed to [`ClientBuilder::build`].
    pub fn sdk_timeouts(mut self, connect: Duration, attempt: Duration, operation: Duration) -> Self {
        self.sdk_timeouts = SdkTimeouts {
            connect,
            attempt,
            operation,
        };
        self
    }

    fn env(&self, name: &str) -> Option<String> {
        (self.env)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Reads the environment once, validates everything and builds the SDK clients.
    ///
    /// `sdk` must have a region and a credentials provider (what `aws_config::load_defaults` gives):
    /// without either this is a configuration error ([`Error::is_config`]), never a retried failure.
    /// Whether the provider actually finds credentials is checked once by [`Client::connect`].
    pub fn build(self, sdk: &SdkConfig) -> Result<Client, Error> {
        if sdk.region().is_none() {
            return Err(Error::invalid_config(
                "AWS_REGION",
                "the SdkConfig has no region: set AWS_REGION (ECS sets it in every task) or give the \
                 SdkConfig one",
            ));
        }
        let Some(credentials) = sdk.credentials_provider() else {
            return Err(Error::invalid_config(
                "credentials",
                "the SdkConfig has no credentials provider: load it with aws_config::load_defaults (the \
                 task role in ECS) or give it one",
            ));
        };
        let base = match self.metadata_uri.clone().or_else(|| self.env(METADATA_URI_VAR)) {
            Some(uri) => uri,
            None => return Err(Error::missing_env(METADATA_URI_VAR)),
        };
        let metadata = MetadataEndpoint {
            base,
            connect_timeout: self.metadata_connect_timeout,
            read_timeout: self.metadata_read_timeout,
            attempts: self.metadata_attempts,
        };
        metadata.validate()?;
        let prefix = match self.queue_prefix.clone().or_else(|| self.env(vars::QUEUE_PREFIX)) {
            Some(p) => QueuePrefix::new(&p).map_err(|e| Error::invalid_config(vars::QUEUE_PREFIX, e.to_string()))?,
            None => QueuePrefix::default(),
        };
        let table = match &self.ready {
            ReadyCheck::FromEnv => self.env(vars::TABLE),
            ReadyCheck::Table(t) => Some(t.clone()),
            ReadyCheck::Off => None,
        };
        self.validate()?;
        let consume = ConsumeConfig {
            max_concurrency: self.max_concurrency,
            long_poll: LONG_POLL_WAIT,
            visibility: self.visibility_timeout,
            max_extension: self.max_visibility_extension,
            flush_interval: self.delete_flush_interval,
            drain_timeout: self.drain_timeout,
            failure_backoff: self.retry_backoff,
            dedup_window: self.dedup_window,
            envelopes: if self.unwrap_sns_envelope {
                Envelopes::Unwrap
            } else {
                Envelopes::Keep
            },
            receive_backoff: RECEIVE_ERROR_BACKOFF,
            order: Order::Any,
        };
        let timeouts = self.sdk_timeouts.config(Duration::ZERO);
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(sdk)
                .timeout_config(timeouts.clone())
                .build(),
        );
        let records = table.map(|table| DynamoRecords {
            client: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .timeout_config(timeouts)
                    .build(),
            ),
            table,
        });
        if records.is_none() {
            tracing::warn!(
                action = "configure",
                "TASKSUB_TABLE is not set: the subscription cannot be confirmed, so on_subscribed will not \
                 be called (messages published before the subscription existed are not reloaded)"
            );
        }
        Ok(Client {
            inner: Arc::new(Inner {
                sqs,
                records,
                credentials,
                receive_timeouts: self.sdk_timeouts.config(LONG_POLL_WAIT),
                metadata,
                prefix,
                wait_limit: self.wait_limit,
                consume,
                handle_sigterm: self.handle_sigterm,
            }),
        })
    }

    fn validate(&self) -> Result<(), Error> {
        let check = |ok: bool, setting: &'static str, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::invalid_config(setting, reason))
            }
        };
        check(
            (1..=1000).contains(&self.max_concurrency),
            "max_concurrency",
            "must be 1..=1000",
        )?;
        check(
            (Duration::from_secs(1)..=SQS_MAX_VISIBILITY).contains(&self.visibility_timeout),
            "visibility_timeout",
            "must be 1 s..=12 h",
        )?;
        check(
            self.max_visibility_extension <= SQS_MAX_VISIBILITY,
            "max_visibility_extension",
            "must be at most 12 h",
        )?;
        check(
            !self.delete_flush_interval.is_zero(),
            "delete_flush_interval",
            "must be above zero",
        )?;
        check(!self.wait_limit.is_zero(), "wait_limit", "must be above zero")?;
        let t = self.sdk_timeouts;
        check(
            !t.connect.is_zero() && !t.attempt.is_zero() && t.attempt <= t.operation,
            "sdk_timeouts",
            "need 0 < connect, 0 < attempt <= operation",
        )?;
        check(self.metadata_attempts >= 1, "metadata_attempts", "must be at least 1")?;
        check(
            !self.metadata_connect_timeout.is_zero() && !self.metadata_read_timeout.is_zero(),
            "metadata_timeouts",
            "must be above zero",
        )?;
        if let Some(b) = self.retry_backoff {
            check(
                b.initial <= b.max && b.max <= SQS_MAX_VISIBILITY,
                "retry_backoff",
                "need initial <= max <= 12 h",
            )?;
        }
        if let Some(w) = self.dedup_window {
            check(!w.is_zero(), "dedup_window", "must be above zero")?;
        }
        Ok(())
    }
}

struct Inner {
    sqs: aws_sdk_sqs::Client,
    records: Option<DynamoRecords>,
    credentials: SharedCredentialsProvider,
    receive_timeouts: TimeoutConfig,
    metadata: MetadataEndpoint,
    prefix: QueuePrefix,
    wait_limit: Duration,
    consume: ConsumeConfig,
    handle_sigterm: bool,
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
    /// A builder with every default; finish with [`ClientBuilder::build`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Asks the task metadata endpoint which task this is and derives its queue name.
    pub async fn discover(&self) -> Result<TaskIdentity, Error> {
        let (task_arn, parsed) = self.inner.metadata.task_arn().await?;
        let queue_name = QueueName::for_task(&self.inner.prefix, &parsed.task_id)
            .map_err(|e| Error::invalid_config(vars::QUEUE_PREFIX, e.to_string()))?;
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
        if let Some(records) = &self.inner.records {
            let task_id = identity.task_id().as_str();
            if !wait::ready(records, task_id, deadline, shutdown, &mut rng).await? {
                return Ok(None);
            }
            confirmed = true;
        }
        Ok(Some(TaskQueue {
            identity,
            url,
            confirmed,
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
            };
            let mut report = consume::consume(sqs, Arc::new(handler), self.inner.consume.clone(), stop).await;
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
    use super::*;

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
}
