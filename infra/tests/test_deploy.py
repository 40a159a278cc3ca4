"""Deploy test on the emulator: both templates through moto's CloudFormation, then ECS events through the rules.

The transformed SAM template (infra/build/template.sam.json, made by validate.sh's SAM transform step, or
here when missing) and the CDK synth are created with CreateStack on the moto the tests run. Then:

- every resource of the template is created, except the types moto's CloudFormation cannot create, which
  are printed and must be exactly NOT_CREATED_BY_MOTO (a new type, or one moto learns, fails the test);
- the task rules target their buffer queues with the trimmed-event transformer and EventDlq as DLQ, the
  sweep rule targets the sweeper; each buffer redrives to EventDlq and feeds its function through an event
  source mapping; the DLQs exist; the alarms are declared on the created resources;
- the public ECS sample events go through PutEvents on the default bus, and each buffer queue receives
  exactly the trimmed event of the samples its rule matches: the envelope and six detail fields, none of
  the container environment; hostile groups through the deployed stopped rule stay values; nothing is
  dead-lettered;
- deleting the stack removes the rules;
- a deployment with FIFO topics gets a FIFO task-queue DLQ (issue #21, case 10), which its functions get as
  TASKSUB_QUEUE_DLQ_ARN and a FIFO task queue can redrive to (moto refuses a standard one, as SQS does), and the
  settings generation and audit size reach the functions.

The event source mappings are disabled, and the sweep rule's target removed, before the events are sent:
moto runs a mapped function in Docker, which this machine does not have, and it would match every event
against the schedule rule and fail on its Lambda target. What a function does with a buffer's batch is tested in Rust
(functions/src/batch.rs, tests/tests/injection.rs).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
import zipfile
from datetime import datetime
from pathlib import Path

import boto3
import pytest

from conftest import INFRA, REGION
from test_event_injection import hostile_groups
from test_rule_patterns import FIXTURES, SAMPLE_CLUSTERS, SAMPLES_ALL_GROUPS

SAM_JSON = INFRA / "build" / "template.sam.json"
ACCOUNT = "123456789012"
MARK = "tasksub-deploy-case:"

# Resource types moto 5.2.5's CloudFormation cannot create (it warns and skips them). Asserted, not ignored.
NOT_CREATED_BY_MOTO = {"AWS::CloudWatch::Alarm", "AWS::Lambda::EventInvokeConfig", "AWS::SQS::QueuePolicy"}
# What a trimmed event holds (core/src/event.rs, decide.rs).
DETAIL_FIELDS = {"taskArn", "clusterArn", "lastStatus", "desiredStatus", "version", "group"}
ENVELOPE_FIELDS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
# Samples that lack a field the transformer maps, and are not sent: the docs snippet has no time, region,
# version or group, and the 2016-era sample (edited by New Relic) predates the task group, which ECS now
# sets on every task (RunTask's default is family:<name>, ECS API reference). AWS documents that a variable
# whose path is missing "isn't created"; what it then sends for a placeholder outside quotes is not
# documented, and moto leaves the placeholder in place (invalid JSON). Such an event, if ECS sent one,
# would be refused as malformed and dead-lettered; the sweeper still reconciles its task.
INCOMPLETE_SAMPLES = {
    "fargate-spot-task-termination-notice-partial-docs.json",
    "ec2-task-pending-two-containers-overrides-nri-flex.json",
}


@pytest.fixture(scope="module")
def clients(moto_endpoint):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)

    class Clients:
        cfn = session.client("cloudformation", endpoint_url=moto_endpoint)
        events = session.client("events", endpoint_url=moto_endpoint)
        sqs = session.client("sqs", endpoint_url=moto_endpoint)
        s3 = session.client("s3", endpoint_url=moto_endpoint)
        lam = session.client("lambda", endpoint_url=moto_endpoint)

    return Clients


def sam_template() -> dict:
    if not SAM_JSON.is_file():
        tool = INFRA / "tools" / "sam_translate.py"
        python = INFRA.parent / ".venv-infra" / "bin" / "python"
        if not python.is_file():
            pytest.fail(f"{SAM_JSON} is missing and {python} does not exist: run infra/validate.sh", pytrace=False)
        subprocess.run([str(python), str(tool), str(INFRA / "template.yaml"), str(SAM_JSON)], check=True,
                       env={"AWS_DEFAULT_REGION": REGION, "PATH": "/usr/bin:/bin"})
    return json.loads(SAM_JSON.read_text(encoding="utf-8"))


def upload_code(clients, template: dict) -> None:
    """Puts a zip where each function's Code points (moto's Lambda reads it; nothing runs it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    for res in template["Resources"].values():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        code = res["Properties"]["Code"]
        bucket = code["S3Bucket"]
        if isinstance(bucket, dict):
            bucket = bucket["Fn::Sub"].replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
        clients.s3.create_bucket(Bucket=bucket)
        clients.s3.put_object(Bucket=bucket, Key=code["S3Key"], Body=buf.getvalue())


