"""The relay's sample task definition (infra/relay/task-definition.json) grants what the stack's
TaskRolePolicy grants, for ONE stack: never a bare `tasksub-*` queue pattern, which covers every tasksub
stack of the account (issue #22), and the message actions only on queues tagged with that stack."""

from __future__ import annotations

import json
from pathlib import Path

import test_iam as oracle

SAMPLE = Path(__file__).resolve().parents[1] / "relay" / "task-definition.json"


def test_the_sample_policy_is_one_stacks_task_role_policy():
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    statements = sample["_taskRolePolicy"]["Statement"]
    d = oracle.Deployment(oracle.template("sam-transformed"), oracle.DEPLOYMENTS["two-topics"])
    stack = d.statements["TaskRolePolicy"]
    assert [s["Sid"] for s in statements] == [s["Sid"] for s in stack]
    for mine, theirs in zip(statements, stack):
        assert sorted(oracle.as_list(mine["Action"])) == sorted(oracle.as_list(theirs["Action"])), mine["Sid"]
        assert set(mine.get("Condition", {})) == set(theirs.get("Condition", {})), mine["Sid"]
        for resource in oracle.as_list(mine["Resource"]):
            queue = resource.split(":")[-1]
            assert queue not in ("tasksub-*", "tasksub_*", "*"), f"{mine['Sid']}: {resource} covers every stack"
    prefix = next(e["value"] for e in sample["containerDefinitions"][1]["environment"]
                  if e["name"] == "TASKSUB_QUEUE_PREFIX")
    assert statements[0]["Resource"].endswith(f":{prefix}*")
    assert statements[1]["Condition"]["StringEquals"]["aws:ResourceTag/tasksub:stack"] != "tasksub"
