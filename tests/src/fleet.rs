//! A fleet of 10,000 or 100,000 tasks under AWS's quotas, in virtual time (issue #23 part 3): the real
//! handler, executor and sweeper on the in-memory fake, behind a token bucket per quota
//! ([`limits`]), with events delivered as the templates deploy it: EventBridge → one SQS buffer per
//! rule → an event source mapping with `MaximumConcurrency` and batches ([`esm`]), each invocation
//! holding one of the account's concurrent executions.
//!
//! The scenario ([`run`]): N tasks launch within the launch window; once all are READY (and a minute
//! more), a deployment replaces them: N new tasks launch within the window, each old task stopping when
//! its replacement has run 30 s; meanwhile a crash-looping service keeps `crash_loop` tasks starting and
//! crashing every `crash_period`; the sweeper runs every 5 virtual minutes throughout. At the end the
//! crash loop stops, the run idles past the sweeper's grace period and a final sweep runs; then what is
//! left is counted ([`Leftovers`]).
//!
//! # Layout
//! - [`limits`]: the quotas on the fake, the SDK's retries, and the times each record reached a state.
//! - [`esm`]: an SQS buffer and its event source mapping for a whole run.
//! - [`ecs`]: launches and stops, and the events ECS sends for them.
//! - [`measure`]: latencies, their quota floors, leftovers.

pub mod ecs;
pub mod esm;
pub mod limits;
pub mod measure;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tasksub_core::decide::Role;
use tasksub_core::settings::{Settings, SweepSettings};
use tasksub_functions::fake::Fake;
use tasksub_functions::sweeper::{RunOptions, Sweeper};
use tasksub_functions::Controller;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::events::{ACCOUNT, REGION};
use crate::world::{settings_map, OUR_CLUSTER};
use ecs::Ecs;
use esm::Buffer;
use limits::Limits;
pub use limits::Tagging;
pub use measure::{Fleet, Leftovers, SweepRun};

/// The sweeper's Lambda timeout, less a margin: a run starts no action after this long.
const SWEEP_BUDGET: Duration = Duration::from_secs(230);
/// How often the scenario looks whether a phase is done.
const CHECK: Duration = Duration::from_secs(5);
/// The longest a phase may take before the run gives up waiting (virtual time).
const PHASE_CAP: Duration = Duration::from_secs(6 * 3600);

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tasks in the fleet (N).
    pub tasks: usize,
    /// N launches spread evenly over this long (scale-out, and again for the deployment).
    pub launch_window: Duration,
    /// Whether CreateQueue with tags counts against the tagging quota.
    pub tagging: Tagging,
    /// Tasks of the crash-looping service.
    pub crash_loop: usize,
    /// How long a crash-looping task runs before it crashes and is replaced.
    pub crash_period: Duration,
    /// The sweeper's schedule.
    pub sweep_every: Duration,
    /// Each event source mapping's `MaximumConcurrency` (the templates: 5).
    pub concurrency: usize,
    /// Records per batch (the templates: 10).
    pub batch_size: usize,
    /// The account's concurrent executions (default quota 1,000).
    pub lambda_concurrency: usize,
    /// Seed of the SDK's jitter.
    pub seed: u64,
}

impl Config {
    /// The deployed design for a fleet of `tasks`: launches within 60 s, 50 tasks crash-looping every
    /// 30 s, sweeps every 5 minutes, MaximumConcurrency 5, batches of 10, 1,000 concurrent executions.
    pub fn deployed(tasks: usize, tagging: Tagging) -> Self {
        Self {
            tasks,
            launch_window: Duration::from_secs(60),
            tagging,
            crash_loop: 50,
            crash_period: Duration::from_secs(30),
            sweep_every: Duration::from_secs(300),
            concurrency: 5,
            batch_size: 10,
            lambda_concurrency: 1000,
            seed: 23,
        }
    }
}

/// The wall clock of the simulation: a fixed start plus tokio's (paused) time since.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    wall: DateTime<Utc>,
}

impl Clock {
    /// Now on the simulated wall clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.wall + chrono::Duration::from_std(self.start.elapsed()).expect("virtual time")
    }
}

