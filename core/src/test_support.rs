//! Fixtures shared by the table tests of `decide` and `reconcile`.

use chrono::{DateTime, TimeZone, Utc};

use crate::settings::{vars, Settings};

/// The cluster the test settings own.
pub const PROD: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
/// The topic of the test settings.
pub const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:fanout";

/// Settings owning `PROD` and the group `service:orders`.
pub fn settings() -> Settings {
    let m = [
        (vars::TOPIC_ARN, TOPIC),
        (vars::TABLE, "records"),
        (vars::CLUSTERS, PROD),
        (vars::SERVICE_GROUPS, "service:orders"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Settings::from_map(&m).unwrap()
}

/// The fixed "now" of the tables.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}
