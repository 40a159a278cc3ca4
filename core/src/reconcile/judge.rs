//! One task's verdict: which row of the table atop [`super`] applies, and the action or hold it gives.
//!
//! [`Cx::judge`] is the table itself (ECS × record state); each row is a small function below it, so a
//! row reads like its line of the module table.

use chrono::{DateTime, Duration, Utc};

use super::SeenSubscription;
use super::{grace_hold, Action, ActionKind, Ecs, EcsTask, Hold, QueueDetails, SeenQueue};
use crate::decide::{plan_for, plan_with, Decision, Hints, Intent, Plan, Skip, Step, TaskFacts};
use crate::naming::{TaskArn, TaskNames};
use crate::policy::tags;
use crate::record::{Record, State};
use crate::settings::Settings;

/// Everything known about one task ID.
pub(super) struct Subject<'a> {
    pub(super) id: &'a str,
    pub(super) ecs: Ecs,
    pub(super) task: Option<&'a EcsTask>,
    pub(super) record: Option<&'a Record>,
    pub(super) queue: Option<&'a SeenQueue>,
    pub(super) details: Option<&'a QueueDetails>,
    /// The listed subscriptions whose endpoint is this task's queue.
    pub(super) seen: Vec<&'a SeenSubscription>,
}

/// What every verdict of one run shares.
pub(super) struct Cx<'a> {
    pub(super) settings: &'a Settings,
    pub(super) grace: Duration,
    pub(super) now: DateTime<Utc>,
    /// Topics whose listing was read to its end.
    pub(super) listed: &'a std::collections::BTreeSet<String>,
    /// Live tasks this run audits.
    pub(super) audit: &'a std::collections::BTreeSet<&'a str>,
}

/// `None`: nothing to do and nothing worth reporting.
pub(super) type Verdict = Option<Result<Action, Hold>>;

