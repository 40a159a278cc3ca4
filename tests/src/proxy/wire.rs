//! Error responses in each protocol's wire shape, so the SDK parses the code as it would from AWS:
//! awsJson1.0 `{"__type": "<namespace>#<Shape>", "message": ...}` (SQS adds `x-amzn-query-error:
//! <query code>;<Sender|Receiver>`, which the SDK prefers as the code), and the query protocol's XML
//! `ErrorResponse` for SNS.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;

use super::call::Service;
use super::Refusal;

/// One AWS error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsError {
    /// HTTP status.
    pub status: u16,
    /// The error code the SDK must report (for SQS: the query-compatible code).
    pub code: &'static str,
    /// The Smithy shape name (`__type` of the JSON protocols).
    pub shape: &'static str,
    /// `Sender` (client fault) or `Receiver` (server fault).
    pub fault: &'static str,
    /// The message.
    pub message: &'static str,
}

/// The throttling error of a service.
pub fn throttling(service: Service) -> AwsError {
    let (code, shape) = match service {
        Service::Sqs => ("RequestThrottled", "RequestThrottled"),
        Service::Sns => ("Throttling", "ThrottledException"),
        Service::DynamoDb | Service::Unknown => ("ThrottlingException", "ThrottlingException"),
    };
    AwsError {
        status: 400,
        code,
        shape,
        fault: "Sender",
        message: "Rate exceeded",
    }
}

/// A 500 or 503 of a service.
pub fn server_error(service: Service, status: u16) -> AwsError {
    let (code, message) = match (service, status) {
        (_, 503) => ("ServiceUnavailable", "Service is unavailable. Try again later."),
        (Service::DynamoDb, _) => ("InternalServerError", "Internal server error"),
        _ => ("InternalError", "We encountered an internal error. Please try again."),
    };
    AwsError {
        status,
        code,
        shape: code,
        fault: "Receiver",
        message,
    }
}

/// SQS QueueDeletedRecently.
pub const QUEUE_DELETED_RECENTLY: AwsError = AwsError {
    status: 400,
    code: "AWS.SimpleQueueService.QueueDeletedRecently",
    shape: "QueueDeletedRecently",
    fault: "Sender",
    message: "You must wait 60 seconds after deleting a queue before you can create another queue \
              with the same name.",
};

/// SQS QueueAlreadyExists (moto answers it itself; the proxy never refuses with it).
pub const QUEUE_ALREADY_EXISTS: AwsError = AwsError {
    status: 400,
    code: "QueueAlreadyExists",
    shape: "QueueNameExists",
    fault: "Sender",
    message: "A queue already exists with the same name and a different value for attribute(s)",
};

/// SNS InvalidParameter for a repeated Subscribe with other attributes.
pub const SUBSCRIPTION_EXISTS: AwsError = AwsError {
    status: 400,
    code: "InvalidParameter",
    shape: "InvalidParameterException",
    fault: "Sender",
    message: "Invalid parameter: Attributes Reason: Subscription already exists with different attributes",
};

/// SNS AuthorizationError: the topic's policy does not admit the caller (its owner revoked us).
pub const AUTHORIZATION_ERROR: AwsError = AwsError {
    status: 403,
    code: "AuthorizationError",
    shape: "AuthorizationErrorException",
    fault: "Sender",
    message: "User is not authorized to perform: SNS:Subscribe on resource",
};

/// SNS FilterPolicyLimitExceeded: the topic's 200 filter policies are taken.
pub const FILTER_POLICY_LIMIT: AwsError = AwsError {
    status: 403,
    code: "FilterPolicyLimitExceeded",
    shape: "FilterPolicyLimitExceededException",
    fault: "Sender",
    message: "Filter policy limit exceeded",
};

/// SQS InvalidParameterCombination (a FIFO queue with a standard dead-letter queue).
pub const INVALID_PARAMETER_COMBINATION: AwsError = AwsError {
    status: 400,
    code: "InvalidParameterCombination",
    shape: "InvalidParameterCombination",
    fault: "Sender",
    message: "Fifo queues cannot use non fifo dead letter queues",
};

/// The error for a refusal of the emulated AWS rules.
pub fn refusal(r: Refusal) -> AwsError {
    match r {
        Refusal::QueueDeletedRecently => QUEUE_DELETED_RECENTLY,
        Refusal::QueueAlreadyExists => QUEUE_ALREADY_EXISTS,
        Refusal::SubscriptionAttributesDiffer => SUBSCRIPTION_EXISTS,
    }
}

/// The HTTP response for `e` from `service`.
pub fn render(service: Service, e: &AwsError, request_id: &str) -> Response<Full<Bytes>> {
    let builder = Response::builder()
        .status(e.status)
        .header("x-amzn-requestid", request_id);
    let (builder, body) = match service {
        Service::Sns => (
            builder.header("content-type", "text/xml"),
            format!(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{}</Type>\
                 <Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId>\
                 </ErrorResponse>",
                e.fault, e.code, e.message
            ),
        ),
        Service::Sqs => (
            builder
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-query-error", format!("{};{}", e.code, e.fault)),
            serde_json::json!({"__type": format!("com.amazonaws.sqs#{}", e.shape), "message": e.message}).to_string(),
        ),
        Service::DynamoDb | Service::Unknown => (
            builder.header("content-type", "application/x-amz-json-1.0"),
            serde_json::json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{}", e.code),
                "message": e.message,
            })
            .to_string(),
        ),
    };
    builder.body(Full::new(Bytes::from(body))).expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn error_bodies_have_each_protocols_shape() {
        let body = |r: Response<Full<Bytes>>| {
            let (parts, body) = r.into_parts();
            let bytes = collect_now(body);
            (parts, String::from_utf8(bytes.to_vec()).unwrap())
        };
        let (parts, text) = body(render(Service::Sqs, &throttling(Service::Sqs), "r1"));
        assert_eq!(parts.status, 400);
        assert_eq!(parts.headers["x-amzn-query-error"], "RequestThrottled;Sender");
        assert_eq!(parts.headers["content-type"], "application/x-amz-json-1.0");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["__type"], "com.amazonaws.sqs#RequestThrottled");
        let (parts, text) = body(render(Service::Sqs, &QUEUE_DELETED_RECENTLY, "r2"));
        assert_eq!(
            parts.headers["x-amzn-query-error"],
            "AWS.SimpleQueueService.QueueDeletedRecently;Sender"
        );
        assert!(text.contains("com.amazonaws.sqs#QueueDeletedRecently"), "{text}");
        let (parts, text) = body(render(Service::DynamoDb, &server_error(Service::DynamoDb, 500), "r"));
        assert_eq!(parts.status, 500);
        assert!(text.contains("#InternalServerError"), "{text}");
        let (parts, text) = body(render(Service::Sns, &throttling(Service::Sns), "r3"));
        assert_eq!(parts.status, 400);
        assert!(text.starts_with("<ErrorResponse"), "{text}");
        assert!(text.contains("<Code>Throttling</Code>") && text.contains("<Type>Sender</Type>"));
        assert!(text.contains("<RequestId>r3</RequestId>"));
    }

    /// A `Full` body is ready at once: poll it to the end without a runtime.
    fn collect_now(body: Full<Bytes>) -> Bytes {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { body.collect().await.unwrap().to_bytes() })
    }
}
