//! One topic's subscription brought to its goal, as a machine without I/O: it says which call to make
//! ([`TopicResolver::next_call`]), is told the answer ([`TopicResolver::answer`]), and ends with an outcome.
//! The executor only runs the calls, so every branch below is a row in a table test.
//!
//! ```text
//! want, ARN known, verify ──▶ GetSubscriptionAttributes ─ok──▶ Set each differing attribute ──▶ Subscribed
//!                                     └─ not found (deleted by the topic owner, topic re-created) ─┐
//! want, no ARN (or not found) ──────────────────────────────────────────────────────────────────▶ Subscribe
//! Subscribe ─ok──▶ (verify, or it may pre-exist) attributes as above ──▶ Subscribed
//!           ─invalid (exists with other attributes)──▶ ListSubscriptionsByTopic ─found─▶ attributes ─▶ Subscribed
//!           ─refused for good (denied, quota, topic gone)──▶ Refused   (pending from an earlier attempt:
//!                                                                       look for it by listing first)
//! gone, ARN known ──▶ Unsubscribe ──▶ Gone          gone, pending ──▶ ListSubscriptionsByTopic ─found─▶ Unsubscribe
//! ```
//! Teardown never subscribes: a pending subscription is found by listing the topic, or, when its owner
//! refuses us the listing, the account's own subscriptions (ListSubscriptions needs no permission of the
//! topic's owner); a listing refused both ways ends as [`TopicOutcome::Unverified`] rather than blocking
//! the teardown.

use std::collections::BTreeMap;

use super::attrs::subscription_diff;
use crate::outcome::ErrorKind;

/// What the topic's subscription should end as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Exist with exactly these attributes.
    Want(BTreeMap<&'static str, String>),
    /// Not exist (the topic is retired, or the task stops).
    Gone,
}

/// One call the resolver asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCall {
    /// Subscribe the queue with the wanted attributes (idempotent for the same attributes).
    Subscribe,
    /// GetSubscriptionAttributes.
    Attributes(String),
    /// SetSubscriptionAttributes, one attribute.
    Set {
        /// The subscription.
        arn: String,
        /// The attribute.
        name: &'static str,
        /// Its new value.
        value: String,
    },
    /// ListSubscriptionsByTopic until the queue's subscription is found (or the list ends).
    Find,
    /// ListSubscriptions (the account's own subscriptions in the topic's region) until the queue's
    /// subscription to the topic is found: when the topic's owner refuses us its listing, the account can
    /// still list what it owns.
    FindOwn,
    /// Unsubscribe.
    Unsubscribe(String),
}

/// What a call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAnswer {
    /// Subscribe's ARN.
    Arn(String),
    /// GetSubscriptionAttributes' attributes.
    Attributes(BTreeMap<String, String>),
    /// What Find found.
    Found(Option<String>),
    /// A call with nothing to return succeeded.
    Done,
    /// The call failed.
    Failed(ErrorKind, String),
}

/// How the topic ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// The task's subscription exists, with the wanted attributes.
    Subscribed(String),
    /// Subscribe is refused for good (the kind and the service's words); no subscription of ours is known.
    Refused(ErrorKind, String),
    /// No subscription of ours exists (removed, or proven absent).
    Gone,
    /// Whether a subscription exists could not be learned (the topic refuses the listing): a teardown
    /// goes on, and says so.
    Unverified(ErrorKind, String),
}

