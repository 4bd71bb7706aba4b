"""The ingest function as its tracking URL (a Lambda function URL, infra/resources.yaml) invokes it:
payload format 2.0 with no route, every path on the URL reaching the function. Browsers' tracking calls are
answered and queued exactly as through the APIs; nothing else is served there; the answer is in the
format a function URL reads (one `headers` map)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.e2e.conftest import WRITE, FakeContext, Loop
from tests.e2e.test_ingest_function import _browser_capture as browser_capture


def function_url_event(
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    binary: bool = False,
    query: str = "",
) -> dict[str, Any]:
    """A function URL's request event as AWS documents it (payload format 2.0): header names lower-cased,
    `routeKey` `$default`, the request line under `requestContext.http`, no path parameters."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        **({"queryStringParameters": dict(p.split("=", 1) for p in query.split("&"))} if query else {}),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij0123456789abcdefghij01",
            "domainName": "abcdefghij0123456789abcdefghij01.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij0123456789abcdefghij01",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0",
            },
            "requestId": "6a1b7d6e-0000-4000-8000-000000000001",
            "routeKey": "$default",
            "stage": "$default",
            "time": "30/Nov/2026:19:00:00 +0000",
            "timeEpoch": 1795993200000,
        },
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


def _browser_capture(name: str) -> tuple[str, bytes, dict[str, str]]:
    path, body, headers = browser_capture(name)
    headers["Authorization"] = WRITE["Authorization"]  # the loop's write key, not the capture's
    return path, body, headers


@pytest.mark.parametrize("binary", [False, True])
def test_a_browser_track_call_at_the_tracking_url_is_queued_and_applied(loop: Loop, binary: bool) -> None:
    import app

    path, body, headers = _browser_capture("ajs-standard-t.json")  # analytics.js: text/plain, Basic auth
    answer = app.ingest(function_url_event("POST", path, body, headers, binary=binary), FakeContext())

    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == {"success": True}
    assert "multiValueHeaders" not in answer  # a function URL reads `headers` only
    assert answer["headers"]["Content-Type"].startswith("application/json")
    assert loop.drain() == 1


def test_an_identify_at_the_tracking_url_creates_the_lead(loop: Loop) -> None:
    import app

    identify = {
        "type": "identify",
        "messageId": "url-1",
        "userId": "u-url",
        "traits": {"email": "u@co.example"},
    }
    headers = {**WRITE, "Content-Type": "application/json"}
    event = function_url_event("POST", "/v1/identify", json.dumps(identify).encode(), headers, query="v=2")
    answer = app.ingest(event, FakeContext())

    assert answer["statusCode"] == 200, answer
    assert loop.drain() == 1
    assert loop.sales("GET", "/leads/u@co.example").status_code == 200


def test_a_track_call_without_a_key_at_the_tracking_url_is_refused(loop: Loop) -> None:
    import app

    path, body, headers = _browser_capture("ajs-standard-t.json")
    del headers["Authorization"]
    answer = app.ingest(function_url_event("POST", path, body, headers), FakeContext())

    assert answer["statusCode"] == 401
    assert "error" in json.loads(answer["body"])
    assert loop.drain() == 0


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/sendgrid",  # webhooks are served by the ingest HTTP API, whose URL providers sign over
        "/webhooks/crm/hubspot",
        "/leads/a@b.example/disqualify",  # the API function's routes are never served by ingest
        "/v1/",
        "/v1/track/extra",
        "/",
    ],
)
def test_only_tracking_is_served_at_the_tracking_url(loop: Loop, path: str) -> None:
    import app

    headers = {**WRITE, "Content-Type": "application/json"}
    answer = app.ingest(function_url_event("POST", path, b"{}", headers), FakeContext())

    assert answer["statusCode"] == 404
    message = json.loads(answer["body"])["error"]["message"]
    assert "not served by the tracking URL" in message
    assert "webhooks: the stack's IngestUrl" in message  # where a misdirected provider should call
    assert loop.drain() == 0


def test_a_get_at_the_tracking_url_is_not_allowed(loop: Loop) -> None:
    import app

    answer = app.ingest(function_url_event("GET", "/v1/page", b"", dict(WRITE)), FakeContext())

    assert answer["statusCode"] == 405
    assert loop.drain() == 0


def test_a_malformed_call_at_the_tracking_url_says_what_is_wrong(loop: Loop) -> None:
    import app

    headers = {**WRITE, "Content-Type": "application/json"}
    answer = app.ingest(function_url_event("POST", "/v1/track", b'{"type": "track"', headers), FakeContext())

    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["message"]
    assert loop.drain() == 0
