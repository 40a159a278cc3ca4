//! Who may read the messages of a task queue (issue #22, "a task can read only its own queue"):
//! `TASKSUB_CONSUMER_ROLE_ARNS` and `TASKSUB_QUEUE_ADMIN_ROLE_ARNS`.
//!
//! ```text
//! TASKSUB_CONSUMER_ROLE_ARNS=arn:aws:iam::123456789012:role/orders-task
//! TASKSUB_QUEUE_ADMIN_ROLE_ARNS=arn:aws:iam::123456789012:role/ops/queue-admin
//! ```
//! Both are exact IAM role ARNs (path included) of the deployment's own partition and account: a task
//! queue admits no principal of another account, so a role elsewhere could never read it anyway, and a
//! wildcard would widen an exemption. The policy statements built from them are in
//! [`crate::policy::readers`].

use super::env::{bad, Env};
use super::{vars, SettingsError};
use crate::naming::Home;

/// The roles that may read task queues. Empty `consumer_roles`: isolation is off and the queue policy
/// carries no reader statement (the identity policies alone decide, as before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readers {
    /// The ECS task roles of the consuming applications: only the task's own session of one of them
    /// (role session name = task ID) may receive, delete, hide or purge its queue's messages.
    pub consumer_roles: Vec<String>,
    /// Roles exempt from the isolation (never tasksub's functions, which issue no message action).
    pub admin_roles: Vec<String>,
}

impl Readers {
    /// True when task queues are isolated per task.
    pub fn isolated(&self) -> bool {
        !self.consumer_roles.is_empty()
    }
}

/// Longest role ARN IAM can make: a 512-character path and a 64-character name after `role`.
const MAX_ROLE_ARN_LEN: usize = 2048;

pub(super) fn parse<F: Fn(&str) -> Option<String>>(env: &Env<F>, home: &Home) -> Result<Readers, SettingsError> {
    let consumer_roles = roles(env, vars::CONSUMER_ROLE_ARNS, home)?;
    let admin_roles = roles(env, vars::QUEUE_ADMIN_ROLE_ARNS, home)?;
    if consumer_roles.is_empty() && !admin_roles.is_empty() {
        let reason = format!(
            "exempts roles from a task queue isolation that is off: set {} too (the consuming task roles)",
            vars::CONSUMER_ROLE_ARNS
        );
        return Err(bad(vars::QUEUE_ADMIN_ROLE_ARNS, reason));
    }
    if let Some(both) = consumer_roles.iter().find(|r| admin_roles.contains(r)) {
        let reason = format!("{both} is also a consumer role: an exempt role would read every task's queue");
        return Err(bad(vars::QUEUE_ADMIN_ROLE_ARNS, reason));
    }
    Ok(Readers {
        consumer_roles,
        admin_roles,
    })
}

fn roles<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    home: &Home,
) -> Result<Vec<String>, SettingsError> {
    let mut out: Vec<String> = Vec::new();
    for arn in env.list(name) {
        check_role_arn(&arn, home).map_err(|reason| bad(name, reason))?;
        if out.contains(&arn) {
            return Err(bad(name, format!("{arn} is listed twice")));
        }
        out.push(arn);
    }
    Ok(out)
}

/// `arn:<partition>:iam::<account>:role/[<path>/]<name>` of the deployment's partition and account; IAM's
/// characters for paths and names (`[A-Za-z0-9+=,.@_-]`), no wildcard.
fn check_role_arn(arn: &str, home: &Home) -> Result<(), String> {
    let want = format!("arn:{}:iam::{}:role/", home.partition, home.account);
    let Some(rest) = arn.strip_prefix(&want) else {
        return Err(format!(
            "{arn:?} is not an IAM role ARN of this deployment's account ({want}<path/><name>)"
        ));
    };
    let name = rest.rsplit('/').next().unwrap_or_default();
    let valid_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if name.is_empty() || name.len() > 64 || arn.len() > MAX_ROLE_ARN_LEN || !rest.chars().all(valid_char) {
        return Err(format!(
            "{arn:?} is not a role ARN: expected a role name of 1..=64 of [A-Za-z0-9+=,.@_-] after an optional \
             path, no wildcard"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{vars, Settings};
    use super::Readers;

    const TASK: &str = "arn:aws:iam::123456789012:role/orders-task";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/ops/queue-admin";

    fn env(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let topic = [(vars::TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:fanout")];
        crate::test_support::settings_from_env(&[&topic[..], pairs].concat())
    }

    #[test]
    fn isolation_is_off_unless_consumer_roles_are_given() {
        let s = env(&[]).unwrap();
        assert_eq!(s.readers, Readers::default());
        assert!(!s.readers.isolated());
        let s = env(&[
            (vars::CONSUMER_ROLE_ARNS, &format!(" {TASK} ,")),
            (vars::QUEUE_ADMIN_ROLE_ARNS, ADMIN),
        ])
        .unwrap();
        assert!(s.readers.isolated());
        assert_eq!(s.readers.consumer_roles, [TASK]);
        assert_eq!(s.readers.admin_roles, [ADMIN]);
    }

    #[test]
    fn every_bad_role_list_is_named_and_refused() {
        let rows: &[(&[(&str, &str)], &str)] = &[
            (
                &[(vars::QUEUE_ADMIN_ROLE_ARNS, ADMIN)],
                "invalid setting TASKSUB_QUEUE_ADMIN_ROLE_ARNS: exempts roles from a task queue isolation that is off",
            ),
            (
                &[(vars::CONSUMER_ROLE_ARNS, TASK), (vars::QUEUE_ADMIN_ROLE_ARNS, TASK)],
                "is also a consumer role",
            ),
            (
                &[(vars::CONSUMER_ROLE_ARNS, "arn:aws:iam::210987654321:role/orders-task")],
                "invalid setting TASKSUB_CONSUMER_ROLE_ARNS: \"arn:aws:iam::210987654321:role/orders-task\" is not an IAM role ARN of this deployment's account",
            ),
            (
                &[(vars::CONSUMER_ROLE_ARNS, "arn:aws-cn:iam::123456789012:role/orders-task")],
                "is not an IAM role ARN of this deployment's account",
            ),
            (
                &[(vars::CONSUMER_ROLE_ARNS, "arn:aws:iam::123456789012:user/orders")],
                "is not an IAM role ARN",
            ),
            (&[(vars::CONSUMER_ROLE_ARNS, "orders-task")], "is not an IAM role ARN"),
            (
                &[(vars::CONSUMER_ROLE_ARNS, "arn:aws:iam::123456789012:role/*")],
                "no wildcard",
            ),
            (
                &[(vars::CONSUMER_ROLE_ARNS, "arn:aws:iam::123456789012:role/app/")],
                "no wildcard",
            ),
            (
                &[(vars::CONSUMER_ROLE_ARNS, &*format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65)).leak())],
                "1..=64",
            ),
            (&[(vars::CONSUMER_ROLE_ARNS, &*format!("{TASK},{TASK}").leak())], "is listed twice"),
        ];
        for (pairs, want) in rows {
            let err = env(pairs).unwrap_err();
            assert!(err.contains(want), "{pairs:?}: got {err:?}");
        }
        // A role with a path, and 64-character names, are fine.
        let long = format!("arn:aws:iam::123456789012:role/a/b/{}", "r".repeat(64));
        assert!(env(&[(vars::CONSUMER_ROLE_ARNS, &long)]).is_ok());
    }
}
