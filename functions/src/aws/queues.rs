//! [`Queues`] on SQS.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;

use super::{classify, AwsPorts};
use crate::ports::{PortError, Queues};

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

    async fn queue_attributes(&self, url: &str) -> Result<BTreeMap<String, String>, PortError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", &e))?;
        Ok(out
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect())
    }

    async fn queue_tags(&self, url: &str) -> Result<BTreeMap<String, String>, PortError> {
        let out = self
            .sqs
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| classify("ListQueueTags", &e))?;
        Ok(out
            .tags()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &BTreeMap<&'static str, String>,
    ) -> Result<(), PortError> {
        let mut req = self.sqs.set_queue_attributes().queue_url(url);
        for (k, v) in attributes {
            req = req.attributes(QueueAttributeName::from(*k), v);
        }
        req.send().await.map_err(|e| classify("SetQueueAttributes", &e))?;
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
