//! Reading what exists: the configured topics' subscriptions first (ListSubscriptionsByTopic, paced,
//! capped), then the records (Scan; an unreadable item is quarantined, never a reason to stop), then the
//! subscriptions of topics only records name (retired topics), the queues under the prefix (ListQueues; a
//! subscribed queue ListQueues missed is confirmed with GetQueueUrl), then ECS (ListTasks per cluster and
//! desired status, DescribeTasks by 100). Configured topics are listed before records, so a subscription
//! made meanwhile finds its claim or its intent; ECS comes last, so a task whose record, queue or
//! subscription was seen is listed by then.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use tasksub_core::listing::{Coverage, Positions, Read};

use tasksub_core::naming::{queue_name_from_url, task_id_of};
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::subscriptions::our_endpoint;
use tasksub_core::reconcile::{needs_details, Inventory, SeenQueue, SeenSubscription};
use tasksub_core::settings::Settings;
use tracing::{info, warn};

use crate::ports::{
    list_own_topic, list_topic_from, Desired, PortError, QueueInspect, Queues, Records, Subscriptions, Tasks,
    DESCRIBE_BATCH, MAX_OWN_PAGES,
};

/// What a gather produced besides the inventory.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    pub inventory: Inventory,
    pub tasks_seen: usize,
    pub missing_clusters: Vec<String>,
    /// What each topic's listing covered this run.
    pub coverage: Vec<Coverage>,
    /// Reads that failed without making the sweep unsafe (their subjects are left alone).
    pub errors: usize,
}

/// A read whose failure makes any verdict unsafe: the sweep stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sweep aborted, nothing changed: {0}")]
pub struct GatherFailed(pub PortError);

/// The task ID of a listed ARN (an ARN that does not parse stays whole: it matches no queue).
fn task_id(arn: &str) -> String {
    task_id_of(arn).unwrap_or(arn).to_owned()
}

/// A subscription to one of our queue names with no record, whose queue ListQueues did not list: ListQueues
/// lags behind new queues, so ask GetQueueUrl before taking the queue for gone. A queue found this way is
/// added to the inventory (its tags are then read, and only tasksub's tags of our stack make it ours).
async fn confirm_unlisted_queues<P: Queues>(ports: &P, settings: &Settings, g: &mut Gathered) {
    let inv = &mut g.inventory;
    let recorded: BTreeSet<&str> = inv.records.iter().map(|r| r.task_id.as_str()).collect();
    let listed: BTreeSet<&str> = inv.queues.iter().map(|q| q.name.as_str()).collect();
    let unlisted: Vec<(String, String)> = inv
        .subscriptions
        .iter()
        .filter_map(|s| our_endpoint(s, settings))
        .filter(|(id, name)| !recorded.contains(id.as_str()) && !listed.contains(name.as_str()))
        .collect();
    for (id, name) in unlisted {
        match ports.url(&name).await {
            Ok(url) => inv.queues.push(SeenQueue { name, url }),
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => {
                warn!(queue = name, action = "confirm-queue", outcome = "failed", error = %e, "subscription left alone");
                g.errors += 1;
                inv.opaque.insert(id);
            }
        }
    }
}

/// What the topics' listings gave: the subscriptions, the topics read whole by this run, what each
/// topic's read covered, and how many listings failed.
#[derive(Debug, Default)]
pub(super) struct Listings {
    pub subscriptions: Vec<SeenSubscription>,
    pub complete: BTreeSet<String>,
    pub coverage: Vec<Coverage>,
    pub failed: usize,
}

/// How the topics are listed: the page budget per topic, and where each listing stands.
pub(super) struct Lister<'p> {
    pub pages_per_run: usize,
    pub positions: &'p mut Positions,
    pub now: DateTime<Utc>,
}

