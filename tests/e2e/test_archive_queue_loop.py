"""On AWS the worker queues what it applied for the archiver instead of writing S3 itself (README "Rules
lab"): through the whole loop, the worker's batch leaves no object and one archive message, and the archiver
(`app.archive_events`, as Lambda hands it the queue's messages) writes the objects a backtest then reads."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from chalicelib import wiring
from tests.e2e.conftest import MARKETING, FakeContext, Loop

BUCKET = "leadloop-test-archive-queue"


def test_the_worker_queues_the_archive_and_the_archiver_writes_what_a_backtest_reads(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app

    s3, sqs = boto3.client("s3", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName="leadloop-test-archive")["QueueUrl"]
    monkeypatch.setenv("LEADLOOP_ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("LEADLOOP_ARCHIVE_QUEUE_URL", queue_url)
    wiring.reset()

    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    calls = [{"type": "identify", "messageId": "q-1", "anonymousId": "anon-q", "timestamp": now,
              "traits": {"email": "quinn@bigco.example"}},
             {"type": "track", "messageId": "q-2", "anonymousId": "anon-q", "event": "Demo Requested",
              "timestamp": now}]  # fmt: skip
    assert loop.track("/v1/batch", {"batch": calls}).status_code == 200
    loop.drain()
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # the worker wrote nothing to S3

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1  # one message for the worker's batch
    records: list[dict[str, Any]] = [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
         "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:leadloop-test-archive"}
        for m in messages
    ]  # fmt: skip
    answer = app.archive_events({"Records": records}, FakeContext())
    assert answer["events"] == 2 and answer["batchItemFailures"] == []
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == answer["objects"] >= 1

    rules = loop.client.http.get("/rules", headers=MARKETING).json_body["source"]
    draft = rules.replace('"Demo Requested", ', "")
    day = now[:10]
    started = loop.client.http.post(
        "/rules/backtest", headers=MARKETING, body=json.dumps({"rules": draft, "from": day, "to": day})
    ).json_body
    for _ in range(600):
        job = loop.client.http.get(f"/rules/backtest/{started['id']}", headers=MARKETING).json_body
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)  # the local runner is a thread: poll, as the console would
    assert job["status"] == "done", job
    assert (job["report"]["published"]["routed"], job["report"]["draft"]["routed"]) == (1, 0)
