//! A fault-injecting HTTP/1.1 proxy between the AWS SDK and moto.
//!
//! The SDK reaches it through `endpoint_url` ([`Proxy::sdk_config`]) exactly as it reaches moto, so every
//! injected fault goes through the real SDK stack: its error parsing, retry classifier, retry quota and
//! timeouts, then `tasksub_functions::aws::classify`. Per AWS operation it can inject throttling, 5xx,
//! slow responses and dropped connections, for the next N calls or with a probability drawn from a
//! seeded RNG ([`Fault`]). Error bodies are in each protocol's wire shape ([`wire`]).
//!
//! It also enforces two AWS rules moto lacks (`notes/tooling.md` §1), for calls that go through it, with the
//! in-memory fake's implementation of them (`tasksub_functions::fake::rules`):
//! - a CreateQueue of a name deleted less than 60 s ago is refused with
//!   `AWS.SimpleQueueService.QueueDeletedRecently`. The 60 s run on a simulated clock that only moves
//!   when a test calls [`Proxy::advance`];
//! - a Subscribe for a (topic, endpoint) already subscribed with other attributes is refused with
//!   `InvalidParameter`.
//!
//! # Layout
//! - [`call`]: which service and operation a request is, and the parameters the rules need (pure).
//! - [`quota`]: AWS's per-account API quotas as token buckets per operation (throttling on the wire).
//! - [`rules`]: the injection rules with their seeded RNG, and the emulated AWS rules (pure; the fake's).
//! - [`wire`]: error responses in each protocol's shape (pure).
//! - [`world`]: a moto world whose controllers go through a proxy; convergence checks.
//! - [`Proxy`] (this file): the one owner of I/O: accepts, asks the rules, then forwards or answers.

pub mod call;
pub mod quota;
pub mod rules;
pub mod wire;
pub mod world;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub use call::{Call, Params, Service};
pub use rules::{Emulated, Fault, Faults, Refusal};
pub use world::{Delivered, Proxied, ProxiedController};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Forwarded; moto answered with this status.
    Forwarded(u16),
    /// A fault was injected.
    Injected(Fault),
    /// An emulated AWS rule refused it (not forwarded).
    Refused(Refusal),
    /// A canned error answered it (not forwarded): its code.
    Canned(&'static str),
}

/// One call seen by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The service.
    pub service: Service,
    /// The operation.
    pub op: String,
    /// The queue a CreateQueue / DeleteQueue named.
    pub queue: Option<String>,
    /// What happened.
    pub handling: Handling,
}

#[derive(Debug)]
struct State {
    faults: Faults,
    quotas: quota::Quotas,
    aws: Emulated,
    seen: Vec<Seen>,
    /// Canned AWS errors by request pattern: (operation, a parameter value, the error), first match wins.
    canned: Vec<(String, String, wire::AwsError)>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    state: Mutex<State>,
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

const HOP_BY_HOP: &[&str] = &["connection", "keep-alive", "transfer-encoding", "content-length", "te"];

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("proxy state lock")
    }

    /// Records what was done with a call.
    fn record(&self, call: &Call, handling: Handling) {
        let queue = match &call.params {
            Params::CreateQueue { name } | Params::DeleteQueue { name } => Some(name.clone()),
            _ => None,
        };
        self.lock().seen.push(Seen {
            service: call.service,
            op: call.op.clone(),
            queue,
            handling,
        });
    }

    /// The canned answer for this call, if a rule names its operation and one of its parameter values
    /// (form fields for SNS, JSON string fields for SQS and DynamoDB).
    fn canned(&self, call: &Call, body: &[u8]) -> Option<wire::AwsError> {
        let st = self.lock();
        let rules: Vec<&(String, String, wire::AwsError)> =
            st.canned.iter().filter(|(op, _, _)| *op == call.op).collect();
        if rules.is_empty() {
            return None;
        }
        let values: Vec<String> = match call.service {
            Service::Sns | Service::Unknown => call::form_decode(body).into_iter().map(|(_, v)| v).collect(),
            _ => {
                let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                v.as_object()
                    .map(|o| o.values().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            }
        };
        rules
            .into_iter()
            .find(|(_, value, _)| values.iter().any(|v| v == value))
            .map(|(_, _, e)| *e)
    }

    /// The fault to inject, and whether AWS would refuse the call (asked only when it is forwarded).
    fn judge(&self, call: &Call) -> (Option<Fault>, Option<Refusal>) {
        let mut st = self.lock();
        let over_quota = !st.quotas.admit(&call.op, std::time::Instant::now());
        let fault = if over_quota {
            Some(Fault::Throttle)
        } else {
            st.faults.pick(&call.op)
        };
        let refusal = match fault {
            Some(f) if !f.forwards() => None,
            _ => st.aws.check(call),
        };
        (fault, refusal)
    }

    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        let call = Call::parse(target, &body);
        let request_id = format!("proxy-{:08x}", fastrand::u32(..));
        if let Some(e) = self.canned(&call, &body) {
            self.record(&call, Handling::Canned(e.code));
            return Ok(wire::render(call.service, &e, &request_id));
        }
        let (fault, refusal) = self.judge(&call);
        let response = match (fault, refusal) {
            (Some(Fault::Drop), _) => {
                self.record(&call, Handling::Injected(Fault::Drop));
                return Err(Dropped);
            }
            (Some(f @ (Fault::Throttle | Fault::Status(_))), _) => {
                self.record(&call, Handling::Injected(f));
                let e = match f {
                    Fault::Status(status) => wire::server_error(call.service, status),
                    _ => wire::throttling(call.service),
                };
                return Ok(wire::render(call.service, &e, &request_id));
            }
            (_, Some(refusal)) => {
                self.record(&call, Handling::Refused(refusal));
                wire::render(call.service, &wire::refusal(refusal), &request_id)
            }
            (_, None) => {
                let (status, response) = self.forward_and_observe(&call, parts, body, &request_id).await;
                self.record(&call, fault.map_or(Handling::Forwarded(status), Handling::Injected));
                response
            }
        };
        match fault {
            Some(Fault::DropAfterForward) => Err(Dropped),
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(response)
            }
            _ => Ok(response),
        }
    }

    /// Forwards to moto; teaches the AWS rules from a success. A failure to reach moto is a 502.
    async fn forward_and_observe(
        &self,
        call: &Call,
        parts: hyper::http::request::Parts,
        body: Bytes,
        request_id: &str,
    ) -> (u16, Response<Full<Bytes>>) {
        let Ok((status, headers, body)) = self.forward(parts, body).await else {
            let e = wire::server_error(call.service, 502);
            return (502, wire::render(call.service, &e, request_id));
        };
        if (200..300).contains(&status) {
            self.lock().aws.observe(call, &body);
        }
        let mut builder = Response::builder().status(status);
        for (k, v) in headers.iter() {
            if !HOP_BY_HOP.contains(&k.as_str()) {
                builder = builder.header(k, v);
            }
        }
        (status, builder.body(Full::new(body)).expect("a valid response"))
    }

    async fn forward(
        &self,
        parts: hyper::http::request::Parts,
        body: Bytes,
    ) -> Result<(u16, hyper::HeaderMap, Bytes), Box<dyn std::error::Error + Send + Sync>> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut builder = Request::builder()
            .method(parts.method)
            .uri(format!("{}{path}", self.upstream));
        for (k, v) in parts.headers.iter() {
            if !HOP_BY_HOP.contains(&k.as_str()) {
                builder = builder.header(k, v);
            }
        }
        let response = self.client.request(builder.body(Full::new(body))?).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status.as_u16(), parts.headers, body))
    }
}

