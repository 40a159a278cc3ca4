//! tasksub-relay: a sidecar that lets an app in any language consume its ECS task's tasksub queue.
//!
//! It discovers the task's queue exactly as [`tasksub_client`] does (it *is* the client: ECS task
//! metadata v4 → `<TASKSUB_QUEUE_PREFIX><task id>`, wait for the queue and, with `TASKSUB_TABLE`, for
//! READY), waits until the app's health URL answers 2xx, then POSTs each message to the app on
//! localhost. The app's status decides the message's fate ([`deliver`]); metadata travels in headers
//! ([`headers`]); the relay's own `/healthz` ([`health`]) tells ECS when it is consuming ([`status`]).
//!
//! # Exit status
//! | code | meaning |
//! |---|---|
//! | 0 | clean drain (SIGTERM or SIGINT), or shutdown before the queue was ready |
//! | 1 | internal error |
//! | 2 | bad configuration (a non-loopback target, a missing `TASKSUB_RELAY_TARGET` or `ECS_CONTAINER_METADATA_URI_V4`, ...) |
//! | 3 | discovery or the queue wait failed (metadata endpoint, queue never appeared, not READY, task stopping) |
//! | 4 | the app did not become healthy within `TASKSUB_RELAY_APP_WAIT` |
//! | 5 | the health listener could not be bound |
#![warn(missing_docs)]

pub mod config;
pub mod deliver;
pub mod headers;
pub mod health;
pub mod status;

/// Exit status: clean drain.
pub const EXIT_OK: u8 = 0;
/// Exit status: internal error.
pub const EXIT_INTERNAL: u8 = 1;
/// Exit status: bad configuration.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status: discovery or queue wait failed.
pub const EXIT_DISCOVERY: u8 = 3;
/// Exit status: the app never became healthy.
pub const EXIT_APP_UNHEALTHY: u8 = 4;
/// Exit status: the health listener could not be bound.
pub const EXIT_LISTEN: u8 = 5;
