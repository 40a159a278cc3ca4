//! Reading and validating raw values: the lookup's readers (required, list, number, boolean, SQS ARN)
//! and the checks of single settings (table, stack, home, filter policy and scope).

use super::{vars, SettingsError, DEFAULT_STACK, MAX_STACK_LEN};
use crate::naming::{Home, NamingError};

/// The environment lookup, with the readers every setting goes through (trimmed; empty is absent).
pub(super) struct Env<F>(pub(super) F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }
    pub(super) fn required(&self, name: &'static str) -> Result<String, SettingsError> {
        self.get(name).ok_or(SettingsError::Missing(name))
    }
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
    pub(super) fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, SettingsError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: T = raw.parse().map_err(|_| bad(name, format!("{raw:?} is not a number")))?;
        if !range.contains(&value) {
            return Err(bad(
                name,
                format!("{value} is outside {}..={}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }
    pub(super) fn boolean(&self, name: &'static str, default: bool) -> Result<bool, SettingsError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" || v == "1" || v == "yes" => Ok(true),
            Some(v) if v == "false" || v == "0" || v == "no" => Ok(false),
            Some(v) => Err(bad(name, format!("{v:?} is not true or false"))),
        }
    }
    pub(super) fn sqs_arn(&self, name: &'static str) -> Result<Option<String>, SettingsError> {
        match self.get(name) {
            Some(arn) if is_sqs_arn(&arn) => Ok(Some(arn)),
            Some(arn) => Err(bad(name, format!("{arn:?} is not an SQS queue ARN"))),
            None => Ok(None),
        }
    }
}

/// A setting whose value is wrong, and why.
pub(super) fn bad(name: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// True for an SQS queue ARN (the only check a DLQ ARN gets: its queue may be anywhere).
pub(super) fn is_sqs_arn(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.split(':').nth(2) == Some("sqs")
}

/// The error of a name that does not validate, as an invalid setting.
pub(super) fn invalid(name: &'static str) -> impl Fn(NamingError) -> SettingsError {
    move |e| SettingsError::Invalid {
        name,
        reason: e.to_string(),
    }
}

/// A DynamoDB table name as `TASKSUB_TABLE` accepts it: 3 to 255 characters of `[A-Za-z0-9_.-]`.
pub fn table_name(table: String) -> Result<String, SettingsError> {
    if !(3..=255).contains(&table.len()) || !table.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return Err(SettingsError::Invalid {
            name: vars::TABLE,
            reason: format!("{table:?} is not a table name"),
        });
    }
    Ok(table)
}

pub(super) fn stack_name(stack: Option<String>) -> Result<String, SettingsError> {
    let stack = stack.unwrap_or_else(|| DEFAULT_STACK.to_owned());
    let stack_char = |c: char| c.is_ascii_alphanumeric() || "-_.:/=+@".contains(c);
    if stack.len() > MAX_STACK_LEN || !stack.chars().all(stack_char) {
        return Err(SettingsError::Invalid {
            name: vars::STACK,
            reason: format!("{stack:?} is not a stack name: expected 1..={MAX_STACK_LEN} chars of [A-Za-z0-9-_.:/=+@]"),
        });
    }
    Ok(stack)
}

pub(super) fn home<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Home, SettingsError> {
    let account = env.required(vars::ACCOUNT_ID)?;
    let (name, region) = match env.get(vars::REGION) {
        Some(r) => (vars::REGION, r),
        None => (
            vars::AWS_REGION,
            env.get(vars::AWS_REGION).ok_or(SettingsError::Missing(vars::REGION))?,
        ),
    };
    Home::new(&region, &account).map_err(|e| match e {
        NamingError::NotAnAccount(_) => invalid(vars::ACCOUNT_ID)(e),
        _ => invalid(name)(e),
    })
}

/// JSON whose objects never repeat a key (`serde_json` would keep the last one silently).
pub(super) fn strict_json(name: &'static str, raw: &str) -> Result<(), SettingsError> {
    crate::json::check_no_duplicate_keys(raw).map_err(|e| bad(name, e.to_string()))
}

/// A filter policy: a JSON object, re-serialised canonically.
pub(super) fn filter_policy(name: &'static str, raw: &str) -> Result<String, SettingsError> {
    strict_json(name, raw)?;
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| SettingsError::Invalid {
        name,
        reason: format!("filter policy is not JSON: {e}"),
    })?;
    policy_object(name, v)
}

pub(super) fn policy_object(name: &'static str, v: serde_json::Value) -> Result<String, SettingsError> {
    if !v.is_object() {
        let reason = "a filter policy must be a JSON object".to_owned();
        return Err(SettingsError::Invalid { name, reason });
    }
    Ok(v.to_string())
}

pub(super) fn scope(name: &'static str, s: String) -> Result<String, SettingsError> {
    if s == "MessageAttributes" || s == "MessageBody" {
        return Ok(s);
    }
    let reason = format!("{s:?} is not MessageAttributes or MessageBody");
    Err(SettingsError::Invalid { name, reason })
}

/// Where a filter policy is applied: `subscription` (by SNS, the default) or `client` (by the task).
pub(super) fn filter_at(name: &'static str, raw: String) -> Result<bool, SettingsError> {
    match raw.as_str() {
        "subscription" => Ok(false),
        "client" => Ok(true),
        other => Err(bad(
            name,
            format!("{other:?}: a filter policy is applied at \"subscription\" (by SNS) or \"client\" (by the task)"),
        )),
    }
}
