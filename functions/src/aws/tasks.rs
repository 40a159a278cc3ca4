//! [`Tasks`] on ECS: ListTasks (all pages) and DescribeTasks (at most 100 ARNs a call).

use std::collections::BTreeSet;

use aws_sdk_ecs::types::DesiredStatus;
use chrono::{DateTime, Utc};
use tasksub_core::event::TaskStatus;
use tasksub_core::outcome::ErrorKind;
use tasksub_core::reconcile::EcsTask;

use super::classify;
use crate::ports::{Described, Desired, PortError, Tasks, DESCRIBE_BATCH};

/// The ECS client, for the sweeper (the event functions never call ECS).
#[derive(Debug, Clone)]
pub struct AwsTasks {
    ecs: aws_sdk_ecs::Client,
}

impl AwsTasks {
    /// Builds the client.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(sdk),
        }
    }
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

fn task_of(t: &aws_sdk_ecs::types::Task) -> Option<EcsTask> {
    let status = |s: Option<&str>| TaskStatus::from(s.unwrap_or_default().to_owned());
    Some(EcsTask {
        task_arn: t.task_arn()?.to_owned(),
        cluster_arn: t.cluster_arn().unwrap_or_default().to_owned(),
        group: t.group().map(str::to_owned),
        last_status: status(t.last_status()),
        desired_status: status(t.desired_status()),
        version: (t.version() > 0).then_some(t.version() as u64),
        created_at: time(t.created_at()),
        stopping_at: time(t.stopping_at()),
        stopped_at: time(t.stopped_at()),
    })
}

impl Tasks for AwsTasks {
    async fn list_tasks(&self, cluster: &str, desired: Desired) -> Result<Vec<String>, PortError> {
        let status = match desired {
            Desired::Running => DesiredStatus::Running,
            Desired::Stopped => DesiredStatus::Stopped,
        };
        let mut pages = self
            .ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(status)
            .max_results(100)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListTasks", &e))?;
            out.extend(page.task_arns().iter().cloned());
        }
        Ok(out)
    }

    async fn describe_tasks(&self, cluster: &str, task_arns: &[String]) -> Result<Described, PortError> {
        if task_arns.len() > DESCRIBE_BATCH {
            let msg = format!(
                "{} tasks in one DescribeTasks (at most {DESCRIBE_BATCH})",
                task_arns.len()
            );
            return Err(PortError::new(ErrorKind::Invalid, "DescribeTasks", msg));
        }
        if task_arns.is_empty() {
            return Ok(Described::default());
        }
        let out = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(task_arns.to_vec()))
            .send()
            .await
            .map_err(|e| classify("DescribeTasks", &e))?;
        let mut d = Described {
            tasks: out.tasks().iter().filter_map(task_of).collect(),
            ..Described::default()
        };
        for f in out.failures() {
            let arn = f.arn().unwrap_or_default().to_owned();
            match f.reason() {
                Some("MISSING") => d.missing.push(arn),
                reason => d.failed.push((arn, reason.unwrap_or("unknown").to_owned())),
            }
        }
        // ECS answers for every ARN asked; one neither described nor failed is missing (moto does this).
        let seen: BTreeSet<&str> = d
            .tasks
            .iter()
            .map(|t| t.task_arn.as_str())
            .chain(d.missing.iter().map(String::as_str))
            .chain(d.failed.iter().map(|(a, _)| a.as_str()))
            .collect();
        let unseen: Vec<String> = task_arns
            .iter()
            .filter(|a| !seen.contains(a.as_str()))
            .cloned()
            .collect();
        d.missing.extend(unseen);
        Ok(d)
    }
}
