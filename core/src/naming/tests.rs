//! The naming contract, hop by hop.

use super::*;

fn topic() -> TopicArn {
    TopicArn::parse("arn:aws:sns:us-east-1:123456789012:fanout").unwrap()
}

fn home() -> Home {
    Home::new("us-east-1", "123456789012").unwrap()
}

#[test]
fn both_arn_formats_give_the_task_id() {
    let rows = [
        (
            "arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad",
            Some("FargateCluster"),
            "c13b4cb40f1f4fe4a2971f76ae5a47ad",
        ),
        (
            "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
            None,
            "b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
        ),
        (
            "arn:aws-cn:ecs:cn-north-1:111122223333:task/c/0123456789abcdef0123456789abcdef",
            Some("c"),
            "0123456789abcdef0123456789abcdef",
        ),
    ];
    for (arn, cluster, id) in rows {
        let t = TaskArn::parse(arn).unwrap();
        assert_eq!(t.cluster.as_deref(), cluster, "{arn}");
        assert_eq!(t.task_id.as_str(), id, "{arn}");
    }
}

#[test]
fn bad_task_arns_are_refused() {
    for arn in [
        "",
        "c13b4cb40f1f4fe4a2971f76ae5a47ad",
        "arn:aws:sqs:us-east-1:1:task/x",
        "arn:aws:ecs:us-east-1:1:container/x",
        "arn:aws:ecs:us-east-1:1:task/",
        "arn:aws:ecs:us-east-1:1:task/c/id.with.dots",
        "arn:aws:ecs:us-east-1:1:task/a/b/c",
        "arn:aws:ecs::1:task/c/x",
        "arn:aws:ecs:us-east-1:1:task/c/0123",
        "arn:aws:ecs:us-east-1:1:task/c/billing",
        // a valid task ID, but an ARN without partition, region or account
        "arn::ecs:us-east-1:1:task/c/0123456789abcdef0123456789abcdef",
        "arn:aws:ecs::1:task/c/0123456789abcdef0123456789abcdef",
        "arn:aws:ecs:us-east-1::task/c/0123456789abcdef0123456789abcdef",
    ] {
        assert!(TaskArn::parse(arn).is_err(), "{arn:?} should be refused");
    }
}

#[test]
fn queue_name_and_arn_are_derived() {
    let task = "arn:aws:ecs:us-east-1:123456789012:task/c/c13b4cb40f1f4fe4a2971f76ae5a47ad";
    let (prefix, home) = (QueuePrefix::default(), home());
    let naming = |fifo| QueueNaming {
        prefix: &prefix,
        home: &home,
        fifo,
    };
    let names = TaskNames::derive(task, naming(false)).unwrap();
    assert_eq!(names.queue_name.as_str(), "tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad");
    assert_eq!(
        names.queue_arn,
        "arn:aws:sqs:us-east-1:123456789012:tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad"
    );
    assert_eq!(names.record_key(), "c13b4cb40f1f4fe4a2971f76ae5a47ad");
    assert_eq!(
        names.queue_name.task_id(&QueuePrefix::default()).unwrap().as_str(),
        "c13b4cb40f1f4fe4a2971f76ae5a47ad"
    );
    assert!(!names.queue_name.is_fifo());
    // FIFO: the same name with `.fifo`, and the task ID still comes back from it
    let fifo = TaskNames::derive(task, naming(true)).unwrap();
    assert_eq!(
        fifo.queue_name.as_str(),
        "tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad.fifo"
    );
    assert_eq!(
        fifo.queue_arn,
        "arn:aws:sqs:us-east-1:123456789012:tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad.fifo"
    );
    assert!(fifo.queue_name.is_fifo());
    assert_eq!(
        fifo.queue_name.task_id(&prefix).unwrap().as_str(),
        "c13b4cb40f1f4fe4a2971f76ae5a47ad"
    );
    assert_eq!(queue_name_from_arn(&fifo.queue_arn), Some(fifo.queue_name.clone()));
    assert_eq!(
        queue_name_from_url("https://sqs.us-east-1.amazonaws.com/1/tasksub-c13b4cb40f1f4fe4a2971f76ae5a47ad.fifo"),
        Some(fifo.queue_name)
    );
    // the queue lives at home, wherever the task's ARN says it runs
    let elsewhere = "arn:aws:ecs:eu-west-1:999999999999:task/c/c13b4cb40f1f4fe4a2971f76ae5a47ad";
    let names = TaskNames::derive(elsewhere, naming(false)).unwrap();
    assert!(names.queue_arn.starts_with("arn:aws:sqs:us-east-1:123456789012:"));
}

