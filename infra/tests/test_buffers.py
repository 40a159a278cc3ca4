"""The buffer queues in front of the event functions, in SAM (as written and transformed) and CDK alike.

Nothing is reserved (Lambda refuses a reservation that leaves less than 100 unreserved, so a template that
reserves fails in new accounts); each event function is driven by its own buffer queue through an event
source mapping whose MaximumConcurrency is EventFunctionConcurrency, with batch item failures; each buffer
dead-letters to EventDlq after 10 receives and hides a received record for six times the function's timeout.
"""

from __future__ import annotations

import json

import pytest

from conftest import INFRA

BUFFERS = {"OnTaskRunningFunction": "TaskRunningBuffer", "OnTaskStoppedFunction": "TaskStoppedBuffer"}
RULES = {"TaskRunningBuffer": "TaskRunningRule", "TaskStoppedBuffer": "TaskStoppedRule"}


def flavours(templates) -> dict[str, dict]:
    out = dict(templates)
    transformed = INFRA / "build" / "template.sam.json"
    if transformed.is_file():
        out["sam-transformed"] = json.loads(transformed.read_text(encoding="utf-8"))
    return out


def timeout_of(template: dict, fn: str) -> int:
    props = template["Resources"][fn]["Properties"]
    return int(props.get("Timeout") or template.get("Globals", {}).get("Function", {}).get("Timeout"))


@pytest.mark.parametrize("flavour", ["sam", "sam-transformed", "cdk"])
def test_nothing_reserved_and_each_buffer_drives_its_function(templates, flavour):
    all_templates = flavours(templates)
    if flavour not in all_templates:
        pytest.fail("infra/build/template.sam.json is missing: run infra/validate.sh", pytrace=False)
    t = all_templates[flavour]
    resources = t["Resources"]
    for lid, r in resources.items():
        assert "ReservedConcurrentExecutions" not in r.get("Properties", {}), f"{lid} reserves concurrency"
    assert t["Parameters"]["EventFunctionConcurrency"]["MinValue"] == 2  # ScalingConfig's minimum
    mappings = {r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: r["Properties"]
                for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    assert set(mappings) == set(BUFFERS.values()), mappings
    for fn, buffer in BUFFERS.items():
        m = mappings[buffer]
        assert m["FunctionName"] == {"Ref": fn}, (flavour, buffer)
        assert m["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "EventFunctionConcurrency"}}, (flavour, buffer)
        assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"], (flavour, buffer)
        assert m["BatchSize"] == 10 and m.get("MaximumBatchingWindowInSeconds", 0) == 0, (flavour, buffer)
        q = resources[buffer]["Properties"]
        assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["EventDlq", "Arn"]}, (flavour, buffer)
        assert int(q["RedrivePolicy"]["maxReceiveCount"]) == 10, (flavour, buffer)
        assert int(q["VisibilityTimeout"]) == 6 * timeout_of(t, fn), (flavour, buffer)
        assert q["SqsManagedSseEnabled"] is True
        dlq = resources["EventDlq"]["Properties"]["MessageRetentionPeriod"]
        assert int(q["MessageRetentionPeriod"]) < int(dlq), "a moved message keeps its enqueue time"
        # Only the buffer's own rule may send to it, and only over TLS.
        policies = [r["Properties"] for r in resources.values()
                    if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": buffer}]]
        assert len(policies) == 1, (flavour, buffer)
        allow, deny = policies[0]["PolicyDocument"]["Statement"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [RULES[buffer], "Arn"]}}}
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # EventBridge invokes no event function directly: only the sweeper has a permission.
    permitted = {r["Properties"]["FunctionName"]["Fn::GetAtt"][0] for r in resources.values()
                 if r["Type"] == "AWS::Lambda::Permission"}
    assert permitted == {"SweeperFunction"}, permitted
