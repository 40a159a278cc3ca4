use chrono::{Duration, TimeZone};

use super::*;

const T: &str = "arn:aws:sns:us-east-1:123456789012:big";

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

fn read(from_start: bool, pages: u64, next: Option<&str>) -> Read {
    Read {
        from_start,
        pages,
        subscriptions: pages * 100,
        next: next.map(str::to_owned),
    }
}

/// A topic read whole in one run: complete every run, a cycle of one run, no position kept.
#[test]
fn a_small_topic_is_complete_every_run() {
    let mut p = Positions::default();
    assert_eq!(p.resume_from(T), None);
    let c = p.advance(T, read(true, 3, None), at(0));
    assert!(c.complete && c.cycle_finished, "{c:?}");
    assert_eq!((c.cycle_pages, c.cycle_runs, c.last_cycle_runs), (3, 1, Some(1)));
    assert_eq!(p.resume_from(T), None, "the next run starts at the first page");
    assert!(
        !p.changed_from(&Positions::default()),
        "nothing kept, nothing to write: {p:?}"
    );
}

/// A topic bigger than one run's budget: each run resumes where the last stopped; the cycle finishes
/// after ⌈pages ÷ budget⌉ runs, and no run of it is complete (a missing subscription proves nothing).
#[test]
fn a_big_topic_is_read_piecewise_and_resumes() {
    let mut p = Positions::default();
    let c = p.advance(T, read(true, 100, Some("t100")), at(0));
    assert!(!c.complete && !c.cycle_finished);
    assert_eq!(p.resume_from(T), Some("t100"));
    assert!(p.changed_from(&Positions::default()));
    let c = p.advance(T, read(false, 100, Some("t200")), at(5));
    assert_eq!((c.cycle_pages, c.cycle_runs), (200, 2));
    assert_eq!(p.resume_from(T), Some("t200"));
    let c = p.advance(T, read(false, 50, None), at(10));
    assert!(
        c.cycle_finished && !c.complete,
        "resumed, so not complete in this run: {c:?}"
    );
    assert_eq!((c.cycle_pages, c.cycle_runs), (250, 3));
    assert_eq!((c.last_cycle_seconds, c.last_cycle_runs), (Some(600), Some(3)));
    assert_eq!(p.topics[T].last_cycle.as_ref().unwrap().subscriptions, 25_000);
    assert_eq!(p.resume_from(T), None, "a new cycle starts at the first page");
    let c = p.advance(T, read(true, 100, Some("t100")), at(15));
    assert_eq!(
        (c.cycle_pages, c.cycle_runs),
        (100, 1),
        "the new cycle counts from zero"
    );
    assert_eq!(c.last_cycle_runs, Some(3), "the finished cycle is still reported");
}

/// A stored token refused (expired): the run starts over at the first page and a new cycle begins,
/// rather than continuing the old cycle's counts.
#[test]
fn starting_over_begins_a_new_cycle() {
    let mut p = Positions::default();
    p.advance(T, read(true, 100, Some("t100")), at(0));
    let c = p.advance(T, read(true, 100, Some("t100")), at(5));
    assert_eq!((c.cycle_pages, c.cycle_runs), (100, 1));
    assert_eq!(p.topics[T].cursor.as_ref().unwrap().started, at(5));
}

/// Topics no longer listed are forgotten; the others keep their position.
#[test]
fn retired_topics_are_forgotten() {
    let mut p = Positions::default();
    p.advance(T, read(true, 100, Some("t100")), at(0));
    p.advance("other", read(true, 100, Some("o100")), at(0));
    p.retain(&[T.to_owned()].into_iter().collect());
    assert_eq!(p.topics.keys().collect::<Vec<_>>(), vec![T]);
    assert_eq!(p.resume_from(T), Some("t100"));
}

/// The stored form: what a previous run saved is read back the same (the sweeper keeps it as JSON).
#[test]
fn positions_round_trip_through_json() {
    let mut p = Positions::default();
    p.advance(T, read(true, 100, Some("t100")), at(0));
    p.advance(T, read(false, 1, None), at(5));
    p.advance("small", read(true, 1, Some("s1")), at(0));
    p.revision = 7;
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Positions>(&json).unwrap(), p);
    assert_eq!(serde_json::from_str::<Positions>("{}").unwrap(), Positions::default());
}

/// The positions item is the table's bookkeeping, never a task's record (scans leave it out); a task
/// ID never looks like it.
#[test]
fn only_hash_keys_are_bookkeeping() {
    assert!(is_bookkeeping(ITEM_KEY));
    assert!(!is_bookkeeping("3a7c2f0e8b9d4c6e9f1a2b3c4d5e6f70"));
    assert!(!is_bookkeeping("e7f3e0c2-6c3f-4b8a-9d2e-1a2b3c4d5e6f"));
}
