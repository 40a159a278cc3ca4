//! A moto world whose controllers reach AWS through a [`Proxy`], while every observation (records,
//! queues, subscriptions, delivery) goes straight to moto, untouched by injected faults.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use serde_json::Value;
use tasksub_core::decide::Role;
use tasksub_core::record::State;
use tasksub_core::settings::Settings;
use tasksub_functions::aws::AwsPorts;
use tasksub_functions::instrumented::Instrumented;
use tasksub_functions::{Controller, HandlerError, Outcome};

use super::Proxy;
use crate::events::Task;
use crate::moto::Moto;
use crate::world::{MotoWorld, World};

/// A controller on the SDK through the proxy, as a Lambda instance runs it.
pub type ProxiedController = Controller<Instrumented<AwsPorts>>;

/// A moto world plus a proxy in front of moto for the controllers.
pub struct Proxied {
    /// The world: its own topic, table and prefix; observation straight to moto.
    pub world: MotoWorld,
    /// The proxy the controllers go through.
    pub proxy: Proxy,
    sdk: SdkConfig,
}

/// One event handled until it stopped failing, as Lambda's retries (and then a replay) would.
#[derive(Debug)]
pub struct Delivered {
    /// The final outcome.
    pub outcome: Outcome,
    /// Deliveries it took (1 = no redelivery).
    pub attempts: usize,
    /// The retryable errors on the way.
    pub errors: Vec<HandlerError>,
}

impl Proxied {
    /// A fresh world behind a fresh proxy (RNG seeded with `seed`), controllers with these SDK settings.
    pub async fn new(seed: u64, retry: RetryConfig, timeouts: TimeoutConfig) -> Self {
        Self::with(&[], seed, retry, timeouts).await
    }

    /// The same with extra settings.
    pub async fn with(extra: &[(&str, &str)], seed: u64, retry: RetryConfig, timeouts: TimeoutConfig) -> Self {
        let world = MotoWorld::with(extra).await;
        let proxy = Proxy::start(Moto::get().endpoint(), seed).await;
        let sdk = proxy.sdk_config(retry, timeouts).await;
        Self { world, proxy, sdk }
    }

    /// The SDK config through the proxy.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The world's settings.
    pub fn settings(&self) -> &Settings {
        self.world.settings()
    }

    /// A new controller through the proxy (a cold instance: empty settled cache).
    pub fn controller(&self, role: Role) -> ProxiedController {
        self.controller_with(self.settings().clone(), role)
    }

    /// A new controller through the proxy with other settings (e.g. after a configuration change).
    pub fn controller_with(&self, settings: Settings, role: Role) -> ProxiedController {
        let ports = AwsPorts::for_settings(&self.sdk, &settings);
        Controller::with_ports(settings, Instrumented::new(ports), role)
    }

    /// Handles `event`, redelivering it after each retryable error, at most `max` deliveries. Panics on
    /// a permanent error or when `max` is reached: the event would land in the on-failure destination.
    pub async fn deliver(c: &ProxiedController, event: &Value, max: usize) -> Delivered {
        let mut errors = Vec::new();
        for attempt in 1..=max {
            match c.handle_json(event).await {
                Ok(outcome) => {
                    return Delivered {
                        outcome,
                        attempts: attempt,
                        errors,
                    }
                }
                Err(e) if e.is_retryable() => errors.push(e),
                Err(e) => panic!("permanent error after {attempt} deliveries: {e}; before: {errors:?}"),
            }
        }
        panic!("no convergence in {max} deliveries: {errors:?}")
    }

    /// The task is READY with its queue and exactly the one subscription its record names.
    pub async fn assert_ready(&self, task: &Task, context: &str) {
        let o = self.world.observe(task).await;
        let r = o.record.unwrap_or_else(|| panic!("{context}: no record"));
        assert_eq!(r.state, State::Ready, "{context}");
        assert!(o.queue_exists, "{context}: no queue");
        assert_eq!(
            o.subscriptions.len(),
            1,
            "{context}: subscriptions {:?}",
            o.subscriptions
        );
        assert_eq!(
            r.subscriptions.values().collect::<Vec<_>>(),
            vec![&o.subscriptions[0]],
            "{context}: the record names another subscription"
        );
        assert!(r.queue_url.is_some(), "{context}: no queue URL recorded");
    }

    /// The task left nothing: no queue, no subscription, a GONE tombstone naming no resource.
    pub async fn assert_gone(&self, task: &Task, context: &str) {
        let o = self.world.observe(task).await;
        assert!(!o.queue_exists, "{context}: queue left behind");
        assert!(
            o.subscriptions.is_empty(),
            "{context}: subscriptions left {:?}",
            o.subscriptions
        );
        let r = o.record.unwrap_or_else(|| panic!("{context}: no tombstone"));
        assert_eq!(r.state, State::Gone, "{context}");
        assert!(r.expires_at.is_some(), "{context}: tombstone without expiry");
        assert_eq!(
            (r.queue_url, r.subscriptions.len()),
            (None, 0),
            "{context}: tombstone names resources"
        );
    }
}
