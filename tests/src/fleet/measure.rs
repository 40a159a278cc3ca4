//! What a fleet run came to: latencies against their quota floors, calls and throttles, sweeps, and what
//! is left at the end.
//!
//! The floor of a latency is a lower bound no design can beat under the quota that binds: tasks served
//! in the order their events arrive, each drawing one token of a bucket that starts full (one second's
//! worth) and refills at the quota's rate, and no task faster than its round trips (20 ms each). Other
//! users of the same quota (the crash loop, the sweeper) are left out, so the floor is, if anything,
//! too low.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tasksub_core::record::State;
use tasksub_functions::fake::Fake;
use tasksub_functions::sweeper::{GatherFailed, Report};
use tokio::time::Instant;

use super::ecs::{Ecs, Sent};
use super::esm::Stats;
use super::limits::{Limit, Limits, Marks, OpCount, Tagging, DDB_WRITES, SUBSCRIBE, TAGGING, UNSUBSCRIBE};
use super::Config;
use crate::quota::CALL_LATENCY;

/// The task indexes of the scale-out (old) and of the deployment (new).
#[derive(Debug, Clone, Default)]
pub struct Phases {
    /// Launched by the scale-out, stopped by the deployment.
    pub old: Vec<usize>,
    /// Launched by the deployment; live at the end.
    pub new: Vec<usize>,
}

/// One sweep.
#[derive(Debug, Clone)]
pub struct SweepRun {
    /// When it started (seconds of virtual time).
    pub at_s: f64,
    /// How long it took (seconds of virtual time).
    pub duration_s: f64,
    /// Whether it ran to the end (a failed gather aborts it).
    pub completed: bool,
    /// Actions it ran (and orphan subscriptions it removed).
    pub actions: usize,
    /// Actions left for the next run (its cap or its deadline).
    pub deferred: usize,
    /// Failed actions or reads.
    pub errors: usize,
    /// The final sweep after the scenario.
    pub last: bool,
}

impl SweepRun {
    /// The run's numbers.
    pub fn of(at: Duration, took: Duration, report: Result<Report, GatherFailed>, last: bool) -> Self {
        let (completed, actions, deferred, errors) = match &report {
            Ok(r) => (true, r.actions.len(), r.deferred, r.errors),
            Err(_) => (false, 0, 0, 1),
        };
        Self {
            at_s: at.as_secs_f64(),
            duration_s: took.as_secs_f64(),
            completed,
            actions,
            deferred,
            errors,
            last,
        }
    }
}

/// Latencies of one kind, with their floors (seconds, sorted).
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    /// Measured.
    pub measured: Vec<f64>,
    /// The floor of each task.
    pub floor: Vec<f64>,
    /// Tasks that never got there.
    pub missing: usize,
}

impl Latencies {
    fn new(mut measured: Vec<f64>, mut floor: Vec<f64>, missing: usize) -> Self {
        measured.sort_by(f64::total_cmp);
        floor.sort_by(f64::total_cmp);
        Self {
            measured,
            floor,
            missing,
        }
    }

    /// The measured `p`-th percentile (0..=100).
    pub fn p(&self, p: f64) -> f64 {
        percentile(&self.measured, p)
    }

    /// The floor's `p`-th percentile.
    pub fn floor_p(&self, p: f64) -> f64 {
        percentile(&self.floor, p)
    }
}

/// Nearest-rank percentile of sorted samples; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i]
}

/// What is left after the final sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Queues of tasks that are not live.
    pub queues: usize,
    /// Subscriptions of queues of tasks that are not live.
    pub subscriptions: usize,
    /// Records of stopped tasks that are not GONE tombstones.
    pub stopped_records: usize,
    /// Live tasks whose record is not READY.
    pub live_not_ready: usize,
}

/// A fleet run.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// What was simulated.
    pub config: Config,
    /// Scale-out: start event → READY.
    pub scale_out: Latencies,
    /// Deployment: the new tasks' start event → READY.
    pub deploy: Latencies,
    /// Deployment: the old tasks' stop-initiated event → unsubscribed (DRAINING).
    pub unsubscribed: Latencies,
    /// Deployment: the old tasks' STOPPED event → GONE.
    pub gone: Latencies,
    /// Crash loop: STOPPED event → GONE (floor: its round trips).
    pub crash_gone: Latencies,
    /// The quota that binds starts, and its rate in starts a second.
    pub binding: (&'static str, f64),
    /// Calls and throttles per operation (attempts, so a retried call counts each time).
    pub ops: BTreeMap<&'static str, OpCount>,
    /// The running and the stopped rules' buffers.
    pub buffers: (Stats, Stats),
    /// Tasks launched in all (scale-out, deployment, crash loop).
    pub launched: usize,
    /// Every sweep, the final one last.
    pub sweeps: Vec<SweepRun>,
    /// What is left.
    pub leftovers: Leftovers,
    /// Virtual time the run took.
    pub virtual_s: f64,
}

