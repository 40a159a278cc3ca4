"""A FIFO deployment gets a FIFO task-queue dead-letter queue (issue #21, case 10).

SQS refuses a standard dead-letter queue for a FIFO queue (and the reverse): with FIFO topics every task queue is
FIFO, so a standard TaskQueueDlq made every CreateQueue fail (InvalidParameterCombination), and the settings now
refuse the pair at cold start. Both templates derive the condition FifoTopics from the topic ARNs: they hold
".fifo", which TopicArns' pattern admits only as a name's end (the functions refuse a mix of FIFO and standard
topics; empty TopicArns = the created standard topic). The list is joined before it is split, so no Fn::Select
indexes the parameter itself (moto's CloudFormation fails on an empty list's element 0). TaskQueueDlq is FIFO
under the condition, named
`dlq-tasksub-tasks-<stack uuid>.fifo`. Checked here by evaluating the templates' own intrinsics (raw SAM,
transformed SAM, CDK); infra/tests/test_deploy.py creates a FIFO deployment with moto's CloudFormation, and
infra/iamsim builds the FIFO deployment's queue policy with tasksub-core from the resolved environment (which
refuses a standard DLQ for FIFO topics).
"""

from __future__ import annotations

import re

import pytest

from cfn import Resolver, load_template
from conftest import INFRA

SAM_TRANSFORMED = INFRA / "build" / "template.sam.json"
A, B = "123456789012", "210987654321"
# (TopicArns, FIFO?): what the functions call FIFO is "every topic ends in .fifo" (a mix is refused).
CASES = [
    ([""], False),  # no topic given: the stack creates a standard one
    ([f"arn:aws:sns:us-east-1:{A}:orders"], False),
    ([f"arn:aws:sns:us-east-1:{B}:orders", f"arn:aws:sns:eu-west-1:{A}:flags"], False),
    ([f"arn:aws:sns:us-east-1:{A}:fifo"], False),  # a standard topic called "fifo"
    ([f"arn:aws:sns:us-east-1:{A}:orders_fifo-events"], False),
    ([f"arn:aws-cn:sns:cn-north-1:{A}:orders.fifo"], True),
    ([f"arn:aws:sns:us-east-1:{B}:orders.fifo", f"arn:aws:sns:eu-west-1:{A}:flags.fifo"], True),
    ([f"arn:aws:sns:us-east-1:{A}:{'n' * 251}.fifo"], True),
]


def templates() -> dict[str, dict]:
    from conftest import CDK_TEMPLATE, SAM_TEMPLATE

    out = {"sam": load_template(SAM_TEMPLATE)}
    for name, path in (("sam-transformed", SAM_TRANSFORMED), ("cdk", CDK_TEMPLATE)):
        if not path.is_file():
            pytest.fail(f"{path} is missing: infra/validate.sh writes it before this step", pytrace=False)
        out[name] = load_template(path)
    return out


TEMPLATES = templates()


@pytest.mark.parametrize("topics,fifo", CASES, ids=[f"{'fifo' if f else 'standard'}-{i}" for i, (_, f) in enumerate(CASES)])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_the_task_queue_dlq_is_fifo_exactly_when_the_topics_are(name, topics, fifo):
    tpl = TEMPLATES[name]
    pattern = tpl["Parameters"]["TopicArns"]["AllowedPattern"]
    assert all(re.fullmatch(pattern, t) for t in topics), "a case CloudFormation would refuse"
    given = [t for t in topics if t]
    assert fifo == (bool(given) and all(t.endswith(".fifo") for t in given)), "the case says what the functions say"
    r = Resolver(tpl, {"TopicArns": topics, "EnableQueueDlq": "true"})
    assert r.condition("FifoTopics") is fifo
    dlq = tpl["Resources"]["TaskQueueDlq"]
    assert dlq["Condition"] == "CreateQueueDlq"
    props = r.resolve(dlq["Properties"])
    name_ = props["QueueName"]
    uuid = "1c2fa620-982a-11e3-aff7-50e2416294e0"  # cfn.PSEUDO's stack id
    assert name_ == f"dlq-tasksub-tasks-{uuid}{'.fifo' if fifo else ''}"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,75}(\.fifo)?", name_) and len(name_) <= 80
    assert props.get("FifoQueue") == (True if fifo else None)
    assert "FifoQueue" in props or not fifo
    # The functions get exactly this queue as TASKSUB_QUEUE_DLQ_ARN (a GetAtt of it, when EnableQueueDlq).
    envs = [tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables")] + [
        res["Properties"].get("Environment", {}).get("Variables")
        for res in tpl["Resources"].values() if res["Type"] in ("AWS::Lambda::Function", "AWS::Serverless::Function")
    ]
    dlq_refs = [env["TASKSUB_QUEUE_DLQ_ARN"] for env in envs if env and "TASKSUB_QUEUE_DLQ_ARN" in env]
    assert dlq_refs, "no function gets TASKSUB_QUEUE_DLQ_ARN"
    for ref in dlq_refs:
        assert ref == {"Fn::If": ["CreateQueueDlq", {"Fn::GetAtt": ["TaskQueueDlq", "Arn"]}, {"Ref": "AWS::NoValue"}]}


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_a_fifo_subscription_dlq_is_accepted(name):
    pattern = TEMPLATES[name]["Parameters"]["SubscriptionDlqArn"]["AllowedPattern"]
    for ok in ["", f"arn:aws:sqs:us-east-1:{A}:dlq", f"arn:aws:sqs:us-east-1:{A}:dlq.fifo",
               f"arn:aws:sqs:us-east-1:{A}:{'q' * 75}.fifo", f"arn:aws-us-gov:sqs:us-gov-west-1:{A}:{'q' * 80}"]:
        assert re.fullmatch(pattern, ok), ok
    for bad in [f"arn:aws:sqs:us-east-1:{A}:dlq.fifo.fifo", f"arn:aws:sqs:us-east-1:{A}:{'q' * 76}.fifo",
                f"arn:aws:sqs:us-east-1:{A}:*", f"arn:aws:sqs:us-east-1:{A}:a.b", f"arn:aws:sns:us-east-1:{A}:dlq"]:
        assert not re.fullmatch(pattern, bad), bad
