//! `tasksub init-local`: the topic and the table, for the emulator and first-time users.

use std::process::ExitCode;

use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use tasksub_core::record::attr;

/// Arguments of `init-local`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Topic name to create (CreateTopic is idempotent): 1 to 256 characters of [A-Za-z0-9_-].
    #[arg(long, default_value = "tasksub-local", value_parser = topic_name)]
    topic: String,
    /// Table name to create (kept if it exists): what TASKSUB_TABLE accepts, 3 to 255 characters of
    /// [A-Za-z0-9_.-].
    #[arg(long, default_value = "tasksub-records", value_parser = table_name)]
    table: String,
}

/// The table name, validated as the settings validate `TASKSUB_TABLE` (a table the later commands would
/// refuse is never created).
fn table_name(s: &str) -> Result<String, String> {
    tasksub_core::settings::table_name(s.to_owned()).map_err(|e| e.to_string())
}

/// The topic name, validated as the settings validate a topic ARN's name.
fn topic_name(s: &str) -> Result<String, String> {
    let arn = format!("arn:aws:sns:us-east-1:123456789012:{s}");
    tasksub_core::naming::TopicArn::parse(&arn)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string().replace(&arn, s))
}

/// Creates both and prints the settings to export.
pub async fn run(args: Args, sdk: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(&args.topic)
        .send()
        .await
        .context("CreateTopic")?;
    let topic_arn = topic.topic_arn().context("CreateTopic returned no ARN")?.to_owned();
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let exists = ddb.describe_table().table_name(&args.table).send().await.is_ok();
    if !exists {
        create_table(&ddb, &args.table).await?;
    }
    eprintln!(
        "topic {topic_arn} ready; table {} {}",
        args.table,
        if exists { "already existed" } else { "created" }
    );
    println!("export TASKSUB_TOPIC_ARN={topic_arn}");
    // the topic was made in the caller's account: the deployment's own (queues live there)
    if let Ok(topic) = tasksub_core::naming::TopicArn::parse(&topic_arn) {
        println!("export TASKSUB_ACCOUNT_ID={}", topic.account);
    }
    println!("export TASKSUB_TABLE={}", args.table);
    Ok(ExitCode::SUCCESS)
}

/// The records table: keyed on the task ID, tombstones expiring on `expiresAt`.
async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr::TASK_ID)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(attr::TASK_ID)
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await
        .context("CreateTable")?;
    ddb.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(attr::EXPIRES_AT)
                .enabled(true)
                .build()?,
        )
        .send()
        .await
        .context("UpdateTimeToLive")?;
    Ok(())
}
