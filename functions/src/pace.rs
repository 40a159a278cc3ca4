//! The sweeper's rate limit on its own calls: at least `interval` between two mutating calls (PutItem,
//! CreateQueue, DeleteQueue, Subscribe, Unsubscribe), so a sweep after an outage cannot burst the control
//! plane the event functions also need. Reads pass straight through.

use std::collections::BTreeMap;
use std::time::Duration;

use tasksub_core::record::Record;
use tokio::sync::Mutex;
use tokio::time::{sleep_until, Instant};

use crate::ports::{Expect, PortError, Queues, Records, SubscriptionPage, Subscriptions, Written};

/// Ports whose mutating calls are spaced at least `interval` apart.
#[derive(Debug)]
pub struct Paced<'a, P> {
    inner: &'a P,
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl<'a, P> Paced<'a, P> {
    /// Wraps ports; a zero interval disables the limit.
    pub fn new(inner: &'a P, interval: Duration) -> Self {
        Self {
            inner,
            interval,
            next: Mutex::new(None),
        }
    }

    async fn turn(&self) {
        if self.interval.is_zero() {
            return;
        }
        let mut next = self.next.lock().await;
        if let Some(at) = *next {
            sleep_until(at).await;
        }
        *next = Some(Instant::now() + self.interval);
    }
}

impl<P: Records> Records for Paced<'_, P> {
    async fn get(&self, task_id: &str) -> Result<Option<Record>, PortError> {
        self.inner.get(task_id).await
    }
    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, PortError> {
        self.turn().await;
        self.inner.put(record, expect).await
    }
    async fn list(&self) -> Result<Vec<Record>, PortError> {
        Records::list(self.inner).await
    }
}

impl<P: Queues> Queues for Paced<'_, P> {
    async fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<&'static str, String>,
        tags: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        self.turn().await;
        self.inner.create(name, attributes, tags).await
    }
    async fn url(&self, name: &str) -> Result<String, PortError> {
        self.inner.url(name).await
    }
    async fn delete(&self, url: &str) -> Result<(), PortError> {
        self.turn().await;
        self.inner.delete(url).await
    }
    async fn set_policy(&self, url: &str, policy: &str) -> Result<(), PortError> {
        self.turn().await;
        self.inner.set_policy(url, policy).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        Queues::list(self.inner, prefix).await
    }
}

impl<P: Subscriptions> Subscriptions for Paced<'_, P> {
    async fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        self.turn().await;
        self.inner.subscribe(topic_arn, queue_arn, attributes).await
    }
    async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), PortError> {
        self.turn().await;
        self.inner.unsubscribe(subscription_arn).await
    }
    async fn find(&self, topic_arn: &str, endpoint: &str) -> Result<Option<String>, PortError> {
        self.turn().await;
        self.inner.find(topic_arn, endpoint).await
    }
    /// Paced although a read: ListSubscriptionsByTopic's account quota (30 TPS) is the tightest we meet.
    async fn list_by_topic(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        self.turn().await;
        self.inner.list_by_topic(topic_arn, next).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;

    #[tokio::test(start_paused = true)]
    async fn mutating_calls_are_spaced_and_reads_are_not() {
        let fake = Fake::new();
        let paced = Paced::new(&fake, Duration::from_millis(100));
        let start = Instant::now();
        let attrs = BTreeMap::new();
        for i in 0..3 {
            paced.create(&format!("q{i}"), &attrs, &attrs).await.unwrap();
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(200),
            "three writes: two intervals"
        );
        for _ in 0..5 {
            paced.url("q0").await.unwrap();
            Queues::list(&paced, "q").await.unwrap();
        }
        assert_eq!(start.elapsed(), Duration::from_millis(200), "reads are not paced");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = Instant::now();
        paced.delete(&fake.queues()[0].name).await.unwrap();
        assert_eq!(
            before.elapsed(),
            Duration::ZERO,
            "an idle limiter lets the next write through at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_disables_the_limit() {
        let fake = Fake::new();
        let paced = Paced::new(&fake, Duration::ZERO);
        let start = Instant::now();
        for i in 0..10 {
            paced
                .create(&format!("q{i}"), &BTreeMap::new(), &BTreeMap::new())
                .await
                .unwrap();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
