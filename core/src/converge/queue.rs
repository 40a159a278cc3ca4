//! A task's queue brought to its desired state, as a machine without I/O (the shape of
//! [`super::topic`]): CreateQueue is the first look, since it answers the URL of a queue that already has
//! exactly the wanted attributes, makes a missing one (a queue deleted by hand comes back), and refuses
//! one whose attributes differ. A queue that exists with other attributes is adopted only when tasksub's
//! tags say it is this task's queue of this stack, and its attributes (the policy above all: a topic
//! added since would be denied by the old one) are then set to the wanted ones.
//!
//! ```text
//! CreateQueue ─ok──▶ (verify) GetQueueAttributes ─▶ SetQueueAttributes of what differs ─▶ Ready
//!             ─exists with other attributes──▶ GetQueueUrl ─▶ ListQueueTags ─ours─▶ as above
//!                                                                       └─ another stack's, untagged ─▶ fail (permanent)
//! ```

use std::collections::BTreeMap;

use super::attrs::queue_diff;
use crate::outcome::ErrorKind;
use crate::policy::tags;

/// One call the resolver asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCall {
    /// CreateQueue with the wanted attributes and tags.
    Create,
    /// GetQueueUrl of the queue's name.
    Url,
    /// ListQueueTags.
    Tags(String),
    /// GetQueueAttributes (All).
    Attributes(String),
    /// SetQueueAttributes with these.
    Set(String, BTreeMap<&'static str, String>),
}

/// What a call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAnswer {
    /// A queue URL (CreateQueue, GetQueueUrl).
    Url(String),
    /// The queue's tags.
    Tags(BTreeMap<String, String>),
    /// The queue's attributes.
    Attributes(BTreeMap<String, String>),
    /// A call with nothing to return succeeded.
    Done,
    /// The call failed.
    Failed(ErrorKind, String),
}

/// What the resolver wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueNext {
    /// Make this call, then [`QueueResolver::answer`].
    Call(QueueCall),
    /// The queue exists as wanted, at this URL.
    Ready(String),
    /// The step fails with this error (retried when transient).
    Fail(ErrorKind, String),
}

/// Whose queue it is, as its tags must say before it is adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `tasksub:stack`.
    pub stack: String,
    /// The task ID the `tasksub:task-arn` tag must end with.
    pub task_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Start,
    Creating,
    Locating,
    Checking(String),
    Reading(String),
    Setting(String, BTreeMap<&'static str, String>),
    Finished(QueueNext),
}

/// The resolver of one task queue.
#[derive(Debug, Clone)]
pub struct QueueResolver {
    wanted: BTreeMap<&'static str, String>,
    owner: Owner,
    verify: bool,
    phase: Phase,
    creates: u8,
}

impl QueueResolver {
    /// A resolver for a queue that should have `wanted` attributes and belong to `owner`; `verify` reads
    /// and converges the attributes even when CreateQueue answers (the settings changed, an audit).
    pub fn new(wanted: BTreeMap<&'static str, String>, owner: Owner, verify: bool) -> Self {
        Self {
            wanted,
            owner,
            verify,
            phase: Phase::Start,
            creates: 0,
        }
    }

    /// The next call, or the end.
    pub fn next_call(&mut self) -> QueueNext {
        if self.phase == Phase::Start {
            self.phase = self.create();
        }
        match &self.phase {
            Phase::Start => unreachable!("left above"),
            Phase::Creating => QueueNext::Call(QueueCall::Create),
            Phase::Locating => QueueNext::Call(QueueCall::Url),
            Phase::Checking(url) => QueueNext::Call(QueueCall::Tags(url.clone())),
            Phase::Reading(url) => QueueNext::Call(QueueCall::Attributes(url.clone())),
            Phase::Setting(url, diff) => QueueNext::Call(QueueCall::Set(url.clone(), diff.clone())),
            Phase::Finished(n) => n.clone(),
        }
    }

    fn create(&mut self) -> Phase {
        if self.creates >= 2 {
            let why = "the queue kept vanishing between calls".to_owned();
            return Phase::Finished(QueueNext::Fail(ErrorKind::Transient, why));
        }
        self.creates += 1;
        Phase::Creating
    }

