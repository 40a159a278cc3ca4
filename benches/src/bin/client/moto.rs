//! The four consumers on moto (optionally with latency added to every consumer request by the timed
//! moto), each run on a fresh queue kept about `backlog` messages deep by a producer thread (its own
//! runtime and SDK client; its CPU time is measured on its thread and subtracted). moto 5.2.5 scans
//! every message of a queue on every SendMessage, ReceiveMessage and DeleteMessage entry, so a deep
//! queue costs moto more per message whatever the consumer does (BENCHMARKS.md §5): the backlog stays
//! shallow. The relay is the release binary (`--relay-bin`), POSTing to an app in this process.
//!
//! Throughput is N over the time from the first to the N-th handled message. Calls: the SDK tap counts
//! this process's requests; the relay's (untagged) are counted by the timed moto.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::json;
use tasksub_bench::events::Task;
use tasksub_bench::moto::{tag_totals, Moto, ServerStats};
use tasksub_bench::stats::median;
use tasksub_bench::sys::{pid_cpu, process_cpu};
use tasksub_bench::tap::{sdk_config, Tap};
use tasksub_client::testing::{with_task_arn, MetadataServer};
use tasksub_client::{CancellationToken, Message};

use crate::variants::{App, Variant, Work};

/// Tags whose requests the timed moto never delays.
const EXEMPT: &[&str] = &["setup", "producer", "check", "cleanup"];
/// moto's tag for requests without one (the relay binary's).
const UNTAGGED: &str = "-";
const PREFIX: &str = "tasksub-";

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct MotoRun {
    pub variant: Variant,
    pub handlers: usize,
    pub added_ms: u64,
    pub rep: usize,
    pub secs: f64,
    pub msgs_per_s: f64,
    pub handled: u64,
    pub work_ms: f64,
    pub left_in_queue: i64,
    pub calls: u64,
    pub receives: u64,
    pub consumer_cpu_ms: f64,
    pub moto_cpu_ms: f64,
    pub receive_rt_ms: f64,
    pub probe_rt_ms: f64,
}

/// What the runs share.
pub struct Bench {
    moto: Moto,
    sdk: aws_config::SdkConfig,
    tap: Arc<Tap>,
    sqs: aws_sdk_sqs::Client,
    relay_bin: std::path::PathBuf,
    recorded: String,
}

