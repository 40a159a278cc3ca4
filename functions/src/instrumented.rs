//! A wrapper around any ports that counts calls and injects faults, so the same crash and throttling
//! scenarios run on the in-memory fake and on the emulator.
//!
//! A test double: compiled only with the `test-util` feature (not in the Lambda binaries).
#![cfg(feature = "test-util")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::QueueDetails;
use tasksub_core::record::Record;

use crate::ports::{
    Described, Desired, Expect, PortError, QueueInspect, Queues, Records, SubscriptionPage, Subscriptions, Tasks,
    Written,
};

/// AWS operations that change something.
pub const WRITE_OPS: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "CreateQueue",
    "DeleteQueue",
    "Subscribe",
    "Unsubscribe",
];

#[derive(Debug, Clone)]
struct Fault {
    op: &'static str,
    skip: usize,
    kind: ErrorKind,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<&'static str>,
    faults: Vec<Fault>,
}

/// Counts every call and fails the ones scripted with [`Instrumented::fail_nth`].
#[derive(Debug, Clone)]
pub struct Instrumented<P> {
    inner: P,
    log: Arc<Mutex<Log>>,
}

impl<P> Instrumented<P> {
    /// Wraps ports.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    /// The wrapped ports.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().expect("instrumented log lock")
    }

    /// Makes the `nth` (1-based) next call of `op` fail with `kind` before it reaches the inner ports.
    pub fn fail_nth(&self, op: &'static str, nth: usize, kind: ErrorKind) {
        self.lock().faults.push(Fault {
            op,
            skip: nth.saturating_sub(1),
            kind,
        });
    }

    /// Every call so far, in order (failed ones included).
    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().calls.clone()
    }

    /// Calls that change (or try to change) something.
    pub fn write_calls(&self) -> Vec<&'static str> {
        self.calls().into_iter().filter(|c| WRITE_OPS.contains(c)).collect()
    }

    /// Forgets the call log (faults stay).
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    fn enter(&self, op: &'static str) -> Result<(), PortError> {
        let mut log = self.lock();
        log.calls.push(op);
        if let Some(i) = log.faults.iter().position(|f| f.op == op) {
            if log.faults[i].skip == 0 {
                let f = log.faults.remove(i);
                return Err(PortError::new(f.kind, op, "injected fault"));
            }
            log.faults[i].skip -= 1;
        }
        Ok(())
    }
}

impl<P: Records> Records for Instrumented<P> {
    async fn get(&self, task_id: &str) -> Result<Option<Record>, PortError> {
        self.enter("GetItem")?;
        self.inner.get(task_id).await
    }
    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, PortError> {
        self.enter("PutItem")?;
        self.inner.put(record, expect).await
    }
    async fn list(&self) -> Result<Vec<Record>, PortError> {
        self.enter("Scan")?;
        self.inner.list().await
    }
}

impl<P: Queues> Queues for Instrumented<P> {
    async fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<&'static str, String>,
        tags: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        self.enter("CreateQueue")?;
        self.inner.create(name, attributes, tags).await
    }
    async fn url(&self, name: &str) -> Result<String, PortError> {
        self.enter("GetQueueUrl")?;
        self.inner.url(name).await
    }
    async fn delete(&self, url: &str) -> Result<(), PortError> {
        self.enter("DeleteQueue")?;
        self.inner.delete(url).await
    }
    async fn set_policy(&self, url: &str, policy: &str) -> Result<(), PortError> {
        self.enter("SetQueueAttributes")?;
        self.inner.set_policy(url, policy).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        self.enter("ListQueues")?;
        self.inner.list(prefix).await
    }
}

impl<P: Subscriptions> Subscriptions for Instrumented<P> {
    async fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        self.enter("Subscribe")?;
        self.inner.subscribe(topic_arn, queue_arn, attributes).await
    }
    async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), PortError> {
        self.enter("Unsubscribe")?;
        self.inner.unsubscribe(subscription_arn).await
    }
    async fn find(&self, topic_arn: &str, endpoint: &str) -> Result<Option<String>, PortError> {
        self.enter("ListSubscriptionsByTopic")?;
        self.inner.find(topic_arn, endpoint).await
    }
    async fn list_by_topic(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        self.enter("ListSubscriptionsByTopic")?;
        self.inner.list_by_topic(topic_arn, next).await
    }
}

impl<P: QueueInspect> QueueInspect for Instrumented<P> {
    async fn details(&self, url: &str) -> Result<QueueDetails, PortError> {
        self.enter("GetQueueAttributes")?;
        self.enter("ListQueueTags")?;
        self.inner.details(url).await
    }
}

impl<P: Tasks> Tasks for Instrumented<P> {
    async fn list_tasks(&self, cluster: &str, desired: Desired) -> Result<Vec<String>, PortError> {
        self.enter("ListTasks")?;
        self.inner.list_tasks(cluster, desired).await
    }
    async fn describe_tasks(&self, cluster: &str, task_arns: &[String]) -> Result<Described, PortError> {
        self.enter("DescribeTasks")?;
        self.inner.describe_tasks(cluster, task_arns).await
    }
}