/// What the resolver wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Make this call, then [`TopicResolver::answer`].
    Call(TopicCall),
    /// Finished.
    Done(TopicOutcome),
    /// Failed: the step fails with this error (retried when transient).
    Fail(ErrorKind, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Start,
    /// Waiting for GetSubscriptionAttributes of this ARN.
    Reading(String),
    /// Setting these attributes, in order.
    Setting(String, Vec<(&'static str, String)>),
    /// Waiting for Subscribe.
    Subscribing,
    /// Waiting for Find (or, after the topic refused its listing, FindOwn); why it was asked.
    Finding(Why, Listing),
    /// Waiting for Unsubscribe.
    Unsubscribing,
    Finished(Next),
}

/// Which listing a find reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// The topic's (ListSubscriptionsByTopic).
    Topic,
    /// The account's own (ListSubscriptions), when the topic refuses its listing.
    Own,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Why {
    /// Subscribe said the subscription exists with other attributes.
    Differs(String),
    /// Subscribe was refused, and an earlier attempt's subscription may exist.
    Refused(ErrorKind, String),
    /// A teardown or a retired topic looks for a subscription it never recorded.
    Remove,
}

/// The resolver of one topic for one queue.
#[derive(Debug, Clone)]
pub struct TopicResolver {
    goal: Goal,
    known: Option<String>,
    pending: bool,
    verify: bool,
    phase: Phase,
    /// How many Subscribes were made (a subscription that vanishes between calls is made once more).
    subscribes: u8,
}

impl TopicResolver {
    /// A resolver. `known`: the ARN the record names; `pending`: an earlier attempt may have made a
    /// subscription whose ARN was never recorded; `verify`: read a known subscription's attributes and
    /// converge them (the settings changed, or the sweeper audits).
    pub fn new(goal: Goal, known: Option<String>, pending: bool, verify: bool) -> Self {
        Self {
            goal,
            known,
            pending,
            verify,
            phase: Phase::Start,
            subscribes: 0,
        }
    }

    /// The next call, or the end.
    pub fn next_call(&mut self) -> Next {
        if let Phase::Start = self.phase {
            self.phase = self.start();
        }
        match &mut self.phase {
            Phase::Finished(n) => n.clone(),
            Phase::Reading(arn) => Next::Call(TopicCall::Attributes(arn.clone())),
            Phase::Setting(arn, calls) => match calls.first() {
                Some((name, value)) => Next::Call(TopicCall::Set {
                    arn: arn.clone(),
                    name,
                    value: value.clone(),
                }),
                None => {
                    let done = Next::Done(TopicOutcome::Subscribed(arn.clone()));
                    self.phase = Phase::Finished(done.clone());
                    done
                }
            },
            Phase::Subscribing => Next::Call(TopicCall::Subscribe),
            Phase::Finding(_, Listing::Topic) => Next::Call(TopicCall::Find),
            Phase::Finding(_, Listing::Own) => Next::Call(TopicCall::FindOwn),
            Phase::Unsubscribing => Next::Call(TopicCall::Unsubscribe(self.known.clone().unwrap_or_default())),
            Phase::Start => unreachable!("left above"),
        }
    }

    fn start(&mut self) -> Phase {
        match (&self.goal, self.known.clone()) {
            (Goal::Want(_), Some(arn)) if self.verify => Phase::Reading(arn),
            (Goal::Want(_), Some(arn)) => Phase::Finished(Next::Done(TopicOutcome::Subscribed(arn))),
            (Goal::Want(_), None) => self.subscribe(),
            (Goal::Gone, Some(_)) => Phase::Unsubscribing,
            (Goal::Gone, None) if self.pending => Phase::Finding(Why::Remove, Listing::Topic),
            (Goal::Gone, None) => Phase::Finished(Next::Done(TopicOutcome::Gone)),
        }
    }

    fn subscribe(&mut self) -> Phase {
        if self.subscribes >= 2 {
            let why = "the subscription kept vanishing between calls".to_owned();
            return Phase::Finished(Next::Fail(ErrorKind::Transient, why));
        }
        self.subscribes += 1;
        Phase::Subscribing
    }

    fn wanted(&self) -> &BTreeMap<&'static str, String> {
        match &self.goal {
            Goal::Want(w) => w,
            Goal::Gone => unreachable!("only a wanted subscription has attributes"),
        }
    }

    /// The answer to the call [`Self::next_call`] asked for.
    pub fn answer(&mut self, answer: TopicAnswer) {
        let phase = std::mem::replace(&mut self.phase, Phase::Start);
        self.phase = match (phase, answer) {
            (Phase::Reading(arn), TopicAnswer::Attributes(have)) => {
                Phase::Setting(arn, subscription_diff(self.wanted(), &have))
            }
            (Phase::Reading(_), TopicAnswer::Failed(ErrorKind::NotFound, _)) => self.subscribe(),
            (Phase::Setting(arn, mut calls), TopicAnswer::Done) => {
                calls.remove(0);
                Phase::Setting(arn, calls)
            }
            (Phase::Setting(..), TopicAnswer::Failed(ErrorKind::NotFound, _)) => self.subscribe(),
            (Phase::Subscribing, TopicAnswer::Arn(arn)) if self.verify || self.pending => Phase::Reading(arn),
            (Phase::Subscribing, TopicAnswer::Arn(arn)) => Phase::Finished(Next::Done(TopicOutcome::Subscribed(arn))),
            (Phase::Subscribing, TopicAnswer::Failed(ErrorKind::Invalid, m)) => {
                Phase::Finding(Why::Differs(m), Listing::Topic)
            }
            (Phase::Subscribing, TopicAnswer::Failed(k, m)) if refusal(k) && self.pending => {
                Phase::Finding(Why::Refused(k, m), Listing::Topic)
            }
            (Phase::Subscribing, TopicAnswer::Failed(k, m)) if refusal(k) => {
                Phase::Finished(Next::Done(TopicOutcome::Refused(k, m)))
            }
            // The topic refuses its listing: the account lists its own subscriptions instead.
            (Phase::Finding(why, Listing::Topic), TopicAnswer::Failed(ErrorKind::AccessDenied, _)) => {
                Phase::Finding(why, Listing::Own)
            }
            (Phase::Finding(Why::Remove, _), TopicAnswer::Found(Some(arn))) => {
                self.known = Some(arn);
                Phase::Unsubscribing
            }
            (Phase::Finding(Why::Remove, _), TopicAnswer::Found(None)) => {
                Phase::Finished(Next::Done(TopicOutcome::Gone))
            }
            (Phase::Finding(Why::Remove, _), TopicAnswer::Failed(k, m)) if refusal(k) => {
                // A deleted topic has no subscription left; a topic that refuses the listing cannot tell.
                let outcome = match k {
                    ErrorKind::NotFound => TopicOutcome::Gone,
                    _ => TopicOutcome::Unverified(k, m),
                };
                Phase::Finished(Next::Done(outcome))
            }
            (Phase::Finding(_, _), TopicAnswer::Found(Some(arn))) => Phase::Reading(arn),
            (Phase::Finding(Why::Differs(m), _), TopicAnswer::Found(None)) => {
                Phase::Finished(Next::Done(TopicOutcome::Refused(ErrorKind::Invalid, m)))
            }
            (Phase::Finding(Why::Differs(m), _), TopicAnswer::Failed(k, _)) if refusal(k) => {
                Phase::Finished(Next::Done(TopicOutcome::Refused(ErrorKind::Invalid, m)))
            }
            (Phase::Finding(Why::Refused(k, m), _), TopicAnswer::Found(None)) => {
                Phase::Finished(Next::Done(TopicOutcome::Refused(k, m)))
            }
            (Phase::Finding(Why::Refused(k, m), _), TopicAnswer::Failed(k2, _)) if refusal(k2) => {
                // Refused, and the listing refused too: whether an earlier attempt's subscription exists
                // stays unknown (the record keeps the topic pending).
                Phase::Finished(Next::Done(TopicOutcome::Unverified(k, m)))
            }
            (Phase::Unsubscribing, TopicAnswer::Done | TopicAnswer::Failed(ErrorKind::NotFound, _)) => {
                Phase::Finished(Next::Done(TopicOutcome::Gone))
            }
            (_, TopicAnswer::Failed(k, m)) => Phase::Finished(Next::Fail(k, m)),
            (phase, answer) => {
                let why = format!("unexpected answer {answer:?} in {phase:?}");
                Phase::Finished(Next::Fail(ErrorKind::Other, why))
            }
        };
    }
}

/// Errors that mean "this topic does not accept this call, and retrying will not change that": a
/// refusal is recorded per topic, never a failure of the whole task. Config (no credentials, no region)
/// is the environment's problem, not the topic's, and fails the step.
pub fn refusal(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::AccessDenied | ErrorKind::Quota | ErrorKind::Invalid | ErrorKind::NotFound
    )
}

