//! The checks that call AWS. Each one reads; none changes anything.

use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType, TableDescription, TimeToLiveStatus};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use tasksub_core::naming::TopicArn;
use tasksub_core::record::attr;
use tasksub_core::settings::{Settings, SweepSettings};
use tasksub_functions::aws::{classify, AwsPorts};
use tasksub_functions::sdk::OPERATION_TIMEOUT;
use tasksub_functions::sweeper::{RunOptions, Sweeper};

use super::{permission, topic_denied, Absent, Check};

/// Actions the functions use that no read can probe.
const WRITES: &[&str] = &[
    "sqs:CreateQueue",
    "sqs:TagQueue",
    "sqs:DeleteQueue",
    "sns:Subscribe",
    "sns:Unsubscribe",
    "dynamodb:PutItem",
];

struct Clients {
    sqs: aws_sdk_sqs::Client,
    ddb: aws_sdk_dynamodb::Client,
    ecs: aws_sdk_ecs::Client,
    ports: AwsPorts,
}

/// A name under the prefix that no task's queue can have: ECS task IDs never contain `_`.
fn impossible_name(settings: &Settings) -> String {
    format!("{}doctor_probe_{}", settings.queue.prefix.as_str(), std::process::id())
}

/// Every check after the settings: the groups run at once, each bounded by one operation timeout (a
/// group that does not finish in time is a transient problem naming it), and print in a fixed order.
/// The dry sweep judges as the sweep at `at` would.
pub(super) async fn all(
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    sweep: SweepSettings,
    at: DateTime<Utc>,
) -> Vec<Check> {
    let c = Clients {
        sqs: aws_sdk_sqs::Client::new(sdk),
        ddb: aws_sdk_dynamodb::Client::new(sdk),
        ecs: aws_sdk_ecs::Client::new(sdk),
        ports: AwsPorts::for_settings(sdk, settings),
    };
    let c = &c;
    let topics = async move {
        let mut out = Vec::new();
        for t in &settings.topics {
            out.push(topic(c, &t.arn, &settings.home.account).await);
        }
        out
    };
    let table = async move {
        let mut out = Vec::new();
        let table_ok = table(c, settings, &mut out).await;
        out.extend(table_reads(c, settings, table_ok).await);
        out
    };
    let clusters = async move {
        let mut out = Vec::new();
        clusters(c, settings, &mut out).await;
        out
    };
    let queues =
        async move {
            let mut out = Vec::new();
            queues(c, settings, &mut out).await;
            out.extend(WRITES.iter().map(|action| {
                Check::not_checked(format!("permission {action}"), "not checkable without side effects")
            }));
            out
        };
    let quotas = super::quotas::all(&c.ports, settings);
    let dry_sweep = dry_sweep(sdk, settings, sweep, at);
    let groups = [
        bounded("topics", Box::pin(topics) as Group<'_>),
        bounded("table", Box::pin(table)),
        bounded("clusters", Box::pin(clusters)),
        bounded("queues", Box::pin(queues)),
        bounded("quotas", Box::pin(quotas)),
        bounded("dry sweep", Box::pin(dry_sweep)),
    ];
    join_all(groups).await.into_iter().flatten().collect()
}

type Group<'a> = std::pin::Pin<Box<dyn Future<Output = Vec<Check>> + Send + 'a>>;

/// A group of checks, cut off after one operation timeout.
async fn bounded(name: &'static str, group: Group<'_>) -> Vec<Check> {
    match tokio::time::timeout(OPERATION_TIMEOUT, group).await {
        Ok(checks) => checks,
        Err(_) => vec![Check::transient(
            name,
            format!("no answer within {} s", OPERATION_TIMEOUT.as_secs()),
            "check the endpoint and the network, then run `tasksub doctor` again",
        )],
    }
}

/// The table reads the functions use, probed.
async fn table_reads(c: &Clients, settings: &Settings, table_ok: bool) -> Vec<Check> {
    let moot = if table_ok { Absent::MeansAllowed } else { Absent::IsMoot };
    let key = AttributeValue::S(format!("doctor-probe-{}", std::process::id()));
    let get = c
        .ddb
        .get_item()
        .table_name(&settings.table)
        .key(attr::TASK_ID, key)
        .send()
        .await;
    let scan = c.ddb.scan().table_name(&settings.table).limit(1).send().await;
    vec![
        permission(
            "dynamodb:GetItem",
            get.map(drop).map_err(|e| classify("GetItem", &e)),
            moot,
        ),
        permission("dynamodb:Scan", scan.map(drop).map_err(|e| classify("Scan", &e)), moot),
    ]
}

/// The sweeper's dry run: what the next sweep will do and leave alone ([`super::sweep::judge`]).
async fn dry_sweep(
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    sweep: SweepSettings,
    at: DateTime<Utc>,
) -> Vec<Check> {
    let sweeper = Sweeper::new(settings.clone(), sweep, sdk);
    let options = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    match sweeper.run(options, at).await {
        Ok(report) => {
            let mut checks = super::sweep::judge(&report);
            checks.push(super::sweep::cost(&report, settings));
            checks
        }
        // The table (or a cluster) is missing: its own check says so and how to fix it.
        Err(e) if e.0.kind == tasksub_core::outcome::ErrorKind::NotFound => {
            vec![Check::not_checked("dry sweep", format!("needs what is missing: {e}"))]
        }
        Err(e) if e.0.kind.is_transient() => vec![Check::transient(
            "dry sweep",
            format!("the sweep could not read what exists: {e}"),
            "run `tasksub doctor` again",
        )],
        Err(e) => vec![Check::problem(
            "dry sweep",
            format!("the sweep could not read what exists: {e}"),
            "the scheduled sweeper fails the same way: fix the permission or setting the message names",
        )],
    }
}

/// One topic exists and is reachable in its own region.
async fn topic(c: &Clients, topic: &TopicArn, home_account: &str) -> Check {
    let arn = topic.as_str();
    match c.ports.sns_for(arn).get_topic_attributes().topic_arn(arn).send().await {
        Ok(out) => {
            let subs = out.attributes().and_then(|a| a.get("SubscriptionsConfirmed")).cloned();
            let detail = format!(
                "{arn} is reachable (sns:GetTopicAttributes; {} confirmed subscription(s)). Subscribe and \
                 Unsubscribe cannot be probed without side effects.",
                subs.unwrap_or_else(|| "?".to_owned())
            );
            Check::ok("topic", detail)
        }
        Err(e) => {
            let e = classify("GetTopicAttributes", &e);
            match e.kind {
                tasksub_core::outcome::ErrorKind::NotFound => Check::problem(
                    "topic",
                    format!("{arn} does not exist"),
                    "fix TASKSUB_TOPIC_ARNS, or deploy the stack (for the emulator: `tasksub init-local`)",
                ),
                tasksub_core::outcome::ErrorKind::AccessDenied => topic_denied(topic, home_account, &e.message),
                _ => permission("sns:GetTopicAttributes", Err(e), Absent::IsMoot),
            }
        }
    }
}

/// The table exists, is keyed on `taskId` (S) alone, and expires tombstones on `expiresAt`.
/// Returns whether the table exists.
async fn table(c: &Clients, settings: &Settings, out: &mut Vec<Check>) -> bool {
    let name = &settings.table;
    let described = match c.ddb.describe_table().table_name(name).send().await {
        Ok(d) => d,
        Err(e) => {
            let e = classify("DescribeTable", &e);
            out.push(match e.kind {
                tasksub_core::outcome::ErrorKind::NotFound => Check::problem(
                    "table",
                    format!("table {name} does not exist"),
                    format!("fix TASKSUB_TABLE, or deploy the stack (for the emulator: `tasksub init-local --table {name}`)"),
                ),
                _ => permission("dynamodb:DescribeTable", Err(e), Absent::IsMoot),
            });
            return false;
        }
    };
    out.push(table_key(name, described.table()));
    out.push(table_ttl(c, name).await);
    true
}

/// The table is keyed on `taskId` (S) alone.
fn table_key(name: &str, t: Option<&TableDescription>) -> Check {
    let keys: Vec<(String, KeyType)> = t
        .map(|t| t.key_schema())
        .unwrap_or_default()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    let key_type = t
        .map(|t| t.attribute_definitions())
        .unwrap_or_default()
        .iter()
        .find(|d| d.attribute_name() == attr::TASK_ID)
        .map(|d| d.attribute_type().clone());
    let keyed_right = keys == [(attr::TASK_ID.to_owned(), KeyType::Hash)] && key_type == Some(ScalarAttributeType::S);
    if keyed_right {
        Check::ok("table", format!("{name} exists, partition key {} (S)", attr::TASK_ID))
    } else {
        Check::problem(
            "table",
            format!(
                "{name} has key schema {keys:?}, expected only partition key {} (S)",
                attr::TASK_ID
            ),
            "point TASKSUB_TABLE at the table the stack created (a table's key cannot be changed)",
        )
    }
}

/// The table expires tombstones on `expiresAt`.
async fn table_ttl(c: &Clients, name: &str) -> Check {
    match c.ddb.describe_time_to_live().table_name(name).send().await {
        Ok(d) => {
            let desc = d.time_to_live_description();
            let status = desc.and_then(|d| d.time_to_live_status());
            let attribute = desc.and_then(|d| d.attribute_name());
            let on = matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
            if on && attribute == Some(attr::EXPIRES_AT) {
                Check::ok("table TTL", format!("enabled on {}", attr::EXPIRES_AT))
            } else {
                Check::problem(
                    "table TTL",
                    format!(
                        "TTL is {} on {:?}: GONE tombstones never expire",
                        status.map_or("off", |s| s.as_str()),
                        attribute.unwrap_or("nothing")
                    ),
                    format!(
                        "aws dynamodb update-time-to-live --table-name {name} --time-to-live-specification \
                         Enabled=true,AttributeName={}",
                        attr::EXPIRES_AT
                    ),
                )
            }
        }
        Err(e) => permission(
            "dynamodb:DescribeTimeToLive",
            Err(classify("DescribeTimeToLive", &e)),
            Absent::IsMoot,
        ),
    }
}

/// Every configured cluster exists and its tasks can be listed and described (the sweeper's reads).
async fn clusters(c: &Clients, settings: &Settings, out: &mut Vec<Check>) {
    let t = &settings.home;
    for cluster in &settings.scope.clusters {
        let check = format!("cluster {cluster}");
        let listed = c.ecs.list_tasks().cluster(cluster).max_results(1).send().await;
        match listed.map_err(|e| classify("ListTasks", &e)) {
            Ok(_) => out.push(Check::ok(check, "exists; ecs:ListTasks allowed")),
            Err(e) if e.kind == tasksub_core::outcome::ErrorKind::NotFound => {
                out.push(Check::problem(
                    check,
                    "ECS does not know this cluster: no event will come from it, and the sweeper treats it as running nothing",
                    "fix TASKSUB_CLUSTERS (cluster ARNs or names, comma-separated)",
                ));
                continue;
            }
            Err(e) => {
                out.push(permission("ecs:ListTasks", Err(e), Absent::IsMoot));
                continue;
            }
        }
        let name = tasksub_core::naming::cluster_name(cluster);
        let probe = format!(
            "arn:{}:ecs:{}:{}:task/{name}/{:032x}",
            t.partition, t.region, t.account, 0
        );
        let described = c.ecs.describe_tasks().cluster(cluster).tasks(probe).send().await;
        out.push(permission(
            "ecs:DescribeTasks",
            described.map(drop).map_err(|e| classify("DescribeTasks", &e)),
            Absent::MeansAllowed,
        ));
    }
}

/// The queue reads the functions and the sweeper use, under the prefix.
async fn queues(c: &Clients, settings: &Settings, out: &mut Vec<Check>) {
    let prefix = settings.queue.prefix.as_str();
    let listed = c
        .sqs
        .list_queues()
        .queue_name_prefix(prefix)
        .max_results(1)
        .send()
        .await;
    let first = listed.as_ref().ok().and_then(|l| l.queue_urls().first().cloned());
    out.push(permission(
        "sqs:ListQueues",
        listed.map(drop).map_err(|e| classify("ListQueues", &e)),
        Absent::IsMoot,
    ));
    let url = c.sqs.get_queue_url().queue_name(impossible_name(settings)).send().await;
    out.push(permission(
        "sqs:GetQueueUrl",
        url.map(drop).map_err(|e| classify("GetQueueUrl", &e)),
        Absent::MeansAllowed,
    ));
    let Some(url) = first else {
        for action in ["sqs:GetQueueAttributes", "sqs:ListQueueTags"] {
            out.push(Check::not_checked(
                format!("permission {action}"),
                "no queue under the prefix to read",
            ));
        }
        return;
    };
    let attrs = c
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names("CreatedTimestamp".into())
        .send()
        .await;
    out.push(permission(
        "sqs:GetQueueAttributes",
        attrs.map(drop).map_err(|e| classify("GetQueueAttributes", &e)),
        Absent::MeansAllowed,
    ));
    let tags = c.sqs.list_queue_tags().queue_url(&url).send().await;
    out.push(permission(
        "sqs:ListQueueTags",
        tags.map(drop).map_err(|e| classify("ListQueueTags", &e)),
        Absent::MeansAllowed,
    ));
}
