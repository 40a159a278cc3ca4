//! The in-memory fake of every port. Wrap it in [`crate::instrumented::Instrumented`] to count calls
//! and inject faults (the same wrapper works around the AWS adapters).
//!
//! It mirrors the AWS behaviours the controller depends on, including the ones moto lacks ([`rules`],
//! shared with the fault proxy in front of moto): CreateQueue with different attributes fails, a deleted
//! queue name is blocked for 60 s (of the fake's own clock), Subscribe with changed attributes is refused;
//! deleting what is gone is `NotFound`. It also holds ECS tasks for the sweeper: DescribeTasks refuses
//! more than 100 ARNs, and unknown ARNs come back MISSING.
//!
//! A test double: compiled only with the `test-util` feature (not in the Lambda binaries).
#![cfg(feature = "test-util")]

pub mod rules;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tasksub_core::listing::Positions;
use tasksub_core::naming::{cluster_name, queue_name_from_url};
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::{EcsTask, SeenSubscription};
use tasksub_core::record::Record;

use crate::ports::{
    Described, Desired, Expect, PortError, Queues, Records, Scanned, SubscriptionPage, Subscriptions, Tasks, Written,
    DESCRIBE_BATCH,
};
use rules::{AwsRules, Refusal};

/// One stored queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeQueue {
    /// Queue name.
    pub name: String,
    /// Attributes as created.
    pub attributes: BTreeMap<String, String>,
    /// Tags as created.
    pub tags: BTreeMap<String, String>,
    /// When it was created (the fake's clock).
    pub created_at: DateTime<Utc>,
}

/// One stored subscription (the rules' record of it: the rules hold the fake's subscriptions).
pub type FakeSubscription = rules::Subscription;

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<String, Record>,
    queues: BTreeMap<String, FakeQueue>,
    /// Deleted queue names and every subscription.
    rules: AwsRules,
    next_sub: u64,
    now: Option<DateTime<Utc>>,
    tasks: BTreeMap<String, EcsTask>,
    /// Tasks ListTasks lists but DescribeTasks reports MISSING (ECS's eventual consistency).
    undescribed: BTreeSet<String>,
    /// Queues that exist but ListQueues does not list yet (SQS's eventual consistency).
    unlisted: BTreeSet<String>,
    /// Items of the table that are not records (a hand edit): key → why.
    malformed: BTreeMap<String, String>,
    /// The sweeper's listing positions.
    positions: Positions,
    /// ListSubscriptionsByTopic refuses any token ([`Fake::expire_listing_tokens`]).
    tokens_expired: bool,
    /// Topics that refuse Subscribe (and, when access is denied, ListSubscriptionsByTopic): topic → kind.
    refusing: BTreeMap<String, ErrorKind>,
    /// Topics deleted (and not re-created): every call naming them is NotFound.
    deleted_topics: BTreeSet<String>,
}

/// The fake. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Fake {
    state: Arc<Mutex<State>>,
    region_account: Arc<(String, String)>,
}

impl Fake {
    /// An empty fake for region `us-east-1`, account `123456789012`.
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            region_account: Arc::new(("us-east-1".into(), "123456789012".into())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state lock")
    }

