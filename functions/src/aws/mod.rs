//! The ports on the AWS SDK. Clients are built once from one `SdkConfig`; the emulator is reached only
//! through `AWS_ENDPOINT_URL`, never through an emulator-specific path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

mod errors;
pub mod item;
mod queues;
mod records;
mod subscriptions;
mod tasks;

pub use errors::classify;
pub use tasks::AwsTasks;

/// SQS, SNS and DynamoDB clients plus the table name. SNS calls go to the region of the topic (or
/// subscription) they name: one client per region, made on first use from the same configuration.
#[derive(Debug, Clone)]
pub struct AwsPorts {
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) sns: aws_sdk_sns::Client,
    pub(crate) ddb: aws_sdk_dynamodb::Client,
    pub(crate) table: String,
    sdk: aws_config::SdkConfig,
    sns_by_region: Arc<Mutex<BTreeMap<String, aws_sdk_sns::Client>>>,
}

impl AwsPorts {
    /// Builds the clients in the SDK's region (the CLI's record commands, which need only the table).
    pub fn new(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            table: table.to_owned(),
            sdk: sdk.clone(),
            sns_by_region: Arc::default(),
        }
    }

    /// Builds the clients of a deployment: task queues and the table live in the settings' home region
    /// (`TASKSUB_REGION`), whatever region the SDK was configured with, so the queue ARN every record,
    /// policy and subscription names is the queue's real ARN.
    pub fn for_settings(sdk: &aws_config::SdkConfig, settings: &tasksub_core::settings::Settings) -> Self {
        let home = aws_config::Region::new(settings.home.region.clone());
        let sdk = sdk.to_builder().region(home).build();
        Self::new(&sdk, &settings.table)
    }

    /// The SNS client for the region of `arn` (a topic or subscription ARN): the home client when the
    /// ARN is in the home region or names none.
    pub fn sns_for(&self, arn: &str) -> aws_sdk_sns::Client {
        let home = self.sdk.region().map(|r| r.as_ref());
        let Some(region) = tasksub_core::naming::region_of_arn(arn).filter(|r| Some(*r) != home) else {
            return self.sns.clone();
        };
        let mut clients = self.sns_by_region.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let config = aws_sdk_sns::config::Builder::from(&self.sdk)
                    .region(aws_config::Region::new(region.to_owned()))
                    .build();
                aws_sdk_sns::Client::from_conf(config)
            })
            .clone()
    }
}
