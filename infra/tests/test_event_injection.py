"""No event injection: a hostile ECS group cannot change what the functions act on.

`detail.group` is chosen by whoever calls RunTask. Inside quotes (`"group": "<group>"`) EventBridge pastes
a value's text without escaping it ("Amazon EventBridge input transformation", "Common issues"), so a
group such as `x", "taskArn": "<another task>` would become structure. The task rules' templates put
every placeholder outside quotes, where EventBridge inserts the JSON value the path selects (the
"Simple JSON" example of the same page): a string arrives quoted and escaped, so it stays one string.

Each template's transformer (SAM and CDK) is put on a moto rule with an SQS target (what the buffer queue
receives), fed task events whose group is hostile, and what arrives is read back. moto renders
placeholders as AWS documents (scripts/moto_server.py). The same values through the Rust parser:
`core/src/event/tests.rs` and `tests/tests/injection.rs`.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

import pytest

from test_event_trimming import transformer

TASK = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
OTHER = "arn:aws:ecs:us-east-1:123456789012:task/prod/fedcba9876543210fedcba9876543210"
CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"

def hostile_groups(other: str) -> list[str]:
    """Quotes, backslashes, braces, a second taskArn (`other`), a closed detail, control characters."""
    return [
        f'x", "taskArn": "{other}',
        f'x", "taskArn": "{other}", "y": "',
        f'x"}}, "resources": ["{other}"], "z": {{"a": "',
        f'x\\", \\"taskArn\\": \\"{other}',
        f'x"}}, "detail": {{"taskArn": "{other}", "g": "',
        "\\",
        '{"}',
        "service:orders\u0000\n\t",
    ]


HOSTILE_GROUPS = hostile_groups(OTHER)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
    return dict(pairs)


def deliver(aws, tr: dict, groups: list[str]) -> dict[str, str]:
    """Each group's task event through `tr` on a moto rule with an SQS target: group -> raw body."""
    run = uuid.uuid4().hex[:10]
    bus = f"tasksub-inject-{run}"
    aws.events.create_event_bus(Name=bus)
    url = aws.sqs.create_queue(QueueName=f"tasksub-inject-{run}")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"inject-{run}"
    try:
        aws.events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["aws.ecs"]}))
        aws.events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn, "InputTransformer": tr}])
        for i, group in enumerate(groups):
            detail = {"taskArn": TASK, "clusterArn": CLUSTER, "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                      "group": group, "version": i + 1,
                      "overrides": {"containerOverrides": [{"environment": [{"name": "K", "value": "SECRET"}]}]}}
            resp = aws.events.put_events(Entries=[{
                "Source": "aws.ecs", "DetailType": "ECS Task State Change", "Detail": json.dumps(detail),
                "Resources": [TASK], "Time": datetime(2026, 11, 25, 12, tzinfo=timezone.utc), "EventBusName": bus,
            }])
            assert resp["FailedEntryCount"] == 0, resp
        bodies = {}
        while True:
            msgs = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                version = json.loads(m["Body"])["detail"]["version"]
                bodies[groups[version - 1]] = m["Body"]
        return bodies
    finally:
        aws.events.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
        aws.events.delete_rule(Name=rule, EventBusName=bus)
        aws.events.delete_event_bus(Name=bus)
        aws.sqs.delete_queue(QueueUrl=url)


def quoted(tr: dict) -> dict:
    """The same transformer with every string placeholder in quotes: the form this stack used to deploy."""
    template = re.sub(r"<(?!resources>|version>)([A-Za-z]+)>", r'"<\1>"', tr["InputTemplate"])
    return {**tr, "InputTemplate": template}


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_a_hostile_group_stays_a_value(aws, templates, flavour):
    for rule in ("TaskRunningRule", "TaskStoppedRule"):
        bodies = deliver(aws, transformer(templates[flavour], rule), HOSTILE_GROUPS)
        assert set(bodies) == set(HOSTILE_GROUPS), f"{rule}: an event did not arrive"
        for group, raw in bodies.items():
            body = json.loads(raw, object_pairs_hook=no_duplicates)
            assert body["detail"]["taskArn"] == TASK, (rule, group, raw)
            assert body["detail"]["group"] == group, (rule, group, raw)
            assert body["resources"] == [TASK], (rule, group, raw)
            assert set(body["detail"]) == {"taskArn", "clusterArn", "lastStatus", "desiredStatus", "version", "group"}
            assert "SECRET" not in raw


def test_the_quoted_form_was_injectable(aws, templates):
    """Guard of the test itself: with quoted placeholders the same groups do become structure in moto."""
    tr = quoted(transformer(templates["sam"], "TaskStoppedRule"))
    bodies = deliver(aws, tr, HOSTILE_GROUPS[:2])
    injected = [json.loads(raw)["detail"]["taskArn"] for raw in bodies.values()]
    assert injected == [OTHER, OTHER], bodies
    # What the Rust parser refuses: the detail names a task the envelope does not (core/src/event.rs).
    assert all(json.loads(raw)["resources"] == [TASK] for raw in bodies.values())