    /// The answer to the call [`Self::next_call`] asked for.
    pub fn answer(&mut self, answer: QueueAnswer) {
        let phase = std::mem::replace(&mut self.phase, Phase::Start);
        self.phase = match (phase, answer) {
            (Phase::Creating, QueueAnswer::Url(url)) if self.verify => Phase::Reading(url),
            (Phase::Creating, QueueAnswer::Url(url)) => Phase::Finished(QueueNext::Ready(url)),
            (Phase::Creating, QueueAnswer::Failed(ErrorKind::Exists, _)) => Phase::Locating,
            (Phase::Locating, QueueAnswer::Url(url)) => Phase::Checking(url),
            (Phase::Locating, QueueAnswer::Failed(ErrorKind::NotFound, _)) => self.create(),
            (Phase::Checking(url), QueueAnswer::Tags(t)) => match self.foreign(&t) {
                None => Phase::Reading(url),
                Some(why) => Phase::Finished(QueueNext::Fail(ErrorKind::Invalid, why)),
            },
            (Phase::Reading(url), QueueAnswer::Attributes(have)) => {
                let diff = queue_diff(&self.wanted, &have);
                if diff.is_empty() {
                    Phase::Finished(QueueNext::Ready(url))
                } else {
                    Phase::Setting(url, diff)
                }
            }
            (Phase::Setting(url, _), QueueAnswer::Done) => Phase::Finished(QueueNext::Ready(url)),
            (
                Phase::Checking(_) | Phase::Reading(_) | Phase::Setting(..),
                QueueAnswer::Failed(ErrorKind::NotFound, _),
            ) => self.create(),
            (_, QueueAnswer::Failed(k, m)) => Phase::Finished(QueueNext::Fail(k, m)),
            (phase, answer) => {
                let why = format!("unexpected answer {answer:?} in {phase:?}");
                Phase::Finished(QueueNext::Fail(ErrorKind::Other, why))
            }
        };
    }

    /// Why a queue with these tags is not ours to adopt, if it is not.
    fn foreign(&self, t: &BTreeMap<String, String>) -> Option<String> {
        let stack = t.get(tags::STACK).map(String::as_str);
        let task = t.get(tags::TASK_ARN).map(String::as_str).unwrap_or_default();
        let ours = stack == Some(self.owner.stack.as_str()) && task.ends_with(&format!("/{}", self.owner.task_id));
        (!ours).then(|| match stack {
            Some(s) if s != self.owner.stack => {
                format!(
                    "the queue exists and belongs to the stack {s:?}, not {:?}: not adopted",
                    self.owner.stack
                )
            }
            None => "the queue exists without tasksub's stack tag (made by hand, or before stack tags): not \
                     adopted; tag it with tasksub:stack or delete it"
                .to_owned(),
            Some(_) => format!("the queue exists and its tags name another task ({task:?}): not adopted"),
        })
    }
}

