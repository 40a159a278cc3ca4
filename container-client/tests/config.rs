//! Configuration and transport failures that must be clear and bounded: a missing region or
//! credentials is a configuration error (never retried), and an AWS endpoint that accepts connections
//! but never answers fails within the SDK timeouts.

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;
use tasksub_client::testing::MetadataServer;
use tasksub_client::{CancellationToken, Client, ClientBuilder};

const TASK: &str = r#"{"TaskARN":"arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef"}"#;

fn builder(metadata: &MetadataServer) -> ClientBuilder {
    Client::builder()
        .env_lookup(|_| None)
        .metadata_uri(metadata.uri())
        .handle_sigterm(false)
}

/// A loopback "AWS endpoint" that accepts TCP connections, reads, and never answers.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // kept open, never written to
        }
    });
    (url, task)
}

type Shared = aws_credential_types::provider::SharedCredentialsProvider;

fn test_credentials() -> Option<Shared> {
    Some(Shared::new(Credentials::new("testing", "testing", None, None, "tests")))
}

fn sdk_with(endpoint: &str, region: bool, credentials: Option<Shared>) -> SdkConfig {
    let mut b = SdkConfig::builder();
    b.set_behavior_version(Some(BehaviorVersion::latest()));
    b.set_region(region.then(|| Region::new("us-east-1")));
    b.set_endpoint_url(Some(endpoint.to_owned()));
    b.set_credentials_provider(credentials);
    b.build()
}

fn sdk(endpoint: &str) -> SdkConfig {
    sdk_with(endpoint, true, test_credentials())
}

#[tokio::test]
async fn a_missing_region_is_a_configuration_error() {
    let metadata = MetadataServer::serve_task(TASK).await.unwrap();
    let e = builder(&metadata)
        .build(&sdk_with("http://127.0.0.1:9", false, test_credentials()))
        .unwrap_err();
    assert!(e.is_config() && !e.is_timeout(), "{e}");
    assert_eq!(e.setting(), Some("AWS_REGION"));
    assert!(e.to_string().contains("no region"), "{e}");
}

#[tokio::test]
async fn a_missing_credentials_provider_is_a_configuration_error() {
    let metadata = MetadataServer::serve_task(TASK).await.unwrap();
    let e = builder(&metadata)
        .build(&sdk_with("http://127.0.0.1:9", true, None))
        .unwrap_err();
    assert!(e.is_config(), "{e}");
    assert_eq!(e.setting(), Some("credentials"));
}

#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded("no credentials in this test")))
    }
}

#[tokio::test]
async fn credentials_that_cannot_be_found_fail_connect_at_once_without_retrying() {
    // GIVEN a provider that finds nothing (as the default chain does outside AWS without env vars),
    // and an AWS endpoint that would hang if it were ever called
    let metadata = MetadataServer::serve_task(TASK).await.unwrap();
    let (endpoint, _hole) = black_hole().await;
    let client = builder(&metadata)
        .build(&sdk_with(&endpoint, true, Some(Shared::new(NoCredentials))))
        .unwrap();
    // WHEN it connects
    let t0 = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), client.connect(&CancellationToken::new()))
        .await
        .expect("not retried for the 2 minute wait limit")
        .unwrap_err();
    // THEN a configuration error, at once, naming credentials, with the provider's error as source
    assert!(e.is_config() && !e.is_queue_missing(), "{e}");
    assert_eq!(e.setting(), Some("credentials"));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let source = DisplayErrorContext(std::error::Error::source(&e).expect("a source")).to_string();
    assert!(source.contains("no credentials in this test"), "{source}");
}

#[tokio::test]
async fn an_endpoint_that_never_answers_fails_within_the_sdk_timeouts() {
    // GIVEN an SQS endpoint that accepts connections and never answers, short SDK timeouts and a
    // wait limit shorter than one operation
    let metadata = MetadataServer::serve_task(TASK).await.unwrap();
    let (endpoint, _hole) = black_hole().await;
    let client = builder(&metadata)
        .sdk_timeouts(
            Duration::from_millis(500),
            Duration::from_millis(300),
            Duration::from_millis(1500),
        )
        .wait_limit(Duration::from_millis(500))
        .build(&sdk(&endpoint))
        .unwrap();
    // WHEN it waits for its queue
    let t0 = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(20), client.connect(&CancellationToken::new()))
        .await
        .expect("a hanging GetQueueUrl is cut by the operation timeout")
        .unwrap_err();
    // THEN the wait fails soon after the operation timeout, with the SDK's timeout as the cause
    assert!(e.is_queue_missing(), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let source = DisplayErrorContext(std::error::Error::source(&e).expect("the last failure")).to_string();
    assert!(source.to_lowercase().contains("timeout"), "{source}");
}

#[tokio::test]
async fn bad_sdk_timeouts_are_rejected() {
    let metadata = MetadataServer::serve_task(TASK).await.unwrap();
    let s = Duration::from_secs;
    for (connect, attempt, operation) in [(s(0), s(1), s(2)), (s(1), s(0), s(2)), (s(1), s(3), s(2))] {
        let e = builder(&metadata)
            .sdk_timeouts(connect, attempt, operation)
            .build(&sdk("http://127.0.0.1:9"))
            .unwrap_err();
        assert_eq!(e.setting(), Some("sdk_timeouts"), "{e}");
    }
}
