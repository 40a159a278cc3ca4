//! ECS task state change events as EventBridge delivers them: the tests' own builder
//! (`tasksub_tests::events`), so the benchmarks replay exactly what the scenario suite replays.

use serde_json::Value;

use crate::{ACCOUNT, REGION};

/// The cluster every benchmark task runs in.
pub const CLUSTER: &str = "prod";

/// The cluster's ARN.
pub fn cluster_arn() -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}")
}

/// A task with a fresh 32-hex-character ID in [`CLUSTER`], and the three events the benchmarks use.
#[derive(Debug, Clone)]
pub struct Task {
    inner: tasksub_tests::events::Task,
    /// Task ARN (new format).
    pub arn: String,
    /// Task ID.
    pub id: String,
}

impl Task {
    /// A new task, unique in this process and run.
    pub fn new() -> Self {
        let inner = tasksub_tests::events::Task::new(CLUSTER);
        Self {
            arn: inner.arn.clone(),
            id: inner.id.clone(),
            inner,
        }
    }

    /// An `ECS Task State Change` event now.
    pub fn event(&self, last: &str, desired: &str, version: u64) -> Value {
        self.inner.event(last, desired, version)
    }

    /// The event both designs provision on: RUNNING / desired RUNNING.
    pub fn running(&self) -> Value {
        self.event("RUNNING", "RUNNING", 3)
    }

    /// The first stop event ECS sends: RUNNING / desired STOPPED.
    pub fn stop_initiated(&self) -> Value {
        self.event("RUNNING", "STOPPED", 4)
    }

    /// The event both designs tear down on: STOPPED / desired STOPPED.
    pub fn stopped(&self) -> Value {
        self.event("STOPPED", "STOPPED", 8)
    }
}

impl Default for Task {
    fn default() -> Self {
        Self::new()
    }
}
