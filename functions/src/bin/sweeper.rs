//! `sweeper`: the scheduled reconciliation of records, prefixed queues and ECS truth (payload ignored).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tasksub_functions::runtime::run_sweeper().await
}
