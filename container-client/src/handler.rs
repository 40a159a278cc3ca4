//! What the application plugs in: a message handler and, optionally, a resync hook.

use std::future::Future;

use crate::{BoxError, Message, TaskQueue};

/// The application's side of the consumer.
///
/// `handle` returning `Ok` acknowledges the message (it is deleted); returning `Err` (or panicking)
/// leaves it for redelivery. Handlers run concurrently, up to
/// [`ClientBuilder::max_concurrency`](crate::ClientBuilder::max_concurrency) at once.
///
/// Any `Fn(Message) -> impl Future<Output = Result<(), E>>` closure is a handler; implement the trait
/// on your own type to also get [`Handler::on_subscribed`].
pub trait Handler: Send + Sync + 'static {
    /// Handles one message. Never log its body if it may hold secrets or personal data.
    fn handle(&self, message: Message) -> impl Future<Output = Result<(), BoxError>> + Send;

    /// Called once, when the controller's record says READY (the queue is subscribed), before the
    /// first message is received. A broadcast subscriber misses whatever was published before its
    /// subscription existed: reload that state here (e.g. fetch the full configuration once).
    ///
    /// It needs the record table (`TASKSUB_TABLE` or
    /// [`ClientBuilder::wait_for_ready`](crate::ClientBuilder::wait_for_ready)): without it the client
    /// cannot tell a subscribed queue from one that merely exists, so the hook is **not called** (and
    /// a warning is logged at build time).
    fn on_subscribed(&self, queue: &TaskQueue) -> impl Future<Output = ()> + Send {
        let _ = queue;
        async {}
    }
}

impl<F, Fut, E> Handler for F
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Into<BoxError>,
{
    fn handle(&self, message: Message) -> impl Future<Output = Result<(), BoxError>> + Send {
        let fut = self(message);
        async move { fut.await.map_err(Into::into) }
    }
}
