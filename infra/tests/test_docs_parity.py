"""Docs that cannot drift (issue #26, item 6): what the code declares and what the documents list are the same
sets, both ways.

- every parameter, output and alarm (`AWS::CloudWatch::Alarm`) of `infra/template.yaml` has a row in the
  tables "Parameters", "Outputs" and "Alarms" of `infra/README.md`, and every name in those rows is one of
  them (the SAM/CDK parity test holds the CDK app to the same parameters and alarms, this one to the same
  outputs);
- the record table of `docs/contract.md` ("DynamoDB record") names exactly the attributes of
  `core/src/record.rs`'s `attr` module, read from the Rust source.

A table row names its subjects in backticks in its first cell (`` `A`, `B` ``). Whether every parameter is in
the console's parameter groups is `test_parity.py`'s (and the CDK assertions') to check.
`test_each_known_drift_is_caught` keeps each check able to fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cfn import load_template
from conftest import INFRA, SAM_TEMPLATE

REPO = INFRA.parent
README = INFRA / "README.md"
CONTRACT = REPO / "docs" / "contract.md"
RECORD_RS = REPO / "core" / "src" / "record.rs"


def table_names(markdown: str, heading: str) -> list[str]:
    """The backticked names of the first cell of every row of the first table under the heading that starts
    with `heading`."""
    lines = markdown.splitlines()
    starts = [i for i, line in enumerate(lines) if line == heading or line.startswith(heading + " ")]
    if len(starts) != 1:
        pytest.fail(f"{len(starts)} headings {heading!r}, expected one", pytrace=False)
    start = starts[0]
    rows: list[str] = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    if len(rows) < 3:
        pytest.fail(f"no table with rows under {heading!r}", pytrace=False)
    names = []
    for row in rows[2:]:  # the header and the |---| line
        first = row.split("|")[1]
        found = re.findall(r"`([^`]+)`", first)
        assert found, f"{heading}: a row names nothing in backticks: {row}"
        names.extend(found)
    return names


def rust_attrs(source: str) -> list[str]:
    """The values of the `pub const NAME: &str = "value";` items of `pub mod attr { ... }`."""
    m = re.search(r"^pub mod attr \{\n(.*?)^\}", source, re.S | re.M)
    assert m, "core/src/record.rs has no `pub mod attr { ... }`"
    return re.findall(r'pub const [A-Z0-9_]+: &str = "([^"]+)";', m.group(1))


def same(what: str, declared: list[str], documented: list[str], where: str) -> list[str]:
    """Each name declared but not documented, documented but not declared, or documented twice."""
    problems = [f"{what} {n}: not documented in {where}" for n in sorted(set(declared) - set(documented))]
    problems += [f"{what} {n}: documented in {where}, but there is no such {what}"
                 for n in sorted(set(documented) - set(declared))]
    problems += [f"{what} {n}: documented twice in {where}" for n in sorted({n for n in documented
                                                                           if documented.count(n) > 1})]
    return problems


def alarms(template: dict) -> list[str]:
    return [lid for lid, r in template["Resources"].items() if r.get("Type") == "AWS::CloudWatch::Alarm"]


def readme_problems(template: dict, readme: str) -> list[str]:
    where = "infra/README.md"
    return (same("parameter", list(template["Parameters"]), table_names(readme, "### Parameters"), where)
            + same("output", list(template["Outputs"]), table_names(readme, "### Outputs"), where)
            + same("alarm", alarms(template), table_names(readme, "### Alarms"), where))


def contract_problems(record_rs: str, contract: str) -> list[str]:
    return same("record attribute", rust_attrs(record_rs), table_names(contract, "## DynamoDB record"),
                "docs/contract.md")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_parameter_output_and_alarm_is_in_the_infra_readme_and_nothing_else():
    problems = readme_problems(load_template(SAM_TEMPLATE), read(README))
    assert not problems, "template.yaml and infra/README.md differ:\n  " + "\n  ".join(problems)


def test_the_cdk_app_has_the_outputs_the_readme_documents(templates):
    """The parity test compares parameters and resources, not outputs: the CDK app's outputs (and when each
    exists) are the SAM template's, so the README's table documents both."""
    sam, cdk = (
        {name: out.get("Condition") for name, out in t.get("Outputs", {}).items()}
        for t in (templates["sam"], templates["cdk"])
    )
    assert sam == cdk, f"outputs differ: SAM {sam} != CDK {cdk}"


def test_the_contracts_record_table_is_the_attr_module():
    attrs = rust_attrs(read(RECORD_RS))
    assert {"taskId", "subscriptions", "settingsHash"} <= set(attrs), f"the attr module was misread: {attrs}"
    problems = contract_problems(read(RECORD_RS), read(CONTRACT))
    assert not problems, "core/src/record.rs and docs/contract.md differ:\n  " + "\n  ".join(problems)


def _drift(how: str) -> list[str]:
    template, readme = load_template(SAM_TEMPLATE), read(README)
    record_rs, contract = read(RECORD_RS), read(CONTRACT)
    if how == "nothing":
        pass
    elif how == "a parameter added to the template":
        template["Parameters"]["SweepExampleKnob"] = {"Type": "Number", "Default": 10}
    elif how == "a parameter's row removed":
        readme = re.sub(r"^\| `TombstoneTtlSeconds` \|.*\n", "", readme, flags=re.M)
    elif how == "a parameter renamed in the template":
        template["Parameters"]["EventConcurrency"] = template["Parameters"].pop("EventFunctionConcurrency")
    elif how == "an output added to the template":
        template["Outputs"]["BufferQueueUrls"] = {"Value": "x"}
    elif how == "an output's row removed":
        readme = readme.replace("`EventDlqUrl`, ", "")
    elif how == "an alarm added to the template":
        template["Resources"]["EventDlqAgeAlarm"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}
    elif how == "a mass-orphan alarm's row removed":
        readme = re.sub(r"^\| `SweeperOrphanSubscriptionsRemovedAlarm` \|.*\n", "", readme, flags=re.M)
    elif how == "an attribute added to core/src/record.rs":
        record_rs = record_rs.replace(
            "pub mod attr {\n", 'pub mod attr {\n    /// New.\n    pub const EXAMPLE_NEW: &str = "exampleNew";\n')
    elif how == "an attribute's row removed from the contract":
        contract = re.sub(r"^\| `watchTopics` \|.*\n", "", contract, flags=re.M)
    elif how == "an attribute documented twice":
        contract = contract.replace("| `state` |", "| `state`, `version` |", 1)
    else:
        raise ValueError(how)
    return readme_problems(template, readme) + contract_problems(record_rs, contract)


@pytest.mark.parametrize("how", [
    "a parameter added to the template",
    "a parameter's row removed",
    "a parameter renamed in the template",
    "an output added to the template",
    "an output's row removed",
    "an alarm added to the template",
    "a mass-orphan alarm's row removed",
    "an attribute added to core/src/record.rs",
    "an attribute's row removed from the contract",
    "an attribute documented twice",
])
def test_each_known_drift_is_caught(how):
    assert _drift("nothing") == [], "the documents must agree before a drift can be seen"
    assert _drift(how), f"{how}: the documents drifted and nothing noticed"
