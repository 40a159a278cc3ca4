//! The SNS quotas each configured topic approaches as tasks come and go: filter policies per topic (200
//! by default: every task's subscription with a filter policy counts, and so do other subscribers'), and
//! subscriptions per FIFO topic (100 by default: every live task holds one). Warns at 80 %, fails at the
//! quota. The defaults are AWS's; a quota raised in Service Quotas makes the warning conservative.

use tasksub_core::reconcile::subscriptions::our_endpoint;
use tasksub_core::settings::{Settings, Topic};
use tasksub_functions::aws::{classify, AwsPorts};
use tasksub_functions::ports::list_topic;

use super::Check;

/// Default SNS quota: subscription filter policies per topic.
pub const FILTER_POLICIES_PER_TOPIC: usize = 200;
/// Default SNS quota: subscriptions per FIFO topic.
pub const SUBSCRIPTIONS_PER_FIFO_TOPIC: usize = 100;
/// Most other subscribers' attributes doctor reads per topic (GetSubscriptionAttributes, one call each).
const MAX_ATTRIBUTE_READS: usize = 250;
/// Most pages of subscriptions read per topic.
const PAGES: usize = 50;

/// What doctor counted on one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    /// Every subscription of the topic.
    pub subscriptions: usize,
    /// Subscriptions with a filter policy (ours, known from the settings, plus others', read).
    pub filter_policies: usize,
    /// True when some subscriptions were not read (pages or attribute reads capped): counts are floors.
    pub partial: bool,
}

/// The verdict on one topic, from its counts (pure, table-tested).
pub fn judge(topic: &str, fifo: bool, c: Counted) -> Check {
    let name = format!("quota {topic}");
    let floor = if c.partial { " at least" } else { "" };
    let fix = "request a higher quota in Service Quotas (Amazon SNS), or subscribe fewer queues: \
               lower TASKSUB_TOPIC_SETTINGS filters or move tasks to another topic (README, Quotas)";
    let mut worst: Option<Check> = None;
    let mut consider = |count: usize, quota: usize, what: &str| {
        let detail = format!("{what}:{floor} {count} of {quota}");
        let check = if count >= quota {
            Check::problem(&name, format!("{detail}: the next Subscribe fails for good"), fix)
        } else if count * 5 >= quota * 4 {
            Check::warn(&name, format!("{detail} (80 % or more)"), fix)
        } else {
            return;
        };
        if worst.as_ref().is_none_or(|w| w.status != super::Status::Problem) {
            worst = Some(check);
        }
    };
    consider(c.filter_policies, FILTER_POLICIES_PER_TOPIC, "filter policies");
    if fifo {
        consider(
            c.subscriptions,
            SUBSCRIPTIONS_PER_FIFO_TOPIC,
            "subscriptions of a FIFO topic",
        );
    }
    worst.unwrap_or_else(|| {
        let detail = format!(
            "{} subscription(s),{floor} {} with a filter policy (quota {FILTER_POLICIES_PER_TOPIC}{})",
            c.subscriptions,
            c.filter_policies,
            if fifo { "; FIFO topic: 100 subscriptions" } else { "" }
        );
        Check::ok(&name, detail)
    })
}

/// Counts and judges every configured topic.
pub(super) async fn all(ports: &AwsPorts, settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    for topic in &settings.topics {
        out.push(match count(ports, settings, topic).await {
            Ok(c) => judge(topic.arn.as_str(), topic.arn.is_fifo(), c),
            Err(e) => Check::not_checked(format!("quota {}", topic.arn), format!("could not count: {e}")),
        });
    }
    out
}

async fn count(ports: &AwsPorts, settings: &Settings, topic: &Topic) -> Result<Counted, String> {
    let (subs, capped) = list_topic(ports, topic.arn.as_str(), PAGES)
        .await
        .map_err(|e| e.to_string())?;
    let ours_filtered = topic.subscription.filter_policy.is_some();
    let sns = ports.sns_for(topic.arn.as_str());
    let mut c = Counted {
        subscriptions: subs.len(),
        partial: capped,
        ..Counted::default()
    };
    let mut reads = 0;
    for s in &subs {
        if our_endpoint(s, settings).is_some() {
            c.filter_policies += usize::from(ours_filtered);
            continue;
        }
        if reads == MAX_ATTRIBUTE_READS {
            c.partial = true;
            break;
        }
        reads += 1;
        let attrs = sns
            .get_subscription_attributes()
            .subscription_arn(&s.arn)
            .send()
            .await
            .map_err(|e| classify("GetSubscriptionAttributes", &e).to_string())?;
        let filtered = attrs.attributes().is_some_and(|a| a.contains_key("FilterPolicy"));
        c.filter_policies += usize::from(filtered);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    #[test]
    fn warns_at_80_percent_and_fails_at_the_quota() {
        let t = "arn:aws:sns:us-east-1:123456789012:orders";
        let c = |subscriptions, filter_policies, partial| Counted {
            subscriptions,
            filter_policies,
            partial,
        };
        #[rustfmt::skip]
        let rows = [
            (false, c(500, 0, false), Status::Ok, "500 subscription(s), 0 with a filter policy"),
            (false, c(500, 159, false), Status::Ok, "159 with a filter policy"),
            (false, c(500, 160, false), Status::Warn, "filter policies: 160 of 200 (80 % or more)"),
            (false, c(500, 199, true), Status::Warn, "filter policies: at least 199 of 200"),
            (false, c(500, 200, false), Status::Problem, "filter policies: 200 of 200: the next Subscribe fails"),
            // a FIFO topic: 100 subscriptions is the tighter quota
            (true, c(79, 0, false), Status::Ok, "FIFO topic: 100 subscriptions"),
            (true, c(80, 0, false), Status::Warn, "subscriptions of a FIFO topic: 80 of 100"),
            (true, c(100, 0, false), Status::Problem, "subscriptions of a FIFO topic: 100 of 100"),
            // the worst wins: a full FIFO topic is a problem even when filter policies only warn
            (true, c(100, 170, false), Status::Problem, "subscriptions of a FIFO topic"),
            (false, c(100, 0, false), Status::Ok, "100 subscription(s)"),
        ];
        for (fifo, counted, status, text) in rows {
            let check = judge(t, fifo, counted);
            assert_eq!(check.status, status, "{counted:?}: {check:?}");
            assert!(check.detail.contains(text), "{counted:?}: {}", check.detail);
            assert_eq!(check.check, format!("quota {t}"));
            assert_eq!(check.fix.is_some(), status != Status::Ok);
        }
    }
}
