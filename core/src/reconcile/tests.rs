//! Every rule of `reconcile` is a row.

use super::*;
use crate::decide::{Decision, Skip, Step};
use crate::event::TaskStatus;
use crate::policy::tags;
use crate::record::State;
use crate::test_support::{now, settings, PROD, TOPIC};

const ID: &str = "0123456789abcdef0123456789abcdef";
const OTHER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/other";
const GRACE: u64 = 600;

fn ago(seconds: i64) -> DateTime<Utc> {
    now() - Duration::seconds(seconds)
}

fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}")
}

fn task(last: &str, desired: &str, age: i64, group: &str) -> EcsTask {
    let stopping = desired == "STOPPED";
    let stopped = last == "STOPPED";
    EcsTask {
        task_arn: task_arn(ID),
        cluster_arn: PROD.into(),
        group: Some(group.into()),
        last_status: TaskStatus::from(last.to_owned()),
        desired_status: TaskStatus::from(desired.to_owned()),
        version: Some(9),
        created_at: Some(if stopping { ago(age + 100) } else { ago(age) }),
        stopping_at: stopping.then(|| if stopped { ago(age + 50) } else { ago(age) }),
        stopped_at: stopped.then(|| ago(age)),
    }
}

fn record(state: State, age: i64, cluster: &str) -> Record {
    let live = matches!(state, State::Ready | State::Draining);
    Record {
        task_id: ID.into(),
        task_arn: task_arn(ID),
        cluster_arn: cluster.into(),
        group: Some("service:orders".into()),
        queue_name: format!("tasksub-{ID}"),
        queue_arn: format!("arn:aws:sqs:us-east-1:123456789012:tasksub-{ID}"),
        queue_url: live.then(|| format!("https://sqs/tasksub-{ID}")),
        subscriptions: (state == State::Ready)
            .then(|| (TOPIC.to_owned(), format!("{TOPIC}:sub")))
            .into_iter()
            .collect(),
        state,
        version: 3,
        created_at: ago(age + 100),
        updated_at: ago(age),
        expires_at: None,
        revision: 1,
        pending: Default::default(),
        refused: Default::default(),
        generation: 0,
        settings_hash: (state == State::Ready).then(|| settings().fingerprint()),
        watch: Default::default(),
        client_filters: Default::default(),
    }
}

fn queue(id: &str) -> SeenQueue {
    SeenQueue {
        name: format!("tasksub-{id}"),
        url: format!("https://sqs/tasksub-{id}"),
    }
}

#[derive(Clone, Copy)]
enum Tags {
    Ours,
    Untagged,
    OtherTask,
    OtherStack,
    OtherCluster,
}

fn details(age: i64, tags: Tags) -> QueueDetails {
    let mut t = BTreeMap::new();
    match tags {
        Tags::Ours => {
            t.insert(tags::TASK_ARN.to_owned(), task_arn(ID));
            t.insert(tags::CLUSTER.to_owned(), PROD.to_owned());
            t.insert(tags::STACK.to_owned(), "tasksub".to_owned());
        }
        Tags::OtherStack => {
            t.insert(tags::TASK_ARN.to_owned(), task_arn(ID));
            t.insert(tags::STACK.to_owned(), "tasksub-staging".to_owned());
        }
        Tags::Untagged => {}
        Tags::OtherTask => {
            t.insert(tags::TASK_ARN.to_owned(), task_arn("ffffffffffffffffffffffffffffffff"));
        }
        Tags::OtherCluster => {
            t.insert(tags::TASK_ARN.to_owned(), task_arn(ID));
            t.insert(tags::CLUSTER.to_owned(), OTHER.to_owned());
            t.insert(tags::STACK.to_owned(), "tasksub".to_owned());
        }
    }
    QueueDetails {
        created_at: Some(ago(age)),
        tags: t,
    }
}

