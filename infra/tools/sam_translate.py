#!/usr/bin/env python3
"""Translate the SAM template (infra/template.yaml) to plain CloudFormation JSON, offline.

Uses aws-sam-translator (installed with aws-sam-cli in .venv-infra) the way `sam validate` does,
with a managed-policy loader that never calls IAM. Usage: sam_translate.py IN.yaml OUT.json
"""
import json
import sys

from cfnlint.decode import cfn_yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform


class OfflinePolicyLoader:
    """Our template references no managed policy by name; SAM's own ARNs need no lookup."""

    def load(self):
        return {}


def main() -> int:
    src, dst = sys.argv[1], sys.argv[2]
    template = cfn_yaml.load(src)
    # `sam package` would upload the local CodeUri; stand in an S3 location, like `sam validate`.
    placeholder = "s3://tasksub-placeholder-bucket/code.zip"
    fn_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(fn_globals.get("CodeUri"), str) and not fn_globals["CodeUri"].startswith("s3://"):
        fn_globals["CodeUri"] = placeholder
    for res in template.get("Resources", {}).values():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            if not props["CodeUri"].startswith("s3://"):
                props["CodeUri"] = placeholder
    try:
        out = transform(template, {}, OfflinePolicyLoader())
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"sam-translate: {cause.message}", file=sys.stderr)
        return 1
    with open(dst, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, sort_keys=False, default=str)
        fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
