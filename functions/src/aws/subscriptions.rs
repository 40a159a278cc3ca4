//! [`Subscriptions`] on SNS.

use std::collections::BTreeMap;

use super::{classify, AwsPorts};
use tasksub_core::reconcile::SeenSubscription;

use crate::ports::{PortError, SubscriptionPage, Subscriptions};

impl Subscriptions for AwsPorts {
    async fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        let mut req = self
            .sns_for(topic_arn)
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .return_subscription_arn(true);
        for (k, v) in attributes {
            req = req.attributes(*k, v);
        }
        let out = req.send().await.map_err(|e| classify("Subscribe", &e))?;
        Ok(out.subscription_arn().unwrap_or_default().to_owned())
    }

    async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), PortError> {
        self.sns_for(subscription_arn)
            .unsubscribe()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|e| classify("Unsubscribe", &e))?;
        Ok(())
    }

    async fn subscription_attributes(&self, subscription_arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        let out = self
            .sns_for(subscription_arn)
            .get_subscription_attributes()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|e| classify("GetSubscriptionAttributes", &e))?;
        Ok(out
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn set_subscription_attribute(
        &self,
        subscription_arn: &str,
        name: &'static str,
        value: &str,
    ) -> Result<(), PortError> {
        self.sns_for(subscription_arn)
            .set_subscription_attributes()
            .subscription_arn(subscription_arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(|e| classify("SetSubscriptionAttributes", &e))?;
        Ok(())
    }

    async fn find(&self, topic_arn: &str, endpoint: &str) -> Result<Option<String>, PortError> {
        let mut pages = self
            .sns_for(topic_arn)
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListSubscriptionsByTopic", &e))?;
            let found = page
                .subscriptions()
                .iter()
                .find(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(endpoint));
            if let Some(arn) = found.and_then(|s| s.subscription_arn()) {
                return Ok(Some(arn.to_owned()));
            }
        }
        Ok(None)
    }

    async fn list_own(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        let page = self
            .sns_for(topic_arn)
            .list_subscriptions()
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| classify("ListSubscriptions", &e))?;
        let subscriptions = page
            .subscriptions()
            .iter()
            .filter(|s| s.topic_arn() == Some(topic_arn))
            .filter_map(seen)
            .collect();
        Ok(SubscriptionPage {
            subscriptions,
            next: page.next_token().map(str::to_owned),
        })
    }

    async fn list_by_topic(&self, topic_arn: &str, next: Option<String>) -> Result<SubscriptionPage, PortError> {
        let page = self
            .sns_for(topic_arn)
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| classify("ListSubscriptionsByTopic", &e))?;
        let subscriptions = page.subscriptions().iter().filter_map(seen).collect();
        Ok(SubscriptionPage {
            subscriptions,
            next: page.next_token().map(str::to_owned),
        })
    }
}

/// A listed subscription as the sweeper and the resolvers see it (an entry without an ARN is left out).
fn seen(s: &aws_sdk_sns::types::Subscription) -> Option<SeenSubscription> {
    Some(SeenSubscription {
        arn: s.subscription_arn()?.to_owned(),
        endpoint: s.endpoint().unwrap_or_default().to_owned(),
        protocol: s.protocol().unwrap_or_default().to_owned(),
    })
}
