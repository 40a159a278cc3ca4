//! Filter policies the task applies itself (pure).
//!
//! SNS allows 200 filter policies per topic. A topic configured with `filterPolicyAt: "client"` is
//! subscribed without one, and the controller hands the policy to the task in its record
//! (`clientFilters`: topic ARN → policy, scope, raw). The client reads it with the record and evaluates
//! every message with [`tasksub_filter`] (SNS's semantics, proven against an independent engine by
//! `scripts/filter-diff`): a message the policy rejects is deleted without reaching the handler and
//! counted ([`crate::RunReport::filtered_out`]).
//!
//! Which policy applies to a message: the one of its topic, named by the SNS envelope (`TopicArn`); a
//! raw-delivered message names no topic, so the settings allow a task-applied filter on a raw-delivery
//! topic only when it is the only raw-delivery topic, and that filter applies to every raw message. A
//! policy that does not parse (a record edited by hand, a newer controller's syntax) filters nothing: an
//! extra message is a smaller harm than a lost one; the failure is logged when the filters are loaded.

use std::collections::BTreeMap;

use tasksub_core::record::ClientFilter;
use tasksub_filter::FilterPolicy;

use crate::message::{AttributeValue, Delivery, Message};

/// The compiled filters of one task.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    by_topic: BTreeMap<String, FilterPolicy>,
    /// The filter of the only raw-delivery topic, if the task applies it.
    raw: Option<FilterPolicy>,
}

/// A filter from the record that could not be compiled: the topic and why.
pub(crate) type Unusable = (String, String);

impl Filters {
    /// Compiles the record's filters; the ones that do not parse are returned (and filter nothing).
    pub fn compile(handed: &BTreeMap<String, ClientFilter>) -> (Self, Vec<Unusable>) {
        let mut out = Self::default();
        let mut unusable = Vec::new();
        for (topic, f) in handed {
            let compiled = f.scope.parse().and_then(|scope| FilterPolicy::parse(&f.policy, scope));
            match compiled {
                Ok(policy) => {
                    if f.raw {
                        out.raw = Some(policy.clone());
                    }
                    out.by_topic.insert(topic.clone(), policy);
                }
                Err(e) => unusable.push((topic.clone(), e.to_string())),
            }
        }
        (out, unusable)
    }

    /// Whether the task's handler should see `message`.
    pub fn admits(&self, message: &Message) -> bool {
        let policy = match (message.delivery(), message.topic_arn()) {
            (Delivery::SnsEnvelope, Some(topic)) => self.by_topic.get(topic),
            (Delivery::Raw, _) => self.raw.as_ref(),
            (Delivery::SnsEnvelope, None) => None,
        };
        let Some(policy) = policy else { return true };
        let attributes = message
            .attributes()
            .iter()
            .map(|(name, a)| {
                let value = match &a.value {
                    AttributeValue::String(s) => s.clone(),
                    AttributeValue::Binary(_) => String::new(),
                };
                (name.clone(), tasksub_filter::Attribute::new(a.data_type.clone(), value))
            })
            .collect();
        policy.matches(&tasksub_filter::Message {
            attributes: &attributes,
            body: message.body(),
        })
    }
}

#[cfg(test)]
mod tests;

/// How often a running client re-reads its record's filters: a settings change (a policy edited, a topic
/// moved to `filterPolicyAt: "client"`) reaches running tasks within this long. One GetItem each time.
pub const FILTER_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// The task's filters as the record last said them, shared by the consume loop and the refresher.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveFilters(std::sync::Arc<std::sync::RwLock<Live>>);

/// Two handles are equal when the same filters are in force (what [`crate::TaskQueue`]'s equality needs).
impl PartialEq for LiveFilters {
    fn eq(&self, other: &Self) -> bool {
        fn read(l: &LiveFilters) -> std::sync::RwLockReadGuard<'_, Live> {
            l.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
        read(self).handed == read(other).handed
    }
}

impl Eq for LiveFilters {}

#[derive(Debug, Default)]
struct Live {
    handed: BTreeMap<String, ClientFilter>,
    compiled: std::sync::Arc<Filters>,
}

impl LiveFilters {
    /// The filters in force.
    pub fn current(&self) -> std::sync::Arc<Filters> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .compiled
            .clone()
    }

    /// Puts the record's filters in force (logged when they change; an unusable one is an error).
    pub fn load(&self, handed: BTreeMap<String, ClientFilter>) {
        let mut live = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if live.handed == handed {
            return;
        }
        let (compiled, unusable) = Filters::compile(&handed);
        for (topic, error) in &unusable {
            tracing::error!(
                action = "client-filter",
                topic,
                error,
                "filter policy unusable: this topic's messages are not filtered"
            );
        }
        let topics: Vec<&str> = handed.keys().map(String::as_str).collect();
        tracing::info!(
            action = "client-filter",
            ?topics,
            "filter policies applied by this task"
        );
        *live = Live {
            compiled: std::sync::Arc::new(compiled),
            handed,
        };
    }
}

/// Re-reads the record's filters every [`FILTER_REFRESH`] until `stop`; a failed read keeps the ones in
/// force (and is logged).
pub(crate) async fn refresh<R: crate::port::RecordReader>(
    records: &R,
    task_id: &str,
    live: &LiveFilters,
    stop: &tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(FILTER_REFRESH) => {}
        }
        match records.client_filters(task_id).await {
            Ok(handed) => live.load(handed),
            Err(e) => tracing::warn!(
                action = "client-filter",
                error = %aws_smithy_types::error::display::DisplayErrorContext(&*e),
                "could not re-read the record's filters; keeping the ones in force"
            ),
        }
    }
}