/// Runs a resolver against scripted answers (tests).
pub fn run_script(mut r: QueueResolver, answers: &[QueueAnswer]) -> (Vec<QueueCall>, QueueNext) {
    let mut calls = Vec::new();
    let mut answers = answers.iter();
    loop {
        match r.next_call() {
            QueueNext::Call(c) => {
                calls.push(c);
                match answers.next() {
                    Some(a) => r.answer(a.clone()),
                    None => return (calls, QueueNext::Fail(ErrorKind::Other, "script ended".into())),
                }
            }
            end => return (calls, end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QueueAnswer as A;
    use super::QueueCall as C;
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn wanted() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("Policy", r#"{"v":2}"#.to_owned()),
            ("VisibilityTimeout", "30".to_owned()),
        ])
    }
    fn resolver(verify: bool) -> QueueResolver {
        let owner = Owner {
            stack: "prod".into(),
            task_id: ID.into(),
        };
        QueueResolver::new(wanted(), owner, verify)
    }
    fn attrs(policy: &str) -> A {
        A::Attributes(BTreeMap::from([
            ("Policy".to_owned(), policy.to_owned()),
            ("VisibilityTimeout".to_owned(), "30".to_owned()),
        ]))
    }
    fn tags(stack: Option<&str>, task: &str) -> A {
        let mut t = BTreeMap::from([(
            tags::TASK_ARN.to_owned(),
            format!("arn:aws:ecs:us-east-1:1:task/c/{task}"),
        )]);
        if let Some(s) = stack {
            t.insert(tags::STACK.to_owned(), s.to_owned());
        }
        A::Tags(t)
    }
    fn fail(k: ErrorKind) -> A {
        A::Failed(k, format!("{k:?}"))
    }
    fn set_policy() -> C {
        C::Set("u".into(), BTreeMap::from([("Policy", r#"{"v":2}"#.to_owned())]))
    }

    #[test]
    fn every_path_of_a_queue() {
        use ErrorKind::*;
        let ready = || QueueNext::Ready("u".into());
        let u = || A::Url("u".into());
        type Row = (&'static str, bool, Vec<A>, Vec<C>, QueueNext);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // the fast path: CreateQueue answers (made now, or already exactly as wanted)
            ("create", false, vec![u()], vec![C::Create], ready()),
            // verifying: read and fix what differs
            ("verify in sync", true, vec![u(), attrs(r#"{ "v" : 2 }"#)], vec![C::Create, C::Attributes("u".into())], ready()),
            ("verify drifted", true, vec![u(), attrs(r#"{"v":1}"#), A::Done],
             vec![C::Create, C::Attributes("u".into()), set_policy()], ready()),
            // exists with other attributes (an old policy): adopted only when its tags say it is ours
            ("adopt", false, vec![fail(Exists), u(), tags(Some("prod"), ID), attrs(r#"{"v":1}"#), A::Done],
             vec![C::Create, C::Url, C::Tags("u".into()), C::Attributes("u".into()), set_policy()], ready()),
            ("adopt, other stack", false, vec![fail(Exists), u(), tags(Some("staging"), ID)],
             vec![C::Create, C::Url, C::Tags("u".into())],
             QueueNext::Fail(Invalid, "the queue exists and belongs to the stack \"staging\", not \"prod\": not adopted".into())),
            ("adopt, untagged", false, vec![fail(Exists), u(), tags(None, ID)], vec![C::Create, C::Url, C::Tags("u".into())],
             QueueNext::Fail(Invalid, "the queue exists without tasksub's stack tag (made by hand, or before stack tags): not adopted; tag it with tasksub:stack or delete it".into())),
            ("adopt, other task", false, vec![fail(Exists), u(), tags(Some("prod"), "ffffffffffffffffffffffffffffffff")],
             vec![C::Create, C::Url, C::Tags("u".into())],
             QueueNext::Fail(Invalid, "the queue exists and its tags name another task (\"arn:aws:ecs:us-east-1:1:task/c/ffffffffffffffffffffffffffffffff\"): not adopted".into())),
            // deleted between two calls: made again, once
            ("vanished", false, vec![fail(Exists), fail(NotFound), u()], vec![C::Create, C::Url, C::Create], ready()),
            ("kept vanishing", false, vec![fail(Exists), fail(NotFound), fail(Exists), fail(NotFound)],
             vec![C::Create, C::Url, C::Create, C::Url], QueueNext::Fail(Transient, "the queue kept vanishing between calls".into())),
            // a name deleted less than 60 s ago, throttling: transient; an impossible combination: permanent
            ("deleted recently", false, vec![fail(DeletedRecently)], vec![C::Create], QueueNext::Fail(DeletedRecently, "DeletedRecently".into())),
            ("invalid combination", false, vec![fail(Invalid)], vec![C::Create], QueueNext::Fail(Invalid, "Invalid".into())),
            ("set denied", true, vec![u(), attrs("{}"), fail(AccessDenied)], vec![C::Create, C::Attributes("u".into()), set_policy()],
             QueueNext::Fail(AccessDenied, "AccessDenied".into())),
        ];
        for (name, verify, answers, calls, end) in rows {
            assert_eq!(run_script(resolver(verify), &answers), (calls, end), "{name}");
        }
    }

    #[test]
    fn an_unexpected_answer_fails() {
        let (_, end) = run_script(resolver(false), &[A::Done]);
        assert!(matches!(end, QueueNext::Fail(ErrorKind::Other, _)), "{end:?}");
    }
}
