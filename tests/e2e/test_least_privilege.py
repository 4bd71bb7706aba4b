"""Every AWS call each function really makes, checked against that function's role in the packaged template.

The template tests (tests/integration/test_infra.py) read the roles; this runs a prospect's journey through
the functions' handlers on moto, records each call botocore makes (boto3 and PynamoDB alike) while a
handler runs, and asks of each whether the role of the function that made it allows that action on that
resource. The effects dispatcher reads the prospects table's stream after each step, as its trigger would;
the journey runs twice: with the writers' fast path (each function performs its writes' effects itself and
the dispatcher finds them done), and without it (the dispatcher performs every effect). A permission
trimmed too far fails here instead of as AccessDenied in production; a call a function should never make
(the ingest function writing a profile) fails here too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient

from chalicelib.domain.seen import SPILL_AT
from scripts.check_artifact import proxy_event
from tests.e2e.conftest import WRITE, FakeContext, Loop
from tests.e2e.test_lead_loop import journey
from tests.packaged import grants, packaged_template

Call = tuple[str, str, str]  # role, IAM action, resource as the template names it
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return packaged_template(tmp_path_factory.mktemp("build"), "ci")


class CallRecorder:
    """Records, while a role is set, each botocore call as the IAM actions and resources it needs."""

    def __init__(self) -> None:
        self.role: str | None = None
        self.calls: set[Call] = set()

    @contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        self.role = role
        try:
            yield
        finally:
            self.role = None

    def record(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if self.role is not None:
            self.calls.update(
                (self.role, action, resource) for action, resource in needs(service, operation, params)
            )


def table_resource(table: str, index: str | None = None) -> str:
    suffix = table.removeprefix(os.environ["LEADLOOP_TABLE_PREFIX"])
    arn = "${" + suffix.capitalize() + "Table.Arn}"
    return f"{arn}/index/{index}" if index else arn


def queue_resource(url: str) -> str:
    names = {
        os.environ["LEADLOOP_QUEUE_URL"]: "EventsQueue",
        os.environ["LEADLOOP_DLQ_URL"]: "EventsDeadLetterQueue",
        os.environ.get("LEADLOOP_ARCHIVE_QUEUE_URL", "-"): "ArchiveQueue",
    }
    return "${" + names[url] + ".Arn}"


def needs(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (action, resource) pairs IAM checks for one API call, resources written as the template does."""
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", table_resource(t)) for t in params["RequestItems"]]
        if operation == "TransactWriteItems":
            return [
                (f"dynamodb:{TRANSACT_ACTIONS[kind]}", table_resource(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        return [(f"dynamodb:{operation}", table_resource(params["TableName"], params.get("IndexName")))]
    if service == "s3":
        bucket = "${EventArchiveBucket.Arn}"
        if operation == "ListObjectsV2":
            return [("s3:ListBucket", bucket)]
        return [(f"s3:{operation}", f"{bucket}/{params['Key']}")]
    if service == "sqs":
        action = "sqs:SendMessage" if operation == "SendMessageBatch" else f"sqs:{operation}"
        return [(action, queue_resource(params["QueueUrl"]))]
    raise AssertionError(f"a call this check does not know how to map: {service} {operation}")


@pytest.fixture
def recorder(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> CallRecorder:
    import app

    recorder = CallRecorder()
    make_api_call = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        recorder.record(client.meta.service_model.service_name, operation, params)
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    apply_events = app.apply_events

    def worker(event: Any, context: Any) -> Any:
        with recorder.acting_as("ApplyEventsRole"):
            return apply_events(event, context)

    monkeypatch.setattr(app, "apply_events", worker)  # Loop.drain calls it by name
    dispatch_effects = app.dispatch_effects

    def dispatcher(event: Any, context: Any) -> Any:
        with recorder.acting_as("DispatchEffectsRole"):
            return dispatch_effects(event, context)

    monkeypatch.setattr(app, "dispatch_effects", dispatcher)  # Loop.drain_stream calls it by name
    count_effects = app.count_effects

    def counter(event: Any, context: Any) -> Any:
        with recorder.acting_as("CountEffectsRole"):
            return count_effects(event, context)

    monkeypatch.setattr(app, "count_effects", counter)  # Loop.drain_counts calls it by name
    return recorder


def _archive_in_s3(monkeypatch: pytest.MonkeyPatch) -> str:
    """The event archive on (as deployed): the worker queues it, the archiver writes it, an erase reads and
    rewrites it. Returns the archive queue's URL."""
    import boto3

    from chalicelib import wiring

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="leadloop-ci-events")
    url: str = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="leadloop-ci-archive")[
        "QueueUrl"
    ]
    monkeypatch.setenv("LEADLOOP_ARCHIVE_BUCKET", "leadloop-ci-events")
    monkeypatch.setenv("LEADLOOP_ARCHIVE_QUEUE_URL", url)
    wiring.reset()
    return url


def _run_archiver(recorder: CallRecorder, url: str) -> None:
    """What Lambda's trigger does with the archive queue: hand its messages to app.archive_events."""
    import boto3

    import app

    sqs = boto3.client("sqs", region_name="us-east-1")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
        with recorder.acting_as("ArchiveEventsRole"):
            assert app.archive_events({"Records": records}, FakeContext())["batchItemFailures"] == []
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _stream_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fast path: the writers leave every effect to the stream, as when each inline attempt fails."""
    from chalicelib.usecases.leads import LeadService

    monkeypatch.setattr(LeadService, "_perform", lambda self, write: None)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "stream-only"])
def test_each_function_makes_only_calls_its_role_allows(
    loop: Loop,
    recorder: CallRecorder,
    template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    fast_path: bool,
) -> None:
    import app

    if not fast_path:
        _stream_only(monkeypatch)
    monkeypatch.setenv("LEADLOOP_COUNT_IN_STREAM", "1")  # as deployed: counts by the stream's second reader
    archive_queue = _archive_in_s3(monkeypatch)
    visit = journey("grace@bigco.example", "anon-lp")
    visit["batch"] = visit["batch"][:4]  # no hand-raise yet: the lead is nurtured first
    with recorder.acting_as("IngestRole"):
        body = json.dumps(visit).encode()
        headers = {**WRITE, "Content-Type": "application/json"}
        answer = app.ingest(proxy_event("POST", "/v1/{call}", "/v1/batch", body, headers), FakeContext())
        assert answer["statusCode"] == 200
    loop.drain()
    loop.drain_stream()
    # A busy hour: its ids move out of the profile item into an idempotency chunk, and the redelivered batch
    # is looked up in it (chalicelib.domain.seen).
    views = [
        {"type": "page", "messageId": f"lp-v{n}", "anonymousId": "anon-lp", "properties": {"path": f"/d/{n}"}}
        for n in range(SPILL_AT + 6)
    ]
    for _ in range(2):
        with recorder.acting_as("IngestRole"):
            body = json.dumps({"batch": views}).encode()
            answer = app.ingest(proxy_event("POST", "/v1/{call}", "/v1/batch", body, headers), FakeContext())
            assert answer["statusCode"] == 200
        loop.drain()
    loop.drain_stream()

    lead_id = loop.sales("GET", "/leads").json_body["leads"][0]["id"]
    loop.make_due(lead_id)
    with recorder.acting_as("SendDueTouchesRole"):
        assert loop.sweep()["sent"] == 1
    loop.drain_stream()

    hand_raise = {"type": "track", "messageId": "lp-t1", "userId": "user-anon-lp", "event": "Demo Requested"}
    with recorder.acting_as("IngestRole"):
        body = json.dumps(hand_raise).encode()
        answer = app.ingest(proxy_event("POST", "/v1/{call}", "/v1/track", body, headers), FakeContext())
        assert answer["statusCode"] == 200
    loop.drain()
    assert loop.drain_stream() >= 1  # the routing's outbox: activity, counters, notification, SLA
    _run_archiver(recorder, archive_queue)

    with recorder.acting_as("ApiHandlerRole"):
        assert loop.sales("GET", "/leads?state=sales_ready").status_code == 200
        assert loop.sales("GET", f"/leads/{lead_id}").status_code == 200
        assert loop.sales("POST", f"/leads/{lead_id}/accept", {}).status_code == 200
        assert loop.sales("POST", f"/leads/{lead_id}/recycle", {"reason": "bad_timing"}).status_code == 200
        assert (
            loop.client.http.get("/metrics", headers={"Authorization": "Bearer dev-sales-key"}).status_code
            == 200
        )
        admin = {"Authorization": "Bearer dev-admin-key"}
        assert loop.client.http.get(f"/leads/{lead_id}/export", headers=admin).status_code == 200
        assert loop.client.http.delete(f"/leads/{lead_id}", headers=admin).status_code == 200
    loop.drain_stream()
    assert loop.drain_counts() >= 1

    assert ("ApplyEventsRole", "sqs:SendMessage", "${ArchiveQueue.Arn}") in recorder.calls
    assert ("ApplyEventsRole", "dynamodb:BatchGetItem", "${NoncesTable.Arn}") in recorder.calls
    assert ("ArchiveEventsRole", "s3:PutObject") in {(role, action) for role, action, _ in recorder.calls}
    roles = {role for role, _, _ in recorder.calls}
    assert roles == {
        "IngestRole",
        "ApplyEventsRole",
        "ArchiveEventsRole",
        "SendDueTouchesRole",
        "ApiHandlerRole",
        "DispatchEffectsRole",
        "CountEffectsRole",
    }
    refused = sorted(
        call for call in recorder.calls if not grants(template["Resources"][call[0]], call[1], call[2])
    )
    assert refused == [], "calls the function's role would refuse (role, action, resource):\n" + "\n".join(
        map(str, refused)
    )
    # The point of the ingest function: it reads keys and enqueues, and touches nothing else.
    assert {(action, resource) for role, action, resource in recorder.calls if role == "IngestRole"} == {
        ("dynamodb:GetItem", "${KeysTable.Arn}"),
        ("sqs:SendMessage", "${EventsQueue.Arn}"),
    }
    # The dispatcher performs what the writes decided: it reads no profile and writes none.
    dispatched = {
        (action, resource) for role, action, resource in recorder.calls if role == "DispatchEffectsRole"
    }
    assert not {resource for _, resource in dispatched} & {"${ProspectsTable.Arn}", "${IdentitiesTable.Arn}"}
    if not fast_path:  # it did the work: activity, effect marks (counts are the count consumer's)
        assert ("dynamodb:PutItem", "${NoncesTable.Arn}") in dispatched
        assert any(resource == "${ActivityTable.Arn}" for _, resource in dispatched)
    # The count consumer moves counters with its shards' checkpoints, and touches nothing else.
    counted = {(action, resource) for role, action, resource in recorder.calls if role == "CountEffectsRole"}
    assert ("dynamodb:UpdateItem", "${CountersTable.Arn}") in counted
    assert {resource for _, resource in counted} <= {"${CountersTable.Arn}", "${NoncesTable.Arn}"}


def test_the_check_sees_a_call_the_role_refuses(
    loop: Loop, recorder: CallRecorder, template: dict[str, Any]
) -> None:
    from chalicelib import wiring

    with recorder.acting_as("IngestRole"):
        wiring.prospects().get("nobody")  # what a parsing bug in ingest must not be able to do
    (call,) = recorder.calls
    assert call == ("IngestRole", "dynamodb:GetItem", "${ProspectsTable.Arn}")
    assert not grants(template["Resources"]["IngestRole"], call[1], call[2])
