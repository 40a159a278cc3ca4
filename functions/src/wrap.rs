//! One delegation for every port wrapper. A wrapper says what it does around one call ([`Wrap::around`]:
//! pace it, count it, fail it, gate it...), and [`wrap_ports!`](crate::wrap_ports) writes the port methods
//! that hand each call of the inner ports to it, named by its AWS operation (`ListSubscriptionsByTopic`
//! for both `find` and `list_by_topic`, `GetQueueAttributes` for `details`). Used by [`crate::pace::Paced`]
//! (the sweeper's rate limit), the `instrumented` test double, and the test harness's gates and quotas.

use std::future::Future;

use crate::ports::PortError;

#[doc(hidden)]
pub use tasksub_core::listing::Positions as __Positions;
#[doc(hidden)]
pub use tasksub_core::record::Record as __Record;

/// A wrapper around ports.
pub trait Wrap: Send + Sync {
    /// The wrapped ports.
    type Inner: Send + Sync;
    /// The wrapped ports.
    fn inner(&self) -> &Self::Inner;
    /// Runs `call`, the inner ports' call of AWS operation `op` (a future not polled yet), with the
    /// wrapper's doing around it.
    fn around<T: Send>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, PortError>> + Send,
    ) -> impl Future<Output = Result<T, PortError>> + Send;
}

/// Implements the listed port traits (`Records`, `Queues`, `Subscriptions`, `Tasks`) for
/// a [`Wrap`] type, each method as `around(<operation>, inner.<method>(..))`, for inner ports that
/// implement the trait. Generic parameters go in brackets:
/// `wrap_ports!(['a, P] Paced<'a, P>: Records, Queues, Subscriptions);`.
#[macro_export]
macro_rules! wrap_ports {
    ($gens:tt $ty:ty: $($port:ident),+ $(,)?) => {
        $($crate::wrap_ports!(@port $gens $ty, $port);)+
    };
    (@port [$($gen:tt)*] $ty:ty, Records) => {
        $crate::wrap_ports!(@impl [$($gen)*] $ty, Records {
            get(task_id: &str) -> Option<$crate::wrap::__Record> = "GetItem";
            put(record: &$crate::wrap::__Record, expect: $crate::ports::Expect) -> $crate::ports::Written = "PutItem";
            list() -> $crate::ports::Scanned = "Scan";
            positions() -> $crate::wrap::__Positions = "GetItem";
            save_positions(positions: &$crate::wrap::__Positions) -> bool = "PutItem";
        });
    };
    (@port [$($gen:tt)*] $ty:ty, Queues) => {
        $crate::wrap_ports!(@impl [$($gen)*] $ty, Queues {
            create(
                name: &str,
                attributes: &std::collections::BTreeMap<&'static str, String>,
                tags: &std::collections::BTreeMap<&'static str, String>
            ) -> String = "CreateQueue";
            url(name: &str) -> String = "GetQueueUrl";
            delete(url: &str) -> () = "DeleteQueue";
            queue_attributes(url: &str) -> std::collections::BTreeMap<String, String> = "GetQueueAttributes";
            queue_tags(url: &str) -> std::collections::BTreeMap<String, String> = "ListQueueTags";
            set_queue_attributes(url: &str, attributes: &std::collections::BTreeMap<&'static str, String>) -> ()
                = "SetQueueAttributes";
            list(prefix: &str) -> Vec<String> = "ListQueues";
        });
    };
    (@port [$($gen:tt)*] $ty:ty, Subscriptions) => {
        $crate::wrap_ports!(@impl [$($gen)*] $ty, Subscriptions {
            subscribe(
                topic_arn: &str,
                queue_arn: &str,
                attributes: &std::collections::BTreeMap<&'static str, String>
            ) -> String = "Subscribe";
            unsubscribe(subscription_arn: &str) -> () = "Unsubscribe";
            subscription_attributes(subscription_arn: &str) -> std::collections::BTreeMap<String, String>
                = "GetSubscriptionAttributes";
            set_subscription_attribute(subscription_arn: &str, name: &'static str, value: &str) -> ()
                = "SetSubscriptionAttributes";
            find(topic_arn: &str, endpoint: &str) -> Option<String> = "ListSubscriptionsByTopic";
            list_own(topic_arn: &str, next: Option<String>) -> $crate::ports::SubscriptionPage = "ListSubscriptions";
            list_by_topic(topic_arn: &str, next: Option<String>) -> $crate::ports::SubscriptionPage
                = "ListSubscriptionsByTopic";
        });
    };
    (@port [$($gen:tt)*] $ty:ty, Tasks) => {
        $crate::wrap_ports!(@impl [$($gen)*] $ty, Tasks {
            list_tasks(cluster: &str, desired: $crate::ports::Desired) -> Vec<String> = "ListTasks";
            describe_tasks(cluster: &str, task_arns: &[String]) -> $crate::ports::Described = "DescribeTasks";
        });
    };
    (@impl [$($gen:tt)*] $ty:ty, $port:ident {
        $($method:ident($($arg:ident: $arg_ty:ty),* $(,)?) -> $out:ty = $op:literal;)+
    }) => {
        impl<$($gen)*> $crate::ports::$port for $ty
        where
            $ty: $crate::wrap::Wrap,
            <$ty as $crate::wrap::Wrap>::Inner: $crate::ports::$port,
        {
            $(
                async fn $method(&self, $($arg: $arg_ty),*) -> Result<$out, $crate::ports::PortError> {
                    let inner = $crate::wrap::Wrap::inner(self);
                    $crate::wrap::Wrap::around(self, $op, $crate::ports::$port::$method(inner, $($arg),*)).await
                }
            )+
        }
    };
}
