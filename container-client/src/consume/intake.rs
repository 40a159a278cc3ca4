//! How many ReceiveMessage calls to keep in flight, and how many messages each asks for (pure: the
//! caller measures the durations and passes them in, with what it holds).
//!
//! - **Idle queue**: one receive at a time, a full long poll. An idle task costs what it always did.
//! - **Deep queue**: each receive that comes back with every message it asked for allows one more
//!   receive in flight (so their number doubles every round trip while the queue stays deep), up to as
//!   many as keep every handler busy: `handlers ÷ handler time × receive round trip ÷ 10`, plus one,
//!   at most `max_receives`. A receive that comes back short (or fails) drops them back to one: where
//!   the queue only looks deep for a moment (a producer a little ahead of the handlers), at most one
//!   extra receive finds it short. Receives beyond the first ask for a full batch of 10 (never a small
//!   request: the cost per message stays at one receive per 10) and wait at most
//!   [`EXTRA_RECEIVE_WAIT`], so once the queue empties they return within a second and only the long
//!   poll is renewed.
//! - **Held messages** (received, not yet settled: running, waiting for a handler, or FIFO messages
//!   waiting for their group) plus the messages outstanding receives asked for never exceed
//!   `max_concurrency + allowance`; while every handler is busy, a receive waits until a full batch
//!   fits (never a small one). The allowance is what the handlers finish before a message's first
//!   heartbeat would be due (two thirds of the visibility timeout after its receipt):
//!   `handlers ÷ handler time × (⅔ visibility − handler time)`, at most `max_buffered` (the memory
//!   bound). It is 0 — hold no more than there are handlers, the client's former rule — while the
//!   handler time is unknown, on FIFO queues (a group's messages run one after the other, so the
//!   handler rate does not say when a held one runs), and while the oldest held message has been held
//!   longer than `⅔ visibility − handler time` (the estimate was wrong: handlers slowed down or are
//!   stuck). The heartbeat still covers every held message.

use std::time::Duration;

use crate::port::MAX_BATCH;

/// Longest wait of a receive beyond the first: short, so that extra receives end soon after the queue
/// empties, but a long poll (SQS asks all its servers, not a sample).
pub(crate) const EXTRA_RECEIVE_WAIT: Duration = Duration::from_secs(1);

/// Weight of a new sample in the running means (1/8).
const SMOOTHING: f64 = 0.125;

/// Shortest handler time the rates are computed with (a handler that returns at once still takes a
/// slot for a moment; this keeps the rates finite).
const MIN_HANDLER_TIME: f64 = 1e-6;

/// What the intake is allowed to do (validated by the builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntakeConfig {
    pub max_concurrency: usize,
    /// Most messages held beyond one per handler (0: never more than there are handlers).
    pub max_buffered: usize,
    /// Most receives in flight at once.
    pub max_receives: usize,
    pub visibility: Duration,
    pub long_poll: Duration,
    /// Hold messages ahead of the handlers (standard queues); FIFO queues do not.
    pub buffer: bool,
}

/// One receive to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ask {
    /// MaxNumberOfMessages (1..=10).
    pub max: usize,
    /// WaitTimeSeconds.
    pub wait: Duration,
}

/// What the consumer holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Held {
    /// Messages received and not yet settled.
    pub count: usize,
    /// How long ago the oldest of them was received.
    pub oldest: Option<Duration>,
}

/// The intake's estimates and its receives in flight.
#[derive(Debug, Clone)]
pub(crate) struct Intake {
    cfg: IntakeConfig,
    /// Running mean of the handler time, s.
    handler: Option<f64>,
    /// Running mean of the round trip of receives that came back full, s.
    round_trip: Option<f64>,
    /// Receives allowed in flight by the queue's depth: one more per receive that came back full, one
    /// after a receive that came back short or failed.
    depth: usize,
    receives: usize,
    asked: usize,
}

fn smooth(mean: Option<f64>, sample: f64) -> Option<f64> {
    Some(match mean {
        Some(m) => m + (sample - m) * SMOOTHING,
        None => sample,
    })
}

