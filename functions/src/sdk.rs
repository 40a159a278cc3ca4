//! The AWS SDK configuration every binary loads (the two event functions, the sweeper, the CLI): the
//! standard resolution (environment, profile, container and instance credentials; `AWS_ENDPOINT_URL`
//! for an emulator) plus bounded time on every call, so an endpoint that accepts a connection and never
//! answers fails in seconds instead of hanging until Lambda's own timeout.
//!
//! | timeout | value | what it bounds |
//! |---|---|---|
//! | [`CONNECT_TIMEOUT`] | 3 s | opening the TCP/TLS connection |
//! | [`ATTEMPT_TIMEOUT`] | 10 s | one HTTP attempt (the SDK retries a timed-out attempt) |
//! | [`OPERATION_TIMEOUT`] | 25 s | one operation with all its retries; under the functions' 30 s Lambda timeout |
//!
//! None of our calls long-polls (the client crate, which does, has its own settings), so 10 s per
//! attempt is generous: AWS answers control-plane calls in tens of milliseconds.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Most time to open a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most time for one attempt of a call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most time for a call, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

/// The timeouts above.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK configuration cannot work: no region was found (`AWS_REGION`, a profile's `region`). Missing
/// credentials show up at the first call instead (as an [`ErrorKind::Config`] error), because the
/// default chain only looks when asked.
///
/// [`ErrorKind::Config`]: tasksub_core::outcome::ErrorKind::Config
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no AWS region is configured: set AWS_REGION (or a region in the AWS profile)")]
pub struct NoRegion;

/// Checks what can be checked before the first call: a region.
pub fn check(sdk: &SdkConfig) -> Result<(), NoRegion> {
    sdk.region().map(drop).ok_or(NoRegion)
}

/// The SDK configuration from the environment, with [`timeouts`].
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each bound is a promise of its own: an endpoint that accepts a connection and never answers ends
    /// an attempt after 10 s and the whole call (retries included) after 25 s, an unreachable one after 3 s.
    #[test]
    fn every_call_is_bounded_three_ways() {
        let t = timeouts();
        assert_eq!(t.connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(25)));
        assert!(
            OPERATION_TIMEOUT < Duration::from_secs(30),
            "under the functions' Lambda timeout"
        );
    }
}
