//! [`Records`] on DynamoDB: consistent reads, conditional puts that return the stored item on conflict.

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use tasksub_core::listing::{is_bookkeeping, Positions, ITEM_KEY};
use tasksub_core::outcome::ErrorKind;
use tasksub_core::record::{attr, Record};

use super::item::{from_item, to_item};
use super::{classify, AwsPorts};
use crate::ports::{Expect, PortError, Records, Scanned, Written};

fn bad(op: &'static str, e: impl std::fmt::Display) -> PortError {
    PortError::new(ErrorKind::Invalid, op, e.to_string())
}

/// The put's condition: what the writer saw (no record, a revision and state, a state, one of states).
fn with_condition(req: PutItemFluentBuilder, expect: Expect) -> PutItemFluentBuilder {
    match expect {
        Expect::Absent => req.condition_expression(format!("attribute_not_exists({})", attr::TASK_ID)),
        // Revision 0 is also a record written before revisions existed (no attribute).
        Expect::Revision(0, s) => req
            .condition_expression("attribute_exists(#id) AND (attribute_not_exists(#rev) OR #rev = :rev) AND #st = :st")
            .expression_attribute_names("#id", attr::TASK_ID)
            .expression_attribute_names("#rev", attr::REVISION)
            .expression_attribute_names("#st", attr::STATE)
            .expression_attribute_values(":rev", AttributeValue::N("0".into()))
            .expression_attribute_values(":st", AttributeValue::S(s.as_str().to_owned())),
        Expect::Revision(n, s) => req
            .condition_expression("#rev = :rev AND #st = :st")
            .expression_attribute_names("#rev", attr::REVISION)
            .expression_attribute_names("#st", attr::STATE)
            .expression_attribute_values(":rev", AttributeValue::N(n.to_string()))
            .expression_attribute_values(":st", AttributeValue::S(s.as_str().to_owned())),
        Expect::State(s) => req
            .condition_expression("#st = :s0")
            .expression_attribute_names("#st", attr::STATE)
            .expression_attribute_values(":s0", AttributeValue::S(s.as_str().to_owned())),
        Expect::AnyOf(states) => {
            let names: Vec<String> = (0..states.len()).map(|i| format!(":s{i}")).collect();
            let mut r = req
                .condition_expression(format!("#st IN ({})", names.join(", ")))
                .expression_attribute_names("#st", attr::STATE);
            for (name, s) in names.iter().zip(states) {
                r = r.expression_attribute_values(name, AttributeValue::S(s.as_str().to_owned()));
            }
            r
        }
    }
}

/// The key of an item, however broken the rest of it is (an item without a string key is described by
/// its attribute names: DynamoDB never stores one, but a report must name something).
fn item_key(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    match item.get(attr::TASK_ID).and_then(|v| v.as_s().ok()) {
        Some(k) => k.clone(),
        None => {
            let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
            names.sort_unstable();
            format!("<item without {}: {}>", attr::TASK_ID, names.join(","))
        }
    }
}

impl Records for AwsPorts {
    async fn get(&self, task_id: &str) -> Result<Option<Record>, PortError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(attr::TASK_ID, AttributeValue::S(task_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", &e))?;
        out.item()
            .map(from_item)
            .transpose()
            .map_err(|e| bad("GetItem", format!("task {task_id}: {e}")))
    }

    async fn put(&self, record: &Record, expect: Expect) -> Result<Written, PortError> {
        let req = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(record)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let req = with_condition(req, expect);
        match req.send().await {
            Ok(_) => Ok(Written::Applied),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    let current = c.item().map(from_item).transpose().map_err(|e| bad("PutItem", e))?;
                    Ok(Written::Conflict(current))
                }
                _ => Err(classify("PutItem", &e)),
            },
        }
    }

    async fn list(&self) -> Result<Scanned, PortError> {
        let mut pages = self
            .ddb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut out = Scanned::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Scan", &e))?;
            for item in page.items() {
                if item
                    .get(attr::TASK_ID)
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|k| is_bookkeeping(k))
                {
                    continue;
                }
                match from_item(item) {
                    Ok(r) => out.records.push(r),
                    Err(e) => {
                        out.quarantined.insert(item_key(item), e.to_string());
                    }
                }
            }
        }
        out.records
            .sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.task_id.cmp(&b.task_id)));
        Ok(out)
    }

    async fn positions(&self) -> Result<Positions, PortError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(attr::TASK_ID, AttributeValue::S(ITEM_KEY.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", &e))?;
        let Some(json) = out.item().and_then(|i| i.get(POSITIONS)).and_then(|v| v.as_s().ok()) else {
            return Ok(Positions::default());
        };
        serde_json::from_str(json).map_err(|e| bad("GetItem", format!("{ITEM_KEY}: {e}")))
    }

    async fn save_positions(&self, positions: &Positions) -> Result<bool, PortError> {
        let next = Positions {
            revision: positions.revision + 1,
            ..positions.clone()
        };
        let json = serde_json::to_string(&next).map_err(|e| bad("PutItem", e))?;
        let sent = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item(attr::TASK_ID, AttributeValue::S(ITEM_KEY.to_owned()))
            .item(POSITIONS, AttributeValue::S(json))
            .item(attr::REVISION, AttributeValue::N(next.revision.to_string()))
            .condition_expression("attribute_not_exists(#id) OR #rev = :rev")
            .expression_attribute_names("#id", attr::TASK_ID)
            .expression_attribute_names("#rev", attr::REVISION)
            .expression_attribute_values(":rev", AttributeValue::N(positions.revision.to_string()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("PutItem", &e)),
        }
    }
}

/// The attribute of the positions item that holds them (JSON).
const POSITIONS: &str = "positions";
