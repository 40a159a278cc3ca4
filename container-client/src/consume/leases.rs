//! Visibility leases of in-flight messages and their heartbeat schedule (pure; `now` is passed in).
//!
//! A message received with visibility `V` is renewed (ChangeMessageVisibility to `V` again) once a
//! third of `V` is left, for as long as its handler works, up to `max_extension` after it was received;
//! past that it is left to expire so a stuck handler cannot hold a message forever.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// One in-flight message.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub message_id: String,
    pub receipt: String,
    pub received: Instant,
    pub visible_at: Instant,
}

/// A renewal to send: set the message's visibility to `visibility` from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Renewal {
    pub key: u64,
    pub message_id: String,
    pub receipt: String,
    pub visibility: Duration,
    previous: Instant,
    renewed_to: Instant,
}

/// In-flight messages by key (keys grow with the receive order, so the first is the oldest).
#[derive(Debug)]
pub(crate) struct Leases {
    visibility: Duration,
    max_extension: Duration,
    map: BTreeMap<u64, Lease>,
}

impl Leases {
    pub(crate) fn new(visibility: Duration, max_extension: Duration) -> Self {
        Self {
            visibility,
            max_extension,
            map: BTreeMap::new(),
        }
    }

    /// How long before expiry a lease is renewed.
    pub(crate) fn renew_margin(&self) -> Duration {
        self.visibility / 3
    }

    /// Registers a message just received.
    pub(crate) fn insert(&mut self, key: u64, message_id: String, receipt: String, now: Instant) {
        let lease = Lease {
            message_id,
            receipt,
            received: now,
            visible_at: now + self.visibility,
        };
        self.map.insert(key, lease);
    }

    /// Forgets a message (settled); returns its lease if it was still held.
    pub(crate) fn remove(&mut self, key: u64) -> Option<Lease> {
        self.map.remove(&key)
    }

    fn limit(&self, lease: &Lease) -> Instant {
        lease.received + self.max_extension
    }

    fn renewal_due(&self, lease: &Lease) -> Option<Instant> {
        (lease.visible_at < self.limit(lease)).then(|| lease.visible_at - self.renew_margin())
    }

    /// When the next renewal is due, if any lease can still be renewed.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.map.values().filter_map(|l| self.renewal_due(l)).min()
    }

    /// Leases due for renewal at `now`; they are marked renewed (see [`Leases::restore`]).
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<Renewal> {
        let (visibility, max_extension, margin) = (self.visibility, self.max_extension, self.renew_margin());
        let mut due = Vec::new();
        for (key, lease) in self.map.iter_mut() {
            let limit = lease.received + max_extension;
            if lease.visible_at >= limit || lease.visible_at - margin > now {
                continue;
            }
            let until = (now + visibility).min(limit);
            if until <= now {
                continue;
            }
            due.push(Renewal {
                key: *key,
                message_id: lease.message_id.clone(),
                receipt: lease.receipt.clone(),
                visibility: until - now,
                previous: lease.visible_at,
                renewed_to: until,
            });
            lease.visible_at = until;
        }
        due
    }

    /// Undoes a renewal whose call failed, so it is due again at once.
    pub(crate) fn restore(&mut self, renewal: &Renewal) {
        if let Some(lease) = self.map.get_mut(&renewal.key) {
            if lease.visible_at == renewal.renewed_to {
                lease.visible_at = renewal.previous;
            }
        }
    }

    /// Takes every lease (shutdown: they go back to the queue).
    pub(crate) fn drain(&mut self) -> Vec<Lease> {
        std::mem::take(&mut self.map).into_values().collect()
    }

    /// When the oldest message still held was received.
    pub(crate) fn oldest_received(&self) -> Option<Instant> {
        self.map.first_key_value().map(|(_, l)| l.received)
    }

    /// Number of in-flight messages.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Duration = Duration::from_secs(30);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn renewals_come_every_two_thirds_of_the_visibility() {
        let t0 = Instant::now();
        let mut l = Leases::new(V, secs(3600));
        l.insert(1, "m".into(), "r".into(), t0);
        assert_eq!(l.next_due(), Some(t0 + secs(20)));
        assert!(l.take_due(t0 + secs(19)).is_empty(), "not due before a third is left");
        let due = l.take_due(t0 + secs(20));
        assert_eq!(due.len(), 1);
        assert_eq!(
            (
                due[0].key,
                due[0].message_id.as_str(),
                due[0].receipt.as_str(),
                due[0].visibility
            ),
            (1, "m", "r", V)
        );
        assert_eq!(l.next_due(), Some(t0 + secs(40)));
        assert!(
            l.take_due(t0 + secs(21)).is_empty(),
            "renewed leases are not due again at once"
        );
    }

    /// The in-flight count the drain logs (`in_flight`, `unfinished`).
    #[test]
    fn len_counts_the_leases_in_flight() {
        let t0 = Instant::now();
        let mut l = Leases::new(V, secs(3600));
        assert_eq!(l.len(), 0);
        l.insert(1, "m".into(), "r".into(), t0);
        l.insert(2, "n".into(), "s".into(), t0);
        assert_eq!(l.len(), 2);
        assert_eq!(l.drain().len(), 2);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn a_late_tick_still_renews_for_a_full_visibility() {
        let t0 = Instant::now();
        let mut l = Leases::new(V, secs(3600));
        l.insert(1, "m".into(), "r".into(), t0);
        let due = l.take_due(t0 + secs(25));
        assert_eq!(due[0].visibility, V);
        assert_eq!(l.next_due(), Some(t0 + secs(45)));
    }

    #[test]
    fn renewals_stop_at_the_max_extension() {
        let t0 = Instant::now();
        let mut l = Leases::new(V, secs(50));
        l.insert(1, "m".into(), "r".into(), t0);
        assert_eq!(l.take_due(t0 + secs(20))[0].visibility, V, "renewed to t0+50");
        assert_eq!(l.next_due(), None, "the limit is reached: no more renewals");
        assert!(l.take_due(t0 + secs(45)).is_empty());

        let mut l = Leases::new(V, secs(40));
        l.insert(1, "m".into(), "r".into(), t0);
        assert_eq!(l.take_due(t0 + secs(20))[0].visibility, secs(20), "capped at the limit");
    }

    #[test]
    fn a_failed_renewal_is_due_again() {
        let t0 = Instant::now();
        let mut l = Leases::new(V, secs(3600));
        l.insert(1, "m".into(), "r".into(), t0);
        let due = l.take_due(t0 + secs(20));
        l.restore(&due[0]);
        assert_eq!(l.next_due(), Some(t0 + secs(20)));
        assert_eq!(l.take_due(t0 + secs(21)).len(), 1);
    }

    #[test]
    fn removed_and_drained_leases_are_gone() {
        let t0 = Instant::now();
        let mut l = Leases::new(V, secs(3600));
        l.insert(1, "a".into(), "ra".into(), t0);
        l.insert(2, "b".into(), "rb".into(), t0);
        assert_eq!(l.remove(1).unwrap().receipt, "ra");
        assert!(l.remove(1).is_none());
        assert_eq!(l.len(), 1);
        assert_eq!(l.drain().len(), 1);
        assert_eq!(l.next_due(), None);
    }
}
