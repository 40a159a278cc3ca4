//! Ports: one small trait per capability. The executor sees only these; the SDK adapters
//! ([`crate::aws`]) and the in-memory fake (`crate::fake`, feature `test-util`) implement them. No SDK type crosses a port.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use tasksub_core::listing::Positions;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::{EcsTask, QueueDetails, SeenSubscription};
use tasksub_core::record::{Record, State};

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The AWS operation (`CreateQueue`...).
    pub op: &'static str,
    /// Details for logs (error code and message from the service; never credentials or bodies).
    pub message: String,
}

impl PortError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, op: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            op,
            message: message.into(),
        }
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({}): {}", self.op, self.kind.as_str(), self.message)
    }
}

impl std::error::Error for PortError {}

/// What a conditional write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No record.
    Absent,
    /// The record exactly as read: this revision and this state (records written before revisions
    /// existed are revision 0). What the executor uses for every write after the claim. The state is
    /// pinned too, so a writer of the pre-revision code (which drops the attribute, resetting it to 0)
    /// cannot make an old revision match again with another state (ABA).
    Revision(u64, State),
    /// A record in exactly this state, whatever else changed (kept for the reference-design baseline
    /// in benches/, which reproduces the state-only conditions; the executor never uses it).
    State(State),
    /// A record in one of these states (as [`Expect::State`]: baseline only).
    AnyOf(&'static [State]),
}

impl Expect {
    /// True when a stored record (or its absence) satisfies the expectation.
    pub fn holds(self, current: Option<&Record>) -> bool {
        match (self, current) {
            (Self::Absent, None) => true,
            (Self::Revision(n, s), Some(r)) => r.revision == n && r.state == s,
            (Self::State(s), Some(r)) => r.state == s,
            (Self::AnyOf(states), Some(r)) => states.contains(&r.state),
            _ => false,
        }
    }
    /// The expectation for a write over `stored` (`None` = no record was read).
    pub fn over(stored: Option<&Record>) -> Self {
        stored.map_or(Self::Absent, |r| Self::Revision(r.revision, r.state))
    }
}

/// Result of a conditional write. Short-lived (returned, matched, dropped), so the size difference
/// between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The record was stored.
    Applied,
    /// The expectation did not hold; this is what is stored now.
    Conflict(Option<Record>),
}

/// What a Scan of the table read: the records, and the items that are not records (a hand edit, a
/// missing attribute), by key with why. One bad item never hides the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Every readable record.
    pub records: Vec<Record>,
    /// Unreadable items: key (the task ID, or the item's description when it has none) → why.
    pub quarantined: BTreeMap<String, String>,
}

