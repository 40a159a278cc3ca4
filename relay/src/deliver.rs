//! One message → one POST to the app, with the retry rules of the relay.
//!
//! | the app | the relay |
//! |---|---|
//! | 2xx | `Ok`: the client deletes the message (batched). The status line decides as soon as it arrives: the body is read in the background (bounded, so the connection can be reused) and never changes the outcome |
//! | 429 or 503 | backpressure: every delivery pauses (`Retry-After` seconds, else a jittered doubling delay from 200 ms to 10 s) and this one is retried while its slot stays taken, so intake slows (the longer deliveries take, the fewer messages the client holds ahead); the heartbeat keeps the message invisible. After `backpressure_limit` it is left for redelivery |
//! | connection refused / reset | retried up to `connect_attempts` times with jittered doubling delays (the app restarting), then left for redelivery |
//! | any other status, or no status line within `request_timeout` | left for redelivery at once (and the DLQ after the queue's maxReceiveCount) |
//! | body above `max_body_bytes` | not sent; left for redelivery (so it reaches the DLQ) |
//!
//! On shutdown, waits end at once and the message is left for redelivery; a POST already sent is
//! awaited (up to its timeout) so the app's answer decides.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tasksub_client::{BoxError, CancellationToken, Handler, Message, TaskQueue};
use tokio::time::Instant;

use crate::config::Config;
use crate::headers::message_headers;
pub use crate::status::{Phase, Status};

/// Longest pause after a 429/503.
pub const MAX_BACKPRESSURE_PAUSE: Duration = Duration::from_secs(10);
/// First pause after a 429/503 without `Retry-After`.
pub const FIRST_BACKPRESSURE_PAUSE: Duration = Duration::from_millis(200);
/// First pause after a connection failure.
pub const FIRST_CONNECT_RETRY: Duration = Duration::from_millis(200);
/// Most of the app's response body the relay reads (the rest is dropped with the connection).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// Builds the HTTP client used for deliveries and app health checks (HTTP/1.1, keep-alive).
pub fn http_client(connect_timeout: Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// What one POST got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered(u16),
    /// 429 or 503, with the `Retry-After` seconds if given.
    Busy(u16, Option<Duration>),
    /// Any other status.
    Rejected(u16),
    /// No status line within the request timeout.
    TimedOut,
    /// The connection failed (refused, reset, closed early).
    Unreachable(String),
}

/// Classifies a status (pure).
pub fn classify(status: StatusCode, retry_after: Option<&HeaderValue>) -> Outcome {
    let code = status.as_u16();
    if status.is_success() {
        Outcome::Delivered(code)
    } else if code == 429 || code == 503 {
        let after = retry_after
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Outcome::Busy(code, after)
    } else {
        Outcome::Rejected(code)
    }
}

/// Reads and drops (a bounded part of) an answer's body: at once when it has already arrived (a small
/// answer comes with its head), else in the background for at most `limit`. A complete answer lets its
/// connection be reused; one that stalls only costs its connection.
fn discard(mut body: Incoming, limit: Duration) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut read = 0;
    loop {
        if body.is_end_stream() || read > MAX_RESPONSE_BYTES {
            return;
        }
        match std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |d| d.len()),
            std::task::Poll::Ready(_) => return,
            std::task::Poll::Pending => break,
        }
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(limit, Limited::new(body, MAX_RESPONSE_BYTES).collect()).await;
    });
}

