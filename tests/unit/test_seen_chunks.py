"""A busy prospect's idempotency window out of its item (issue 15: a save writes at most 2 KB whatever the
rate): its older ids move to chunks written once, and a redelivery of any of them is still applied once,
over in-memory storage; a new id is never mistaken for a seen one; the chunk is stored before the profile
that names it; chunks end with their horizon."""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.memory import InMemorySeenChunks
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.merge import absorb_profile
from chalicelib.domain.prospect import Prospect, event_fingerprint
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.seen import (
    MAX_CHUNK,
    MAX_SEEN_EVENTS,
    SEEN_HORIZON_HOURS,
    SPILL_AT,
    SeenWindow,
    bloom_of,
)
from chalicelib.errors import StorageUnavailable
from tests.unit.test_lead_service import Store

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class FailingChunks(InMemorySeenChunks):
    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def put(self, chunk_id: str, fingerprints: Sequence[str], *, expires_at: datetime) -> None:
        if self.failing:
            raise StorageUnavailable("nonces table unavailable")
        super().put(chunk_id, fingerprints, expires_at=expires_at)


class World:
    """The lead use cases over in-memory storage (test_lead_service.Store) on a settable clock, with
    idempotency chunks; one prospect, L000."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.chunks = FailingChunks()
        store = Store(clock=self.clock, seen_chunks=self.chunks)
        self.prospects, self.leads = store.prospects, store.leads

    def send(self, events: Sequence[Event]) -> int:
        """Apply a batch; answers how many of its events the profile applied (its page count moved by)."""
        before = self.views()
        outcome = self.leads.apply_events(list(events))
        assert not outcome.failed, outcome.failed
        return self.views() - before

    def profile(self) -> Prospect:
        stored = self.prospects.get("L000")
        assert stored is not None
        return stored.item

    def views(self) -> int:
        """Page views applied: the `page_view` rule's points, one per view, in its day buckets."""
        stored = self.prospects.get("L000")
        return 0 if stored is None else round(sum(stored.item.engagement.get("page_view", {}).values()))


def page(n: int, at: datetime) -> Event:
    return Event(
        message_id=f"seg:view-{n}",
        kind=EventKind.PAGE,
        at=at,
        source="web",
        anonymous_id="anon-1",
        properties={"path": f"/docs/page-{n % 7}", "title": "Docs"},
    )


def window_bytes(p: Prospect) -> int:
    """What the idempotency window adds to the stored item, compressed as the store compresses it."""
    doc = prospect_to_doc(p)
    with_window = len(zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6))
    doc.pop("sw", None)
    return with_window - len(zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6))


def busy_hour(world: World, count: int, first: int = 0) -> list[Event]:
    """`count` page views within one hour, each delivered on its own (the browser case)."""
    events = []
    for n in range(first, first + count):
        world.clock.now += timedelta(seconds=3)
        event = page(n, world.clock.now)
        events.append(event)
        assert world.send([event]) == 1
    return events


def test_a_busy_hour_keeps_the_item_small_and_every_redelivery_is_still_applied_once() -> None:
    world = World()
    events = busy_hour(world, 280)
    p = world.profile()
    assert len(p.seen.hours) <= SPILL_AT
    assert p.seen.chunks and len(p.seen) == 280
    assert window_bytes(p) < 700  # 280 ids at 9 bytes each would be ~2.5 KB
    world.clock.now += timedelta(hours=SEEN_HORIZON_HOURS - 2)
    shuffled = random.Random(3).sample(events, len(events))
    assert world.send(shuffled[:100]) == 0  # a batch of redeliveries
    assert sum(world.send([event]) for event in shuffled[100:]) == 0  # one by one


def test_a_new_event_is_never_taken_for_a_spilled_one() -> None:
    world = World()
    busy_hour(world, 250)
    # Thousands of new ids against the chunks' filters: the filters match some (about 2% a chunk), the
    # chunks themselves answer, and every new event is applied.
    fresh = [page(10_000 + n, world.clock.now + timedelta(seconds=n)) for n in range(2_000)]
    assert world.send(fresh[:1000]) == 1000
    world.clock.now += timedelta(minutes=5)
    assert world.send(fresh[1000:]) == 1000


