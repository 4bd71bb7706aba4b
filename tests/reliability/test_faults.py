"""Storage that throttles or fails on a share of its calls: every event is still applied, and none twice.

The worker is driven as Lambda and SQS drive it: records the handler reports as failed come back;
everything else is deleted. Faults hit profile reads and writes, identity
claims and the activity log, seeded so a failure reproduces.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import app
from chalicelib.adapters.dynamo import ActivityLog, IdentityStore, ProspectStore
from chalicelib.adapters.queue import pack
from chalicelib.domain.events import Event, EventKind
from chalicelib.errors import StorageUnavailable
from tests.e2e.conftest import FakeContext
from tests.reliability.conftest import Loop

AT = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
FAULT_SHARE = 0.2
# More receives than the queue's five: this asserts eventual application; a record past five goes to the
# dead-letter queue in production and comes back by redrive (tests/reliability/test_poison_record.py).
MAX_RECEIVES = 50


def _flaky(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, dice: random.Random, on: list[bool]
) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def sometimes_throttled(self: Any, *args: Any, **kwargs: Any) -> Any:
        if on[0] and dice.random() < FAULT_SHARE:
            raise StorageUnavailable(f"injected throttling in {owner.__name__}.{name}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, sometimes_throttled)


def _events(prospects: int, pages: int) -> list[Event]:
    return [
        Event(message_id=f"p{p}-{n}", kind=EventKind.PAGE, at=AT + timedelta(seconds=p * 100 + n),
              source="website", anonymous_id=f"anon-{p}",
              properties={"path": f"/docs/{p}/{n}", "title": "doc"})
        for p in range(prospects) for n in range(pages)
    ]  # fmt: skip


def _record(body: str) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "h", "body": body, "attributes": {},
            "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events"}  # fmt: skip


def test_injected_storage_faults_lose_no_event_and_double_none(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    dice = random.Random(20261123)
    faults_on = [True]
    for owner, name in ((ProspectStore, "save"), (ProspectStore, "get"), (IdentityStore, "claim"),
                        (IdentityStore, "resolve"), (ActivityLog, "append")):  # fmt: skip
        _flaky(monkeypatch, owner, name, dice, faults_on)
    events = _events(prospects=6, pages=5)
    bodies = [body for i in range(0, len(events), 3) for body in pack(events[i : i + 3])]
    pending = {str(i): (body, 0) for i, body in enumerate(bodies)}
    while pending:
        batch = list(pending.items())[:10]
        records = [_record(body) | {"messageId": key} for key, (body, _) in batch]
        answer = app.apply_events({"Records": records}, FakeContext())
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        for key, (body, receives) in batch:
            if key not in failed:
                del pending[key]
            elif receives + 1 >= MAX_RECEIVES:
                pytest.fail(f"record {key} failed {MAX_RECEIVES} times in a row")
            else:
                pending[key] = (body, receives + 1)
    faults_on[0] = False

    pool = loop.sales("GET", "/leads?limit=100").json_body["leads"]
    assert len(pool) == 6  # one prospect per visitor: no claim raced into a second lead
    for lead in pool:
        summary = loop.sales("GET", f"/leads/{lead['id']}").json_body
        paths = [page["path"] for page in summary["pages"]]
        assert len(paths) == len(set(paths)) == 5, paths  # every page once
