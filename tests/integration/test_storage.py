"""Prospect and identity storage against moto and DynamoDB Local: locking, claims, the due index, the pool."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pynamodb.exceptions import PynamoDBException

from chalicelib.adapters.dynamo import (
    CapacityMeter,
    IdentityStore,
    ProspectRow,
    ProspectStore,
    StoredProspect,
    Tables,
)
from chalicelib.adapters.dynamo_tables import models_for
from chalicelib.errors import ConcurrentUpdate, MalformedInput, StorageUnavailable

T = TypeVar("T")


def row(
    lead_id: str, *, state: str = "nurturing", owner: str | None = None, score: float = 10.0
) -> ProspectRow:
    return ProspectRow(
        lead_id=lead_id,
        state=state,
        owner=owner,
        score=score,
        email=f"{lead_id}@example.com",
        name=f"Name {lead_id}",
        company="Acme",
        updated_at="2026-11-23T12:00:00+00:00",
    )


def run_together(*calls: Callable[[], T]) -> list[T | BaseException]:
    """Start every call at the same moment on its own thread; collect results or raised errors."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException] = [RuntimeError("did not run")] * len(calls)

    def run(i: int, call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # noqa: B036 - the test inspects whatever the thread raised
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- optimistic locking ----------------------------------------------------------------------------------


def test_save_then_get_round_trips_the_document_and_counts_versions(tables: Tables) -> None:
    store = ProspectStore(tables)
    doc: dict[str, Any] = {"traits": {"title": "CTO"}, "points": [1, 2.5], "seen": None}

    assert store.save("lead-1", doc, row("lead-1"), next_touch_at=None, expected_version=None) == 1
    assert store.save("lead-1", {**doc, "n": 2}, row("lead-1"), next_touch_at=None, expected_version=1) == 2

    stored = store.get("lead-1")
    assert stored is not None
    assert stored.doc == {**doc, "n": 2}
    assert stored.version == 2
    assert store.get("nobody") is None


def test_creating_a_prospect_that_exists_is_a_concurrent_update(tables: Tables) -> None:
    store = ProspectStore(tables)
    store.save("lead-1", {"by": "first"}, row("lead-1"), next_touch_at=None, expected_version=None)

    with pytest.raises(ConcurrentUpdate, match="lead-1 already exists"):
        store.save("lead-1", {"by": "second"}, row("lead-1"), next_touch_at=None, expected_version=None)
    assert store.get("lead-1").doc == {"by": "first"}  # type: ignore[union-attr]


def test_a_write_from_a_stale_version_is_refused_and_changes_nothing(tables: Tables) -> None:
    store = ProspectStore(tables)
    store.save("lead-1", {"v": 1}, row("lead-1"), next_touch_at=None, expected_version=None)
    store.save("lead-1", {"v": 2}, row("lead-1"), next_touch_at=None, expected_version=1)

    with pytest.raises(ConcurrentUpdate, match="changed after version 1"):
        store.save("lead-1", {"v": "stale"}, row("lead-1"), next_touch_at=None, expected_version=1)
    assert store.get("lead-1") == StoredProspect("lead-1", {"v": 2}, 2)


def test_two_writers_from_one_version_one_wins_and_the_other_must_reload(racing_tables: Tables) -> None:
    store = ProspectStore(racing_tables)
    store.save("lead-1", {"tags": []}, row("lead-1"), next_touch_at=None, expected_version=None)

    def write(tag: str) -> Callable[[], int]:
        return lambda: store.save(
            "lead-1", {"tags": [tag]}, row("lead-1"), next_touch_at=None, expected_version=1
        )

    results = run_together(write("a"), write("b"))

    assert sorted(type(r).__name__ for r in results) == ["ConcurrentUpdate", "int"]
    winner = "a" if results[0] == 2 else "b"
    stored = store.get("lead-1")
    assert stored is not None and stored.version == 2 and stored.doc == {"tags": [winner]}


def test_reload_and_retry_loses_no_update(racing_tables: Tables) -> None:
    store = ProspectStore(racing_tables)
    store.save("lead-1", {"clicks": 0}, row("lead-1"), next_touch_at=None, expected_version=None)
    conflicts = []

    def click_ten_times() -> None:
        for _ in range(10):
            while True:
                current = store.get("lead-1")
                assert current is not None
                doc = {"clicks": current.doc["clicks"] + 1}
                try:
                    store.save(
                        "lead-1", doc, row("lead-1"), next_touch_at=None, expected_version=current.version
                    )
                    break
                except ConcurrentUpdate:
                    conflicts.append(1)

    run_together(click_ten_times, click_ten_times)

    stored = store.get("lead-1")
    assert stored is not None
    assert stored.doc == {"clicks": 20}
    assert stored.version == 21


def test_delete_needs_the_current_version(tables: Tables) -> None:
    store = ProspectStore(tables)
    store.save("lead-1", {}, row("lead-1"), next_touch_at=None, expected_version=None)
    store.save("lead-1", {}, row("lead-1"), next_touch_at=None, expected_version=1)

    with pytest.raises(ConcurrentUpdate, match="changed after version 1"):
        store.delete("lead-1", expected_version=1)
    store.delete("lead-1", expected_version=2)
    assert store.get("lead-1") is None


def test_get_many_returns_only_known_leads(tables: Tables) -> None:
    store = ProspectStore(tables)
    for n in range(3):
        store.save(f"lead-{n}", {"n": n}, row(f"lead-{n}"), next_touch_at=None, expected_version=None)

    found = store.get_many(["lead-0", "lead-2", "lead-2", "ghost"])

    assert {k: v.doc for k, v in found.items()} == {"lead-0": {"n": 0}, "lead-2": {"n": 2}}


# --- identities ------------------------------------------------------------------------------------------


def test_identity_claim_race_leaves_one_owner(racing_tables: Tables) -> None:
    identities = IdentityStore(racing_tables)

    results = run_together(
        lambda: identities.claim("email:ada@x.com", "lead-a"),
        lambda: identities.claim("email:ada@x.com", "lead-b"),
    )

    assert results[0] == results[1]
    assert results[0] in {"lead-a", "lead-b"}
    assert identities.resolve(["email:ada@x.com", "anon:zzz"]) == {"email:ada@x.com": results[0]}


def test_claim_returns_the_existing_owner_and_point_moves_it(tables: Tables) -> None:
    identities = IdentityStore(tables)
    assert identities.claim("anon:1", "lead-a") == "lead-a"
    assert identities.claim("anon:1", "lead-b") == "lead-a"

    identities.point("anon:1", "lead-b")

    assert identities.resolve(["anon:1"]) == {"anon:1": "lead-b"}
    assert identities.claim("anon:1", "lead-c") == "lead-b"


# --- the due index ---------------------------------------------------------------------------------------


def test_due_returns_only_due_leads_earliest_first_and_reads_only_them(tables: Tables, now: datetime) -> None:
    store = ProspectStore(tables)
    touches = {
        "due-late": now - timedelta(hours=2),
        "due-early": now - timedelta(days=1),
        "due-now": now,
        **{f"later-{n}": now + timedelta(minutes=n + 1) for n in range(5)},
        **{f"none-{n}": None for n in range(12)},
    }
    for lead_id, touch in touches.items():
        store.save(lead_id, {}, row(lead_id), next_touch_at=touch, expected_version=None)
    meter = CapacityMeter()
    meter.watch(tables)
    try:
        due = store.due(now, limit=50)
        examined = meter.reading().items_examined
    finally:
        meter.close()

    assert due == ["due-early", "due-late", "due-now"]
    assert examined == 3


def test_unscheduling_a_touch_takes_the_lead_out_of_the_due_index(tables: Tables, now: datetime) -> None:
    store = ProspectStore(tables)
    store.save("lead-1", {}, row("lead-1"), next_touch_at=now - timedelta(minutes=1), expected_version=None)
    assert store.due(now, limit=10) == ["lead-1"]

    store.save("lead-1", {}, row("lead-1"), next_touch_at=None, expected_version=1)

    assert store.due(now, limit=10) == []


def test_due_honours_the_limit_across_shards(tables: Tables, now: datetime) -> None:
    store = ProspectStore(tables)
    for n in range(12):
        touch = now - timedelta(minutes=60 - n)
        store.save(f"lead-{n:02}", {}, row(f"lead-{n:02}"), next_touch_at=touch, expected_version=None)

    assert store.due(now, limit=5) == [f"lead-{n:02}" for n in range(5)]


# --- the pool list ---------------------------------------------------------------------------------------

POOL = [
    row("n1", score=90, owner=None),
    row("n2", score=70, owner="sam"),
    row("n3", score=50, owner=None),
    row("n4", score=30, owner="sam"),
    row("n5", score=10, owner=None),
    row("s1", state="sales_ready", score=80, owner="sam"),
    row("a1", state="accepted", score=60, owner="kim"),
]


@pytest.fixture
def pool(tables: Tables) -> ProspectStore:
    store = ProspectStore(tables)
    for item in POOL:
        store.save(item.lead_id, {"id": item.lead_id}, item, next_touch_at=None, expected_version=None)
    return store


def page_through(store: ProspectStore, **query: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        rows, cursor = store.list(cursor=cursor, **query)
        pages.append([r.lead_id for r in rows])
        if cursor is None:
            return pages


def test_list_by_state_pages_best_score_first(pool: ProspectStore) -> None:
    pages = page_through(pool, state="nurturing", owner=None, min_score=None, limit=2)

    assert pages == [["n1", "n2"], ["n3", "n4"], ["n5"]]


def test_list_rows_carry_the_columns(pool: ProspectStore) -> None:
    rows, _ = pool.list(state="sales_ready", owner=None, min_score=None, limit=10, cursor=None)

    # updated_at stays out of the pool index (it changes on every save); everything else is carried.
    assert rows == [replace(POOL[5], updated_at="")]


def test_list_filters_by_owner_and_min_score(pool: ProspectStore) -> None:
    by_owner = page_through(pool, state="nurturing", owner="sam", min_score=None, limit=1)
    by_score = page_through(pool, state="nurturing", owner=None, min_score=50, limit=10)

    assert [lead for page in by_owner for lead in page] == ["n2", "n4"]
    assert by_score == [["n1", "n2", "n3"]]


def test_list_without_state_covers_the_whole_pool_once(pool: ProspectStore) -> None:
    pages = page_through(pool, state=None, owner=None, min_score=None, limit=3)
    sam = page_through(pool, state=None, owner="sam", min_score=75, limit=1)

    assert sorted(lead for page in pages for lead in page) == sorted(r.lead_id for r in POOL)
    assert all(len(page) <= 3 for page in pages)
    assert [lead for page in sam for lead in page] == ["s1"]


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        _cursor(["a", "list"]),
        _cursor({"lead_id": {"S": "n2"}}),
        _cursor({"lead_id": {"S": "n2"}, "state": {"S": "nurturing"}, "score": {"S": "70"}}),
        _cursor({"lead_id": {"S": "n2"}, "state": {"S": "nurturing"}, "score": {"N": "NaN"}}),
        _cursor({"lead_id": {"S": "n2"}, "state": {"S": "won"}, "score": {"N": "70"}}),
    ],
    ids=["garbage", "not-a-key", "missing-parts", "wrong-type", "not-a-number", "other-state"],
)
def test_a_tampered_cursor_is_malformed_input(pool: ProspectStore, cursor: str) -> None:
    with pytest.raises(MalformedInput, match="cursor"):
        pool.list(state="nurturing", owner=None, min_score=None, limit=2, cursor=cursor)