def test_the_chunk_is_stored_before_the_profile_that_names_it() -> None:
    world = World()
    busy_hour(world, SPILL_AT)
    version_before = world.prospects.get("L000").version  # type: ignore[union-attr]
    world.chunks.failing = True
    world.clock.now += timedelta(seconds=3)
    outcome = world.leads.apply_events([page(999, world.clock.now)])
    assert outcome.failed and outcome.failed[0].retryable  # the worker retries the batch
    assert world.prospects.get("L000").version == version_before  # type: ignore[union-attr]  # nothing written
    world.chunks.failing = False
    assert world.send([page(999, world.clock.now)]) == 1
    assert world.profile().seen.chunks


def test_chunks_end_with_their_horizon_and_a_missing_one_applies_rather_than_drops() -> None:
    world = World()
    events = busy_hour(world, 100)
    assert world.profile().seen.chunks
    world.clock.now += timedelta(hours=SEEN_HORIZON_HOURS + 2)
    world.chunks.expire(world.clock.now + timedelta(days=2))  # DynamoDB's TTL has deleted them all
    assert world.send([page(5_000, world.clock.now)]) == 1
    assert world.profile().seen.chunks == []  # past the horizon: forgotten, as promised in README
    assert world.send([events[0]]) == 1  # a redelivery past the horizon applies again (documented)


def test_a_merge_keeps_the_merged_away_profiles_chunks() -> None:
    world = World()
    events = busy_hour(world, 120)
    other = world.profile()
    survivor = Prospect(lead_id="L2", created_at=START)
    absorb_profile(survivor, other)
    assert survivor.seen.chunks == other.seen.chunks
    looked_up = survivor.seen.to_look_up([event_fingerprint(e.message_id) for e in events], world.clock.now)
    found = world.chunks.get_many(list(looked_up))
    assert {fp for fps in found.values() for fp in fps} >= {
        event_fingerprint(e.message_id) for e in events
    } - set(survivor.seen.hours)


def test_the_window_with_chunks_is_stored_and_read_back_whole() -> None:
    world = World()
    busy_hour(world, 90)
    p = world.profile()
    again = prospect_from_doc(json.loads(json.dumps(prospect_to_doc(p))))
    assert again.seen == SeenWindow(p.seen.hours, p.seen.unstamped, p.seen.chunks)


def test_a_filter_never_misses_an_id_it_holds() -> None:
    fingerprints = [event_fingerprint(f"seg:{n}") for n in range(500)]
    window = SeenWindow({fp: 490_000 for fp in fingerprints})
    names = iter(f"{n:016x}" for n in range(100))
    spilled = window.spill(lambda: next(names))
    assert [len(ids) for _, ids in spilled] == [MAX_CHUNK] * 7 + [500 - 7 * MAX_CHUNK]
    for chunk, (_, ids) in zip(window.chunks, spilled, strict=True):
        assert chunk.bloom == bloom_of(ids, len(ids))
        assert all(chunk.may_hold(fp) for fp in ids)
    strangers = [event_fingerprint(f"new:{n}") for n in range(20_000)]
    false_matches = sum(window.chunks[0].may_hold(fp) for fp in strangers) / len(strangers)
    assert false_matches < 0.05


def test_a_big_batch_then_single_views_keep_the_newest_300_exact() -> None:
    # A batch of 200 views lands in the item at once; it must not become one chunk that the window later
    # forgets whole when the 301st id arrives (the review found 199 of the newest 300 applied twice).
    world = World()
    world.clock.now += timedelta(seconds=3)
    first = [page(n, world.clock.now) for n in range(200)]
    assert world.send(first) == 200
    later = busy_hour(world, MAX_SEEN_EVENTS - 200 + 1, first=200)
    assert len(world.profile().seen) >= MAX_SEEN_EVENTS
    newest = (first + later)[-MAX_SEEN_EVENTS:]
    world.clock.now += timedelta(minutes=5)
    assert world.send(newest) == 0


def test_the_window_stays_bounded_in_count_with_its_chunks() -> None:
    world = World()
    busy_hour(world, MAX_SEEN_EVENTS + 60)
    assert MAX_SEEN_EVENTS <= len(world.profile().seen) < MAX_SEEN_EVENTS + MAX_CHUNK


@pytest.mark.parametrize("count", [1, SPILL_AT])
def test_a_quiet_prospect_has_no_chunk(count: int) -> None:
    world = World()
    busy_hour(world, count)
    assert world.profile().seen.chunks == []
    assert world.chunks.chunks == {}
