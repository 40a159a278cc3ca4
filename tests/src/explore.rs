//! The interleaving explorer: several invocations for one task (duplicate starts, stop-initiated,
//! STOPPED, a sweeper pass) run the real handler, executor and sweeper code on the in-memory fake, while
//! a seeded scheduler decides, at every port call, which invocation proceeds, may let the call take
//! effect and lose its answer (a transient error after the effect), and may crash the chosen
//! one instead (its call never happens; Lambda redelivers the event). Retryable failures are redelivered
//! as Lambda's async retries would be. At quiescence the invariants of `tasksub_core::record` are
//! checked. Everything is a function of the seed: a failure prints the seed and the schedule, and
//! [`explore_one`] replays it.
//!
//! The scheduler may also let 61 s pass on the fake's clock at any decision, so a CreateQueue after a
//! DeleteQueue meets QueueDeletedRecently in some schedules and succeeds in others.
//!
//! The futures are polled by hand with a no-op waker: the fake answers at once, so an invocation is
//! pending only at a gate, and the scheduler alone decides the order.

pub mod gated;
pub mod scenario;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::event::TaskStatus;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::EcsTask;
use tasksub_core::settings::{Settings, SweepSettings};
use tasksub_functions::executor::legacy::{self, Legacy};
use tasksub_functions::fake::Fake;
use tasksub_functions::ports::{Queues, Subscriptions};
use tasksub_functions::sweeper::{RunOptions, Sweeper};
use tasksub_functions::Controller;

use crate::events::{Task, ACCOUNT, REGION};
use crate::world::OUR_CLUSTER;
use gated::{lock, Board, Gated, OldPorts, Shared};
pub use scenario::Fate;
use scenario::{start as now, universe, Deploy, Versions, PREFIX};

/// One invocation's input.
#[derive(Debug, Clone)]
enum Job {
    Event { label: String, payload: Value },
    Sweep,
}

impl Job {
    fn label(&self) -> &str {
        match self {
            Self::Event { label, .. } => label,
            Self::Sweep => "sweep",
        }
    }
}

/// What one schedule did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The seed.
    pub seed: u64,
    /// How the task ends.
    pub fate: Fate,
    /// Every scheduling decision, in order: `label:Op`, `label:CRASH@Op`, and the other actors' moves.
    pub schedule: Vec<String>,
    /// Crashes injected.
    pub crashes: usize,
    /// Calls that took effect but whose answer was lost.
    pub lost_answers: usize,
    /// Invocations that gave up (retries exhausted: Lambda's on-failure destination).
    pub dead_letters: usize,
    /// Invocations that failed (and were retried or dead-lettered).
    pub failures: usize,
    /// Moves of other actors (deploys, topic owners, operators).
    pub moves: usize,
    /// The settings changed during the schedule.
    pub settings_changed: bool,
    /// Whether the final sweep ran before the last checks (always, now; kept for the report).
    pub swept: bool,
    /// A schedule without crash or failure left an empty, unsubscribed queue until the sweep.
    pub stray_queue: bool,
    /// Violated invariants (empty: the schedule passed).
    pub violations: Vec<String>,
    /// What existed at the end: the record and the task's subscriptions (for the failure report).
    pub end: String,
}

impl Run {
    /// The failure report: seed, fate and schedule.
    pub fn report(&self) -> String {
        let mut s = format!(
            "seed {} ({:?}): {}\n  schedule:",
            self.seed,
            self.fate,
            self.violations.join("; ")
        );
        for (i, step) in self.schedule.iter().enumerate() {
            let _ = write!(s, "{}{}", if i % 8 == 0 { "\n    " } else { " " }, step);
        }
        let _ = write!(s, "\n  at the end: {}", self.end);
        s
    }
}

/// Old behaviours switched back in a test-only way, to show the explorer finds what they broke.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Old {
    /// In the ports: no intents, adoption as is, no generations.
    pub ports: OldPorts,
    /// In the executor: a refusal fails the step; a teardown subscribes to find a pending subscription.
    pub executor: Legacy,
}

