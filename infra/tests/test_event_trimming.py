"""The task rules' InputTransformer, run in moto: no container environment reaches the functions.

ECS Task State Change events carry `overrides.containerOverrides[].environment` (RunTask overrides:
often secrets) and the containers' details. The rules forward only what tasksub-core's parser and
decide() use, shaped like an EventBridge event (envelope + taskArn, clusterArn, lastStatus,
desiredStatus, version, group), to the buffer queues, so neither the functions, nor the event DLQ (the
rules' DLQ and the buffers' redrive), nor the on-failure destination ever hold the rest
(docs/threat-model.md, "Events trimmed"). Every placeholder is a whole JSON value, outside quotes, so no
value becomes structure (test_event_injection.py).

Each transformer is taken verbatim from the SAM template and the CDK synth, put on a moto rule with an
SQS target, and fed the public samples that carry overrides (one with an environment override).

moto renders placeholders as AWS documents (scripts/moto_server.py). A path missing from the event leaves
its `<placeholder>` in moto's output; AWS documents that the variable "isn't created", and ECS always
sets the six detail fields (a task's group defaults to `family:<name>`, ECS API reference, RunTask), so
the samples used here all have them.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ecs-events"
# Samples with overrides (and a group): the env-override one has containerOverrides[].environment.
SAMPLES = [
    "fargate-task-running-env-override-dotnet.json",
    "ec2-task-stopped-user-initiated-capacity-provider-aws-samples.json",
    "fargate-task-stopped-service-scheduler-exit137-arkime.json",
]
RULES = ["TaskRunningRule", "TaskStoppedRule"]
# What tasksub-core reads (core/src/event.rs TaskStateChange, decide.rs admit/TaskFacts).
DETAIL_FIELDS = {"taskArn", "clusterArn", "lastStatus", "desiredStatus", "group", "version"}
ENVELOPE_FIELDS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


def transformer(template: dict, rule: str) -> dict:
    (target,) = template["Resources"][rule]["Properties"]["Targets"]
    assert "InputTransformer" in target, f"{rule} forwards the whole event"
    return target["InputTransformer"]


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(keys_anywhere(v) for v in value))
    return set()


def strings_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(set(), *(strings_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(strings_anywhere(v) for v in value))
    return {value} if isinstance(value, str) else set()


def placeholders_outside_strings(template: str) -> list[str]:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', template)
    return re.findall(r"<([A-Za-z]+)>", without_strings)


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_every_placeholder_is_a_whole_json_value(templates, flavour):
    for rule in RULES:
        tr = transformer(templates[flavour], rule)
        names = re.findall(r"<([A-Za-z]+)>", tr["InputTemplate"])
        assert sorted(names) == sorted(tr["InputPathsMap"]), rule
        assert placeholders_outside_strings(tr["InputTemplate"]) == names, f"{rule}: a placeholder in quotes"
        assert names[-1] == "group", f"{rule}: the caller-chosen group must come last"


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_task_rules_target_their_buffer_queues(templates, flavour):
    for rule, buffer in (("TaskRunningRule", "TaskRunningBuffer"), ("TaskStoppedRule", "TaskStoppedBuffer")):
        (target,) = templates[flavour]["Resources"][rule]["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [buffer, "Arn"]}, rule
        assert templates[flavour]["Resources"][buffer]["Type"] == "AWS::SQS::Queue"


def test_sam_and_cdk_trim_alike(templates):
    for rule in RULES:
        assert transformer(templates["sam"], rule) == transformer(templates["cdk"], rule), rule
    assert transformer(templates["sam"], RULES[0]) == transformer(templates["sam"], RULES[1])


def test_the_samples_do_carry_an_environment():
    """Guard of the test itself: the env-override sample has what must not get through."""
    event = json.loads((FIXTURES / SAMPLES[0]).read_text(encoding="utf-8"))
    overrides = event["detail"]["overrides"]["containerOverrides"]
    assert any(o.get("environment") for o in overrides), "the sample lost its environment override"


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_no_environment_reaches_the_target(aws, templates, flavour):
    tr = transformer(templates[flavour], "TaskRunningRule")
    assert len(tr["InputPathsMap"]) <= 100
    run = uuid.uuid4().hex[:10]
    bus = f"tasksub-trim-test-{run}"
    aws.events.create_event_bus(Name=bus)
    url = aws.sqs.create_queue(QueueName=f"tasksub-trim-test-{run}")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"trim-{run}"
    try:
        aws.events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["aws.ecs"]}))
        aws.events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn, "InputTransformer": tr}])
        originals = {}
        for name in SAMPLES:
            event = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
            originals[event["detail"]["taskArn"]] = event
            entry = {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
                "Time": datetime.fromisoformat(event["time"].replace("Z", "+00:00")),
                "EventBusName": bus,
            }
            resp = aws.events.put_events(Entries=[entry])
            assert resp["FailedEntryCount"] == 0, resp

        bodies = []
        while True:
            msgs = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                break
            bodies += [m["Body"] for m in msgs]
        assert len(bodies) == len(SAMPLES), bodies

        for raw in bodies:
            body = json.loads(raw)
            original = originals[body["detail"]["taskArn"]]
            # Nothing of the containers: no key, no value.
            assert not keys_anywhere(body) & {"overrides", "containerOverrides", "environment", "containers"}, raw
            env = [e for o in original["detail"].get("overrides", {}).get("containerOverrides", [])
                   for e in o.get("environment", [])]
            secret_values = strings_anywhere(env) - {""}
            assert not any(v in raw for v in secret_values), raw
            # Shaped like an EventBridge event, with what the parser needs.
            assert set(body) == ENVELOPE_FIELDS, raw
            assert set(body["detail"]) == DETAIL_FIELDS, raw
            for key in DETAIL_FIELDS - {"version"}:
                assert body["detail"][key] == original["detail"][key], key
            assert body["detail"]["version"] == original["detail"]["version"]
            assert isinstance(body["detail"]["version"], int)
            assert body["source"] == "aws.ecs" and body["detail-type"] == "ECS Task State Change"
            assert body["resources"] == original["resources"]
            datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
    finally:
        aws.events.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
        aws.events.delete_rule(Name=rule, EventBusName=bus)
        aws.events.delete_event_bus(Name=bus)
        aws.sqs.delete_queue(QueueUrl=url)