impl Cx<'_> {
    /// The table: one arm per row of the module table.
    pub(super) fn judge(&self, s: &Subject<'_>) -> Verdict {
        match (s.ecs, s.task, s.record.map(|r| r.state)) {
            (Ecs::Running, Some(t), None) => self.provision(s, t),
            (Ecs::Running, Some(t), Some(State::Provisioning)) => self.finish_provisioning(s, t),
            (Ecs::Running, Some(t), Some(State::Ready)) => self.converge(s, t),
            (Ecs::Stopping, Some(t), Some(State::Provisioning | State::Ready)) => self.drain(s, t),
            (Ecs::Stopped | Ecs::Unknown, _, Some(State::Gone)) => self.stray_queue(s),
            (Ecs::Stopped, Some(t), Some(_)) => self.stopped_with_record(s, t),
            (Ecs::Stopped, Some(t), None) if s.queue.is_some() => self.stopped_queue(s, t),
            (Ecs::Unknown, _, Some(_)) => self.unknown_with_record(s),
            (Ecs::Unknown, _, None) => self.orphan_queue(s),
            _ => None,
        }
    }

    /// A running task in scope without a record: its start event was lost.
    fn provision(&self, s: &Subject<'_>, t: &EcsTask) -> Verdict {
        let scope = &self.settings.scope;
        if !scope.owns_cluster(&t.cluster_arn) || !scope.owns_group(t.group.as_deref()) {
            return None;
        }
        let facts = facts_of_task(t);
        self.act(ActionKind::Provision, Intent::Provision, facts, s, t.created_at)
    }

    /// A running task whose provisioning a crash interrupted.
    fn finish_provisioning(&self, s: &Subject<'_>, t: &EcsTask) -> Verdict {
        let since = s.record.map(|r| r.updated_at);
        self.act(
            ActionKind::FinishProvisioning,
            Intent::Provision,
            facts_of_task(t),
            s,
            since,
        )
    }

    /// A READY task whose real queue or subscriptions differ from its desired state: the settings
    /// changed, a topic refused and is due again, its queue is not listed, or a recorded subscription is
    /// missing from its topic's complete listing (deleted by the owner, or lost with a re-created topic).
    fn converge(&self, s: &Subject<'_>, t: &EcsTask) -> Verdict {
        let r = s.record?;
        // The listings were read before the records: only a record that named its subscriptions well
        // before this sweep began proves that a subscription missing from a listing is gone.
        let settled = self.now - r.updated_at >= self.grace.max(super::LOST_AFTER);
        let lost: std::collections::BTreeSet<String> = r
            .subscriptions
            .iter()
            .filter(|(topic, arn)| settled && self.listed.contains(*topic) && !s.seen.iter().any(|x| &x.arn == *arn))
            .map(|(topic, _)| topic.clone())
            .collect();
        // Our subscriptions to configured topics that the record does not name for their topic (made
        // before the topic's owner refused Subscribe, or by an attempt whose answer was lost): recorded as
        // they are and their attributes converged, never subscribed again (a refusing topic would refuse).
        // Likewise one that replaces a recorded subscription found lost (the topic re-created, or ours
        // re-made by an attempt whose answer was lost).
        let mut adopt = std::collections::BTreeMap::new();
        for seen in &s.seen {
            let Some(topic) = seen.topic() else { continue };
            let unnamed = !r.subscriptions.contains_key(topic) || lost.contains(topic);
            if self.settings.topic(topic).is_some() && unnamed && !r.names(&seen.arn) {
                adopt.entry(topic.to_owned()).or_insert_with(|| seen.arn.clone());
            }
        }
        let hints = Hints {
            verify: s.queue.is_none() || !adopt.is_empty(),
            lost,
            adopt,
        };
        let names = match self.names(&t.task_arn) {
            Ok(n) => n,
            Err(hold) => return Some(Err(hold)),
        };
        let facts = facts_of_task(t);
        let plan = |hints: &Hints| {
            plan_with(
                Intent::Provision,
                &names,
                &facts,
                Some(r),
                self.settings,
                self.now,
                hints,
            )
        };
        let audited = self.audit.contains(s.id);
        let (kind, plan) = match plan(&hints) {
            // A task due for its audit is read whatever else brings the sweep to it (a refusal to retry,
            // a lost subscription): an older writer may have changed what its record says is converged.
            Decision::Act(p) if audited && !p.observe => match plan(&Hints {
                verify: true,
                ..hints.clone()
            }) {
                Decision::Act(read) => (ActionKind::Converge, read),
                Decision::Skip(_) => (ActionKind::Converge, p),
            },
            Decision::Act(p) => (ActionKind::Converge, p),
            Decision::Skip(Skip::AlreadyReady) if self.audit.contains(s.id) => {
                let audit = Hints {
                    verify: true,
                    ..Hints::default()
                };
                match plan(&audit) {
                    Decision::Act(p) => (ActionKind::Audit, p),
                    Decision::Skip(skip) => return Some(Err(Hold::Skip(skip))),
                }
            }
            Decision::Skip(Skip::AlreadyReady) => return None,
            Decision::Skip(skip) => return Some(Err(Hold::Skip(skip))),
        };
        let mut a = action(kind, Intent::Provision, names.clone(), facts.clone(), s, *plan);
        a.lost = hints.lost;
        Some(Ok(a))
    }

    /// A stopping task whose stop event was lost.
    fn drain(&self, s: &Subject<'_>, t: &EcsTask) -> Verdict {
        let since = t.stopping_at.or(s.record.map(|r| r.updated_at));
        self.act(ActionKind::Drain, Intent::StopInitiated, facts_of_task(t), s, since)
    }

    /// A stopped task whose record is not yet GONE.
    fn stopped_with_record(&self, s: &Subject<'_>, t: &EcsTask) -> Verdict {
        self.act(
            ActionKind::RemoveOrphan,
            Intent::Stopped,
            facts_of_task(t),
            s,
            t.stopped_at,
        )
    }

    /// A stopped task without a record whose queue still exists: removed only if tasksub's tags prove it ours.
    fn stopped_queue(&self, s: &Subject<'_>, t: &EcsTask) -> Verdict {
        if let Err(hold) = proven(s.details, s.id, self.settings) {
            return Some(Err(hold));
        }
        self.act(
            ActionKind::RemoveOrphan,
            Intent::Stopped,
            facts_of_task(t),
            s,
            t.stopped_at,
        )
    }

    /// A record whose task ECS does not know (it stopped long ago, or its cluster is gone).
    fn unknown_with_record(&self, s: &Subject<'_>) -> Verdict {
        let r = s.record?;
        if !self.settings.scope.owns_cluster(&r.cluster_arn) {
            return Some(Err(Hold::ForeignCluster(r.cluster_arn.clone())));
        }
        self.act(
            ActionKind::RemoveOrphan,
            Intent::Stopped,
            facts_of_record(r),
            s,
            Some(r.updated_at),
        )
    }

    /// A queue without a record whose task ECS does not know: ours only if its tags agree.
    fn orphan_queue(&self, s: &Subject<'_>) -> Verdict {
        s.queue?;
        // No details: the queue vanished between ListQueues and the detail calls.
        let d = s.details?;
        let tag = |k: &str| d.tags.get(k).filter(|v| !v.is_empty()).cloned();
        if let Err(hold) = proven(s.details, s.id, self.settings) {
            return Some(Err(hold));
        }
        let task_arn = tag(tags::TASK_ARN).unwrap_or_default();
        let cluster_arn = tag(tags::CLUSTER).unwrap_or_default();
        if !cluster_arn.is_empty() && !self.settings.scope.owns_cluster(&cluster_arn) {
            return Some(Err(Hold::ForeignCluster(cluster_arn)));
        }
        let facts = TaskFacts {
            task_arn,
            cluster_arn,
            group: tag(tags::GROUP),
            version: None,
        };
        self.act(ActionKind::RemoveOrphan, Intent::Stopped, facts, s, d.created_at)
    }

    /// A GONE tombstone whose queue still exists: delete the queue, leave the tombstone to its TTL.
    fn stray_queue(&self, s: &Subject<'_>) -> Verdict {
        let (r, q) = (s.record?, s.queue?);
        if let Some(hold) = self.due(ActionKind::RemoveStrayQueue, Some(r.updated_at)) {
            return Some(Err(hold));
        }
        let names = match self.names(&r.task_arn) {
            Ok(n) => n,
            Err(hold) => return Some(Err(hold)),
        };
        let mut record = r.clone();
        record.queue_url = Some(q.url.clone());
        let plan = Plan {
            intent: Intent::Stopped,
            record,
            expected: Some(State::Gone),
            steps: vec![Step::DeleteQueue],
            observe: false,
            inherited: Default::default(),
            baseline: None,
        };
        let (kind, intent, facts) = (ActionKind::RemoveStrayQueue, Intent::Stopped, facts_of_record(r));
        Some(Ok(action(kind, intent, names, facts, s, plan)))
    }

    /// `Some(hold)` while `since` is younger than the grace period.
    fn due(&self, kind: ActionKind, since: Option<DateTime<Utc>>) -> Option<Hold> {
        grace_hold(kind, since?, self.grace, self.now)
    }

    /// Every name of the task, or the hold a malformed ARN earns.
    fn names(&self, task_arn: &str) -> Result<TaskNames, Hold> {
        TaskNames::derive(task_arn, self.settings.naming()).map_err(|e| Hold::BadName(e.to_string()))
    }

    /// The action of a row once its grace period has passed: the plan the missed event would have run.
    fn act(
        &self,
        kind: ActionKind,
        intent: Intent,
        facts: TaskFacts,
        s: &Subject<'_>,
        since: Option<DateTime<Utc>>,
    ) -> Verdict {
        if let Some(hold) = self.due(kind, since) {
            return Some(Err(hold));
        }
        let names = match self.names(&facts.task_arn) {
            Ok(n) => n,
            Err(hold) => return Some(Err(hold)),
        };
        match plan_for(intent, &names, &facts, s.record, self.settings, self.now) {
            Decision::Act(plan) => Some(Ok(action(kind, intent, names, facts, s, *plan))),
            Decision::Skip(skip) => Some(Err(Hold::Skip(skip))),
        }
    }
}

