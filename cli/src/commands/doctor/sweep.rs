//! The leftover and drift checks are the sweeper's own judgment: doctor runs a dry sweep (the scheduled
//! sweeper's code, `core`'s reconcile, nothing changed) and says what the next sweep will do and what it
//! will leave alone, and why. So doctor and `tasksub sweep --dry-run` can never disagree. Pure: the
//! report in, the checks out.

use std::collections::BTreeMap;

use tasksub_functions::sweeper::{ActionReport, HeldReport, Report};

use super::Check;

/// How many names a finding prints.
pub const NAMES_SHOWN: usize = 20;

const SWEEP_FIX: &str = "the scheduled sweeper does it at its next run; `tasksub sweep` does it now \
                         (`tasksub sweep --dry-run` shows the same plan)";

fn listed<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let mut s = names.iter().take(NAMES_SHOWN).copied().collect::<Vec<_>>().join(", ");
    if names.len() > NAMES_SHOWN {
        s.push_str(&format!(", and {} more", names.len() - NAMES_SHOWN));
    }
    s
}

/// What a leftover is: the subscription ARN of an orphan subscription, else the queue (or the task).
fn what(a: &ActionReport) -> &str {
    match a.action {
        "unsubscribe-orphan" => a.detail.as_deref().unwrap_or(&a.task_id),
        _ => a.queue.as_deref().unwrap_or(&a.task_id),
    }
}

fn line(a: &ActionReport) -> String {
    format!("{} {}", a.action, a.task_id)
}

/// What the live fleet costs a month in AWS requests ([`tasksub_core::cost`]): information, never a problem.
pub fn cost(report: &Report, settings: &tasksub_core::settings::Settings) -> Check {
    use tasksub_core::cost::{task_cost, Fleet, Prices, HOURS_PER_MONTH};
    let fleet = Fleet {
        topics: settings.topics.len(),
        fifo: settings.queue.fifo,
        reads_filters: true,
    };
    let c = task_cost(fleet, Prices::default());
    let live = report.live_records;
    let month = live as f64 * c.per_hour * HOURS_PER_MONTH;
    Check::ok(
        "cost",
        format!(
            "{live} live task(s): about ${month:.2} a month idle (${:.6} a task-hour, its idle long polls), \
             ${:.6} a start and stop, ${:.4} per 1,000 messages a task receives (us-east-1 list prices; README \"Cost\")",
            c.per_hour, c.per_lifecycle, c.per_thousand_messages
        ),
    )
}

/// The checks of one dry sweep.
pub fn judge(report: &Report) -> Vec<Check> {
    // An audit is the rotating re-read of a task nothing says drifted: planned, it proves nothing.
    let (orphans, drift): (Vec<&ActionReport>, Vec<&ActionReport>) = report
        .actions
        .iter()
        .filter(|a| a.action != "audit")
        .partition(|a| matches!(a.action, "remove-orphan" | "remove-stray-queue" | "unsubscribe-orphan"));
    let mut out = vec![leftovers(&orphans, report.waiting), converge(&drift), refusals(report)];
    out.extend(held(&report.held));
    if report.errors > 0 {
        out.push(Check::transient(
            "sweep reads",
            format!(
                "{} read(s) failed during the dry sweep: its verdict is partial",
                report.errors
            ),
            "run `tasksub doctor` again; a failure that persists is named in the logs (RUST_LOG=warn)",
        ));
    }
    out
}

fn leftovers(orphans: &[&ActionReport], waiting: usize) -> Check {
    let wait = if waiting > 0 {
        format!(" ({waiting} more wait for the grace period)")
    } else {
        String::new()
    };
    if orphans.is_empty() {
        return Check::ok("leftovers", format!("none due{wait}"));
    }
    let detail = format!(
        "{} leftover(s) of stopped or vanished tasks are due for removal{wait}: {}",
        orphans.len(),
        listed(orphans.iter().map(|a| what(a)))
    );
    Check::problem("leftovers", detail, SWEEP_FIX)
}

fn converge(drift: &[&ActionReport]) -> Check {
    if drift.is_empty() {
        return Check::ok(
            "desired state",
            "every live task's queue and subscriptions are as the settings want",
        );
    }
    let names: Vec<String> = drift.iter().map(|a| line(a)).collect();
    let detail = format!(
        "{} live task(s) differ from their desired state: {}",
        drift.len(),
        listed(names.iter().map(String::as_str))
    );
    Check::warn("desired state", detail, SWEEP_FIX)
}

fn refusals(report: &Report) -> Check {
    if report.refusals.is_empty() {
        return Check::ok("topic refusals", "no topic refuses a live task");
    }
    let names: Vec<String> = report
        .refusals
        .iter()
        .map(|r| {
            format!(
                "{} refuses {} ({}, {} attempt(s): {})",
                r.topic, r.task_id, r.kind, r.attempts, r.message
            )
        })
        .collect();
    let detail = format!(
        "{} topic subscription(s) refused: {}",
        names.len(),
        listed(names.iter().map(String::as_str))
    );
    Check::problem(
        "topic refusals",
        detail,
        "the topic's owner must let this account subscribe (infra/snippets/foreign-topic-policy.yaml), or the \
         quota must be raised (README, Quotas); the sweeper tries again with backoff (5 min doubling to 6 h)",
    )
}