impl Fleet {
    /// Events the buffers' redrive dead-lettered.
    pub fn dead_letters(&self) -> usize {
        self.buffers.0.dead_letters + self.buffers.1.dead_letters
    }

    /// Calls to AWS per launched task (every attempt; sweeps included).
    pub fn calls_per_task(&self) -> f64 {
        let calls: usize = self.ops.values().map(|o| o.calls).sum();
        calls as f64 / self.launched.max(1) as f64
    }

    /// Throttled attempts in all.
    pub fn throttles(&self) -> usize {
        self.ops.values().map(|o| o.throttles).sum()
    }
}

/// What [`collect`] reads.
pub(super) struct Inputs<'a> {
    pub config: &'a Config,
    pub fake: &'a Fake,
    pub limits: &'a Limits,
    pub ecs: &'a Ecs,
    pub phases: Phases,
    pub crashed: Vec<usize>,
    pub sweeps: Vec<SweepRun>,
    pub buffers: (Stats, Stats),
    pub elapsed: Duration,
}

/// The run's numbers.
pub(super) fn collect(i: Inputs<'_>) -> Fleet {
    let (sent, ids, marks) = (i.ecs.sent(), i.ecs.ids(), i.limits.marks());
    let binding = binding(i.config.tagging);
    let at = |t: usize| (sent[t], marks.get(&ids[t]).copied().unwrap_or_default());
    let view = |tasks: &[usize]| tasks.iter().map(|&t| at(t)).collect::<Vec<_>>();
    let (old, new, crash) = (view(&i.phases.old), view(&i.phases.new), view(&i.crashed));
    let live: HashSet<&str> = i.phases.new.iter().map(|&t| ids[t].as_str()).collect();
    Fleet {
        config: i.config.clone(),
        scale_out: ready(&old, binding.1),
        deploy: ready(&new, binding.1),
        unsubscribed: unsubscribed(&old),
        gone: gone(&old),
        crash_gone: gone_unbound(&crash),
        binding,
        ops: i.limits.ops(),
        buffers: i.buffers,
        launched: ids.len(),
        sweeps: i.sweeps,
        leftovers: leftovers(i.fake, &ids, &live),
        virtual_s: i.elapsed.as_secs_f64(),
    }
}

/// The quota that binds a start (one Subscribe, one CreateQueue, two PutItem) and its starts a second.
fn binding(tagging: Tagging) -> (&'static str, f64) {
    let mut per_start: Vec<(Limit, f64)> = vec![(SUBSCRIBE, 1.0), (DDB_WRITES, 2.0)];
    if tagging == Tagging::OnCreateCounts {
        per_start.push((TAGGING, 1.0));
    }
    per_start
        .into_iter()
        .map(|(l, units)| (l.name, l.rate / units))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("a limit")
}

fn secs(t: Instant, since: Instant) -> f64 {
    t.saturating_duration_since(since).as_secs_f64()
}

/// When each of these requests (sorted by arrival, seconds from `origin`) gets a token of a bucket of
/// `rate`, one second's worth of burst, full at the first arrival; served in arrival order.
fn token_times(arrivals: &[f64], rate: f64) -> Vec<f64> {
    let mut tokens = rate;
    let mut last = arrivals.first().copied().unwrap_or_default();
    arrivals
        .iter()
        .map(|&a| {
            let now = a.max(last);
            tokens = (tokens + (now - last) * rate).min(rate);
            last = now;
            if tokens < 1.0 {
                last += (1.0 - tokens) / rate;
                tokens = 1.0;
            }
            tokens -= 1.0;
            last
        })
        .collect()
}