impl Intake {
    pub(crate) fn new(cfg: IntakeConfig) -> Self {
        Self {
            cfg,
            handler: None,
            round_trip: None,
            depth: 1,
            receives: 0,
            asked: 0,
        }
    }

    /// Receives in flight.
    #[cfg(test)]
    pub(crate) fn receives(&self) -> usize {
        self.receives
    }

    /// Messages the receives in flight asked for.
    #[cfg(test)]
    pub(crate) fn asked(&self) -> usize {
        self.asked
    }

    fn handler_time(&self) -> Option<f64> {
        self.handler.map(|h| h.max(MIN_HANDLER_TIME))
    }

    /// Messages the handlers finish per second when all are busy.
    fn rate(&self) -> Option<f64> {
        self.handler_time().map(|h| self.cfg.max_concurrency as f64 / h)
    }

    /// Messages that may be held beyond one per handler; see the module docs.
    pub(crate) fn allowance(&self, held: &Held) -> usize {
        let (Some(h), Some(rate)) = (self.handler_time(), self.rate()) else {
            return 0;
        };
        if !self.cfg.buffer {
            return 0;
        }
        let window = self.cfg.visibility.as_secs_f64() * 2.0 / 3.0 - h;
        if window <= 0.0 || held.oldest.is_some_and(|age| age.as_secs_f64() > window) {
            return 0;
        }
        // Float-to-integer casts saturate (an infinite rate gives usize::MAX).
        ((rate * window).floor() as usize).min(self.cfg.max_buffered)
    }

    /// Receives that keep every handler busy (at most `max_receives`); see the module docs.
    pub(crate) fn enough(&self) -> usize {
        let want = match (self.rate(), self.round_trip) {
            (Some(rate), Some(rt)) => ((rate * rt / MAX_BATCH as f64).ceil() as usize).saturating_add(1),
            _ => 2,
        };
        want.min(self.cfg.max_receives).max(1)
    }

    /// Receives to keep in flight now: what the queue's depth allows, up to [`Intake::enough`].
    pub(crate) fn wanted(&self) -> usize {
        self.depth.min(self.enough())
    }

    /// The next receive to start, if any; it counts as in flight until [`Intake::received`] or
    /// [`Intake::failed`].
    pub(crate) fn next(&mut self, held: &Held) -> Option<Ask> {
        let limit = self.cfg.max_concurrency + self.allowance(held);
        let room = limit.saturating_sub(held.count + self.asked);
        let ask = if self.receives == 0 {
            // A free handler is fed whatever fits; otherwise (every handler busy, messages waiting)
            // wait until a full batch fits: small receives would cost more calls per message.
            let starving = held.count < self.cfg.max_concurrency;
            (room >= MAX_BATCH || (starving && room > 0)).then(|| Ask {
                max: room.min(MAX_BATCH),
                wait: self.cfg.long_poll,
            })
        } else {
            (self.receives < self.wanted() && room >= MAX_BATCH).then(|| Ask {
                max: MAX_BATCH,
                wait: EXTRA_RECEIVE_WAIT.min(self.cfg.long_poll),
            })
        }?;
        self.receives += 1;
        self.asked += ask.max;
        Some(ask)
    }

    /// A receive came back with `got` messages after `round_trip`.
    pub(crate) fn received(&mut self, ask: Ask, got: usize, round_trip: Duration) {
        self.end(ask);
        if got >= ask.max {
            self.round_trip = smooth(self.round_trip, round_trip.as_secs_f64());
            self.depth = (self.depth + 1).min(self.enough());
        } else {
            self.depth = 1;
        }
    }

    /// A receive failed.
    pub(crate) fn failed(&mut self, ask: Ask) {
        self.end(ask);
        self.depth = 1;
    }

    fn end(&mut self, ask: Ask) {
        self.receives = self.receives.saturating_sub(1);
        self.asked = self.asked.saturating_sub(ask.max);
    }

    /// A handler finished (any outcome) after `took`.
    pub(crate) fn handled(&mut self, took: Duration) {
        self.handler = smooth(self.handler, took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests;
