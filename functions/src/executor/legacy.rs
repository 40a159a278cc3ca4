//! The behaviour before convergence, switched back on in tests only (feature `test-util`), so the
//! interleaving explorer can show that it finds what that behaviour broke (issue #21, case 1): a Subscribe
//! the topic refuses for good failed the whole step (the start stayed PROVISIONING), and a teardown learnt
//! a pending subscription's ARN by subscribing again, so a refusing topic blocked the teardown for good.
//! Without the feature, [`get`] is a constant of `false`s and the production paths never change.

use tasksub_core::converge::topic::TopicAnswer;
use tasksub_core::outcome::ErrorKind;

use crate::ports::Ports;

/// Which old behaviours are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Legacy {
    /// A refused Subscribe fails the step instead of being recorded per topic.
    pub refusal_fails: bool,
    /// A teardown finds a pending subscription by subscribing (the old recover-subscription step).
    pub teardown_subscribes: bool,
}

#[cfg(feature = "test-util")]
thread_local! {
    static LEGACY: std::cell::Cell<Legacy> = const { std::cell::Cell::new(Legacy { refusal_fails: false, teardown_subscribes: false }) };
}

/// The old behaviours switched on for this thread (always none without `test-util`).
pub fn get() -> Legacy {
    #[cfg(feature = "test-util")]
    return LEGACY.with(|l| l.get());
    #[cfg(not(feature = "test-util"))]
    Legacy::default()
}

/// Switches old behaviours on or off for this thread (the explorer runs one schedule per thread).
#[cfg(feature = "test-util")]
pub fn set(legacy: Legacy) {
    LEGACY.with(|l| l.set(legacy));
}

/// The old recover-subscription: Subscribe to learn the ARN; only a missing topic counted as nothing to
/// find, any other refusal failed the teardown for good.
pub(super) async fn find_by_subscribing<P: Ports>(ports: &P, topic: &str, queue_arn: &str) -> TopicAnswer {
    let attrs = std::collections::BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
    match ports.subscribe(topic, queue_arn, &attrs).await {
        Ok(arn) => TopicAnswer::Found(Some(arn)),
        Err(e) if e.kind == ErrorKind::NotFound => TopicAnswer::Found(None),
        Err(e) if e.kind.is_transient() => TopicAnswer::Failed(e.kind, e.to_string()),
        Err(e) => TopicAnswer::Failed(ErrorKind::Config, format!("recover-subscription: {e}")),
    }
}