fn action(kind: ActionKind, intent: Intent, names: TaskNames, facts: TaskFacts, s: &Subject<'_>, plan: Plan) -> Action {
    Action {
        kind,
        task_id: s.id.to_owned(),
        ecs: s.ecs,
        queue: s.queue.map(|q| q.name.clone()),
        record_state: s.record.map(|r| r.state),
        intent,
        names,
        facts,
        plan,
        lost: Default::default(),
    }
}

/// A record-less queue is ours only when tasksub's tags name its task and our stack (no details: it
/// vanished, or could not be read).
pub(super) fn proven(details: Option<&QueueDetails>, id: &str, settings: &Settings) -> Result<(), Hold> {
    let d = details.ok_or(Hold::Untagged)?;
    let arn = d
        .tags
        .get(tags::TASK_ARN)
        .filter(|v| !v.is_empty())
        .ok_or(Hold::Untagged)?;
    match TaskArn::parse(arn) {
        Ok(parsed) if parsed.task_id.as_str() == id => {}
        _ => return Err(Hold::ForeignQueue),
    }
    match d.tags.get(tags::STACK) {
        Some(stack) if *stack == settings.stack => Ok(()),
        _ => Err(Hold::OtherStack),
    }
}

fn facts_of_task(t: &EcsTask) -> TaskFacts {
    TaskFacts {
        task_arn: t.task_arn.clone(),
        cluster_arn: t.cluster_arn.clone(),
        group: t.group.clone(),
        version: t.version,
    }
}

fn facts_of_record(r: &Record) -> TaskFacts {
    TaskFacts {
        task_arn: r.task_arn.clone(),
        cluster_arn: r.cluster_arn.clone(),
        group: r.group.clone(),
        version: Some(r.version),
    }
}