#[derive(Debug, PartialEq)]
enum Want {
    Act(ActionKind, Vec<Step>),
    Hold(&'static str),
    Nothing,
}

fn outcome(r: Reconciled) -> Want {
    assert!(r.actions.len() + r.held.len() <= 1, "{r:?}");
    if let Some(a) = r.actions.into_iter().next() {
        return Want::Act(a.kind, a.plan.steps);
    }
    match r.held.into_iter().next() {
        Some(h) => Want::Hold(h.hold.code()),
        None => Want::Nothing,
    }
}

struct Row {
    name: &'static str,
    ecs: Option<EcsTask>,
    opaque: bool,
    record: Option<Record>,
    /// `Some(None)`: the queue is listed but vanished before its details were read.
    queue: Option<Option<QueueDetails>>,
    want: Want,
}

fn row(name: &'static str, ecs: Option<EcsTask>, record: Option<Record>, want: Want) -> Row {
    Row {
        name,
        ecs,
        opaque: false,
        record,
        queue: None,
        want,
    }
}

impl Row {
    fn queue(mut self, d: Option<QueueDetails>) -> Self {
        self.queue = Some(d);
        self
    }
    fn opaque(mut self) -> Self {
        self.opaque = true;
        self
    }
    fn run(self) {
        let mut inv = Inventory::default();
        inv.tasks.extend(self.ecs);
        inv.records.extend(self.record);
        if self.opaque {
            inv.opaque.insert(ID.to_owned());
        }
        if let Some(d) = self.queue {
            let q = queue(ID);
            if let Some(d) = d {
                inv.details.insert(q.name.clone(), d);
            }
            inv.queues.push(q);
        }
        let got = outcome(reconcile(&inv, &settings(), GRACE, now()));
        assert_eq!(got, self.want, "{}", self.name);
    }
}

#[test]
fn reconcile_table() {
    use ActionKind::*;
    use State::*;
    use Step::*;
    let gone = Tombstone(Gone);
    let ours = "service:orders";
    let provision = || vec![Claim, CreateQueue, Subscribe, MarkReady];
    #[rustfmt::skip]
    let rows = vec![
        // running tasks: provision what is missing, finish what a crash left half done
        row("running, no record", Some(task("RUNNING", "RUNNING", 700, ours)), None, Want::Act(Provision, provision())),
        row("pending, no record", Some(task("PENDING", "RUNNING", 700, ours)), None, Want::Act(Provision, provision())),
        row("running, no record, queue exists", Some(task("RUNNING", "RUNNING", 700, ours)), None, Want::Act(Provision, provision()))
            .queue(None),
        row("running, no record, young", Some(task("RUNNING", "RUNNING", 10, ours)), None, Want::Hold("grace")),
        row("running, foreign group", Some(task("RUNNING", "RUNNING", 700, "service:other")), None, Want::Nothing),
        row("running, READY", Some(task("RUNNING", "RUNNING", 700, ours)), Some(record(Ready, 700, PROD)), Want::Nothing)
            .queue(None),
        // a live task's queue deleted by hand (not listed): made again, and everything looked at
        row("running, READY, queue gone", Some(task("RUNNING", "RUNNING", 700, ours)), Some(record(Ready, 700, PROD)),
            Want::Act(Converge, vec![CreateQueue, Subscribe, MarkReady])),
        row("running, PROVISIONING crashed", Some(task("RUNNING", "RUNNING", 700, ours)), Some(record(Provisioning, 700, PROD)),
            Want::Act(FinishProvisioning, vec![CreateQueue, Subscribe, MarkReady])),
        row("running, PROVISIONING in flight", Some(task("RUNNING", "RUNNING", 700, ours)), Some(record(Provisioning, 5, PROD)),
            Want::Hold("grace")),
        row("running, DRAINING", Some(task("RUNNING", "RUNNING", 700, ours)), Some(record(Draining, 700, PROD)), Want::Nothing)
            .queue(None),
        row("running, GONE", Some(task("RUNNING", "RUNNING", 700, ours)), Some(record(Gone, 700, PROD)), Want::Nothing),
        // stopping tasks: unsubscribe if the stop event was lost; never delete a draining queue
        row("stopping, READY", Some(task("RUNNING", "STOPPED", 700, ours)), Some(record(Ready, 900, PROD)),
            Want::Act(Drain, vec![Unsubscribe, MarkDraining])).queue(None),
        row("stopping, READY, young", Some(task("RUNNING", "STOPPED", 10, ours)), Some(record(Ready, 900, PROD)),
            Want::Hold("grace")),
        row("stopping, DRAINING", Some(task("STOPPING", "STOPPED", 700, ours)), Some(record(Draining, 700, PROD)), Want::Nothing)
            .queue(None),
        row("stopping, no record, queue", Some(task("DEACTIVATING", "STOPPED", 700, ours)), None, Want::Nothing).queue(None),
        row("winding down while desired RUNNING", Some(task("DEACTIVATING", "RUNNING", 700, ours)), Some(record(Ready, 700, PROD)),
            Want::Nothing).queue(None),
        row("listed, not described", None, Some(record(Ready, 9000, PROD)), Want::Nothing).queue(None).opaque(),
        // stopped tasks: tear down whatever is left
        row("stopped, READY", Some(task("STOPPED", "STOPPED", 700, ours)), Some(record(Ready, 900, PROD)),
            Want::Act(RemoveOrphan, vec![Unsubscribe, DeleteQueue, gone])).queue(None),
        row("stopped, PROVISIONING", Some(task("STOPPED", "STOPPED", 700, ours)), Some(record(Provisioning, 900, PROD)),
            Want::Act(RemoveOrphan, vec![Unsubscribe, LookupQueueUrl, DeleteQueue, gone])),
        row("stopped, DRAINING", Some(task("STOPPED", "STOPPED", 700, ours)), Some(record(Draining, 900, PROD)),
            Want::Act(RemoveOrphan, vec![DeleteQueue, gone])).queue(None),
        row("stopped, no record, tagged queue", Some(task("STOPPED", "STOPPED", 700, "service:other")), None,
            Want::Act(RemoveOrphan, vec![LookupQueueUrl, DeleteQueue, gone])).queue(Some(details(700, Tags::Ours))),
        // a name is no proof of ownership: a record-less queue without tasksub's tags is never deleted
        row("stopped, no record, untagged queue", Some(task("STOPPED", "STOPPED", 700, ours)), None,
            Want::Hold("untagged")).queue(Some(details(700, Tags::Untagged))),
        row("stopped, no record, queue without details", Some(task("STOPPED", "STOPPED", 700, ours)), None,
            Want::Hold("untagged")).queue(None),
        row("stopped, no record, no queue", Some(task("STOPPED", "STOPPED", 700, ours)), None, Want::Nothing),
        row("stopped recently", Some(task("STOPPED", "STOPPED", 30, ours)), Some(record(Ready, 900, PROD)), Want::Hold("grace"))
            .queue(None),
        row("stopped, GONE, queue left", Some(task("STOPPED", "STOPPED", 700, ours)), Some(record(Gone, 700, PROD)),
            Want::Act(RemoveStrayQueue, vec![DeleteQueue])).queue(None),
        row("stopped, GONE", Some(task("STOPPED", "STOPPED", 700, ours)), Some(record(Gone, 700, PROD)), Want::Nothing),
        // tasks ECS does not know (stopped long ago, or never listed)
        row("unknown, READY", None, Some(record(Ready, 700, PROD)), Want::Act(RemoveOrphan, vec![Unsubscribe, DeleteQueue, gone]))
            .queue(None),
        row("unknown, PROVISIONING", None, Some(record(Provisioning, 700, PROD)),
            Want::Act(RemoveOrphan, vec![Unsubscribe, LookupQueueUrl, DeleteQueue, gone])),
        row("unknown, READY, young", None, Some(record(Ready, 100, PROD)), Want::Hold("grace")).queue(None),
        row("unknown, READY, cluster out of scope", None, Some(record(Ready, 700, OTHER)), Want::Hold("foreign-cluster"))
            .queue(None),
        row("unknown, no record, tagged queue", None, None, Want::Act(RemoveOrphan, vec![LookupQueueUrl, DeleteQueue, gone]))
            .queue(Some(details(700, Tags::Ours))),
        row("unknown, no record, untagged queue", None, None, Want::Hold("untagged"))
            .queue(Some(details(700, Tags::Untagged))),
        row("unknown, no record, young queue", None, None, Want::Hold("grace")).queue(Some(details(30, Tags::Ours))),
        row("unknown, queue of another stack", None, None, Want::Hold("other-stack"))
            .queue(Some(details(700, Tags::OtherStack))),
        row("unknown, queue tagged for another task", None, None, Want::Hold("foreign-queue"))
            .queue(Some(details(700, Tags::OtherTask))),
        row("unknown, queue tagged for another cluster", None, None, Want::Hold("foreign-cluster"))
            .queue(Some(details(700, Tags::OtherCluster))),
        row("unknown, queue vanished before its details", None, None, Want::Nothing).queue(None),
        row("unknown, GONE, queue left", None, Some(record(Gone, 700, PROD)), Want::Act(RemoveStrayQueue, vec![DeleteQueue]))
            .queue(None),
        row("unknown, GONE, queue left recently", None, Some(record(Gone, 60, PROD)), Want::Hold("grace")).queue(None),
        row("unknown, GONE", None, Some(record(Gone, 700, PROD)), Want::Nothing),
    ];
    for r in rows {
        r.run();
    }
}

#[test]
fn grace_zero_acts_at_once() {
    let inv = Inventory {
        tasks: vec![task("STOPPED", "STOPPED", 0, "service:orders")],
        records: vec![record(State::Ready, 0, PROD)],
        ..Inventory::default()
    };
    let r = reconcile(&inv, &settings(), 0, now());
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].kind, ActionKind::RemoveOrphan);
}

