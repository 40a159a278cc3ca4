//! The Python baseline worker (`benches/baseline/worker.py`): one long-lived child process, driven one
//! JSON line at a time. Every duration is measured inside Python around the handler call, so nothing
//! of the pipe is counted.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};

/// One handler call.
#[derive(Debug, Clone, Deserialize)]
pub struct PyRun {
    /// Wall time, ms.
    pub ms: f64,
    /// CPU time of the calling thread, ms.
    pub cpu_ms: f64,
    /// HTTP requests sent.
    pub calls: u64,
    /// Sequential round trips (a request sent while none was in flight begins one).
    #[serde(default)]
    pub round_trips: u64,
    /// The exception, if any.
    pub error: Option<String>,
}

/// One burst.
#[derive(Debug, Clone, Deserialize)]
pub struct PyBurst {
    /// Wall time of the whole burst, ms.
    pub wall_ms: f64,
    /// Process CPU time during the burst, ms.
    pub cpu_ms: f64,
    /// Completion time of each event from the burst start, ms.
    pub done_ms: Vec<f64>,
    /// Handler time of each event, ms.
    pub service_ms: Vec<f64>,
    /// HTTP requests sent.
    pub calls: u64,
    /// Events that raised.
    pub errors: u64,
    /// The first exception.
    pub first_error: Option<String>,
}

/// The worker process.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts the worker with `env` (emulator endpoint, table and topic names).
    pub fn start(env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(crate::venv_python());
        cmd.arg(crate::baseline("worker.py"))
            .current_dir(crate::baseline(""))
            .env("PYTHONPATH", crate::baseline(""))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawn the Python worker")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        Ok(Self { child, stdin, stdout })
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn call(&mut self, request: &Value) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the Python worker exited");
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Runs `implementation`'s `phase` handler (`start` | `stop`) on one event.
    pub fn run(&mut self, implementation: &str, phase: &str, tag: &str, event: &Value) -> anyhow::Result<PyRun> {
        let v = self.call(&json!({"op": "run", "impl": implementation, "phase": phase, "tag": tag, "event": event}))?;
        Ok(serde_json::from_value(v)?)
    }

    /// One SQS GetQueueUrl from boto3 (the per-call baseline).
    pub fn probe(&mut self, tag: &str) -> anyhow::Result<PyRun> {
        let v = self.call(&json!({"op": "probe", "tag": tag}))?;
        Ok(serde_json::from_value(v)?)
    }

    /// Runs the handler on every event at once, `concurrency` threads at a time.
    pub fn burst(
        &mut self,
        implementation: &str,
        phase: &str,
        tag: &str,
        events: &[Value],
        concurrency: usize,
    ) -> anyhow::Result<PyBurst> {
        let v = self.call(&json!({
            "op": "burst", "impl": implementation, "phase": phase, "tag": tag,
            "events": events, "concurrency": concurrency,
        }))?;
        Ok(serde_json::from_value(v)?)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"op": "quit"}));
        let _ = self.stdin.flush();
        if matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