/// The `Content-Type` of a delivery: a guess from the first character (bodies are text).
pub fn content_type(body: &str) -> &'static str {
    match body.trim_start().as_bytes().first() {
        Some(b'{') | Some(b'[') => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// A jittered doubling delay: uniformly in [d/2, d] where d = first * 2^n, capped at `max`.
pub fn jittered(first: Duration, n: u32, max: Duration, rng: &mut fastrand::Rng) -> Duration {
    let d = first.saturating_mul(1u32 << n.min(16)).min(max);
    d.mul_f64(0.5 + rng.f64() * 0.5)
}

/// The relay's [`Handler`]: POSTs each message to the app.
pub struct Relay {
    http: HttpClient,
    cfg: Arc<Config>,
    status: Arc<Status>,
    stop: CancellationToken,
    /// Deliveries start no earlier than this (set by 429/503).
    paused_until: Mutex<Option<Instant>>,
}

impl Relay {
    /// A relay for `cfg`; `stop` ends waits early at shutdown.
    pub fn new(cfg: Arc<Config>, status: Arc<Status>, stop: CancellationToken) -> Self {
        Self {
            http: http_client(cfg.request_timeout),
            cfg,
            status,
            stop,
            paused_until: Mutex::new(None),
        }
    }

    fn pause(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|t| t < until) {
            *p = Some(until);
        }
    }

    /// Sleeps `delay` (and any backpressure pause); false when shutdown came first.
    async fn wait(&self, delay: Duration) -> bool {
        let mut until = Instant::now() + delay;
        if let Some(p) = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner()) {
            until = until.max(p);
        }
        if until <= Instant::now() {
            return !self.stop.is_cancelled();
        }
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep_until(until) => true,
        }
    }

    /// One POST. Its status decides, as soon as the status line arrives within the request timeout:
    /// the app has accepted (2xx) or refused the message whatever its body does next.
    pub async fn post(&self, headers: &hyper::HeaderMap, body: Bytes, content_type: &'static str) -> Outcome {
        let mut request = Request::post(self.cfg.target.clone())
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .expect("a valid request");
        request.headers_mut().extend(headers.clone());
        match tokio::time::timeout(self.cfg.request_timeout, self.http.request(request)).await {
            Err(_) => Outcome::TimedOut,
            Ok(Err(e)) => Outcome::Unreachable(error_chain(&e)),
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                discard(body, self.cfg.request_timeout);
                classify(parts.status, parts.headers.get(RETRY_AFTER))
            }
        }
    }

    async fn deliver(&self, message: Message) -> Result<(), BoxError> {
        let mut d = Delivery {
            message_id: message.sqs_message_id().to_owned(),
            receive_count: message.receive_count(),
            started: Instant::now(),
            rng: fastrand::Rng::new(),
            busy: 0,
            unreachable: 0,
        };
        if message.body().len() > self.cfg.max_body_bytes {
            tracing::warn!(
                action = "deliver",
                message_id = d.message_id,
                bytes = message.body().len(),
                limit = self.cfg.max_body_bytes,
                "body above the size limit; not delivered (it will reach the DLQ)"
            );
            return Err("body above the size limit".into());
        }
        let headers = message_headers(&message);
        let content_type = content_type(message.body());
        let body = Bytes::from(message.into_body());
        loop {
            if !self.wait(Duration::ZERO).await {
                return Err("shutting down before delivery".into());
            }
            match self.post(&headers, body.clone(), content_type).await {
                Outcome::Delivered(status) => {
                    tracing::debug!(action = "deliver", message_id = d.message_id, status, "delivered");
                    return Ok(());
                }
                Outcome::Busy(status, retry_after) => self.busy(&mut d, status, retry_after)?,
                Outcome::Unreachable(error) => self.unreachable(&mut d, error).await?,
                Outcome::Rejected(status) => return Err(self.rejected(&d, status)),
                Outcome::TimedOut => return Err(self.timed_out(&d)),
            }
        }
    }

    /// Any other status: left for redelivery at once.
    fn rejected(&self, d: &Delivery, status: u16) -> BoxError {
        tracing::warn!(
            action = "deliver",
            message_id = d.message_id,
            status,
            receive_count = d.receive_count,
            "app refused the message; left for redelivery"
        );
        format!("app answered {status}").into()
    }

    /// No answer within the request timeout: left for redelivery at once.
    fn timed_out(&self, d: &Delivery) -> BoxError {
        tracing::warn!(
            action = "deliver",
            message_id = d.message_id,
            receive_count = d.receive_count,
            timeout_ms = self.cfg.request_timeout.as_millis() as u64,
            "no answer in time; left for redelivery"
        );
        "request timed out".into()
    }

    /// A 429/503: pause every delivery (this one retries after the pause), or give up at the
    /// backpressure limit.
    fn busy(&self, d: &mut Delivery, status: u16, retry_after: Option<Duration>) -> Result<(), BoxError> {
        self.status.backpressured.fetch_add(1, Ordering::Relaxed);
        let delay = retry_after
            .map(|r| r.min(MAX_BACKPRESSURE_PAUSE))
            .unwrap_or_else(|| jittered(FIRST_BACKPRESSURE_PAUSE, d.busy, MAX_BACKPRESSURE_PAUSE, &mut d.rng));
        d.busy += 1;
        if d.started.elapsed() + delay > self.cfg.backpressure_limit {
            tracing::warn!(
                action = "deliver",
                message_id = d.message_id,
                status,
                receive_count = d.receive_count,
                "app still busy at the backpressure limit; left for redelivery"
            );
            return Err(format!("app busy ({status})").into());
        }
        tracing::info!(
            action = "backpressure",
            message_id = d.message_id,
            status,
            delay_ms = delay.as_millis() as u64,
            "app busy; pausing deliveries"
        );
        self.pause(delay);
        Ok(())
    }

    /// A failed connection: wait and retry (the app restarting), or give up after `connect_attempts`.
    async fn unreachable(&self, d: &mut Delivery, error: String) -> Result<(), BoxError> {
        self.status.unreachable.fetch_add(1, Ordering::Relaxed);
        d.unreachable += 1;
        if d.unreachable >= self.cfg.connect_attempts {
            tracing::warn!(
                action = "deliver",
                message_id = d.message_id,
                receive_count = d.receive_count,
                error,
                "app unreachable; left for redelivery"
            );
            return Err(format!("app unreachable: {error}").into());
        }
        let delay = jittered(
            FIRST_CONNECT_RETRY,
            d.unreachable - 1,
            Duration::from_secs(5),
            &mut d.rng,
        );
        tracing::info!(
            action = "deliver",
            message_id = d.message_id,
            error,
            delay_ms = delay.as_millis() as u64,
            "app unreachable; retrying"
        );
        if !self.wait(delay).await {
            return Err("shutting down".into());
        }
        Ok(())
    }
}