/// The subscriptions of `topics` (each in its own region), paced (30 TPS account quota): each topic's
/// listing resumes where the last run stopped and reads at most the page budget ([`tasksub_core::listing`]).
/// A topic whose listing fails is left out of this run's subscription pass (its subscriptions are not
/// judged) and counted; a topic that does not exist is listed as complete and empty.
pub(super) async fn subscriptions<'a, S: Subscriptions>(
    paced: &S,
    topics: impl IntoIterator<Item = &'a str>,
    lister: &mut Lister<'_>,
    into: &mut Listings,
) {
    for topic in topics {
        match read_topic(paced, topic, lister).await {
            Ok((subs, read)) => {
                let coverage = lister.positions.advance(topic, read, lister.now);
                if coverage.complete {
                    into.complete.insert(topic.to_owned());
                } else if !coverage.cycle_finished {
                    info!(
                        action = "list-subscriptions",
                        outcome = "resumable",
                        topic,
                        pages = coverage.pages,
                        cycle_pages = coverage.cycle_pages,
                        cycle_runs = coverage.cycle_runs,
                        "more subscriptions than one run reads: the next run resumes here"
                    );
                }
                into.coverage.push(coverage);
                into.subscriptions.extend(subs);
            }
            Err(e) => {
                into.failed += 1;
                warn!(action = "list-subscriptions", outcome = "failed", topic, error = %e, "this topic's subscriptions are not judged this run");
            }
        }
    }
}

/// One topic's share of this run: from its stored position (or the first page), at most the budget.
async fn read_topic<S: Subscriptions>(
    paced: &S,
    topic: &str,
    lister: &Lister<'_>,
) -> Result<(Vec<SeenSubscription>, Read), PortError> {
    let from = lister.positions.resume_from(topic).map(str::to_owned);
    let resumed = from.is_some();
    let (listed, from_start) = match list_topic_from(paced, topic, from, lister.pages_per_run).await {
        // A stored token SNS no longer accepts (expired): start over at the first page (a new cycle).
        Err(e) if resumed && e.kind == ErrorKind::Invalid => {
            warn!(action = "list-subscriptions", outcome = "restarted", topic, error = %e, "stored listing position refused: reading from the first page");
            (list_topic_from(paced, topic, None, lister.pages_per_run).await, true)
        }
        other => (other, !resumed),
    };
    let (subscriptions, pages, next, from_start) = match listed {
        Ok(r) => (r.subscriptions, r.pages, r.next, from_start),
        // The topic's owner refuses us its listing: our own subscriptions can still be listed.
        Err(e) if e.kind == ErrorKind::AccessDenied => {
            let own = list_own_topic(paced, topic, MAX_OWN_PAGES).await?;
            if own.next.is_some() {
                warn!(
                    action = "list-subscriptions",
                    outcome = "capped",
                    topic,
                    pages = MAX_OWN_PAGES,
                    "more own subscriptions than one search reads"
                );
            }
            // Read from the first page: whole unless capped (not resumable: the next run reads it again).
            let whole = own.next.is_none();
            (own.subscriptions, own.pages, None, whole)
        }
        // The topic does not exist (deleted, maybe to be re-created): it has no subscriptions, so its
        // listing is complete and empty, and every subscription a record names on it is lost.
        Err(e) if e.kind == ErrorKind::NotFound => {
            warn!(
                action = "list-subscriptions",
                outcome = "topic-not-found",
                topic,
                "the topic does not exist: none of its subscriptions remain"
            );
            (Vec::new(), 0, None, true)
        }
        Err(e) => return Err(e),
    };
    let read = Read {
        from_start,
        pages,
        subscriptions: subscriptions.len() as u64,
        next,
    };
    Ok((subscriptions, read))
}