#[test]
fn queues_outside_the_prefix_or_not_named_by_a_task_are_never_touched() {
    let inv = Inventory {
        queues: vec![
            SeenQueue {
                name: "orders-dlq".into(),
                url: "https://sqs/orders-dlq".into(),
            },
            queue(&"a".repeat(70)),
        ],
        ..Inventory::default()
    };
    assert!(needs_details(&inv, &settings()).is_empty());
    let r = reconcile(&inv, &settings(), 0, now());
    assert!(r.actions.is_empty(), "{r:?}");
    assert_eq!(r.held.len(), 1);
    assert_eq!(r.held[0].hold, Hold::UnrecognisedName);
    assert_eq!(
        r.held[0].queue.as_deref(),
        Some(format!("tasksub-{}", "a".repeat(70)).as_str())
    );
}

#[test]
fn only_orphan_candidates_need_details() {
    let id = |s: &str| format!("{s}{}", "0".repeat(30));
    let ids = ["a1", "b2", "c3", "d4", "e5"].map(id);
    let mut inv = Inventory {
        queues: ids.iter().map(|id| queue(id)).collect(),
        ..Inventory::default()
    };
    let mut with_record = record(State::Ready, 0, PROD);
    with_record.task_id = id("a1");
    inv.records.push(with_record);
    let mut running = task("RUNNING", "RUNNING", 0, "service:orders");
    running.task_arn = task_arn(&id("b2"));
    let mut stopped = task("STOPPED", "STOPPED", 0, "service:orders");
    stopped.task_arn = task_arn(&id("c3"));
    inv.tasks = vec![running, stopped];
    inv.opaque.insert(id("d4"));
    let names: Vec<String> = needs_details(&inv, &settings())
        .iter()
        .map(|q| q.name.clone())
        .collect();
    // c3's task stopped and e5's is unknown: both need their tags to prove ownership.
    assert_eq!(
        names,
        vec![format!("tasksub-{}", id("c3")), format!("tasksub-{}", id("e5"))]
    );
}

