"""The EventBridge patterns of the SAM template and of the CDK synth output, tested in moto.

For each template and parameter set the two ECS rules are resolved exactly as CloudFormation would
(conditions, !Ref to the list parameters, AWS::NoValue), installed on a private event bus of moto
with an SQS target each, and fed every public sample event (infra/tests/fixtures/ecs-events/) plus
synthesized ones. Then we read both queues and assert exactly which events each rule let through.

moto's TestEventPattern is a no-op, hence PutRule + PutTargets(SQS) + PutEvents.

The expectations are literal tables, not a re-implementation of the pattern: they mirror
tasksub-core's `intent_of` (running = desired RUNNING with a starting/running lastStatus;
stopped = desired STOPPED or lastStatus STOPPED; nothing else) plus cluster/group scoping.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from cfn import Resolver, event_rules

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ecs-events"
MARK = "tasksub-test-case:"

# Rule identified by its (single) target id, the same in SAM and CDK.
RULE_TARGETS = {"on-task-running": "running", "on-task-stopped": "stopped"}

# ----------------------------------------------------------------------------- public samples
SAMPLE_CLUSTERS = [
    "arn:aws:ecs:us-east-1:123456789012:cluster/cluster1",
    "arn:aws:ecs:us-east-1:111122223333:cluster/default",
    "arn:aws:ecs:eu-west-1:0123456789:cluster/Features",
    "arn:aws:ecs:us-west-2:111122223333:cluster/FargateCluster",
    "arn:aws:ecs:us-east-2:XXXXXXXXXXXX:cluster/DemoTrafficGen01-ClusterEB0386A7-sCRgDrfn5BP9",
]

# file -> rule it must reach when all sample clusters are ours and no group filter is set
SAMPLES_ALL_GROUPS = {
    "ec2-task-pending-two-containers-overrides-nri-flex.json": "running",  # PENDING / RUNNING
    "ec2-task-running-container-stopped-old-arn-docs-2016.json": "running",  # RUNNING / RUNNING
    "ec2-task-stopped-user-initiated-capacity-provider-aws-samples.json": "stopped",  # STOPPED / STOPPED
    "fargate-spot-task-termination-notice-partial-docs.json": "stopped",  # RUNNING / STOPPED
    "fargate-task-running-awsvpc-docs.json": "running",
    "fargate-task-running-env-override-dotnet.json": "running",
    "fargate-task-running-exec-enabled-arkime.json": "running",
    "fargate-task-stopped-service-scheduler-exit137-arkime.json": "stopped",
    "ignore-container-instance-state-change-docs.json": None,
    "ignore-deployment-state-change-completed-docs.json": None,
    "ignore-deployment-state-change-failed-docs.json": None,
    "ignore-deployment-state-change-in-progress-docs.json": None,
    "ignore-deployment-state-change-rollback-in-progress-docs.json": None,
    "ignore-service-action-capacity-provider-steady-state-docs.json": None,
    "ignore-service-action-placement-failure-ec2-cpu-docs.json": None,
    "ignore-service-action-placement-failure-fargate-spot-docs.json": None,
    "ignore-service-action-steady-state-docs.json": None,
    "ignore-service-action-task-start-impaired-docs.json": None,
}

SAMPLE_GROUPS = ["service:Webapp", "family:sample-fargate"]
SAMPLES_SOME_GROUPS = {
    **{name: None for name in SAMPLES_ALL_GROUPS},
    "ec2-task-stopped-user-initiated-capacity-provider-aws-samples.json": "stopped",  # service:Webapp
    "fargate-task-running-awsvpc-docs.json": "running",  # family:sample-fargate
    "fargate-task-running-env-override-dotnet.json": "running",  # family:sample-fargate
}

# ----------------------------------------------------------------------------- synthesized events
OUR_A = "arn:aws:ecs:us-east-1:123456789012:cluster/orders-prod"
OUR_B = "arn:aws:ecs:us-east-1:123456789012:cluster/batch-prod"
FOREIGN = "arn:aws:ecs:us-east-1:123456789012:cluster/other-team"
PREFIX_OF_OURS = "arn:aws:ecs:us-east-1:123456789012:cluster/orders-prod-canary"  # ours is a prefix
OTHER_ACCOUNT = "arn:aws:ecs:us-east-1:210987654321:cluster/orders-prod"

STATUSES = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]

# (lastStatus, desiredStatus) -> rule. Mirrors tasksub-core intent_of(); written out, not computed.
BY_STATUS = {
    ("PROVISIONING", "RUNNING"): "running",
    ("PENDING", "RUNNING"): "running",
    ("ACTIVATING", "RUNNING"): "running",
    ("RUNNING", "RUNNING"): "running",
    ("DEACTIVATING", "RUNNING"): None,
    ("STOPPING", "RUNNING"): None,
    ("DEPROVISIONING", "RUNNING"): None,
    ("STOPPED", "RUNNING"): "stopped",
    ("PROVISIONING", "STOPPED"): "stopped",
    ("PENDING", "STOPPED"): "stopped",
    ("ACTIVATING", "STOPPED"): "stopped",
    ("RUNNING", "STOPPED"): "stopped",
    ("DEACTIVATING", "STOPPED"): "stopped",
    ("STOPPING", "STOPPED"): "stopped",
    ("DEPROVISIONING", "STOPPED"): "stopped",
    ("STOPPED", "STOPPED"): "stopped",
}


def _base_event() -> dict:
    return json.loads((FIXTURES / "fargate-task-running-awsvpc-docs.json").read_text(encoding="utf-8"))


def task_event(cluster: str, last: str, desired: str, group: str | None = "service:orders", **extra) -> dict:
    event = _base_event()
    detail = event["detail"]
    task_id = uuid.uuid4().hex
    region, account = cluster.split(":")[3], cluster.split(":")[4]
    cluster_name = cluster.rsplit("/", 1)[1]
    task_arn = f"arn:aws:ecs:{region}:{account}:task/{cluster_name}/{task_id}"
    event["resources"] = [task_arn]
    detail.update(clusterArn=cluster, taskArn=task_arn, lastStatus=last, desiredStatus=desired)
    for container in detail.get("containers", []):
        container["taskArn"] = task_arn
    if group is None:
        detail.pop("group", None)
    else:
        detail["group"] = group
    detail.update(extra)
    return event


def synthetic_cluster_cases() -> list[tuple[str, dict, str | None]]:
    cases = []
    for last in STATUSES:
        for desired in ("RUNNING", "STOPPED"):
            want = BY_STATUS[(last, desired)]
            for label, cluster, ours in (
                ("ours-a", OUR_A, True),
                ("ours-b", OUR_B, True),
                ("foreign", FOREIGN, False),
                ("prefix-of-ours", PREFIX_OF_OURS, False),
                ("other-account", OTHER_ACCOUNT, False),
            ):
                cases.append((f"{label}/{last}/{desired}", task_event(cluster, last, desired), want if ours else None))
    # A task that never reached RUNNING: image pull failed, ECS stops it.
    pull = dict(stoppedReason="CannotPullContainerError: pull image manifest has been retried 5 time(s)",
                stopCode="TaskFailedToStart")
    cases += [
        ("never-ran/PENDING/STOPPED", task_event(OUR_A, "PENDING", "STOPPED", **pull), "stopped"),
        ("never-ran/DEPROVISIONING/STOPPED", task_event(OUR_A, "DEPROVISIONING", "STOPPED", **pull), "stopped"),
        ("never-ran/STOPPED/STOPPED", task_event(OUR_A, "STOPPED", "STOPPED", **pull), "stopped"),
        ("never-ran/foreign", task_event(FOREIGN, "STOPPED", "STOPPED", **pull), None),
        # Standalone RunTask jobs have a family: group; no group filter means they are ours too.
        ("no-group/RUNNING", task_event(OUR_A, "RUNNING", "RUNNING", group=None), "running"),
        ("family-group/RUNNING", task_event(OUR_B, "RUNNING", "RUNNING", group="family:batch"), "running"),
    ]
    # Same detail, but not from ECS / not a task state change.
    spoofed = task_event(OUR_A, "RUNNING", "RUNNING")
    spoofed["source"] = "custom.ecs"
    service_action = task_event(OUR_A, "RUNNING", "RUNNING")
    service_action["detail-type"] = "ECS Service Action"
    cases += [("other-source", spoofed, None), ("other-detail-type", service_action, None)]
    return cases


def synthetic_group_cases() -> list[tuple[str, dict, str | None]]:
    return [
        ("orders/PENDING", task_event(OUR_A, "PENDING", "RUNNING", group="service:orders"), "running"),
        ("orders/RUNNING", task_event(OUR_A, "RUNNING", "RUNNING", group="service:orders"), "running"),
        ("orders/STOPPING", task_event(OUR_A, "STOPPING", "STOPPED", group="service:orders"), "stopped"),
        ("orders/STOPPED", task_event(OUR_A, "STOPPED", "STOPPED", group="service:orders"), "stopped"),
        ("orders/STOPPED-desired-RUNNING", task_event(OUR_A, "STOPPED", "RUNNING", group="service:orders"), "stopped"),
        ("orders/never-ran", task_event(OUR_A, "STOPPED", "STOPPED", group="service:orders",
                                        stoppedReason="CannotPullContainerError: ref not found"), "stopped"),
        ("batch-family/RUNNING", task_event(OUR_A, "RUNNING", "RUNNING", group="family:batch"), "running"),
        ("batch-family/STOPPED", task_event(OUR_A, "STOPPED", "STOPPED", group="family:batch"), "stopped"),
        ("other-service/RUNNING", task_event(OUR_A, "RUNNING", "RUNNING", group="service:web"), None),
        ("other-service/STOPPED", task_event(OUR_A, "STOPPED", "STOPPED", group="service:web"), None),
        ("group-prefix-trick/RUNNING", task_event(OUR_A, "RUNNING", "RUNNING", group="service:orders-canary"), None),
        ("no-group/RUNNING", task_event(OUR_A, "RUNNING", "RUNNING", group=None), None),
        ("no-group/STOPPED", task_event(OUR_A, "STOPPED", "STOPPED", group=None), None),
        ("orders-foreign-cluster/RUNNING", task_event(FOREIGN, "RUNNING", "RUNNING", group="service:orders"), None),
        ("orders-foreign-cluster/STOPPED", task_event(FOREIGN, "STOPPED", "STOPPED", group="service:orders"), None),
        ("orders/DEACTIVATING-desired-RUNNING", task_event(OUR_A, "DEACTIVATING", "RUNNING", group="service:orders"), None),
    ]


def sample_cases(expectations: dict[str, str | None]) -> list[tuple[str, dict, str | None]]:
    files = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert set(files) == set(expectations), "every fixture needs an expectation (and vice versa)"
    return [(name, json.loads((FIXTURES / name).read_text(encoding="utf-8")), expectations[name]) for name in files]


SCENARIOS = {
    "public-samples": ({"ClusterArns": SAMPLE_CLUSTERS}, lambda: sample_cases(SAMPLES_ALL_GROUPS)),
    "public-samples-groups": (
        {"ClusterArns": SAMPLE_CLUSTERS, "ServiceGroups": SAMPLE_GROUPS},
        lambda: sample_cases(SAMPLES_SOME_GROUPS),
    ),
    "synthetic-clusters": ({"ClusterArns": [OUR_A, OUR_B]}, synthetic_cluster_cases),
    "synthetic-groups": ({"ClusterArns": [OUR_A], "ServiceGroups": ["service:orders", "family:batch"]}, synthetic_group_cases),
}


# ----------------------------------------------------------------------------- helpers
def resolved_patterns(template: dict, params: dict) -> dict[str, dict]:
    """rule kind ('running' / 'stopped') -> resolved EventPattern."""
    resolver = Resolver(template, params)
    out = {}
    for lid, res in event_rules(template).items():
        if "Condition" in res:
            assert resolver.condition(res["Condition"]), f"{lid} is conditional and off"
        targets = res["Properties"]["Targets"]
        assert len(targets) == 1, f"{lid}: one target expected"
        kind = RULE_TARGETS[targets[0]["Id"]]
        assert kind not in out, f"two rules for {kind}"
        out[kind] = resolver.resolve(res["Properties"]["EventPattern"])
    assert set(out) == {"running", "stopped"}, f"rules found: {sorted(out)}"
    return out


def entry_for(name: str, event: dict, bus: str) -> dict:
    entry = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": list(event.get("resources", [])) + [MARK + name],
        "EventBusName": bus,
    }
    if "time" in event:
        entry["Time"] = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    return entry


def drain(sqs, url: str) -> list[dict]:
    bodies = []
    while True:
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=600)
        msgs = resp.get("Messages", [])
        if not msgs:
            return bodies
        bodies += [json.loads(m["Body"]) for m in msgs]


def case_name(body: dict) -> str:
    marks = [r for r in body.get("resources", []) if r.startswith(MARK)]
    assert len(marks) == 1, body
    return marks[0][len(MARK):]


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_rules_route_exactly_the_expected_events(aws, templates, flavour, scenario):
    params, make_cases = SCENARIOS[scenario]
    cases = make_cases()
    names = [name for name, _, _ in cases]
    assert len(names) == len(set(names))
    patterns = resolved_patterns(templates[flavour], params)

    run = uuid.uuid4().hex[:10]
    bus = f"tasksub-infra-test-{run}"
    aws.events.create_event_bus(Name=bus)
    queues, rules = {}, []
    try:
        for kind, pattern in patterns.items():
            url = aws.sqs.create_queue(QueueName=f"tasksub-infra-test-{run}-{kind}")["QueueUrl"]
            arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            rule = f"{kind}-{run}"
            aws.events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
            aws.events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
            queues[kind] = url
            rules.append(rule)

        entries = [entry_for(name, event, bus) for name, event, _ in cases]
        for i in range(0, len(entries), 10):
            resp = aws.events.put_events(Entries=entries[i : i + 10])
            assert resp["FailedEntryCount"] == 0, resp

        by_name = {name: event for name, event, _ in cases}
        for kind, url in queues.items():
            bodies = drain(aws.sqs, url)
            got = [case_name(b) for b in bodies]
            want = sorted(name for name, _, expected in cases if expected == kind)
            assert sorted(got) == want, (
                f"[{flavour}/{scenario}] {kind} rule\n  missing: {sorted(set(want) - set(got))}\n"
                f"  unexpected: {sorted(set(got) - set(want))}\n  pattern: {json.dumps(patterns[kind])}"
            )
            for body in bodies:  # the event reached the target intact
                original = by_name[case_name(body)]
                assert body["detail"] == original["detail"]
                assert body["source"] == original["source"]
                assert body["detail-type"] == original["detail-type"]
    finally:
        for rule in rules:
            aws.events.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
            aws.events.delete_rule(Name=rule, EventBusName=bus)
        aws.events.delete_event_bus(Name=bus)
        for url in queues.values():
            aws.sqs.delete_queue(QueueUrl=url)


def test_every_actionable_status_pair_reaches_exactly_one_function():
    """The literal table covers all 16 pairs; only the three 'stopping while desired RUNNING' skip."""
    assert set(BY_STATUS) == {(last, desired) for last in STATUSES for desired in ("RUNNING", "STOPPED")}
    skipped = sorted(pair for pair, rule in BY_STATUS.items() if rule is None)
    assert skipped == [("DEACTIVATING", "RUNNING"), ("DEPROVISIONING", "RUNNING"), ("STOPPING", "RUNNING")]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_sam_and_cdk_resolve_to_the_same_patterns(templates, scenario):
    params, _ = SCENARIOS[scenario]
    assert resolved_patterns(templates["sam"], params) == resolved_patterns(templates["cdk"], params)


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_group_key_only_when_groups_are_given(templates, flavour):
    without = resolved_patterns(templates[flavour], {"ClusterArns": [OUR_A]})
    with_groups = resolved_patterns(templates[flavour], {"ClusterArns": [OUR_A], "ServiceGroups": "service:a,service:b"})
    for kind in ("running", "stopped"):
        assert "group" not in without[kind]["detail"]
        assert with_groups[kind]["detail"]["group"] == ["service:a", "service:b"]
        assert without[kind]["detail"]["clusterArn"] == [OUR_A]
        assert without[kind]["source"] == ["aws.ecs"]
        assert without[kind]["detail-type"] == ["ECS Task State Change"]


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_rules_target_dlq_and_retry(templates, flavour):
    template = templates[flavour]
    for lid, res in template["Resources"].items():
        if res["Type"] != "AWS::Events::Rule":
            continue
        for target in res["Properties"]["Targets"]:
            assert "Arn" in target["DeadLetterConfig"], lid
            assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1 or lid.startswith("Sweep"), lid


def test_cdk_has_the_same_parameters_as_sam(templates):
    sam = templates["sam"]["Parameters"]
    cdk = templates["cdk"]["Parameters"]
    assert sorted(sam) == sorted(cdk)
    for name, spec in sam.items():
        for key in ("Type", "Default", "AllowedValues"):
            if name == "Architecture" and key in ("Default", "AllowedValues"):
                continue  # CDK bundles for one architecture at synth time (context `architecture`)
            assert copy.deepcopy(spec.get(key)) == cdk[name].get(key), f"{name}.{key}"
