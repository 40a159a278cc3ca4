//! ECS task state change events, built the way EventBridge delivers them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The account moto uses.
pub const ACCOUNT: &str = "123456789012";
/// The region of every test.
pub const REGION: &str = "us-east-1";

/// A cluster ARN in the test account.
pub fn cluster_arn(name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}")
}

/// A fresh task: a new-format ARN with a 32-hex-char ID unique to this process.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task ARN.
    pub arn: String,
    /// The task ID.
    pub id: String,
    /// The cluster ARN.
    pub cluster: String,
    /// The task group.
    pub group: Option<String>,
}

impl Task {
    /// A new task in `cluster`.
    pub fn new(cluster: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(1);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let id = format!("{:016x}{:08x}{:08x}", nanos, std::process::id(), n);
        Self {
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{id}"),
            id,
            cluster: cluster_arn(cluster),
            group: Some("service:orders".to_owned()),
        }
    }

    /// An `ECS Task State Change` for this task at `time`.
    pub fn event_at(&self, last: &str, desired: &str, version: u64, time: DateTime<Utc>) -> Value {
        let mut detail = json!({
            "taskArn": self.arn,
            "clusterArn": self.cluster,
            "lastStatus": last,
            "desiredStatus": desired,
            "version": version,
            "launchType": "FARGATE",
            "taskDefinitionArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/app:1"),
            "containers": [{"name": "app", "lastStatus": last}],
            "updatedAt": time.to_rfc3339(),
        });
        if let Some(g) = &self.group {
            detail["group"] = json!(g);
        }
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
            "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": REGION,
            "resources": [self.arn],
            "detail": detail,
        })
    }

    /// An event now.
    pub fn event(&self, last: &str, desired: &str, version: u64) -> Value {
        self.event_at(last, desired, version, Utc::now())
    }

    /// The whole life of a Fargate task, in order: the start events then the stop events.
    pub fn lifecycle(&self) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
        let start = vec![
            self.event("PROVISIONING", "RUNNING", 1),
            self.event("PENDING", "RUNNING", 2),
            self.event("RUNNING", "RUNNING", 3),
        ];
        let stop_initiated = vec![
            self.event("RUNNING", "STOPPED", 4),
            self.event("DEACTIVATING", "STOPPED", 5),
            self.event("STOPPING", "STOPPED", 6),
            self.event("DEPROVISIONING", "STOPPED", 7),
        ];
        let stopped = vec![self.event("STOPPED", "STOPPED", 8)];
        (start, stop_initiated, stopped)
    }
}

/// The public sample events shipped in `fixtures/ecs-events`, by file name.
pub fn public_samples() -> Vec<(String, Value)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/ecs-events");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/ecs-events")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (
                name,
                serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json"),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
