//! `tasksub doctor`: checks a deployment from the operator's seat and says, in plain words, what is
//! wrong and how to fix it.
//!
//! Every check reads; none creates, changes or deletes anything. Permissions are those of the caller
//! (the operator's credentials, not the functions' roles), probed with calls that cannot change state:
//! a GetQueueUrl of a name no task can have answers NonExistentQueue when allowed and AccessDenied when
//! not. Writes (CreateQueue, TagQueue, DeleteQueue, Subscribe, Unsubscribe, PutItem) cannot be
//! probed without side effects and are listed as not checked.
//!
//! The leftover and drift checks are a dry run of the sweeper (`sweep`): one judgment for both.
//! Every group of checks runs at once and is bounded by one operation timeout, so an endpoint that never
//! answers ends doctor in about 25 s.
//!
//! Exit codes: 0 healthy, 1 problems found, 2 bad usage or unusable settings, 3 only transient problems
//! (an endpoint that did not answer, throttling: run it again).

mod probes;
mod quotas;
mod sweep;

use std::process::ExitCode;

use serde::Serialize;
use tasksub_core::naming::TopicArn;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::settings::{Settings, SweepSettings};
use tasksub_functions::ports::PortError;

use super::{EXIT_FAILED, EXIT_TRANSIENT, EXIT_USAGE};

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the checks as one JSON document instead of lines of text.
    #[arg(long)]
    json: bool,
    /// Judge leftovers and drift as the sweep at this time (RFC 3339) would, e.g. once a refused topic's
    /// backoff or a grace period has passed (default: now).
    #[arg(long, value_name = "TIME")]
    at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Something is wrong; `fix` says what to do.
    Problem,
    /// Fine for now, but close to a limit; `fix` says what to do before it is reached.
    Warn,
    /// Not checked (it cannot be without side effects, or a failed check before it makes it moot).
    NotChecked,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// How it came out.
    pub status: Status,
    /// What was checked.
    pub check: String,
    /// What was found.
    pub detail: String,
    /// What to do about a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The problem may go away by itself (a timeout, throttling): run doctor again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transient: bool,
}

impl Check {
    fn new(status: Status, check: impl Into<String>, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            status,
            check: check.into(),
            detail: detail.into(),
            fix,
            transient: false,
        }
    }
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::Ok, check, detail, None)
    }
    fn problem(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(Status::Problem, check, detail, Some(fix.into()))
    }
    fn warn(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(Status::Warn, check, detail, Some(fix.into()))
    }
    fn not_checked(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Status::NotChecked, check, detail, None)
    }
    fn transient(check: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::problem(check, detail, fix)
        }
    }
}

/// What a read-only probe of `action` says about the caller's permission. `absent` tells what a
/// not-found answer means: for a probe aimed at something that cannot exist, that the call was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// Not found proves the call got past authorisation.
    MeansAllowed,
    /// Not found means the resource is missing (reported by its own check), so the permission is moot.
    IsMoot,
}

/// The verdict on one permission probe.
pub fn permission(action: &str, result: Result<(), PortError>, absent: Absent) -> Check {
    let check = format!("permission {action}");
    match result {
        Ok(()) => Check::ok(check, "allowed"),
        Err(e) => match (e.kind, absent) {
            (ErrorKind::NotFound, Absent::MeansAllowed) => {
                Check::ok(check, "allowed (the probe named something that cannot exist, and got not-found)")
            }
            (ErrorKind::NotFound, Absent::IsMoot) => {
                Check::not_checked(check, "the resource does not exist (see above)")
            }
            (ErrorKind::AccessDenied, _) => Check::problem(
                check,
                format!("denied: {}", e.message),
                format!("grant {action} to these credentials (which actions the functions' roles need: docs/contract.md, AWS actions used)"),
            ),
            (ErrorKind::Throttled | ErrorKind::Transient, _) => {
                Check::transient(check, format!("could not check: {e}"), "run `tasksub doctor` again")
            }
            _ => Check::problem(check, format!("unexpected answer: {e}"), "look at the message; check the region and endpoint"),
        },
    }
}

