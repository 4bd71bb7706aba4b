"""The `ingest` Lambda function as API Gateway invokes it (infra/resources.yaml wires the tracking and webhook
routes to it): it answers and enqueues exactly as the API function did, and serves nothing else."""

from __future__ import annotations

import json

from scripts.check_artifact import proxy_event
from tests.e2e.conftest import WRITE, FakeContext, Loop


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
