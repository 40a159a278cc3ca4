//! Discovery over real HTTP: a metadata stand-in on 127.0.0.1 serves the recorded v4 samples, and the
//! client's errors for a missing variable, an unreachable or slow endpoint and bad JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_client::{Client, ClientBuilder, Error, MAX_BUFFERED_LIMIT, METADATA_URI_VAR};
use tasksub_core::naming::{QueueName, QueuePrefix, TaskArn};

fn sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "tests"),
        ))
        .build()
}

/// A builder that never reads the process environment.
fn builder(env: &[(&str, &str)]) -> ClientBuilder {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Client::builder()
        .env_lookup(move |k| env.get(k).cloned())
        .handle_sigterm(false)
}

fn samples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/task-metadata-v4");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn expected_arn(doc: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(doc).unwrap();
    v.get("TaskARN")
        .or_else(|| v["Labels"].get("com.amazonaws.ecs.task-arn"))
        .and_then(|a| a.as_str())
        .unwrap()
        .to_owned()
}

async fn discover(server: &MetadataServer, b: ClientBuilder) -> Result<tasksub_client::TaskIdentity, Error> {
    b.metadata_uri(server.uri()).build(&sdk())?.discover().await
}

#[tokio::test]
async fn every_recorded_task_response_is_discovered_over_http() {
    let all = samples();
    assert!(
        all.iter().any(|(_, d)| d.len() > 2048),
        "at least one sample exercises chunked encoding"
    );
    for (name, doc) in all.into_iter().filter(|(n, _)| !n.contains("container-metadata")) {
        // GIVEN the agent's /task response, recorded
        let server = MetadataServer::serve_task(doc.clone()).await.unwrap();
        // WHEN the client discovers its task through ECS_CONTAINER_METADATA_URI_V4
        let client = builder(&[(METADATA_URI_VAR, server.uri())]).build(&sdk()).unwrap();
        let me = client.discover().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        // THEN it has the task ARN and the queue name the controller derives from it
        let arn = expected_arn(&doc);
        let task = TaskArn::parse(&arn).unwrap();
        assert_eq!(me.task_arn(), arn, "{name}");
        assert_eq!(me.task_id(), &task.task_id, "{name}");
        assert_eq!(me.cluster(), task.cluster.as_deref(), "{name}");
        assert_eq!(
            me.queue_name(),
            &QueueName::for_task(&QueuePrefix::default(), &task.task_id, false).unwrap()
        );
        assert_eq!(server.requests(), 1, "{name}: one request, no retry");
    }
}

#[tokio::test]
async fn a_container_document_falls_back_to_the_task_arn_label() {
    // The reference sample reads the container document; if an endpoint hands one out at /task, the
    // Docker label still names the task.
    for (name, doc) in samples().into_iter().filter(|(n, _)| n.contains("container-metadata")) {
        let server = MetadataServer::builder()
            .task(doc.clone())
            .container(doc.clone())
            .start()
            .await
            .unwrap();
        let me = discover(&server, builder(&[]))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(me.task_arn(), expected_arn(&doc), "{name}");
    }
}

#[tokio::test]
async fn the_queue_prefix_comes_from_the_environment() {
    let doc = with_task_arn(
        "{}",
        "arn:aws:ecs:us-east-1:123456789012:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
    )
    .unwrap();
    let server = MetadataServer::serve_task(doc).await.unwrap();
    let me = discover(&server, builder(&[("TASKSUB_QUEUE_PREFIX", "tasksub_orders_")]))
        .await
        .unwrap();
    assert_eq!(
        me.queue_name().as_str(),
        "tasksub_orders_b99d40b3-5176-4f71-9a52-9dbd6f1cebef"
    );
    assert_eq!(me.cluster(), None, "old ARN format");
}

