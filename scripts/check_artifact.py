"""Runs the packaged Lambda zip under the Python of its Lambda runtime, with nothing but the zip on the path.

    python3.12 -I -S scripts/check_artifact.py build/ci/deployment.zip python3.12

Run by scripts/validate_infra.sh. The code is developed and tested on Python 3.11 while Lambda runs it on a
newer runtime, with libraries pip picked for that runtime's platform: this is where a missing or mismatched
compiled library (pydantic-core, cryptography, PyYAML, MarkupSafe) or a file left out of the zip shows up
before a deploy does. The API, ingest (as the REST API, the HTTP API and the tracking URL call it) and
effects dispatcher handlers are called (the last with a stream record that needs nothing). Standard library
only: it must run before anything is installed for that Python.
"""

from __future__ import annotations

import base64
import importlib
import io
import os
import sys
import tempfile
import zipfile
from contextlib import redirect_stdout
from typing import Any

COMPILED = ("pydantic_core", "cryptography.hazmat.bindings._rust", "yaml._yaml", "markupsafe._speedups")


def proxy_event(method: str, route: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the `api` stage sends it (also used by the tests)."""
    parameters = dict(zip(route.strip("/").split("/"), path.strip("/").split("/"), strict=True))
    path_parameters = {name[1:-1]: value for name, value in parameters.items() if name.startswith("{")}
    return {
        "resource": route,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": "req-1",
            "identity": {"sourceIp": "203.0.113.7"},
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def check(zip_path: str, runtime: str) -> list[str]:
    running = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if running != runtime:
        return [f"this is {running}, not the function runtime {runtime}: run the check with that Python"]
    problems = []
    root = tempfile.mkdtemp(prefix="leadloop-artifact-")
    zipfile.ZipFile(zip_path).extractall(root)
    sys.path.insert(0, root)
    os.chdir(root)
    # Configured like a deployed function, but nothing here may reach AWS: the checks stop before any call.
    os.environ.update(
        {
            "LEADLOOP_STAGE": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "artifact-check",
            "AWS_SECRET_ACCESS_KEY": "artifact-check",
            "LEADLOOP_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/leadloop-ci-events",
        }
    )

    for module in COMPILED:
        try:
            importlib.import_module(module)
        except ImportError as error:
            problems.append(f"{module} does not load on {runtime}: {error}")
    app = importlib.import_module("app")  # every handler, route and library the functions import

    health = app.app(proxy_event("GET", "/health", "/health", b"", {}), None)
    if health["statusCode"] != 200:
        problems.append(f"GET /health answered {health['statusCode']}: {health['body']}")
    no_key = proxy_event("POST", "/v1/{call}", "/v1/track", b"{}", {"Content-Type": "application/json"})
    tracked = app.ingest(no_key, None)
    if tracked["statusCode"] != 401:
        problems.append(
            f"the ingest function answered {tracked['statusCode']} to a call without a key, not 401"
        )
    # The same call as the ingest HTTP API sends it (payload format 1.0, infra/resources.yaml).
    from_http_api = {
        **no_key,
        "version": "1.0",
        "headers": {"content-type": "application/json"},
        "requestContext": {**no_key["requestContext"], "routeKey": "POST /v1/{call}", "stage": "$default"},
    }
    tracked = app.ingest(from_http_api, None)
    if tracked["statusCode"] != 401:
        problems.append(
            f"the ingest function answered {tracked['statusCode']} to an HTTP API call without a key, not 401"
        )
    # And as the tracking URL sends it (a function URL: payload format 2.0, no route, answered in 2.0).
    from_tracking_url = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/v1/track",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/v1/track"}, "stage": "$default"},
        "body": "{}",
        "isBase64Encoded": False,
    }
    tracked = app.ingest(from_tracking_url, None)
    if tracked["statusCode"] != 401 or "multiValueHeaders" in tracked:
        problems.append(f"the ingest function answered {tracked} to a tracking URL call without a key")

    # The effects dispatcher's handler, as the stream trigger calls it: a record with nothing to perform.
    removed = {
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"Keys": {"lead_id": {"S": "x"}}},
    }
    dispatched = app.dispatch_effects({"Records": [removed]}, None)
    if dispatched != {"writes": 0}:
        problems.append(f"the dispatcher answered {dispatched} to a stream record with no effects")

    # The backtest workflow's two functions (infra/backtest_workflow.asl.json names their handlers).
    for handler in ("backtest_shard", "backtest_merge"):
        if not callable(getattr(app, handler, None)):
            problems.append(f"app.{handler}, which the backtest workflow invokes, is missing")

    from chalicelib.entrypoints import (
        lint,  # the shipped templates and rules, through the sandbox and the rules parser
    )

    report = io.StringIO()
    with redirect_stdout(report):
        status = lint.main([])
    if status != 0:
        problems.append("the shipped templates or rules do not pass their lint:\n" + report.getvalue())
    loaded = f"app and {len(COMPILED)} compiled libraries load"
    print(f"✓ artifact on {runtime}: {loaded}; {report.getvalue().strip()}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[0], argv[1])
    for problem in problems:
        print(f"check_artifact: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