    /// Sets the fake's clock (for the 60 s deleted-name rule); defaults to the real clock.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.lock().now = Some(now);
    }

    /// A stored record.
    pub fn record(&self, task_id: &str) -> Option<Record> {
        self.lock().records.get(task_id).cloned()
    }

    /// Every stored queue.
    pub fn queues(&self) -> Vec<FakeQueue> {
        self.lock().queues.values().cloned().collect()
    }

    /// Every stored subscription, by ARN.
    pub fn subscriptions(&self) -> BTreeMap<String, FakeSubscription> {
        self.lock().rules.subscriptions().clone()
    }

    /// Inserts a record directly (test setup).
    pub fn insert_record(&self, record: Record) {
        self.lock().records.insert(record.task_id.clone(), record);
    }

    /// Inserts a queue directly (test setup, e.g. an orphan).
    pub fn insert_queue(&self, name: &str) -> String {
        self.insert_tagged_queue(name, BTreeMap::new())
    }

    /// Inserts a queue with tags directly (test setup).
    pub fn insert_tagged_queue(&self, name: &str, tags: BTreeMap<String, String>) -> String {
        let mut s = self.lock();
        let created_at = now_of(&s);
        s.queues.insert(
            name.to_owned(),
            FakeQueue {
                name: name.to_owned(),
                attributes: BTreeMap::new(),
                tags,
                created_at,
            },
        );
        self.url_of(name)
    }

    /// Adds or replaces an ECS task (test setup; `stop_task` and friends are just another `put_task`).
    pub fn put_task(&self, task: EcsTask) {
        self.lock().tasks.insert(task.task_arn.clone(), task);
    }

    /// From now on ListQueues leaves this queue out, as SQS may for a new queue.
    pub fn hide_from_listing(&self, queue_name: &str) {
        self.lock().unlisted.insert(queue_name.to_owned());
    }

    /// From now on DescribeTasks reports this (still listed) task MISSING, as ECS may for a moment.
    pub fn describe_as_missing(&self, task_arn: &str) {
        self.lock().undescribed.insert(task_arn.to_owned());
    }

    /// Makes the item of `key` unreadable (a hand edit): reads of it fail, scans quarantine it.
    pub fn insert_malformed(&self, key: &str, why: &str) {
        let mut s = self.lock();
        s.records.remove(key);
        s.malformed.insert(key.to_owned(), why.to_owned());
    }

    /// From now on the topic refuses Subscribe with this kind (its owner revoked the account, a quota);
    /// a refusal of access also refuses ListSubscriptionsByTopic.
    pub fn refuse_topic(&self, topic_arn: &str, kind: ErrorKind) {
        self.lock().refusing.insert(topic_arn.to_owned(), kind);
    }

    /// From now on ListSubscriptionsByTopic refuses every token it gave before (SNS's tokens expire):
    /// a listing resumed from a stored position is `Invalid`.
    pub fn expire_listing_tokens(&self) {
        self.lock().tokens_expired = true;
    }

    /// The topic accepts again.
    pub fn admit_topic(&self, topic_arn: &str) {
        self.lock().refusing.remove(topic_arn);
    }

    /// The topic is deleted: every subscription to it goes with it, and every call naming it is NotFound
    /// until [`Fake::create_topic`].
    pub fn delete_topic(&self, topic_arn: &str) {
        let mut s = self.lock();
        s.rules.topic_deleted(topic_arn);
        s.deleted_topics.insert(topic_arn.to_owned());
    }

    /// How the topic refuses Subscribe now, if it does (`NotFound` while deleted).
    pub fn refusal(&self, topic_arn: &str) -> Option<ErrorKind> {
        let s = self.lock();
        if s.deleted_topics.contains(topic_arn) {
            return Some(ErrorKind::NotFound);
        }
        s.refusing.get(topic_arn).copied()
    }

    /// The topic exists again (re-created under the same name: the same ARN, no subscription).
    pub fn create_topic(&self, topic_arn: &str) {
        self.lock().deleted_topics.remove(topic_arn);
    }

    /// Sets a queue attribute directly (an operator's hand edit).
    pub fn edit_queue_attribute(&self, name: &str, attribute: &str, value: &str) {
        if let Some(q) = self.lock().queues.get_mut(name) {
            q.attributes.insert(attribute.to_owned(), value.to_owned());
        }
    }

    /// Every ECS task held.
    pub fn tasks(&self) -> Vec<EcsTask> {
        self.lock().tasks.values().cloned().collect()
    }

    fn url_of(&self, name: &str) -> String {
        format!(
            "https://sqs.{}.amazonaws.com/{}/{name}",
            self.region_account.0, self.region_account.1
        )
    }
}

