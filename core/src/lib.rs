//! tasksub-core: the pure heart of tasksub.
//!
//! Nothing in this crate performs I/O, reads the environment or the clock: callers pass `now` and an
//! environment lookup in. That makes every rule a row in a table test.
//!
//! # Layout
//! - [`naming`]: task ARN → task ID → queue name → queue ARN → record key (the contract shared with the
//!   container client).
//! - [`event`]: our serde type for the `ECS Task State Change` detail inside the EventBridge envelope.
//! - [`settings`]: the controller settings, parsed once from an injected lookup.
//! - [`policy`]: the queue policy, queue attributes, tags and subscription attributes.
//! - [`record`]: the per-task record and its states `PROVISIONING → READY → DRAINING → GONE`.
//! - [`decide`]: `decide(event, stored, settings, now)` → a plan of steps or a typed reason to skip.
//! - [`outcome`]: how each error kind during each step is treated (done / retry / fail).
//! - [`reconcile`]: the sweeper's verdict per task from records, prefixed queues and ECS truth.
//! - [`converge`]: a task's desired state, the differences with what AWS says exists, and the small
//!   state machines that bring one queue and one topic's subscription to it.
//! - [`listing`]: where the sweeper is in each topic's subscription listing, kept between runs.
//! - [`cost`]: what a task costs in AWS requests (the README's cost table, `tasksub doctor`'s cost line).
//! - [`json`]: strict JSON (no repeated keys) for settings.
#![warn(missing_docs)]

pub mod converge;
pub mod cost;
pub mod decide;
pub mod event;
pub mod json;
pub mod listing;
pub mod naming;
pub mod outcome;
pub mod policy;
pub mod reconcile;
pub mod record;
pub mod settings;
#[cfg(test)]
mod test_support;

/// The version of tasksub, written into queue tags so every queue names the controller that made it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