/// One message's delivery attempts so far.
struct Delivery {
    message_id: String,
    receive_count: u32,
    started: Instant,
    rng: fastrand::Rng,
    /// 429/503 answers so far.
    busy: u32,
    /// Connection failures so far.
    unreachable: u32,
}

impl Handler for Relay {
    async fn handle(&self, message: Message) -> Result<(), BoxError> {
        let result = self.deliver(message).await;
        match &result {
            Ok(()) => self.status.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.status.failed.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    async fn on_subscribed(&self, queue: &TaskQueue) {
        tracing::info!(action = "consume", queue = %queue.queue_name(), "queue ready; relaying");
        self.status.set(Phase::Consuming);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// GETs the app's health URL until it answers 2xx. `Ok(false)` when `stop` fired first; `Err` after
/// `limit`.
pub async fn wait_for_app(url: &Uri, limit: Option<Duration>, stop: &CancellationToken) -> Result<bool, Duration> {
    let http = http_client(Duration::from_secs(2));
    let started = Instant::now();
    let mut rng = fastrand::Rng::new();
    let mut attempt = 0u32;
    loop {
        let request = Request::get(url.clone())
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let answer = tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(false),
            r = tokio::time::timeout(Duration::from_secs(2), http.request(request)) => r,
        };
        let seen = match answer {
            Ok(Ok(r)) if r.status().is_success() => {
                tracing::info!(action = "app-health", %url, attempts = attempt + 1, "app is healthy");
                return Ok(true);
            }
            Ok(Ok(r)) => format!("status {}", r.status().as_u16()),
            Ok(Err(e)) => error_chain(&e),
            Err(_) => "no answer within 2 s".to_owned(),
        };
        if attempt % 10 == 0 {
            tracing::info!(action = "app-health", %url, seen, "waiting for the app");
        }
        attempt += 1;
        let elapsed = started.elapsed();
        if limit.is_some_and(|l| elapsed >= l) {
            return Err(elapsed);
        }
        let delay = jittered(
            Duration::from_millis(250),
            attempt.min(2),
            Duration::from_secs(1),
            &mut rng,
        );
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(false),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(StatusCode::OK, None), Outcome::Delivered(200));
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Outcome::Delivered(204));
        assert_eq!(classify(StatusCode::TOO_MANY_REQUESTS, None), Outcome::Busy(429, None));
        let after = HeaderValue::from_static("3");
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, Some(&after)),
            Outcome::Busy(503, Some(Duration::from_secs(3)))
        );
        let date = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, Some(&date)),
            Outcome::Busy(503, None)
        );
        assert_eq!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, None),
            Outcome::Rejected(500)
        );
        assert_eq!(classify(StatusCode::BAD_REQUEST, None), Outcome::Rejected(400));
        assert_eq!(classify(StatusCode::MOVED_PERMANENTLY, None), Outcome::Rejected(301));
    }

    #[test]
    fn delays_are_jittered_and_capped() {
        let mut rng = fastrand::Rng::with_seed(7);
        for n in 0..40 {
            let d = jittered(Duration::from_millis(200), n, Duration::from_secs(10), &mut rng);
            let full = Duration::from_millis(200)
                .saturating_mul(1 << n.min(16))
                .min(Duration::from_secs(10));
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }

    #[test]
    fn phases_never_leave_draining() {
        let s = Status::default();
        assert_eq!(s.phase(), Phase::WaitingForApp);
        s.set(Phase::Consuming);
        assert_eq!(s.phase(), Phase::Consuming);
        s.set(Phase::Draining);
        s.set(Phase::Consuming);
        assert_eq!(s.phase(), Phase::Draining);
    }

    /// An app on a loopback port that reads one request per connection, then writes `head` and, after
    /// `pause`, `rest` (each when given).
    async fn app(head: Option<&'static str>, pause: Duration, rest: &'static str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    if let Some(head) = head {
                        let _ = stream.write_all(head.as_bytes()).await;
                    }
                    tokio::time::sleep(pause).await;
                    let _ = stream.write_all(rest.as_bytes()).await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        port
    }

    fn relay_to(port: u16, request_timeout: &str) -> Relay {
        let args = crate::config::Args::parse_from([
            "tasksub-relay",
            "--target",
            &format!("http://127.0.0.1:{port}/messages"),
            "--request-timeout",
            request_timeout,
        ]);
        let cfg = Config::from_args(&args).unwrap();
        Relay::new(Arc::new(cfg), Arc::new(Status::default()), CancellationToken::new())
    }

    async fn post(relay: &Relay) -> Outcome {
        relay
            .post(&hyper::HeaderMap::new(), Bytes::from_static(b"{}"), "application/json")
            .await
    }

    use clap::Parser as _;

    #[tokio::test]
    async fn a_2xx_status_line_accepts_the_message_whatever_the_body_does_later() {
        // GIVEN an app that answers 200 at once and sends its body 2 s later, past the 300 ms timeout
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
        let port = app(Some(head), Duration::from_secs(2), "done").await;
        // THEN the status decides: delivered, not timed out
        assert_eq!(post(&relay_to(port, "300ms")).await, Outcome::Delivered(200));
        // AND a refusal is a refusal, also with its body still to come
        let head = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\n";
        let port = app(Some(head), Duration::from_secs(2), "oops").await;
        assert_eq!(post(&relay_to(port, "300ms")).await, Outcome::Rejected(500));
    }

    #[tokio::test]
    async fn no_status_line_within_the_request_timeout_is_a_timeout() {
        // GIVEN an app that answers 2 s after the request, with a 300 ms request timeout
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let port = app(None, Duration::from_secs(2), answer).await;
        // THEN the delivery timed out (the message is left for redelivery)
        assert_eq!(post(&relay_to(port, "300ms")).await, Outcome::TimedOut);
        // AND the same app answering in time is a delivery
        let port = app(None, Duration::from_millis(10), answer).await;
        assert_eq!(post(&relay_to(port, "2s")).await, Outcome::Delivered(200));
    }

    #[test]
    fn content_types_are_guessed() {
        assert_eq!(content_type(r#" {"a":1}"#), "application/json");
        assert_eq!(content_type("[1]"), "application/json");
        assert_eq!(content_type("hello"), "text/plain; charset=utf-8");
    }
}
