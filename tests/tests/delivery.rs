//! What the queue and subscription settings do to real deliveries on moto: the queue's RedrivePolicy
//! moves a message that keeps failing to the dead-letter queue after maxReceiveCount receives; a filter
//! policy lets through only what matches; a subscription dead-letter queue is set on the wire.

use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::Value;
use tasksub_core::settings::vars;
use tasksub_tests::moto::unique;
use tasksub_tests::world::{MotoWorld, World};

async fn make_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    (url, arn)
}

async fn task_queue_url(w: &MotoWorld, sqs: &aws_sdk_sqs::Client, task_id: &str) -> String {
    let name = format!("{}{task_id}", w.settings().queue.prefix.as_str());
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// Receives at most one message, leaving it in flight for `visibility` seconds.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, visibility: i32) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_lands_in_the_dead_letter_queue() {
    let sdk = tasksub_tests::moto::Moto::get().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (dlq_url, dlq_arn) = make_queue(&sqs, &unique("tasksub-dlq-")).await;
    let w = MotoWorld::with(&[(vars::QUEUE_DLQ_ARN, &dlq_arn), (vars::QUEUE_MAX_RECEIVE_COUNT, "2")]).await;
    let task = w.task();
    w.controller()
        .handle_json(&task.event("RUNNING", "RUNNING", 3))
        .await
        .unwrap();
    let url = task_queue_url(&w, &sqs, &task.id).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    sns.publish()
        .topic_arn(w.settings().topics[0].arn.as_str())
        .message("poison")
        .send()
        .await
        .unwrap();
    // Two receives without a delete (a handler failing twice), each made visible again at once.
    for attempt in 1..=2 {
        assert_eq!(receive(&sqs, &url, 0).await, vec!["poison"], "receive {attempt}");
    }
    // The third receive finds it over maxReceiveCount: SQS moves it to the DLQ instead.
    assert!(receive(&sqs, &url, 0).await.is_empty(), "moved out of the task queue");
    assert_eq!(
        receive(&sqs, &dlq_url, 30).await,
        vec!["poison"],
        "in the dead-letter queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_policy_lets_through_only_what_matches() {
    let sdk = tasksub_tests::moto::Moto::get().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let w = MotoWorld::with(&[(vars::FILTER_POLICY, r#"{"kind":["config"]}"#)]).await;
    let task = w.task();
    w.controller()
        .handle_json(&task.event("RUNNING", "RUNNING", 3))
        .await
        .unwrap();
    let url = task_queue_url(&w, &sqs, &task.id).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let kind = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    for (body, k) in [
        ("wanted", Some("config")),
        ("other kind", Some("metrics")),
        ("no attribute", None),
    ] {
        let mut req = sns
            .publish()
            .topic_arn(w.settings().topics[0].arn.as_str())
            .message(body);
        if let Some(k) = k {
            req = req.message_attributes("kind", kind(k));
        }
        req.send().await.unwrap();
    }
    assert_eq!(receive(&sqs, &url, 30).await, vec!["wanted"]);
    assert!(receive(&sqs, &url, 30).await.is_empty(), "nothing else arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_dead_letter_queue_is_set_on_the_wire() {
    // moto stores a subscription's RedrivePolicy but never redrives (a failed SNS→SQS delivery makes
    // its Publish fail instead), so the wire is what can be checked here.
    let sdk = tasksub_tests::moto::Moto::get().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (_, dlq_arn) = make_queue(&sqs, &unique("tasksub-subdlq-")).await;
    let w = MotoWorld::with(&[(vars::SUBSCRIPTION_DLQ_ARN, &dlq_arn)]).await;
    let task = w.task();
    w.controller()
        .handle_json(&task.event("RUNNING", "RUNNING", 3))
        .await
        .unwrap();
    let wire = w.wire(&task).await.expect("queue and subscription");
    let redrive: Value = serde_json::from_str(&wire.subscription_attributes["RedrivePolicy"]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
}