/// Everything one run shares.
struct World {
    config: Config,
    clock: Clock,
    fake: Fake,
    limits: Limits,
    settings: Settings,
    lambda: Arc<Semaphore>,
    running: Buffer,
    stopped: Buffer,
    ecs: Ecs,
}

/// Runs the scenario in tokio's paused time (call it from a runtime started paused).
pub async fn run(config: Config) -> Fleet {
    let clock = Clock {
        start: Instant::now(),
        wall: Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
    };
    let fake = Fake::new();
    fake.set_now(clock.now());
    let limits = Limits::new(fake.clone(), config.tagging, config.seed);
    let map = settings_map(&format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"), "records", "tasksub-");
    let settings = Settings::from_map(&map).expect("settings");
    let (running, stopped) = (Buffer::new(), Buffer::new());
    let ecs = Ecs::new(fake.clone(), clock, running.clone(), stopped.clone());
    let w = Arc::new(World {
        lambda: Arc::new(Semaphore::new(config.lambda_concurrency)),
        config,
        clock,
        fake,
        limits,
        settings,
        running,
        stopped,
        ecs,
    });
    let mut background = tokio::task::JoinSet::new();
    start_functions(&w, &mut background);
    background.spawn(w.ecs.clone().run());
    let (done, sweeping) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(true)));
    let sweeps = tokio::spawn(sweep_loop(Arc::clone(&w), Arc::clone(&sweeping)));
    let crash = tokio::spawn(crash_loop(Arc::clone(&w), Arc::clone(&done)));
    let phases = scenario(&w).await;
    done.store(true, Ordering::SeqCst);
    let crashed = crash.await.expect("crash loop");
    wait_until(&w, PHASE_CAP, |w| w.stopped.pending() == 0 && w.running.pending() == 0).await;
    let grace = SweepSettings::default().grace_seconds;
    tokio::time::sleep(Duration::from_secs(grace) + w.config.sweep_every).await;
    sweeping.store(false, Ordering::SeqCst);
    let mut sweep_runs = sweeps.await.expect("sweeps");
    sweep_runs.push(sweep(&w, true).await);
    w.ecs.close();
    w.running.close();
    w.stopped.close();
    while background.join_next().await.is_some() {}
    measure::collect(measure::Inputs {
        config: &w.config,
        fake: &w.fake,
        limits: &w.limits,
        ecs: &w.ecs,
        phases,
        crashed,
        sweeps: sweep_runs,
        buffers: (w.running.stats(), w.stopped.stats()),
        elapsed: clock.start.elapsed(),
    })
}

/// The event functions (`on-task-running` and `on-task-stopped`): behind each buffer's mapping, one
/// warm instance per poller, each with its own controller (clients and settled cache built once per
/// instance, as in a Lambda execution environment).
fn start_functions(w: &Arc<World>, tasks: &mut tokio::task::JoinSet<()>) {
    let (clock, fake, limits, settings) = (w.clock, w.fake.clone(), w.limits.clone(), w.settings.clone());
    let instance = move |role: Role| {
        let controller = Arc::new(Controller::with_ports(settings.clone(), limits.clone(), role));
        let fake = fake.clone();
        move |event: serde_json::Value| {
            let (controller, fake) = (Arc::clone(&controller), fake.clone());
            async move {
                let now = clock.now();
                fake.set_now(now);
                let bytes = serde_json::to_vec(&event).expect("event");
                controller
                    .handle_slice_at(&bytes, now)
                    .await
                    .map(drop)
                    .map_err(|e| e.is_retryable())
            }
        }
    };
    let mapping = (w.config.concurrency, w.config.batch_size);
    w.running
        .start(tasks, mapping, &w.lambda, || instance(Role::Provisioner));
    w.stopped.start(tasks, mapping, &w.lambda, || instance(Role::Teardown));
}

