//! The scenario suite on the in-memory fake.

use tasksub_tests::scenarios as s;
use tasksub_tests::world::FakeWorld;

macro_rules! on_fake {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            s::$name(&FakeWorld::new()).await;
        }
    )*};
}

on_fake!(
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

#[tokio::test]
async fn call_budget() {
    for (label, calls) in s::call_budget(&FakeWorld::new()).await {
        println!("fake call budget: {label}: {} calls {calls:?}", calls.len());
    }
}

#[tokio::test]
async fn crash_during_provisioning_then_redelivery() {
    s::crash_during_provisioning_then_redelivery(async || FakeWorld::new()).await;
}

#[tokio::test]
async fn crash_during_teardown_then_redelivery() {
    s::crash_during_teardown_then_redelivery(async || FakeWorld::new()).await;
}
