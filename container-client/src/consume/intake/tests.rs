//! The intake's decisions, one row per rule, grouped under why-comments. Durations are passed in:
//! no clock.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const LONG: Duration = Duration::from_secs(20);

/// 16 handlers, room for 800 held beyond them, 64 receives at most, 30 s visibility.
fn cfg() -> IntakeConfig {
    IntakeConfig {
        max_concurrency: 16,
        max_buffered: 800,
        max_receives: 64,
        visibility: secs(30),
        long_poll: LONG,
        buffer: true,
    }
}

/// An intake that measured `handler` per message and `round_trip` per full receive (when given), whose
/// receives came back full until they reached [`Intake::enough`] (`deep`), or whose last came back
/// empty; nothing in flight.
fn seen(cfg: IntakeConfig, handler: Option<Duration>, round_trip: Option<Duration>, deep: bool) -> Intake {
    let mut i = Intake::new(cfg);
    if let Some(h) = handler {
        i.handled(h);
    }
    if let Some(rt) = round_trip {
        let ask = i.next(&Held::default()).expect("nothing held: a receive");
        i.received(ask, ask.max, rt);
    }
    while deep && i.wanted() < i.enough() {
        let ask = i.next(&Held::default()).expect("nothing held: a receive");
        i.received(ask, ask.max, round_trip.unwrap_or(LONG));
    }
    if !deep {
        let ask = i.next(&Held::default()).expect("nothing held: a receive");
        i.received(ask, 0, LONG);
    }
    i
}

/// Starts `n` receives (asserting each is granted) with nothing held.
fn start(i: &mut Intake, n: usize) {
    for k in 0..n {
        assert!(i.next(&Held::default()).is_some(), "receive {k} of {n} refused");
    }
}

fn held(count: usize) -> Held {
    Held { count, oldest: None }
}

fn ask(max: usize, wait: Duration) -> Option<Ask> {
    Some(Ask { max, wait })
}

#[test]
fn next_receive() {
    let fifo = IntakeConfig { buffer: false, ..cfg() };
    let three = IntakeConfig {
        max_concurrency: 3,
        ..cfg()
    };
    let three_more = IntakeConfig {
        max_buffered: 3,
        ..cfg()
    };
    let previous = IntakeConfig {
        max_buffered: 0,
        max_receives: 1,
        ..cfg()
    };
    let fast = Some(ms(1));
    let rt = Some(ms(30));
    #[rustfmt::skip]
    let rows: Vec<(&str, Intake, usize, Held, Option<Ask>)> = vec![
        // (situation, intake, receives already in flight, held, the next receive)

        // Idle, or nothing known yet: one long poll, never for more messages than free handlers.
        ("start: one long poll of 10", seen(cfg(), None, None, false), 0, held(0), ask(10, LONG)),
        ("start, 3 handlers: a long poll of 3", seen(three, None, None, false), 0, held(0), ask(3, LONG)),
        ("handler time unknown: only free handlers", seen(cfg(), None, rt, true), 0, held(12), ask(4, LONG)),
        ("every handler busy, nothing measured: wait", seen(cfg(), None, None, false), 0, held(16), None),
        ("idle queue: the one long poll is enough", seen(cfg(), fast, rt, false), 1, held(0), None),
        ("idle queue, nothing held: the long poll", seen(cfg(), fast, rt, false), 0, held(0), ask(10, LONG)),

        // Deep queue: more receives, each for a full batch, with a short wait.
        ("deep: a second receive", seen(cfg(), fast, rt, true), 1, held(0), ask(10, EXTRA_RECEIVE_WAIT)),
        ("deep: a fortieth receive", seen(cfg(), fast, rt, true), 39, held(0), ask(10, EXTRA_RECEIVE_WAIT)),
        ("deep: no more than wanted (49)", seen(cfg(), fast, rt, true), 49, held(0), None),
        ("deep: the first receive is still a long poll", seen(cfg(), fast, rt, true), 0, held(0), ask(10, LONG)),
        ("deep, less than a batch of room: no small extra receive", seen(cfg(), fast, rt, true), 1, held(16 + 800 - 10 - 9), None),
        ("deep, a batch of room left: one more", seen(cfg(), fast, rt, true), 1, held(16 + 800 - 10 - 10), ask(10, EXTRA_RECEIVE_WAIT)),
        ("every handler busy, less than a batch of room: wait", seen(cfg(), fast, rt, true), 0, held(16 + 800 - 4), None),
        ("a free handler: fed whatever fits", seen(three_more, fast, rt, true), 0, held(12), ask(7, LONG)),

        // FIFO: held messages never exceed the handlers.
        ("FIFO deep: a second receive only with a full batch of free handlers", seen(fifo, fast, rt, true), 1, held(0), None),
        ("FIFO: the first asks for the free handlers", seen(fifo, fast, rt, true), 0, held(9), ask(7, LONG)),

        // The client's former policy: one receive at a time, never more than free handlers.
        ("previous policy: one receive at a time", seen(previous, fast, rt, true), 1, held(0), None),
        ("previous policy: asks for the free handlers", seen(previous, fast, rt, true), 0, held(13), ask(3, LONG)),
        ("previous policy: waits for a free handler", seen(previous, fast, rt, true), 0, held(16), None),
    ];
    for (what, mut intake, in_flight, held, want) in rows {
        start(&mut intake, in_flight);
        assert_eq!(intake.next(&held), want, "{what}");
    }
}