/// The task records table.
pub trait Records: Send + Sync {
    /// Consistent read of one record.
    fn get(&self, task_id: &str) -> impl Future<Output = Result<Option<Record>, PortError>> + Send;
    /// Stores the whole record if `expect` holds; otherwise returns what is stored, unchanged.
    fn put(&self, record: &Record, expect: Expect) -> impl Future<Output = Result<Written, PortError>> + Send;
    /// Every record (paginated scan), for operators and the sweeper; unreadable items are quarantined.
    /// The sweeper's bookkeeping item ([`tasksub_core::listing::ITEM_KEY`]) is not a record: left out.
    fn list(&self) -> impl Future<Output = Result<Scanned, PortError>> + Send;
    /// The sweeper's listing positions, kept in the same table ([`Positions::default`] when none).
    fn positions(&self) -> impl Future<Output = Result<Positions, PortError>> + Send;
    /// Stores `positions` with its revision bumped, if the stored revision is still `positions.revision`;
    /// false when another sweep saved since (its positions stand; this run's are dropped).
    fn save_positions(&self, positions: &Positions) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// SQS queues.
pub trait Queues: Send + Sync {
    /// Creates the queue with attributes and tags in one call; returns its URL. Idempotent for the same
    /// name and attributes.
    fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<&'static str, String>,
        tags: &BTreeMap<&'static str, String>,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
    /// The URL of a queue by name (`NotFound` if it does not exist).
    fn url(&self, name: &str) -> impl Future<Output = Result<String, PortError>> + Send;
    /// Deletes a queue (`NotFound` if it does not exist).
    fn delete(&self, url: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Every attribute of the queue (GetQueueAttributes `All`; `NotFound` if it does not exist).
    fn queue_attributes(&self, url: &str) -> impl Future<Output = Result<BTreeMap<String, String>, PortError>> + Send;
    /// The queue's tags (ListQueueTags; `NotFound` if it does not exist).
    fn queue_tags(&self, url: &str) -> impl Future<Output = Result<BTreeMap<String, String>, PortError>> + Send;
    /// Sets these attributes (SetQueueAttributes; an empty value removes a redrive policy; `NotFound` if the
    /// queue does not exist): a queue keeps the attributes of its creation, so a converge sets them.
    fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// URLs of every queue whose name starts with `prefix` (paginated).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
}

/// SNS subscriptions.
pub trait Subscriptions: Send + Sync {
    /// Subscribes an SQS queue ARN to the topic with these attributes; returns the subscription ARN.
    fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
    /// Removes a subscription (`NotFound` if it does not exist).
    fn unsubscribe(&self, subscription_arn: &str) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Every attribute of a subscription (GetSubscriptionAttributes; `NotFound` if it does not exist).
    fn subscription_attributes(
        &self,
        subscription_arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, PortError>> + Send;
    /// Sets one attribute of a subscription (SetSubscriptionAttributes; `NotFound` if it does not exist).
    fn set_subscription_attribute(
        &self,
        subscription_arn: &str,
        name: &'static str,
        value: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// The ARN of the topic's subscription to `endpoint`, by listing the topic's subscriptions
    /// (ListSubscriptionsByTopic, 30 TPS): for the rare paths where a subscription's ARN is unknown (an
    /// earlier attempt's outcome was lost, a Subscribe refused because the attributes changed), and for a
    /// teardown, which never subscribes to learn an ARN.
    fn find(&self, topic_arn: &str, endpoint: &str) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// One page of the account's own subscriptions in the topic's region (ListSubscriptions: 100 a page,
    /// 30 TPS), keeping those to this topic: what the account owns can be listed even when the topic's
    /// owner refuses it ListSubscriptionsByTopic.
    fn list_own(
        &self,
        topic_arn: &str,
        next: Option<String>,
    ) -> impl Future<Output = Result<SubscriptionPage, PortError>> + Send;
    /// One page of the topic's subscriptions (ListSubscriptionsByTopic: 100 a page, 30 TPS per account),
    /// for the sweeper's orphan-subscription pass.
    fn list_by_topic(
        &self,
        topic_arn: &str,
        next: Option<String>,
    ) -> impl Future<Output = Result<SubscriptionPage, PortError>> + Send;
}

/// One page of a topic's subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionPage {
    /// The subscriptions on this page.
    pub subscriptions: Vec<SeenSubscription>,
    /// The token of the next page, if any.
    pub next: Option<String>,
}

/// Every subscription of a topic, page after page, reading at most `max_pages` pages; the flag is true
/// when pages were left unread. Shared by the sweeper, `doctor` and the tests.
pub async fn list_topic<S: Subscriptions>(
    s: &S,
    topic_arn: &str,
    max_pages: usize,
) -> Result<(Vec<SeenSubscription>, bool), PortError> {
    let read = read_pages(None, max_pages, |next| s.list_by_topic(topic_arn, next)).await?;
    Ok((read.subscriptions, read.next.is_some()))
}

/// Pages of a topic's subscriptions read from one token on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagesRead {
    /// The subscriptions on them.
    pub subscriptions: Vec<SeenSubscription>,
    /// How many pages.
    pub pages: u64,
    /// The token of the first page left unread; `None`: the listing's end was reached.
    pub next: Option<String>,
}

/// At most `max_pages` pages of the topic's subscriptions, starting at `from` (`None`: the first page):
/// the sweeper's resumable listing.
pub async fn list_topic_from<S: Subscriptions>(
    s: &S,
    topic_arn: &str,
    from: Option<String>,
    max_pages: usize,
) -> Result<PagesRead, PortError> {
    read_pages(from, max_pages, |next| s.list_by_topic(topic_arn, next)).await
}

/// The pages `fetch` reads from `from` on, at most `max_pages` (at least one).
async fn read_pages<F, Fut>(from: Option<String>, max_pages: usize, mut fetch: F) -> Result<PagesRead, PortError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<SubscriptionPage, PortError>>,
{
    let mut out = PagesRead {
        next: from,
        ..PagesRead::default()
    };
    for _ in 0..max_pages.max(1) {
        let page = fetch(out.next.take()).await?;
        out.subscriptions.extend(page.subscriptions);
        out.pages += 1;
        out.next = page.next;
        if out.next.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Most pages of the account's own subscriptions one search reads (100 each).
pub const MAX_OWN_PAGES: usize = 1000;

/// The ARN of the account's own subscription of `endpoint` to the topic, from ListSubscriptions (for a
/// topic whose owner refuses us its listing).
pub async fn find_own<S: Subscriptions>(s: &S, topic_arn: &str, endpoint: &str) -> Result<Option<String>, PortError> {
    let mut next = None;
    for _ in 0..MAX_OWN_PAGES {
        let page = s.list_own(topic_arn, next).await?;
        if let Some(found) = page
            .subscriptions
            .iter()
            .find(|x| x.protocol == "sqs" && x.endpoint == endpoint)
        {
            return Ok(Some(found.arn.clone()));
        }
        next = page.next;
        if next.is_none() {
            break;
        }
    }
    Ok(None)
}

/// Every own subscription to the topic (ListSubscriptions, up to `max_pages` pages from the first).
pub async fn list_own_topic<S: Subscriptions>(
    s: &S,
    topic_arn: &str,
    max_pages: usize,
) -> Result<PagesRead, PortError> {
    read_pages(None, max_pages, |next| s.list_own(topic_arn, next)).await
}

/// What the sweeper reads about one queue (only for orphan candidates): two calls, GetQueueAttributes
/// and ListQueueTags.
pub trait QueueInspect: Queues {
    /// `CreatedTimestamp` and tags of a queue (`NotFound` if it does not exist).
    fn details(&self, url: &str) -> impl Future<Output = Result<QueueDetails, PortError>> + Send {
        async move {
            let attributes = self.queue_attributes(url).await?;
            let tags = self.queue_tags(url).await?;
            let created_at = attributes
                .get("CreatedTimestamp")
                // Epoch seconds; moto sends a fraction, so parse as a float.
                .and_then(|v| v.parse::<f64>().ok())
                .and_then(|secs| chrono::DateTime::from_timestamp(secs.trunc() as i64, 0));
            Ok(QueueDetails { created_at, tags })
        }
    }
}

impl<T: Queues> QueueInspect for T {}

/// Which ListTasks filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// `desiredStatus=RUNNING`: starting and running tasks.
    Running,
    /// `desiredStatus=STOPPED`: stopping tasks and tasks stopped recently (ECS keeps them about an hour).
    Stopped,
}

impl Desired {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }
}

/// What DescribeTasks returned for a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    /// The tasks described.
    pub tasks: Vec<EcsTask>,
    /// ARNs ECS reports as MISSING (or did not return at all).
    pub missing: Vec<String>,
    /// ARNs that failed for another reason, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The most task ARNs one DescribeTasks call accepts.
pub const DESCRIBE_BATCH: usize = 100;

/// ECS tasks (the sweeper's source of truth).
pub trait Tasks: Send + Sync {
    /// Every task ARN of `cluster` with this desired status (all pages). A cluster that does not exist
    /// is `NotFound`.
    fn list_tasks(
        &self,
        cluster: &str,
        desired: Desired,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
    /// Describes at most [`DESCRIBE_BATCH`] tasks of `cluster`.
    fn describe_tasks(
        &self,
        cluster: &str,
        task_arns: &[String],
    ) -> impl Future<Output = Result<Described, PortError>> + Send;
}

/// Everything the executor needs.
pub trait Ports: Records + Queues + Subscriptions {}

impl<T: Records + Queues + Subscriptions> Ports for T {}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: State, revision: u64) -> Record {
        let now = chrono::Utc::now();
        Record {
            task_id: "t".into(),
            task_arn: "a".into(),
            cluster_arn: "c".into(),
            group: None,
            queue_name: "q".into(),
            queue_arn: "qa".into(),
            queue_url: None,
            subscriptions: Default::default(),
            state,
            version: 0,
            created_at: now,
            updated_at: now,
            expires_at: None,
            revision,
            pending: Default::default(),
            refused: Default::default(),
            generation: 0,
            settings_hash: None,
            watch: Default::default(),
            client_filters: Default::default(),
        }
    }

    #[test]
    fn a_revision_expectation_pins_revision_and_state() {
        let read = record(State::Provisioning, 1);
        let expect = Expect::over(Some(&read));
        assert!(expect.holds(Some(&read)));
        // the same revision number with another state: a pre-revision writer reset the counter (ABA)
        assert!(!expect.holds(Some(&record(State::Gone, 1))));
        assert!(!expect.holds(Some(&record(State::Provisioning, 2))));
        assert!(!expect.holds(None));
        assert_eq!(Expect::over(None), Expect::Absent);
        assert!(Expect::Absent.holds(None) && !Expect::Absent.holds(Some(&read)));
    }
}