#[test]
fn home_is_validated_and_gives_the_partition() {
    let rows = [
        ("us-east-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-west-3", "aws"),
    ];
    for (region, partition) in rows {
        let h = Home::new(region, "123456789012").unwrap();
        assert_eq!((h.partition.as_str(), h.region.as_str()), (partition, region));
        assert_eq!(h.account, "123456789012");
    }
    for account in ["", "12345678901", "1234567890123", "12345678901a"] {
        assert_eq!(
            Home::new("us-east-1", account),
            Err(NamingError::NotAnAccount(account.into()))
        );
    }
    for region in [
        "",
        "useast1",
        "US-EAST-1",
        "us east-1",
        &"a-".repeat(17),
        "us-east-1 ",
        "-us-east-1",
        "us-east-",
    ] {
        assert_eq!(
            Home::new(region, "123456789012"),
            Err(NamingError::NotARegion(region.into()))
        );
    }
    assert!(Home::new(&format!("{}aa", "a-".repeat(15)), "123456789012").is_ok());
}

#[test]
fn subscription_arns_name_their_topic_and_region() {
    let sub = "arn:aws:sns:eu-west-1:210987654321:flags.fifo:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55";
    assert_eq!(
        topic_of_subscription(sub),
        Some("arn:aws:sns:eu-west-1:210987654321:flags.fifo")
    );
    assert_eq!(topic_of_subscription("arn:aws:sns:eu-west-1:210987654321:flags"), None);
    assert_eq!(topic_of_subscription("arn:aws:sns:eu-west-1:210987654321:flags:"), None);
    assert_eq!(topic_of_subscription("PendingConfirmation"), None);
    assert_eq!(region_of_arn(sub), Some("eu-west-1"));
    assert_eq!(region_of_arn("nope"), None);
    assert!(TopicArn::parse("arn:aws:sns:eu-west-1:210987654321:flags.fifo")
        .unwrap()
        .is_fifo());
    assert!(!topic().is_fifo());
}

#[test]
fn names_never_exceed_80_chars() {
    let prefix = QueuePrefix::new(&format!("tasksub-{}", "p".repeat(39))).unwrap();
    let id = TaskId::new("b99d40b3-5176-4f71-9a52-9dbd6f1cebef").unwrap();
    assert!(matches!(
        QueueName::for_task(&prefix, &id, false),
        Err(NamingError::TooLong(_))
    ));
    let id = TaskId::new(&"a".repeat(32)).unwrap();
    assert_eq!(QueueName::for_task(&prefix, &id, false).unwrap().as_str().len(), 79);
    // `.fifo` counts: 47 + 32 + 5 = 84
    assert!(matches!(
        QueueName::for_task(&prefix, &id, true),
        Err(NamingError::TooLong(_))
    ));
    assert!(QueuePrefix::new(&format!("tasksub-{}", "p".repeat(40))).is_err());
}