/// Explorer options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Emulate the conditions before revisions (to show the explorer finds the old race).
    pub legacy: bool,
    /// Most crashes injected per schedule.
    pub max_crashes: usize,
    /// How many topics every task queue subscribes to (1..=3: the home topic, one in another region,
    /// one in another account) when the settings never change.
    pub topics: usize,
    /// The other actors: a settings change deployed mid-schedule (two versions live at once), topic
    /// owners refusing (and lifting it), unsubscribing the task or re-creating the topic, an operator
    /// deleting the queue, an unreadable bystander record.
    pub actors: bool,
    /// Old behaviours switched back on.
    pub old: Old,
    /// The chance, in percent, that the invocation granted a call crashes before it instead (while the
    /// schedule's crash budget lasts).
    pub crash_percent: u8,
    /// The chance, in percent at each scheduling decision, that a deploy moves on (old only → both →
    /// new only).
    pub deploy_percent: u8,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            legacy: false,
            max_crashes: 2,
            topics: 1,
            actors: false,
            old: Old::default(),
            crash_percent: 4,
            deploy_percent: 3,
        }
    }
}

/// Lambda's async invocation: the first attempt plus two retries.
const ATTEMPTS: usize = 3;
/// Most moves of other actors in one schedule.
const MAX_MOVES: usize = 4;

fn sweep_settings() -> SweepSettings {
    SweepSettings {
        grace_seconds: 0,
        min_interval_ms: 0,
        max_actions: 1000,
        audit_per_run: 25,
        ..SweepSettings::default()
    }
}

/// A task ID in ECS's format, from the seed.
fn task_for(seed: u64) -> Task {
    let mut t = Task::new(OUR_CLUSTER);
    let id = format!("{:016x}{:016x}", seed, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    t.arn = t.arn.replace(&t.id, &id);
    t.id = id;
    t
}

fn ecs_truth(task: &Task, fate: Fate) -> EcsTask {
    let (last, desired) = match fate {
        Fate::Running => (TaskStatus::Running, TaskStatus::Running),
        Fate::Stopping => (TaskStatus::Running, TaskStatus::Stopped),
        Fate::Stopped => (TaskStatus::Stopped, TaskStatus::Stopped),
    };
    EcsTask {
        task_arn: task.arn.clone(),
        cluster_arn: task.cluster.clone(),
        group: task.group.clone(),
        last_status: last,
        desired_status: desired,
        version: Some(9),
        created_at: Some(now() - Duration::hours(1)),
        stopping_at: (fate != Fate::Running).then(|| now() - Duration::minutes(30)),
        stopped_at: (fate == Fate::Stopped).then(|| now() - Duration::minutes(20)),
    }
}

/// The jobs of one schedule, from the seed.
fn jobs_for(rng: &mut fastrand::Rng, task: &Task, fate: Fate) -> Vec<Job> {
    let ev = |label: &str, last: &str, desired: &str, version: u64| Job::Event {
        label: label.to_owned(),
        payload: task.event_at(last, desired, version, now()),
    };
    let mut jobs = vec![ev("prov", "PROVISIONING", "RUNNING", 1)];
    for i in 0..rng.usize(1..=2) {
        jobs.push(ev(&format!("run{i}"), "RUNNING", "RUNNING", 3));
    }
    if fate != Fate::Running {
        for i in 0..rng.usize(1..=2) {
            jobs.push(ev(&format!("stop{i}"), "RUNNING", "STOPPED", 4));
        }
    }
    if fate == Fate::Stopped {
        for i in 0..rng.usize(1..=2) {
            jobs.push(ev(&format!("stopped{i}"), "STOPPED", "STOPPED", 6));
        }
    }
    if rng.u8(0..10) < 3 {
        jobs.push(Job::Sweep);
    }
    jobs
}

type Fut = Pin<Box<dyn Future<Output = Result<(), bool>>>>;

fn start(job: &Job, fake: &Fake, board: &Shared, id: usize, settings: Settings, at: DateTime<Utc>) -> Fut {
    let ports = Gated::new(fake.clone(), board.clone(), id);
    match job.clone() {
        Job::Event { payload, .. } => Box::pin(async move {
            let c = Controller::with_ports(settings, ports, Role::Any);
            c.handle_json_at(&payload, at)
                .await
                .map(|_| ())
                .map_err(|e| e.is_retryable())
        }),
        Job::Sweep => Box::pin(async move {
            let s = Sweeper::with_ports(settings, sweep_settings(), ports.clone(), ports);
            let options = RunOptions {
                grace_seconds: Some(0),
                ..RunOptions::default()
            };
            // A sweep whose actions failed counts as a failed invocation (the next scheduled sweep is its
            // retry): what a failed action created is only the next sweep's to remove.
            match s.run(options, at).await {
                Ok(report) if report.errors == 0 => Ok(()),
                _ => Err(true),
            }
        }),
    }
}

struct Live {
    job: Job,
    attempt: usize,
    fut: Fut,
}

/// One schedule's moving parts.
struct Sim<'a> {
    rng: fastrand::Rng,
    options: Options,
    fake: Fake,
    board: Shared,
    task: Task,
    versions: Versions,
    deploy: Deploy,
    clock: DateTime<Utc>,
    next_id: usize,
    live: BTreeMap<usize, Live>,
    run: &'a mut Run,
}

