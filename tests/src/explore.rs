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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::event::TaskStatus;
use tasksub_core::reconcile::EcsTask;
use tasksub_core::record::State;
use tasksub_core::settings::{Settings, SweepSettings};
use tasksub_functions::fake::Fake;
use tasksub_functions::sweeper::{RunOptions, Sweeper};
use tasksub_functions::Controller;

use crate::events::{Task, ACCOUNT, REGION};
use crate::world::{settings_map, OUR_CLUSTER};
use gated::{lock, Board, Gated, Shared};

/// How the task's life ends in a schedule (what ECS says at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Never stopped: only start events.
    Running,
    /// Stop initiated, STOPPED never delivered.
    Stopping,
    /// Stopped.
    Stopped,
}

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
    /// Every scheduling decision, in order: `label:Op` or `label:CRASH@Op`.
    pub schedule: Vec<String>,
    /// Crashes injected.
    pub crashes: usize,
    /// Calls that took effect but whose answer was lost.
    pub lost_answers: usize,
    /// Invocations that gave up (retries exhausted: Lambda's on-failure destination).
    pub dead_letters: usize,
    /// Invocations that failed (and were retried or dead-lettered).
    pub failures: usize,
    /// Whether the final sweep ran before the last checks (always, now; kept for the report).
    pub swept: bool,
    /// A schedule without crash or failure left an empty, unsubscribed queue until the sweep.
    pub stray_queue: bool,
    /// Violated invariants (empty: the schedule passed).
    pub violations: Vec<String>,
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
        s
    }
}

/// Explorer options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Emulate the conditions before revisions (to show the explorer finds the old race).
    pub legacy: bool,
    /// Most crashes injected per schedule.
    pub max_crashes: usize,
    /// How many topics every task queue subscribes to (1..=3: the home topic, one in another region,
    /// one in another account); each start issues one Subscribe per topic in the same stage.
    pub topics: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            legacy: false,
            max_crashes: 2,
            topics: 1,
        }
    }
}

/// Lambda's async invocation: the first attempt plus two retries.
const ATTEMPTS: usize = 3;
const PREFIX: &str = "tasksub-";

