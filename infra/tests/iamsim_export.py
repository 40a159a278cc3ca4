"""Writes what infra/iamsim evaluates with AWS's request evaluation logic (@cloud-copilot/iam-simulate):
one JSON file per template and deployment, resolved by the IAM oracle's own CloudFormation resolver
(test_iam.py), so both evaluators judge exactly the same statements.

    .venv/bin/python infra/tests/iamsim_export.py infra/build/iamsim

Each file holds: the deployment's parameters and the functions' resolved environment (the iam-simulate test
builds each task queue's policy from it with tasksub-core, `cargo run --example queue_policy`); every role's
ARN and identity statements; every call of the call-coverage table (CODE_CALLS) as (action, resource,
request context); the event functions' buffer queues; the resource policies of the stack (EventDlq,
TaskQueueDlq, the buffers); and, for a topic of another
account, the owner's snippet (infra/snippets/foreign-topic-policy.yaml) as that owner would deploy it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import test_iam as oracle  # noqa: E402

# The application's task role (the TaskRoleName parameter of oracle.PARAMETERS) and an operator's role.
APP_ROLE = f"arn:aws:iam::{oracle.ACCOUNT}:role/{oracle.PARAMETERS['TaskRoleName']}"
ADMIN_ROLE = f"arn:aws:iam::{oracle.ACCOUNT}:role/ops/queue-admin"

# Optional settings left at their defaults (the oracle's placeholders would reach tasksub-core as values).
DEFAULTS = {"TopicSettings": "", "FilterPolicy": "", "FilterPolicyScope": "", "ConsumerRoleArns": [""],
            "QueueAdminRoleArns": [""]}
# The oracle's deployments with the task queue isolation on, and one with it off.
SCENARIOS = {
    **{f"{name}-isolated": {**DEFAULTS, **params, "ConsumerRoleArns": [APP_ROLE], "QueueAdminRoleArns": [ADMIN_ROLE]}
       for name, params in oracle.DEPLOYMENTS.items()},
    "two-topics-shared": {**DEFAULTS, **oracle.DEPLOYMENTS["two-topics"]},
}


def export(name: str, scenario: str) -> dict:
    params = SCENARIOS[scenario]
    tpl = oracle.template(name)
    d = oracle.Deployment(tpl, params)
    env = {k: v for k, v in d.v.alts(d.environment())[0].items()}
    roles = {}
    for role in oracle.CODE_CALLS:
        arn = APP_ROLE if role == "TaskRolePolicy" else d.role_arn(role)
        roles[role] = {"arn": arn, "statements": d.statements.get(role, [])}
    calls = {
        role: [
            {"action": action, "resource": resource, "context": ctx}
            for action in sorted(oracle.needed_actions(role))
            for resource, ctx in d.requests(role, action)
        ]
        for role in oracle.CODE_CALLS
    }
    resource_policies: dict[str, dict] = {}
    for holder, kind, st in oracle.resolved_statements(tpl, params):
        if kind == "resource":
            resource_policies.setdefault(holder, {"Version": "2012-10-17", "Statement": []})["Statement"].append(st)
    # The stack's queues: the DLQs, and the event functions' buffer queues (their event source mappings receive
    # and delete with the function's role).
    queues = {lid: d.v.getatt(lid, "Arn") for lid in ("EventDlq", "TaskQueueDlq", *oracle.BUFFER_OF.values())}
    buffers = {role: queues[lid] for role, lid in oracle.BUFFER_OF.items()}
    rules = {lid: d.v.getatt(lid, "Arn") for lid, r in tpl["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    snippets = {
        topic: {"Version": "2012-10-17", "Statement": oracle.snippet_statements(d, topic)}
        for topic in d.topics if topic.split(":")[4] != oracle.ACCOUNT
    }
    return {
        "template": name,
        "scenario": scenario,
        "account": oracle.ACCOUNT,
        "region": oracle.REGION,
        "stack": d.stack,
        "prefix": d.prefix,
        "fifo": d.fifo,
        "topics": d.topics,
        "taskId": oracle.TASK_ID,
        "appRole": APP_ROLE,
        "adminRole": ADMIN_ROLE,
        "isolated": any(params.get("ConsumerRoleArns", [])),
        "environment": env,
        "roles": roles,
        "calls": calls,
        "queues": queues,
        "buffers": buffers,
        "rules": rules,
        "resourcePolicies": resource_policies,
        "foreignTopicPolicies": snippets,
        "tableArn": d.v.getatt("Table", "Arn"),
    }


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    written = 0
    for name in oracle.TEMPLATES:
        for scenario in SCENARIOS:
            (out / f"{name}--{scenario}.json").write_text(json.dumps(export(name, scenario), indent=1), encoding="utf-8")
            written += 1
    print(f"iamsim_export: {written} deployments in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
