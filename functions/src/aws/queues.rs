//! [`Queues`] on SQS.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::DateTime;
use tasksub_core::reconcile::QueueDetails;

use super::{classify, AwsPorts};
use crate::ports::{PortError, QueueInspect, Queues};

impl Queues for AwsPorts {
    async fn create(
        &self,
        name: &str,
        attributes: &BTreeMap<&'static str, String>,
        tags: &BTreeMap<&'static str, String>,
    ) -> Result<String, PortError> {
        let mut req = self.sqs.create_queue().queue_name(name);
        for (k, v) in attributes {
            req = req.attributes(QueueAttributeName::from(*k), v);
        }
        for (k, v) in tags {
            req = req.tags(*k, v);
        }
        let out = req.send().await.map_err(|e| classify("CreateQueue", &e))?;
        Ok(out.queue_url().unwrap_or_default().to_owned())
    }

    async fn url(&self, name: &str) -> Result<String, PortError> {
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| classify("GetQueueUrl", &e))?;
        Ok(out.queue_url().unwrap_or_default().to_owned())
    }

    async fn delete(&self, url: &str) -> Result<(), PortError> {
        self.sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| classify("DeleteQueue", &e))?;
        Ok(())
    }

    async fn set_policy(&self, url: &str, policy: &str) -> Result<(), PortError> {
        self.sqs
            .set_queue_attributes()
            .queue_url(url)
            .attributes(QueueAttributeName::Policy, policy)
            .send()
            .await
            .map_err(|e| classify("SetQueueAttributes", &e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        let mut pages = self
            .sqs
            .list_queues()
            .queue_name_prefix(prefix)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListQueues", &e))?;
            out.extend(page.queue_urls().iter().cloned());
        }
        Ok(out)
    }
}

impl QueueInspect for AwsPorts {
    async fn details(&self, url: &str) -> Result<QueueDetails, PortError> {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::CreatedTimestamp)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", &e))?;
        let created_at = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::CreatedTimestamp))
            // Epoch seconds; moto sends a fraction, so parse as a float.
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|secs| DateTime::from_timestamp(secs.trunc() as i64, 0));
        let tags = self
            .sqs
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| classify("ListQueueTags", &e))?;
        Ok(QueueDetails {
            created_at,
            tags: tags
                .tags()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}
