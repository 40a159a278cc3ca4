//! [`Subscriptions`] on SNS.

use std::collections::BTreeMap;

use super::{classify, AwsPorts};
use crate::ports::{PortError, Subscriptions};

impl Subscriptions for AwsPorts {
    async fn subscribe(
        &self,
        topic_arn: &str,
        queue_arn: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        let mut req = self
            .sns
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
        self.sns
            .unsubscribe()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|e| classify("Unsubscribe", &e))?;
        Ok(())
    }
}
