//! tasksub-functions: the Lambda side of tasksub.
//!
//! # Layout
//! - [`ports`]: one trait per capability (records, queues, subscriptions, ECS tasks).
//! - [`aws`]: the ports on the AWS SDK.
//! - `fake`: the ports in memory (test double, feature `test-util`).
//! - `instrumented`: call counters and fault injection around any ports (test double, feature `test-util`).
//! - [`executor`]: runs a plan from `tasksub_core::decide`, the only sequential code.
//! - [`handler`]: [`Controller::handle_json`], the one code path of the functions, the CLI and the tests;
//!   [`Controller::handle_slice`] in front of it for payloads from outside (duplicate keys refused).
//! - [`batch`]: an invocation is a batch from the buffer queue (records handled in order, failures
//!   reported per record) or one EventBridge event.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines.
//! - [`pace`]: the sweeper's rate limit on its own mutating calls.
//! - [`wrap`]: one delegation for the port wrappers (pacing, counting, gating).
//! - [`sweeper`]: gather, reconcile, execute; the scheduled `sweeper` function and `tasksub sweep`.
//! - [`runtime`]: logging and the Lambda entry points shared by the binaries.
#![warn(missing_docs)]

pub mod aws;
pub mod batch;
pub mod executor;
pub mod fake;
pub mod handler;
pub mod instrumented;
pub mod metrics;
pub mod pace;
pub mod ports;
pub mod runtime;
pub mod sdk;
pub mod sweeper;
pub mod wrap;

pub use handler::{Controller, HandlerError, Outcome};
#[cfg(test)]
mod test_log;
