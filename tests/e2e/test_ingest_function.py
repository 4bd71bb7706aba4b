"""The `ingest` Lambda function as API Gateway invokes it (infra/resources.yaml wires the tracking and webhook
routes to it, from the REST API and from the HTTP API): it answers and enqueues exactly as the API function
did, and serves nothing else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from scripts.check_artifact import proxy_event
from tests.conftest import FIXTURES
from tests.e2e.conftest import WRITE, FakeContext, Loop
from tests.e2e.test_webhooks import confirmed, hooks, load_fixture, sign

__all__ = ["confirmed", "hooks"]  # fixtures the signed-webhook test requests


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


# --- the same function behind the HTTP API (infra/resources.yaml: IngestHttpApi, payload format 1.0) ---


def http_api_event(
    route: str, path: str, body: bytes, headers: dict[str, str], *, binary: bool = False
) -> dict[str, Any]:
    """An HTTP API payload-1.0 event as AWS documents it for a matched route on the `$default` stage:
    header names lower-cased, `routeKey`, a path without a stage prefix, text bodies as they are and
    binary ones base64-encoded. `resourcePath` is left as the path, so only the route key can route it."""
    lowered = {name.lower(): value for name, value in headers.items()}
    parameters = dict(zip(route.strip("/").split("/"), path.strip("/").split("/"), strict=True))
    path_parameters = {name[1:-1]: value for name, value in parameters.items() if name.startswith("{")}
    return {
        "version": "1.0",
        "resource": route,
        "path": path,
        "httpMethod": "POST",
        "headers": lowered,
        "multiValueHeaders": {name: [value] for name, value in lowered.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "ingest1",
            "domainName": "ingest1.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "ingest1",
            "httpMethod": "POST",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "node"},
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": "JKJaXmPLvHcESHA=",
            "resourceId": f"POST {route}",
            "resourcePath": path,
            "routeKey": f"POST {route}",
            "stage": "$default",
        },
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


def _browser_capture(name: str) -> tuple[str, bytes, dict[str, str]]:
    capture = json.loads((FIXTURES / "tracking-clients" / name).read_text())
    headers = {k: v for k, v in capture["headers"] if k.lower() not in ("host", "content-length")}
    return capture["path"], base64.b64decode(capture["wire_body_b64"]), headers


@pytest.mark.parametrize("binary", [False, True])
def test_a_browser_track_call_through_the_http_api_is_queued_and_applied(loop: Loop, binary: bool) -> None:
    import app

    path, body, headers = _browser_capture("ajs-standard-t.json")  # analytics.js: text/plain, Basic auth
    headers["Authorization"] = WRITE["Authorization"]  # the loop's write key, not the capture's
    answer = app.ingest(http_api_event("/v1/{call}", path, body, headers, binary=binary), FakeContext())

    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == {"success": True}
    assert loop.drain() == 1


def test_a_track_call_without_a_key_through_the_http_api_is_refused(loop: Loop) -> None:
    import app

    path, body, headers = _browser_capture("ajs-standard-t.json")
    del headers["Authorization"]
    answer = app.ingest(http_api_event("/v1/{call}", path, body, headers), FakeContext())

    assert answer["statusCode"] == 401
    assert loop.drain() == 0


def test_a_signed_hubspot_webhook_through_the_http_api_verifies_against_the_ingest_url(
    hooks: None, loop: Loop
) -> None:
    import app

    provider, payload, fixture_headers = load_fixture("hubspot/webhook_batch_v3_signed.json", {})
    # Signed by HubSpot over the URL it called: the ingest URL (no stage in the path on `$default`).
    delivery = sign(provider, payload, datetime.now(UTC), fixture_headers)
    event = http_api_event("/webhooks/crm/hubspot", delivery.path, delivery.body, delivery.headers)
    answer = app.ingest(event, FakeContext())

    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == {"received": 2}
    assert loop.drain() >= 1  # queued (the worker applies them without a failed record)


def test_an_http_api_route_that_is_not_ingest_is_refused(loop: Loop) -> None:
    import app

    event = http_api_event("/leads/{ref}/{action}", "/leads/a@b.example/disqualify", b"{}", {})
    answer = app.ingest(event, FakeContext())

    assert answer["statusCode"] == 404
