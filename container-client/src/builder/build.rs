//! [`ClientBuilder::build`]: resolve every setting (builder, then environment, then default), validate
//! them, and build the SDK clients.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::config::SharedCredentialsProvider;
use tasksub_core::naming::QueuePrefix;
use tasksub_core::settings::vars;

use super::{
    ClientBuilder, ReadyCheck, DEFAULT_BUFFERED_PER_HANDLER, MAX_BUFFERED_LIMIT, QUEUE_FIFO_VAR, SQS_MAX_VISIBILITY,
};
use crate::aws::DynamoRecords;
use crate::client::{Client, Inner, QueueKind};
use crate::consume::{ConsumeConfig, Order, LONG_POLL_WAIT, RECEIVE_ERROR_BACKOFF};
use crate::message::Envelopes;
use crate::metadata::{MetadataEndpoint, METADATA_URI_VAR};
use crate::Error;

impl ClientBuilder {
    fn env(&self, name: &str) -> Option<String> {
        (self.env)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Reads the environment once, validates everything and builds the SDK clients.
    ///
    /// `sdk` must have a region and a credentials provider (what `aws_config::load_defaults` gives):
    /// without either this is a configuration error ([`Error::is_config`]), never a retried failure.
    /// Whether the provider actually finds credentials is checked once by [`Client::connect`].
    pub fn build(self, sdk: &SdkConfig) -> Result<Client, Error> {
        let credentials = check_sdk(sdk)?;
        let metadata = self.metadata()?;
        let prefix = self.prefix()?;
        let kind = self.queue_kind()?;
        let table = match &self.ready {
            ReadyCheck::FromEnv => self.env(vars::TABLE),
            ReadyCheck::Table(t) => Some(t.clone()),
            ReadyCheck::Off => None,
        };
        self.validate_consume()?;
        self.validate_calls()?;
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
        Ok(Client::new(Inner {
            sqs,
            records,
            credentials,
            receive_timeouts: self.sdk_timeouts.config(LONG_POLL_WAIT),
            metadata,
            prefix,
            kind,
            wait_limit: self.wait_limit,
            consume: self.consume_config(kind),
            handle_sigterm: self.handle_sigterm,
        }))
    }

    fn metadata(&self) -> Result<MetadataEndpoint, Error> {
        let Some(base) = self.metadata_uri.clone().or_else(|| self.env(METADATA_URI_VAR)) else {
            return Err(Error::missing_env(METADATA_URI_VAR));
        };
        let metadata = MetadataEndpoint {
            base,
            connect_timeout: self.metadata_connect_timeout,
            read_timeout: self.metadata_read_timeout,
            attempts: self.metadata_attempts,
        };
        metadata.validate()?;
        Ok(metadata)
    }

    fn prefix(&self) -> Result<QueuePrefix, Error> {
        match self.queue_prefix.clone().or_else(|| self.env(vars::QUEUE_PREFIX)) {
            Some(p) => QueuePrefix::new(&p).map_err(|e| Error::invalid_config(vars::QUEUE_PREFIX, e.to_string())),
            None => Ok(QueuePrefix::default()),
        }
    }

    /// Standard or FIFO: the builder's setting, else `TASKSUB_QUEUE_FIFO` (`true`/`false`, also
    /// `1`/`0`, `yes`/`no`, any case, like the controller's boolean settings), else standard.
    fn queue_kind(&self) -> Result<QueueKind, Error> {
        let fifo = match (self.queue_fifo, self.env(QUEUE_FIFO_VAR)) {
            (Some(fifo), _) => fifo,
            (None, None) => false,
            (None, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(Error::invalid_config(
                        QUEUE_FIFO_VAR,
                        format!("{v:?} is not true or false"),
                    ))
                }
            },
        };
        Ok(if fifo { QueueKind::Fifo } else { QueueKind::Standard })
    }

    /// The consume loop's settings for a standard queue, validated (feature `testing`: the loop on an
    /// in-memory queue).
    #[cfg(feature = "testing")]
    pub(crate) fn standard_consume_config(&self) -> Result<ConsumeConfig, Error> {
        self.validate_consume()?;
        Ok(self.consume_config(QueueKind::Standard))
    }

    fn consume_config(&self, kind: QueueKind) -> ConsumeConfig {
        ConsumeConfig {
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
            order: match kind {
                QueueKind::Standard => Order::Any,
                QueueKind::Fifo => Order::PerGroup,
            },
            max_buffered: self.buffered(),
            max_receives: self.max_receives_in_flight,
            filters: Default::default(),
        }
    }

    /// [`ClientBuilder::max_buffered`], or its default for the concurrency.
    fn buffered(&self) -> usize {
        self.max_buffered
            .unwrap_or(DEFAULT_BUFFERED_PER_HANDLER.saturating_mul(self.max_concurrency))
            .min(MAX_BUFFERED_LIMIT)
    }

    /// The settings of the consume loop.
    fn validate_consume(&self) -> Result<(), Error> {
        check(
            (1..=1000).contains(&self.max_concurrency),
            "max_concurrency",
            "must be 1..=1000",
        )?;
        check(
            self.max_buffered.is_none_or(|n| n <= MAX_BUFFERED_LIMIT),
            "max_buffered",
            "must be at most 100000",
        )?;
        check(
            (1..=1000).contains(&self.max_receives_in_flight),
            "max_receives_in_flight",
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

    /// The limits of the calls: the wait, the SDK timeouts, the metadata request.
    fn validate_calls(&self) -> Result<(), Error> {
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
        )
    }
}

fn check(ok: bool, setting: &'static str, reason: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_config(setting, reason))
    }
}

/// A region and a credentials provider, or a configuration error.
fn check_sdk(sdk: &SdkConfig) -> Result<SharedCredentialsProvider, Error> {
    if sdk.region().is_none() {
        return Err(Error::invalid_config(
            "AWS_REGION",
            "the SdkConfig has no region: set AWS_REGION (ECS sets it in every task) or give the \
             SdkConfig one",
        ));
    }
    sdk.credentials_provider().ok_or_else(|| {
        Error::invalid_config(
            "credentials",
            "the SdkConfig has no credentials provider: load it with aws_config::load_defaults (the \
             task role in ECS) or give it one",
        )
    })
}