/// GetTopicAttributes denied. Another account's topic: its owner's policy admits Subscribe (what the
/// functions call), not necessarily GetTopicAttributes (which nothing of tasksub calls), so the probe
/// proves nothing; whether the topic admits the tasks shows in their records (`refusedTopics`). Our own
/// account's topic: these credentials lack the permission doctor's probe needs.
pub fn topic_denied(topic: &TopicArn, home_account: &str, message: &str) -> Check {
    if topic.account != home_account {
        return Check::not_checked(
            "topic",
            format!(
                "{} belongs to account {}, whose topic policy need not grant sns:GetTopicAttributes (the \
                 functions never call it); whether it admits the tasks' Subscribe shows per task in \
                 `tasksub show` (refusedTopics) and in the `topic refusals` check",
                topic.as_str(),
                topic.account
            ),
        );
    }
    Check::problem(
        "permission sns:GetTopicAttributes",
        format!("denied: {message}"),
        "grant sns:GetTopicAttributes on the topic to these credentials so doctor can check it (the functions \
         do not need it)",
    )
}

/// The settings, or the check that says why they are unusable.
fn settings(env: impl Fn(&str) -> Option<String> + Copy) -> Result<(Settings, Check), Check> {
    let fix = "set the variable (the list is in docs/contract.md, Settings) and run `tasksub doctor` again";
    let settings = Settings::from_lookup(env).map_err(|e| Check::problem("settings", e.to_string(), fix))?;
    SweepSettings::from_lookup(env).map_err(|e| Check::problem("settings", e.to_string(), fix))?;
    let detail = format!(
        "topic(s) {}, table {}, {} cluster(s), queue prefix {:?}",
        settings.topic_arns().collect::<Vec<_>>().join(", "),
        settings.table,
        settings.scope.clusters.len(),
        settings.queue.prefix.as_str()
    );
    Ok((settings, Check::ok("settings", detail)))
}

/// Runs every check and prints them; the exit code says how it went ([`exit_code`]).
pub async fn run(args: Args, sdk: &aws_config::SdkConfig) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let mut checks = Vec::new();
    let settings_ok = match settings(env) {
        Ok((settings, check)) => {
            checks.push(check);
            let sweep = SweepSettings::from_lookup(env)?;
            let at = args.at.unwrap_or_else(chrono::Utc::now);
            checks.extend(probes::all(sdk, &settings, sweep, at).await);
            true
        }
        Err(check) => {
            checks.push(check);
            false
        }
    };
    let problems = checks.iter().filter(|c| c.status == Status::Problem).count();
    if args.json {
        let doc = serde_json::json!({"healthy": problems == 0, "problems": problems, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&checks));
        match problems {
            0 => println!("healthy: no problem found"),
            n => println!("{n} problem(s) found"),
        }
    }
    Ok(ExitCode::from(exit_code(settings_ok, &checks)))
}

/// 0 healthy; 2 unusable settings; 1 a problem; 3 when every problem may go away by itself.
pub fn exit_code(settings_ok: bool, checks: &[Check]) -> u8 {
    let problems: Vec<&Check> = checks.iter().filter(|c| c.status == Status::Problem).collect();
    match (settings_ok, problems.is_empty()) {
        (false, _) => EXIT_USAGE,
        (true, true) => 0,
        (true, false) if problems.iter().all(|c| c.transient) => EXIT_TRANSIENT,
        (true, false) => EXIT_FAILED,
    }
}