def test_a_returned_cursor_is_accepted_back(pool: ProspectStore) -> None:
    _, cursor = pool.list(state="nurturing", owner=None, min_score=None, limit=2, cursor=None)
    assert cursor is not None

    rows, _ = pool.list(state="nurturing", owner=None, min_score=None, limit=2, cursor=cursor)

    assert [r.lead_id for r in rows] == ["n3", "n4"]


# --- failures --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "GetItem"
        ),
        ClientError({"Error": {"Code": "InternalServerError", "Message": "oops"}}, "GetItem"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
    ],
    ids=["throttled", "server-error", "unreachable"],
)
def test_outages_are_storage_unavailable_with_their_cause(
    moto_tables: Tables, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    # Failing below botocore's retries: the adapter sees what it would after they ran out.
    client = models_for(moto_tables).prospects._get_connection().connection.client

    def fail(*_: object) -> None:
        raise failure

    monkeypatch.setitem(vars(client), "_make_api_call", fail)  # undone by deleting it, not by a bound copy

    with pytest.raises(StorageUnavailable, match="storage is unavailable") as raised:
        ProspectStore(moto_tables).get("lead-1")
    assert raised.value.__cause__ is not None


def test_a_request_dynamodb_rejects_is_not_hidden_as_an_outage(
    moto_tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = models_for(moto_tables).prospects._get_connection().connection.client
    rejected = ClientError({"Error": {"Code": "ValidationException", "Message": "bad key"}}, "GetItem")

    def fail(*_: object) -> None:
        raise rejected

    monkeypatch.setitem(vars(client), "_make_api_call", fail)  # undone by deleting it, not by a bound copy

    with pytest.raises(PynamoDBException, match="bad key"):
        ProspectStore(moto_tables).get("lead-1")
