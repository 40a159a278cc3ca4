//! AWS's per-account API quotas on the wire: one token bucket per operation. A call that finds its bucket
//! empty is answered with the service's own throttling error (and never reaches moto), exactly what the
//! SDK's retry classifier and `tasksub_functions::aws::classify` see from AWS. Pure but for the clock,
//! which the caller passes in.
//!
//! The defaults are AWS's published figures (AWS General Reference, "Amazon SNS endpoints and quotas",
//! API throttling: Subscribe and Unsubscribe 100 TPS per account in us-east-1, ListSubscriptionsByTopic 30
//! TPS); moto serves only ~125–155 requests a second here, so a test scales them down ([`Quotas::scaled`])
//! until the quota, not moto, is the bottleneck.

use std::collections::BTreeMap;
use std::time::Instant;

/// AWS's default rate per operation, requests per second (SNS, per account; see the module docs).
pub const AWS_DEFAULTS: &[(&str, f64)] = &[
    ("Subscribe", 100.0),
    ("Unsubscribe", 100.0),
    ("ListSubscriptionsByTopic", 30.0),
];

#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// Takes a token at `now` if there is one.
    fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Token buckets per operation; operations without one are unlimited.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    buckets: BTreeMap<String, Bucket>,
}

impl Quotas {
    /// `rate` calls a second for `op`, with a burst of `burst` (the bucket starts full).
    pub fn set(&mut self, op: &str, rate: f64, burst: f64) {
        let bucket = Bucket {
            rate,
            burst,
            tokens: burst,
            last: None,
        };
        self.buckets.insert(op.to_owned(), bucket);
    }

    /// AWS's defaults divided by `factor` (a burst of one second's worth).
    pub fn scaled(factor: f64) -> Self {
        let mut q = Self::default();
        for (op, rate) in AWS_DEFAULTS {
            q.set(op, rate / factor, (rate / factor).max(1.0));
        }
        q
    }

    /// True when `op` may go now (a token was taken); false: answer with the throttling error.
    pub fn admit(&mut self, op: &str, now: Instant) -> bool {
        self.buckets.get_mut(op).is_none_or(|b| b.take(now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let mut q = Quotas::default();
        q.set("Subscribe", 10.0, 3.0);
        let t0 = Instant::now();
        let admitted = (0..5).filter(|_| q.admit("Subscribe", t0)).count();
        assert_eq!(admitted, 3, "the burst");
        assert!(!q.admit("Subscribe", t0 + Duration::from_millis(50)), "half a token");
        assert!(
            q.admit("Subscribe", t0 + Duration::from_millis(100)),
            "one token a tenth of a second"
        );
        assert!(!q.admit("Subscribe", t0 + Duration::from_millis(100)));
        // never more than the burst, however long the pause
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| q.admit("Subscribe", later)).count(), 3);
        assert!(q.admit("CreateQueue", t0), "no bucket: unlimited");
        let scaled = Quotas::scaled(20.0);
        assert_eq!(scaled.buckets["Subscribe"].rate, 5.0);
        assert_eq!(scaled.buckets["ListSubscriptionsByTopic"].burst, 1.5);
    }
}