/// Scale-out, then the deployment; the task indexes of each.
async fn scenario(w: &Arc<World>) -> measure::Phases {
    let n = w.config.tasks;
    let old = launch(w, n, Instant::now());
    let old_ids = ids(w, &old);
    wait_until(w, PHASE_CAP, |w| w.limits.all_ready(&old_ids)).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let start = Instant::now();
    let new = launch(w, n, start);
    let step = w.config.launch_window.div_f64(n.max(1) as f64);
    for (i, &task) in old.iter().enumerate() {
        w.ecs
            .stop_at(task, start + step.mul_f64(i as f64) + Duration::from_secs(30));
    }
    let new_ids = ids(w, &new);
    wait_until(w, PHASE_CAP, |w| {
        w.limits.all_ready(&new_ids) && w.limits.all_gone(&old_ids)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    measure::Phases { old, new }
}

fn ids(w: &World, tasks: &[usize]) -> Vec<String> {
    tasks.iter().map(|&t| w.ecs.id(t)).collect()
}

/// `n` launches spread evenly over the launch window from `from`.
fn launch(w: &World, n: usize, from: Instant) -> Vec<usize> {
    let step = w.config.launch_window.div_f64(n.max(1) as f64);
    (0..n)
        .map(|i| w.ecs.launch_at(OUR_CLUSTER, from + step.mul_f64(i as f64)))
        .collect()
}

/// Waits (checking every [`CHECK`]) until `done` holds, at most `cap`.
async fn wait_until(w: &Arc<World>, cap: Duration, done: impl Fn(&World) -> bool) {
    let until = Instant::now() + cap;
    while !done(w) && Instant::now() < until {
        tokio::time::sleep(CHECK).await;
    }
}

/// The crash-looping service until `done`: each slot's task crashes after `crash_period` and is
/// replaced at once. Every task it launched.
async fn crash_loop(w: Arc<World>, done: Arc<AtomicBool>) -> Vec<usize> {
    let (slots, period) = (w.config.crash_loop, w.config.crash_period);
    let mut all = Vec::new();
    if slots == 0 {
        return all;
    }
    let stagger = period.div_f64(slots as f64);
    let mut current: Vec<usize> = (0..slots)
        .map(|i| w.ecs.launch_at(OUR_CLUSTER, Instant::now() + stagger.mul_f64(i as f64)))
        .collect();
    all.extend(&current);
    loop {
        let cycle = Instant::now() + period;
        tokio::time::sleep_until(cycle).await;
        let last = done.load(Ordering::SeqCst);
        for (i, task) in current.iter_mut().enumerate() {
            let at = cycle + stagger.mul_f64(i as f64);
            w.ecs.stop_at(*task, at);
            if !last {
                *task = w.ecs.launch_at(OUR_CLUSTER, at);
                all.push(*task);
            }
        }
        if last {
            tokio::time::sleep(period + Duration::from_secs(ecs::STOPPED_AFTER)).await;
            return all;
        }
    }
}

/// The scheduled sweeper while `sweeping` (through the scenario and the idle tail); its runs.
async fn sweep_loop(w: Arc<World>, sweeping: Arc<AtomicBool>) -> Vec<SweepRun> {
    let mut runs = Vec::new();
    let mut next = Instant::now() + w.config.sweep_every;
    loop {
        tokio::time::sleep_until(next).await;
        if !sweeping.load(Ordering::SeqCst) {
            return runs;
        }
        next += w.config.sweep_every;
        runs.push(sweep(&w, false).await);
    }
}

/// One sweep, as the scheduled Lambda runs it (holding a concurrent execution, within its timeout).
async fn sweep(w: &World, last: bool) -> SweepRun {
    let _slot = w.lambda.acquire().await.expect("lambda concurrency");
    let sweep = SweepSettings {
        grace_seconds: SweepSettings::default().grace_seconds,
        ..Default::default()
    };
    let sweeper = Sweeper::with_ports(w.settings.clone(), sweep, w.limits.clone(), w.fake.clone());
    let started = Instant::now();
    let now = w.clock.now();
    w.fake.set_now(now);
    let options = RunOptions {
        stop_by: Some(started + SWEEP_BUDGET),
        ..Default::default()
    };
    let report = sweeper.run(options, now).await;
    SweepRun::of(started.duration_since(w.clock.start), started.elapsed(), report, last)
}
