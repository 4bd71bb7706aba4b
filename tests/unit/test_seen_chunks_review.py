"""The idempotency chunks under attack (issue 15 review): a corrupted item's chunk list fails loudly
instead of forgetting ids; a merge keeps the newest ids, whichever half held them; a re-imported CSV row
whose id moved to a chunk is reported unchanged; only the roles that recall or spill ids may read or write
chunks."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.memory import InMemorySeenChunks
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.merge import absorb_profile
from chalicelib.domain.prospect import Prospect, event_fingerprint
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.seen import MAX_CHUNK, SEEN_HORIZON_HOURS, hour_of
from chalicelib.usecases.bulk import BulkImport
from chalicelib.usecases.seen_chunks import recall_seen, spill_seen
from chalicelib.wiring import load_default_rules
from tests.unit.test_seen_chunks import START, World, busy_hour, page

RULES = load_default_rules()

POLICIES = Path(__file__).resolve().parents[2] / ".chalice"


def chunked_doc() -> dict[str, Any]:
    world = World()
    busy_hour(world, 90)
    doc = prospect_to_doc(world.profile())
    assert doc["sw"]["c"]
    return doc


def with_chunks(doc: dict[str, Any], raw: bytes | str) -> dict[str, Any]:
    broken = json.loads(json.dumps(doc))
    broken["sw"]["c"] = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
    return broken


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-3],  # the last chunk's filter cut short
        lambda raw: raw[:14],  # a chunk's head without its filter
        lambda raw: raw + b"\x00\x01\x02",  # trailing bytes that are no chunk
        lambda raw: raw[:-1] + b"\x00" * 40,  # a longer filter than its count says
    ],
)
def test_a_damaged_chunk_list_fails_loudly_instead_of_forgetting_ids(damage: Any) -> None:
    doc = chunked_doc()
    raw = base64.b64decode(doc["sw"]["c"])
    # The store maps a ValueError on load to UnreadableRecord (a 422 that names the item), never a profile
    # whose filters silently miss ids it applied.
    with pytest.raises(ValueError):
        prospect_from_doc(with_chunks(doc, damage(raw)))


def test_garbage_in_the_chunk_list_fails_loudly() -> None:
    doc = chunked_doc()
    text = doc["sw"]["c"]
    with pytest.raises(ValueError):
        prospect_from_doc(with_chunks(doc, text[:8] + "*?" + text[10:]))


def test_an_undamaged_chunk_list_and_a_window_without_one_still_load() -> None:
    doc = chunked_doc()
    assert prospect_from_doc(doc).seen.chunks
    doc["sw"].pop("c")
    assert prospect_from_doc(doc).seen.chunks == []


def busy_profile(
    lead_id: str, first: int, count: int, hours_ago: int, chunks: InMemorySeenChunks
) -> Prospect:
    """A profile that applied `count` page views `hours_ago` hours before START, spilled as the store does."""
    p = Prospect(lead_id=lead_id, created_at=START - timedelta(days=5))
    at = START - timedelta(hours=hours_ago)
    for n in range(first, first + count):
        p.seen.remember(event_fingerprint(page(n, at).message_id), at)
        if len(p.seen.hours) > 24:
            spill_seen(chunks, p)
    return p


def redelivered(p: Prospect, events: list[Event], chunks: InMemorySeenChunks) -> int:
    """How many of `events` the profile would apply again (not in its item nor found in its chunks)."""
    p.seen.recalled.clear()
    recall_seen(chunks, p, events, START)
    return sum(event_fingerprint(e.message_id) not in p.seen for e in events)


def test_a_merge_keeps_the_newest_ids_whichever_half_held_them() -> None:
    chunks = InMemorySeenChunks()
    # The survivor was busy two days ago; the visitor merged into it was busy in the last hour.
    survivor = busy_profile("L1", 0, 250, SEEN_HORIZON_HOURS - 24, chunks)
    visitor = busy_profile("L2", 1_000, 250, 1, chunks)
    latest = [page(n, START) for n in range(1_000 + 25, 1_000 + 250)]
    assert redelivered(visitor, latest, chunks) == 0
    absorb_profile(survivor, visitor)
    survivor.seen.remember(event_fingerprint("seg:the-merge"), START)  # the merge's event is applied
    assert 300 <= len(survivor.seen) < 300 + MAX_CHUNK  # the newest 300 at least, a chunk at a time
    # The visitor's last hour is what a browser retries: still applied once, older ids make room first.
    assert redelivered(survivor, latest, chunks) == 0


def test_a_merge_of_two_busy_profiles_stays_bounded_when_stored() -> None:
    chunks = InMemorySeenChunks()
    survivor = busy_profile("L1", 0, 290, 2, chunks)
    visitor = busy_profile("L2", 1_000, 290, 1, chunks)
    absorb_profile(survivor, visitor)
    again = prospect_from_doc(json.loads(json.dumps(prospect_to_doc(survivor))))
    assert again.seen.chunks == survivor.seen.chunks
    assert max(chunk.newest for chunk in survivor.seen.chunks) == hour_of(START - timedelta(hours=1))


def test_a_reimported_row_whose_id_moved_to_a_chunk_is_reported_unchanged() -> None:
    world = World()
    importer = BulkImport(
        leads=world.leads,
        identities=world.leads._identities,  # noqa: SLF001 - the same index the service resolves with
        prospects=world.prospects,
        rules=lambda: RULES,
        clock=world.clock,
    )
    csv = b"email,company\nada@example.com,Acme\n"
    assert importer.run(csv).imported == 1
    # Later the person says where they work now, and browses enough that the import's id leaves the item.
    world.clock.now += timedelta(minutes=1)
    moved = Event(
        message_id="seg:moved",
        kind=EventKind.IDENTIFY,
        at=world.clock.now,
        source="web",
        email="ada@example.com",
        traits={"company": "Bletchley"},
    )
    world.leads.apply_events([moved])
    for n in range(30):
        world.clock.now += timedelta(seconds=3)
        view = page(n, world.clock.now)
        world.leads.apply_events([replace(view, email="ada@example.com")])
    assert world.profile().seen.chunks
    report = importer.run(csv)
    assert (report.unchanged, report.updated) == (1, 0)  # the old file changed nothing, as it says
    assert world.profile().traits["company"] == "Bletchley"


def nonces_actions(policy: str) -> set[str]:
    doc = json.loads((POLICIES / f"policy-{policy}.json").read_text())
    return {
        action
        for statement in doc["Statement"]
        if "NoncesTable" in json.dumps(statement.get("Resource"))
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }


@pytest.mark.parametrize("policy", ["api", "worker"])
def test_functions_that_apply_events_may_recall_and_spill_ids(policy: str) -> None:
    assert {"dynamodb:BatchGetItem", "dynamodb:PutItem"} <= nonces_actions(policy)


@pytest.mark.parametrize("policy", ["scheduler", "sender"])
def test_nurture_functions_may_spill_ids_but_never_read_chunks(policy: str) -> None:
    # Nurture saves profiles (a stored item with more than 24 ids spills) but applies no event: it never
    # looks an id up in a chunk, so it may not read the nonces table in bulk.
    actions = nonces_actions(policy)
    assert "dynamodb:PutItem" in actions
    assert "dynamodb:BatchGetItem" not in actions
