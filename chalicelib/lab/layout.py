"""Where an archived event lives and how a batch of them is written: pure, no I/O.

An object holds one worker batch's events of one day and one shard:
`events/day=<YYYY-MM-DD>/shard=<xx>/<batch id>.jsonl.gz`, one JSON line per event, `{"lead": <lead id>,
"event": <wire form>}`. Events are archived after identity resolution, keyed by the lead they were applied
to, so every event of one lead (before and after it identified itself) lands in the shard of that lead id:
a shard holds whole histories (a backtest replays a shard alone) and an erase finds a person's events in
the shards of their lead ids. The batch id is a hash of the object's event ids, so a redelivered batch
writes the same key with the same bytes (idempotent).

A lead the worker merged into another (a visitor on a second device who identified) keeps its earlier
events under its own id, so the two halves of one person may sit in two shards. The worker archives the merge
too (the merge event it applied to the survivor); `group_objects` writes it as a marker (`merge_marker`: the
merge event naming the absorbed lead as `previous_id` and the survivor as `lead_id`) under *both* leads, so
the absorbed lead's shard says its events are replayed with the survivor's, and the survivor's shard says
whose events to fetch (adapters/archive.py `EventArchive.read_part`). Markers are event lines like any
other: compaction, reading and erasing (by lead id) treat them alike.

A past day's batch objects of a shard are later merged (chalicelib/lab/compaction.py) into
`compact-<hash>.jsonl.gz` objects in the same folder, whose first line names the keys they replaced
(`{"replaces": [...]}`): a compaction that stopped between writing and deleting is finished by the next
run, and a reader that finds a listed object gone reads the compact object that replaced it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from chalicelib.domain.events import Event, event_from_wire, event_to_wire, internal_id

PREFIX = "events/"
DEFAULT_SHARDS = 16
COMPACT = "compact-"  # the file-name prefix of a compacted object
MERGE_ID = internal_id("merge", "")  # LeadService._merge's event id: `ll:merge:<absorbed>:<survivor>`
MERGE_SOURCE = "merge"


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    lead_id: str
    event: Event


def merged_leads(event: Event) -> tuple[str, str] | None:
    """(absorbed lead, survivor) of a merge marker; None for any other event."""
    if event.source == MERGE_SOURCE and event.previous_id and event.lead_id:
        return event.previous_id, event.lead_id
    return None


def merge_markers(item: ArchivedEvent) -> list[ArchivedEvent]:
    """What the archive keeps of an event: itself, or for the merge event the worker applied to the survivor
    (its id names both leads), a marker under each of the two leads."""
    event, survivor = item.event, item.lead_id
    suffix = f":{survivor}"
    if (
        event.source != MERGE_SOURCE
        or merged_leads(event) is not None
        or not event.message_id.startswith(MERGE_ID)
        or not event.message_id.endswith(suffix)
    ):
        return [item]
    absorbed = event.message_id[len(MERGE_ID) : -len(suffix)]
    marker = Event(event.message_id, event.kind, event.at, MERGE_SOURCE, lead_id=survivor,
                   previous_id=absorbed)  # fmt: skip
    return [ArchivedEvent(survivor, marker), ArchivedEvent(absorbed, marker)]


def shard_of(lead_id: str, shards: int = DEFAULT_SHARDS) -> str:
    """The shard of a lead: a stable hash, so the same lead always lands in the same shard."""
    digest = int.from_bytes(hashlib.blake2b(lead_id.encode(), digest_size=4).digest(), "big")
    return f"{digest % shards:02x}"


def slice_of(lead_id: str, slices: int) -> int:
    """Which of `slices` parts of its shard a lead falls in (another bit of the hash than the shard's), so a
    large shard is replayed by several Map children, each holding whole histories of fewer leads."""
    digest = int.from_bytes(hashlib.blake2b(lead_id.encode(), digest_size=8).digest()[4:], "big")
    return digest % slices


def day_prefix(day: date) -> str:
    return f"{PREFIX}day={day.isoformat()}/"


def shard_prefix(day: date, shard: str) -> str:
    return f"{day_prefix(day)}shard={shard}/"


def object_key(day: date, shard: str, events: Sequence[ArchivedEvent]) -> str:
    ids = "\n".join(sorted(item.event.message_id for item in events))
    batch = hashlib.blake2b(ids.encode(), digest_size=12).hexdigest()
    return f"{shard_prefix(day, shard)}{batch}.jsonl.gz"


def compact_key(day: date, shard: str, replaces: Sequence[str]) -> str:
    """Named by what it replaces: the same merge again writes the same key."""
    names = hashlib.blake2b("\n".join(sorted(replaces)).encode(), digest_size=12).hexdigest()
    return f"{shard_prefix(day, shard)}{COMPACT}{names}.jsonl.gz"


def is_compact(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(COMPACT)


def shard_in_key(key: str) -> str | None:
    for part in key.split("/"):
        if part.startswith("shard="):
            return part.removeprefix("shard=")
    return None


def day_in_key(key: str) -> date | None:
    for part in key.split("/"):
        if part.startswith("day="):
            try:
                return date.fromisoformat(part.removeprefix("day="))
            except ValueError:
                return None
    return None


def group_objects(
    events: Iterable[ArchivedEvent], shards: int = DEFAULT_SHARDS
) -> dict[str, list[ArchivedEvent]]:
    """key -> the events that object holds: one object per (day, shard) of the batch."""
    grouped: dict[tuple[date, str], list[ArchivedEvent]] = {}
    for item in (marked for given in events for marked in merge_markers(given)):
        day = item.event.at.date()  # event times are UTC-aware (Event.__post_init__)
        grouped.setdefault((day, shard_of(item.lead_id, shards)), []).append(item)
    return {object_key(day, shard, held): held for (day, shard), held in grouped.items()}


def encode_lines(events: Sequence[ArchivedEvent]) -> list[str]:
    """One JSON line per event, in the order every object keeps them (lead, time, id)."""
    return [
        json.dumps({"lead": item.lead_id, "event": event_to_wire(item.event)}, separators=(",", ":"))
        for item in sorted(events, key=lambda item: (item.lead_id, item.event.at, item.event.message_id))
    ]


def encode(events: Sequence[ArchivedEvent], replaces: Sequence[str] = ()) -> bytes:
    """An object's bytes; a compacted one (`replaces` given) starts with the line naming what it replaced."""
    lines = encode_lines(events)
    if replaces:
        lines.insert(0, json.dumps({"replaces": sorted(replaces)}, separators=(",", ":")))
    # mtime=0: the same events give the same bytes, whichever process wrote them.
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1, mtime=0)


def decode_object(body: bytes, leads: Collection[str] | None = None) -> tuple[list[str], list[ArchivedEvent]]:
    """(the keys a compacted object replaced, or [] for a batch object; its events, or only those of
    `leads`: their lines are picked by their start, so the others are never parsed)."""
    replaces: list[str] = []
    events: list[ArchivedEvent] = []
    starts = tuple(json.dumps({"lead": lead}, separators=(",", ":"))[:-1] + "," for lead in leads or ())
    for line in gzip.decompress(body).decode().splitlines():
        if leads is not None and not line.startswith(starts) and not line.startswith('{"replaces"'):
            continue
        if line.strip():
            record = json.loads(line)
            if "lead" in record:
                events.append(ArchivedEvent(record["lead"], event_from_wire(record["event"])))
            else:
                replaces = [str(key) for key in record.get("replaces", [])]
    return replaces, events


def decode(body: bytes, leads: Collection[str] | None = None) -> Iterator[ArchivedEvent]:
    yield from decode_object(body, leads)[1]
