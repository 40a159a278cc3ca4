//! The local AWS emulator for tests.
//!
//! `scripts/test` starts one `moto_server` on a free 127.0.0.1 port and exports its URL as
//! `TASKSUB_MOTO_ENDPOINT`. When a test binary runs without it (plain `cargo test`), the harness starts
//! its own `moto_server` from the project venv (`.venv/bin/moto_server`, made by `scripts/setup`) with a
//! watchdog that kills it when the test process exits. If neither is possible the test fails with the
//! command to run: moto scenarios are never silently skipped.
//!
//! Tests never reset moto: every scenario uses its own topic, table and queue prefix.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Environment variable holding the emulator URL.
pub const ENDPOINT_VAR: &str = "TASKSUB_MOTO_ENDPOINT";

/// A running emulator.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    /// The watchdog shell when this process started its own server (it is never waited for: it ends
    /// with this process).
    _watchdog: Option<std::sync::Mutex<std::process::Child>>,
}

static MOTO: OnceLock<Moto> = OnceLock::new();

impl Moto {
    /// The shared emulator of this test process.
    pub fn get() -> &'static Moto {
        MOTO.get_or_init(|| match std::env::var(ENDPOINT_VAR) {
            Ok(endpoint) if !endpoint.is_empty() => Moto {
                endpoint,
                _watchdog: None,
            },
            _ => {
                let (endpoint, child) = start_own();
                Moto {
                    endpoint,
                    _watchdog: Some(std::sync::Mutex::new(child)),
                }
            }
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK config for the emulator: fixed test credentials, us-east-1, `endpoint_url` = moto.
    /// This is what `aws_config::load_defaults` gives a binary run with `AWS_ENDPOINT_URL` set.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn start_own() -> (String, std::process::Child) {
    // moto_server plus the cross-account SNS delivery moto lacks (scripts/moto_server.py)
    let python = repo_root().join(".venv/bin/python");
    let launcher = repo_root().join("scripts/moto_server.py");
    let server = python.clone();
    if !server.exists() {
        panic!(
            "moto is not available: {ENDPOINT_VAR} is unset and {} does not exist. \
             Run the tests with ./scripts/test (it installs and starts moto), or run ./scripts/setup first.",
            server.display()
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let parent = std::process::id();
    // The watchdog shell stops moto once this test process is gone, whatever way it ends.
    let script = format!(
        "'{}' '{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill $m",
        python.display(),
        launcher.display()
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on {endpoint} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (endpoint, child)
}

/// A short unique suffix for names, so parallel tests never share a topic, table or prefix.
pub fn unique(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{label}{}{n}x{:x}", std::process::id() % 10_000, nanos % 0xffff)
}
