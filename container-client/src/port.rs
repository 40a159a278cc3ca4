//! The small internal ports the client's logic runs on: one per capability.
//!
//! The SDK implementations live in [`crate::aws`]; the tests run the same logic on in-memory ones
//! (`crate::memory`) with paused time. No `aws_sdk_*` type crosses a port.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tasksub_core::record::{ClientFilter, State};

use crate::message::Received;
use crate::BoxError;

/// Largest batch SQS accepts in ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch.
pub(crate) const MAX_BATCH: usize = 10;

/// One entry of a batch call that SQS refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryFailure {
    /// Index of the entry in the request.
    pub index: usize,
    /// SQS error code, e.g. `ReceiptHandleIsInvalid`.
    pub code: String,
}

/// The task queue, already resolved to its URL.
pub(crate) trait QueueApi: Send + Sync + 'static {
    /// One ReceiveMessage call: up to `max` messages, long-polling up to `wait`, each kept invisible
    /// for `visibility`; all message and system attributes.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> impl Future<Output = Result<Vec<Received>, BoxError>> + Send;

    /// One DeleteMessageBatch call (at most [`MAX_BATCH`] receipt handles).
    fn delete_batch(&self, receipts: &[String]) -> impl Future<Output = Result<Vec<EntryFailure>, BoxError>> + Send;

    /// One ChangeMessageVisibilityBatch call (at most [`MAX_BATCH`] entries).
    fn change_visibility_batch(
        &self,
        entries: &[(String, Duration)],
    ) -> impl Future<Output = Result<Vec<EntryFailure>, BoxError>> + Send;
}

/// Finds a queue by name without ever creating it.
pub(crate) trait QueueLocator: Send + Sync {
    /// The queue URL, or `None` while the queue does not exist.
    fn queue_url(&self, name: &str) -> impl Future<Output = Result<Option<String>, BoxError>> + Send;
}

/// Reads the controller's record of a task.
pub(crate) trait RecordReader: Send + Sync {
    /// The record's state (strongly consistent read), or `None` while there is no record.
    fn state(&self, task_id: &str) -> impl Future<Output = Result<Option<State>, BoxError>> + Send;
    /// The filter policies the record hands to the task (`clientFilters`; empty when none, or no record).
    fn client_filters(
        &self,
        task_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, ClientFilter>, BoxError>> + Send;
}
