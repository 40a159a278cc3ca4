//! ECS in the simulation: tasks launched and stopped at given virtual times, each sending the state
//! change events a Fargate task sends (three while it starts, five while it stops) to the buffer its
//! EventBridge rule targets, and held in the fake's ECS for the sweeper.
//!
//! Event times within a task's life (from its launch, and from its stop): PROVISIONING 0 s, PENDING 5 s,
//! RUNNING 15 s; stop initiated 0 s, DEACTIVATING 2 s, STOPPING 5 s, DEPROVISIONING 20 s, STOPPED 30 s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tasksub_core::event::TaskStatus;
use tasksub_core::reconcile::EcsTask;
use tasksub_functions::fake::Fake;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::esm::Buffer;
use super::Clock;
use crate::events::Task;

/// The events of a start: (lastStatus, desiredStatus, version, seconds after launch).
const START: &[(&str, &str, u64, u64)] = &[
    ("PROVISIONING", "RUNNING", 1, 0),
    ("PENDING", "RUNNING", 2, 5),
    ("RUNNING", "RUNNING", 3, 15),
];
/// The events of a stop: (lastStatus, desiredStatus, version, seconds after the stop).
const STOP: &[(&str, &str, u64, u64)] = &[
    ("RUNNING", "STOPPED", 4, 0),
    ("DEACTIVATING", "STOPPED", 5, 2),
    ("STOPPING", "STOPPED", 6, 5),
    ("DEPROVISIONING", "STOPPED", 7, 20),
    ("STOPPED", "STOPPED", 8, 30),
];
/// Seconds from a stop to its STOPPED event.
pub const STOPPED_AFTER: u64 = 30;

/// When a task's events were sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// Its first event (PROVISIONING).
    pub launched: Option<Instant>,
    /// Its stop-initiated event.
    pub stop_initiated: Option<Instant>,
    /// Its STOPPED event.
    pub stopped: Option<Instant>,
    /// Its launch on the wall clock (ECS's `createdAt`).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One scheduled event: a task and its step (index into START, then STOP).
#[derive(Debug, Clone, Copy)]
struct Step {
    task: usize,
    step: usize,
}

#[derive(Default)]
struct Timeline {
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    steps: HashMap<u64, Step>,
    seq: u64,
    tasks: Vec<Task>,
    sent: Vec<Sent>,
    closed: bool,
}

/// ECS. Cheap to clone.
#[derive(Clone)]
pub struct Ecs {
    timeline: Arc<Mutex<Timeline>>,
    wake: Arc<Notify>,
    fake: Fake,
    clock: Clock,
    running: Buffer,
    stopped: Buffer,
}

impl Ecs {
    /// ECS sending to `running` and `stopped` (the two rules' buffers), holding tasks in `fake`.
    pub fn new(fake: Fake, clock: Clock, running: Buffer, stopped: Buffer) -> Self {
        Self {
            timeline: Arc::default(),
            wake: Arc::new(Notify::new()),
            fake,
            clock,
            running,
            stopped,
        }
    }

    /// A new task in `cluster`, launched at `at`; its index.
    pub fn launch_at(&self, cluster: &str, at: Instant) -> usize {
        let mut t = self.timeline.lock().unwrap();
        t.tasks.push(Task::new(cluster));
        t.sent.push(Sent::default());
        let task = t.tasks.len() - 1;
        for (step, s) in START.iter().enumerate() {
            let when = at + Duration::from_secs(s.3);
            schedule(&mut t, when, Step { task, step });
        }
        drop(t);
        self.wake.notify_one();
        task
    }

    /// Task `task` stops at `at` (the scheduler's stop, or a crash).
    pub fn stop_at(&self, task: usize, at: Instant) {
        let mut t = self.timeline.lock().unwrap();
        for (i, s) in STOP.iter().enumerate() {
            let when = at + Duration::from_secs(s.3);
            schedule(
                &mut t,
                when,
                Step {
                    task,
                    step: START.len() + i,
                },
            );
        }
        drop(t);
        self.wake.notify_one();
    }

    /// The task's ID.
    pub fn id(&self, task: usize) -> String {
        self.timeline.lock().unwrap().tasks[task].id.clone()
    }

    /// When each task's events were sent, by task index.
    pub fn sent(&self) -> Vec<Sent> {
        self.timeline.lock().unwrap().sent.clone()
    }

    /// Every task's ID, by index.
    pub fn ids(&self) -> Vec<String> {
        self.timeline
            .lock()
            .unwrap()
            .tasks
            .iter()
            .map(|t| t.id.clone())
            .collect()
    }

    /// No more launches or stops: [`Ecs::run`] ends once every scheduled event is sent.
    pub fn close(&self) {
        self.timeline.lock().unwrap().closed = true;
        self.wake.notify_one();
    }

    /// Sends every scheduled event at its time, until closed and done.
    pub async fn run(self) {
        loop {
            let now = Instant::now();
            let (due, next, closed) = {
                let mut t = self.timeline.lock().unwrap();
                let mut due = Vec::new();
                while let Some(Reverse((at, seq))) = t.due.peek().copied() {
                    if at > now {
                        break;
                    }
                    t.due.pop();
                    let step = t.steps.remove(&seq).expect("scheduled step");
                    due.push((step, t.tasks[step.task].clone()));
                }
                (due, t.due.peek().map(|Reverse((at, _))| *at), t.closed)
            };
            for (step, task) in due {
                self.send(step, &task);
            }
            match next {
                None if closed => return,
                None => self.wake.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
            }
        }
    }

    /// Updates ECS's view of the task and sends the step's event to its rule's buffer.
    fn send(&self, step: Step, task: &Task) {
        let stopping = step.step >= START.len();
        let (last, desired, version, _) = if stopping {
            STOP[step.step - START.len()]
        } else {
            START[step.step]
        };
        let now = Instant::now();
        let wall = self.clock.now();
        let created_at = {
            let mut t = self.timeline.lock().unwrap();
            let sent = &mut t.sent[step.task];
            match (last, desired) {
                ("PROVISIONING", _) => (sent.launched, sent.created_at) = (Some(now), Some(wall)),
                ("RUNNING", "STOPPED") => sent.stop_initiated = Some(now),
                ("STOPPED", _) => sent.stopped = Some(now),
                _ => {}
            }
            sent.created_at.unwrap_or(wall)
        };
        if step.step == 0 || stopping {
            self.fake
                .put_task(ecs_task(task, (last, desired, version), created_at, wall));
        }
        let event = task.event_at(last, desired, version, wall);
        if stopping { &self.stopped } else { &self.running }.send(event);
    }
}

fn schedule(t: &mut Timeline, at: Instant, step: Step) {
    t.seq += 1;
    let seq = t.seq;
    t.due.push(Reverse((at, seq)));
    t.steps.insert(seq, step);
}

/// The task as DescribeTasks shows it after this event.
fn ecs_task(
    task: &Task,
    (last, desired, version): (&str, &str, u64),
    created_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> EcsTask {
    let status = |s: &str| TaskStatus::from(s.to_owned());
    let stopped = last == "STOPPED";
    EcsTask {
        task_arn: task.arn.clone(),
        cluster_arn: task.cluster.clone(),
        group: task.group.clone(),
        last_status: status(last),
        desired_status: status(desired),
        version: Some(version),
        created_at: Some(created_at),
        stopping_at: (desired == "STOPPED").then_some(now),
        stopped_at: stopped.then_some(now),
    }
}
