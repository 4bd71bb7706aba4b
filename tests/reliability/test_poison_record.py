"""One bad record in an SQS batch fails alone: the rest of the batch is applied, only it is redelivered,
and a record no retry can read is set aside on the dead-letter queue with its reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.dynamo import ProspectStore
from chalicelib.adapters.queue import pack
from chalicelib.domain.events import Event, EventKind
from chalicelib.errors import StorageUnavailable
from tests.e2e.conftest import FakeContext
from tests.reliability.conftest import Loop

POISON = "poison@bigco.example"
AT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def identify(email: str, n: int) -> Event:
    return Event(
        message_id=f"m-{email}",
        kind=EventKind.IDENTIFY,
        at=AT + timedelta(seconds=n),
        source="website",
        anonymous_id=f"anon-{email}",
        user_id=f"user-{email}",
        email=email,
        traits={"email": email, "title": "VP Engineering", "company": "BigCo"},
    )


def record(body: str) -> dict[str, Any]:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
    }


def emails_in_pool(loop: Loop) -> set[str]:
    leads = loop.sales("GET", "/leads?limit=100").json_body["leads"]
    return {lead["email"] for lead in leads}


@pytest.fixture
def poisoned_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage that can never write one prospect (the others are untouched)."""
    original = ProspectStore.save

    def save(self: ProspectStore, lead_id: str, doc: dict[str, Any], row: Any, **kwargs: Any) -> int:
        if row.email == POISON:
            raise StorageUnavailable("injected: this prospect's partition is unavailable")
        return original(self, lead_id, doc, row, **kwargs)

    monkeypatch.setattr(ProspectStore, "save", save)


def test_a_record_that_keeps_failing_fails_alone_and_the_rest_of_its_batch_lands(
    loop: Loop, poisoned_store: None
) -> None:
    import app

    emails = [f"lead{n}@bigco.example" for n in range(9)]
    bodies = [pack([identify(email, n)])[0] for n, email in enumerate(emails)]
    poison = record(pack([identify(POISON, 99)])[0])
    records = [record(body) for body in bodies[:4]] + [poison] + [record(body) for body in bodies[4:]]

    result = app.apply_events({"Records": records}, FakeContext())

    assert result == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}
    assert emails_in_pool(loop) == set(emails)


def test_redelivering_the_batch_applies_nothing_twice(loop: Loop, poisoned_store: None) -> None:
    import app

    bodies = [pack([identify(f"lead{n}@bigco.example", n)])[0] for n in range(3)]
    bodies.append(pack([identify(POISON, 99)])[0])
    for _ in range(2):  # SQS redelivers the failed record; a retried Lambda may resend them all
        app.apply_events({"Records": [record(body) for body in bodies]}, FakeContext())

    leads = loop.sales("GET", "/leads?limit=100").json_body["leads"]
    assert sorted(lead["email"] for lead in leads) == [f"lead{n}@bigco.example" for n in range(3)]
    for lead in leads:
        summary = loop.sales("GET", f"/leads/{lead['id']}").json_body
        assert [h["to"] for h in summary["history"]] == ["nurturing"]  # identified once, not twice


def test_an_unreadable_record_goes_to_the_dead_letter_queue_with_its_reason(loop: Loop) -> None:
    import app

    good = record(pack([identify("ada@bigco.example", 1)])[0])
    garbage = record("{not json")
    result = app.apply_events({"Records": [garbage, good]}, FakeContext())

    assert result == {"batchItemFailures": []}  # never retried: no retry can read it
    assert emails_in_pool(loop) == {"ada@bigco.example"}
    dlq = wiring.settings().dead_letter_queue_url
    held = loop.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"], MaxNumberOfMessages=10)
    messages = held.get("Messages", [])
    assert [m["Body"] for m in messages] == ["{not json"]
    assert "not JSON" in messages[0]["MessageAttributes"]["reason"]["StringValue"]
