//! The real example binary (examples/consume.rs) under a real SIGTERM, on moto with the metadata
//! stand-in: the client's own signal handler must start the drain, in-flight handlers finish (or are
//! returned to the queue at the drain deadline), deletes are flushed and the process exits 0 in time.
//!
//! `cargo test -p tasksub-client` builds the example next to the test binaries
//! (`target/<profile>/examples/consume`); a stale binary (`cargo test --test sigterm` alone, after an
//! edit) is refused, never run.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use tasksub_tests::moto::{unique, Moto};

fn example_binary() -> PathBuf {
    // target/<profile>/deps/sigterm-<hash> → target/<profile>/examples/consume
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples/consume");
    let rebuild = "build it with `cargo build -p tasksub-client --features testing --example consume` \
                   (plain `cargo test -p tasksub-client` does)";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {rebuild}", path.display()));
    // Cargo's dep-info lists every workspace source the binary was built from: none of this crate's
    // may be newer (other crates' sources are left out: they change under concurrent edits and the
    // client's drain does not live there).
    let dep_info = std::fs::read_to_string(path.with_extension("d")).unwrap_or_default();
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    for source in dep_info.split_whitespace().skip(1).filter(|s| s.starts_with(crate_dir)) {
        let changed = std::fs::metadata(source).and_then(|m| m.modified());
        if changed.is_ok_and(|t| t > built) {
            panic!("{} is older than {source}: {rebuild}", path.display());
        }
    }
    path
}

struct App {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl App {
    fn start(endpoint: &str, prefix: &str, task_arn: &str, args: &[&str]) -> Self {
        let mut child = Command::new(example_binary())
            .args(["--task-arn", task_arn, "--concurrency", "4"])
            .args(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("TASKSUB_QUEUE_PREFIX", prefix)
            .env("RUST_LOG", "info")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("TASKSUB_TABLE")
            .env_remove("ECS_CONTAINER_METADATA_URI_V4")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("[consume] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until `n` lines (seen so far included) contain `needle`.
    fn wait_for(&mut self, needle: &str, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count(needle) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("{n} × {needle:?} not seen within {within:?}; output: {:#?}", self.seen),
            }
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(needle)).count()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit (killing the process if it overstays `within`), then drains the output.
    fn exit_within(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(line);
                }
                return (status, t0.elapsed());
            }
            if t0.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running {within:?} after SIGTERM; output: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    async fn remaining(&self) -> (u64, u64) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        let n = |k: QueueAttributeName| attrs.get(&k).map_or(0, |v| v.parse().unwrap());
        (
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

/// A fresh 32-hex-digit task ID (the naming contract accepts only hex IDs).
fn hex_task_id(label: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let keys = std::collections::hash_map::RandomState::new();
    let half = |salt: &[u8]| {
        let mut h = keys.build_hasher();
        h.write(salt);
        h.write(unique(label).as_bytes());
        h.finish()
    };
    format!("{:016x}{:016x}", half(b"a"), half(b"b"))
}

/// A queue (standing in for the controller's) for a fresh task; returns it, the prefix and the ARN.
async fn setup(label: &str, bodies: &[&str]) -> (Queue, String, String) {
    let moto = Moto::get();
    let sdk = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let prefix = format!("tasksub-{}-", unique(label));
    let id = hex_task_id(label);
    let task_id = id.as_str();
    let task_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/tests/{task_id}");
    let url = sqs
        .create_queue()
        .queue_name(format!("{prefix}{task_id}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for body in bodies {
        sqs.send_message()
            .queue_url(&url)
            .message_body(*body)
            .send()
            .await
            .unwrap();
    }
    (Queue { sqs, url }, prefix, task_arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_handlers_flushes_deletes_and_exits_0() {
    // GIVEN three messages and the example app, whose handlers each work for 3 s
    let (queue, prefix, arn) = setup("sigterm", &["a", "b", "c"]).await;
    let mut app = App::start(Moto::get().endpoint(), &prefix, &arn, &["--work-ms", "3000"]);
    // WHEN all three handlers are in flight and the process gets a real SIGTERM
    app.wait_for("received message", 3, Duration::from_secs(60));
    assert_eq!(app.count("work done"), 0, "still working");
    app.sigterm();
    // THEN it drains and exits 0, well within ECS's 30 s stop timeout
    let (status, took) = app.exit_within(Duration::from_secs(15));
    assert!(status.success(), "{status:?}; output: {:#?}", app.seen);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        app.count("SIGTERM received"),
        1,
        "the client's own handler started the drain"
    );
    assert_eq!(app.count("work done"), 3, "in-flight handlers finished");
    // AND every handled message was deleted before the exit: nothing visible, nothing in flight
    assert_eq!(queue.remaining().await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_returns_unfinished_messages_at_the_drain_deadline_and_exits_0() {
    // GIVEN two messages whose handlers would work for 10 minutes, and a 500 ms drain deadline
    let (queue, prefix, arn) = setup("sigterm-late", &["x", "y"]).await;
    let mut app = App::start(
        Moto::get().endpoint(),
        &prefix,
        &arn,
        &["--work-ms", "600000", "--drain-timeout-ms", "500"],
    );
    app.wait_for("received message", 2, Duration::from_secs(60));
    app.sigterm();
    // THEN it exits 0 soon after the deadline, and both messages are visible again at once (not
    // after their 30 s visibility timeout)
    let (status, took) = app.exit_within(Duration::from_secs(15));
    assert!(status.success(), "{status:?}; output: {:#?}", app.seen);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(app.count("work done"), 0);
    assert_eq!(queue.remaining().await, (2, 0), "returned to the queue");
}
