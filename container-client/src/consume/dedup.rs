//! Suppression of redelivered duplicates within a time window (pure; `now` is passed in).
//!
//! SNS and SQS standard queues deliver at least once. A key (SNS message ID, else SQS message ID) is
//! remembered once its handler succeeded; a later copy within the window is deleted without calling the
//! handler. A copy that arrives while the first is still being handled is left alone: it becomes visible
//! again later, when the first has settled.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Most keys remembered; the oldest are forgotten first.
pub(crate) const DEDUP_CAPACITY: usize = 100_000;

/// What to do with a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not seen: handle it.
    New,
    /// Already handled within the window: delete it.
    Handled,
    /// Being handled right now: leave it.
    InFlight,
}

/// How the handling of a key ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The handler returned `Ok`: the key is remembered for the window.
    Succeeded,
    /// The handler failed, panicked, or never ran: the key is forgotten (a redelivery is handled).
    Failed,
}

/// Recently handled and in-flight keys.
#[derive(Debug)]
pub(crate) struct Dedup {
    window: Duration,
    capacity: usize,
    handled: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
    in_flight: HashSet<String>,
}

impl Dedup {
    pub(crate) fn new(window: Duration) -> Self {
        Self::with_capacity(window, DEDUP_CAPACITY)
    }

    pub(crate) fn with_capacity(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            handled: HashMap::new(),
            order: VecDeque::new(),
            in_flight: HashSet::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            if *at + self.window > now && self.order.len() <= self.capacity {
                break;
            }
            if self.handled.get(key) == Some(at) {
                self.handled.remove(key);
            }
            self.order.pop_front();
        }
    }

    /// Classifies a received key; a `New` key is marked in flight.
    pub(crate) fn check(&mut self, key: &str, now: Instant) -> Verdict {
        self.expire(now);
        if self.in_flight.contains(key) {
            Verdict::InFlight
        } else if self.handled.contains_key(key) {
            Verdict::Handled
        } else {
            self.in_flight.insert(key.to_owned());
            Verdict::New
        }
    }

    /// Settles an in-flight key; only a success is remembered.
    pub(crate) fn finish(&mut self, key: &str, outcome: Outcome, now: Instant) {
        self.in_flight.remove(key);
        if outcome == Outcome::Succeeded {
            self.handled.insert(key.to_owned(), now);
            self.order.push_back((now, key.to_owned()));
            self.expire(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(60);

    #[test]
    fn handled_keys_are_duplicates_until_the_window_ends() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W);
        assert_eq!(d.check("a", t0), Verdict::New);
        assert_eq!(d.check("a", t0), Verdict::InFlight);
        d.finish("a", Outcome::Succeeded, t0);
        assert_eq!(d.check("a", t0 + Duration::from_secs(59)), Verdict::Handled);
        assert_eq!(d.check("a", t0 + W), Verdict::New, "forgotten after the window");
    }

    #[test]
    fn failed_keys_are_not_remembered() {
        let t0 = Instant::now();
        let mut d = Dedup::new(W);
        assert_eq!(d.check("a", t0), Verdict::New);
        d.finish("a", Outcome::Failed, t0);
        assert_eq!(
            d.check("a", t0),
            Verdict::New,
            "a redelivery after failure is handled again"
        );
    }

    #[test]
    fn capacity_bounds_memory() {
        let t0 = Instant::now();
        let mut d = Dedup::with_capacity(W, 2);
        for k in ["a", "b", "c"] {
            d.check(k, t0);
            d.finish(k, Outcome::Succeeded, t0);
        }
        assert_eq!(d.check("a", t0), Verdict::New, "the oldest was evicted");
        assert_eq!(d.check("c", t0), Verdict::Handled);
    }
}
