"""Just enough CloudFormation to evaluate EventBridge patterns offline.

- `load_template(path)`: reads CloudFormation YAML (short-form tags such as !Ref, !If, !Sub) or JSON
  into the long form ({"Ref": ...}, {"Fn::If": [...]}) with nothing but PyYAML.
- `Resolver(template, parameters).resolve(value)`: evaluates the intrinsics a pattern may use
  (Ref to parameters and pseudo parameters, AWS::NoValue, Fn::If with the template's Conditions,
  Fn::Join, Fn::Select, Fn::Split, Fn::Sub without resource attributes).

Anything it cannot evaluate raises, so a pattern never silently degrades.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

_NO_VALUE = object()

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "tasksub-test",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/tasksub-test/"
    "1c2fa620-982a-11e3-aff7-50e2416294e0",
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags into their long form."""


def _construct(tag: str):
    fn = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if fn == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {fn: value}

    return construct


for _tag in (
    "Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Not", "Equals", "And", "Or",
    "FindInMap", "Base64", "Cidr", "ImportValue", "GetAZs", "Transform", "ToJsonString", "Length", "Contains",
):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: str | Path) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        return json.loads(text)
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


class Unresolvable(ValueError):
    pass


class Resolver:
    def __init__(self, template: dict, parameters: dict[str, Any] | None = None):
        self.template = template
        self.params: dict[str, Any] = {}
        declared = template.get("Parameters", {})
        given = dict(parameters or {})
        unknown = set(given) - set(declared)
        if unknown:
            raise Unresolvable(f"parameters not declared by the template: {sorted(unknown)}")
        for name, spec in declared.items():
            if name in given:
                raw = given[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                continue  # only an error if referenced
            if spec.get("Type") == "CommaDelimitedList":
                if isinstance(raw, str):
                    raw = [part.strip() for part in raw.split(",")]
                raw = [str(part) for part in raw]
            else:
                raw = str(raw)
            self.params[name] = raw
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise Unresolvable(f"unknown condition {name}")
            self._conditions[name] = bool(self._cond(spec))
        return self._conditions[name]

    def _cond(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not self._cond(arg[0])
            if key == "Fn::And":
                return all(self._cond(x) for x in arg)
            if key == "Fn::Or":
                return any(self._cond(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(node)

    # ------------------------------------------------------------------ values
    def resolve(self, node: Any) -> Any:
        out = self._resolve(node)
        if out is _NO_VALUE:
            raise Unresolvable("AWS::NoValue at top level")
        return out

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self._resolve(x) for x in node]
            return [x for x in items if x is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::If":
                cond, yes, no = arg
                return self._resolve(yes if self.condition(cond) else no)
            if key == "Fn::Join":
                sep, items = arg
                items = self._resolve(items)
                return sep.join(str(self._resolve(x)) for x in items)
            if key == "Fn::Select":
                idx, items = arg
                return self._resolve(items)[int(self._resolve(idx))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self._resolve(text)).split(sep)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::") or key == "Condition":
                raise Unresolvable(f"{key} is not supported in patterns")
        out = {}
        for k, v in node.items():
            r = self._resolve(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name in self.template.get("Parameters", {}):
            raise Unresolvable(f"parameter {name} has no value and no default")
        raise Unresolvable(f"Ref {name} is not a parameter (resource refs are not supported)")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg
            variables = {k: self._resolve(v) for k, v in variables.items()}
        else:
            text, variables = arg, {}

        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                raise Unresolvable(f"Fn::Sub attribute {name} not supported")
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", repl, text)


def event_rules(template: dict) -> dict[str, dict]:
    """Logical id -> resource of every AWS::Events::Rule that has an EventPattern."""
    return {
        lid: res
        for lid, res in template.get("Resources", {}).items()
        if res.get("Type") == "AWS::Events::Rule" and "EventPattern" in res.get("Properties", {})
    }