/// Everything the reconciler needs, read in the order the module doc gives. Fails only when a read that
/// every verdict depends on fails (records, queues, listing a cluster's tasks). `listings` holds the
/// configured topics' subscriptions, listed before; the topics only records name (retired ones) are
/// listed after the records, with `paced`.
pub(super) async fn gather<P, T, S>(
    ports: &P,
    tasks: &T,
    paced: &S,
    settings: &Settings,
    mut listings: Listings,
    lister: &mut Lister<'_>,
) -> Result<(Gathered, usize), GatherFailed>
where
    P: Records + Queues + QueueInspect,
    T: Tasks,
    S: Subscriptions,
{
    let mut g = Gathered::default();
    let scanned = Records::list(ports).await.map_err(GatherFailed)?;
    g.inventory.records = scanned.records;
    g.inventory.quarantined = scanned.quarantined;
    for (key, why) in &g.inventory.quarantined {
        warn!(
            task_id = key,
            action = "read-record",
            outcome = "quarantined",
            error = why.as_str(),
            "record left alone: repair or delete the item"
        );
    }
    let retired: BTreeSet<String> = g
        .inventory
        .records
        .iter()
        .flat_map(|r| r.listed_topics())
        .filter(|t| settings.topic(t).is_none())
        .map(str::to_owned)
        .collect();
    subscriptions(paced, retired.iter().map(String::as_str), lister, &mut listings).await;
    let topics: BTreeSet<String> = settings.topic_arns().map(str::to_owned).chain(retired).collect();
    lister.positions.retain(&topics);
    g.inventory.listed = std::mem::take(&mut listings.complete);
    g.coverage = std::mem::take(&mut listings.coverage);
    g.inventory.queues = queues_under_prefix(ports, settings.queue.prefix.as_str()).await?;
    let mut seen = BTreeSet::new();
    for cluster in &settings.scope.clusters {
        let arns = list_cluster(tasks, cluster, &mut g).await?;
        for batch in arns.chunks(DESCRIBE_BATCH) {
            describe(tasks, cluster, batch, &mut g).await;
        }
        seen.extend(arns);
    }
    g.tasks_seen = seen.len();
    g.inventory.subscriptions = listings.subscriptions;
    confirm_unlisted_queues(ports, settings, &mut g).await;
    queue_details(ports, settings, &mut g).await;
    Ok((g, listings.failed))
}

/// The queues ListQueues names under the prefix.
async fn queues_under_prefix<P: Queues>(ports: &P, prefix: &str) -> Result<Vec<SeenQueue>, GatherFailed> {
    let urls = Queues::list(ports, prefix).await.map_err(GatherFailed)?;
    Ok(urls
        .into_iter()
        .filter_map(|url| {
            let name = queue_name_from_url(&url)?;
            name.as_str().starts_with(prefix).then(|| SeenQueue {
                name: name.as_str().to_owned(),
                url,
            })
        })
        .collect())
}

/// The ARNs of a cluster's tasks, desired RUNNING and desired STOPPED; a cluster that does not exist runs
/// no task (and is reported).
async fn list_cluster<T: Tasks>(tasks: &T, cluster: &str, g: &mut Gathered) -> Result<Vec<String>, GatherFailed> {
    let mut arns = BTreeSet::new();
    for desired in [Desired::Running, Desired::Stopped] {
        match tasks.list_tasks(cluster, desired).await {
            Ok(listed) => arns.extend(listed),
            Err(e) if e.kind == ErrorKind::NotFound => {
                warn!(cluster, action = "list-tasks", outcome = "missing-cluster", error = %e, "configured cluster does not exist: treated as running no task");
                g.missing_clusters.push(cluster.to_owned());
                break;
            }
            Err(e) => return Err(GatherFailed(e)),
        }
    }
    Ok(arns.into_iter().collect())
}

