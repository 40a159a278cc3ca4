//! `on-task-stopped`: unsubscribes when a stop starts; deletes the queue and leaves a tombstone when
//! the task has stopped.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tasksub_functions::runtime::run_lambda(tasksub_core::decide::Role::Teardown).await
}