#[test]
fn a_task_listed_twice_counts_with_its_later_status() {
    let inv = Inventory {
        tasks: vec![
            task("RUNNING", "RUNNING", 700, "service:orders"),
            task("STOPPED", "STOPPED", 700, "service:orders"),
        ],
        records: vec![record(State::Ready, 700, PROD)],
        ..Inventory::default()
    };
    let r = reconcile(&inv, &settings(), GRACE, now());
    assert_eq!(r.actions.len(), 1);
    assert_eq!(
        (r.actions[0].kind, r.actions[0].ecs),
        (ActionKind::RemoveOrphan, Ecs::Stopped)
    );
    // whatever order the two listings came in: the later status is the stopped one
    let mut reversed = inv.clone();
    reversed.tasks.reverse();
    let r = reconcile(&reversed, &settings(), GRACE, now());
    assert_eq!(
        (r.actions[0].kind, r.actions[0].ecs),
        (ActionKind::RemoveOrphan, Ecs::Stopped)
    );
}

/// After a topic is added or removed, a live task's READY record converges at the next sweep (no grace:
/// the task runs); a stopping or unknown task's is never converged.
#[test]
fn live_tasks_converge_to_the_configured_topics() {
    use crate::test_support::settings_with_topics;
    const FLAGS: &str = "arn:aws:sns:eu-west-1:210987654321:flags";
    let ours = "service:orders";
    let run = |settings: &Settings, rec: Record, ecs: EcsTask| {
        let inv = Inventory {
            tasks: vec![ecs],
            records: vec![rec],
            queues: vec![queue(ID)],
            ..Inventory::default()
        };
        let r = reconcile(&inv, settings, GRACE, now());
        r.actions
            .iter()
            .map(|a| (a.kind, a.plan.steps.clone()))
            .collect::<Vec<_>>()
    };
    let two = settings_with_topics(&[TOPIC, FLAGS]);
    let fresh = || task("RUNNING", "RUNNING", 1, ours);
    let added = run(&two, record(State::Ready, 1, PROD), fresh());
    assert_eq!(
        added,
        vec![(
            ActionKind::Converge,
            vec![Step::RecordIntent, Step::CreateQueue, Step::Subscribe, Step::MarkReady]
        )]
    );
    let mut both = record(State::Ready, 1, PROD);
    both.subscriptions.insert(FLAGS.into(), format!("{FLAGS}:sub"));
    both.settings_hash = Some(two.fingerprint());
    let removed = run(&settings(), both.clone(), fresh());
    assert_eq!(
        removed,
        vec![(
            ActionKind::Converge,
            vec![
                Step::CreateQueue,
                Step::Subscribe,
                Step::UnsubscribeRetired,
                Step::MarkReady
            ]
        )]
    );
    assert!(run(&two, both.clone(), fresh()).is_empty(), "no drift, nothing to do");
    // a stopping task is drained, not converged
    let stopping = run(&settings(), both, task("RUNNING", "STOPPED", 700, ours));
    assert_eq!(stopping[0].0, ActionKind::Drain);
}

