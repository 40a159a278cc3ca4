"""The SAM template is held to the CDK app's assertions: what a deployment runs, alarms on and admits must be
the same in the transformed SAM template (infra/build/template.sam.json) and the CDK synth, resource by
resource, so every assertion of infra/cdk/test (node --test) binds the SAM template too.

Before this test, SAM could lose its mass-orphan alarm, its reserved concurrency, the TLS Deny of its event
DLQ or the per-rule condition of its event DLQ policy with every infra step still passing (issue #22, item 7).
`test_each_known_break_of_the_sam_template_is_caught` keeps those breaks caught.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1]
SAM = INFRA / "build" / "template.sam.json"
CDK = Path(os.environ.get("TASKSUB_CDK_TEMPLATE", INFRA / "build" / "cdk" / "Tasksub.template.json"))

# Per resource type: the properties that must be equal (None: every property).
COMPARED: dict[str, list[str] | None] = {
    "AWS::CloudWatch::Alarm": None,
    "AWS::SQS::Queue": None,
    "AWS::SQS::QueuePolicy": None,
    "AWS::SNS::Topic": None,
    "AWS::DynamoDB::Table": None,
    "AWS::Events::Rule": None,
    "AWS::Lambda::Permission": None,
    "AWS::IAM::ManagedPolicy": None,
    "AWS::Lambda::Function": ["ReservedConcurrentExecutions", "Timeout", "MemorySize", "Runtime", "Handler",
                              "Architectures", "Environment", "LoggingConfig", "Role"],
}
# Resource attributes compared with the properties.
ATTRIBUTES = ["Condition", "DeletionPolicy", "UpdateReplacePolicy"]
# CDK's own attributes with no effect on a deployment (and SAM's descriptions of functions).
IGNORED = {
    ("AWS::SQS::Queue", "DeletionPolicy"), ("AWS::SQS::Queue", "UpdateReplacePolicy"),
}


def load(path: Path) -> dict:
    if not path.is_file():
        pytest.fail(f"{path} is missing: infra/validate.sh writes it before this step", pytrace=False)
    return json.loads(path.read_text(encoding="utf-8"))


def canonical(value: Any) -> Any:
    """Lists of statements and dimensions compare as sets; everything else as it is."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if all(isinstance(v, dict) for v in items) and items:
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


def view(template: dict) -> dict[str, dict]:
    """logical id -> the compared part of every resource of a compared type."""
    out = {}
    for lid, r in template.get("Resources", {}).items():
        rtype = r.get("Type")
        if rtype not in COMPARED:
            continue
        props = r.get("Properties", {}) or {}
        keys = COMPARED[rtype]
        if keys is not None:
            props = {k: props[k] for k in keys if k in props}
        if rtype == "AWS::Lambda::Function" and "Environment" in props:
            props = {**props, "Environment": props["Environment"].get("Variables", {})}
        attrs = {a: r[a] for a in ATTRIBUTES if a in r and (rtype, a) not in IGNORED}
        out[lid] = canonical({"Type": rtype, **attrs, "Properties": props})
    return out


def invoke_configs(template: dict) -> dict[str, dict]:
    """Function logical id -> its async invoke configuration (SAM and CDK name these resources differently)."""
    out = {}
    for r in template["Resources"].values():
        if r.get("Type") == "AWS::Lambda::EventInvokeConfig":
            props = dict(r["Properties"])
            fn = props.pop("FunctionName")["Ref"]
            props.pop("Qualifier", None)
            out[fn] = canonical({"Condition": r.get("Condition"), **props})
    return out