/// The checks as aligned lines of text, each problem followed by its fix.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Problem => "FAIL",
            Status::Warn => "warn",
            Status::NotChecked => "skip",
        };
        out.push_str(&format!("{tag}  {:<width$}  {}\n", c.check, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: ErrorKind) -> Result<(), PortError> {
        Err(PortError::new(kind, "GetQueueUrl", "code: message"))
    }

    #[test]
    fn probe_answers_become_verdicts() {
        use Absent::*;
        let rows = [
            (Ok(()), MeansAllowed, Status::Ok),
            (Ok(()), IsMoot, Status::Ok),
            (err(ErrorKind::NotFound), MeansAllowed, Status::Ok),
            (err(ErrorKind::NotFound), IsMoot, Status::NotChecked),
            (err(ErrorKind::AccessDenied), MeansAllowed, Status::Problem),
            (err(ErrorKind::AccessDenied), IsMoot, Status::Problem),
            (err(ErrorKind::Throttled), MeansAllowed, Status::Problem),
            (err(ErrorKind::Invalid), MeansAllowed, Status::Problem),
        ];
        for (result, absent, want) in rows {
            let c = permission("sqs:GetQueueUrl", result.clone(), absent);
            assert_eq!(c.status, want, "{result:?} {absent:?}");
            assert_eq!(c.fix.is_some(), want == Status::Problem);
        }
        let denied = permission("sqs:GetQueueUrl", err(ErrorKind::AccessDenied), MeansAllowed);
        assert!(denied.fix.unwrap().contains("grant sqs:GetQueueUrl"));
    }

    #[test]
    fn unusable_settings_are_one_problem_naming_the_variable() {
        let c = settings(|_| None).unwrap_err();
        assert_eq!(c.status, Status::Problem);
        assert!(c.detail.contains("TASKSUB_TOPIC_ARN"), "{c:?}");
        let env = |k: &str| match k {
            "TASKSUB_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:t".to_owned()),
            "TASKSUB_TABLE" => Some("records".to_owned()),
            "TASKSUB_CLUSTERS" => Some("prod".to_owned()),
            "TASKSUB_ACCOUNT_ID" => Some("123456789012".to_owned()),
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "TASKSUB_SWEEP_GRACE_SECONDS" => Some("soon".to_owned()),
            _ => None,
        };
        let c = settings(env).unwrap_err();
        assert!(c.detail.contains("TASKSUB_SWEEP_GRACE_SECONDS"), "{c:?}");
    }

    #[test]
    fn a_foreign_topic_denying_its_attributes_is_not_checked_an_own_one_is_a_problem() {
        let foreign = TopicArn::parse("arn:aws:sns:eu-west-1:210987654321:flags").unwrap();
        let own = TopicArn::parse("arn:aws:sns:us-east-1:123456789012:fanout").unwrap();
        let c = topic_denied(&foreign, "123456789012", "not authorized");
        assert_eq!(c.status, Status::NotChecked, "{c:?}");
        assert!(
            c.detail.contains("210987654321") && c.detail.contains("refusedTopics"),
            "{c:?}"
        );
        let c = topic_denied(&own, "123456789012", "not authorized");
        assert_eq!(c.status, Status::Problem, "{c:?}");
        let fix = c.fix.as_deref().unwrap_or_default();
        assert!(fix.contains("the functions do not need it"), "{c:?}");
    }

    #[test]
    fn the_exit_code_says_what_kind_of_problem() {
        let ok = Check::ok("a", "fine");
        let bad = Check::problem("b", "broken", "fix it");
        let slow = Check::transient("c", "timed out", "again");
        assert_eq!(exit_code(true, std::slice::from_ref(&ok)), 0);
        assert_eq!(exit_code(true, &[ok.clone(), slow.clone()]), EXIT_TRANSIENT);
        assert_eq!(exit_code(true, &[slow.clone(), bad.clone()]), EXIT_FAILED);
        assert_eq!(
            exit_code(false, &[bad]),
            EXIT_USAGE,
            "unusable settings are a usage problem"
        );
        assert_eq!(
            exit_code(true, &[Check::warn("w", "close", "raise")]),
            0,
            "a warning is healthy"
        );
    }

    #[test]
    fn problems_are_followed_by_their_fix() {
        let text = render(&[
            Check::ok("topic", "reachable"),
            Check::problem("table", "table t does not exist", "create it"),
            Check::not_checked("permission sns:Subscribe", "not checkable without side effects"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("ok    topic"));
        assert!(lines[1].starts_with("FAIL  table"));
        assert!(lines[2].trim_start().starts_with("fix: create it"));
        assert!(lines[3].starts_with("skip  permission sns:Subscribe"));
    }
}
