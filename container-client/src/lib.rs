//! tasksub-client: the library a container embeds to find and consume its own task queue.
//!
//! The tasksub controller gives every running ECS task its own SQS queue, subscribed to a shared SNS
//! topic, so each task receives a copy of every message (broadcast). This crate is the container's
//! side: it never creates anything, it finds what the controller made.
//!
//! 1. **Discover** — ask the ECS task metadata endpoint v4 (`$ECS_CONTAINER_METADATA_URI_V4/task`)
//!    for the task ARN, and derive the queue name with the naming contract the controller uses
//!    ([`tasksub_core::naming`]): `<TASKSUB_QUEUE_PREFIX><task id>`, with `.fifo` appended when the
//!    deployment's topics are SNS FIFO topics (`TASKSUB_QUEUE_FIFO=true`, or [`ClientBuilder::queue_fifo`]).
//! 2. **Wait** — GetQueueUrl with jittered backoff until the queue exists (2 minutes by default) and,
//!    when the record table is known (`TASKSUB_TABLE`, or [`ClientBuilder::wait_for_ready`]), until
//!    the controller's record says READY. Waiting for READY is the default whenever the table is known.
//! 3. **Resync** — call [`Handler::on_subscribed`] once, **only when the record said READY**: reload
//!    whatever was published before the subscription existed. Without a table the hook is not called
//!    (see [Subscription](#subscription)).
//! 4. **Consume** — one 20 s long poll while the queue is idle; while it is deep, as many receives of
//!    10 in flight as keep every handler busy, messages held ahead of the handlers within what they
//!    finish before a first heartbeat ([`ClientBuilder::max_buffered`],
//!    [`ClientBuilder::max_receives_in_flight`]); at most `max_concurrency` handlers at once,
//!    successful messages deleted in batches, failed ones left for redelivery, visibility renewed while
//!    a message is held. On a FIFO queue, one message of a group at a time, in order (see
//!    [FIFO queues](#fifo-queues)).
//! 5. **Drain** — on SIGTERM (or the app's [`CancellationToken`]) stop polling at once, give in-flight
//!    handlers up to 20 s, flush deletes, return unfinished messages to the queue, return.
//!
//! # Example
//! ```no_run
//! use tasksub_client::{Client, Message};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let client = Client::builder().max_concurrency(4).build(&sdk)?;
//! let report = client
//!     .run(
//!         |message: Message| async move {
//!             // Log sizes and IDs, never bodies.
//!             tracing::info!(id = message.sqs_message_id(), bytes = message.body().len(), "got one");
//!             Ok::<(), std::io::Error>(())
//!         },
//!         CancellationToken::new(),
//!     )
//!     .await?;
//! println!("handled {} messages", report.succeeded);
//! # Ok(())
//! # }
//! ```
//!
//! Implement [`Handler`] on your own type to also get the [`Handler::on_subscribed`] hook.
//!
//! # Subscription
//! The controller provisions a task as claim → CreateQueue → Subscribe → MarkReady, and may run
//! CreateQueue and Subscribe concurrently: a queue that exists is **not** known to be subscribed. The
//! READY record is the only sound signal, so:
//! - with a table (`TASKSUB_TABLE` or [`ClientBuilder::wait_for_ready`]), the client waits for READY
//!   (by default) and then calls [`Handler::on_subscribed`] exactly once, before the first message;
//! - without one (or with [`ClientBuilder::skip_ready_check`]), it consumes as soon as the queue exists,
//!   [`TaskQueue::subscription_confirmed`] is false and `on_subscribed` is **never called** (a warning
//!   is logged). Apps that must resync set `TASKSUB_TABLE` and grant `dynamodb:GetItem`.
//!
//! Checking the queue policy or listing the topic's subscriptions instead was rejected: it needs the
//! topic ARN and `sns:ListSubscriptionsByTopic` in every task role, and a subscription can be listed
//! before the controller is done with the task.
//!
//! # Environment
//! | variable | meaning |
//! |---|---|
//! | `ECS_CONTAINER_METADATA_URI_V4` | set by ECS; [`ClientBuilder::metadata_uri`] overrides it for local runs |
//! | `TASKSUB_QUEUE_PREFIX` | queue name prefix, default `tasksub-` (must match the controller's) |
//! | `TASKSUB_TABLE` | the controller's record table: wait until the task's record is READY, then call `on_subscribed` |
//! | `TASKSUB_QUEUE_FIFO` | `true` when the topics are SNS FIFO topics: the queue is `<prefix><task id>.fifo`; default `false` ([`QUEUE_FIFO_VAR`], [`ClientBuilder::queue_fifo`]) |
//! | `AWS_REGION`, credentials, `AWS_ENDPOINT_URL` | read by `aws-config` when the app loads its `SdkConfig` |
//!
//! A missing region or credentials provider fails [`ClientBuilder::build`], and credentials the
//! provider cannot find fail [`Client::connect`] at once: both are configuration errors
//! ([`Error::is_config`]), never retried.
//!
//! # FIFO queues
//! With SNS FIFO topics the controller gives each task a FIFO queue, `<prefix><task id>.fifo`; set
//! `TASKSUB_QUEUE_FIFO=true` (or [`ClientBuilder::queue_fifo`]) so the client looks for that name. It
//! then asks ReceiveMessage for `MessageGroupId` ([`Message::group_id`]) and keeps each group's order:
//! - messages of one group run one at a time, in the order SQS delivered them, even when one receive
//!   returned several of them; messages of different groups run concurrently (up to
//!   `max_concurrency`). A FIFO consumer holds no more messages than it has handlers, those waiting
//!   for their group included, and the heartbeat keeps the waiting ones invisible like running ones;
//! - when a message fails (error or panic) the messages of its group received behind it are **not run**:
//!   they are made visible again at once (counted in [`RunReport::released`]). SQS holds the group back
//!   while the failed message is in flight, then redelivers the failed message first and the others
//!   after it, in order;
//! - deletes, heartbeats, the retry backoff, duplicate suppression and the drain work as on a standard
//!   queue. Standard queues ignore groups.
//!
//! # Timeouts
//! Every SQS and DynamoDB call is bounded ([`ClientBuilder::sdk_timeouts`]): [`SDK_CONNECT_TIMEOUT`]
//! to connect, [`SDK_ATTEMPT_TIMEOUT`] per attempt and [`SDK_OPERATION_TIMEOUT`] per call with its
//! retries; ReceiveMessage gets [`LONG_POLL_WAIT`] more on both. The metadata request has its own
//! ([`METADATA_CONNECT_TIMEOUT`], [`METADATA_READ_TIMEOUT`], [`METADATA_ATTEMPTS`]); a metadata response
//! above [`METADATA_MAX_BYTES`] is an immediate error, not retried.
//!
//! The task role needs `sqs:ReceiveMessage`, `sqs:DeleteMessage`, `sqs:ChangeMessageVisibility`,
//! `sqs:GetQueueUrl` on `<prefix>*`, and `dynamodb:GetItem` on the table if READY is awaited.
//!
//! # Guarantees
//! - A message is deleted only after its handler returned `Ok`; every such delete is sent before
//!   [`Client::run`] returns.
//! - A failed (or panicked) handler's message is redelivered; unfinished messages are made visible
//!   again at shutdown. Delivery is at least once: make handlers idempotent, or use
//!   [`ClientBuilder::dedup_window`].
//! - Duplicate suppression is keyed by [`Message::dedup_key`]. With raw delivery (tasksub's default)
//!   SNS drops its message ID and each SNS redelivery is a new SQS message, so it catches SNS
//!   duplicates **only if publishers set the [`DEDUP_ID_ATTRIBUTE`] (`tasksub-dedup-id`) message
//!   attribute** to a stable ID of the event; with raw delivery off the envelope's `MessageId` is used.
//! - On SIGTERM (unless [`ClientBuilder::handle_sigterm`] is off) [`Client::run`] drains and returns;
//!   the process then exits normally (status 0 in the example app).
//! - Nothing logged carries message bodies, receipt handles or credentials.
//!
//! # Layout
//! - `builder`: [`ClientBuilder`] (every setting, resolved and validated once by `build`).
//! - `client`: [`Client`] (discover → wait → consume).
//! - `metadata`: the task metadata request and its parsing.
//! - `wait`: waiting for the queue and the READY record.
//! - `consume`: the loop: `intake` (how many receives in flight, for how many messages: pure), `poll`
//!   (receive, dispatch, handler tasks), `order` (FIFO groups), `ack`
//!   (batched deletes and visibility changes, one retry loop), `heartbeat`, `leases`, `dedup`, drain.
//! - `message`: the typed [`Message`] and SNS envelope unwrapping.
//! - `port` / `aws`: the small internal ports and their SDK implementations.
//! - `testing` (feature `testing`): a loopback stand-in for the metadata endpoint; an in-memory SQS
//!   queue and the consume loop on it (benchmarks).
#![warn(missing_docs)]

