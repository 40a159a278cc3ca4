"""Fixtures of the infra pattern tests: a moto server (never started here) and the templates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cfn import load_template  # noqa: E402

INFRA = Path(__file__).resolve().parents[1]
SAM_TEMPLATE = INFRA / "template.yaml"
# Written by infra/validate.sh (node infra/cdk/dist/bin/synth.js); rebuilt here if missing.
CDK_TEMPLATE = Path(os.environ.get("TASKSUB_CDK_TEMPLATE", INFRA / "build" / "cdk" / "Tasksub.template.json"))
REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    endpoint = os.environ.get("TASKSUB_MOTO_ENDPOINT", "").strip()
    if not endpoint:
        pytest.fail(
            "TASKSUB_MOTO_ENDPOINT is not set: start `moto_server -H 127.0.0.1 -p 5077` and export "
            "TASKSUB_MOTO_ENDPOINT=http://127.0.0.1:5077 (the infra pattern tests never skip)",
            pytrace=False,
        )
    try:
        urllib.request.urlopen(endpoint.rstrip("/") + "/moto-api/", timeout=5).read()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"moto at {endpoint} is not reachable: {exc}", pytrace=False)
    return endpoint


@pytest.fixture(scope="session")
def aws(moto_endpoint):
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )

    class Clients:
        events = session.client("events", endpoint_url=moto_endpoint)
        sqs = session.client("sqs", endpoint_url=moto_endpoint)

    return Clients


def _synth_cdk() -> None:
    cdk = INFRA / "cdk"
    if not (cdk / "node_modules").is_dir():
        pytest.fail(f"{CDK_TEMPLATE} is missing and infra/cdk has no node_modules: run infra/validate.sh", pytrace=False)
    subprocess.run(["npx", "--no-install", "tsc", "-p", "tsconfig.json"], cwd=cdk, check=True)
    subprocess.run(["node", "dist/bin/synth.js", str(CDK_TEMPLATE.parent)], cwd=cdk, check=True)


@pytest.fixture(scope="session")
def templates() -> dict[str, dict]:
    if not CDK_TEMPLATE.is_file():
        _synth_cdk()
    return {
        "sam": load_template(SAM_TEMPLATE),
        "cdk": json.loads(CDK_TEMPLATE.read_text(encoding="utf-8")),
    }
