//! [`ClientBuilder`]: every setting, its default and its environment variable, validated once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::timeout::TimeoutConfig;

use crate::backoff::Backoff;
use crate::metadata::{METADATA_ATTEMPTS, METADATA_CONNECT_TIMEOUT, METADATA_READ_TIMEOUT};
use crate::wait::QUEUE_WAIT_LIMIT;
#[cfg(doc)]
use crate::{Client, Error, Handler, LONG_POLL_WAIT};

mod build;

/// The environment variable saying the task queue is a FIFO queue (`<prefix><task id>.fifo`), fed
/// by SNS FIFO topics: `true` or `false` (default).
pub const QUEUE_FIFO_VAR: &str = "TASKSUB_QUEUE_FIFO";

/// Default number of handlers running at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;
/// Default of [`ClientBuilder::max_buffered`], per handler: 50 messages each, enough to keep handlers
/// of 1 ms busy when SQS is 50 ms away.
pub const DEFAULT_BUFFERED_PER_HANDLER: usize = 50;
/// Most messages [`ClientBuilder::max_buffered`] accepts.
pub const MAX_BUFFERED_LIMIT: usize = 100_000;
/// Default of [`ClientBuilder::max_receives_in_flight`].
pub const DEFAULT_MAX_RECEIVES_IN_FLIGHT: usize = 64;
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
    queue_fifo: Option<bool>,
    ready: ReadyCheck,
    wait_limit: Duration,
    max_concurrency: usize,
    max_buffered: Option<usize>,
    max_receives_in_flight: usize,
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
            .field("queue_fifo", &self.queue_fifo)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_buffered", &self.max_buffered)
            .field("max_receives_in_flight", &self.max_receives_in_flight)
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
            queue_fifo: None,
            ready: ReadyCheck::FromEnv,
            wait_limit: QUEUE_WAIT_LIMIT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_buffered: None,
            max_receives_in_flight: DEFAULT_MAX_RECEIVES_IN_FLIGHT,
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

    /// Handlers running at once (default [`DEFAULT_MAX_CONCURRENCY`]).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Most messages held beyond one per handler: received ahead, waiting for a free handler, or
    /// asked for by a receive in flight (default [`DEFAULT_BUFFERED_PER_HANDLER`] × `max_concurrency`;
    /// at most [`MAX_BUFFERED_LIMIT`]). This bounds memory: at most `max_concurrency + max_buffered`
    /// messages are held at once.
    ///
    /// The client holds fewer when fewer would be handled before their first heartbeat (two thirds of
    /// the visibility timeout after their receipt, at the measured handler time), none beyond the
    /// handlers until it has measured a handler, and none on a FIFO queue. `0` holds no more messages
    /// than there are free handlers.
    pub fn max_buffered(mut self, n: usize) -> Self {
        self.max_buffered = Some(n);
        self
    }

    /// Most ReceiveMessage calls in flight at once (default [`DEFAULT_MAX_RECEIVES_IN_FLIGHT`]). While
    /// the queue is deep the client keeps as many in flight as keep every handler busy (handlers ÷
    /// handler time × round trip ÷ 10, plus one); while it is idle, exactly one long poll.
    ///
    /// `max_receives_in_flight(1)` with `max_buffered(0)` is the client's earlier policy: one receive
    /// at a time, for no more messages than free handlers.
    pub fn max_receives_in_flight(mut self, n: usize) -> Self {
        self.max_receives_in_flight = n;
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

    /// The task queue is a FIFO queue, `<prefix><task id>.fifo`, instead of reading `TASKSUB_QUEUE_FIFO`
    /// (default false). Set it when the deployment's topics are SNS FIFO topics (the controller then
    /// gives each task a FIFO queue). Messages of one group (`MessageGroupId`) are then handled one at
    /// a time, in the order SQS delivered them; different groups still run concurrently.
    pub fn queue_fifo(mut self, fifo: bool) -> Self {
        self.queue_fifo = Some(fifo);
        self
    }
}
