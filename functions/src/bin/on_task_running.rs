//! `on-task-running`: provisions a task's queue and subscription on its first desired-RUNNING event.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tasksub_functions::runtime::run_lambda(tasksub_core::decide::Role::Provisioner).await
}