impl Bench {
    pub async fn start(relay_bin: std::path::PathBuf) -> anyhow::Result<Self> {
        let moto = Moto::start()?;
        moto.set_added_latency(0, EXEMPT)?;
        let (sdk, tap) = sdk_config(moto.endpoint()).await?;
        let recorded = std::fs::read_to_string(
            tasksub_bench::repo_root().join("fixtures/task-metadata-v4/fargate-task-metadata-pv1.4-2020-docs.json"),
        )?;
        if !relay_bin.exists() {
            bail!(
                "{} is missing: cargo build --release -p tasksub-relay",
                relay_bin.display()
            );
        }
        Ok(Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            moto,
            sdk,
            tap,
            relay_bin,
            recorded,
        })
    }

    pub fn set_added_latency(&self, ms: u64) -> anyhow::Result<()> {
        self.moto.set_added_latency(ms, EXEMPT)
    }

    /// The per-call baseline at the current level: the median of 10 sequential GetQueueUrl round trips
    /// on an otherwise idle moto, delayed like the consumers' requests.
    async fn probe(&self, url: &str, added_ms: u64) -> anyhow::Result<f64> {
        self.tap.set_tag(&format!("probe-l{added_ms}"));
        let name = url.rsplit('/').next().unwrap_or(url);
        let mut rts = Vec::new();
        for _ in 0..10 {
            let t0 = Instant::now();
            self.sqs.get_queue_url().queue_name(name).send().await?;
            rts.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(&rts))
    }

    async fn fresh_queue(&self) -> anyhow::Result<(Task, String)> {
        self.tap.set_tag("setup");
        let task = Task::new();
        let url = self
            .sqs
            .create_queue()
            .queue_name(format!("{PREFIX}{}", task.id))
            .send()
            .await?
            .queue_url()
            .context("queue url")?
            .to_owned();
        Ok((task, url))
    }

    async fn left(&self, url: &str) -> anyhow::Result<i64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        self.tap.set_tag("check");
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let get = |a: A| attrs.get(&a).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(get(A::ApproximateNumberOfMessages) + get(A::ApproximateNumberOfMessagesNotVisible))
    }

    /// One run of `variant` over `n` messages.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        &self,
        variant: Variant,
        handlers: usize,
        added_ms: u64,
        rep: usize,
        n: u64,
        backlog: u64,
        work_per_message: Duration,
    ) -> anyhow::Result<MotoRun> {
        let (task, url) = self.fresh_queue().await?;
        let probe_rt_ms = self.probe(&url, added_ms).await?;
        let tag = format!("{}-h{handlers}-l{added_ms}-r{rep}", variant.key());
        self.tap.set_tag(&tag);
        let work = Work::new(work_per_message, n);
        let stats0 = self.moto.stats()?;
        let m0 = self.tap.mark();
        let (c0, mc0) = (process_cpu(), self.moto.cpu());
        let feed = producer(self.moto.endpoint().to_owned(), url.clone(), n, backlog, work.clone());
        let (secs, relay_cpu_ms) = match variant {
            Variant::Naive => (self.naive(&url, handlers, &work).await?, 0.0),
            Variant::Previous | Variant::Client => (self.client(variant, &task, handlers, &work).await?, 0.0),
            Variant::Relay => self.relay(&task, handlers, &work).await?,
        };
        let (sent, producer_cpu) = feed.join().map_err(|_| anyhow::anyhow!("producer panicked"))??;
        let consumer_cpu_ms = (process_cpu() - c0).as_secs_f64() * 1e3 - producer_cpu + relay_cpu_ms;
        let moto_cpu_ms = (self.moto.cpu() - mc0).as_secs_f64() * 1e3;
        let log = self.tap.log_since(m0.logged);
        let ours: Vec<_> = log.iter().filter(|c| *c.tag == *tag).collect();
        let stats1 = self.moto.stats()?;
        let (calls, receives) = if variant == Variant::Relay {
            (
                untagged(&stats1, None) - untagged(&stats0, None),
                untagged(&stats1, Some("sqs:ReceiveMessage")) - untagged(&stats0, Some("sqs:ReceiveMessage")),
            )
        } else {
            (
                ours.len() as u64,
                ours.iter().filter(|c| c.op == "ReceiveMessage").count() as u64,
            )
        };
        let receive_rt_ms = median(
            &ours
                .iter()
                .filter(|c| c.op == "ReceiveMessage")
                .map(|c| c.dur.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        );
        let left_in_queue = self.left(&url).await?;
        if sent != n {
            bail!("the producer sent {sent} of {n}");
        }
        let (handled, work_time) = work.snapshot();
        self.tap.set_tag("cleanup");
        self.sqs.delete_queue().queue_url(&url).send().await?;
        Ok(MotoRun {
            variant,
            handlers,
            added_ms,
            rep,
            secs,
            msgs_per_s: (n - 1) as f64 / secs,
            handled,
            work_ms: work_time.as_secs_f64() * 1e3 / handled.max(1) as f64,
            left_in_queue,
            calls,
            receives,
            consumer_cpu_ms,
            moto_cpu_ms,
            receive_rt_ms,
            probe_rt_ms,
        })
    }

    async fn naive(&self, url: &str, handlers: usize, work: &Arc<Work>) -> anyhow::Result<f64> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..handlers {
            let (sqs, url, work) = (self.sqs.clone(), url.to_owned(), work.clone());
            set.spawn(async move {
                loop {
                    let out = sqs
                        .receive_message()
                        .queue_url(&url)
                        .max_number_of_messages(1)
                        .wait_time_seconds(0)
                        .send()
                        .await?;
                    for m in out.messages() {
                        std::hint::black_box(m.body().map(str::len));
                        work.run().await;
                        sqs.delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await?;
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), anyhow::Error>(())
            });
        }
        let secs = tokio::select! {
            secs = work.finished() => secs,
            Some(r) = set.join_next() => { r??; bail!("a naive loop ended early"); }
        };
        // The other loops poll an empty queue: stop them.
        set.abort_all();
        while set.join_next().await.is_some() {}
        Ok(secs.as_secs_f64())
    }

    async fn metadata(&self, task: &Task) -> anyhow::Result<MetadataServer> {
        Ok(MetadataServer::serve_task(with_task_arn(&self.recorded, &task.arn)?).await?)
    }

    async fn client(&self, variant: Variant, task: &Task, handlers: usize, work: &Arc<Work>) -> anyhow::Result<f64> {
        let server = self.metadata(task).await?;
        let client = variant
            .builder(handlers)
            .metadata_uri(server.uri())
            .queue_prefix(PREFIX)
            .skip_ready_check()
            .build(&self.sdk)?;
        let stop = CancellationToken::new();
        let w = work.clone();
        let run = tokio::spawn({
            let stop = stop.clone();
            async move {
                client
                    .run(
                        move |message: Message| {
                            let w = w.clone();
                            async move {
                                std::hint::black_box(message.body().len());
                                w.run().await;
                                Ok::<(), std::io::Error>(())
                            }
                        },
                        stop,
                    )
                    .await
            }
        });
        let secs = work.finished().await;
        stop.cancel();
        run.await??;
        Ok(secs.as_secs_f64())
    }

    /// The relay binary; returns the time and the relay process's CPU (ms).
    async fn relay(&self, task: &Task, handlers: usize, work: &Arc<Work>) -> anyhow::Result<(f64, f64)> {
        let server = self.metadata(task).await?;
        let app = App::serve(work.clone()).await?;
        let health = tasksub_bench::sys::free_port();
        let mut child = tokio::process::Command::new(&self.relay_bin)
            .env_clear()
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", tasksub_bench::REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("ECS_CONTAINER_METADATA_URI_V4", server.uri())
            .env("TASKSUB_QUEUE_PREFIX", PREFIX)
            .env("TASKSUB_RELAY_TARGET", app.target())
            .env("TASKSUB_RELAY_LISTEN", format!("127.0.0.1:{health}"))
            .env("TASKSUB_RELAY_CONCURRENCY", handlers.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", self.relay_bin.display()))?;
        let pid = child.id().context("the relay's pid")?;
        let secs = tokio::select! {
            secs = work.finished() => secs,
            status = child.wait() => bail!("the relay exited early: {:?}", status?),
        };
        let cpu = pid_cpu(pid).unwrap_or_default().as_secs_f64() * 1e3;
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
        if status.code() != Some(0) {
            bail!("the relay exited with {status:?}");
        }
        Ok((secs.as_secs_f64(), cpu))
    }
}

/// Requests moto recorded without a tag (the relay's): all SQS actions, or one.
fn untagged(stats: &ServerStats, action: Option<&str>) -> u64 {
    match action {
        None => tag_totals(stats, UNTAGGED).0,
        Some(a) => stats.get(UNTAGGED).and_then(|t| t.get(a)).map_or(0, |t| t.n),
    }
}

/// Keeps the queue about `backlog` messages ahead of the consumer until `n` were sent, from its own
/// thread and runtime. Returns the messages sent and the thread's CPU time (ms).
fn producer(
    endpoint: String,
    url: String,
    n: u64,
    backlog: u64,
    work: Arc<Work>,
) -> std::thread::JoinHandle<anyhow::Result<(u64, f64)>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let sent = rt.block_on(async {
            let (sdk, tap) = sdk_config(&endpoint).await?;
            tap.set_tag("producer");
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let mut sent = 0u64;
            while sent < n {
                if sent.saturating_sub(work.snapshot().0) + 10 > backlog {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
                let count = (n - sent).min(10);
                let mut req = sqs.send_message_batch().queue_url(&url);
                for i in 0..count {
                    let body = json!({"kind": "config-changed", "seq": sent + i, "pad": "x".repeat(160)});
                    req = req.entries(
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body.to_string())
                            .build()?,
                    );
                }
                if !req.send().await?.failed().is_empty() {
                    bail!("SendMessageBatch had failures");
                }
                sent += count;
            }
            Ok::<u64, anyhow::Error>(sent)
        })?;
        Ok((sent, tasksub_bench::sys::thread_cpu().as_secs_f64() * 1e3))
    })
}
