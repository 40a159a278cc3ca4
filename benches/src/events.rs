//! ECS task state change events as EventBridge delivers them (the same shape the tests use).

use chrono::Utc;
use serde_json::{json, Value};

use crate::{ACCOUNT, REGION};

/// The cluster every benchmark task runs in.
pub const CLUSTER: &str = "prod";

/// The cluster's ARN.
pub fn cluster_arn() -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}")
}

/// A task with a fresh 32-hex-character ID.
#[derive(Debug, Clone)]
pub struct Task {
    /// Task ARN (new format).
    pub arn: String,
    /// Task ID.
    pub id: String,
}

impl Task {
    /// A new task, unique in this process and run.
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(1);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
        let id = format!("{:016x}{:08x}{:08x}", nanos, std::process::id(), n);
        Self {
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{id}"),
            id,
        }
    }

    /// An `ECS Task State Change` event now.
    pub fn event(&self, last: &str, desired: &str, version: u64) -> Value {
        let now = Utc::now();
        let mut detail = json!({
            "taskArn": self.arn,
            "clusterArn": cluster_arn(),
            "lastStatus": last,
            "desiredStatus": desired,
            "version": version,
            "launchType": "FARGATE",
            "group": "service:orders",
            "taskDefinitionArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/app:1"),
            "containers": [{"name": "app", "lastStatus": last}],
            "updatedAt": now.to_rfc3339(),
        });
        if desired == "STOPPED" {
            detail["stoppedReason"] = json!("Scaling activity initiated by deployment");
            detail["stopCode"] = json!("ServiceSchedulerInitiated");
        }
        json!({
            "version": "0",
            "id": format!("{}-{version}-{last}", self.id),
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": ACCOUNT,
            "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": REGION,
            "resources": [self.arn],
            "detail": detail,
        })
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
