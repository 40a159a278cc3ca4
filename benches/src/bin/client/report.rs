//! The tables: per row the measured rate, the bounds that could bind it, and the cost per message.

use tasksub_bench::report::{ms, ratio, table};
use tasksub_bench::stats::median;
use tasksub_client::DEFAULT_MAX_RECEIVES_IN_FLIGHT;

use crate::memory::MemRun;
use crate::moto::MotoRun;
use crate::variants::Variant;
use crate::Args;

/// What a report needs of a run.
pub trait Measured {
    fn variant(&self) -> Variant;
    fn handlers(&self) -> usize;
    fn added_ms(&self) -> u64;
    fn rep(&self) -> usize;
    fn rate(&self) -> f64;
}

macro_rules! measured {
    ($t:ty) => {
        impl Measured for $t {
            fn variant(&self) -> Variant {
                self.variant
            }
            fn handlers(&self) -> usize {
                self.handlers
            }
            fn added_ms(&self) -> u64 {
                self.added_ms
            }
            fn rep(&self) -> usize {
                self.rep
            }
            fn rate(&self) -> f64 {
                self.msgs_per_s
            }
        }
    };
}
measured!(MemRun);
measured!(MotoRun);

fn cell<R: Measured>(runs: &[R], v: Variant, h: usize, l: u64) -> Vec<&R> {
    runs.iter()
        .filter(|r| r.variant() == v && r.handlers() == h && r.added_ms() == l)
        .collect()
}

fn med<R>(rs: &[&R], f: impl Fn(&R) -> f64) -> f64 {
    median(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
}

/// `a`'s rate over `b`'s: of the medians, and the median of the same-repetition ratios.
fn versus<R: Measured>(a: &[&R], b: &[&R]) -> (f64, f64) {
    let paired: Vec<f64> = a
        .iter()
        .filter_map(|x| b.iter().find(|y| y.rep() == x.rep()).map(|y| x.rate() / y.rate()))
        .collect();
    (med(a, |r| r.rate()) / med(b, |r| r.rate()), median(&paired))
}

/// The latency bound of a design (msgs/s) with `call_s` per call and `work_s` per message; `None`
/// when it does not bind (no latency).
fn latency_bound(v: Variant, handlers: usize, call_s: f64, work_s: f64) -> Option<f64> {
    if call_s <= 0.0 {
        return None;
    }
    Some(match v {
        // Every handler: a receive, the work, a delete, per message.
        Variant::Naive => handlers as f64 / (2.0 * call_s + work_s),
        // One receive in flight, for at most min(10, handlers) messages.
        Variant::Previous => handlers.min(10) as f64 / call_s,
        // At most max_receives_in_flight receives of 10.
        Variant::Client | Variant::Relay => (DEFAULT_MAX_RECEIVES_IN_FLIGHT * 10) as f64 / call_s,
    })
}

fn rate(v: Option<f64>) -> String {
    v.map_or("—".into(), |b| format!("{b:.0}"))
}

fn pct(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{:.0} %", v * 100.0)
    }
}

fn header(args: &Args, load_before: &str, what: &str) -> String {
    format!(
        "{what}; handlers do {} µs of work per message (a sleep: I/O-like work, the same in every variant); \
         {} repetitions per cell, interleaved (levels and variants rotate). Machine: {}; load average before: \
         {load_before}, after: {}.\n\n",
        args.work_us,
        args.reps,
        tasksub_bench::machine(),
        tasksub_bench::sys::loadavg()
    )
}

/// The in-memory tables.
pub fn memory(
    args: &Args,
    levels: &[u64],
    variants: &[Variant],
    runs: &[MemRun],
    idle: &[(Variant, usize, u64, f64)],
    load_before: &str,
) -> String {
    let mut doc = header(
        args,
        load_before,
        &format!(
            "In-memory SQS (`MemorySqs`) taking the added latency on every call (receive, delete, visibility \
             change), a queue kept 10,000 messages visible; each cell measured over {} s after a {} s warm-up",
            args.window_s, args.warmup_s
        ),
    );
    let mut rows = Vec::new();
    for &h in &args.handlers {
        for &l in levels {
            let naive = cell(runs, Variant::Naive, h, l);
            let client = cell(runs, Variant::Client, h, l);
            for &v in variants {
                let rs = cell(runs, v, h, l);
                if rs.is_empty() {
                    continue;
                }
                let work_s = med(&rs, |r| r.work_ms) / 1e3;
                let handler_bound = h as f64 / work_s;
                let measured = med(&rs, |r| r.msgs_per_s);
                let vs_naive = if v == Variant::Naive || naive.is_empty() {
                    String::new()
                } else {
                    let (m, p) = versus(&rs, &naive);
                    format!("{} ({} paired)", ratio(m), ratio(p))
                };
                let vs_client = if v == Variant::Relay && !client.is_empty() {
                    let (m, p) = versus(&rs, &client);
                    format!("{} ({} paired)", pct(m), pct(p))
                } else {
                    String::new()
                };
                rows.push(vec![
                    h.to_string(),
                    l.to_string(),
                    v.label().to_owned(),
                    format!("{measured:.0}"),
                    ms(work_s * 1e3),
                    format!("{handler_bound:.0}"),
                    pct(measured / handler_bound),
                    rate(latency_bound(v, h, l as f64 / 1e3, work_s)),
                    vs_naive,
                    vs_client,
                    format!("{:.3}", med(&rs, MemRun::calls_per_msg)),
                    format!("{:.0}", rs.iter().map(|r| r.peak_receives_in_flight).max().unwrap_or(0)),
                    format!("{:.2}", med(&rs, |r| r.cpu_cores)),
                ]);
            }
        }
    }
    doc.push_str(&table(
        &[
            "handlers",
            "added ms",
            "consumer",
            "msgs/s (median)",
            "work ms (measured)",
            "handler-bound limit",
            "% of it",
            "latency bound",
            "× naive",
            "relay: % of client",
            "AWS calls / msg",
            "receives in flight (peak)",
            "CPU (cores)",
        ],
        &rows,
    ));
    doc.push_str(
        "\n`work ms`: the handlers' own measure of their work (a tokio sleep of the nominal time: the timer \
         ticks every ms and the runtime wakes the task when it gets a core, so it takes longer, the more so the \
         busier the process and the machine). `handler-bound limit` = handlers ÷ that time: what the handlers \
         could do if they never waited for a message. `latency bound`: naive = handlers ÷ (2 × call + work); previous policy = min(10, \
         handlers) ÷ call (one receive in flight); client and relay = 64 receives × 10 ÷ call (their \
         `max_receives_in_flight`). `CPU (cores)`: the whole bench process (consumer, in-memory SQS, the \
         relay's app) over the window, of 2 shared cores.\n",
    );
    if !idle.is_empty() {
        let rows: Vec<Vec<String>> = idle
            .iter()
            .map(|(v, h, l, c)| vec![v.label().to_owned(), h.to_string(), l.to_string(), format!("{c:.0}")])
            .collect();
        doc.push_str(&format!(
            "\n**Idle cost**: calls on an empty queue over {} s, per hour.\n\n",
            args.idle_s
        ));
        doc.push_str(&table(
            &["consumer", "handlers", "added ms", "calls per idle hour"],
            &rows,
        ));
    }
    doc
}