impl Default for Fake {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    /// Whether the topic answers `op`: a deleted topic is NotFound; a refusing one refuses Subscribe
    /// with its kind, and a listing too when access is denied.
    fn topic_answers(&self, op: &'static str, topic_arn: &str, subscribing: bool) -> Result<(), PortError> {
        if self.deleted_topics.contains(topic_arn) {
            return Err(PortError::new(
                ErrorKind::NotFound,
                op,
                format!("Topic does not exist: {topic_arn}"),
            ));
        }
        match self.refusing.get(topic_arn) {
            Some(&kind) if subscribing || kind == ErrorKind::AccessDenied => Err(PortError::new(
                kind,
                op,
                format!("{topic_arn} refuses this account ({})", kind.as_str()),
            )),
            _ => Ok(()),
        }
    }
}

fn now_of(s: &State) -> DateTime<Utc> {
    s.now.unwrap_or_else(Utc::now)
}

fn not_found(op: &'static str, what: &str) -> PortError {
    PortError::new(ErrorKind::NotFound, op, format!("{what} does not exist"))
}

/// A refusal of the AWS rules as the SDK adapters would classify it.
fn refused(r: Refusal) -> PortError {
    let (kind, message) = match r {
        Refusal::QueueDeletedRecently => (ErrorKind::DeletedRecently, "QueueDeletedRecently"),
        Refusal::QueueAlreadyExists => (ErrorKind::Exists, "QueueAlreadyExists"),
        Refusal::SubscriptionAttributesDiffer => (
            ErrorKind::Invalid,
            "Subscription already exists with different attributes",
        ),
    };
    PortError::new(kind, r.op(), message)
}

/// The queue name of a URL (empty when it has none).
fn name_of(url: &str) -> String {
    queue_name_from_url(url)
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default()
}