/// What a live task lost to others is made again: a subscription the topic's owner deleted, or lost with
/// a re-created topic (its recorded ARN is missing from the topic's complete listing). A topic whose
/// listing was cut short proves nothing.
#[test]
fn a_subscription_missing_from_a_complete_listing_is_made_again() {
    let ours = "service:orders";
    let rec = record(State::Ready, 700, PROD);
    let mine = SeenSubscription {
        arn: format!("{TOPIC}:sub"),
        endpoint: rec.queue_arn.clone(),
        protocol: "sqs".into(),
    };
    let run = |subs: Vec<SeenSubscription>, listed: bool| {
        let mut inv = Inventory {
            tasks: vec![task("RUNNING", "RUNNING", 700, ours)],
            records: vec![rec.clone()],
            queues: vec![queue(ID)],
            subscriptions: subs,
            ..Inventory::default()
        };
        if listed {
            inv.listed.insert(TOPIC.into());
        }
        outcome(reconcile(&inv, &settings(), GRACE, now()))
    };
    assert_eq!(run(vec![mine.clone()], true), Want::Nothing, "listed: healthy");
    let again = Want::Act(
        ActionKind::Converge,
        vec![Step::RecordIntent, Step::CreateQueue, Step::Subscribe, Step::MarkReady],
    );
    assert_eq!(run(vec![], true), again, "deleted by the owner");
    let mut other = mine.clone();
    other.arn = format!("{TOPIC}:new");
    assert_eq!(
        run(vec![other], true),
        Want::Act(
            ActionKind::Converge,
            vec![Step::CreateQueue, Step::Subscribe, Step::MarkReady]
        ),
        "a re-created topic's new subscription (ours, listed) is recorded as it is: no intent to write"
    );
    assert_eq!(
        run(vec![], false),
        Want::Nothing,
        "an incomplete listing proves nothing"
    );
    // a record written while the sweep listed may name a subscription made after the listing
    let young = |age: i64, grace: u64| {
        let mut r = rec.clone();
        r.updated_at = ago(age);
        let mut inv = Inventory {
            tasks: vec![task("RUNNING", "RUNNING", 700, ours)],
            records: vec![r],
            queues: vec![queue(ID)],
            ..Inventory::default()
        };
        inv.listed.insert(TOPIC.into());
        outcome(reconcile(&inv, &settings(), grace, now()))
    };
    assert_eq!(young(119, 0), Want::Nothing, "younger than LOST_AFTER");
    assert_eq!(young(120, 0), again, "exactly LOST_AFTER old");
    assert_eq!(young(599, 600), Want::Nothing, "a longer grace waits longer");
}

/// Our subscription to a configured topic that the record does not name (made before the topic's owner
/// refused Subscribe, which the record says): adopted as it is and its attributes converged, never
/// subscribed again (the topic would refuse). A refusal not yet due, and nothing of ours listed, is left.
#[test]
fn a_subscription_of_a_refusing_topic_is_adopted_not_subscribed() {
    let mut rec = record(State::Ready, 700, PROD);
    rec.subscriptions.clear();
    rec.refused.insert(
        TOPIC.into(),
        crate::record::Refusal {
            kind: "access-denied".into(),
            message: "Subscribe failed (access-denied)".into(),
            since: ago(60),
            last_at: ago(60),
            attempts: 1,
        },
    );
    let mine = SeenSubscription {
        arn: format!("{TOPIC}:made-before"),
        endpoint: rec.queue_arn.clone(),
        protocol: "sqs".into(),
    };
    let run = |subs: Vec<SeenSubscription>| {
        let mut inv = Inventory {
            tasks: vec![task("RUNNING", "RUNNING", 700, "service:orders")],
            records: vec![rec.clone()],
            queues: vec![queue(ID)],
            subscriptions: subs,
            ..Inventory::default()
        };
        inv.listed.insert(TOPIC.into());
        reconcile(&inv, &settings(), GRACE, now())
    };
    let r = run(vec![mine.clone()]);
    assert!(r.held.is_empty(), "{r:?}");
    let [a] = r.actions.as_slice() else {
        panic!("one action: {r:?}")
    };
    assert_eq!(a.kind, ActionKind::Converge);
    assert_eq!(a.plan.record.subscriptions.get(TOPIC), Some(&mine.arn), "recorded");
    assert!(a.plan.record.refused.is_empty(), "no longer refused");
    assert!(a.plan.observe, "its attributes are read and converged");
    assert!(a.plan.steps.contains(&Step::MarkReady), "{:?}", a.plan.steps);
    // the subscribe stage reads the recorded subscription (and sets what differs) instead of subscribing
    let targets = crate::converge::plan::subscribe_targets(&a.plan.record, &a.plan.inherited, &settings(), now(), true);
    let target = targets.iter().find(|t| t.topic == TOPIC).expect("a target");
    assert_eq!(target.known.as_deref(), Some(mine.arn.as_str()));
    assert!(target.verify && !target.pending);
    // another task's subscription is not ours to adopt
    let mut theirs = mine.clone();
    theirs.endpoint = theirs.endpoint.replace(ID, "fedcba9876543210fedcba9876543210");
    assert_eq!(outcome(run(vec![theirs])), Want::Nothing, "another queue's");
    assert_eq!(outcome(run(vec![])), Want::Nothing, "refused, not due, nothing listed");
    // a second subscription of ours to a topic whose recorded one is listed (healthy): nothing to adopt
    // (the record keeps its own; the subscription pass holds the other)
    let mut healthy = record(State::Ready, 700, PROD);
    healthy.subscriptions.insert(TOPIC.into(), mine.arn.clone());
    let mut second = mine.clone();
    second.arn = format!("{TOPIC}:second");
    let mut inv = Inventory {
        tasks: vec![task("RUNNING", "RUNNING", 700, "service:orders")],
        records: vec![healthy],
        queues: vec![queue(ID)],
        subscriptions: vec![mine.clone(), second],
        ..Inventory::default()
    };
    inv.listed.insert(TOPIC.into());
    assert_eq!(
        outcome(reconcile_with(&inv, &settings(), GRACE, now(), 0)),
        Want::Nothing,
        "the record's own subscription is kept"
    );
}

