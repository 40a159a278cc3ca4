#!/usr/bin/env python3
"""Specialise a CloudFormation/SAM template for a condition that is known to be false.

    drop_condition.py IN.yaml OUT.json CONDITION

Removes the resources and outputs under CONDITION and replaces every Fn::If on it with its false
branch (a false branch of AWS::NoValue drops the key or list item). Used by infra/sam-build.sh: `sam build` ignores
conditions and would try to build the sweeper binary even with EnableSweeper=false. OUT is JSON
next to IN so relative CodeUri paths keep working.
"""
import json
import sys

from cfnlint.decode import cfn_yaml

NO_VALUE = {"Ref": "AWS::NoValue"}


_DROP = object()


def specialise(node, cond):
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] == cond:
            chosen = node["Fn::If"][2]
            return _DROP if chosen == NO_VALUE else specialise(chosen, cond)
        out = {k: specialise(v, cond) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _DROP}
    if isinstance(node, list):
        return [x for x in (specialise(y, cond) for y in node) if x is not _DROP]
    return node


def main() -> int:
    src, dst, cond = sys.argv[1:4]
    template = json.loads(json.dumps(cfn_yaml.load(src), default=str))
    if cond not in template.get("Conditions", {}):
        print(f"drop_condition: no condition {cond} in {src}", file=sys.stderr)
        return 1
    for section in ("Resources", "Outputs"):
        for lid in [k for k, v in template.get(section, {}).items() if v.get("Condition") == cond]:
            del template[section][lid]
    template = specialise(template, cond)
    leftover = json.dumps(template)
    if f'"Condition": "{cond}"' in leftover:
        print(f"drop_condition: {cond} is still referenced", file=sys.stderr)
        return 1
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(template, fh, indent=1)
        fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
