//! The heartbeat: renews the visibility of messages still held (handlers working, messages waiting for
//! a handler or, on FIFO queues, for their group) before it ends, within the max extension (see
//! `leases`), in concurrent batches.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ack::{accepted, concurrently, refused, BatchCall};
use super::batcher::chunks;
use super::leases::Renewal;
use super::{lock, sleep_until_opt, Shared};
use crate::port::QueueApi;

/// Pause of the heartbeat after a failed extension call, before it tries again.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

/// A failed renewal call is not retried in place: its leases are due again after [`HEARTBEAT_RETRY`].
const HEARTBEAT: BatchCall = BatchCall {
    op: "ChangeMessageVisibilityBatch",
    action: "heartbeat",
    attempts: 1,
};

/// Renews due leases until `stop` fires.
pub(super) async fn run<Q: QueueApi>(shared: Arc<Shared<Q>>, stop: CancellationToken) {
    loop {
        let next = lock(&shared.leases).next_due();
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = shared.lease_added.notified() => continue,
            _ = sleep_until_opt(next) => {}
        }
        let due = lock(&shared.leases).take_due(Instant::now());
        let calls = chunks(due).into_iter().map(|batch| {
            let shared = shared.clone();
            async move { extend(&shared, batch).await }
        });
        if concurrently(calls).await.contains(&false) {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(HEARTBEAT_RETRY) => {}
            }
        }
    }
}

/// One ChangeMessageVisibilityBatch of renewals; when the call fails the renewals are due again at once
/// (and `false` says to pause before retrying).
async fn extend<Q: QueueApi>(shared: &Shared<Q>, batch: Vec<Renewal>) -> bool {
    let entries: Vec<(String, Duration)> = batch.iter().map(|r| (r.receipt.clone(), r.visibility)).collect();
    match HEARTBEAT
        .send(batch.len(), || shared.queue.change_visibility_batch(&entries))
        .await
    {
        Ok(failures) => {
            for (message_id, code) in refused(&batch, &failures) {
                tracing::debug!(
                    action = "heartbeat",
                    message_id,
                    code,
                    "extension refused (settled meanwhile?)"
                );
            }
            let count = accepted(batch.len(), &failures);
            tracing::debug!(action = "heartbeat", count, "visibility extended");
            true
        }
        Err(e) => {
            tracing::warn!(action = "heartbeat", count = batch.len(), error = %DisplayErrorContext(&*e), "ChangeMessageVisibilityBatch failed; retrying shortly");
            let mut leases = lock(&shared.leases);
            for r in &batch {
                leases.restore(r);
            }
            false
        }
    }
}