impl Sim<'_> {
    /// Starts (or restarts) a job as a new invocation, on the version the deploy gives it.
    fn launch(&mut self, job: Job, attempt: usize) {
        let newest = match self.deploy {
            Deploy::Before => false,
            Deploy::Both => self.rng.bool(),
            Deploy::After => true,
        };
        let settings = if newest { &self.versions.new } else { &self.versions.old };
        let id = self.next_id;
        self.next_id += 1;
        let runs_new = newest || !self.versions.change();
        lock(&self.board).versions.insert(id, (settings.generation, runs_new));
        let fut = start(&job, &self.fake, &self.board, id, settings.clone(), self.clock);
        self.live.insert(id, Live { job, attempt, fut });
    }

    /// Moves the deploy on: both versions live, then only the new one.
    fn deploy(&mut self, to: Deploy) {
        self.deploy = to;
        let new = &self.versions.new;
        let mut b = lock(&self.board);
        b.newest = (new.generation, new.topic_arns().map(str::to_owned).collect());
        b.deployed = true;
        drop(b);
        self.run.schedule.push(format!("deploy:{to:?}"));
    }

    /// Maybe one move of another actor: the deploy, a topic owner, an operator.
    fn other_actors(&mut self) {
        if self.versions.change() {
            match self.deploy {
                Deploy::Before if self.rng.u8(0..100) < self.options.deploy_percent => self.deploy(Deploy::Both),
                Deploy::Both if self.rng.u8(0..100) < self.options.deploy_percent => self.deploy(Deploy::After),
                _ => {}
            }
        }
        if !self.options.actors || self.run.moves >= MAX_MOVES || self.rng.u8(0..100) >= 3 {
            return;
        }
        self.run.moves += 1;
        let topics = universe();
        let t = topics[self.rng.usize(0..topics.len())].clone();
        let queue = format!("{PREFIX}{}", self.task.id);
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}");
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut now = |f: Pin<&mut dyn Future<Output = ()>>| {
            assert!(f.poll(&mut cx).is_ready(), "the fake never waits");
        };
        let name = t.rsplit(':').next().unwrap_or_default().to_owned();
        let what = match self.rng.u8(0..6) {
            0 => {
                let kind = if self.rng.bool() {
                    ErrorKind::AccessDenied
                } else {
                    ErrorKind::Quota
                };
                self.fake.refuse_topic(&t, kind);
                format!("owner:refuse({name},{})", kind.as_str())
            }
            1 => {
                self.fake.admit_topic(&t);
                format!("owner:admit({name})")
            }
            2 => {
                let found = self
                    .fake
                    .subscriptions()
                    .into_iter()
                    .find(|(_, s)| s.endpoint == queue_arn && s.topic_arn == t);
                if let Some((arn, _)) = found {
                    now(std::pin::pin!(async {
                        let _ = self.fake.unsubscribe(&arn).await;
                    }));
                }
                format!("owner:unsubscribe({name})")
            }
            3 => {
                self.fake.delete_topic(&t);
                if self.rng.bool() {
                    self.fake.create_topic(&t);
                    format!("owner:recreate({name})")
                } else {
                    format!("owner:delete({name})")
                }
            }
            4 => {
                self.fake.create_topic(&t);
                format!("owner:create({name})")
            }
            _ => {
                let url = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue}");
                now(std::pin::pin!(async {
                    let _ = self.fake.delete(&url).await;
                }));
                "operator:delete-queue".to_owned()
            }
        };
        self.run.schedule.push(what);
    }
}

