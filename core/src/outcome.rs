//! How an error during a step is treated. The adapters map SDK errors to an [`ErrorKind`]; this table
//! decides whether the step counts as done, the invocation should be retried, or it failed for good.

use crate::decide::Step;

/// What kind of failure an AWS call met, independent of the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Throttling / rate exceeded.
    Throttled,
    /// 5xx, timeouts, dropped connections, dispatch failures.
    Transient,
    /// The resource does not exist (queue, subscription).
    NotFound,
    /// A conditional write found another state.
    Conflict,
    /// SQS refuses to re-create a name deleted less than 60 s ago.
    DeletedRecently,
    /// The caller lacks permission.
    AccessDenied,
    /// The request is invalid (bad attribute, bad ARN, an impossible combination, a changed-attribute
    /// re-subscribe).
    Invalid,
    /// CreateQueue of a name that exists with other attributes (`QueueAlreadyExists`): the queue is
    /// adopted if its tags say it is ours, never re-created.
    Exists,
    /// The client is not configured: no credentials, no region, or an unusable endpoint. Permanent
    /// until someone fixes the configuration.
    Config,
    /// An AWS quota that a retry will not lift (SNS FilterPolicyLimitExceeded: 200 filter policies per
    /// topic by default; SubscriptionLimitExceeded): permanent; the message names the quota.
    Quota,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Transient => "transient",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::DeletedRecently => "deleted-recently",
            Self::AccessDenied => "access-denied",
            Self::Invalid => "invalid",
            Self::Exists => "exists",
            Self::Config => "config",
            Self::Quota => "quota",
            Self::Other => "other",
        }
    }
}

impl ErrorKind {
    /// True when the same call may succeed later: the one classification every caller uses (executor,
    /// sweeper, CLI exit codes).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Transient | Self::DeletedRecently | Self::Other
        )
    }
}

/// What the executor does with a failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The step's goal already holds (e.g. deleting something already gone).
    Done,
    /// Another invocation moved the record: read it again and decide again.
    Redecide,
    /// Fail the invocation so Lambda retries it.
    Retry,
    /// A permanent failure: report it; retrying will not help.
    Fail,
}

/// The treatment table.
pub fn disposition(step: Step, kind: ErrorKind) -> Disposition {
    use Disposition::*;
    use ErrorKind as K;
    use Step as S;
    match (kind, step) {
        (K::NotFound, S::Unsubscribe | S::UnsubscribeRetired | S::DeleteQueue | S::LookupQueueUrl) => Done,
        (K::Conflict, S::Claim | S::RecordIntent | S::MarkReady | S::MarkDraining | S::Tombstone(_)) => Redecide,
        (k, _) if k.is_transient() => Retry,
        _ => Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::State;

    #[test]
    fn treatment_table() {
        use Disposition::*;
        use ErrorKind as K;
        use Step as S;
        let rows = [
            (S::DeleteQueue, K::NotFound, Done),
            (S::Unsubscribe, K::NotFound, Done),
            (S::LookupQueueUrl, K::NotFound, Done),
            (S::Subscribe, K::NotFound, Fail),
            (S::CreateQueue, K::NotFound, Fail),
            (S::Claim, K::Conflict, Redecide),
            (S::MarkReady, K::Conflict, Redecide),
            (S::MarkDraining, K::Conflict, Redecide),
            (S::Tombstone(State::Gone), K::Conflict, Redecide),
            (S::CreateQueue, K::DeletedRecently, Retry),
            (S::Subscribe, K::Throttled, Retry),
            (S::Claim, K::Transient, Retry),
            (S::DeleteQueue, K::Other, Retry),
            (S::CreateQueue, K::Config, Fail),
            (S::Claim, K::Config, Fail),
            (S::CreateQueue, K::AccessDenied, Fail),
            (S::Subscribe, K::Invalid, Fail),
            (S::CreateQueue, K::Conflict, Fail),
            (S::Subscribe, K::Quota, Fail),
            (S::UnsubscribeRetired, K::NotFound, Done),
            (S::RecordIntent, K::Conflict, Redecide),
            (S::RecordIntent, K::Throttled, Retry),
            (S::CreateQueue, K::Exists, Fail),
            (S::CreateQueue, K::Invalid, Fail),
        ];
        for (step, kind, want) in rows {
            assert_eq!(disposition(step, kind), want, "{step:?} {kind:?}");
        }
    }

    /// The kind names are a contract (the `error_kind` of every log line and of the Lambda response),
    /// and which kinds a retry may cure decides between a retry and the on-failure destination.
    #[test]
    fn kind_names_and_transience_are_pinned() {
        use ErrorKind::*;
        let all = [
            Throttled,
            Transient,
            NotFound,
            Conflict,
            DeletedRecently,
            AccessDenied,
            Invalid,
            Config,
            Quota,
            Exists,
            Other,
        ];
        assert_eq!(
            all.map(ErrorKind::as_str),
            [
                "throttled",
                "transient",
                "not-found",
                "conflict",
                "deleted-recently",
                "access-denied",
                "invalid",
                "config",
                "quota",
                "exists",
                "other"
            ]
        );
        assert_eq!(
            all.map(ErrorKind::is_transient),
            [true, true, false, false, true, false, false, false, false, false, true]
        );
    }
}
