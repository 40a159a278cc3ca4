//! What an event function is invoked with: a batch from its buffer queue, or one EventBridge event.
//!
//! ```text
//! EventBridge rule ──trimmed event──▶ buffer queue ──event source mapping (MaximumConcurrency)──▶ function
//!                                       │ a failed record comes back after the visibility timeout;
//!                                       └ after maxReceiveCount the queue's redrive moves it to EventDlq
//! ```
//!
//! The deployed functions receive SQS batches ("Using Lambda with Amazon SQS", AWS Lambda Developer
//! Guide): each record's `body` is the trimmed EventBridge event the rule's input transformer made. The
//! records of a batch are handled one after the other, so the mapping's `MaximumConcurrency` is also the
//! number of events in flight, which is what keeps Subscribe/Unsubscribe under SNS's account quota. A
//! record that fails, retryable or not, is named in `batchItemFailures` (the mapping's
//! `ReportBatchItemFailures`), so only it comes back; a permanent failure reaches the event DLQ through
//! the queue's redrive policy with its (trimmed) body for `tasksub replay`. Records not started before
//! the deadline margin are reported too. Bodies are never logged, only message IDs.
//!
//! A payload that is not a batch is one EventBridge event invoked directly (the layout before the
//! buffer, and a manual `aws lambda invoke`): it is handled as [`Controller::handle_slice`] would.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasksub_core::event::strict::StrictJson;
use tasksub_core::event::EventError;
use tokio::time::Instant;
use tracing::{error, warn, Instrument};

use crate::handler::{Controller, HandlerError, Outcome};
use crate::ports::Ports;

/// The `eventSource` of every record an SQS event source mapping delivers.
pub const SQS_EVENT_SOURCE: &str = "aws:sqs";

/// One record of an SQS batch: what the handler needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    /// The SQS message ID: the record's identifier in `batchItemFailures`.
    pub message_id: String,
    /// The message body: one trimmed EventBridge event.
    pub body: String,
    /// `aws:sqs`.
    pub event_source: String,
}

#[derive(Deserialize)]
struct SqsBatch {
    #[serde(rename = "Records")]
    records: Vec<SqsRecord>,
}

/// What the function was invoked with.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// A batch from the buffer queue.
    Batch(Vec<SqsRecord>),
    /// One EventBridge event, invoked directly.
    Direct(Value),
}

/// Tells a batch from a direct event. A payload with `Records` must be a well-formed SQS batch.
pub fn classify(payload: Value) -> Result<Invocation, EventError> {
    if payload.get("Records").is_none() {
        return Ok(Invocation::Direct(payload));
    }
    let batch: SqsBatch = serde_json::from_value(payload).map_err(|e| EventError::Malformed {
        field: "Records".to_owned(),
        problem: e.to_string(),
    })?;
    if let Some(other) = batch.records.iter().find(|r| r.event_source != SQS_EVENT_SOURCE) {
        return Err(EventError::Malformed {
            field: "Records[].eventSource".to_owned(),
            problem: format!("{:?} is not {SQS_EVENT_SOURCE:?}", other.event_source),
        });
    }
    Ok(Invocation::Batch(batch.records))
}

/// The answer to a batch: the records to return to the queue (`ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The failed (or not started) records.
    pub batch_item_failures: Vec<ItemFailure>,
}

/// One record to return to the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    /// Its SQS message ID.
    pub item_identifier: String,
}

/// The function's response: an event's [`Outcome`] or a batch's failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// A direct EventBridge invocation.
    Event(Outcome),
    /// An SQS batch.
    Batch(BatchResponse),
}

/// Handles one invocation: a batch record by record, or a direct event. A payload with a duplicate key
/// (in the batch envelope, or in a direct event) fails the invocation as malformed.
pub async fn invoke<P: Ports>(
    controller: &Controller<P>,
    payload: StrictJson,
    stop_by: Option<Instant>,
) -> Result<Response, HandlerError> {
    let invocation = payload.into_value().and_then(classify).map_err(|e| {
        error!(action = "parse", outcome = "rejected", error = %e, "malformed invocation: nothing changed");
        HandlerError::Malformed(e)
    })?;
    match invocation {
        Invocation::Batch(records) => Ok(Response::Batch(handle_batch(controller, records, stop_by).await)),
        Invocation::Direct(value) => controller.handle_json(&value).await.map(Response::Event),
    }
}

/// Handles the records in order; names every record that failed or was not started before `stop_by`.
pub async fn handle_batch<P: Ports>(
    controller: &Controller<P>,
    records: Vec<SqsRecord>,
    stop_by: Option<Instant>,
) -> BatchResponse {
    let mut failures = Vec::new();
    let mut pending = records.into_iter();
    while let Some(record) = pending.next() {
        if stop_by.is_some_and(|t| Instant::now() >= t) {
            let unstarted: Vec<SqsRecord> = std::iter::once(record).chain(pending.by_ref()).collect();
            warn!(
                records = unstarted.len(),
                action = "batch",
                outcome = "returned",
                "deadline near: the rest of the batch goes back to the buffer queue unstarted"
            );
            failures.extend(unstarted);
            break;
        }
        let span = tracing::info_span!("record", message_id = %record.message_id);
        let result = controller.handle_slice(record.body.as_bytes()).instrument(span).await;
        if let Err(e) = result {
            warn!(
                message_id = %record.message_id,
                error_type = e.error_type(),
                retryable = e.is_retryable(),
                action = "batch",
                outcome = "returned",
                "record back to the buffer queue (after maxReceiveCount its redrive moves it to the event DLQ)"
            );
            failures.push(record);
        }
    }
    BatchResponse {
        batch_item_failures: failures
            .into_iter()
            .map(|r| ItemFailure {
                item_identifier: r.message_id,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
