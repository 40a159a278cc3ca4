//! The relay's phase and counters, shared by the deliveries and the health endpoint.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// The relay's life, as its health endpoint reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for the app's health URL.
    WaitingForApp = 0,
    /// Discovering the task and waiting for its queue.
    Connecting = 1,
    /// Consuming: the only healthy phase.
    Consuming = 2,
    /// SIGTERM received; finishing in-flight deliveries.
    Draining = 3,
}

impl Phase {
    /// The name shown by the health endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForApp => "waiting-for-app",
            Self::Connecting => "connecting",
            Self::Consuming => "consuming",
            Self::Draining => "draining",
        }
    }
}

/// Counters and phase shared with the health endpoint.
#[derive(Debug, Default)]
pub struct Status {
    phase: AtomicU8,
    /// Messages the app accepted (2xx).
    pub delivered: AtomicU64,
    /// Deliveries left for redelivery.
    pub failed: AtomicU64,
    /// 429/503 answers.
    pub backpressured: AtomicU64,
    /// Connection failures.
    pub unreachable: AtomicU64,
}

impl Status {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::WaitingForApp,
            1 => Phase::Connecting,
            2 => Phase::Consuming,
            _ => Phase::Draining,
        }
    }
    /// Moves to `phase` (never back from draining).
    pub fn set(&self, phase: Phase) {
        let _ = self.phase.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
            (p != Phase::Draining as u8).then_some(phase as u8)
        });
    }
}
