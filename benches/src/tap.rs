//! An SDK HTTP client wrapper that counts and times every request the AWS SDK sends (after signing and
//! retries: one record per HTTP round trip) and adds an `x-bench-tag` header naming the variant, so the
//! timed moto can attribute its own time. It wraps the SDK's default HTTP client; the code under test
//! gets an ordinary `SdkConfig` and cannot tell.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// One HTTP round trip.
#[derive(Debug, Clone)]
pub struct Call {
    /// The variant tag at the time.
    pub tag: Arc<str>,
    /// The operation (`x-amz-target` suffix or query `Action`).
    pub op: String,
    /// When the request was handed to the HTTP client.
    pub at: Instant,
    /// Time from handing the request to the HTTP client until the response head arrived.
    pub dur: Duration,
}

/// The counters.
#[derive(Debug)]
pub struct Tap {
    tag: RwLock<Arc<str>>,
    calls: AtomicU64,
    nanos: AtomicU64,
    log: Mutex<Vec<Call>>,
}

impl Default for Tap {
    fn default() -> Self {
        Self {
            tag: RwLock::new(Arc::from("-")),
            calls: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        }
    }
}

/// Counters at one moment; subtract two to get what happened in between.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mark {
    /// HTTP requests.
    pub calls: u64,
    /// Time spent inside the HTTP client.
    pub in_http: Duration,
    /// Length of the call log (calls are logged as they complete).
    pub logged: usize,
}

impl std::ops::Sub for Mark {
    type Output = Mark;
    fn sub(self, rhs: Mark) -> Mark {
        Mark {
            calls: self.calls - rhs.calls,
            in_http: self.in_http.saturating_sub(rhs.in_http),
            logged: self.logged.saturating_sub(rhs.logged),
        }
    }
}

impl Tap {
    /// Sets the tag sent with every following request.
    pub fn set_tag(&self, tag: &str) {
        *self.tag.write().expect("tag lock") = Arc::from(tag);
    }

    /// The counters now.
    pub fn mark(&self) -> Mark {
        Mark {
            calls: self.calls.load(Ordering::SeqCst),
            in_http: Duration::from_nanos(self.nanos.load(Ordering::SeqCst)),
            logged: self.log.lock().expect("log lock").len(),
        }
    }

    /// Every round trip so far.
    pub fn log(&self) -> Vec<Call> {
        self.log.lock().expect("log lock").clone()
    }

    /// The calls logged from `from` (a [`Mark::logged`]) on.
    pub fn log_since(&self, from: usize) -> Vec<Call> {
        let log = self.log.lock().expect("log lock");
        log.get(from..).map(<[Call]>::to_vec).unwrap_or_default()
    }

    /// Forgets the log (the counters keep counting).
    pub fn clear_log(&self) {
        self.log.lock().expect("log lock").clear();
    }

    fn record(&self, call: Call) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.nanos.fetch_add(call.dur.as_nanos() as u64, Ordering::SeqCst);
        self.log.lock().expect("log lock").push(call);
    }
}

#[derive(Debug, Clone)]
struct TapClient {
    inner: SharedHttpClient,
    tap: Arc<Tap>,
}

impl HttpClient for TapClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(TapConnector {
            inner: self.inner.http_connector(settings, components),
            tap: self.tap.clone(),
        })
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct TapConnector {
    inner: SharedHttpConnector,
    tap: Arc<Tap>,
}

fn operation(request: &HttpRequest) -> String {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let body = request.body().bytes().unwrap_or_default();
    let body = std::str::from_utf8(body).unwrap_or("");
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("?")
        .to_owned()
}

impl HttpConnector for TapConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let start = Instant::now();
        let tag = self.tap.tag.read().expect("tag lock").clone();
        let op = operation(&request);
        request.headers_mut().insert("x-bench-tag", tag.to_string());
        let inner = self.inner.clone();
        let tap = self.tap.clone();
        HttpConnectorFuture::new(async move {
            let result = inner.call(request).await;
            tap.record(Call {
                tag,
                op,
                at: start,
                dur: start.elapsed(),
            });
            result
        })
    }
}

/// Sequential round trips among `calls` (e.g. one event's), and the time at least one of them was in
/// flight: calls are sorted by start, and a call that starts after every earlier call has ended begins
/// a new round trip; calls that overlap one in flight share its round trip (they were issued
/// concurrently).
pub fn round_trips(calls: &[Call]) -> (usize, Duration) {
    let mut spans: Vec<(Instant, Instant)> = calls.iter().map(|c| (c.at, c.at + c.dur)).collect();
    spans.sort_by_key(|s| s.0);
    let mut trips = 0;
    let mut busy = Duration::ZERO;
    let mut current: Option<(Instant, Instant)> = None;
    for (start, end) in spans {
        match current {
            Some((from, until)) if start < until => current = Some((from, until.max(end))),
            _ => {
                if let Some((from, until)) = current {
                    busy += until - from;
                }
                trips += 1;
                current = Some((start, end));
            }
        }
    }
    if let Some((from, until)) = current {
        busy += until - from;
    }
    (trips, busy)
}

/// The SDK's default HTTP client, built the way `aws-smithy-runtime` (1.16, feature
/// `default-https-client`) builds it for `BehaviorVersion::latest()`: hyper 1.x, rustls with aws-lc,
/// proxy settings from the environment. `SdkConfig` does not carry it (each service client makes its
/// own), so to wrap it we make the same one.
fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(move |settings, runtime_components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// SDK config for the emulator (fixed credentials, us-east-1, `endpoint_url`), the way
/// `aws_config::load_defaults` builds it for a binary run with `AWS_ENDPOINT_URL`, with the default HTTP
/// client wrapped by a [`Tap`].
pub async fn sdk_config(endpoint: &str) -> anyhow::Result<(SdkConfig, Arc<Tap>)> {
    let tap = Arc::new(Tap::default());
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(crate::REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .endpoint_url(endpoint)
        .http_client(TapClient {
            inner: default_http_client(),
            tap: tap.clone(),
        })
        .load()
        .await;
    Ok((sdk, tap))
}