fn owned(m: &BTreeMap<&'static str, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// The error of a read or write of an unreadable item.
fn malformed(op: &'static str, key: &str, why: &str) -> PortError {
    PortError::new(ErrorKind::Invalid, op, format!("task {key}: {why}"))
}

impl Records for Fake {
    async fn get(&self, task_id: &str) -> Result<Option<Record>, PortError> {
        let s = self.lock();
        if let Some(why) = s.malformed.get(task_id) {
            return Err(malformed("GetItem", task_id, why));
        }
        Ok(s.records.get(task_id).cloned())
    }

    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, PortError> {
        let mut s = self.lock();
        if let Some(why) = s.malformed.get(&record.task_id) {
            return Err(malformed("PutItem", &record.task_id, why));
        }
        let current = s.records.get(&record.task_id).cloned();
        if !expect.holds(current.as_ref()) {
            return Ok(Written::Conflict(current));
        }
        s.records.insert(record.task_id.clone(), record.clone());
        Ok(Written::Applied)
    }

    async fn list(&self) -> Result<Scanned, PortError> {
        let s = self.lock();
        Ok(Scanned {
            records: s.records.values().cloned().collect(),
            quarantined: s.malformed.clone(),
        })
    }

    async fn positions(&self) -> Result<Positions, PortError> {
        Ok(self.lock().positions.clone())
    }

    async fn save_positions(&self, positions: &Positions) -> Result<bool, PortError> {
        let mut s = self.lock();
        if s.positions.revision != positions.revision {
            return Ok(false);
        }
        s.positions = Positions {
            revision: positions.revision + 1,
            ..positions.clone()
        };
        Ok(true)
    }
}

impl Queues for Fake {
    async fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<&'static str, String>,
        tags: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        let mut s = self.lock();
        let now = now_of(&s);
        s.rules.check_name_reuse(name, now).map_err(refused)?;
        let attributes = owned(attributes);
        match s.queues.get(name) {
            Some(q) => AwsRules::check_queue_attributes(&q.attributes, &attributes).map_err(refused)?,
            None => {
                let q = FakeQueue {
                    name: name.to_owned(),
                    attributes,
                    tags: owned(tags),
                    created_at: now,
                };
                s.queues.insert(name.to_owned(), q);
            }
        }
        Ok(self.url_of(name))
    }

    async fn url(&self, name: &str) -> Result<String, PortError> {
        let s = self.lock();
        if s.queues.contains_key(name) {
            Ok(self.url_of(name))
        } else {
            Err(not_found("GetQueueUrl", name))
        }
    }

    async fn delete(&self, url: &str) -> Result<(), PortError> {
        let mut s = self.lock();
        let name = queue_name_from_url(url)
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default();
        if s.queues.remove(&name).is_none() {
            return Err(not_found("DeleteQueue", &name));
        }
        let now = now_of(&s);
        s.rules.queue_deleted(&name, now);
        Ok(())
    }

    async fn queue_attributes(&self, url: &str) -> Result<BTreeMap<String, String>, PortError> {
        let s = self.lock();
        let name = name_of(url);
        let q = s
            .queues
            .get(&name)
            .ok_or_else(|| not_found("GetQueueAttributes", &name))?;
        let mut attrs = q.attributes.clone();
        attrs.insert(
            "QueueArn".to_owned(),
            format!("arn:aws:sqs:{}:{}:{name}", self.region_account.0, self.region_account.1),
        );
        attrs.insert("CreatedTimestamp".to_owned(), q.created_at.timestamp().to_string());
        Ok(attrs)
    }

    async fn queue_tags(&self, url: &str) -> Result<BTreeMap<String, String>, PortError> {
        let s = self.lock();
        let name = name_of(url);
        let q = s.queues.get(&name).ok_or_else(|| not_found("ListQueueTags", &name))?;
        Ok(q.tags.clone())
    }

    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<(), PortError> {
        let mut s = self.lock();
        let name = name_of(url);
        let q = s
            .queues
            .get_mut(&name)
            .ok_or_else(|| not_found("SetQueueAttributes", &name))?;
        for (k, v) in attributes {
            if v.is_empty() {
                q.attributes.remove(*k);
            } else {
                q.attributes.insert((*k).to_owned(), v.clone());
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        let s = self.lock();
        Ok(s.queues
            .keys()
            .filter(|n| n.starts_with(prefix) && !s.unlisted.contains(*n))
            .map(|n| self.url_of(n))
            .collect())
    }
}

impl Subscriptions for Fake {
    async fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        let mut s = self.lock();
        s.topic_answers("Subscribe", topic_arn, true)?;
        let attributes = owned(attributes);
        let known = s
            .rules
            .check_subscribe(topic_arn, queue_arn, &attributes)
            .map_err(refused)?;
        if let Some(arn) = known {
            return Ok(arn.to_owned());
        }
        s.next_sub += 1;
        let arn = format!("{topic_arn}:{:08x}-fake", s.next_sub);
        let sub = FakeSubscription {
            topic_arn: topic_arn.to_owned(),
            endpoint: queue_arn.to_owned(),
            attributes,
        };
        s.rules.subscribed(&arn, sub);
        Ok(arn)
    }

    async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), PortError> {
        let mut s = self.lock();
        match s.rules.unsubscribed(subscription_arn) {
            Some(_) => Ok(()),
            None => Err(not_found("Unsubscribe", subscription_arn)),
        }
    }

    async fn subscription_attributes(&self, subscription_arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        let s = self.lock();
        let sub = s
            .rules
            .subscriptions()
            .get(subscription_arn)
            .ok_or_else(|| not_found("GetSubscriptionAttributes", subscription_arn))?;
        let mut attrs = sub.attributes.clone();
        attrs.insert("TopicArn".to_owned(), sub.topic_arn.clone());
        attrs.insert("Endpoint".to_owned(), sub.endpoint.clone());
        attrs.insert("Protocol".to_owned(), "sqs".to_owned());
        attrs.insert("SubscriptionArn".to_owned(), subscription_arn.to_owned());
        attrs
            .entry("RawMessageDelivery".to_owned())
            .or_insert_with(|| "false".to_owned());
        Ok(attrs)
    }

    async fn set_subscription_attribute(
        &self,
        subscription_arn: &str,
        name: &'static str,
        value: &str,
    ) -> Result<(), PortError> {
        let mut s = self.lock();
        if s.rules.set_subscription_attribute(subscription_arn, name, value) {
            Ok(())
        } else {
            Err(not_found("SetSubscriptionAttributes", subscription_arn))
        }
    }

    async fn find(&self, topic_arn: &str, endpoint: &str) -> Result<Option<String>, PortError> {
        let s = self.lock();
        s.topic_answers("ListSubscriptionsByTopic", topic_arn, false)?;
        Ok(s.rules.find(topic_arn, endpoint).map(|(arn, _)| arn.to_owned()))
    }

    async fn list_own(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        // Every subscription the fake holds is the account's own: listed whatever the topic's owner says.
        self.page_of(topic_arn, next)
    }

    async fn list_by_topic(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        let op = "ListSubscriptionsByTopic";
        let s = self.lock();
        s.topic_answers(op, topic_arn, false)?;
        if s.tokens_expired && next.is_some() {
            return Err(PortError::new(ErrorKind::Invalid, op, "Invalid parameter: NextToken"));
        }
        drop(s);
        self.page_of(topic_arn, next)
    }
}