/// Runs one schedule.
pub fn explore_one(seed: u64, options: Options) -> Run {
    let mut rng = fastrand::Rng::with_seed(seed);
    let fate = [Fate::Running, Fate::Stopping, Fate::Stopped, Fate::Stopped][rng.usize(0..4)];
    let task = task_for(seed);
    let versions = if options.actors {
        Versions::drawn(&mut rng)
    } else {
        Versions::fixed(options.topics)
    };
    let fake = Fake::new();
    fake.set_now(now());
    // ECS first says the task runs; at a random decision it moves to its fate (a sweeper pass may see
    // either, and race the stop events with a provisioning of its own).
    fake.put_task(ecs_truth(&task, Fate::Running));
    if options.actors && rng.u8(0..4) == 0 {
        // Someone edited another task's record by hand: no sweep may stop for it.
        fake.insert_malformed(
            "ffffffffffffffffffffffffffffffff",
            "malformed record item: attribute state",
        );
    }
    let board: Shared = Arc::new(std::sync::Mutex::new(Board {
        legacy: options.legacy,
        old: options.old.ports,
        newest: (
            versions.old.generation,
            versions.old.topic_arns().map(str::to_owned).collect(),
        ),
        live_task: fate == Fate::Running,
        ..Board::default()
    }));
    legacy::set(options.old.executor);
    let mut run = Run {
        seed,
        fate,
        schedule: Vec::new(),
        crashes: 0,
        lost_answers: 0,
        dead_letters: 0,
        failures: 0,
        moves: 0,
        settings_changed: versions.change(),
        swept: false,
        stray_queue: false,
        violations: Vec::new(),
        end: String::new(),
    };
    // A third of the schedules crash nothing: their invariants must hold without the final sweep.
    let crash_budget = rng.usize(0..=options.max_crashes);
    let jobs = jobs_for(&mut rng, &task, fate);
    let mut sim = Sim {
        rng,
        options,
        fake: fake.clone(),
        board: board.clone(),
        task: task.clone(),
        versions: versions.clone(),
        deploy: Deploy::Before,
        clock: now(),
        next_id: 0,
        live: BTreeMap::new(),
        run: &mut run,
    };
    for job in jobs {
        sim.launch(job, 1);
    }
    let mut ecs_moved = fate == Fate::Running;
    schedule(&mut sim, crash_budget, &mut ecs_moved);
    if !ecs_moved {
        fake.put_task(ecs_truth(&task, fate));
    }
    if versions.change() && sim.deploy != Deploy::After {
        sim.deploy(Deploy::After);
    }
    drop(sim);
    run.violations = std::mem::take(&mut lock(&board).violations);
    let answered = lock(&board).answered.clone();
    if run.crashes == 0 && run.failures == 0 && run.moves == 0 && !run.settings_changed {
        // From the events alone: every invariant of the subscriptions holds, and the only thing a rare
        // interleaving may leave is an empty, unsubscribed queue of a stopped task (a provisioner that
        // lost to a stale READY re-created it after the teardown deleted it, more than 60 s later).
        let before = scenario::check(&fake, &task, fate, &versions.new, &answered);
        run.stray_queue = before.iter().any(|v| v.starts_with("leaked queue"));
        run.violations
            .extend(before.into_iter().filter(|v| !v.starts_with("leaked queue")));
    }
    // Then the world stops changing, and one sweep under the final settings, as the scheduled sweeper
    // would run, once every refused topic's backoff and every grace has passed. The sweeper alone repairs
    // what others broke, and what an invocation that crashed or failed after creating something leaves
    // while a teardown tombstoned the record.
    run.swept = true;
    let late = scenario::final_clock(now());
    fake.set_now(late);
    sweep_now(&fake, &versions.new, late, options.old.ports);
    let answered = lock(&board).answered.clone();
    run.violations
        .extend(scenario::check(&fake, &task, fate, &versions.new, &answered));
    if !run.violations.is_empty() {
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{PREFIX}{}", task.id);
        let subs: Vec<String> = fake
            .subscriptions()
            .into_iter()
            .filter(|(_, s)| s.endpoint == queue_arn)
            .map(|(arn, s)| format!("{arn} {:?}", s.attributes))
            .collect();
        let record = serde_json::to_string(&fake.record(&task.id)).unwrap_or_default();
        let topics = |s: &Settings| s.topic_arns().collect::<Vec<_>>().join(",");
        let trace = lock(&board).trace.join("\n    ");
        run.end = format!(
            "record {record}; subscriptions {subs:?}; settings old [{}] gen {} → new [{}] gen {}; refusing {:?}\n  trace:\n    {trace}",
            topics(&versions.old),
            versions.old.generation,
            topics(&versions.new),
            versions.new.generation,
            scenario::refusing(&fake)
        );
    }
    legacy::set(Legacy::default());
    run
}