/// One DescribeTasks batch. A task listed but not described is alive as far as we know: left alone
/// (opaque) this run rather than judged unknown, since a teardown of a live task would be final.
async fn describe<T: Tasks>(tasks: &T, cluster: &str, batch: &[String], g: &mut Gathered) {
    let inv = &mut g.inventory;
    match tasks.describe_tasks(cluster, batch).await {
        Ok(d) => {
            // Listed, then reported MISSING (or left out): alive a moment ago.
            for arn in &d.missing {
                warn!(
                    cluster,
                    task_arn = arn,
                    action = "describe-tasks",
                    outcome = "missing",
                    "listed task not described: left alone"
                );
                inv.opaque.insert(task_id(arn));
            }
            for (arn, reason) in &d.failed {
                warn!(
                    cluster,
                    task_arn = arn,
                    reason,
                    action = "describe-tasks",
                    outcome = "failed",
                    "task left alone"
                );
                inv.opaque.insert(task_id(arn));
            }
            inv.tasks.extend(d.tasks);
        }
        Err(e) => {
            warn!(cluster, action = "describe-tasks", outcome = "failed", error = %e, tasks = batch.len(), "tasks left alone");
            g.errors += 1;
            inv.opaque.extend(batch.iter().map(|a| task_id(a)));
        }
    }
}

/// The tags and creation time of the queues the reconciler needs them for ([`needs_details`]).
async fn queue_details<P: QueueInspect>(ports: &P, settings: &Settings, g: &mut Gathered) {
    let wanted: Vec<SeenQueue> = needs_details(&g.inventory, settings).into_iter().cloned().collect();
    for q in wanted {
        match ports.details(&q.url).await {
            Ok(d) => {
                g.inventory.details.insert(q.name, d);
            }
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => {
                warn!(queue = q.name, action = "queue-details", outcome = "failed", error = %e, "queue left alone");
                g.errors += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;

    const GONE: &str = "arn:aws:sns:us-east-1:123456789012:gone";
    const SHUT: &str = "arn:aws:sns:us-east-1:123456789012:shut";

    /// A deleted topic has no subscriptions: its listing is complete (every subscription a record names
    /// on it is lost), not a failure; a topic refusing its listing is listed through our own.
    #[tokio::test]
    async fn a_deleted_topic_lists_complete_and_empty() {
        let fake = Fake::new();
        fake.delete_topic(GONE);
        fake.refuse_topic(SHUT, ErrorKind::AccessDenied);
        let mut into = Listings::default();
        let mut positions = Positions::default();
        let mut lister = Lister {
            pages_per_run: 100,
            positions: &mut positions,
            now: chrono::Utc::now(),
        };
        subscriptions(&fake, [GONE, SHUT], &mut lister, &mut into).await;
        assert!(into.complete.contains(GONE), "{into:?}");
        assert!(into.complete.contains(SHUT), "our own, listed account-wide: {into:?}");
        assert_eq!(into.failed, 0);
        assert!(into.subscriptions.is_empty());
    }

    /// A stored position whose token SNS no longer accepts: the run reads from the first page, and that
    /// begins a new cycle (read whole, the listing is complete), not a continuation of the stale one.
    #[tokio::test]
    async fn a_refused_token_starts_a_new_cycle() {
        use crate::ports::Subscriptions;
        const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t";
        let fake = Fake::new();
        let attrs = std::collections::BTreeMap::from([("RawMessageDelivery", "true".to_owned())]);
        fake.subscribe(TOPIC, "arn:aws:sqs:us-east-1:123456789012:q", &attrs)
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let mut positions = Positions::default();
        let stale = Read {
            from_start: true,
            pages: 100,
            subscriptions: 10_000,
            next: Some("stale".into()),
        };
        positions.advance(TOPIC, stale, now);
        fake.expire_listing_tokens();
        let mut into = Listings::default();
        let mut lister = Lister {
            pages_per_run: 100,
            positions: &mut positions,
            now,
        };
        subscriptions(&fake, [TOPIC], &mut lister, &mut into).await;
        let c = &into.coverage[0];
        assert!(c.complete && into.complete.contains(TOPIC), "{c:?}");
        assert_eq!(
            (c.cycle_runs, c.cycle_pages, into.subscriptions.len()),
            (1, 1, 1),
            "{c:?}"
        );
    }
}
