//! The same scenario suite on moto: real SDK calls, real SNS→SQS delivery.

use tasksub_tests::scenarios as s;
use tasksub_tests::world::MotoWorld;

macro_rules! on_moto {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            s::$name(&MotoWorld::new().await).await;
        }
    )*};
}

on_moto!(
    full_lifecycle,
    duplicates_of_every_event,
    stopped_before_running,
    running_after_stopped,
    stop_initiated_without_stopped,
    stop_initiated_for_unknown_task,
    foreign_events_make_no_call,
    public_samples_are_handled,
    malformed_events_change_nothing,
    unrecorded_subscription_is_recovered,
    permanent_errors_are_not_retryable,
    the_two_functions_split_the_work,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_budget() {
    for (label, calls) in s::call_budget(&MotoWorld::new().await).await {
        println!("moto call budget: {label}: {} calls {calls:?}", calls.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_provisioning_then_redelivery() {
    s::crash_during_provisioning_then_redelivery(async || MotoWorld::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_teardown_then_redelivery() {
    s::crash_during_teardown_then_redelivery(async || MotoWorld::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_groups_scope_the_tasks() {
    use tasksub_core::settings::vars;
    s::service_groups_scope_the_tasks(&MotoWorld::with(&[(vars::SERVICE_GROUPS, "service:orders")]).await).await;
}