/// A record that cannot be read is reported by its key and left alone; the other tasks are judged.
#[test]
fn a_quarantined_record_is_held_and_the_rest_goes_on() {
    let mut inv = Inventory {
        tasks: vec![task("STOPPED", "STOPPED", 700, "service:orders")],
        queues: vec![queue(ID)],
        ..Inventory::default()
    };
    inv.quarantined
        .insert(ID.into(), "malformed record item: attribute state".into());
    let other = "ffffffffffffffffffffffffffffffff";
    let mut rec = record(State::Ready, 700, PROD);
    rec.task_id = other.into();
    rec.task_arn = task_arn(other);
    inv.records.push(rec);
    let r = reconcile(&inv, &settings(), GRACE, now());
    assert_eq!(r.held.len(), 1, "{r:?}");
    assert_eq!(
        r.held[0].hold,
        Hold::Quarantined("malformed record item: attribute state".into())
    );
    assert_eq!(r.held[0].task_id.as_deref(), Some(ID));
    assert_eq!(
        r.actions.len(),
        1,
        "the other task (unknown to ECS) is still judged: {r:?}"
    );
    assert_eq!(r.actions[0].task_id, other);
}

/// The names in the sweeper's report and metrics are a contract; only removals count as orphans.
#[test]
fn action_and_ecs_names_are_pinned() {
    use ActionKind::*;
    let kinds = [
        RemoveOrphan,
        RemoveStrayQueue,
        FinishProvisioning,
        Provision,
        Drain,
        Converge,
    ];
    let names = kinds.map(ActionKind::as_str);
    assert_eq!(
        names,
        [
            "remove-orphan",
            "remove-stray-queue",
            "finish-provisioning",
            "provision",
            "drain",
            "converge"
        ]
    );
    assert_eq!(
        kinds.map(ActionKind::is_orphan),
        [true, true, false, false, false, false]
    );
    let ecs = [Ecs::Running, Ecs::Stopping, Ecs::Stopped, Ecs::Busy, Ecs::Unknown].map(Ecs::as_str);
    assert_eq!(ecs, ["running", "stopping", "stopped", "busy", "unknown"]);
}

/// A long grace is honoured as given (the overflow guard does not wrap it).
#[test]
fn a_long_grace_is_honoured() {
    let inv = Inventory {
        records: vec![record(State::Ready, 9_000, PROD)],
        ..Inventory::default()
    };
    let r = reconcile(&inv, &settings(), 10_000, now());
    assert!(r.actions.is_empty(), "{:?}", r.actions);
    assert_eq!(r.held[0].hold.code(), "grace");
}

#[test]
fn plans_carry_the_facts_of_their_source() {
    // an orphan queue: the tombstone names the task and cluster from the queue's tags
    let mut inv = Inventory {
        queues: vec![queue(ID)],
        ..Inventory::default()
    };
    inv.details.insert(format!("tasksub-{ID}"), details(700, Tags::Ours));
    let a = reconcile(&inv, &settings(), GRACE, now()).actions.remove(0);
    assert_eq!(
        (a.plan.record.task_arn.as_str(), a.plan.record.cluster_arn.as_str()),
        (task_arn(ID).as_str(), PROD)
    );
    assert_eq!(a.plan.expected, None);
    // untagged: ownership unproven, so no plan at all (held and reported)
    inv.details
        .insert(format!("tasksub-{ID}"), details(700, Tags::Untagged));
    let r = reconcile(&inv, &settings(), GRACE, now());
    assert!(r.actions.is_empty());
    assert_eq!(r.held[0].hold, Hold::Untagged);
    // a stray queue: the plan deletes the listed URL and expects the tombstone
    let inv = Inventory {
        queues: vec![queue(ID)],
        records: vec![record(State::Gone, 700, PROD)],
        ..Inventory::default()
    };
    let a = reconcile(&inv, &settings(), GRACE, now()).actions.remove(0);
    assert_eq!(
        a.plan.record.queue_url.as_deref(),
        Some(format!("https://sqs/tasksub-{ID}").as_str())
    );
    assert_eq!(a.plan.expected, Some(State::Gone));
    // a provision: the record is made from the ECS description
    let inv = Inventory {
        tasks: vec![task("RUNNING", "RUNNING", 700, "service:orders")],
        ..Inventory::default()
    };
    let a = reconcile(&inv, &settings(), GRACE, now()).actions.remove(0);
    assert_eq!(a.plan.record.version, 9);
    assert_eq!(a.plan.record.group.as_deref(), Some("service:orders"));
    assert_eq!(a.intent, Intent::Provision);
}