/// What the next sweep will leave alone, grouped by reason, with each reason's fix. Waiting for the
/// grace period and in-flight work are normal and not reported.
fn held(held: &[HeldReport]) -> Vec<Check> {
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for h in held.iter().filter(|h| !matches!(h.reason, "grace" | "in-flight")) {
        let who = h.queue.clone().or_else(|| h.task_id.clone()).unwrap_or_default();
        groups.entry(h.reason).or_default().push(who);
    }
    groups
        .into_iter()
        .map(|(reason, names)| {
            let detail = format!(
                "{} left alone ({reason}): {}",
                names.len(),
                listed(names.iter().map(String::as_str))
            );
            let check = format!("held: {reason}");
            match reason {
                "quarantined" => Check::problem(
                    check,
                    detail,
                    "the records cannot be read (a hand edit, a missing attribute): repair each item or delete it \
                     (aws dynamodb delete-item); its task is left alone until then",
                ),
                "older-generation" => Check::warn(
                    check,
                    detail,
                    "these records were converged by a newer TASKSUB_SETTINGS_GENERATION than these settings: \
                     this CLI's settings are stale (use the deployment's)",
                ),
                "untagged" | "other-stack" | "foreign-queue" => Check::warn(
                    check,
                    detail,
                    "queues under the prefix that tasksub cannot prove are its own: delete them by hand if they are \
                     (the sweeper never will)",
                ),
                _ => Check::warn(check, detail, "see `tasksub sweep --dry-run` for each one's reason"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn action(kind: &'static str, task: &str) -> ActionReport {
        ActionReport {
            action: kind,
            task_id: task.into(),
            ecs: "stopped",
            queue: None,
            record_state: None,
            steps: vec![],
            outcome: "planned",
            state: None,
            detail: None,
        }
    }

    fn hold(reason: &'static str, task: &str) -> HeldReport {
        HeldReport {
            reason,
            task_id: Some(task.into()),
            queue: None,
            action: None,
            due_at: None,
            detail: None,
        }
    }

    fn statuses(checks: &[Check]) -> Vec<(&str, Status)> {
        checks.iter().map(|c| (c.check.as_str(), c.status)).collect()
    }

    #[test]
    fn a_clean_dry_sweep_is_healthy() {
        let report = Report {
            dry_run: true,
            held: vec![hold("grace", "t1"), hold("in-flight", "t2")],
            actions: vec![action("audit", "t3")],
            waiting: 1,
            ..Report::default()
        };
        let checks = judge(&report);
        assert_eq!(
            statuses(&checks),
            [
                ("leftovers", Status::Ok),
                ("desired state", Status::Ok),
                ("topic refusals", Status::Ok)
            ]
        );
        assert!(checks[0].detail.contains("1 more wait for the grace period"));
    }

    #[test]
    fn what_the_next_sweep_does_and_leaves_is_said_with_its_fix() {
        let report = Report {
            dry_run: true,
            actions: vec![
                action("remove-orphan", "t1"),
                action("unsubscribe-orphan", "t2"),
                action("converge", "t3"),
                action("provision", "t4"),
            ],
            held: vec![
                hold("quarantined", "bad"),
                hold("untagged", "t5"),
                hold("other-stack", "t6"),
            ],
            refusals: vec![tasksub_functions::sweeper::RefusalReport {
                task_id: "t3".into(),
                topic: "arn:aws:sns:eu-west-1:210987654321:flags".into(),
                kind: "access-denied".into(),
                message: "not admitted".into(),
                attempts: 2,
                since: chrono::DateTime::UNIX_EPOCH,
            }],
            errors: 1,
            ..Report::default()
        };
        let checks = judge(&report);
        assert_eq!(
            statuses(&checks),
            [
                ("leftovers", Status::Problem),
                ("desired state", Status::Warn),
                ("topic refusals", Status::Problem),
                ("held: other-stack", Status::Warn),
                ("held: quarantined", Status::Problem),
                ("held: untagged", Status::Warn),
                ("sweep reads", Status::Problem),
            ]
        );
        assert!(checks[0].detail.starts_with("2 leftover(s)"), "{}", checks[0].detail);
        assert!(
            checks[1].detail.contains("converge t3, provision t4"),
            "{}",
            checks[1].detail
        );
        assert!(
            checks[2]
                .detail
                .contains("flags refuses t3 (access-denied, 2 attempt(s)"),
            "{}",
            checks[2].detail
        );
        assert!(checks[4]
            .fix
            .as_deref()
            .unwrap()
            .contains("repair each item or delete it"));
        assert!(checks[5].fix.as_deref().unwrap().contains("the sweeper never will"));
        assert!(checks[6].transient && !checks[0].transient);
    }

    #[test]
    fn long_lists_are_cut() {
        let many: Vec<ActionReport> = (0..25).map(|i| action("remove-orphan", &format!("t{i}"))).collect();
        let report = Report {
            actions: many,
            ..Report::default()
        };
        assert!(judge(&report)[0].detail.ends_with(", and 5 more"));
    }

    /// The cost line prices the live fleet (tombstones excluded) with core's model.
    #[test]
    fn the_cost_line_prices_the_live_fleet() {
        let report = Report {
            live_records: 100_000,
            ..Report::default()
        };
        let settings = tasksub_core::settings::Settings::from_lookup(|k| {
            let v = match k {
                "TASKSUB_TOPIC_ARN" => "arn:aws:sns:us-east-1:123456789012:t",
                "TASKSUB_TABLE" => "records",
                "TASKSUB_CLUSTERS" => "prod",
                "TASKSUB_ACCOUNT_ID" => "123456789012",
                "AWS_REGION" => "us-east-1",
                _ => return None,
            };
            Some(v.to_owned())
        })
        .unwrap();
        let c = cost(&report, &settings);
        assert!(
            c.detail.starts_with("100000 live task(s): about $5310.75 a month idle"),
            "{}",
            c.detail
        );
    }
}
