"""The `ingest` Lambda function as API Gateway invokes it (infra/resources.yaml wires the tracking and webhook
routes to it): it answers and enqueues exactly as the API function did, and serves nothing else."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.e2e.conftest import WRITE, FakeContext, Loop


def proxy_event(method: str, route: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the `api` stage sends it."""
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


def test_the_ingest_function_queues_tracking_calls_that_the_worker_then_applies(loop: Loop) -> None:
    import app

    traits = {"email": "i@bigco.example"}
    identify = {"type": "identify", "messageId": "ing-1", "userId": "u-i", "traits": traits}
    body = json.dumps(identify).encode()
    headers = {**WRITE, "Content-Type": "application/json"}
    answer = app.ingest(proxy_event("POST", "/v1/{call}", "/v1/identify", body, headers), FakeContext())

    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == {"success": True}
    assert loop.drain() == 1
    assert loop.sales("GET", "/leads/i@bigco.example").status_code == 200


def test_the_ingest_function_still_authenticates(loop: Loop) -> None:
    import app

    hand_raise = {"type": "track", "messageId": "ing-2", "userId": "u", "event": "Demo Requested"}
    body = json.dumps(hand_raise).encode()
    event = proxy_event("POST", "/v1/{call}", "/v1/track", body, {"Content-Type": "application/json"})
    answer = app.ingest(event, FakeContext())

    assert answer["statusCode"] == 401
    assert loop.drain() == 0


def test_the_ingest_function_refuses_routes_that_are_not_ingest(loop: Loop) -> None:
    import app

    identify = {"type": "identify", "messageId": "m", "userId": "u", "traits": {"email": "a@b.example"}}
    loop.track("/v1/identify", identify)
    loop.drain()
    headers = {"Authorization": "Bearer dev-sales-key", "Content-Type": "application/json"}
    event = proxy_event("POST", "/leads/{ref}/{action}", "/leads/a@b.example/disqualify", b"{}", headers)
    answer = app.ingest(event, FakeContext())

    assert answer["statusCode"] == 404
    assert "not served by the ingest function" in json.loads(answer["body"])["error"]["message"]
    assert loop.sales("GET", "/leads/a@b.example").json_body["state"] != "disqualified"
