"""What is decided is done: effects decided with a write survive a failure after the write, and a prospect
that can never be written fails alone.

- An effect that fails once (the owner notification raises, the SLA workflow is throttled) is performed
  again from the prospects table's stream, and everything the routing decided happens exactly once: the
  audit entries, the scoreboard counters, the SLA workflow, the notification.
- A prospect whose write DynamoDB will never accept (its item too large) is parked on the dead-letter queue
  with its events alone; a bystander's hand-raise in the same SQS message is applied, and the message is
  not retried.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import PutError

from chalicelib import wiring
from chalicelib.adapters.dynamo_tables import ProspectModel
from chalicelib.adapters.notify import SalesNotifier
from chalicelib.adapters.queue import pack
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.domain.events import Event, EventKind
from tests.e2e.conftest import FakeContext, Loop
from tests.e2e.test_lead_loop import journey
from tests.integration.test_sla_workflow_loop import SlaLoop, sla_loop
from tests.reliability.test_poison_record import record

__all__ = ["sla_loop"]

AT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def _fail_first_call(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, error: Exception) -> list[int]:
    original = getattr(cls, name)
    calls: list[int] = []

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, flaky)
    return calls


def test_an_effect_that_fails_once_is_performed_again_and_everything_happens_exactly_once(
    sla_loop: SlaLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    sla_loop.use_sla(accept_seconds=600, escalate_seconds=600)
    notify_calls = _fail_first_call(
        monkeypatch, SalesNotifier, "notify", ValueError("Header values may not contain linefeed")
    )
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution"
    )
    start_calls = _fail_first_call(monkeypatch, SlaWorkflow, "start", throttled)

    lead_id = sla_loop.route()  # the worker saves the routing; two of its effects fail right after
    loop = sla_loop.loop
    before = sla_loop.summary(lead_id)
    assert before["state"] == "sales_ready"
    assert "notified" not in [e["kind"] for e in before["activity"]]

    assert loop.drain_stream() >= 1  # the stream hands the routing's outbox to the dispatcher
    loop.drain_stream()  # and a second pass (a redelivered stream batch) changes nothing
    loop.drain()

    after = sla_loop.summary(lead_id)
    kinds = Counter(entry["kind"] for entry in after["activity"])
    assert kinds["notified"] == 1 and kinds["sla_started"] == 1 and kinds["assigned"] == 1
    routed = [e for e in after["activity"] if e["kind"] == "transition" and e["to"] == "sales_ready"]
    assert len(routed) == 1
    assert len(notify_calls) == 2 and len(start_calls) == 2  # failed once, then done once
    notes = [json.loads(p.read_text()) for p in (loop.outbox / "notifications").glob("*.json")]
    assert len(notes) == 1 and "hand-raise: Demo Requested" in notes[0]["why"]  # low fit: company unknown
    executions = sla_loop.sfn.list_executions(stateMachineArn=sla_loop.state_machine_arn)["executions"]
    assert len(executions) == 1
    board = loop.sales("GET", "/metrics").json_body
    assert board["routed"]["total"] == 1 and board["routed"]["hand_raise"] == 1, board["routed"]
    assert {"stage": "sales_ready", "entered": 1.0} in [
        {"stage": row["stage"], "entered": row["entered"]} for row in board["stages"]["funnel"]
    ]


POISON = "poison@bigco.example"


def _track(email: str, name: str, n: int) -> Event:
    return Event(
        message_id=f"m-{email}-{n}",
        kind=EventKind.TRACK if name else EventKind.IDENTIFY,
        at=AT + timedelta(seconds=n),
        source="website",
        name=name,
        anonymous_id=f"anon-{email}",
        email=email,
        traits={"email": email, "title": "VP Engineering", "company": "BigCo"},
    )


@pytest.fixture
def oversized_prospect(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB refuses every write of one prospect for good (its item would pass 400 KB)."""
    original = ProspectModel.save

    def save(self: ProspectModel, *args: Any, **kwargs: Any) -> Any:
        if self.email == POISON:
            error = ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Item size has exceeded the maximum"}},
                "PutItem",
            )
            raise PutError("Failed to put item", cause=error)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProspectModel, "save", save)