impl Fake {
    /// One page (100) of the topic's subscriptions, in ARN order (a topic's ARNs share its prefix, so
    /// they are contiguous: a page costs its length, not the account's subscriptions). The token is the
    /// last ARN of the previous page, so a page resumes after it whatever was added or removed since.
    fn page_of(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        const PAGE: usize = 100;
        let s = self.lock();
        let from = match &next {
            Some(after) => (Excluded(after.as_str()), Unbounded),
            None => (Included(topic_arn), Unbounded),
        };
        let mut page: Vec<SeenSubscription> = s
            .rules
            .subscriptions()
            .range::<str, _>(from)
            .take_while(|(arn, _)| arn.starts_with(topic_arn))
            .filter(|(_, v)| v.topic_arn == topic_arn)
            .take(PAGE + 1)
            .map(|(arn, v)| SeenSubscription {
                arn: arn.clone(),
                endpoint: v.endpoint.clone(),
                protocol: "sqs".to_owned(),
            })
            .collect();
        let more = page.len() > PAGE;
        page.truncate(PAGE);
        Ok(SubscriptionPage {
            next: more.then(|| page.last().map(|x| x.arn.clone())).flatten(),
            subscriptions: page,
        })
    }
}

/// True when `cluster` (a name or an ARN, as ListTasks accepts) names the cluster of this ARN.
fn same_cluster(cluster: &str, cluster_arn: &str) -> bool {
    cluster == cluster_arn || cluster_name(cluster_arn) == cluster
}

impl Tasks for Fake {
    async fn list_tasks(&self, cluster: &str, desired: Desired) -> Result<Vec<String>, PortError> {
        let s = self.lock();
        Ok(s.tasks
            .values()
            .filter(|t| same_cluster(cluster, &t.cluster_arn) && t.desired_status.as_str() == desired.as_str())
            .map(|t| t.task_arn.clone())
            .collect())
    }

    async fn describe_tasks(&self, cluster: &str, task_arns: &[String]) -> Result<Described, PortError> {
        if task_arns.len() > DESCRIBE_BATCH {
            let msg = format!("{} tasks in one DescribeTasks", task_arns.len());
            return Err(PortError::new(ErrorKind::Invalid, "DescribeTasks", msg));
        }
        let s = self.lock();
        let mut d = Described::default();
        for arn in task_arns {
            let described = s.tasks.get(arn).filter(|t| !s.undescribed.contains(&t.task_arn));
            match described.filter(|t| same_cluster(cluster, &t.cluster_arn)) {
                Some(t) => d.tasks.push(t.clone()),
                None => d.missing.push(arn.clone()),
            }
        }
        Ok(d)
    }
}