/// The moto tables.
pub fn moto(args: &Args, levels: &[u64], variants: &[Variant], runs: &[MotoRun], load_before: &str) -> String {
    let mut doc = header(
        args,
        load_before,
        &format!(
            "moto 5.2.5 (timed), the added latency on every consumer request; {} messages per run through a \
             queue kept about {} deep by a producer; rate = messages ÷ time from the first to the last handled",
            args.messages, args.backlog
        ),
    );
    let mut rows = Vec::new();
    for &h in &args.handlers {
        for &l in levels {
            let naive = cell(runs, Variant::Naive, h, l);
            let client = cell(runs, Variant::Client, h, l);
            for &v in variants {
                let rs = cell(runs, v, h, l);
                if rs.is_empty() {
                    continue;
                }
                let per_msg = |f: fn(&MotoRun) -> f64| med(&rs, |r| f(r) / r.handled.max(1) as f64);
                let work_s = med(&rs, |r| r.work_ms) / 1e3;
                let call_s = med(&rs, |r| r.probe_rt_ms) / 1e3;
                let moto_bound = 1e6 / per_msg(|r| r.moto_cpu_ms * 1e3);
                let handler_bound = h as f64 / work_s;
                let latency = latency_bound(v, h, call_s, work_s);
                let (which, limit) = [("moto", moto_bound), ("handlers", handler_bound)]
                    .into_iter()
                    .chain(latency.map(|b| ("latency", b)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .expect("two bounds at least");
                let measured = med(&rs, |r| r.msgs_per_s);
                let vs = |other: &[&MotoRun], as_pct: bool| {
                    if other.is_empty() {
                        return String::new();
                    }
                    let (m, p) = versus(&rs, other);
                    if as_pct {
                        format!("{} ({} paired)", pct(m), pct(p))
                    } else {
                        format!("{} ({} paired)", ratio(m), ratio(p))
                    }
                };
                rows.push(vec![
                    h.to_string(),
                    l.to_string(),
                    v.label().to_owned(),
                    format!("{measured:.0}"),
                    format!("{:.2}", per_msg(|r| r.calls as f64)),
                    format!("{:.1}", med(&rs, |r| r.handled as f64 / r.receives.max(1) as f64)),
                    format!("{:.0}", per_msg(|r| r.consumer_cpu_ms * 1e3)),
                    format!("{:.0}", per_msg(|r| r.moto_cpu_ms * 1e3)),
                    format!("{moto_bound:.0}"),
                    format!("{handler_bound:.0}"),
                    rate(latency),
                    format!("{which}: {}", pct(measured / limit)),
                    if v == Variant::Naive {
                        String::new()
                    } else {
                        vs(&naive, false)
                    },
                    if v == Variant::Relay {
                        vs(&client, true)
                    } else {
                        String::new()
                    },
                    rs.iter()
                        .map(|r| r.left_in_queue.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ]);
            }
        }
    }
    doc.push_str(&table(
        &[
            "handlers",
            "added ms",
            "consumer",
            "msgs/s (median)",
            "AWS calls / msg",
            "msgs / receive",
            "consumer CPU µs / msg",
            "moto CPU µs / msg",
            "moto bound",
            "handler bound",
            "latency bound",
            "binding: % of it",
            "× naive",
            "relay: % of client",
            "left in queue",
        ],
        &rows,
    ));
    doc.push_str(&format!(
        "\nBounds (msgs/s, from the same runs): `moto` = one core ÷ moto's CPU per message (moto serves under one \
         GIL); `handler` = handlers ÷ the measured work per message; `latency` as in the in-memory table, with \
         `call` the median of 10 sequential GetQueueUrl round trips before each run (median {} ms at the \
         highest level). `binding` is the smallest of a row's bounds, and the measured rate as a share of it. \
         The relay's calls are counted by moto (its requests carry no bench tag); consumer CPU includes the \
         relay process and the app.\n",
        ms(median(
            &runs
                .iter()
                .filter(|r| Some(&r.added_ms) == levels.iter().max())
                .map(|r| r.probe_rt_ms)
                .collect::<Vec<_>>()
        ))
    ));
    doc
}