#[test]
fn replanning_after_a_conflict_uses_decide() {
    let inv = Inventory {
        tasks: vec![task("RUNNING", "RUNNING", 700, "service:orders")],
        ..Inventory::default()
    };
    let s = settings();
    let a = reconcile(&inv, &s, GRACE, now()).actions.remove(0);
    // the Lambda won the race and finished
    let ready = record(State::Ready, 0, PROD);
    assert_eq!(
        a.replan(Some(&ready), &s, now(), &Default::default()),
        Decision::Skip(Skip::AlreadyReady)
    );
    // the Lambda claimed and crashed: carry on from its claim
    let claimed = record(State::Provisioning, 0, PROD);
    match a.replan(Some(&claimed), &s, now(), &Default::default()) {
        Decision::Act(p) => assert_eq!(p.steps, vec![Step::CreateQueue, Step::Subscribe, Step::MarkReady]),
        d => panic!("{d:?}"),
    }
}

/// The prefix blast radius: a common-word prefix such as `prod-` is refused outright (a prefix starts with
/// `tasksub-`), and under our prefix no queue tasksub did not make for this stack is ever planned for
/// deletion: queues whose names are not task queues, a queue tagged by another team, one of another
/// deployment, all kept, whatever ECS says (nothing here).
#[test]
fn foreign_queues_under_the_prefix_are_never_planned() {
    assert!(crate::naming::QueuePrefix::new("prod-").is_err());
    let other_id = "f".repeat(32);
    let named = |n: &str| SeenQueue {
        name: n.to_owned(),
        url: format!("https://sqs/{n}"),
    };
    let mut inv = Inventory {
        queues: vec![
            named("tasksub-orders"),
            named("tasksub-orders-dlq"),
            queue(ID),
            queue(&other_id),
        ],
        ..Inventory::default()
    };
    let team = QueueDetails {
        created_at: Some(ago(9999)),
        tags: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
    };
    inv.details.insert(format!("tasksub-{ID}"), team);
    let mut staging = details(9999, Tags::Ours);
    staging
        .tags
        .insert(tags::STACK.to_owned(), "tasksub-staging".to_owned());
    staging.tags.insert(tags::TASK_ARN.to_owned(), task_arn(&other_id));
    inv.details.insert(format!("tasksub-{other_id}"), staging);
    let r = reconcile(&inv, &settings(), 0, now());
    assert!(r.actions.is_empty(), "{:#?}", r.actions);
    let mut held: Vec<&str> = r.held.iter().map(|h| h.hold.code()).collect();
    held.sort();
    assert_eq!(
        held,
        ["other-stack", "unrecognised-name", "unrecognised-name", "untagged"]
    );
}

/// `--grace-seconds` is the operator's: any value holds things back, none panics.
#[test]
fn an_absurd_grace_holds_everything_without_panicking() {
    let inv = Inventory {
        records: vec![record(State::Ready, 700, PROD)],
        queues: vec![queue(ID)],
        ..Inventory::default()
    };
    let r = reconcile(&inv, &settings(), u64::MAX, now());
    assert!(r.actions.is_empty());
    assert_eq!(r.held[0].hold.code(), "grace");
}

/// A stray queue's action is a lone DeleteQueue: whatever the record became meanwhile, it is never planned
/// again (no teardown is re-run on a tombstone's behalf).
#[test]
fn a_stray_queue_action_is_never_replanned() {
    let inv = Inventory {
        records: vec![record(State::Gone, 700, PROD)],
        queues: vec![queue(ID)],
        ..Inventory::default()
    };
    let s = settings();
    let a = reconcile(&inv, &s, GRACE, now()).actions.remove(0);
    assert_eq!(a.kind, ActionKind::RemoveStrayQueue);
    for stored in [
        None,
        Some(record(State::Ready, 0, PROD)),
        Some(record(State::Gone, 0, PROD)),
    ] {
        assert_eq!(
            a.replan(stored.as_ref(), &s, now(), &Default::default()),
            Decision::Skip(Skip::AlreadyGone)
        );
    }
}

/// A stopped task with neither record nor queue leaves nothing to judge: no action, and no `untagged`
/// hold for a queue that does not exist (the table's stopped-without-record row needs a queue).
#[test]
fn a_stopped_task_with_nothing_left_is_not_judged() {
    let s = settings();
    let cx = super::judge::Cx {
        settings: &s,
        grace: Duration::seconds(0),
        now: now(),
        listed: &Default::default(),
        audit: &Default::default(),
    };
    let t = task("STOPPED", "STOPPED", 700, "service:orders");
    let subject = super::judge::Subject {
        id: ID,
        ecs: Ecs::Stopped,
        task: Some(&t),
        record: None,
        queue: None,
        details: None,
        seen: vec![],
    };
    assert_eq!(cx.judge(&subject), None);
}