def expected_resources(template: dict) -> dict[str, str]:
    """Logical id -> type of every resource the default parameters create (only the HasTaskRole and
    HasAlarmTopic conditions are false: no task role given, AlarmTopicArn NONE)."""
    false = {"HasTaskRole", "HasAlarmTopic", "HasServiceGroups", "HasTopicSettings", "HasFilterPolicy",
             "HasFilterPolicyScope", "HasSubscriptionDlq"}
    return {lid: r["Type"] for lid, r in template["Resources"].items() if r.get("Condition") not in false}


def queue_arn(clients, url: str) -> str:
    return clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(clients, url: str) -> list[str]:
    bodies = []
    while True:
        msgs = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           VisibilityTimeout=600).get("Messages", [])
        if not msgs:
            return bodies
        bodies += [m["Body"] for m in msgs]


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
    return dict(pairs)


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_the_stack_deploys_and_its_buffers_receive_only_trimmed_events(clients, templates, flavour):
    template = sam_template() if flavour == "sam" else templates["cdk"]
    upload_code(clients, template)
    stack = f"tasksub-deploy-{flavour}-{uuid.uuid4().hex[:8]}"
    params = {"ClusterArns": ",".join(SAMPLE_CLUSTERS), "AlarmTopicArn": "NONE"}
    clients.cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        status = clients.cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        assert status == "CREATE_COMPLETE", status
        # moto lists a resource it skipped as an empty summary (no logical id, no type).
        created = {r["LogicalResourceId"]: r for r in
                   clients.cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
                   if r["LogicalResourceId"]}
        physical = {lid: r["PhysicalResourceId"] for lid, r in created.items()}

        # ---- every resource created, but the types moto cannot create (printed, and exactly the known list)
        expected = expected_resources(template)
        missing = {lid: t for lid, t in expected.items() if lid not in created}
        print(f"\n[{flavour}] {len(created)} of {len(expected)} resources created; not created by moto: "
              + ", ".join(f"{lid} ({t})" for lid, t in sorted(missing.items())))
        assert set(missing.values()) == NOT_CREATED_BY_MOTO, sorted(missing.items())
        assert set(created) <= set(expected), sorted(set(created) - set(expected))
        alarms = [lid for lid, t in expected.items() if t == "AWS::CloudWatch::Alarm"]
        assert {"EventDlqDepthAlarm", "TaskQueueDlqDepthAlarm", "OnTaskRunningErrorsAlarm",
                "OnTaskStoppedErrorsAlarm", "SweeperErrorsAlarm"} <= set(alarms), alarms
        for lid in alarms:
            for ref in re.findall(r'"(?:Ref|Fn::GetAtt)": \[?"([A-Za-z0-9]+)"', json.dumps(template["Resources"][lid])):
                assert ref in created or ref in template["Parameters"] or ref.startswith("AWS::"), (lid, ref)

        # ---- DLQs and buffers
        arns = {lid: queue_arn(clients, physical[lid])
                for lid in ("EventDlq", "TaskQueueDlq", "TaskRunningBuffer", "TaskStoppedBuffer")}
        # a standard topic: a standard task-queue DLQ, which the functions get
        dlq_attrs = clients.sqs.get_queue_attributes(QueueUrl=physical["TaskQueueDlq"], AttributeNames=["All"])["Attributes"]
        assert dlq_attrs.get("FifoQueue", "false") == "false" and not arns["TaskQueueDlq"].endswith(".fifo")
        for lid in ("OnTaskRunningFunction", "OnTaskStoppedFunction", "SweeperFunction"):
            env = clients.lam.get_function_configuration(FunctionName=physical[lid])["Environment"]["Variables"]
            assert env["TASKSUB_QUEUE_DLQ_ARN"] == arns["TaskQueueDlq"], lid
            assert str(env["TASKSUB_SETTINGS_GENERATION"]) == "0", lid  # moto keeps a Number parameter a number
        # named from the stack id, outside every task-queue prefix (infra/tests/test_queue_names.py)
        stack_uuid = clients.cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackId"].split("/")[2]
        assert arns["EventDlq"].endswith(f":dlq-tasksub-events-{stack_uuid}"), arns["EventDlq"]
        assert arns["TaskRunningBuffer"].endswith(f":buf-tasksub-running-{stack_uuid}"), arns["TaskRunningBuffer"]
        assert arns["TaskStoppedBuffer"].endswith(f":buf-tasksub-stopped-{stack_uuid}"), arns["TaskStoppedBuffer"]
        for buffer in ("TaskRunningBuffer", "TaskStoppedBuffer"):
            attrs = clients.sqs.get_queue_attributes(QueueUrl=physical[buffer], AttributeNames=["All"])["Attributes"]
            redrive = json.loads(attrs["RedrivePolicy"])
            assert redrive["deadLetterTargetArn"] == arns["EventDlq"], buffer
            assert int(redrive["maxReceiveCount"]) == 10
            assert attrs["VisibilityTimeout"] == "180"

        # ---- rules wired to their targets
        functions = {lid: clients.lam.get_function(FunctionName=physical[lid])["Configuration"]["FunctionArn"]
                     for lid in ("OnTaskRunningFunction", "OnTaskStoppedFunction", "SweeperFunction")}
        for rule, buffer in (("TaskRunningRule", "TaskRunningBuffer"), ("TaskStoppedRule", "TaskStoppedBuffer")):
            (target,) = clients.events.list_targets_by_rule(Rule=physical[rule])["Targets"]
            assert target["Arn"] == arns[buffer], rule
            assert target["DeadLetterConfig"]["Arn"] == arns["EventDlq"], rule
            assert target["InputTransformer"]["InputTemplate"] == \
                template["Resources"][rule]["Properties"]["Targets"][0]["InputTransformer"]["InputTemplate"]
        (sweep,) = clients.events.list_targets_by_rule(Rule=physical["SweepRule"])["Targets"]
        assert sweep["Arn"] == functions["SweeperFunction"]
        assert "InputTransformer" not in sweep
        # moto matches every event against a schedule rule (AWS does not) and cannot invoke a Lambda target:
        # the sweep rule's target goes before the events are sent.
        clients.events.remove_targets(Rule=physical["SweepRule"], Ids=[sweep["Id"]])

        # ---- each buffer feeds its function (moto would run it in Docker: disabled before sending)
        for fn, buffer in (("OnTaskRunningFunction", "TaskRunningBuffer"), ("OnTaskStoppedFunction", "TaskStoppedBuffer")):
            (mapping,) = clients.lam.list_event_source_mappings(FunctionName=physical[fn])["EventSourceMappings"]
            assert mapping["EventSourceArn"] == arns[buffer], fn
            assert mapping["BatchSize"] == 10, fn
            clients.lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

        # ---- the public samples through the rules
        samples = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("*.json"))}
        assert set(samples) == set(SAMPLES_ALL_GROUPS)
        mapped = template["Resources"]["TaskRunningRule"]["Properties"]["Targets"][0]["InputTransformer"]["InputPathsMap"]

        def complete(event: dict) -> bool:
            def has(path: str) -> bool:
                node = event
                for step in path[2:].split("."):
                    if not isinstance(node, dict) or step not in node:
                        return False
                    node = node[step]
                return True
            return all(has(p) for p in mapped.values())

        tasks = {name for name, e in samples.items() if e["detail-type"] == "ECS Task State Change"}
        assert {name for name in tasks if not complete(samples[name])} == INCOMPLETE_SAMPLES
        sent = {name: e for name, e in samples.items() if name not in INCOMPLETE_SAMPLES}
        for name, event in sent.items():
            entry = {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
                     "Resources": list(event.get("resources", [])) + [MARK + name]}
            if "time" in event:
                entry["Time"] = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
            resp = clients.events.put_events(Entries=[entry])
            assert resp["FailedEntryCount"] == 0, (name, resp)

        for kind, buffer in (("running", "TaskRunningBuffer"), ("stopped", "TaskStoppedBuffer")):
            bodies = drain(clients, physical[buffer])
            got = {}
            for raw in bodies:
                body = json.loads(raw, object_pairs_hook=no_duplicates)
                (mark,) = [r for r in body["resources"] if r.startswith(MARK)]
                got[mark[len(MARK):]] = (raw, body)
            want = {name for name, k in SAMPLES_ALL_GROUPS.items() if k == kind and name in sent}
            assert set(got) == want, (kind, sorted(got), sorted(want))
            for name, (raw, body) in got.items():
                original = sent[name]
                assert set(body) == ENVELOPE_FIELDS, raw
                assert set(body["detail"]) == DETAIL_FIELDS, raw
                for key in DETAIL_FIELDS:
                    assert body["detail"][key] == original["detail"][key], (name, key)
                assert body["detail"]["taskArn"] in body["resources"]
                env = [e for o in original["detail"].get("overrides", {}).get("containerOverrides", [])
                       for e in o.get("environment", [])]
                for var in env:
                    assert var["value"] not in raw, (name, "an environment value reached the buffer")
                assert "overrides" not in raw and "containers" not in raw, name
        assert any("environment" in json.dumps(e["detail"]) for e in sent.values()), "no sample carried an environment"

        # ---- hostile groups through the deployed stopped rule: the buffer receives them as values
        cluster = SAMPLE_CLUSTERS[0]
        task = cluster.replace(":cluster/", ":task/") + "/0123456789abcdef0123456789abcdef"
        other = cluster.replace(":cluster/", ":task/") + "/fedcba9876543210fedcba9876543210"
        groups = hostile_groups(other)
        for i, group in enumerate(groups):
            detail = {"taskArn": task, "clusterArn": cluster, "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                      "group": group, "version": i + 1}
            resp = clients.events.put_events(Entries=[{"Source": "aws.ecs", "DetailType": "ECS Task State Change",
                                                        "Detail": json.dumps(detail), "Resources": [task]}])
            assert resp["FailedEntryCount"] == 0, resp
        received = [json.loads(raw, object_pairs_hook=no_duplicates) for raw in drain(clients, physical["TaskStoppedBuffer"])]
        assert sorted(b["detail"]["group"] for b in received) == sorted(groups)
        assert all(b["detail"]["taskArn"] == task and b["resources"] == [task] for b in received), received
        assert drain(clients, physical["TaskRunningBuffer"]) == []
        assert drain(clients, physical["EventDlq"]) == [], "nothing is dead-lettered"
    finally:
        clients.cfn.delete_stack(StackName=stack)
    rules = clients.events.list_rules()["Rules"]
    assert not [r for r in rules if r["Name"] in (physical.get("TaskRunningRule"), physical.get("TaskStoppedRule"))], \
        "deleting the stack removes the rules"


FIFO_TOPICS = f"arn:aws:sns:{REGION}:210987654321:orders.fifo,arn:aws:sns:eu-west-1:{ACCOUNT}:flags.fifo"


@pytest.mark.parametrize("flavour", ["sam", "cdk"])
def test_a_fifo_deployment_gets_a_fifo_task_queue_dlq(clients, templates, flavour):
    template = sam_template() if flavour == "sam" else templates["cdk"]
    upload_code(clients, template)
    stack = f"tasksub-fifo-{flavour}-{uuid.uuid4().hex[:8]}"
    params = {"ClusterArns": ",".join(SAMPLE_CLUSTERS), "AlarmTopicArn": "NONE", "TopicArns": FIFO_TOPICS,
              "SubscriptionDlqArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq.fifo",
              "SettingsGeneration": "2026120701", "SweepAuditPerRun": "40"}
    clients.cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        description = clients.cfn.describe_stacks(StackName=stack)["Stacks"][0]
        assert description["StackStatus"] == "CREATE_COMPLETE", description["StackStatus"]
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
                    clients.cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"] if r["LogicalResourceId"]}
        assert "Topic" not in physical, "FIFO topics are given: the stack creates none"
        dlq = physical["TaskQueueDlq"]
        attrs = clients.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
        stack_uuid = description["StackId"].split("/")[2]
        assert attrs["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq-tasksub-tasks-{stack_uuid}.fifo"
        assert attrs["FifoQueue"] == "true"
        for lid in ("OnTaskRunningFunction", "OnTaskStoppedFunction", "SweeperFunction"):
            env = clients.lam.get_function_configuration(FunctionName=physical[lid])["Environment"]["Variables"]
            assert env["TASKSUB_QUEUE_DLQ_ARN"] == attrs["QueueArn"], lid
            assert env["TASKSUB_TOPIC_ARNS"] == FIFO_TOPICS, lid
            assert env["TASKSUB_SUBSCRIPTION_DLQ_ARN"] == params["SubscriptionDlqArn"], lid
            assert str(env["TASKSUB_SETTINGS_GENERATION"]) == "2026120701", lid  # moto: a number
            audit = env.get("TASKSUB_SWEEP_AUDIT_PER_RUN")
            assert (None if audit is None else str(audit)) == ("40" if lid == "SweeperFunction" else None), lid
        outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
        assert outputs.get("TaskQueueDlqArn", attrs["QueueArn"]) == attrs["QueueArn"]

        # A FIFO task queue (what the functions create for FIFO topics) redrives to it; to the standard event DLQ
        # SQS (and moto) refuse it: the failure of every start before this fix.
        redrive = lambda target: json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": 5})  # noqa: E731
        task_queue = f"tasksub-fifo-{uuid.uuid4().hex[:8]}-0123456789abcdef0123456789abcdef.fifo"
        url = clients.sqs.create_queue(QueueName=task_queue, Attributes={
            "FifoQueue": "true", "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId",
            "RedrivePolicy": redrive(attrs["QueueArn"])})["QueueUrl"]
        clients.sqs.delete_queue(QueueUrl=url)
        with pytest.raises(clients.sqs.exceptions.ClientError, match="InvalidParameterCombination"):
            clients.sqs.create_queue(QueueName=task_queue, Attributes={
                "FifoQueue": "true", "RedrivePolicy": redrive(queue_arn(clients, physical["EventDlq"]))})
    finally:
        clients.cfn.delete_stack(StackName=stack)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-s"]))
