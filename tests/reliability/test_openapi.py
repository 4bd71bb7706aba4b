"""The published OpenAPI description (openapi.yaml) is valid and cannot drift from the routes app.py serves.

The spec is validated with openapi-spec-validator when the venv has it; the structural checks below run
either way: every $ref resolves, every (method, path) the app serves is described and nothing else is,
path parameters match the route's placeholders, and every documented refusal uses the one error body.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ERROR_REF = "#/components/schemas/Error"


def load_spec() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(spec, dict), "openapi.yaml must hold one mapping"
    return spec


def spec_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def served_routes() -> set[tuple[str, str]]:
    import app

    # /console serves HTML pages behind a session cookie, not the JSON API: README "Console" describes them
    # and tests/browser checks them (sign-in, CSRF, roles, security headers).
    return {
        (method, path)
        for path, methods in app.app.routes.items()
        for method in methods
        if not path.startswith("/console")
    }


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local $refs until a node that is not one."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local refs are used: {ref}"
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def test_spec_validates_against_the_openapi_schema() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(load_spec())


def test_spec_is_openapi_3_with_the_basics() -> None:
    spec = load_spec()
    assert str(spec["openapi"]).startswith("3.0.")
    assert spec["info"]["title"] and spec["info"]["version"]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["writeKey"] == {**schemes["writeKey"], "type": "http", "scheme": "basic"}
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}


def test_every_ref_resolves() -> None:
    spec = load_spec()
    missing: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                try:
                    resolve(spec, node)
                except KeyError:
                    missing.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert missing == []


def test_the_spec_describes_exactly_the_routes_the_app_serves() -> None:
    described = set(spec_operations(load_spec()))
    served = served_routes()
    assert served - described == set(), "routes the app serves that openapi.yaml does not describe"
    assert described - served == set(), "operations in openapi.yaml the app does not serve"


def test_path_parameters_match_the_route_placeholders() -> None:
    spec = load_spec()
    wrong: list[str] = []
    for (method, path), operation in spec_operations(spec).items():
        placeholders = set(re.findall(r"{(\w+)}", path))
        parameters = [resolve(spec, p) for p in operation.get("parameters", [])]
        declared = {p["name"] for p in parameters if p["in"] == "path"}
        if declared != placeholders:
            wrong.append(f"{method} {path}: declares {sorted(declared)}, route has {sorted(placeholders)}")
        if any(p["in"] == "path" and not p.get("required") for p in parameters):
            wrong.append(f"{method} {path}: a path parameter must be required")
    assert wrong == []


def test_every_refusal_is_documented_with_the_error_body() -> None:
    spec = load_spec()
    assert resolve(spec, {"$ref": ERROR_REF})["required"] == ["error"]
    wrong: list[str] = []
    for (method, path), operation in spec_operations(spec).items():
        statuses = {int(code) for code in operation["responses"]}
        if not any(200 <= s < 400 for s in statuses):
            wrong.append(f"{method} {path}: no success answer")
        for code, response in operation["responses"].items():
            if int(code) < 400:
                continue
            schema = resolve(spec, response)["content"]["application/json"]["schema"]
            if schema != {"$ref": ERROR_REF}:
                wrong.append(f"{method} {path} {code}: not the documented error body")
        # A route behind a key documents the refusal of a missing one.
        secured = operation.get("security", spec["security"])
        if any(requirement for requirement in secured) and 401 not in statuses:
            wrong.append(f"{method} {path}: needs a key but documents no 401")
    assert wrong == []


def test_security_agrees_with_the_authorization_matrix() -> None:
    """tests/reliability/test_authorization.py is the truth about who may call what; the spec must agree."""
    from tests.reliability.test_authorization import MATRIX

    spec = load_spec()
    operations = spec_operations(spec)
    wrong: list[str] = []
    for key, (_path, outcomes) in MATRIX.items():
        names = {name for r in operations[key].get("security", spec["security"]) for name in r}
        if outcomes["none"] != 401:
            expect = set()  # open to everyone
        elif outcomes["write"] == "ok":
            expect = {"writeKey"}
        elif outcomes["admin"] == "ok":
            expect = {"bearerKey"}
        else:
            expect = set()  # the provider's own signature, outside the spec's security schemes
        if names != expect:
            wrong.append(f"{key}: the matrix means {sorted(expect)}, the spec says {sorted(names)}")
    assert wrong == []