#[test]
fn task_ids_are_in_an_ecs_format() {
    for ok in [
        "c13b4cb40f1f4fe4a2971f76ae5a47ad",
        "b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
    ] {
        assert_eq!(TaskId::new(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "0123",
        "billing",
        "C13B4CB40F1F4FE4A2971F76AE5A47AD",
        "c13b4cb40f1f4fe4a2971f76ae5a47a",
        "c13b4cb40f1f4fe4a2971f76ae5a47adf",
        "g13b4cb40f1f4fe4a2971f76ae5a47ad",
        "b99d40b3-5176-4f71-9a52-9dbd6f1cebe_",
        "b99d40b35-176-4f71-9a52-9dbd6f1cebef",
        "b99d40b3-5176-4f71-9a52-9dbd6f1cebef0",
    ] {
        let err = TaskId::new(bad).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{bad:?}")) && err.contains("32 lowercase hex"),
            "{err}"
        );
    }
}

#[test]
fn prefixes_start_with_the_stem() {
    for ok in [
        "tasksub-",
        "tasksub_",
        "tasksub-1a2b3c4d-",
        "tasksub-orders_",
        "tasksub--",
    ] {
        assert_eq!(QueuePrefix::new(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "tasksub",
        "tasksubx-",
        "orders-",
        "prod",
        "ts123-",
        "Tasksub-",
        "tasksub-bad.prefix",
    ] {
        let err = QueuePrefix::new(bad).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{bad:?}")) && err.contains("\"tasksub-\""),
            "{err}"
        );
    }
}

#[test]
fn topic_arns_parse() {
    let t = topic();
    assert_eq!(
        (
            t.partition.as_str(),
            t.region.as_str(),
            t.account.as_str(),
            t.name.as_str()
        ),
        ("aws", "us-east-1", "123456789012", "fanout")
    );
    assert!(TopicArn::parse("arn:aws:sqs:us-east-1:1:q").is_err());
    assert!(TopicArn::parse("arn:aws:sns:us-east-1:1:t:sub-id").is_err());
}

#[test]
fn queue_names_come_back_from_urls() {
    let n = queue_name_from_url("http://127.0.0.1:5055/123456789012/tasksub-abc").unwrap();
    assert!(n.task_id(&QueuePrefix::default()).is_none(), "not a task ID");
    assert_eq!(n.as_str(), "tasksub-abc");
    assert!(queue_name_from_url("https://sqs.us-east-1.amazonaws.com/").is_none());
    assert!(queue_name_from_url("").is_none());
}

#[test]
fn arn_helpers_parse_only_what_they_name() {
    let q = "arn:aws:sqs:us-east-1:123456789012:tasksub-0123456789abcdef0123456789abcdef";
    assert_eq!(
        queue_name_from_arn(q).unwrap().as_str(),
        "tasksub-0123456789abcdef0123456789abcdef"
    );
    assert_eq!(queue_name_from_arn("arn:aws:sns:us-east-1:123456789012:topic"), None);
    assert_eq!(queue_name_from_arn("https://example.invalid/hook"), None);
    assert_eq!(cluster_name("arn:aws:ecs:us-east-1:123456789012:cluster/prod"), "prod");
    assert_eq!(cluster_name("prod"), "prod");
    // only an ECS ARN names a cluster; an empty or odd queue name is no queue name
    let other = "arn:aws:sqs:us-east-1:123456789012:cluster/prod";
    assert_eq!(cluster_name(other), other);
    assert_eq!(queue_name_from_arn("arn:aws:sqs:us-east-1:123456789012:"), None);
    assert_eq!(queue_name_from_arn("arn:aws:sqs:us-east-1:123456789012:bad.name"), None);
    let t = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef";
    assert_eq!(task_id_of(t), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(task_id_of("arn:aws:ecs:us-east-1:123456789012:task/prod/bad.id"), None);
}

#[test]
fn names_display_as_themselves_and_the_length_limit_is_exact() {
    let topic = TopicArn::parse("arn:aws:sns:us-east-1:123456789012:fanout").unwrap();
    assert_eq!(topic.as_str(), "arn:aws:sns:us-east-1:123456789012:fanout");
    assert_eq!(topic.to_string(), topic.as_str());
    let id = TaskId::new("0123456789abcdef0123456789abcdef").unwrap();
    assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
    let uuid = TaskId::new("b99d40b3-5176-4f71-9a52-9dbd6f1cebef").unwrap();
    // 44 + 36 = 80 characters: the longest name SQS accepts
    let prefix = QueuePrefix::new(&format!("tasksub-{}", "p".repeat(36))).unwrap();
    let name = QueueName::for_task(&prefix, &uuid, false).unwrap();
    assert_eq!((name.as_str().len(), name.to_string()), (80, name.as_str().to_owned()));
    let longer = QueuePrefix::new(&format!("tasksub-{}", "p".repeat(37))).unwrap();
    assert!(matches!(
        QueueName::for_task(&longer, &uuid, false),
        Err(NamingError::TooLong(_))
    ));
    // a task ARN with an empty cluster segment is not a task ARN
    assert!(TaskArn::parse("arn:aws:ecs:us-east-1:1:task//0123456789abcdef0123456789abcdef").is_err());
}
