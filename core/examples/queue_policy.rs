//! Prints the policy each task queue is created with, for the settings in the environment (the same
//! variables as the functions) and the task IDs given as arguments: one JSON object, task ID → queue ARN and
//! policy document. `infra/iamsim` evaluates these policies with AWS's request evaluation logic.
//!
//! ```text
//! TASKSUB_TOPIC_ARNS=... TASKSUB_ACCOUNT_ID=... AWS_REGION=... TASKSUB_TABLE=... TASKSUB_CLUSTERS=... \
//!   cargo run -q -p tasksub-core --example queue_policy -- 0123456789abcdef0123456789abcdef
//! ```

use tasksub_core::naming::{queue_arn, QueueName, TaskId};
use tasksub_core::policy::queue_policy;
use tasksub_core::settings::Settings;

fn main() {
    let settings = match Settings::from_lookup(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("queue_policy: {e}");
            std::process::exit(2);
        }
    };
    let mut out = serde_json::Map::new();
    for id in std::env::args().skip(1) {
        let task = TaskId::new(&id).unwrap_or_else(|e| {
            eprintln!("queue_policy: {e}");
            std::process::exit(2);
        });
        let name = QueueName::for_task(&settings.queue.prefix, &task, settings.queue.fifo).expect("checked at start");
        let arn = queue_arn(&settings.home, &name);
        let policy: serde_json::Value = serde_json::from_str(&queue_policy(&settings, &arn)).expect("policy is JSON");
        out.insert(id, serde_json::json!({"queueArn": arn, "policy": policy}));
    }
    println!("{}", serde_json::Value::Object(out));
}