fn settings(topics: usize) -> Settings {
    let all = [
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:fanout"),
        "arn:aws:sns:eu-west-1:123456789012:flags".to_owned(),
        "arn:aws:sns:us-east-1:210987654321:events".to_owned(),
    ];
    let mut m = settings_map(&all[0], "records", PREFIX);
    if topics > 1 {
        m.remove(tasksub_core::settings::vars::TOPIC_ARN);
        m.insert(
            tasksub_core::settings::vars::TOPIC_ARNS.to_owned(),
            all[..topics.min(all.len())].join(","),
        );
    }
    Settings::from_map(&m).expect("settings")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn sweep_settings() -> SweepSettings {
    SweepSettings {
        grace_seconds: 0,
        min_interval_ms: 0,
        max_actions: 1000,
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

fn start(job: &Job, fake: &Fake, board: &Shared, id: usize, topics: usize) -> Fut {
    let ports = Gated::new(fake.clone(), board.clone(), id);
    match job.clone() {
        Job::Event { payload, .. } => Box::pin(async move {
            let c = Controller::with_ports(settings(topics), ports, Role::Any);
            c.handle_json_at(&payload, now())
                .await
                .map(|_| ())
                .map_err(|e| e.is_retryable())
        }),
        Job::Sweep => Box::pin(async move {
            let s = Sweeper::with_ports(settings(topics), sweep_settings(), ports.clone(), ports);
            let options = RunOptions {
                grace_seconds: Some(0),
                ..RunOptions::default()
            };
            // A sweep whose actions failed counts as a failed invocation (the next scheduled sweep is its
            // retry): what a failed action created is only the next sweep's to remove.
            match s.run(options, now()).await {
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

/// Runs one schedule.
pub fn explore_one(seed: u64, options: Options) -> Run {
    let mut rng = fastrand::Rng::with_seed(seed);
    let fate = [Fate::Running, Fate::Stopping, Fate::Stopped, Fate::Stopped][rng.usize(0..4)];
    let task = task_for(seed);
    let fake = Fake::new();
    fake.set_now(now());
    // ECS first says the task runs; at a random decision it moves to its fate (a sweeper pass may see
    // either, and race the stop events with a provisioning of its own).
    fake.put_task(ecs_truth(&task, Fate::Running));
    let mut ecs_moved = fate == Fate::Running;
    let board: Shared = Arc::new(std::sync::Mutex::new(Board {
        legacy: options.legacy,
        ..Board::default()
    }));
    let mut run = Run {
        seed,
        fate,
        schedule: Vec::new(),
        crashes: 0,
        lost_answers: 0,
        dead_letters: 0,
        failures: 0,
        swept: false,
        stray_queue: false,
        violations: Vec::new(),
    };
    // A third of the schedules crash nothing: their invariants must hold without the final sweep.
    let crash_budget = rng.usize(0..=options.max_crashes);
    let mut next_id = 0;
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    for job in jobs_for(&mut rng, &task, fate) {
        live.insert(
            next_id,
            Live {
                fut: start(&job, &fake, &board, next_id, options.topics),
                job,
                attempt: 1,
            },
        );
        next_id += 1;
    }
    let mut cx = Context::from_waker(Waker::noop());
    let mut clock = now();
    loop {
        // Run every invocation to its next gate (or its end).
        let ids: Vec<usize> = live.keys().copied().collect();
        for id in ids {
            if !runnable(&lock(&board), id) {
                continue;
            }
            let inv = live.get_mut(&id).expect("live");
            if let Poll::Ready(result) = inv.fut.as_mut().poll(&mut cx) {
                let inv = live.remove(&id).expect("live");
                if result.is_err() {
                    run.failures += 1;
                }
                if let Err(true) = result {
                    if inv.attempt < ATTEMPTS {
                        let fut = start(&inv.job, &fake, &board, next_id, options.topics);
                        live.insert(
                            next_id,
                            Live {
                                fut,
                                job: inv.job,
                                attempt: inv.attempt + 1,
                            },
                        );
                        next_id += 1;
                    } else {
                        run.dead_letters += 1;
                    }
                } else if let Err(false) = result {
                    run.dead_letters += 1;
                }
            } else {
                assert!(parked(&lock(&board), id), "an invocation is pending outside a gate");
            }
        }
        let waiting: Vec<((usize, usize), &'static str)> = lock(&board).waiting.iter().map(|(k, o)| (*k, *o)).collect();
        if waiting.is_empty() {
            if live.is_empty() {
                break;
            }
            continue;
        }
        if !ecs_moved && rng.u8(0..100) < 5 {
            ecs_moved = true;
            fake.put_task(ecs_truth(&task, fate));
            run.schedule.push(format!("ecs:{fate:?}"));
        }
        if rng.u8(0..100) < 2 {
            // Time passes: SQS's 60 s QueueDeletedRecently block ends, so a late CreateQueue succeeds.
            clock += Duration::seconds(61);
            fake.set_now(clock);
            run.schedule.push("clock+61s".to_owned());
        }
        let (key, op) = waiting[rng.usize(0..waiting.len())];
        let id = key.0;
        let label = live[&id].job.label().to_owned();
        if run.crashes < crash_budget && rng.u8(0..100) < 4 {
            // Crash before this call: the invocation dies; Lambda delivers the event again.
            run.crashes += 1;
            run.schedule.push(format!("{label}:CRASH@{op}"));
            let inv = live.remove(&id).expect("live");
            let mut b = lock(&board);
            b.waiting.retain(|(i, _), _| *i != id);
            b.granted.retain(|(i, _)| *i != id);
            b.lose_answer.retain(|(i, _)| *i != id);
            drop(b);
            let fut = start(&inv.job, &fake, &board, next_id, options.topics);
            live.insert(
                next_id,
                Live {
                    fut,
                    job: inv.job,
                    attempt: inv.attempt,
                },
            );
            next_id += 1;
        } else {
            // Sometimes the call goes through and its answer is lost: the invocation sees a transient
            // error after the effect (and fails, and is redelivered).
            let lose = run.lost_answers < crash_budget && rng.u8(0..100) < 3;
            run.lost_answers += usize::from(lose);
            run.schedule
                .push(format!("{label}:{op}{}", if lose { "(answer lost)" } else { "" }));
            let mut b = lock(&board);
            b.granted.insert(key);
            b.waiting.remove(&key);
            if lose {
                b.lose_answer.insert(key);
            }
        }
    }
    if !ecs_moved {
        fake.put_task(ecs_truth(&task, fate));
    }
    run.violations = std::mem::take(&mut lock(&board).violations);
    if run.crashes == 0 && run.failures == 0 {
        // From the events alone: every invariant of the subscriptions holds, and the only thing a rare
        // interleaving may leave is an empty, unsubscribed queue of a stopped task (a provisioner that
        // lost to a stale READY re-created it after the teardown deleted it, more than 60 s later).
        let before = check(&fake, &task, fate, options.topics);
        run.stray_queue = before.iter().any(|v| v.starts_with("leaked queue"));
        run.violations
            .extend(before.into_iter().filter(|v| !v.starts_with("leaked queue")));
    }
    // Then one sweep, as the scheduled sweeper would run, and every invariant. The sweeper alone repairs
    // what an invocation that crashed or failed after creating something leaves while a teardown
    // tombstoned the record (the redelivered event finds the tombstone).
    run.swept = true;
    sweep_now(&fake, options.topics);
    run.violations.extend(check(&fake, &task, fate, options.topics));
    run
}

/// An invocation waits at no gate (new, or between calls) or was granted one of its calls.
fn runnable(b: &Board, id: usize) -> bool {
    !parked(b, id) || b.granted.iter().any(|(i, _)| *i == id)
}

fn parked(b: &Board, id: usize) -> bool {
    b.waiting.keys().any(|(i, _)| *i == id)
}

fn sweep_now(fake: &Fake, topics: usize) {
    let s = Sweeper::with_ports(settings(topics), sweep_settings(), fake.clone(), fake.clone());
    let options = RunOptions {
        grace_seconds: Some(0),
        ..RunOptions::default()
    };
    let mut f = std::pin::pin!(s.run(options, now()));
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(r) => {
            r.expect("final sweep");
        }
        Poll::Pending => panic!("the fake never waits"),
    }
}

/// The invariants at quiescence (`topics`: how many topics each live task must be subscribed to).
pub fn check(fake: &Fake, task: &Task, fate: Fate, topics: usize) -> Vec<String> {
    let mut v = Vec::new();
    let queue = format!("{PREFIX}{}", task.id);
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}");
    let subs: Vec<String> = fake
        .subscriptions()
        .into_iter()
        .filter(|(_, s)| s.endpoint == queue_arn)
        .map(|(arn, _)| arn)
        .collect();
    let queue_exists = fake.queues().iter().any(|q| q.name == queue);
    let record = fake.record(&task.id);
    let state = record.as_ref().map(|r| r.state);
    match fate {
        Fate::Running => {
            if state != Some(State::Ready) {
                v.push(format!("a task never stopped ends {state:?}, not READY"));
            }
            let mut named: Vec<String> = record
                .as_ref()
                .map(|r| r.subscriptions.values().cloned().collect())
                .unwrap_or_default();
            named.sort();
            let mut listed = subs.clone();
            listed.sort();
            if listed.len() != topics || named != listed {
                v.push(format!(
                    "a live task's subscriptions are {subs:?}, its record names {named:?} ({topics} topics)"
                ));
            }
            if !queue_exists {
                v.push("a live task has no queue".into());
            }
        }
        Fate::Stopping => {
            if state != Some(State::Draining) {
                v.push(format!("a stopping task ends {state:?}, not DRAINING"));
            }
            if !subs.is_empty() {
                v.push(format!("leaked subscriptions of a stopping task: {subs:?}"));
            }
        }
        Fate::Stopped => {
            if state != Some(State::Gone) {
                v.push(format!("a stopped task ends {state:?}, not GONE"));
            }
            if !subs.is_empty() {
                v.push(format!("leaked subscriptions of a stopped task: {subs:?}"));
            }
            if queue_exists {
                v.push("leaked queue of a stopped task".into());
            }
        }
    }
    v
}

/// Totals over many schedules.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Schedules run.
    pub schedules: usize,
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
        s.crashes += run.crashes;
        s.swept += usize::from(run.crashes > 0 || run.failures > 0);
        s.stray_queues += usize::from(run.stray_queue);
        if !run.violations.is_empty() {
            s.failures.push(run);
        }
    }
    s
}
