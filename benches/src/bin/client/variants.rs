//! The four consumers compared, the handler work they all do, and the HTTP app behind the relay.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tasksub_client::{Client, ClientBuilder};
use tokio::sync::Notify;

/// One consumer design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// One ReceiveMessage(MaxNumberOfMessages=1, WaitTimeSeconds=0) then one DeleteMessage per message,
    /// in a loop per handler.
    Naive,
    /// tasksub-client with its former policy (`max_buffered(0)`, `max_receives_in_flight(1)`): one
    /// receive at a time, for no more messages than free handlers.
    Previous,
    /// tasksub-client with its defaults: receives in flight adapted to demand.
    Client,
    /// tasksub-relay (its defaults) POSTing each message to an HTTP app on loopback that does the work.
    Relay,
}

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Variant; 4] = [Variant::Naive, Variant::Previous, Variant::Client, Variant::Relay];

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Naive => "naive receive-one/delete-one",
            Variant::Previous => "tasksub-client, previous policy",
            Variant::Client => "**tasksub-client**",
            Variant::Relay => "**tasksub-relay**",
        }
    }

    /// The short name (JSON, logs, tags).
    pub fn key(self) -> &'static str {
        match self {
            Variant::Naive => "naive",
            Variant::Previous => "previous",
            Variant::Client => "client",
            Variant::Relay => "relay",
        }
    }

    /// Parses a short name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.key() == s)
    }

    /// A client builder with this variant's consume settings (the relay's are the client defaults).
    pub fn builder(self, handlers: usize) -> ClientBuilder {
        let b = Client::builder().max_concurrency(handlers).handle_sigterm(false);
        match self {
            Variant::Previous => b.max_buffered(0).max_receives_in_flight(1),
            _ => b,
        }
    }
}

/// The handler's work (a sleep: I/O-like work that does not compete for the 2 cores), what it
/// measured, and a signal once `target` messages were handled.
#[derive(Debug)]
pub struct Work {
    per_message: Duration,
    handled: AtomicU64,
    nanos: AtomicU64,
    target: u64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    done: Notify,
}

impl Work {
    /// Work of `per_message` per message; `target` messages make [`Work::finished`] return.
    pub fn new(per_message: Duration, target: u64) -> Arc<Self> {
        Arc::new(Self {
            per_message,
            handled: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            target,
            first: Mutex::new(None),
            last: Mutex::new(None),
            done: Notify::new(),
        })
    }

    /// Handles one message.
    pub async fn run(&self) {
        let t0 = Instant::now();
        if !self.per_message.is_zero() {
            tokio::time::sleep(self.per_message).await;
        }
        let now = Instant::now();
        self.nanos.fetch_add((now - t0).as_nanos() as u64, Ordering::Relaxed);
        let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            *self.first.lock().unwrap() = Some(now);
        }
        if n == self.target {
            *self.last.lock().unwrap() = Some(now);
            self.done.notify_one();
        }
    }

    /// Messages handled and the time they took, so far.
    pub fn snapshot(&self) -> (u64, Duration) {
        (
            self.handled.load(Ordering::SeqCst),
            Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
        )
    }

    /// Waits until `target` messages were handled; the time from the first to the last of them.
    pub async fn finished(&self) -> Duration {
        while self.handled.load(Ordering::SeqCst) < self.target {
            let _ = tokio::time::timeout(Duration::from_millis(100), self.done.notified()).await;
        }
        let first = self.first.lock().unwrap().expect("handled one");
        let last = self.last.lock().unwrap().expect("handled all");
        last - first
    }
}

/// An HTTP app on 127.0.0.1 that does the work for each POST and answers 200 (the relay's target). It
/// runs on a runtime (one thread) of its own, as a separate process would, so its tasks do not queue
/// behind the relay's.
pub struct App {
    /// Its port.
    pub port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl App {
    /// Serves until dropped.
    pub async fn serve(work: Arc<Work>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-app")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let work = work.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let work = work.clone();
                        async move {
                            work.run().await;
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(StatusCode::OK)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .expect("a response"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            port,
            runtime: Some(runtime),
        })
    }

    /// The URL the relay POSTs to.
    pub fn target(&self) -> String {
        format!("http://127.0.0.1:{}/messages", self.port)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The relay's handler, in this process, with its default settings and `handlers` deliveries at once.
pub fn relay_handler(
    target: &str,
    handlers: usize,
    stop: tokio_util::sync::CancellationToken,
) -> tasksub_relay::deliver::Relay {
    use clap::Parser as _;
    let args = tasksub_relay::config::Args::parse_from([
        "tasksub-relay",
        "--target",
        target,
        "--concurrency",
        &handlers.to_string(),
    ]);
    let cfg = tasksub_relay::config::Config::from_args(&args).expect("valid relay settings");
    tasksub_relay::deliver::Relay::new(Arc::new(cfg), Arc::default(), stop)
}
