//! The ports on the AWS SDK. Clients are built once from one `SdkConfig`; the emulator is reached only
//! through `AWS_ENDPOINT_URL`, never through an emulator-specific path.

mod errors;
pub mod item;
mod queues;
mod records;
mod subscriptions;
mod tasks;

pub use errors::classify;
pub use tasks::AwsTasks;

/// SQS, SNS and DynamoDB clients plus the table name.
#[derive(Debug, Clone)]
pub struct AwsPorts {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) sns: aws_sdk_sns::Client,
    pub(crate) ddb: aws_sdk_dynamodb::Client,
    pub(crate) table: String,
}

impl AwsPorts {
    /// Builds the clients.
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            table: table.to_owned(),
        }
    }
}
