"""Archive compaction: a past day's small batch objects of each shard merged into one (or a few) objects.

The worker writes one object per batch, day and shard (chalicelib/lab/layout.py): about four events each, so
a backtest over 100 million events would GET hundreds of millions of objects (docs/benchmarks.md "Rules
lab"). Once a day is over, `compact_archive` merges each shard's objects of that day into
`compact-<hash>.jsonl.gz` objects of at most `MAX_OBJECT_BYTES` (gzip) each, and then deletes what they
replaced. Safe to stop anywhere and to run again:

- a compacted object is written whole (an S3 PUT, or a rename in the folder) *before* anything it replaces
  is deleted, and its first line names the objects it replaced; the next run deletes every object a present
  compacted object names, so a run that stopped between the write and the deletes is finished, and a
  re-run over a compacted day does nothing (one object left: not even read);
- in the meantime a reader may see an event twice (the object and its compacted copy): the replay reads
  each event id once (chalicelib/lab/replay.py `histories`); a reader that listed an object compaction then
  deleted reads the compacted object that names it instead (adapters/archive.py `EventArchive.read`);
- a late batch of an already compacted day (a redelivery, an import of old events) is merged by the next run
  with the day's compacted object while that is under half the bound;
- today is never compacted: the worker is still writing it;
- an erase never loses to a compaction running at the same time. An erase marks the person's lead ids
  erased (`ErasedLeads`, kept 15 days) *before* it rewrites their objects. A compaction leaves out the events
  of leads marked erased, and after writing a compacted object it looks at the marks again (and again after
  each rewrite) until none of the object's leads is marked: an erase that marked before that last look is
  honoured by the compaction, and one that marked after it lists the compacted object and rewrites it
  itself. A lead marked erased whose events an archiver wrote after the erase (it was already writing) is
  dropped by the next compaction of that day.

Runs daily: on AWS as the scheduled `compact_archive` function (app.py), locally as `make compact`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from chalicelib.lab.layout import (
    ArchivedEvent,
    compact_key,
    day_prefix,
    decode_object,
    encode,
    is_compact,
    shard_in_key,
    shard_prefix,
)

log = logging.getLogger("leadloop.compaction")

# Looks at the erase marks after a compacted object is written: each extra look follows an erase that began
# during the previous one, so more than a few means something is wrong; the run then fails loudly.
ERASE_LOOKS = 8
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # gzip bytes of one compacted object: a Map child streams it at once
FOLD_BELOW = MAX_OBJECT_BYTES // 2  # a compacted object this small takes in a day's late batches
LOOKBACK_DAYS = 7  # days before today looked at each run: late batches and unfinished runs are caught up
READERS = 32  # objects fetched at once: a day's shard is thousands of small objects on S3


class CompactableBlobs(Protocol):
    def put(self, key: str, body: bytes) -> None: ...
    def find(self, key: str) -> bytes | None: ...
    def delete_many(self, keys: Sequence[str]) -> None: ...
    def keys(self, prefix: str) -> list[str]: ...


# Which of these lead ids were erased lately (chalicelib.adapters.archive_queue.ErasedLeads.among).
ErasedAmong = Callable[[Iterable[str]], set[str]]


def _none_erased(lead_ids: Iterable[str]) -> set[str]:
    return set()


class ErasedDuringCompaction(RuntimeError):
    """Erases kept marking the leads of one compacted object while it was being rewritten without them."""


@dataclass
class CompactionCounts:
    shards_compacted: int = 0  # (day, shard) folders that got a new compacted object
    objects_read: int = 0
    objects_written: int = 0
    objects_deleted: int = 0
    events: int = 0  # events in the compacted objects written
    erased_events: int = 0  # events of leads erased lately, left out of the compacted objects
    days: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def compact_archive(
    blobs: CompactableBlobs,
    today: date,
    *,
    lookback_days: int = LOOKBACK_DAYS,
    readers: int = READERS,
    erased: ErasedAmong = _none_erased,
) -> CompactionCounts:
    """Compact every shard of the `lookback_days` days before `today` (today itself is still written),
    leaving out the events of leads `erased` names."""
    counts = CompactionCounts()
    for back in range(lookback_days, 0, -1):
        day = today - timedelta(days=back)
        by_shard: dict[str, list[str]] = {}
        for key in blobs.keys(day_prefix(day)):
            shard = shard_in_key(key)
            if shard is not None:
                by_shard.setdefault(shard, []).append(key)
        before = counts.shards_compacted
        for shard, keys in sorted(by_shard.items()):
            compact_shard(blobs, day, shard, keys, counts, readers, erased)
        if counts.shards_compacted > before:
            counts.days.append(day.isoformat())
    return counts


def compact_shard(
    blobs: CompactableBlobs,
    day: date,
    shard: str,
    keys: Sequence[str],
    counts: CompactionCounts,
    readers: int = READERS,
    erased: ErasedAmong = _none_erased,
) -> None:
    """One day's folder of one shard: finish an earlier run's deletes, then merge what is left."""
    compacts = [key for key in keys if is_compact(key)]
    batches = [key for key in keys if not is_compact(key)]
    if not batches and len(compacts) <= 1:
        return  # already compacted: the daily no-op reads nothing
    folder = shard_prefix(day, shard)
    fetch = _fetcher(blobs, readers)
    loaded: dict[str, tuple[list[ArchivedEvent], int]] = {}
    replaced: set[str] = set()
    for key, body in zip(compacts, fetch(compacts), strict=True):
        if body is None:
            continue  # removed since the listing (another run, an erase)
        names, events = decode_object(body)
        replaced |= {folder + name for name in names}
        loaded[key] = (events, len(body))
    counts.objects_read += len(loaded)
    finished = sorted(replaced & set(keys))
    if finished:  # an earlier run wrote its compacted object and stopped before deleting these
        blobs.delete_many(finished)
        counts.objects_deleted += len(finished)
    batches = [key for key in batches if key not in replaced]
    foldable = [key for key in loaded if key not in replaced and loaded[key][1] < FOLD_BELOW]
    if not batches and len(foldable) <= 1:
        return
    for key, body in zip(batches, fetch(batches), strict=True):
        if body is not None:
            loaded[key] = (decode_object(body)[1], len(body))
            counts.objects_read += 1
    sources = sorted(key for key in [*batches, *foldable] if key in loaded)
    for chunk in _chunks(sources, lambda key: loaded[key][1]):
        if len(chunk) == 1 and is_compact(chunk[0]):
            continue  # a compacted object alone in its chunk: nothing to merge it with
        events = _unique(event for key in chunk for event in loaded[key][0])
        names = [key.removeprefix(folder) for key in chunk]
        kept = _put_without_erased(blobs, compact_key(day, shard, names), events, names, erased)
        blobs.delete_many(chunk)  # after the write: nothing is lost
        counts.objects_written += 1
        counts.objects_deleted += len(chunk)
        counts.events += len(kept)
        counts.erased_events += len(events) - len(kept)
    counts.shards_compacted += 1
    log.info("compacted %s: %d objects", folder, len(sources))


def _put_without_erased(
    blobs: CompactableBlobs,
    key: str,
    events: list[ArchivedEvent],
    names: list[str],
    erased: ErasedAmong,
) -> list[ArchivedEvent]:
    """Write the compacted object without the events of erased leads, then look at the erase marks again
    until a look after the last write finds none of its leads marked (module docstring: why that closes
    the race with an erase). Returns the events written."""
    events = _without(events, erased)
    blobs.put(key, encode(events, names))
    for _look in range(ERASE_LOOKS):
        kept = _without(events, erased)
        if len(kept) == len(events):
            return events  # the last write holds no lead marked erased
        events = kept
        blobs.put(key, encode(events, names))
    raise ErasedDuringCompaction(f"{key}: its leads kept being erased while it was rewritten")


def _without(events: list[ArchivedEvent], erased: ErasedAmong) -> list[ArchivedEvent]:
    gone = erased({item.lead_id for item in events})
    return [item for item in events if item.lead_id not in gone] if gone else events


def _fetcher(blobs: CompactableBlobs, readers: int) -> Callable[[Sequence[str]], list[bytes | None]]:
    def fetch(keys: Sequence[str]) -> list[bytes | None]:
        if readers <= 1 or len(keys) <= 1:
            return [blobs.find(key) for key in keys]
        with ThreadPoolExecutor(max_workers=readers) as pool:
            return list(pool.map(blobs.find, keys))

    return fetch


def _chunks(keys: Sequence[str], size: Callable[[str], int]) -> list[list[str]]:
    """Whole objects packed in order into chunks of at most MAX_OBJECT_BYTES (an object is never split, so
    a compacted object names exactly the objects whose events it holds)."""
    chunks: list[list[str]] = []
    held = 0
    for key in keys:
        if not chunks or held + size(key) > MAX_OBJECT_BYTES:
            chunks.append([])
            held = 0
        chunks[-1].append(key)
        held += size(key)
    return chunks


def _unique(events: Iterable[ArchivedEvent]) -> list[ArchivedEvent]:
    """Each (lead, event id) once: a partly redelivered batch may have been archived under two keys."""
    seen: set[tuple[str, str]] = set()
    kept: list[ArchivedEvent] = []
    for item in events:
        ident = (item.lead_id, item.event.message_id)
        if ident not in seen:
            seen.add(ident)
            kept.append(item)
    return kept


def main() -> None:
    """`make compact`: compact the configured archive (the local stack's folder by default)."""
    import json
    from datetime import UTC, datetime

    from chalicelib import wiring  # the entry point only: the compaction itself takes its store
    from chalicelib.errors import StorageUnavailable

    blobs = wiring.archive_blobs()
    if blobs is None:
        raise SystemExit("no event archive configured: set LEADLOOP_ARCHIVE_DIR or LEADLOOP_ARCHIVE_BUCKET")
    erased = wiring.erased_leads().among_now
    try:
        erased(["a lead id no erase marks"])
    except StorageUnavailable as error:
        if wiring.settings().archive_bucket:
            raise SystemExit(f"cannot read the erase marks: {error}") from error
        # The local stack's folder with the stack stopped: no erase can run without its tables.
        print("the local stack is not running: compacting without its erase marks", flush=True)
        erased = _none_erased
    counts = compact_archive(blobs, datetime.now(UTC).date(), erased=erased)
    print(json.dumps(counts.as_dict(), indent=2))


if __name__ == "__main__":
    main()
