//! Batching of acknowledgements (pure; `now` is passed in).
//!
//! Items wait until a batch of [`MAX_BATCH`] is full or the oldest has waited `flush_interval`,
//! whichever comes first, so SQS sees one DeleteMessageBatch per ten messages under load and a prompt
//! delete when traffic is light.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::port::MAX_BATCH;

/// Pending items and when each was added.
#[derive(Debug)]
pub(crate) struct Batcher<T> {
    flush_interval: Duration,
    pending: VecDeque<(Instant, T)>,
}

impl<T> Batcher<T> {
    pub(crate) fn new(flush_interval: Duration) -> Self {
        Self {
            flush_interval,
            pending: VecDeque::new(),
        }
    }

    /// Adds an item; true when a full batch is now waiting (flush it without waiting for the timer).
    pub(crate) fn push(&mut self, item: T, now: Instant) -> bool {
        self.pending.push_back((now, item));
        self.pending.len() >= MAX_BATCH
    }

    /// When the oldest pending item is due, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.pending.front().map(|(added, _)| *added + self.flush_interval)
    }

    /// Every full batch, plus the remainder if the oldest item is due.
    pub(crate) fn take_ready(&mut self, now: Instant) -> Vec<Vec<T>> {
        let mut batches = Vec::new();
        while self.pending.len() >= MAX_BATCH {
            batches.push(self.pending.drain(..MAX_BATCH).map(|(_, t)| t).collect());
        }
        if self.next_due().is_some_and(|due| due <= now) {
            batches.push(self.pending.drain(..).map(|(_, t)| t).collect());
        }
        batches
    }

    /// Everything, in batches (shutdown).
    pub(crate) fn take_all(&mut self) -> Vec<Vec<T>> {
        let items: Vec<T> = self.pending.drain(..).map(|(_, t)| t).collect();
        chunks(items)
    }

    /// Number of pending items.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}

/// Splits items into batches of at most [`MAX_BATCH`].
pub(crate) fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(MAX_BATCH).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_full_batch_is_ready_at_once() {
        let t0 = Instant::now();
        let mut b = Batcher::new(SEC);
        for i in 0..9 {
            assert!(!b.push(i, t0), "not full at {i}");
        }
        assert!(b.push(9, t0), "full at the tenth");
        b.push(10, t0);
        let ready = b.take_ready(t0);
        assert_eq!(ready, vec![(0..10).collect::<Vec<_>>()]);
        assert_eq!(b.len(), 1, "the eleventh waits for the interval");
    }

    #[test]
    fn a_partial_batch_waits_for_the_interval_of_its_oldest_item() {
        let t0 = Instant::now();
        let mut b = Batcher::new(SEC);
        b.push("a", t0);
        b.push("b", t0 + SEC / 2);
        assert_eq!(b.next_due(), Some(t0 + SEC));
        assert!(b.take_ready(t0 + SEC / 2).is_empty());
        assert_eq!(b.take_ready(t0 + SEC), vec![vec!["a", "b"]]);
        assert_eq!(b.next_due(), None);
    }

    #[test]
    fn take_all_chunks_by_ten() {
        let t0 = Instant::now();
        let mut b = Batcher::new(SEC);
        for i in 0..23 {
            b.push(i, t0);
        }
        let sizes: Vec<usize> = b.take_all().iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);
        assert_eq!(b.len(), 0);
        assert!(chunks(Vec::<u8>::new()).is_empty());
    }
}