#[tokio::test]
async fn transient_server_errors_are_retried() {
    let doc = samples()
        .into_iter()
        .find(|(n, _)| n.starts_with("fargate-task"))
        .unwrap()
        .1;
    let server = MetadataServer::builder().task(doc).fail_first(2).start().await.unwrap();
    discover(&server, builder(&[])).await.unwrap();
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn a_missing_variable_is_named() {
    let e = builder(&[]).build(&sdk()).unwrap_err();
    assert!(e.is_missing_env() && e.is_config(), "{e}");
    assert_eq!(e.setting(), Some(METADATA_URI_VAR));
    assert!(
        e.to_string()
            .starts_with("environment variable ECS_CONTAINER_METADATA_URI_V4 is not set"),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_settings_are_named() {
    let rows: [(&[(&str, &str)], &str); 3] = [
        (&[(METADATA_URI_VAR, "https://169.254.170.2/v4/x")], METADATA_URI_VAR),
        (&[(METADATA_URI_VAR, "not a uri")], METADATA_URI_VAR),
        (
            &[
                (METADATA_URI_VAR, "http://169.254.170.2/v4/x"),
                ("TASKSUB_QUEUE_PREFIX", "bad.prefix"),
            ],
            "TASKSUB_QUEUE_PREFIX",
        ),
    ];
    for (env, setting) in rows {
        let e = builder(env).build(&sdk()).unwrap_err();
        assert!(e.is_config() && !e.is_missing_env(), "{e}");
        assert_eq!(e.setting(), Some(setting), "{e}");
    }
    let base = || builder(&[(METADATA_URI_VAR, "http://x")]);
    let e = base().max_concurrency(0).build(&sdk()).unwrap_err();
    assert_eq!(e.setting(), Some("max_concurrency"));
    let e = base().max_buffered(MAX_BUFFERED_LIMIT + 1).build(&sdk()).unwrap_err();
    assert_eq!(e.setting(), Some("max_buffered"));
    assert!(base().max_buffered(MAX_BUFFERED_LIMIT).build(&sdk()).is_ok());
    assert!(base().max_buffered(0).build(&sdk()).is_ok(), "0: the earlier policy");
    for n in [0, 1001] {
        let e = base().max_receives_in_flight(n).build(&sdk()).unwrap_err();
        assert_eq!(e.setting(), Some("max_receives_in_flight"), "{n}");
    }
    for n in [1, 1000] {
        assert!(base().max_receives_in_flight(n).build(&sdk()).is_ok(), "{n}");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_as_such() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = builder(&[(METADATA_URI_VAR, &format!("http://127.0.0.1:{port}/v4/x"))])
        .build(&sdk())
        .unwrap();
    let e = client.discover().await.unwrap_err();
    assert!(e.is_metadata_unreachable() && !e.is_timeout(), "{e}");
    assert!(
        e.to_string().contains("is unreachable (gave up after 3 attempt(s))"),
        "{e}"
    );
    assert!(
        std::error::Error::source(&e).is_some(),
        "the connect error is the source"
    );
}

#[tokio::test]
async fn error_statuses_are_reported_with_the_status() {
    let server = MetadataServer::builder().fail_first(100).start().await.unwrap();
    let e = discover(&server, builder(&[])).await.unwrap_err();
    assert!(e.is_metadata_unreachable(), "{e}");
    assert_eq!(e.status(), Some(500));
    assert_eq!(server.requests(), 3, "5xx is retried");

    // No task document: 404 is not retried.
    let server = MetadataServer::builder().start().await.unwrap();
    let e = discover(&server, builder(&[])).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("answered HTTP 404"), "{e}");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let server = MetadataServer::builder()
        .task("{}")
        .delay(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let b = builder(&[])
        .metadata_timeouts(Duration::from_millis(200), Duration::from_millis(200))
        .metadata_attempts(2);
    let e = discover(&server, b).await.unwrap_err();
    assert!(e.is_metadata_unreachable() && e.is_timeout(), "{e}");
    assert!(e.to_string().contains("timed out (gave up after 2 attempt(s))"), "{e}");
}

#[tokio::test]
async fn bad_json_is_reported_as_invalid_metadata() {
    for (body, reason) in [
        ("<html>oops</html>", "not JSON"),
        (r#"{"Cluster":"default"}"#, "no TaskARN"),
        (r#"{"TaskARN":"arn:aws:ecs:us-east-1:1:service/x"}"#, "not a task ARN"),
    ] {
        let server = MetadataServer::serve_task(body).await.unwrap();
        let e = discover(&server, builder(&[])).await.unwrap_err();
        assert!(e.is_metadata_invalid(), "{e}");
        assert!(e.to_string().contains(reason), "{e}");
        assert_eq!(server.requests(), 1, "not retried");
    }
}

#[tokio::test]
async fn an_oversized_response_is_an_immediate_error_naming_the_limit() {
    // Both framings: chunked (no length up front, cut by the body limit) and a declared Content-Length.
    let big = format!(
        r#"{{"TaskARN":"arn:aws:ecs:us-east-1:1:task/c/0123456789abcdef0123456789abcdef","Pad":"{}"}}"#,
        "x".repeat(tasksub_client::METADATA_MAX_BYTES)
    );
    let server = MetadataServer::serve_task(big).await.unwrap();
    let started = std::time::Instant::now();
    let e = discover(&server, builder(&[])).await.unwrap_err();
    assert!(e.is_metadata_invalid() && !e.is_metadata_unreachable(), "{e}");
    assert!(e.to_string().contains("larger than the 1048576-byte limit"), "{e}");
    assert_eq!(server.requests(), 1, "not retried");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // A declared Content-Length above the limit is refused from the head, before any body arrives.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/v4/x", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{";
            let _ = stream.write_all(head.as_bytes()).await;
            held.push(stream); // the rest of the body never comes
        }
    });
    let started = std::time::Instant::now();
    let e = builder(&[])
        .metadata_uri(uri)
        .metadata_timeouts(Duration::from_secs(2), Duration::from_secs(30))
        .build(&sdk())
        .unwrap()
        .discover()
        .await
        .unwrap_err();
    assert!(e.is_metadata_invalid(), "{e}");
    assert!(e.to_string().contains("1048576-byte limit"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "not retried");
}

/// A one-shot HTTP server on 127.0.0.1 answering every request with `response` (then holding the
/// connection open); returns its base URI and the number of connections accepted.
async fn raw_server(response: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/v4/x", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(&response).await;
            held.push(stream);
        }
    });
    (uri, accepted)
}

#[tokio::test]
async fn a_response_of_exactly_the_limit_is_accepted() {
    let arn = "arn:aws:ecs:us-east-1:1:task/c/0123456789abcdef0123456789abcdef";
    let frame = format!(r#"{{"TaskARN":"{arn}","Pad":""}}"#);
    let body = format!(
        r#"{{"TaskARN":"{arn}","Pad":"{}"}}"#,
        "x".repeat(tasksub_client::METADATA_MAX_BYTES - frame.len())
    );
    assert_eq!(body.len(), tasksub_client::METADATA_MAX_BYTES);
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body.as_bytes());
    let (uri, _) = raw_server(response).await;
    let me = builder(&[])
        .metadata_uri(uri)
        .build(&sdk())
        .unwrap()
        .discover()
        .await
        .unwrap();
    assert_eq!(me.task_arn(), arn);
}

#[tokio::test]
async fn an_answer_within_the_connect_plus_read_time_is_not_a_timeout() {
    // 300 ms of delay against 1 s to connect and 1 s to read: well within the limit.
    let server = MetadataServer::builder()
        .task(r#"{"TaskARN":"arn:aws:ecs:us-east-1:1:task/c/0123456789abcdef0123456789abcdef"}"#)
        .delay(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let b = builder(&[])
        .metadata_timeouts(Duration::from_secs(1), Duration::from_secs(1))
        .metadata_attempts(1);
    discover(&server, b).await.unwrap();
}
