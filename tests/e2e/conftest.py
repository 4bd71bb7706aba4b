"""The whole loop in one process: chalice's test client over app.py, moto for DynamoDB, SQS and Step
Functions, and a drain that feeds queued messages to the worker handler exactly as Lambda would."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import wiring
from chalicelib.adapters.bootstrap import ensure_local_resources, seed_dev_keys
from chalicelib.adapters.dynamo import ProspectRow
from chalicelib.config import load_settings
from chalicelib.domain.prospect_document import prospect_to_doc

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from local_streams import StreamPoller  # noqa: E402 - the local stack's stream reader, as make run uses it

WRITE = {"Authorization": "Basic ZGV2LXdyaXRlLWtleTo="}  # dev-write-key:
SALES = {"Authorization": "Bearer dev-sales-key", "Content-Type": "application/json"}
MARKETING = {"Authorization": "Bearer dev-marketing-key", "Content-Type": "application/json"}


class FakeContext:
    function_name = "apply_events"
    aws_request_id = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _poller(function: str) -> StreamPoller:
    """The local stack's stream reader on moto's prospects stream, handing batches to `app.<function>`
    (looked up at each call, so a test may wrap it)."""
    import app

    return StreamPoller(
        boto3.client("dynamodb", region_name="us-east-1"),
        boto3.client("dynamodbstreams", region_name="us-east-1"),
        f"{wiring.settings().table_prefix}prospects",
        lambda event, context: getattr(app, function)(event, context),
        Path(tempfile.mkdtemp(prefix=f"leadloop-{function}-")),
        first_backoff_s=0.01,
        name=function,
    )


def _drained(poller: StreamPoller) -> int:
    delivered = 0
    while batch := poller.poll_once(threading.Event()):
        delivered += batch
    return delivered


@dataclass
class Loop:
    client: Client
    sqs: Any
    queue_url: str
    outbox: Path
    stream: StreamPoller | None = None

    def drain(self) -> int:
        """Deliver every queued message to the worker; returns how many records were handled."""
        import app

        handled = 0
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return handled
            records = [
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
            result = app.apply_events({"Records": records}, FakeContext())
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            assert not failed, f"worker failed records: {failed}"
            for record in records:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
            handled += len(records)

    def drain_stream(self) -> int:
        """Hand every prospect write on the table's stream to `app.dispatch_effects`, as Lambda's trigger
        would, with the local stack's own poller (scripts/local_streams.py); returns records delivered."""
        if self.stream is None:
            self.stream = _poller("dispatch_effects")
        return _drained(self.stream)

    def drain_counts(self) -> int:
        """Hand the whole prospects stream to `app.count_effects` with a new poller (its own checkpoint file,
        from the stream's start: every earlier batch is delivered again, as a retrying Lambda would)."""
        return _drained(_poller("count_effects"))

    def track(self, path: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.http.post(
            path, headers={**WRITE, "Content-Type": "application/json", **(headers or {})}, body=raw
        )

    def sales(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        call = getattr(self.client.http, method.lower())
        if body is None:
            return call(path, headers=SALES)
        return call(path, headers=SALES, body=json.dumps(body).encode())

    def sweep(self) -> dict[str, int]:
        return wiring.nurture_service().send_due()

    def make_due(self, lead_id: str) -> None:
        """Make the lead's next touch due now, its earlier messages a month old (so cadence allows one)."""
        stored = wiring.prospects().get(lead_id)
        assert stored is not None
        p = wiring.lead_service().prospect(lead_id)
        p.next_touch_at = wiring.utc_now() - timedelta(minutes=1)
        for message in p.messages:
            message.at -= timedelta(days=30)
        row = ProspectRow(lead_id, p.state.value, p.owner, 0.0, p.email, p.name, p.company, "")
        wiring.prospects().save(
            lead_id, prospect_to_doc(p), row, next_touch_at=p.next_touch_at, expected_version=stored.version
        )


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Loop]:
    env = {
        "LEADLOOP_STAGE": "test",
        "LEADLOOP_TABLE_PREFIX": f"t{uuid.uuid4().hex[:8]}-",
        "LEADLOOP_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LEADLOOP_PUBLIC_URL": "https://leads.example.test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("LEADLOOP_DYNAMODB_ENDPOINT", "LEADLOOP_AWS_ENDPOINT", "LEADLOOP_SLA_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        settings = load_settings()
        resources = ensure_local_resources(settings)
        monkeypatch.setenv("LEADLOOP_QUEUE_URL", resources["queue_url"])
        monkeypatch.setenv("LEADLOOP_DLQ_URL", resources["dead_letter_queue_url"])
        seed_dev_keys(settings)
        wiring.reset()
        import app

        with Client(app.app) as client:
            yield Loop(client, wiring.aws("sqs"), resources["queue_url"], tmp_path / "outbox")
        wiring.reset()
