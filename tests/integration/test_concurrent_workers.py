"""Several workers applying events to one prospect at once, over a real DynamoDB Local connection: every
event lands exactly once (DynamoDB Local, unlike moto, really interleaves the conditional writes)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamo import ActivityLog, Counters, IdentityStore, ProspectStore, Tables
from chalicelib.adapters.notify import Delivery
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import prospect_from_doc
from chalicelib.services import LeadService
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WORKERS, EVENTS_EACH = 4, 6


class _Quiet:
    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        return []


def _service(tables: Tables) -> LeadService:
    rules = load_default_rules()
    return LeadService(
        prospects=ProspectStore(tables), identities=IdentityStore(tables), activity=ActivityLog(tables),
        counters=Counters(tables), rules=lambda: rules, notifier=_Quiet(),  # type: ignore[arg-type]
        workflow=SlaWorkflow(None, None), public_url="https://leads.example.test", clock=lambda: NOW,
    )  # fmt: skip


def _page(worker: int, n: int) -> Event:
    return Event(
        message_id=f"w{worker}-{n}", kind=EventKind.PAGE, at=NOW - timedelta(minutes=worker * 10 + n),
        source="test", user_id="u-1", properties={"path": f"/docs/w{worker}/{n}", "title": "doc"},
    )  # fmt: skip


@pytest.mark.dynamodb_local
def test_concurrent_workers_on_one_prospect_lose_no_event(dynamodb_local_tables: Tables) -> None:
    services = [_service(dynamodb_local_tables) for _ in range(WORKERS)]
    services[0].apply_events([_page(99, 0)])  # the prospect exists before the race
    start = threading.Barrier(WORKERS)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        start.wait()
        try:
            for n in range(EVENTS_EACH):
                services[worker].apply_events([_page(worker, n)])  # one SQS batch per event: most contention
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures

    lead_id = IdentityStore(dynamodb_local_tables).resolve(["user:u-1"])["user:u-1"]
    stored = ProspectStore(dynamodb_local_tables).get(lead_id)
    assert stored is not None
    profile = prospect_from_doc(stored.doc)
    assert len(profile.pages) == 1 + WORKERS * EVENTS_EACH  # every page exactly once
    assert len(set(profile.seen)) == len(profile.seen) == 1 + WORKERS * EVENTS_EACH
    assert stored.version == 1 + WORKERS * EVENTS_EACH  # one write per event, none lost or doubled