def test_a_poisoned_prospect_is_parked_alone_and_a_bystander_in_the_same_message_is_applied(
    loop: Loop, oversized_prospect: None
) -> None:
    import app

    bystander = "ada@bigco.example"
    events = [
        _track(POISON, "", 1),
        _track(bystander, "", 2),
        _track(POISON, "Demo Requested", 3),
        _track(bystander, "Demo Requested", 4),
    ]
    (body,) = pack(events)  # one SQS message, as ingest packs one request

    result = app.apply_events({"Records": [record(body)]}, FakeContext())

    assert result == {"batchItemFailures": []}  # nothing to gain from redelivering it
    summary = loop.sales("GET", f"/leads/{bystander}").json_body
    assert summary["state"] == "sales_ready"
    dlq = wiring.settings().dead_letter_queue_url
    held = loop.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], MaxNumberOfMessages=10)
    (parked,) = held["Messages"]
    parked_emails = {event.get("email") for event in json.loads(parked["Body"])["events"]}
    assert parked_emails == {POISON}
    reason = parked["MessageAttributes"]["reason"]["StringValue"]
    assert "cannot be applied" in reason and "Item size" in reason
    assert loop.sales("GET", f"/leads/{POISON}").status_code == 404


def test_parked_events_are_applied_when_replayed_after_the_cause_is_fixed(
    loop: Loop, monkeypatch: pytest.MonkeyPatch, oversized_prospect: None
) -> None:
    import app
    from scripts.replay_dead_letters import replay_events

    (body,) = pack([_track(POISON, "", 1), _track(POISON, "Demo Requested", 2)])
    assert app.apply_events({"Records": [record(body)]}, FakeContext()) == {"batchItemFailures": []}
    assert loop.sales("GET", f"/leads/{POISON}").status_code == 404

    monkeypatch.undo()  # the cause is fixed (say, a bound added to the profile); the parked work is not lost
    replayed = replay_events(limit=100, dry_run=False)
    loop.drain()

    assert replayed["replayed"] == 1 and any("Item size" in r for r in replayed["reasons"])
    assert loop.sales("GET", f"/leads/{POISON}").json_body["state"] == "sales_ready"


def test_effects_the_local_stack_set_aside_are_performed_by_make_replay(
    loop: Loop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make run` sets a stream batch aside after its retries; `make replay ARGS=effects` performs it."""
    from local_streams import StreamPoller

    import app
    from scripts.replay_dead_letters import replay_effects_file

    broken = ValueError("Header values may not contain linefeed")
    monkeypatch.setattr(SalesNotifier, "notify", lambda *args, **kwargs: (_ for _ in ()).throw(broken))
    assert loop.track("/v1/batch", journey()).status_code == 200
    loop.drain()  # routed; its notification failed right after the write
    poller = StreamPoller(
        boto3.client("dynamodb", region_name="us-east-1"),
        boto3.client("dynamodbstreams", region_name="us-east-1"),
        f"{wiring.settings().table_prefix}prospects",
        lambda event, context: app.dispatch_effects(event, context),
        tmp_path,
        max_attempts=2,
        first_backoff_s=0.01,
    )
    while poller.poll_once(threading.Event()):
        pass
    assert poller.dead_letter_path.exists()  # still failing: set aside, not lost

    monkeypatch.undo()  # the cause is fixed
    result = replay_effects_file(poller.dead_letter_path, dry_run=False)

    assert result["replayed"] >= 1 and result["still_failing"] == 0
    notes = [json.loads(p.read_text()) for p in (loop.outbox / "notifications").glob("*.json")]
    assert len(notes) == 1 and "hand-raise: Demo Requested" in notes[0]["why"]  # low fit: company unknown
    assert poller.dead_letter_path.read_text() == ""
