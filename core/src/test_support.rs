//! Fixtures shared by the table tests of `decide` and `reconcile`.

use chrono::{DateTime, TimeZone, Utc};

use crate::settings::{vars, Settings};

/// The cluster the test settings own.
pub const PROD: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
/// The topic of the test settings.
pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:fanout";

/// Settings owning `PROD` and the group `service:orders`, with the one topic `TOPIC`.
pub fn settings() -> Settings {
    settings_with_topics(&[TOPIC])
}

/// As [`settings`], with these topics.
pub fn settings_with_topics(topics: &[&str]) -> Settings {
    let topics = topics.join(",");
    let m = [
        (vars::TOPIC_ARNS, topics.as_str()),
        (vars::ACCOUNT_ID, "123456789012"),
        (vars::AWS_REGION, "us-east-1"),
        (vars::TABLE, "records"),
        (vars::CLUSTERS, PROD),
        (vars::SERVICE_GROUPS, "service:orders"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Settings::from_map(&m).unwrap()
}

/// Settings read from a minimal environment (table `records`, cluster `prod`, account, region) with
/// `pairs` on top (a later pair wins), or the error's message: for the settings readers' tests.
pub fn settings_from_env(pairs: &[(&str, &str)]) -> Result<Settings, String> {
    let mut m: std::collections::BTreeMap<String, String> = [
        (vars::TABLE, "records"),
        (vars::CLUSTERS, "prod"),
        (vars::ACCOUNT_ID, "123456789012"),
        (vars::AWS_REGION, "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in pairs {
        m.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_map(&m).map_err(|e| e.to_string())
}

/// The fixed "now" of the tables.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

/// A record of the test task in this state, naming nothing yet.
pub fn record(state: crate::record::State) -> crate::record::Record {
    let id = "0123456789abcdef0123456789abcdef";
    crate::record::Record {
        task_id: id.into(),
        task_arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"),
        cluster_arn: PROD.into(),
        group: Some("service:orders".into()),
        queue_name: format!("tasksub-{id}"),
        queue_arn: format!("arn:aws:sqs:us-east-1:123456789012:tasksub-{id}"),
        queue_url: Some(format!("https://sqs.us-east-1.amazonaws.com/123456789012/tasksub-{id}")),
        subscriptions: Default::default(),
        state,
        version: 1,
        created_at: now(),
        updated_at: now(),
        expires_at: None,
        revision: 2,
        pending: Default::default(),
        refused: Default::default(),
        generation: 0,
        settings_hash: None,
        watch: Default::default(),
        client_filters: Default::default(),
    }
}