#[test]
fn allowance_beyond_the_handlers() {
    let small = IntakeConfig {
        max_buffered: 10,
        ..cfg()
    };
    let fifo = IntakeConfig { buffer: false, ..cfg() };
    let two = IntakeConfig {
        max_concurrency: 2,
        ..cfg()
    };
    let old = |s: u64| Held {
        count: 1,
        oldest: Some(ms(s)),
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, IntakeConfig, Option<Duration>, Held, usize)> = vec![
        // (situation, config, handler time, held, messages that may be held beyond the handlers)
        ("handler time unknown: none", cfg(), None, held(0), 0),
        ("fast handlers: up to the memory bound", cfg(), Some(ms(1)), held(0), 800),
        ("a smaller memory bound", small, Some(ms(1)), held(0), 10),
        // 2 handlers of 5 s finish 0.4 msg/s; a message may wait 20 - 5 = 15 s: 6 of them.
        ("slow handlers: what finishes before the first heartbeat", two, Some(secs(5)), held(0), 6),
        ("handlers slower than two thirds of the visibility: none", cfg(), Some(secs(20)), held(0), 0),
        ("FIFO: none", fifo, Some(ms(1)), held(0), 0),
        // 16 handlers of 1 s: window 19 s, 16 x 19 = 304.
        ("oldest held within the window", cfg(), Some(secs(1)), old(19_000), 304),
        ("oldest held past the window: none (the estimate is wrong)", cfg(), Some(secs(1)), old(19_001), 0),
    ];
    for (what, cfg, handler, held, want) in rows {
        let intake = seen(cfg, handler, None, false);
        assert_eq!(intake.allowance(&held), want, "{what}");
    }
}

/// (situation, config, handler time, full-receive round trip, deep, receives wanted)
type WantedRow = (
    &'static str,
    IntakeConfig,
    Option<Duration>,
    Option<Duration>,
    bool,
    usize,
);

#[test]
fn receives_wanted() {
    let capped = IntakeConfig {
        max_receives: 8,
        ..cfg()
    };
    let one = IntakeConfig {
        max_receives: 1,
        ..cfg()
    };
    #[rustfmt::skip]
    let rows: Vec<WantedRow> = vec![
        // (situation, config, handler time, full-receive round trip, deep, receives wanted)
        ("not deep: the long poll alone", cfg(), Some(ms(1)), Some(ms(30)), false, 1),
        // 16 000 msg/s x 30 ms = 480 messages in flight: 48 batches, plus one.
        ("1 ms handlers, 30 ms away", cfg(), Some(ms(1)), Some(ms(30)), true, 49),
        // 1 600 msg/s x 30 ms = 48: 5 batches, plus one.
        ("10 ms handlers, 30 ms away", cfg(), Some(ms(10)), Some(ms(30)), true, 6),
        ("slow handlers: one spare", cfg(), Some(secs(2)), Some(ms(30)), true, 2),
        ("at most max_receives", capped, Some(ms(1)), Some(ms(30)), true, 8),
        ("max_receives 1: one", one, Some(ms(1)), Some(ms(30)), true, 1),
        ("handler time unknown: two", cfg(), None, Some(ms(30)), true, 2),
        ("instant handlers: max_receives", cfg(), Some(Duration::ZERO), Some(ms(30)), true, 64),
    ];
    for (what, cfg, handler, rt, deep, want) in rows {
        let intake = seen(cfg, handler, rt, deep);
        assert_eq!(intake.wanted(), want, "{what}");
    }
}

#[test]
fn a_full_receive_makes_the_queue_deep_a_partial_or_empty_one_or_an_error_idle() {
    let mut i = seen(cfg(), Some(ms(1)), None, false);
    let a = i.next(&held(0)).unwrap();
    i.received(a, 10, ms(30));
    assert_eq!((i.wanted(), i.enough()), (2, 49), "full: one more receive");
    let a = i.next(&held(0)).unwrap();
    i.received(a, 9, ms(30));
    assert_eq!(i.wanted(), 1, "partial: idle");
    let a = i.next(&held(0)).unwrap();
    i.received(a, 10, ms(30));
    let a = i.next(&held(0)).unwrap();
    i.failed(a);
    assert_eq!(i.wanted(), 1, "an error: idle");
    assert_eq!((i.receives(), i.asked()), (0, 0), "every receive ended");
}

