//! Level-triggered convergence: what a task's queue and subscriptions should be (the desired state, a
//! pure function of the settings and the record), what differs from what AWS says exists, and the calls
//! that close the gap.
//!
//! - The **desired state** of a live task: its queue `<prefix><task id>` in the deployment's home with the
//!   attributes, tags and exact policy of [`crate::policy`], and one subscription per configured topic with
//!   that topic's attributes. A stopping task wants no subscription; a stopped one nothing at all.
//! - The **observed state** is read only where something may differ: CreateQueue and Subscribe answer for
//!   a queue and a subscription that are already right (and make them when missing); attributes are read
//!   when the settings changed since the record was converged, when an earlier attempt's outcome is
//!   unknown, or when the sweeper saw a subscription missing.
//! - [`queue::QueueResolver`] and [`topic::TopicResolver`] turn the difference into calls, one answer at a
//!   time, without I/O; the executor runs them. [`plan`] says which topics a step resolves and how their
//!   outcomes change the record.
//!
//! Two settings versions may run at once during a deploy (an old and a new Lambda version, a stale CLI).
//! Each carries a generation; [`authority`] says a writer of an older generation never undoes a newer
//! one's work. Without generations (both 0), the last writer wins, and one sweep under the final settings
//! converges every task.

pub mod attrs;
pub mod plan;
pub mod queue;
pub mod topic;

use chrono::{DateTime, Duration, Utc};

use crate::policy;
use crate::record::{Record, Refusal};
use crate::settings::Settings;

pub use plan::{desired_topics, Drift, TopicTarget};

/// A stable fingerprint of everything a task's desired state is made from: the queue attributes (the
/// policy with every topic included), the stack tag, and every topic with its subscription attributes.
/// FNV-1a 64 over a canonical rendering; stable across builds and versions (it is stored in records).
pub fn fingerprint(settings: &Settings) -> String {
    let placeholder = "arn:aws:sqs:region:000000000000:queue";
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let mut text = String::new();
    for (k, v) in policy::queue_attributes(settings, placeholder) {
        text.push_str(&format!("q {k}={v}\n"));
    }
    text.push_str(&format!("stack {}\n", settings.stack));
    for t in &settings.topics {
        text.push_str(&format!("topic {}\n", t.arn));
        for (k, v) in policy::subscription_attributes(t, epoch) {
            text.push_str(&format!("  {k}={v}\n"));
        }
        if let Some(f) = crate::record::ClientFilter::of(t) {
            text.push_str(&format!("  client-filter {} {}\n", f.scope, f.policy));
        }
    }
    format!("{:016x}", fnv1a(text.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether a writer may converge a record to its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The writer's settings are newer than (or as new as) the ones that last converged the record.
    Converge,
    /// The record was converged by a newer generation: the writer must not undo that work.
    Older,
}

/// The generation rule: a writer converges a record only when its generation is at least the record's.
/// Equal generations (both 0 when no generation is configured) are unordered: the last writer wins.
pub fn authority(settings: &Settings, record: &Record) -> Authority {
    if settings.generation < record.generation {
        Authority::Older
    } else {
        Authority::Converge
    }
}

/// First wait before a refused topic is tried again.
pub const RETRY_FIRST: Duration = Duration::minutes(5);
/// Longest wait between two tries of a refused topic.
pub const RETRY_MAX: Duration = Duration::hours(6);

/// How long after its last refusal a topic is tried again: 5 min, doubling per attempt, at most 6 h.
pub fn retry_after(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    let wait = RETRY_FIRST * (1i32 << doublings);
    wait.min(RETRY_MAX)
}

/// True when a refused topic is due for another try at `now`.
pub fn retry_due(refusal: &Refusal, now: DateTime<Utc>) -> bool {
    now >= refusal.last_at + retry_after(refusal.attempts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{now, settings, settings_with_topics, TOPIC};

    #[test]
    fn refused_topics_back_off_from_5_minutes_to_6_hours() {
        let rows = [
            (0, 5),
            (1, 5),
            (2, 10),
            (3, 20),
            (4, 40),
            (5, 80),
            (6, 160),
            (7, 320),
            (8, 360),
            (40, 360),
        ];
        for (attempts, minutes) in rows {
            assert_eq!(retry_after(attempts), Duration::minutes(minutes), "{attempts}");
        }
        let r = |attempts, ago: i64| Refusal {
            kind: "access-denied".into(),
            message: "no".into(),
            since: now() - Duration::days(1),
            last_at: now() - Duration::minutes(ago),
            attempts,
        };
        assert!(retry_due(&r(1, 5), now()), "exactly due");
        assert!(!retry_due(&r(1, 4), now()));
        assert!(!retry_due(&r(3, 19), now()) && retry_due(&r(3, 20), now()));
    }

    #[test]
    fn the_fingerprint_moves_with_what_a_task_wants_and_only_that() {
        let base = settings();
        assert_eq!(base.fingerprint(), settings().fingerprint(), "stable");
        assert_eq!(base.fingerprint().len(), 16);
        let two = settings_with_topics(&[TOPIC, "arn:aws:sns:eu-west-1:210987654321:flags"]);
        assert_ne!(base.fingerprint(), two.fingerprint(), "a topic added");
        let mut raw = base.clone();
        raw.topics[0].subscription.raw_delivery = false;
        assert_ne!(base.fingerprint(), raw.fingerprint(), "a subscription attribute");
        let mut vis = base.clone();
        vis.queue.visibility_seconds += 1;
        assert_ne!(base.fingerprint(), vis.fingerprint(), "a queue attribute");
        let mut stack = base.clone();
        stack.stack = "other".into();
        assert_ne!(base.fingerprint(), stack.fingerprint(), "the stack tag");
        let mut unrelated = base.clone();
        unrelated.generation = 9;
        unrelated.tombstone_ttl_seconds = 60;
        unrelated.scope.service_groups.clear();
        assert_eq!(
            base.fingerprint(),
            unrelated.fingerprint(),
            "nothing a queue or subscription carries"
        );
        // pinned: records store it, so it must not change between versions for the same settings
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn an_older_generation_never_converges_a_newer_record() {
        let mut s = settings();
        let mut r = crate::test_support::record(crate::record::State::Ready);
        for (writer, stored, want) in [
            (0, 0, Authority::Converge),
            (2, 2, Authority::Converge),
            (3, 2, Authority::Converge),
            (1, 2, Authority::Older),
            (0, 1, Authority::Older),
        ] {
            s.generation = writer;
            r.generation = stored;
            assert_eq!(authority(&s, &r), want, "writer {writer}, record {stored}");
        }
    }
}