mod aws;
mod backoff;
mod builder;
mod client;
mod consume;
mod error;
mod filter;
mod handler;
#[cfg(test)]
mod memory;
mod message;
mod metadata;
mod port;
mod task;
mod wait;

#[cfg(feature = "testing")]
pub mod testing;

pub use builder::{
    ClientBuilder, DEFAULT_BUFFERED_PER_HANDLER, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RECEIVES_IN_FLIGHT,
    DEFAULT_VISIBILITY_TIMEOUT, DELETE_FLUSH_INTERVAL, DRAIN_TIMEOUT, MAX_BUFFERED_LIMIT, MAX_VISIBILITY_EXTENSION,
    QUEUE_FIFO_VAR, SDK_ATTEMPT_TIMEOUT, SDK_CONNECT_TIMEOUT, SDK_OPERATION_TIMEOUT,
};
pub use client::Client;
pub use consume::{RunReport, LONG_POLL_WAIT};
pub use error::{BoxError, Error};
pub use handler::Handler;
pub use message::{Attribute, AttributeValue, Delivery, Message, DEDUP_ID_ATTRIBUTE};
pub use metadata::{
    METADATA_ATTEMPTS, METADATA_CONNECT_TIMEOUT, METADATA_MAX_BYTES, METADATA_READ_TIMEOUT, METADATA_URI_VAR,
    TASK_ARN_LABEL,
};
pub use task::{TaskIdentity, TaskQueue};
pub use tasksub_core::naming::{QueueName, TaskId};
pub use tasksub_core::record::State;
pub use tokio_util::sync::CancellationToken;
pub use wait::QUEUE_WAIT_LIMIT;

/// The README's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
