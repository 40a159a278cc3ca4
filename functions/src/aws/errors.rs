//! SDK errors → [`ErrorKind`]. Matches error codes (the modeled identity of an error), never message text.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tasksub_core::outcome::ErrorKind;

use crate::ports::PortError;

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "AWS.SimpleQueueService.RequestThrottled",
];
const NOT_FOUND: &[&str] = &[
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "NotFoundException",
    "ResourceNotFoundException",
    "ClusterNotFoundException",
];
const DELETED_RECENTLY: &[&str] = &["AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "KMSAccessDenied",
];
const INVALID: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "ValidationException",
    "InvalidSecurity",
    "SerializationException",
    // SQS: a FIFO queue with a standard dead-letter queue, and the like: never succeeds as asked
    "InvalidParameterCombination",
    "AWS.SimpleQueueService.InvalidParameterCombination",
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAddress",
];
/// CreateQueue of a name that exists with other attributes: adopted if ours, never retried as is.
const EXISTS: &[&str] = &[
    "QueueAlreadyExists",
    "QueueNameExists",
    "AWS.SimpleQueueService.QueueNameExists",
];
/// SNS quotas a retry does not lift, with what the operator is told.
const QUOTAS: &[(&str, &str)] = &[
    (
        "FilterPolicyLimitExceeded",
        "SNS quota reached: filter policies per topic (200 by default, adjustable in Service Quotas); \
         every task's subscription with a filter policy counts, so the topic cannot take another filtered \
         subscription. Raise the quota, or filter fewer topics (TASKSUB_TOPIC_SETTINGS)",
    ),
    (
        "SubscriptionLimitExceeded",
        "SNS quota reached: subscriptions per topic (12,500,000 for standard topics, 100 for FIFO topics by \
         default; adjustable in Service Quotas)",
    ),
];

/// The operator's explanation for an SNS quota error code, if it is one.
pub fn quota_of_code(code: &str) -> Option<&'static str> {
    QUOTAS.iter().find(|(c, _)| *c == code).map(|(_, what)| *what)
}

const TRANSIENT: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
];

fn kind_of_code(code: &str) -> Option<ErrorKind> {
    let table: [(&[&str], ErrorKind); 7] = [
        (THROTTLING, ErrorKind::Throttled),
        (NOT_FOUND, ErrorKind::NotFound),
        (DELETED_RECENTLY, ErrorKind::DeletedRecently),
        (ACCESS_DENIED, ErrorKind::AccessDenied),
        (INVALID, ErrorKind::Invalid),
        (EXISTS, ErrorKind::Exists),
        (TRANSIENT, ErrorKind::Transient),
    ];
    table.iter().find(|(codes, _)| codes.contains(&code)).map(|(_, k)| *k)
}

/// True when the error's cause is a credential that could not be loaded, or an endpoint that could not be
/// resolved (no region): typed causes, found by walking the source chain.
fn unconfigured(err: &(dyn std::error::Error + 'static)) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError;
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<CredentialsError>() || e.is::<ResolveEndpointError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Classifies any SDK error of any operation.
pub fn classify<E>(op: &'static str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = DisplayErrorContext(err).to_string();
    let kind = match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => ErrorKind::Transient,
        // No credentials, no region, an unresolvable endpoint: the request never left; retrying will not
        // help. Any other dispatch failure (refused, dropped, reset connections) is transient.
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) if unconfigured(err) => ErrorKind::Config,
        SdkError::DispatchFailure(_) => ErrorKind::Transient,
        SdkError::ServiceError(se) if quota_of_code(se.err().code().unwrap_or_default()).is_some() => ErrorKind::Quota,
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or_default();
            let server_error = se.raw().status().is_server_error();
            kind_of_code(code).unwrap_or(if server_error {
                ErrorKind::Transient
            } else {
                ErrorKind::Other
            })
        }
        _ => ErrorKind::Other,
    };
    let message = match (kind, err) {
        (ErrorKind::Quota, SdkError::ServiceError(se)) => {
            let what = quota_of_code(se.err().code().unwrap_or_default()).unwrap_or_default();
            format!("{what}: {message}")
        }
        (ErrorKind::Config, _) => {
            format!("the AWS client is not configured (no credentials, no region, or an unusable endpoint): {message}")
        }
        _ => message,
    };
    PortError::new(kind, op, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let rows = [
            ("ThrottlingException", ErrorKind::Throttled),
            ("AWS.SimpleQueueService.NonExistentQueue", ErrorKind::NotFound),
            ("QueueDoesNotExist", ErrorKind::NotFound),
            ("NotFound", ErrorKind::NotFound),
            ("ClusterNotFoundException", ErrorKind::NotFound),
            (
                "AWS.SimpleQueueService.QueueDeletedRecently",
                ErrorKind::DeletedRecently,
            ),
            ("AccessDeniedException", ErrorKind::AccessDenied),
            ("AuthorizationError", ErrorKind::AccessDenied),
            ("InvalidParameter", ErrorKind::Invalid),
            ("QueueAlreadyExists", ErrorKind::Exists),
            ("QueueNameExists", ErrorKind::Exists),
            ("InvalidParameterCombination", ErrorKind::Invalid),
            ("AWS.SimpleQueueService.InvalidParameterCombination", ErrorKind::Invalid),
            ("InternalError", ErrorKind::Transient),
            ("ServiceUnavailable", ErrorKind::Transient),
        ];
        for (code, kind) in rows {
            assert_eq!(kind_of_code(code), Some(kind), "{code}");
        }
        assert_eq!(kind_of_code("SomethingNew"), None);
        assert!(quota_of_code("FilterPolicyLimitExceeded").unwrap().contains("200"));
        assert!(quota_of_code("SubscriptionLimitExceeded")
            .unwrap()
            .contains("subscriptions per topic"));
        assert_eq!(quota_of_code("ThrottlingException"), None);
    }

    /// A Subscribe refused for a quota is a permanent error whose message names the quota (and keeps
    /// the service's own words).
    #[test]
    fn quota_errors_are_permanent_and_name_the_quota() {
        use aws_sdk_sns::operation::subscribe::SubscribeError;
        use aws_sdk_sns::types::error::{FilterPolicyLimitExceededException, SubscriptionLimitExceededException};
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let meta = |code: &str| ErrorMetadata::builder().code(code).message("limit").build();
        let raw = || HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::empty());
        let filter = SubscribeError::FilterPolicyLimitExceededException(
            FilterPolicyLimitExceededException::builder()
                .message("limit")
                .meta(meta("FilterPolicyLimitExceeded"))
                .build(),
        );
        let e = classify("Subscribe", &SdkError::service_error(filter, raw()));
        assert_eq!(e.kind, ErrorKind::Quota);
        assert!(!e.kind.is_transient());
        assert!(
            e.message.contains("filter policies per topic (200 by default"),
            "{}",
            e.message
        );
        let subs = SubscribeError::SubscriptionLimitExceededException(
            SubscriptionLimitExceededException::builder()
                .message("limit")
                .meta(meta("SubscriptionLimitExceeded"))
                .build(),
        );
        let e = classify("Subscribe", &SdkError::service_error(subs, raw()));
        assert_eq!(e.kind, ErrorKind::Quota);
        assert!(e.message.contains("subscriptions per topic"), "{}", e.message);
    }
}
