"""The packaged CloudFormation template of a stage, and how to read its IAM roles.

Shared by the template checks (tests/integration/test_infra.py) and the recorded-calls check
(tests/e2e/test_least_privilege.py)."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.stage_template import load_template
from tests.conftest import REPO_ROOT


def packaged_template(build_dir: Path, stage: str) -> dict[str, Any]:
    """`scripts/package.sh STAGE` without third-party libraries (offline), loaded."""
    if not (REPO_ROOT / "app.py").exists():
        pytest.skip("app.py does not exist yet: nothing to package")
    env = {**os.environ, "LEADLOOP_BUILD_DIR": str(build_dir), "LEADLOOP_PACKAGE_DEPS": "none"}
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "package.sh"), stage],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"scripts/package.sh {stage} failed:\n{done.stdout}\n{done.stderr}"
    return load_template(Path(done.stdout.strip().splitlines()[-1]))


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in role["Properties"].get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        found.extend(statements if isinstance(statements, list) else [statements])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_text(resource: Any) -> str:
    """One comparable string per IAM resource: references become `${Name}` / `${Name.Attr}` as in Fn::Sub."""
    if isinstance(resource, str):
        return resource
    if "Ref" in resource:
        return "${" + str(resource["Ref"]) + "}"
    if "Fn::GetAtt" in resource:
        return "${" + ".".join(as_list(resource["Fn::GetAtt"])) + "}"
    if "Fn::Sub" in resource:
        return str(as_list(resource["Fn::Sub"])[0])
    raise AssertionError(f"unexpected IAM resource form: {resource}")


def grants(role: dict[str, Any], action: str, target: str) -> bool:
    """Whether an Allow statement covers `action` on `target` (a resource text such as `${KeysTable.Arn}`)."""
    for statement in statements(role):
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"])):
            continue
        if any(fnmatch.fnmatchcase(target, resource_text(r)) for r in as_list(statement["Resource"])):
            return True
    return False