def differences(sam: dict, cdk: dict) -> list[str]:
    problems = []
    a, b = view(sam), view(cdk)
    for lid in sorted(set(a) | set(b)):
        if lid not in a:
            problems.append(f"{lid}: in the CDK app, missing from the SAM template")
        elif lid not in b:
            problems.append(f"{lid}: in the SAM template, missing from the CDK app")
        elif a[lid] != b[lid]:
            problems.append(f"{lid}: SAM {json.dumps(a[lid], sort_keys=True)}\n    != CDK {json.dumps(b[lid], sort_keys=True)}")
    if invoke_configs(sam) != invoke_configs(cdk):
        problems.append(f"async invoke configs: SAM {invoke_configs(sam)} != CDK {invoke_configs(cdk)}")
    if canonical(sam.get("Rules", {})) != canonical(cdk.get("Rules", {})):
        problems.append("Rules sections differ")
    for name in sorted(set(sam["Parameters"]) | set(cdk["Parameters"])):
        p, q = sam["Parameters"].get(name), cdk["Parameters"].get(name)
        if name == "Architecture":  # CDK bundles at synth time: only the synthesized architecture is allowed
            continue
        keys = ["Type", "Default", "AllowedPattern", "AllowedValues", "MinValue", "MaxValue", "MinLength"]
        if p is None or q is None or {k: p.get(k) for k in keys} != {k: q.get(k) for k in keys}:
            problems.append(f"parameter {name}: SAM {p} != CDK {q}")
    sam_groups, cdk_groups = parameter_groups(sam), parameter_groups(cdk)
    if sam_groups != cdk_groups:
        problems.append(f"parameter groups: SAM {sam_groups} != CDK {cdk_groups}")
    for which, tpl, groups in (("SAM", sam, sam_groups), ("CDK", cdk, cdk_groups)):
        listed = [name for g in groups for name in g["Parameters"]]
        if sorted(listed) != sorted(tpl["Parameters"]):
            problems.append(f"{which}: the parameter groups must list every parameter once: {sorted(listed)} "
                            f"vs {sorted(tpl['Parameters'])}")
    return problems


def parameter_groups(template: dict) -> list:
    """The console's parameter groups (AWS::CloudFormation::Interface)."""
    return template.get("Metadata", {}).get("AWS::CloudFormation::Interface", {}).get("ParameterGroups", [])


def test_the_sam_template_deploys_what_the_cdk_app_deploys():
    problems = differences(load(SAM), load(CDK))
    assert not problems, "SAM and CDK differ:\n  " + "\n  ".join(problems)


def _break(template: dict, how: str) -> dict:
    t = copy.deepcopy(template)
    res = t["Resources"]
    if how == "delete the mass-orphan alarm":
        del res["SweeperOrphansRemovedAlarm"]
    elif how == "remove or change the reserved concurrency":
        props = res["OnTaskRunningFunction"]["Properties"]
        if props.pop("ReservedConcurrentExecutions", None) is None:
            props["ReservedConcurrentExecutions"] = 5
    elif how == "widen the event DLQ policy to any rule":
        st = res["EventDlqPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        st["Condition"] = {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/*"}}
    elif how == "strip the event DLQ's TLS Deny":
        doc = res["EventDlqPolicy"]["Properties"]["PolicyDocument"]
        doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "DenyInsecureTransport"]
    elif how == "drop a rule delivery alarm":
        del res["TaskStoppedRuleInvocationsFailedToBeSentToDlqAlarm"]
    elif how == "let the task DLQ be named by CloudFormation":
        res["TaskQueueDlq"]["Properties"].pop("QueueName")
    elif how == "let a buffer queue be named by CloudFormation":
        res["TaskStoppedBuffer"]["Properties"].pop("QueueName")
    elif how == "accept cluster names":
        t["Parameters"]["ClusterArns"].pop("AllowedPattern")
    elif how == "forget the settings generation in a function's environment":
        res["OnTaskStoppedFunction"]["Properties"]["Environment"]["Variables"].pop("TASKSUB_SETTINGS_GENERATION")
    elif how == "keep the task DLQ standard with FIFO topics":
        res["TaskQueueDlq"]["Properties"].pop("FifoQueue")
    elif how == "refuse a FIFO subscription DLQ":
        t["Parameters"]["SubscriptionDlqArn"]["AllowedPattern"] = "^(|arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80})$"
    elif how == "leave a parameter out of the console's groups":
        groups = t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
        for g in groups:
            g["Parameters"] = [p for p in g["Parameters"] if p != "SweepAuditPerRun"]
    else:
        raise ValueError(how)
    return t


@pytest.mark.parametrize("how", [
    "delete the mass-orphan alarm",
    "remove or change the reserved concurrency",
    "widen the event DLQ policy to any rule",
    "strip the event DLQ's TLS Deny",
    "drop a rule delivery alarm",
    "let the task DLQ be named by CloudFormation",
    "let a buffer queue be named by CloudFormation",
    "accept cluster names",
    "forget the settings generation in a function's environment",
    "keep the task DLQ standard with FIFO topics",
    "refuse a FIFO subscription DLQ",
    "leave a parameter out of the console's groups",
])
def test_each_known_break_of_the_sam_template_is_caught(how):
    sam, cdk = load(SAM), load(CDK)
    assert differences(sam, cdk) == [], "the templates must agree before a break can be seen"
    assert differences(_break(sam, how), cdk), f"{how}: the SAM template was broken and nothing noticed"