/// Runs a resolver against scripted answers (tests, and the explorer's documentation of each path).
pub fn run_script(mut r: TopicResolver, answers: &[TopicAnswer]) -> (Vec<TopicCall>, Next) {
    let mut calls = Vec::new();
    let mut answers = answers.iter();
    loop {
        match r.next_call() {
            Next::Call(c) => {
                calls.push(c);
                match answers.next() {
                    Some(a) => r.answer(a.clone()),
                    None => return (calls, Next::Fail(ErrorKind::Other, "script ended".into())),
                }
            }
            end => return (calls, end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TopicAnswer as A;
    use super::TopicCall as C;
    use super::TopicOutcome as O;
    use super::*;

    fn want() -> Goal {
        Goal::Want(BTreeMap::from([("RawMessageDelivery", "true".to_owned())]))
    }
    fn attrs(raw: &str) -> A {
        A::Attributes(BTreeMap::from([("RawMessageDelivery".to_owned(), raw.to_owned())]))
    }
    fn fail(k: ErrorKind) -> A {
        A::Failed(k, format!("{k:?}"))
    }
    fn set(arn: &str) -> C {
        C::Set {
            arn: arn.into(),
            name: "RawMessageDelivery",
            value: "true".into(),
        }
    }
    fn k(s: &str) -> Option<String> {
        Some(s.into())
    }

    type Row = (&'static str, TopicResolver, Vec<A>, Vec<C>, Next);

    #[test]
    fn every_path_of_a_topic() {
        use ErrorKind::*;
        let r = TopicResolver::new;
        let done = |o: O| Next::Done(o);
        let sub = |a: &str| done(O::Subscribed(a.into()));
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // a new subscription: one Subscribe
            ("new", r(want(), None, false, false), vec![A::Arn("s1".into())], vec![C::Subscribe], sub("s1")),
            // a recorded one is trusted unless verifying
            ("trusted", r(want(), k("s1"), false, false), vec![], vec![], sub("s1")),
            // verifying: read, set what differs
            ("verify in sync", r(want(), k("s1"), false, true), vec![attrs("true")], vec![C::Attributes("s1".into())], sub("s1")),
            ("verify drifted", r(want(), k("s1"), false, true), vec![attrs("false"), A::Done],
             vec![C::Attributes("s1".into()), set("s1")], sub("s1")),
            // a recorded subscription the owner deleted, or lost to a re-created topic: made again
            ("lost", r(want(), k("s1"), false, true), vec![fail(NotFound), A::Arn("s2".into()), attrs("true")],
             vec![C::Attributes("s1".into()), C::Subscribe, C::Attributes("s2".into())], sub("s2")),
            // pending: an earlier attempt may have made it with other attributes; Subscribe finds it, then verify
            ("pending", r(want(), None, true, false), vec![A::Arn("s1".into()), attrs("false"), A::Done],
             vec![C::Subscribe, C::Attributes("s1".into()), set("s1")], sub("s1")),
            // exists with other attributes: find it by listing, converge its attributes
            ("differs", r(want(), None, false, false), vec![fail(Invalid), A::Found(k("s1")), attrs("false"), A::Done],
             vec![C::Subscribe, C::Find, C::Attributes("s1".into()), set("s1")], sub("s1")),
            ("invalid, none found", r(want(), None, false, false), vec![fail(Invalid), A::Found(None)],
             vec![C::Subscribe, C::Find], done(O::Refused(Invalid, "Invalid".into()))),
            ("invalid, listing refused", r(want(), None, false, false), vec![fail(Invalid), fail(AccessDenied), fail(AccessDenied)],
             vec![C::Subscribe, C::Find, C::FindOwn], done(O::Refused(Invalid, "Invalid".into()))),
            ("invalid, listing throttled", r(want(), None, false, false), vec![fail(Invalid), fail(Throttled)],
             vec![C::Subscribe, C::Find], Next::Fail(Throttled, "Throttled".into())),
            // refused for good: recorded per topic, never a failure of the task
            ("denied", r(want(), None, false, false), vec![fail(AccessDenied)], vec![C::Subscribe], done(O::Refused(AccessDenied, "AccessDenied".into()))),
            ("quota", r(want(), None, false, false), vec![fail(Quota)], vec![C::Subscribe], done(O::Refused(Quota, "Quota".into()))),
            ("topic gone", r(want(), None, false, false), vec![fail(NotFound)], vec![C::Subscribe], done(O::Refused(NotFound, "NotFound".into()))),
            // refused while an earlier attempt's subscription may exist: look for it first
            ("refused, pending, found", r(want(), None, true, false), vec![fail(AccessDenied), A::Found(k("s1")), attrs("true")],
             vec![C::Subscribe, C::Find, C::Attributes("s1".into())], sub("s1")),
            ("refused, pending, none", r(want(), None, true, false), vec![fail(AccessDenied), A::Found(None)],
             vec![C::Subscribe, C::Find], done(O::Refused(AccessDenied, "AccessDenied".into()))),
            ("refused, pending, unlistable", r(want(), None, true, false), vec![fail(AccessDenied), fail(AccessDenied), fail(AccessDenied)],
             vec![C::Subscribe, C::Find, C::FindOwn], done(O::Unverified(AccessDenied, "AccessDenied".into()))),
            ("refused, pending, listing throttled", r(want(), None, true, false), vec![fail(AccessDenied), fail(Throttled)],
             vec![C::Subscribe, C::Find], Next::Fail(Throttled, "Throttled".into())),
            ("refused, pending, found among our own", r(want(), None, true, false),
             vec![fail(AccessDenied), fail(AccessDenied), A::Found(k("s1")), attrs("true")],
             vec![C::Subscribe, C::Find, C::FindOwn, C::Attributes("s1".into())], sub("s1")),
            // transient and environment errors fail the step (retried)
            ("throttled", r(want(), None, false, false), vec![fail(Throttled)], vec![C::Subscribe], Next::Fail(Throttled, "Throttled".into())),
            ("no credentials", r(want(), None, false, false), vec![fail(Config)], vec![C::Subscribe], Next::Fail(Config, "Config".into())),
            ("read throttled", r(want(), k("s1"), false, true), vec![fail(Throttled)], vec![C::Attributes("s1".into())], Next::Fail(Throttled, "Throttled".into())),
            ("set denied", r(want(), k("s1"), false, true), vec![attrs("false"), fail(AccessDenied)],
             vec![C::Attributes("s1".into()), set("s1")], Next::Fail(AccessDenied, "AccessDenied".into())),
            // vanished between calls: made once more, then given up as transient
            ("vanishing", r(want(), k("s1"), false, true), vec![fail(NotFound), A::Arn("s2".into()), fail(NotFound), A::Arn("s3".into()), fail(NotFound)],
             vec![C::Attributes("s1".into()), C::Subscribe, C::Attributes("s2".into()), C::Subscribe, C::Attributes("s3".into())],
             Next::Fail(Transient, "the subscription kept vanishing between calls".into())),
            // gone: unsubscribe what is recorded (not-found is done), find what is pending, never subscribe
            ("retire", r(Goal::Gone, k("s1"), false, false), vec![A::Done], vec![C::Unsubscribe("s1".into())], done(O::Gone)),
            ("retire, already gone", r(Goal::Gone, k("s1"), false, false), vec![fail(NotFound)], vec![C::Unsubscribe("s1".into())], done(O::Gone)),
            ("retire denied", r(Goal::Gone, k("s1"), false, false), vec![fail(AccessDenied)], vec![C::Unsubscribe("s1".into())], Next::Fail(AccessDenied, "AccessDenied".into())),
            ("nothing to retire", r(Goal::Gone, None, false, false), vec![], vec![], done(O::Gone)),
            ("pending, found", r(Goal::Gone, None, true, false), vec![A::Found(k("s9")), A::Done], vec![C::Find, C::Unsubscribe("s9".into())], done(O::Gone)),
            ("pending, none", r(Goal::Gone, None, true, false), vec![A::Found(None)], vec![C::Find], done(O::Gone)),
            ("pending, topic deleted", r(Goal::Gone, None, true, false), vec![fail(NotFound)], vec![C::Find], done(O::Gone)),
            // the owner refuses us its topic's listing: our own listing finds it
            ("pending, listing denied", r(Goal::Gone, None, true, false), vec![fail(AccessDenied), A::Found(k("s9")), A::Done],
             vec![C::Find, C::FindOwn, C::Unsubscribe("s9".into())], done(O::Gone)),
            ("pending, both listings denied", r(Goal::Gone, None, true, false), vec![fail(AccessDenied), fail(AccessDenied)],
             vec![C::Find, C::FindOwn], done(O::Unverified(AccessDenied, "AccessDenied".into()))),
            ("pending, listing throttled", r(Goal::Gone, None, true, false), vec![fail(Throttled)], vec![C::Find], Next::Fail(Throttled, "Throttled".into())),
        ];
        for (name, resolver, answers, calls, end) in rows {
            let (got_calls, got_end) = run_script(resolver, &answers);
            assert_eq!((got_calls, got_end), (calls, end), "{name}");
        }
    }

    #[test]
    fn refusals_are_the_kinds_a_retry_cannot_cure_on_its_own() {
        use ErrorKind::*;
        for k in [AccessDenied, Quota, Invalid, NotFound] {
            assert!(refusal(k), "{k:?}");
        }
        for k in [Throttled, Transient, DeletedRecently, Other, Config, Conflict] {
            assert!(!refusal(k), "{k:?}");
        }
    }

    #[test]
    fn an_unexpected_answer_fails_rather_than_guesses() {
        let (_, end) = run_script(TopicResolver::new(want(), None, false, false), &[A::Done]);
        assert!(matches!(end, Next::Fail(ErrorKind::Other, _)), "{end:?}");
        // asking again after the end repeats the end
        let mut r = TopicResolver::new(want(), k("s1"), false, false);
        assert_eq!(r.next_call(), r.next_call());
    }
}
