"""Activity log, nonces, API keys, versioned content and counters against moto and DynamoDB Local."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamo import (
    ActivityEntry,
    ActivityLog,
    CapacityMeter,
    ContentStore,
    Counters,
    DynamoSeenChunks,
    KeyStore,
    NonceStore,
    ProspectRow,
    ProspectStore,
    Tables,
    create_tables,
)
from chalicelib.errors import ConcurrentUpdate, NotFound
from tests.integration.test_storage import run_together

# --- activity --------------------------------------------------------------------------------------------


def entry(
    lead_id: str, at: datetime, kind: str = "page", actor: str = "lead", **data: object
) -> ActivityEntry:
    return ActivityEntry(lead_id=lead_id, at=at, kind=kind, actor=actor, data=dict(data))


def test_activity_for_a_lead_is_newest_first(tables: Tables, now: datetime) -> None:
    log = ActivityLog(tables)
    entries = [entry("lead-1", now + timedelta(seconds=n), path=f"/p{n}") for n in range(5)]
    log.append("lead-1", entries[:3])
    log.append("lead-1", entries[3:])
    log.append("lead-2", [entry("lead-2", now, path="/other")])

    history = log.for_lead("lead-1")

    assert history == list(reversed(entries))
    assert log.for_lead("lead-1", limit=2) == [entries[4], entries[3]]


def test_activity_keeps_data_and_a_redelivered_entry_is_stored_once(tables: Tables, now: datetime) -> None:
    log = ActivityLog(tables)
    first = ActivityEntry("lead-1", now, "transition", "sales:sam", {"from": "nurturing", "at": now}, 30)
    twin = ActivityEntry("lead-1", now, "transition", "sales:sam", {"from": "sales_ready"}, 30)

    log.append("lead-1", [first])
    log.append("lead-1", [first])  # an SQS redelivery of the same event
    log.append("lead-1", [twin])  # same instant, different content: a different entry

    history = log.for_lead("lead-1")
    assert len(history) == 2
    assert {e.data["from"] for e in history} == {"nurturing", "sales_ready"}
    stored = next(e for e in history if e.data["from"] == "nurturing")
    assert stored.data["at"] == now.isoformat()
    assert stored.ttl_days == 30


def test_append_writes_more_than_one_batch(tables: Tables, now: datetime) -> None:
    log = ActivityLog(tables)
    log.append("lead-1", [entry("lead-1", now + timedelta(milliseconds=n)) for n in range(60)])

    assert len(log.for_lead("lead-1", limit=100)) == 60


def test_feed_spans_days_newest_first_within_bounds(tables: Tables, now: datetime) -> None:
    log = ActivityLog(tables)
    at = [now - timedelta(days=2), now - timedelta(days=1), now - timedelta(hours=1), now]
    for n, moment in enumerate(at):
        log.append(f"lead-{n}", [entry(f"lead-{n}", moment, actor="sales:sam" if n % 2 else "lead")])

    feed = log.feed(since=at[1], until=now, actor=None, limit=10)
    sam = log.feed(since=at[0], until=now + timedelta(seconds=1), actor="sales:sam", limit=10)
    capped = log.feed(since=at[0], until=now + timedelta(seconds=1), actor=None, limit=3)

    assert [e.lead_id for e in feed] == ["lead-2", "lead-1"]  # since inclusive, until exclusive
    assert [e.lead_id for e in sam] == ["lead-3", "lead-1"]
    assert [e.lead_id for e in capped] == ["lead-3", "lead-2", "lead-1"]


# --- nonces ----------------------------------------------------------------------------------------------


def test_a_nonce_is_accepted_once(tables: Tables, now: datetime) -> None:
    nonces = NonceStore(tables)
    expires = now + timedelta(minutes=5)

    assert nonces.remember("sendgrid:evt-1", expires_at=expires) is True
    assert nonces.remember("sendgrid:evt-1", expires_at=expires) is False
    assert nonces.remember("sendgrid:evt-2", expires_at=expires) is True


def test_a_nonce_raced_by_two_deliveries_wins_once(racing_tables: Tables, now: datetime) -> None:
    nonces = NonceStore(racing_tables)
    results = run_together(*[lambda: nonces.remember("unsub:tok", expires_at=now)] * 3)

    assert sorted(results) == [False, False, True]  # type: ignore[type-var]


def test_an_idempotency_chunk_is_written_once_and_read_back(tables: Tables, now: datetime) -> None:
    chunks = DynamoSeenChunks(tables)
    held = [f"{n:016x}" for n in range(0, 3000, 7)]
    chunks.put("00000000000000c1", held, expires_at=now + timedelta(days=4))
    chunks.put("00000000000000c2", held[:3], expires_at=now + timedelta(days=4))

    found = chunks.get_many(["00000000000000c1", "00000000000000c2", "00000000000000ff"])
    assert found == {"00000000000000c1": frozenset(held), "00000000000000c2": frozenset(held[:3])}
    with pytest.raises(ConcurrentUpdate):  # a random id drawn twice: never written over
        chunks.put("00000000000000c1", held[:1], expires_at=now)
    assert chunks.get_many(["00000000000000c1"])["00000000000000c1"] == frozenset(held)


# --- API keys --------------------------------------------------------------------------------------------


def test_keys_put_get_list_and_revoke_once(tables: Tables, now: datetime) -> None:
    keys = KeyStore(tables)
    keys.put("a" * 64, "sales", "Sam's laptop", now)
    keys.put("b" * 64, "marketing", "CMS", now + timedelta(seconds=1))

    keys.revoke("a" * 64, now + timedelta(hours=1))
    keys.revoke("a" * 64, now + timedelta(hours=2))

    record = keys.get("a" * 64)
    assert record is not None
    assert (record.role, record.name, record.created_at) == ("sales", "Sam's laptop", now)
    assert record.revoked_at == now + timedelta(hours=1)
    assert [k.name for k in keys.list()] == ["Sam's laptop", "CMS"]
    assert keys.get("c" * 64) is None
    with pytest.raises(NotFound, match="no API key"):
        keys.revoke("c" * 64, now)


# --- content ---------------------------------------------------------------------------------------------


def test_content_versions_count_up_and_latest_is_the_highest(tables: Tables, now: datetime) -> None:
    content = ContentStore(tables)
    assert content.latest("template#welcome") is None

    assert content.save("template#welcome", "v1 body", "mia", now, expected_latest=0) == 1
    assert content.save("template#welcome", "v2 body", "mia", now + timedelta(minutes=1)) == 2
    assert content.save("template#pricing", "p1", "ola", now) == 1
    assert content.save("rules#default", "r1", "ola", now) == 1

    latest = content.latest("template#welcome")
    assert latest is not None and (latest.version, latest.body) == (2, "v2 body")
    first = content.get("template#welcome", 1)
    assert first is not None and (first.body, first.author, first.created_at) == ("v1 body", "mia", now)
    assert content.get("template#welcome", 3) is None
    assert [v.version for v in content.versions("template#welcome")] == [2, 1]
    assert content.keys("template#") == ["template#pricing", "template#welcome"]


def test_a_save_based_on_an_old_version_is_refused(tables: Tables, now: datetime) -> None:
    content = ContentStore(tables)
    content.save("rules#default", "r1", "mia", now)
    content.save("rules#default", "r2", "ola", now)

    with pytest.raises(ConcurrentUpdate, match="is at version 2"):
        content.save("rules#default", "r2 from mia", "mia", now, expected_latest=1)
    assert content.latest("rules#default").body == "r2"  # type: ignore[union-attr]


def test_two_concurrent_saves_of_one_version_cannot_both_win(racing_tables: Tables, now: datetime) -> None:
    content = ContentStore(racing_tables)
    content.save("template#welcome", "v1", "mia", now)

    results = run_together(
        lambda: content.save("template#welcome", "mia's v2", "mia", now, expected_latest=1),
        lambda: content.save("template#welcome", "ola's v2", "ola", now, expected_latest=1),
    )

    assert sorted(type(r).__name__ for r in results) == ["ConcurrentUpdate", "int"]
    assert [v.version for v in content.versions("template#welcome")] == [2, 1]


# --- counters --------------------------------------------------------------------------------------------


EXPIRES = datetime(2026, 12, 30, tzinfo=UTC)


def test_counters_add_up_by_period_and_each_key_counts_once(tables: Tables) -> None:
    counters = Counters(tables)
    assert counters.add_once(
        "w1", {("2026-11-23", "events"): 2, ("2026-11-23", "sla_missed"): 1}, expires_at=EXPIRES
    )
    assert counters.add_once(
        "w2", {("2026-11-23", "events"): 3, ("2026-11-23", "sla_missed"): 0}, expires_at=EXPIRES
    )
    # A retried effect (same key): refused whole, nothing counted twice.
    assert not counters.add_once("w1", {("2026-11-23", "events"): 2}, expires_at=EXPIRES)

    assert counters.read("2026-11-23") == {"events": 5.0, "sla_missed": 1.0}
    assert counters.read("2026-11-24") == {}


def test_counters_added_from_two_threads_sum_exactly(racing_tables: Tables) -> None:
    counters = Counters(racing_tables)

    def add_many(thread: int) -> None:
        for n in range(25):
            increments = {("2026-11", "events"): 1, ("2026-11", "cost_usd"): 0.25, ("all", "events"): 1}
            counters.add_once(f"t{thread}-{n}", increments, expires_at=EXPIRES)

    threads = [threading.Thread(target=add_many, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counters.read("2026-11") == {"events": 50.0, "cost_usd": 12.5}
    assert counters.read("all") == {"events": 50.0}
    assert counters.read("2026-12") == {}


# --- capacity --------------------------------------------------------------------------------------------


def test_the_meter_counts_units_of_its_tables_only(tables: Tables, now: datetime) -> None:
    store = ProspectStore(tables)
    row = ProspectRow("lead-1", "nurturing", None, 1.0, None, "", "", now.isoformat())
    elsewhere = Tables(prefix=f"other-{tables.prefix}", host=tables.host, region=tables.region)
    create_tables(elsewhere)
    meter = CapacityMeter()
    meter.watch(tables)
    try:
        store.save("lead-1", {"x": 1}, row, next_touch_at=None, expected_version=None)
        store.get("lead-1")
        Counters(tables).add_once("w1", {("all", "events"): 1}, expires_at=EXPIRES)
        Counters(elsewhere).add_once("w1", {("all", "events"): 1}, expires_at=EXPIRES)  # another stage
        reading = meter.reading()
    finally:
        meter.close()

    # DynamoDB Local answers the counters' transaction with its consumed capacity; moto answers it with none,
    # so there the meter cannot see it (bench/units.py bills transactions from item sizes instead). Either
    # way the other stage's transaction is not counted.
    calls = dict(reading.calls)
    assert calls.pop("TransactWriteItems", 1) == 1
    assert calls == {"PutItem": 1, "GetItem": 1}
    # moto's unit arithmetic is approximate; DynamoDB Local's is DynamoDB's.
    assert reading.read_units > 0
    assert reading.write_units >= 1
