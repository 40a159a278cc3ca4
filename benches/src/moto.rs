//! A moto server of our own (`benches/baseline/moto_timed.py`: `moto_server` plus per-request timing),
//! started as a child of the benchmark so its pid, CPU time and request times are ours to read.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;

/// moto's time on one `service:Action` for one tag.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize)]
pub struct ActionTime {
    /// Requests.
    pub n: u64,
    /// Total wall time inside moto's WSGI app, ms.
    pub wall_ms_sum: f64,
    /// Median wall time, ms.
    pub wall_ms_median: f64,
    /// Total CPU time of the serving thread, ms.
    pub cpu_ms_sum: f64,
    /// Median CPU time, ms.
    pub cpu_ms_median: f64,
}

/// tag → `service:Action` → time.
pub type ServerStats = BTreeMap<String, BTreeMap<String, ActionTime>>;

/// The running server; stopped on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    endpoint: String,
}

impl Moto {
    /// Starts the timed moto on a free port and waits until it answers.
    pub fn start() -> anyhow::Result<Self> {
        let port = crate::sys::free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("tasksub-bench-moto-{port}.log")))?;
        let child = Command::new(crate::venv_python())
            .arg(crate::baseline("moto_timed.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {} (run scripts/setup first)", crate::venv_python().display()))?;
        let moto = Self {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto.get("/__bench/pid").is_err() {
            if Instant::now() > deadline {
                bail!("moto did not answer on {} within 60 s", moto.endpoint);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's pid (the Python process serving every request).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time moto has used so far.
    pub fn cpu(&self) -> Duration {
        crate::sys::pid_cpu(self.pid()).unwrap_or_default()
    }

    /// Per-request times recorded so far.
    pub fn stats(&self) -> anyhow::Result<ServerStats> {
        Ok(serde_json::from_str(&self.get("/__bench/stats")?)?)
    }

    /// Sets the latency the server adds to every request before moto handles it (in the request's own
    /// thread, so concurrent requests wait concurrently), except requests whose `x-bench-tag` starts
    /// with one of `exempt`.
    pub fn set_added_latency(&self, ms: u64, exempt: &[&str]) -> anyhow::Result<()> {
        self.request("POST", &format!("/__bench/latency?ms={ms}&exempt={}", exempt.join(",")))
            .map(drop)
    }

    /// Forgets the recorded request times.
    pub fn reset(&self) -> anyhow::Result<()> {
        self.request("POST", "/__bench/reset").map(drop)
    }

    fn get(&self, path: &str) -> anyhow::Result<String> {
        self.request("GET", path)
    }

    fn request(&self, method: &str, path: &str) -> anyhow::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let (head, body) = out.split_once("\r\n\r\n").context("HTTP response")?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            bail!("{method} {path}: {}", head.lines().next().unwrap_or(""));
        }
        Ok(body.to_owned())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sums moto's wall and CPU time over every action of `tag`.
pub fn tag_totals(stats: &ServerStats, tag: &str) -> (u64, f64, f64) {
    stats.get(tag).map_or((0, 0.0, 0.0), |actions| {
        actions.values().fold((0, 0.0, 0.0), |(n, w, c), a| {
            (n + a.n, w + a.wall_ms_sum, c + a.cpu_ms_sum)
        })
    })
}
