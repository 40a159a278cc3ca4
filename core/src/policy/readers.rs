//! Task queue isolation: the two Deny statements that leave a task queue's messages to the task's own
//! role session (issue #22). Built only when [`Readers::isolated`]; see `docs/threat-model.md`, "A task
//! reads only its own queue", for the AWS facts they rest on:
//!
//! - a role session's `aws:PrincipalArn` is the ARN of its role, and its `aws:userid` is
//!   `<role unique id>:<role session name>` (IAM's global condition keys and policy variables);
//! - ECS names the task role's session after the task: the session name is the task ID.
//!
//! ```text
//! DenyOtherReaders  Deny <message actions> to *  when aws:PrincipalArn is none of the consumer and admin roles
//! DenyOtherTasks    Deny <message actions> to *  when aws:PrincipalArn is a consumer role
//!                                               and aws:userid is not like "*:<task id>"
//! ```
//! Neither names tasksub's functions: they issue no message action (infra/tests/test_iam.py, call
//! coverage), so the Denies never meet their calls (DeleteQueue, SetQueueAttributes, GetQueueUrl...).

use serde_json::{json, Value};

use crate::naming::TaskId;
use crate::settings::Readers;

/// The actions that read, remove or hide a queue's messages: receiving (which also hides for the
/// visibility timeout), deleting, changing visibility, purging. Their batch forms are authorized as the
/// same actions, and a message move task out of a queue needs `sqs:ReceiveMessage` and
/// `sqs:DeleteMessage` on it, so these four cover every way to take a message out of a task queue.
pub const MESSAGE_ACTIONS: [&str; 4] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue",
];

/// The reader statements of one task queue, to append to its policy. None when isolation is off. Without
/// a task ID (a queue name that is not `<prefix><task id>`), `DenyOtherTasks` loses its session exemption
/// and denies every consumer session: the isolation fails closed, never open.
pub fn statements(queue_arn: &str, task: Option<&TaskId>, readers: &Readers) -> Vec<Value> {
    if !readers.isolated() {
        return Vec::new();
    }
    let exempt: Vec<&str> = readers
        .consumer_roles
        .iter()
        .chain(&readers.admin_roles)
        .map(String::as_str)
        .collect();
    let mut other_tasks = json!({"ArnLike": {"aws:PrincipalArn": one_or_many(&readers.consumer_roles)}});
    if let Some(task) = task {
        other_tasks["StringNotLike"] = json!({"aws:userid": own_session(task)});
    }
    vec![
        json!({
            "Sid": "DenyOtherReaders",
            "Effect": "Deny",
            "Principal": "*",
            "Action": MESSAGE_ACTIONS,
            "Resource": queue_arn,
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": one_or_many(&exempt)}},
        }),
        json!({
            "Sid": "DenyOtherTasks",
            "Effect": "Deny",
            "Principal": "*",
            "Action": MESSAGE_ACTIONS,
            "Resource": queue_arn,
            "Condition": other_tasks,
        }),
    ]
}

/// The `aws:userid` of the task's own session of any role: `<role unique id>:<task id>`. The role's
/// unique ID (`AROA...`) is unknown to the stack, so it is a wildcard; `DenyOtherTasks` pins the role
/// with `aws:PrincipalArn`, and `DenyOtherReaders` every other principal.
pub fn own_session(task: &TaskId) -> String {
    format!("*:{task}")
}

/// Appends the reader statements to a policy document (its `Statement` list).
pub(crate) fn append(policy: &mut Value, statements: Vec<Value>) {
    if let Some(list) = policy.get_mut("Statement").and_then(Value::as_array_mut) {
        list.extend(statements);
    }
}

fn one_or_many<S: AsRef<str>>(values: &[S]) -> Value {
    match values {
        [one] => json!(one.as_ref()),
        many => json!(many.iter().map(AsRef::as_ref).collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "arn:aws:sqs:us-east-1:123456789012:tasksub-0123456789abcdef0123456789abcdef";
    const TASK_ROLE: &str = "arn:aws:iam::123456789012:role/orders-task";
    const OTHER_TASK_ROLE: &str = "arn:aws:iam::123456789012:role/billing-task";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/ops/queue-admin";

    fn readers(consumers: &[&str], admins: &[&str]) -> Readers {
        Readers {
            consumer_roles: consumers.iter().map(|s| (*s).to_owned()).collect(),
            admin_roles: admins.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn id() -> TaskId {
        TaskId::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn off_without_consumer_roles() {
        assert!(statements(Q, Some(&id()), &Readers::default()).is_empty());
    }

    #[test]
    fn every_other_principal_and_every_other_session_is_denied_the_message_actions() {
        let st = statements(Q, Some(&id()), &readers(&[TASK_ROLE], &[ADMIN]));
        assert_eq!(
            st,
            vec![
                json!({"Sid": "DenyOtherReaders", "Effect": "Deny", "Principal": "*",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue"],
                    "Resource": Q,
                    "Condition": {"ArnNotLike": {"aws:PrincipalArn": [TASK_ROLE, ADMIN]}}}),
                json!({"Sid": "DenyOtherTasks", "Effect": "Deny", "Principal": "*",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue"],
                    "Resource": Q,
                    "Condition": {"ArnLike": {"aws:PrincipalArn": TASK_ROLE},
                                  "StringNotLike": {"aws:userid": "*:0123456789abcdef0123456789abcdef"}}}),
            ]
        );
        // several consumer roles: the lists carry them all
        let st = statements(Q, Some(&id()), &readers(&[TASK_ROLE, OTHER_TASK_ROLE], &[]));
        assert_eq!(
            st[0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
            json!([TASK_ROLE, OTHER_TASK_ROLE])
        );
        assert_eq!(
            st[1]["Condition"]["ArnLike"]["aws:PrincipalArn"],
            json!([TASK_ROLE, OTHER_TASK_ROLE])
        );
    }

    #[test]
    fn without_a_task_id_every_consumer_session_is_denied() {
        let st = statements(Q, None, &readers(&[TASK_ROLE], &[]));
        assert_eq!(st[1]["Condition"], json!({"ArnLike": {"aws:PrincipalArn": TASK_ROLE}}));
    }

    #[test]
    fn the_statements_append_to_a_policy() {
        let mut policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "A"}]});
        append(&mut policy, statements(Q, Some(&id()), &readers(&[TASK_ROLE], &[])));
        let sids: Vec<_> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(sids, ["A", "DenyOtherReaders", "DenyOtherTasks"]);
    }
}
