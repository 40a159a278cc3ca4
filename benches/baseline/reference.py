"""The reference design's two Lambdas, call by call, written from the description in
/work/shared/notes/reference-design.md §2 (aws-samples/sns-dynamic-subscribers, Python 3.8 / boto3).
No code of the sample was copied; only the documented call sequence is reproduced.

start_handler (ECS task RUNNING), 7 sequential calls:
  sqs.CreateQueue(QueueName=<task id>)            no attributes, no tags
  sqs.GetQueueUrl                                  redundant
  sqs.GetQueueAttributes(All)                      only QueueArn is used
  sns.CreateTopic(Name=TOPIC_NAME)                 used as a topic ARN lookup
  sqs.SetQueueAttributes(Policy)                   policy built by string formatting
  sns.Subscribe(sqs, queue arn)                    no attributes
  dynamodb.UpdateItem(Key id, AttributeUpdates)    legacy API, upsert, no condition

stop_handler (ECS task STOPPED), 5 sequential calls:
  sqs.GetQueueUrl, sqs.GetQueueAttributes(All) (unused), dynamodb.GetItem (eventually consistent),
  sns.Unsubscribe, sqs.DeleteQueue. The mapping row is never deleted.

Differences from the sample, all of which make this baseline faster, not slower:
  - Clients are module-level. The sample also creates a new SNS client inside the start handler on
    every invocation; set REFERENCE_SNS_CLIENT_PER_INVOCATION=1 to reproduce that.
  - The full event is not logged.

Environment: TOPIC_NAME, SQS_CONTAINER_MAPPING_TABLE (table with hash key `id`), AWS_* for the emulator.
"""

import os

import boto3

sqs = boto3.client("sqs")
sns = boto3.client("sns")
dynamodb = boto3.client("dynamodb")

TOPIC_NAME = os.environ.get("TOPIC_NAME", "SNS-DynamicSubscription-Topic")
TABLE = os.environ.get("SQS_CONTAINER_MAPPING_TABLE", "SQSContainerMappping")
SNS_CLIENT_PER_INVOCATION = os.environ.get("REFERENCE_SNS_CLIENT_PER_INVOCATION") == "1"

POLICY = (
    '{{"Version":"2012-10-17","Statement":[{{"Sid":"SNSToSQSPolicy","Effect":"Allow",'
    '"Principal":{{"AWS":"*"}},"Action":"SQS:SendMessage","Resource":"{queue_arn}",'
    '"Condition":{{"ArnEquals":{{"aws:SourceArn":"{topic_arn}"}}}}}}]}}'
)


def task_id(event):
    return event["detail"]["taskArn"].split("/")[-1]


def start_handler(event, context=None):
    queue_name = task_id(event)
    sqs.create_queue(QueueName=queue_name)
    queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]["QueueArn"]
    sns_client = boto3.client("sns") if SNS_CLIENT_PER_INVOCATION else sns
    topic_arn = sns_client.create_topic(Name=TOPIC_NAME)["TopicArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={"Policy": POLICY.format(queue_arn=queue_arn, topic_arn=topic_arn)},
    )
    subscription_arn = sns_client.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    dynamodb.update_item(
        TableName=TABLE,
        Key={"id": {"S": queue_name.strip()}},
        AttributeUpdates={"SubscriptionArn": {"Value": {"S": subscription_arn}}},
        ReturnValues="UPDATED_NEW",
    )


def stop_handler(event, context=None):
    queue_name = task_id(event)
    queue_url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": queue_name}})
    subscription_arn = item["Item"]["SubscriptionArn"]["S"]
    sns.unsubscribe(SubscriptionArn=subscription_arn)
    sqs.delete_queue(QueueUrl=queue_url)


def lambda_handler(event, context=None):
    """One entry point for both rules (the sample has two functions; the body is the same per rule)."""
    if event["detail"].get("lastStatus") == "STOPPED":
        return stop_handler(event, context)
    return start_handler(event, context)