/// The proxy: listens on 127.0.0.1:0 until dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`); probabilities are drawn from an RNG seeded
    /// with `seed`. Runs on the current tokio runtime.
    pub async fn start(upstream: &str, seed: u64) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            state: Mutex::new(State {
                faults: Faults::new(seed),
                quotas: quota::Quotas::default(),
                aws: Emulated::default(),
                seen: Vec::new(),
                canned: Vec::new(),
            }),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self { addr, shared, accept }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SDK config for the proxy: the harness's test credentials and region, `endpoint_url` = the proxy,
    /// and the given retry and timeout settings.
    pub async fn sdk_config(&self, retry: RetryConfig, timeouts: TimeoutConfig) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .endpoint_url(self.url())
            .retry_config(retry)
            .timeout_config(timeouts)
            .load()
            .await
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// The next `n` calls of `op` get `fault`.
    pub fn fail_next(&self, op: &str, n: usize, fault: Fault) {
        self.state().faults.fail_next(op, n, fault);
    }

    /// The next `skip` calls of `op` pass, the `n` after them get `fault`.
    pub fn fail_after(&self, op: &str, skip: usize, n: usize, fault: Fault) {
        self.state().faults.fail_after(op, skip, n, fault);
    }

    /// Every call of `op` (of any operation when `None`) gets `fault` with probability `p`.
    pub fn fail_randomly(&self, op: Option<&str>, p: f64, fault: Fault) {
        self.state().faults.fail_randomly(op, p, fault);
    }

    /// Per-operation quotas (token buckets) from now on: a call over its quota is answered with the
    /// service's throttling error ([`quota`]).
    pub fn set_quotas(&self, quotas: quota::Quotas) {
        self.state().quotas = quotas;
    }

    /// Removes every injection rule and canned answer (the emulated AWS rules stay).
    pub fn clear_faults(&self) {
        let mut st = self.state();
        st.faults.clear();
        st.canned.clear();
    }

    /// From now on, every call of `op` that carries `value` as a parameter (a topic ARN, a queue URL...)
    /// is answered with `error` and never forwarded: a topic's owner refusing us, a quota reached.
    pub fn answer(&self, op: &str, value: &str, error: wire::AwsError) {
        self.state().canned.push((op.to_owned(), value.to_owned(), error));
    }

    /// Removes the canned answers for `value`.
    pub fn stop_answering(&self, value: &str) {
        self.state().canned.retain(|(_, v, _)| v != value);
    }

    /// Moves the simulated clock of the emulated AWS rules forward.
    pub fn advance(&self, by: Duration) {
        self.state().aws.advance(by);
    }

    /// Every call seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    /// How many calls of `op` were seen (faulted ones included).
    pub fn count(&self, op: &str) -> usize {
        self.state().seen.iter().filter(|s| s.op == op).count()
    }

    /// How many faults were injected.
    pub fn injected(&self) -> usize {
        let st = self.state();
        st.seen
            .iter()
            .filter(|s| matches!(s.handling, Handling::Injected(_)))
            .count()
    }

    /// Forgets the calls seen so far.
    pub fn reset_seen(&self) {
        self.state().seen.clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    // Dropping the set (when the proxy is dropped and this task aborted) aborts every connection.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { shared.handle(req).await }
            });
            // An error here is a dropped connection, on purpose or by the client.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}