fn live_fleet(count: usize) -> Inventory {
    let mut inv = Inventory::default();
    for i in 0..count {
        let id = format!("{i:032x}");
        let mut t = task("RUNNING", "RUNNING", 1, "service:orders");
        t.task_arn = task_arn(&id);
        let mut r = record(State::Ready, 1, PROD);
        r.task_id = id.clone();
        r.task_arn = task_arn(&id);
        inv.tasks.push(t);
        inv.records.push(r);
        inv.queues.push(queue(&id));
    }
    inv
}

/// The audit cycle is the smallest count ≥ ⌈live / n⌉ with no factor 2 or 3.
#[test]
fn the_audit_cycle_is_coprime_with_every_schedule() {
    let cases = [
        (0, 25, 1),
        (1, 25, 1),
        (25, 25, 1),
        (26, 25, 5),
        (100, 25, 5),
        (101, 25, 5),
        (126, 25, 7),
        (10, 1, 11),
        (7, 0, 7),
    ];
    for (live, n, cycle) in cases {
        assert_eq!(audit_cycle(live, n), cycle, "{live} tasks, {n} per run");
    }
}

/// Whatever the schedule the template admits (5 min to 6 h: every 1, 2, 3, 4, 6, 12, 24, 36 or 72
/// slots), every live task is audited within one cycle of runs, and no run audits more than `n`.
#[test]
fn every_live_task_is_audited_within_a_cycle_whatever_the_schedule() {
    for (count, n) in [(103, 10), (250, 25), (24, 25), (7, 1)] {
        let inv = live_fleet(count);
        let cycle = audit_cycle(count, n);
        for step in [1i64, 2, 3, 4, 6, 12, 24, 36, 72] {
            let mut seen = BTreeSet::new();
            for run in 0..cycle as i64 {
                let at = now() + Duration::seconds(run * step * AUDIT_SLOT_SECONDS);
                let set = audit_set(&inv, n, at);
                assert!(set.len() <= n, "{count} tasks, {n} per run: a run audits {}", set.len());
                assert!(!set.is_empty());
                seen.extend(set);
            }
            assert_eq!(seen.len(), count, "{count} tasks, {n} per run, every {step} slots");
        }
        // successive runs audit different tasks (when there are more tasks than one run audits)
        if count > n {
            let a = audit_set(&inv, n, now());
            let b = audit_set(&inv, n, now() + Duration::seconds(AUDIT_SLOT_SECONDS));
            assert!(a.is_disjoint(&b));
        }
    }
}

/// Only READY records of running tasks are audited, and a run audits them with an Audit action that
/// reads the world (a task nothing says drifted is otherwise left alone).
#[test]
fn audits_pick_live_ready_tasks_and_read_the_world() {
    let mut inv = live_fleet(3);
    inv.records[1].state = State::Draining;
    inv.tasks[2].desired_status = TaskStatus::from("STOPPED".to_owned());
    let set = audit_set(&inv, 25, now());
    assert_eq!(
        set.into_iter().collect::<Vec<_>>(),
        vec![inv.records[0].task_id.as_str()]
    );
    assert!(audit_set(&inv, 0, now()).is_empty());
    let one = live_fleet(1);
    let none = reconcile_with(&one, &settings(), GRACE, now(), 0);
    assert!(
        none.actions.is_empty(),
        "{:?}",
        none.actions
            .iter()
            .map(|a| (a.kind, a.plan.steps.clone()))
            .collect::<Vec<_>>()
    );
    let r = reconcile_with(&one, &settings(), GRACE, now(), 1);
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].kind, ActionKind::Audit);
    assert!(r.actions[0].plan.observe, "an audit reads the queue and subscriptions");
    // a task the sweep converges for another reason (a refusal due again) is read too when audited: an
    // older writer may have changed its queue after its record was converged
    let mut due = live_fleet(1);
    due.records[0].refused.insert(
        "arn:aws:sns:us-east-1:123456789012:fanout".into(),
        crate::record::Refusal {
            kind: "quota".into(),
            message: "FilterPolicyLimitExceeded".into(),
            since: ago(3600),
            last_at: ago(3600),
            attempts: 1,
        },
    );
    due.records[0].subscriptions.clear();
    let unread = reconcile_with(&due, &settings(), GRACE, now(), 0);
    assert_eq!(unread.actions.len(), 1);
    assert_eq!(unread.actions[0].kind, ActionKind::Converge);
    assert!(
        !unread.actions[0].plan.observe,
        "not audited: only the refused topic is tried"
    );
    let read = reconcile_with(&due, &settings(), GRACE, now(), 1);
    assert_eq!(read.actions[0].kind, ActionKind::Converge);
    assert!(
        read.actions[0].plan.observe,
        "audited: the queue and subscriptions are read too"
    );
}
