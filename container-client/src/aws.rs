//! The ports on the AWS SDK (SQS and DynamoDB). Conversions from SDK types live here and only here.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue as DynamoValue;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};
use tasksub_core::record::{attr, ClientFilter, State};

use crate::client::QueueKind;
use crate::message::{Attribute, AttributeValue, Received};
use crate::port::{EntryFailure, QueueApi, QueueLocator, RecordReader};
use crate::BoxError;

/// SQS takes whole seconds; round up so a timeout is never shorter than asked.
fn whole_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// The task queue on SQS.
#[derive(Debug, Clone)]
pub(crate) struct SqsQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    /// The client's timeouts plus the long poll's wait.
    pub receive_timeouts: aws_smithy_types::timeout::TimeoutConfig,
    /// FIFO queues: `MessageGroupId` is asked for by name as well.
    pub kind: QueueKind,
}

fn attribute(value: aws_sdk_sqs::types::MessageAttributeValue) -> Attribute {
    let data_type = value.data_type;
    let value = match (value.string_value, value.binary_value) {
        (Some(s), _) => AttributeValue::String(s),
        (None, Some(b)) => AttributeValue::Binary(b.into_inner()),
        (None, None) => AttributeValue::String(String::new()),
    };
    Attribute { data_type, value }
}

fn received(m: aws_sdk_sqs::types::Message) -> Option<Received> {
    Some(Received {
        message_id: m.message_id?,
        receipt: m.receipt_handle?,
        body: m.body.unwrap_or_default(),
        attributes: m
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, attribute(v)))
            .collect(),
        system: m
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn failures(failed: Vec<aws_sdk_sqs::types::BatchResultErrorEntry>) -> Vec<EntryFailure> {
    failed
        .into_iter()
        .filter_map(|f| {
            Some(EntryFailure {
                index: f.id.parse().ok()?,
                code: f.code,
            })
        })
        .collect()
}

impl QueueApi for SqsQueue {
    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<Received>, BoxError> {
        let mut request = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(whole_seconds(wait).min(20))
            .visibility_timeout(whole_seconds(visibility))
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All);
        if self.kind == QueueKind::Fifo {
            // The group decides the order the client keeps; never rely on `All` alone for it.
            request = request
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .message_system_attribute_names(MessageSystemAttributeName::SequenceNumber);
        }
        let out = request
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(self.receive_timeouts.clone()))
            .send()
            .await?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(received)
            .collect())
    }

    async fn delete_batch(&self, receipts: &[String]) -> Result<Vec<EntryFailure>, BoxError> {
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await?;
        Ok(failures(out.failed))
    }

    async fn change_visibility_batch(&self, entries: &[(String, Duration)]) -> Result<Vec<EntryFailure>, BoxError> {
        let entries = entries
            .iter()
            .enumerate()
            .map(|(i, (r, d))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(whole_seconds(*d))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await?;
        Ok(failures(out.failed))
    }
}

/// GetQueueUrl on SQS.
#[derive(Debug, Clone)]
pub(crate) struct SqsLocator {
    pub client: aws_sdk_sqs::Client,
}

impl QueueLocator for SqsLocator {
    async fn queue_url(&self, name: &str) -> Result<Option<String>, BoxError> {
        match self.client.get_queue_url().queue_name(name).send().await {
            Ok(out) => Ok(out.queue_url),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The controller's record table on DynamoDB.
#[derive(Debug, Clone)]
pub(crate) struct DynamoRecords {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl RecordReader for DynamoRecords {
    async fn state(&self, task_id: &str) -> Result<Option<State>, BoxError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::TASK_ID, DynamoValue::S(task_id.to_owned()))
            .consistent_read(true)
            // `state` is a DynamoDB reserved word.
            .projection_expression("#state")
            .expression_attribute_names("#state", attr::STATE)
            .send()
            .await?;
        let Some(item) = out.item else { return Ok(None) };
        match item.get(attr::STATE) {
            None => Ok(None),
            Some(DynamoValue::S(s)) => State::parse(s)
                .map(Some)
                .ok_or_else(|| format!("record has an unknown state {s:?}").into()),
            Some(_) => Err("record state is not a string".into()),
        }
    }

    async fn client_filters(&self, task_id: &str) -> Result<BTreeMap<String, ClientFilter>, BoxError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::TASK_ID, DynamoValue::S(task_id.to_owned()))
            .projection_expression(attr::CLIENT_FILTERS)
            .send()
            .await?;
        match out.item.as_ref().and_then(|i| i.get(attr::CLIENT_FILTERS)) {
            None => Ok(BTreeMap::new()),
            Some(DynamoValue::S(json)) => Ok(serde_json::from_str(json)?),
            Some(_) => Err("record clientFilters is not a string".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds(Duration::from_millis(30_001)), 31);
    }
}