/// Floors of latencies measured from `from`, for requests made `before` after `arrival` and done `after`
/// their token; each at least `minimum`.
fn floors(pairs: &[(Instant, Instant)], rate: f64, before: f64, after: f64, minimum: f64) -> Vec<f64> {
    let Some(origin) = pairs.iter().map(|p| p.0).min() else {
        return Vec::new();
    };
    let mut by_arrival: Vec<(f64, f64)> = pairs.iter().map(|&(a, f)| (secs(a, origin), secs(f, origin))).collect();
    by_arrival.sort_by(|x, y| x.0.total_cmp(&y.0));
    let arrivals: Vec<f64> = by_arrival.iter().map(|(a, _)| a + before).collect();
    token_times(&arrivals, rate)
        .into_iter()
        .zip(&by_arrival)
        .map(|(token, (_, from))| (token + after - from).max(minimum))
        .collect()
}

fn rtt(n: u32) -> f64 {
    (CALL_LATENCY * n).as_secs_f64()
}

/// Launch (PROVISIONING event) → READY; floor: claim, then the binding bucket's token, then MarkReady.
fn ready(tasks: &[(Sent, Marks)], rate: f64) -> Latencies {
    let mut measured = Vec::new();
    let mut pairs = Vec::new();
    let mut missing = 0;
    for (sent, marks) in tasks {
        let Some(launched) = sent.launched else { continue };
        pairs.push((launched, launched));
        match marks.ready {
            Some(r) => measured.push(secs(r, launched)),
            None => missing += 1,
        }
    }
    Latencies::new(measured, floors(&pairs, rate, rtt(2), rtt(1), rtt(3)), missing)
}

/// Stop initiated → unsubscribed; floor: read, then an Unsubscribe token, then MarkDraining.
fn unsubscribed(tasks: &[(Sent, Marks)]) -> Latencies {
    let mut measured = Vec::new();
    let mut pairs = Vec::new();
    let mut missing = 0;
    for (sent, marks) in tasks {
        let Some(stop) = sent.stop_initiated else { continue };
        pairs.push((stop, stop));
        match marks.drained {
            Some(d) => measured.push(secs(d, stop)),
            None => missing += 1,
        }
    }
    Latencies::new(
        measured,
        floors(&pairs, UNSUBSCRIBE.rate, rtt(2), rtt(1), rtt(3)),
        missing,
    )
}

/// STOPPED → GONE; floor: the Unsubscribe made at the stop initiated (token from then on), and the
/// STOPPED event's own three round trips.
fn gone(tasks: &[(Sent, Marks)]) -> Latencies {
    let mut measured = Vec::new();
    let mut pairs = Vec::new();
    let mut missing = 0;
    for (sent, marks) in tasks {
        let (Some(stop), Some(stopped)) = (sent.stop_initiated, sent.stopped) else {
            continue;
        };
        pairs.push((stop, stopped));
        match marks.gone {
            Some(g) => measured.push(secs(g, stopped)),
            None => missing += 1,
        }
    }
    Latencies::new(
        measured,
        floors(&pairs, UNSUBSCRIBE.rate, rtt(2), rtt(1), rtt(3)),
        missing,
    )
}

/// STOPPED → GONE with the floor of the round trips alone (the crash loop: a few tasks at a time).
fn gone_unbound(tasks: &[(Sent, Marks)]) -> Latencies {
    let stopped = tasks.iter().filter_map(|(s, m)| Some((s.stopped?, *m)));
    let (mut measured, mut missing) = (Vec::new(), 0);
    for (at, marks) in stopped {
        match marks.gone {
            Some(g) => measured.push(secs(g, at)),
            None => missing += 1,
        }
    }
    let floor = vec![rtt(3); measured.len()];
    Latencies::new(measured, floor, missing)
}

/// Queues, subscriptions and records the fake still holds for tasks that are not live.
fn leftovers(fake: &Fake, ids: &[String], live: &HashSet<&str>) -> Leftovers {
    let of_live = |queue: &str| {
        let id = queue.rsplit(':').next().unwrap_or(queue);
        live.contains(id.strip_prefix("tasksub-").unwrap_or(id))
    };
    let mut out = Leftovers {
        queues: fake.queues().iter().filter(|q| !of_live(&q.name)).count(),
        subscriptions: fake.subscriptions().values().filter(|s| !of_live(&s.endpoint)).count(),
        ..Leftovers::default()
    };
    for id in ids {
        let state = fake.record(id).map(|r| r.state);
        if live.contains(id.as_str()) {
            out.live_not_ready += usize::from(state != Some(State::Ready));
        } else if state.is_some_and(|s| s != State::Gone) {
            out.stopped_records += 1;
        }
    }
    out
}
