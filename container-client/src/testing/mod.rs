//! Test support (feature `testing`): a loopback stand-in for the ECS task metadata endpoint v4, and an
//! in-memory SQS queue to run the consume loop on ([`MemorySqs`], [`run_in_memory`]).
//!
//! [`MetadataServer`] serves a recorded `/task` response (and optionally a container response at the
//! base URI) on `127.0.0.1`, like the ECS agent does on `169.254.170.2`. Responses larger than 2 KiB
//! are sent with chunked transfer encoding, as the agent's Go HTTP server does. It can also answer
//! errors first or answer slowly, to exercise the client's retries and timeouts.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tasksub_client::testing::{with_task_arn, MetadataServer};
//! let recorded = std::fs::read_to_string("fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json")?;
//! let doc = with_task_arn(&recorded, "arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef")
//!     .expect("a JSON object");
//! let server = MetadataServer::builder().task(doc).start().await?;
//! println!("ECS_CONTAINER_METADATA_URI_V4={}", server.uri());
//! # Ok(()) }
//! ```
#![cfg(feature = "testing")]

mod sqs;

pub use sqs::{run_in_memory, MemorySqs, SqsCalls, SqsMessage};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::AbortOnDropHandle;

/// Path prefix the stand-in serves under, like the agent's `/v4/<container id>`.
const BASE_PATH: &str = "/v4/tasksub-local";
/// Largest body the agent's Go server sends with a Content-Length; above it, chunked.
const GO_CHUNKING_THRESHOLD: usize = 2048;

/// Replaces (or adds) `TaskARN` in a recorded task document.
pub fn with_task_arn(document: &str, task_arn: &str) -> Result<String, serde_json::Error> {
    let mut doc: serde_json::Value = serde_json::from_str(document)?;
    match doc.as_object_mut() {
        Some(map) => {
            map.insert("TaskARN".into(), serde_json::Value::String(task_arn.to_owned()));
        }
        None => {
            return Err(serde::de::Error::custom("a task document is a JSON object"));
        }
    }
    serde_json::to_string_pretty(&doc)
}

/// Configures a [`MetadataServer`].
#[derive(Debug, Clone, Default)]
pub struct MetadataServerBuilder {
    task: Option<Vec<u8>>,
    container: Option<Vec<u8>>,
    fail_first: usize,
    delay: Duration,
}

impl MetadataServerBuilder {
    /// The body of `GET {uri}/task` (404 when unset).
    pub fn task(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.task = Some(body.into());
        self
    }
    /// The body of `GET {uri}` (404 when unset).
    pub fn container(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.container = Some(body.into());
        self
    }
    /// Answer the first `n` requests with HTTP 500.
    pub fn fail_first(mut self, n: usize) -> Self {
        self.fail_first = n;
        self
    }
    /// Wait this long before answering each request.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> std::io::Result<MetadataServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let uri = format!("http://{}{BASE_PATH}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(self);
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, state.clone(), n));
            }
        });
        Ok(MetadataServer {
            uri,
            requests,
            _task: AbortOnDropHandle::new(task),
        })
    }
}

/// A running stand-in; it stops when dropped.
#[derive(Debug)]
pub struct MetadataServer {
    uri: String,
    requests: Arc<AtomicUsize>,
    _task: AbortOnDropHandle<()>,
}

impl MetadataServer {
    /// A builder; set at least [`MetadataServerBuilder::task`].
    pub fn builder() -> MetadataServerBuilder {
        MetadataServerBuilder::default()
    }

    /// Serves `task` at `{uri}/task`.
    pub async fn serve_task(task: impl Into<Vec<u8>>) -> std::io::Result<Self> {
        Self::builder().task(task).start().await
    }

    /// The base URI: the value `ECS_CONTAINER_METADATA_URI_V4` would have.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Connections accepted so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn serve(mut stream: TcpStream, state: Arc<MetadataServerBuilder>, n: usize) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    tokio::time::sleep(state.delay).await;
    let path = path.split('?').next().unwrap_or("").trim_end_matches('/');
    let body = match (method, path) {
        _ if n < state.fail_first => Err(500),
        ("GET", p) if p == format!("{BASE_PATH}/task") => state.task.as_deref().ok_or(404),
        ("GET", BASE_PATH) => state.container.as_deref().ok_or(404),
        ("GET", _) => Err(404),
        _ => Err(405),
    };
    let response = match body {
        Ok(body) if body.len() > GO_CHUNKING_THRESHOLD => {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for chunk in body.chunks(1024) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        Ok(body) => {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            out.extend_from_slice(body);
            out
        }
        Err(code) => {
            let text = format!("{{\"error\":\"HTTP {code}\"}}");
            format!(
                "HTTP/1.1 {code} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )
            .into_bytes()
        }
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}
