//! The checks that call AWS. Each one reads; none changes anything.

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType, TableDescription, TimeToLiveStatus};
use tasksub_core::naming::queue_name_from_url;
use tasksub_core::record::attr;
use tasksub_core::settings::Settings;
use tasksub_functions::aws::{classify, AwsPorts};
use tasksub_functions::ports::{list_topic, Queues, Records};

use super::{leftovers, permission, Absent, Check};

/// Actions the functions use that no read can probe.
const WRITES: &[&str] = &[
    "sqs:CreateQueue",
    "sqs:TagQueue",
    "sqs:DeleteQueue",
    "sns:Subscribe",
    "sns:Unsubscribe",
    "dynamodb:PutItem",
];

/// Most pages of subscriptions doctor reads (100 a page; ListSubscriptionsByTopic allows 30 a second).
const SUBSCRIPTION_PAGES: usize = 50;

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

/// Every check after the settings, in order.
pub(super) async fn all(sdk: &aws_config::SdkConfig, settings: &Settings) -> Vec<Check> {
    let c = Clients {
        sqs: aws_sdk_sqs::Client::new(sdk),
        ddb: aws_sdk_dynamodb::Client::new(sdk),
        ecs: aws_sdk_ecs::Client::new(sdk),
        ports: AwsPorts::for_settings(sdk, &settings),
    };
    let mut out = Vec::new();
    for t in &settings.topics {
        out.push(topic(&c, t.arn.as_str()).await);
    }
    let table_ok = table(&c, settings, &mut out).await;
    clusters(&c, settings, &mut out).await;
    queues(&c, settings, &mut out).await;
    let moot = if table_ok { Absent::MeansAllowed } else { Absent::IsMoot };
    let key = AttributeValue::S(format!("doctor-probe-{}", std::process::id()));
    let get = c
        .ddb
        .get_item()
        .table_name(&settings.table)
        .key(attr::TASK_ID, key)
        .send()
        .await;
    out.push(permission(
        "dynamodb:GetItem",
        get.map(drop).map_err(|e| classify("GetItem", &e)),
        moot,
    ));
    let scan = c.ddb.scan().table_name(&settings.table).limit(1).send().await;
    out.push(permission(
        "dynamodb:Scan",
        scan.map(drop).map_err(|e| classify("Scan", &e)),
        moot,
    ));
    for action in WRITES {
        out.push(Check::not_checked(
            format!("permission {action}"),
            "not checkable without side effects",
        ));
    }
    out.extend(super::quotas::all(&c.ports, settings).await);
    if table_ok {
        out.extend(leftovers(&c, settings).await);
    } else {
        for name in ["orphan queues", "orphan subscriptions", "records without queue"] {
            out.push(Check::not_checked(name, "needs the table"));
        }
    }
    out
}

/// One topic exists and is reachable in its own region.
async fn topic(c: &Clients, arn: &str) -> Check {
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

/// The leftover checks: orphan queues, orphan subscriptions, live records whose queue is missing.
async fn leftovers(c: &Clients, settings: &Settings) -> Vec<Check> {
    const NAMES: [&str; 3] = ["orphan queues", "orphan subscriptions", "records without queue"];
    let moot = |why: String| NAMES.iter().map(|n| Check::not_checked(*n, why.clone())).collect();
    let records = match Records::list(&c.ports).await {
        Ok(r) => r,
        Err(e) => return moot(format!("could not scan the table: {e}")),
    };
    let queues: Vec<String> = match Queues::list(&c.ports, settings.queue.prefix.as_str()).await {
        Ok(u) => u
            .iter()
            .filter_map(|u| queue_name_from_url(u))
            .map(|n| n.as_str().to_owned())
            .collect(),
        Err(e) => return moot(format!("could not list queues: {e}")),
    };
    let mut out = vec![
        leftovers::orphan_queues(&records, &queues, settings),
        leftovers::records_without_queue(&records, &queues),
    ];
    let mut subs = Vec::new();
    for topic in settings.topic_arns() {
        match list_topic(&c.ports, topic, SUBSCRIPTION_PAGES).await {
            Ok((listed, _)) => subs.extend(listed),
            Err(e) => {
                let why = format!("could not list the subscriptions of {topic}: {e}");
                out.push(Check::not_checked("orphan subscriptions", why));
                return out;
            }
        }
    }
    out.push(leftovers::orphan_subscriptions(&records, &subs, settings));
    out
}
