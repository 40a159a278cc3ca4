"""No queue of the stack itself can fall under the task-queue prefix (issue #22).

The functions' IAM grants reach `<prefix>*` and the sweeper lists ListQueues(QueueNamePrefix=<prefix>). A custom
QueuePrefix may be "<stack name>-" (tasksub-prod- on the stack tasksub-prod), and a queue CloudFormation names
itself is called "<stack name>-<logical id>-<random>", so it would start with the prefix. Every AWS::SQS::Queue of
the templates (raw SAM, transformed SAM, CDK) must therefore carry an explicit QueueName that starts with neither
"tasksub-" nor "tasksub_" (every prefix QueuePrefix's pattern admits, and the default one, start with one of them),
derived from the stack id so that two stacks coexist. Checked by evaluating the templates' own intrinsics on a
stack named like the prefix, with standard and with FIFO topics.
"""

from __future__ import annotations

import re

import pytest

import cfn
from cfn import Resolver, load_template
from conftest import INFRA

SAM_TRANSFORMED = INFRA / "build" / "template.sam.json"
UUID = "0f1e2d3c-4b5a-11f1-8a9b-0a1b2c3d4e5f"
STACK = "tasksub-prod"
FIFO_TOPICS = "arn:aws:sns:us-east-1:123456789012:orders.fifo"
# What each of the stack's queues is called, given the stack's UUID and whether the topics are FIFO.
EXPECTED = {
    "EventDlq": lambda fifo: f"dlq-tasksub-events-{UUID}",
    "TaskQueueDlq": lambda fifo: f"dlq-tasksub-tasks-{UUID}{'.fifo' if fifo else ''}",
    "TaskRunningBuffer": lambda fifo: f"buf-tasksub-running-{UUID}",
    "TaskStoppedBuffer": lambda fifo: f"buf-tasksub-stopped-{UUID}",
}


def templates() -> dict[str, dict]:
    from conftest import CDK_TEMPLATE, SAM_TEMPLATE

    out = {"sam": load_template(SAM_TEMPLATE)}
    for name, path in (("sam-transformed", SAM_TRANSFORMED), ("cdk", CDK_TEMPLATE)):
        if not path.is_file():
            pytest.fail(f"{path} is missing: infra/validate.sh writes it before this step", pytrace=False)
        out[name] = load_template(path)
    return out


TEMPLATES = templates()


def queue_names(template: dict, topics: str, monkeypatch) -> dict[str, str | None]:
    monkeypatch.setitem(cfn.PSEUDO, "AWS::StackName", STACK)
    monkeypatch.setitem(cfn.PSEUDO, "AWS::StackId", f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/{UUID}")
    r = Resolver(template, {"QueuePrefix": f"{STACK}-", "TopicArns": topics, "EnableQueueDlq": "true"})
    return {
        lid: r.resolve(res["Properties"]["QueueName"]) if "QueueName" in res.get("Properties", {}) else None
        for lid, res in template["Resources"].items() if res["Type"] == "AWS::SQS::Queue"
    }


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_queue_of_the_stack_is_named_outside_every_task_queue_prefix(name, fifo, monkeypatch):
    template = TEMPLATES[name]
    prefix_pattern = template["Parameters"]["QueuePrefix"]["AllowedPattern"]
    assert re.fullmatch(prefix_pattern, f"{STACK}-"), "the dangerous prefix is one CloudFormation accepts"
    names = queue_names(template, FIFO_TOPICS if fifo else "", monkeypatch)
    unnamed = sorted(lid for lid, n in names.items() if n is None)
    assert not unnamed, f"{name}: CloudFormation would name {unnamed} '{STACK}-...', under the prefix '{STACK}-'"
    for lid, n in names.items():
        assert isinstance(n, str), (lid, n)
        # Under no prefix at all: each one QueuePrefix admits starts with tasksub- or tasksub_ (the default is
        # tasksub-<8 hex of the stack id>-).
        assert not re.match(r"tasksub[-_]", n), f"{name}: {lid} is named {n!r}, within reach of a task-queue prefix"
        assert UUID in n, f"{name}: {lid} is named {n!r}, not from the stack id: two stacks would collide"
        # SQS: 1-80 characters of [A-Za-z0-9_-], a FIFO queue's name ending in .fifo (counted).
        assert len(n) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+(\.fifo)?", n), (lid, n)
    assert names == {lid: f(fifo) for lid, f in EXPECTED.items()}, f"{name}: the stack's queues changed"
    # A FIFO queue's name must end in .fifo, and only a FIFO queue's may: the buffers are always standard
    # (EventBridge targets redriven to the standard EventDlq), TaskQueueDlq is FIFO exactly with FIFO topics.
    r = Resolver(template, {"QueuePrefix": f"{STACK}-", "TopicArns": FIFO_TOPICS if fifo else "", "EnableQueueDlq": "true"})
    for lid, n in names.items():
        props = template["Resources"][lid]["Properties"]
        # (resolved inside its properties: an Fn::If to AWS::NoValue removes the key)
        is_fifo = str(r.resolve({"FifoQueue": props.get("FifoQueue", False)}).get("FifoQueue")).lower() == "true"
        assert is_fifo == n.endswith(".fifo"), (name, lid, n, is_fifo)