/// The scheduling loop: until every invocation has ended.
fn schedule(sim: &mut Sim<'_>, crash_budget: usize, ecs_moved: &mut bool) {
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // Run every invocation to its next gate (or its end).
        let ids: Vec<usize> = sim.live.keys().copied().collect();
        for id in ids {
            if !runnable(&lock(&sim.board), id) {
                continue;
            }
            let inv = sim.live.get_mut(&id).expect("live");
            if let Poll::Ready(result) = inv.fut.as_mut().poll(&mut cx) {
                let inv = sim.live.remove(&id).expect("live");
                if result.is_err() {
                    sim.run.failures += 1;
                }
                match result {
                    Err(true) if inv.attempt < ATTEMPTS => sim.launch(inv.job, inv.attempt + 1),
                    Err(_) => sim.run.dead_letters += 1,
                    Ok(()) => {}
                }
            } else {
                assert!(parked(&lock(&sim.board), id), "an invocation is pending outside a gate");
            }
        }
        let waiting: Vec<((usize, usize), &'static str)> =
            lock(&sim.board).waiting.iter().map(|(k, o)| (*k, *o)).collect();
        if waiting.is_empty() {
            if sim.live.is_empty() {
                break;
            }
            continue;
        }
        if !*ecs_moved && sim.rng.u8(0..100) < 5 {
            *ecs_moved = true;
            sim.fake.put_task(ecs_truth(&sim.task, sim.run.fate));
            sim.run.schedule.push(format!("ecs:{:?}", sim.run.fate));
        }
        if sim.rng.u8(0..100) < 2 {
            // Time passes: SQS's 60 s QueueDeletedRecently block ends, so a late CreateQueue succeeds.
            sim.clock += Duration::seconds(61);
            sim.fake.set_now(sim.clock);
            sim.run.schedule.push("clock+61s".to_owned());
        }
        sim.other_actors();
        let (key, op) = waiting[sim.rng.usize(0..waiting.len())];
        let id = key.0;
        let label = sim.live[&id].job.label().to_owned();
        if sim.run.crashes < crash_budget && sim.rng.u8(0..100) < sim.options.crash_percent {
            // Crash before this call: the invocation dies; Lambda delivers the event again.
            sim.run.crashes += 1;
            sim.run.schedule.push(format!("{label}:CRASH@{op}"));
            let inv = sim.live.remove(&id).expect("live");
            let mut b = lock(&sim.board);
            b.waiting.retain(|(i, _), _| *i != id);
            b.granted.retain(|(i, _)| *i != id);
            b.lose_answer.retain(|(i, _)| *i != id);
            drop(b);
            sim.launch(inv.job, inv.attempt);
        } else {
            // Sometimes the call goes through and its answer is lost: the invocation sees a transient
            // error after the effect (and fails, and is redelivered).
            let lose = sim.run.lost_answers < crash_budget && sim.rng.u8(0..100) < 3;
            sim.run.lost_answers += usize::from(lose);
            sim.run
                .schedule
                .push(format!("{label}#{id}:{op}{}", if lose { "(answer lost)" } else { "" }));
            let mut b = lock(&sim.board);
            b.granted.insert(key);
            b.waiting.remove(&key);
            if lose {
                b.lose_answer.insert(key);
            }
        }
    }
}

