//! The sweeper's rate limit on its own calls: at least `interval` between two mutating calls (PutItem,
//! CreateQueue, DeleteQueue, Subscribe, Unsubscribe), so a sweep after an outage cannot burst the control
//! plane the event functions also need. Reads pass straight through.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::{sleep_until, Instant};

use crate::ports::PortError;
use crate::wrap::Wrap;

/// The operations paced: the mutating ones, and ListSubscriptionsByTopic although a read, because its
/// account quota (30 TPS) is the tightest we meet.
pub const PACED_OPS: &[&str] = &[
    "PutItem",
    "CreateQueue",
    "DeleteQueue",
    "SetQueueAttributes",
    "Subscribe",
    "Unsubscribe",
    "SetSubscriptionAttributes",
    "ListSubscriptionsByTopic",
];

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

impl<P: Send + Sync> Wrap for Paced<'_, P> {
    type Inner = P;

    fn inner(&self) -> &P {
        self.inner
    }

    async fn around<T: Send>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> Result<T, PortError> {
        if PACED_OPS.contains(&op) {
            self.turn().await;
        }
        call.await
    }
}

crate::wrap_ports!(['a, P: Send + Sync] Paced<'a, P>: Records, Queues, Subscriptions);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::fake::Fake;
    use crate::ports::Queues;

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
