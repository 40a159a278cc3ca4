//! Exponential backoff with "equal jitter": pure, the randomness is passed in.
//!
//! The ceiling doubles from `initial` up to `max`; each delay is half the ceiling plus a random part
//! of the other half, so retries spread out but never drop to zero (no hot loop).

use std::time::Duration;

/// A backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Ceiling of the first delay.
    pub initial: Duration,
    /// Largest ceiling.
    pub max: Duration,
}

impl Backoff {
    pub(crate) const fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The ceiling for the given attempt (0-based): `initial * 2^attempt`, capped at `max`.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay for the given attempt: `ceiling/2 + unit * ceiling/2`, with `unit` in `[0, 1)`.
    pub(crate) fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let half = self.ceiling(attempt) / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The delay for the given attempt, jittered with `rng`.
    pub(crate) fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        self.delay_with(attempt, rng.f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

    #[test]
    fn ceiling_doubles_then_caps() {
        let got: Vec<u64> = (0..8).map(|a| B.ceiling(a).as_millis() as u64).collect();
        assert_eq!(got, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
        assert_eq!(B.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_between_half_and_full_ceiling() {
        for attempt in 0..10 {
            let c = B.ceiling(attempt);
            assert_eq!(B.delay_with(attempt, 0.0), c / 2);
            assert_eq!(B.delay_with(attempt, 1.0), c);
            let mut rng = fastrand::Rng::with_seed(attempt as u64);
            for _ in 0..100 {
                let d = B.delay(attempt, &mut rng);
                assert!(
                    d >= c / 2 && d <= c,
                    "attempt {attempt}: {d:?} outside [{:?}, {c:?}]",
                    c / 2
                );
            }
        }
    }

    #[test]
    fn never_zero() {
        assert!(B.delay_with(0, 0.0) >= Duration::from_millis(250));
    }
}