/// An invocation waits at no gate (new, or between calls) or was granted one of its calls.
fn runnable(b: &Board, id: usize) -> bool {
    !parked(b, id) || b.granted.iter().any(|(i, _)| *i == id)
}

fn parked(b: &Board, id: usize) -> bool {
    b.waiting.keys().any(|(i, _)| *i == id)
}

/// One sweep run to its end at once (every gate open), with the same old behaviours as the schedule.
fn sweep_now(fake: &Fake, settings: &Settings, at: DateTime<Utc>, old: OldPorts) {
    let board: Shared = Arc::new(std::sync::Mutex::new(Board {
        free: true,
        old,
        ..Board::default()
    }));
    let ports = Gated::new(fake.clone(), board, usize::MAX);
    let s = Sweeper::with_ports(settings.clone(), sweep_settings(), ports.clone(), ports);
    let options = RunOptions {
        grace_seconds: Some(0),
        ..RunOptions::default()
    };
    let mut f = std::pin::pin!(s.run(options, at));
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(r) => {
            r.expect("final sweep");
        }
        Poll::Pending => panic!("the fake never waits"),
    }
}

/// The set of topics a settings version wants.
pub fn topics_of(s: &Settings) -> BTreeSet<String> {
    s.topic_arns().map(str::to_owned).collect()
}

/// Totals over many schedules.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Schedules run.
    pub schedules: usize,
    /// Schedules whose settings changed (a deploy mid-schedule).
    pub settings_changes: usize,
    /// Moves of other actors in all.
    pub moves: usize,
    /// Scheduling decisions made in all.
    pub decisions: usize,
    /// Crashes injected in all.
    pub crashes: usize,
    /// Schedules with crashes or failures (their checks come after the final sweep only).
    pub swept: usize,
    /// Crash- and failure-free schedules that left an empty, unsubscribed queue until the sweep.
    pub stray_queues: usize,
    /// The failing runs.
    pub failures: Vec<Run>,
}

/// Runs `count` schedules from `first_seed` on.
pub fn explore(first_seed: u64, count: usize, options: Options) -> Summary {
    let mut s = Summary::default();
    for seed in first_seed..first_seed + count as u64 {
        let run = explore_one(seed, options);
        s.schedules += 1;
        s.decisions += run.schedule.len();
        s.settings_changes += usize::from(run.settings_changed);
        s.moves += run.moves;
        s.crashes += run.crashes;
        s.swept += usize::from(run.crashes > 0 || run.failures > 0);
        s.stray_queues += usize::from(run.stray_queue);
        if !run.violations.is_empty() {
            s.failures.push(run);
        }
    }
    s
}