#[test]
fn in_flight_receives_and_their_asks_are_counted_until_they_end() {
    let mut i = seen(cfg(), Some(ms(1)), Some(ms(30)), true);
    let a = i.next(&held(0)).unwrap();
    let b = i.next(&held(0)).unwrap();
    assert_eq!((i.receives(), i.asked()), (2, 20));
    // The asks count against the limit: 16 + 800 - 20 leaves room for 796 held.
    let c = i.next(&held(786)).unwrap();
    // 777 held and 30 asked leave 9: less than a batch.
    assert_eq!(i.next(&held(777)), None, "no room for a full batch");
    i.received(a, 10, ms(30));
    i.failed(b);
    i.received(c, 10, ms(30));
    assert_eq!((i.receives(), i.asked()), (0, 0));
}

#[test]
fn each_full_receive_allows_one_more_a_short_one_falls_back_to_one() {
    // GIVEN a deep queue, 49 receives would keep the handlers busy
    let mut i = seen(cfg(), Some(ms(1)), Some(ms(30)), false);
    assert_eq!((i.wanted(), i.enough()), (1, 49));
    // WHEN receives keep coming back full: one more in flight per full one (doubling per round trip)
    let mut in_flight = vec![i.next(&held(0)).unwrap()];
    let mut rounds = 0;
    while in_flight.len() < 49 {
        rounds += 1;
        for a in std::mem::take(&mut in_flight) {
            i.received(a, 10, ms(30));
        }
        while let Some(a) = i.next(&held(0)) {
            in_flight.push(a);
        }
    }
    // THEN 1 → 2 → 4 → 8 → 16 → 32 → 49 in flight: six round trips
    assert_eq!(rounds, 6);
    assert_eq!(i.wanted(), 49, "never beyond enough");
    // AND a short one drops them back to one (the others end without being renewed)
    let last = in_flight.pop().unwrap();
    i.received(last, 3, ms(30));
    assert_eq!(i.wanted(), 1);
    for a in in_flight {
        assert_eq!(i.next(&held(0)), None);
        i.received(a, 0, EXTRA_RECEIVE_WAIT);
    }
    // AND a queue full only for a moment (a producer a little ahead): the first receive of a round
    // comes back full, the others short; never more than one extra receive in flight
    let mut calls = 0;
    for _ in 0..100 {
        let mut round = Vec::new();
        while let Some(a) = i.next(&held(0)) {
            round.push(a);
        }
        assert!(round.len() <= 2, "{}", round.len());
        calls += round.len();
        for (k, a) in round.into_iter().enumerate() {
            i.received(a, if k == 0 { 10 } else { 3 }, ms(30));
        }
    }
    assert_eq!(calls, 150, "one extra receive every other round");
}

#[test]
fn only_full_receives_measure_the_round_trip() {
    // A long poll that waited for a message would make the round trip look long.
    let mut i = seen(cfg(), Some(ms(1)), Some(ms(30)), true);
    let a = i.next(&held(0)).unwrap();
    i.received(a, 3, secs(15));
    let a = i.next(&held(0)).unwrap();
    i.received(a, 10, ms(30));
    assert_eq!(i.enough(), 49, "the 15 s partial receive did not count");
}

#[test]
fn handler_and_round_trip_times_are_running_means() {
    // 1 ms, then 9 ms: 1 + (9 - 1) / 8 = 2 ms; 16 / 2 ms = 8 000 msg/s.
    let mut i = seen(cfg(), Some(ms(1)), None, false);
    i.handled(ms(9));
    // 8 000 msg/s x 20 ms = 160 in flight: 16 batches + 1.
    let a = i.next(&held(0)).unwrap();
    i.received(a, 10, ms(20));
    assert_eq!(i.enough(), 17);
    // Round trips 20 ms then 100 ms: 30 ms; 8 000 x 30 ms = 240: 24 + 1.
    let a = i.next(&held(0)).unwrap();
    i.received(a, 10, ms(100));
    assert_eq!(i.enough(), 25);
}

#[test]
fn after_a_burst_the_intake_falls_back_to_one_long_poll() {
    // GIVEN a deep queue and many receives in flight
    let mut i = seen(cfg(), Some(ms(1)), Some(ms(30)), true);
    let mut asks = Vec::new();
    while let Some(a) = i.next(&held(0)) {
        asks.push(a);
    }
    assert_eq!(asks.len(), 49);
    assert_eq!(asks[0].wait, LONG);
    assert!(asks[1..].iter().all(|a| a.wait == EXTRA_RECEIVE_WAIT));
    // WHEN the queue empties: the first comes back partial, the rest empty
    let mut it = asks.into_iter();
    let first = it.next().unwrap();
    i.received(first, 4, ms(30));
    for a in it {
        assert_eq!(i.next(&held(0)), None, "no new receive while the others end");
        i.received(a, 0, EXTRA_RECEIVE_WAIT);
    }
    // THEN exactly one receive, a long poll, and no second one while it waits
    assert_eq!(i.next(&held(0)), ask(10, LONG));
    assert_eq!(i.next(&held(0)), None);
    for _ in 0..100 {
        let a = Ask { max: 10, wait: LONG };
        i.received(a, 0, LONG);
        assert_eq!(i.next(&held(0)), ask(10, LONG), "idle: one long poll after the other");
        assert_eq!(i.next(&held(0)), None);
    }
}
