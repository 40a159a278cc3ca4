"""A lean boto3 version of tasksub's own call sequence (4 calls per start, 4 per stop), to separate what
the call count buys from what the language and SDK buy. Same requests as tasksub's plan, sequential:

start: dynamodb.PutItem (claim, attribute_not_exists) -> sqs.CreateQueue (Policy + attributes + tags in
       the request) -> sns.Subscribe (RawMessageDelivery, ReturnSubscriptionArn) -> dynamodb.PutItem (READY,
       conditional on the state)
stop:  dynamodb.GetItem (consistent) -> sns.Unsubscribe -> sqs.DeleteQueue (URL from the record) ->
       dynamodb.PutItem (GONE tombstone, conditional on the state)

Environment: LEAN_TOPIC_ARN, LEAN_TABLE (hash key `taskId`), LEAN_PREFIX, AWS_* for the emulator.
"""

import json
import os
import time

import boto3

sqs = boto3.client("sqs")
sns = boto3.client("sns")
dynamodb = boto3.client("dynamodb")

TOPIC_ARN = os.environ.get("LEAN_TOPIC_ARN", "")
TABLE = os.environ.get("LEAN_TABLE", "")
PREFIX = os.environ.get("LEAN_PREFIX", "lean-")


def _names(event):
    task_arn = event["detail"]["taskArn"]
    task_id = task_arn.split("/")[-1]
    partition, _, region, account = TOPIC_ARN.split(":")[1:5]
    queue_name = PREFIX + task_id
    return task_arn, task_id, queue_name, f"arn:{partition}:sqs:{region}:{account}:{queue_name}"


def _item(task_id, task_arn, queue_name, queue_arn, state, url=None, sub=None):
    item = {
        "taskId": {"S": task_id},
        "taskArn": {"S": task_arn},
        "queueName": {"S": queue_name},
        "queueArn": {"S": queue_arn},
        "state": {"S": state},
        "updatedAt": {"N": str(int(time.time()))},
    }
    if url:
        item["queueUrl"] = {"S": url}
    if sub:
        item["subscriptionArn"] = {"S": sub}
    return item


def start_handler(event, context=None):
    task_arn, task_id, queue_name, queue_arn = _names(event)
    dynamodb.put_item(
        TableName=TABLE,
        Item=_item(task_id, task_arn, queue_name, queue_arn, "PROVISIONING"),
        ConditionExpression="attribute_not_exists(taskId)",
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC_ARN}},
            }
        ],
    }
    url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={"Policy": json.dumps(policy), "MessageRetentionPeriod": "86400", "VisibilityTimeout": "30"},
        tags={"tasksub:task-arn": task_arn},
    )["QueueUrl"]
    sub = sns.subscribe(
        TopicArn=TOPIC_ARN,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    dynamodb.put_item(
        TableName=TABLE,
        Item=_item(task_id, task_arn, queue_name, queue_arn, "READY", url, sub),
        ConditionExpression="#st IN (:a, :b)",
        ExpressionAttributeNames={"#st": "state"},
        ExpressionAttributeValues={":a": {"S": "PROVISIONING"}, ":b": {"S": "READY"}},
    )


def stop_handler(event, context=None):
    task_arn, task_id, queue_name, queue_arn = _names(event)
    item = dynamodb.get_item(TableName=TABLE, Key={"taskId": {"S": task_id}}, ConsistentRead=True)["Item"]
    sns.unsubscribe(SubscriptionArn=item["subscriptionArn"]["S"])
    sqs.delete_queue(QueueUrl=item["queueUrl"]["S"])
    dynamodb.put_item(
        TableName=TABLE,
        Item=_item(task_id, task_arn, queue_name, queue_arn, "GONE"),
        ConditionExpression="#st = :s",
        ExpressionAttributeNames={"#st": "state"},
        ExpressionAttributeValues={":s": {"S": "READY"}},
    )
