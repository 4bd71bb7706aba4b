"""On AWS the worker queues what it applied for the archiver instead of writing S3 itself (README "Rules
lab"): through the whole loop, the worker's batch leaves no object and one archive message, the archiver
(`app.archive_events`, as Lambda hands it the queue's messages) writes the objects a backtest then reads, and
a person erased while their events wait in the archive queue never reaches the archive."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import wiring
from chalicelib.lab.layout import decode_object
from tests.e2e.conftest import MARKETING, FakeContext, Loop

BUCKET = "leadloop-test-archive-queue"
ADMIN = {"Authorization": "Bearer dev-admin-key"}


@pytest.fixture
def queued(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    s3, sqs = boto3.client("s3", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName="leadloop-test-archive")["QueueUrl"]
    monkeypatch.setenv("LEADLOOP_ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("LEADLOOP_ARCHIVE_QUEUE_URL", queue_url)
    wiring.reset()
    yield {"s3": s3, "sqs": sqs, "url": queue_url}


def _visit(loop: Loop, who: str, *, hand_raise: bool = True) -> None:
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    calls = [{"type": "identify", "messageId": f"{who}-1", "anonymousId": f"anon-{who}", "timestamp": now,
              "traits": {"email": f"{who}@bigco.example"}},
             {"type": "track", "messageId": f"{who}-2", "anonymousId": f"anon-{who}", "timestamp": now,
              "event": "Demo Requested" if hand_raise else "Webinar Attended"}]  # fmt: skip
    assert loop.track("/v1/batch", {"batch": calls}).status_code == 200
    loop.drain()


def _run_archiver(aws: dict[str, Any]) -> dict[str, Any]:
    import app

    messages = aws["sqs"].receive_message(QueueUrl=aws["url"], MaxNumberOfMessages=10)["Messages"]
    records = [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
         "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:leadloop-test-archive"}
        for m in messages
    ]  # fmt: skip
    answer: dict[str, Any] = app.archive_events({"Records": records}, FakeContext())
    answer["messages"] = len(messages)
    return answer


def _archived_leads(s3: Any) -> set[str]:
    leads = set()
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        _, events = decode_object(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
        leads |= {e.lead_id for e in events}
    return leads


def test_the_worker_queues_the_archive_and_the_archiver_writes_what_a_backtest_reads(
    loop: Loop, queued: dict[str, Any]
) -> None:
    _visit(loop, "quinn")
    assert queued["s3"].list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # the worker wrote nothing

    answer = _run_archiver(queued)
    assert (answer["messages"], answer["events"], answer["batchItemFailures"]) == (1, 2, [])
    assert queued["s3"].list_objects_v2(Bucket=BUCKET)["KeyCount"] == answer["objects"] >= 1

    rules = loop.client.http.get("/rules", headers=MARKETING).json_body["source"]
    draft = rules.replace('"Demo Requested", ', "")
    day = datetime.now(UTC).date().isoformat()
    body = json.dumps({"rules": draft, "from": day, "to": day})
    started = loop.client.http.post("/rules/backtest", headers=MARKETING, body=body).json_body
    for _ in range(600):
        job = loop.client.http.get(f"/rules/backtest/{started['id']}", headers=MARKETING).json_body
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)  # the local runner is a thread: poll, as the console would
    assert job["status"] == "done", job
    assert (job["report"]["published"]["routed"], job["report"]["draft"]["routed"]) == (1, 0)


def test_a_person_erased_while_their_events_wait_in_the_archive_queue_is_never_archived(
    loop: Loop, queued: dict[str, Any]
) -> None:
    _visit(loop, "rhea", hand_raise=False)
    _visit(loop, "sol", hand_raise=False)
    rhea = loop.sales("GET", "/leads/rhea@bigco.example").json_body["id"]
    sol = loop.sales("GET", "/leads/sol@bigco.example").json_body["id"]
    assert loop.client.http.delete(f"/leads/{rhea}", headers=ADMIN).status_code == 200

    answer = _run_archiver(queued)
    assert answer["erased_dropped"] == 2 and answer["events"] == 2
    assert _archived_leads(queued["s3"]) == {sol}
