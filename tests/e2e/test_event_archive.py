"""The rules lab's event archive through the whole loop (README "Rules lab"): what the worker applies is kept
in S3 (moto) as one object per day and shard of a batch, keyed by the lead it was applied to; a redelivered
batch writes nothing new; an erase leaves none of the person's events."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib import wiring
from chalicelib.lab.layout import shard_of
from tests.e2e.conftest import Loop

BUCKET = "leadloop-test-archive"
ADMIN = {"Authorization": "Bearer dev-admin-key"}


@pytest.fixture
def archived(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("LEADLOOP_ARCHIVE_BUCKET", BUCKET)
    wiring.reset()
    yield loop


def _objects() -> dict[str, list[dict[str, Any]]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {
        key: [
            json.loads(line)
            for line in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).splitlines()
        ]
        for key in keys
    }


def _page(message_id: str, anon: str, at: datetime, path: str = "/pricing") -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": anon,
        "timestamp": at.isoformat(),
        "properties": {"path": path},
    }


def test_a_batch_is_one_object_per_day_and_shard_and_a_redelivery_adds_nothing(
    archived: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app

    today = datetime.now(UTC).replace(microsecond=0)
    yesterday = today - timedelta(days=1)
    delivered: list[dict[str, Any]] = []
    worker = app.apply_events

    def recording(event: Any, context: Any) -> Any:
        delivered.append(event)
        return worker(event, context)

    monkeypatch.setattr(app, "apply_events", recording)
    batch = [
        _page("a-1", "anon-ada", yesterday),
        _page("a-2", "anon-ada", today, "/docs"),
        _page("a-3", "anon-ada", today, "/security"),
    ]
    archived.track("/v1/batch", {"batch": batch})
    archived.drain()

    objects = _objects()
    lead_id = archived.sales("GET", "/leads/anon-ada").json_body["id"]
    shard = shard_of(lead_id)
    days = {key.split("/")[1] for key in objects}
    assert days == {f"day={yesterday.date()}", f"day={today.date()}"}
    assert all(f"/shard={shard}/" in key for key in objects)
    lines = [line for held in objects.values() for line in held]
    assert sorted(line["event"]["message_id"] for line in lines) == ["seg:a-1", "seg:a-2", "seg:a-3"]
    assert {line["lead"] for line in lines} == {lead_id}  # after resolution: by lead, not anonymous id

    # SQS delivers the same batch again: the same keys, the same events, no second copy.
    from tests.e2e.conftest import FakeContext

    assert worker(delivered[0], FakeContext())["batchItemFailures"] == []
    assert _objects() == objects


def test_an_erase_removes_the_persons_events_and_keeps_everyone_elses(archived: Loop) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    archived.track("/v1/batch", {"batch": [_page("e-1", "anon-erin", now), _page("o-1", "anon-otto", now)]})
    identify = {
        "type": "identify",
        "messageId": "e-2",
        "anonymousId": "anon-erin",
        "traits": {"email": "erin@bigco.example"},
    }
    archived.track("/v1/batch", {"batch": [identify]})
    archived.drain()
    erin = archived.sales("GET", "/leads/erin@bigco.example").json_body["id"]
    before = [line for held in _objects().values() for line in held]
    assert {line["lead"] for line in before} >= {erin}

    answer = archived.client.http.delete(f"/leads/{erin}", headers=ADMIN)
    assert answer.status_code == 200, answer.body
    assert answer.json_body["removed"]["archived_events"] == 2

    after = [line for held in _objects().values() for line in held]
    assert [line["event"]["message_id"] for line in after] == ["seg:o-1"]
    assert "erin" not in json.dumps(after)


def test_a_backtest_over_the_archive_shows_a_draft_that_routes_fewer(archived: Loop) -> None:
    from tests.e2e.conftest import MARKETING

    now = datetime.now(UTC).replace(microsecond=0)
    identify = {"type": "identify", "messageId": "b-1", "anonymousId": "anon-bo",
                "timestamp": now.isoformat(), "traits": {"email": "bo@bigco.example"}}  # fmt: skip
    demo = {"type": "track", "messageId": "b-2", "anonymousId": "anon-bo", "event": "Demo Requested",
            "timestamp": now.isoformat()}  # fmt: skip
    archived.track("/v1/batch", {"batch": [identify, demo]})
    archived.drain()
    bo = archived.sales("GET", "/leads/bo@bigco.example").json_body
    assert bo["state"] == "sales_ready"

    rules = archived.client.http.get("/rules", headers=MARKETING).json_body["source"]
    draft = rules.replace('"Demo Requested", ', "")
    assert draft != rules
    body = {"rules": draft, "from": now.date().isoformat(), "to": now.date().isoformat()}
    started = archived.client.http.post("/rules/backtest", headers=MARKETING, body=json.dumps(body))
    assert started.status_code == 202, started.body
    job_id = started.json_body["id"]
    assert archived.sales("POST", "/rules/backtest", body).status_code == 403
    for _ in range(600):  # the local runner is a thread: poll, as the console would
        job = archived.client.http.get(f"/rules/backtest/{job_id}", headers=MARKETING).json_body
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    report = job["report"]
    assert (report["published"]["routed"], report["draft"]["routed"]) == (1, 0)
    assert [lead["lead"] for lead in report["lost"]["top"]] == [bo["id"]]

    broken = {**body, "rules": rules.replace("  fit: 40", "  fit: lots")}
    answer = archived.client.http.post("/rules/backtest", headers=MARKETING, body=json.dumps(broken))
    put = archived.client.http.put("/rules", headers={**MARKETING, "Content-Type": "application/yaml"},
                                   body=broken["rules"])  # fmt: skip
    assert answer.status_code == put.status_code == 422
    assert answer.json_body["error"]["details"] == put.json_body["error"]["details"]
