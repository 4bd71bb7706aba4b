"""The event archive's storage: S3 on AWS (and moto's S3 in tests), a folder on the local stack.

`EventArchive` writes a worker batch as one gzipped JSON-lines object per day and shard (chalicelib/lab/
layout.py), reads a window of days back for the backtest, and forgets a person: the objects of their
shards that hold their lead ids are rewritten without them (or deleted when nothing else is left).
A backtest part (one shard's slice of leads, `read_part`) also reads the events of the leads merged into
its leads from wherever they were archived: the merge markers (chalicelib/lab/layout.py) say which.
Retention is S3's lifecycle rule on AWS (infra/resources.yaml, `ArchiveRetentionDays`); the folder store
deletes days older than the retention when it writes, so `make run` never grows without bound.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageUnavailable
from chalicelib.lab.layout import (
    DEFAULT_SHARDS,
    PREFIX,
    ArchivedEvent,
    day_in_key,
    day_prefix,
    decode,
    decode_object,
    encode,
    group_objects,
    is_compact,
    merged_leads,
    shard_of,
    shard_prefix,
    slice_of,
)

log = logging.getLogger("leadloop.archive")
WRITERS = 8  # objects put at once by one write


def _absorbed(items: Sequence[ArchivedEvent], known: set[str]) -> dict[str, date]:
    """The leads merged into these items' leads that are not yet held -> the day of their merge."""
    found: dict[str, date] = {}
    for item in items:
        merged = merged_leads(item.event)
        if merged is not None and merged[1] == item.lead_id and merged[0] not in known:
            found[merged[0]] = max(found.get(merged[0], item.event.at.date()), item.event.at.date())
    return found


class Blobs(Protocol):
    def put(self, key: str, body: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def find(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...
    def delete_many(self, keys: Sequence[str]) -> None: ...
    def keys(self, prefix: str) -> list[str]: ...


class S3Blobs:
    """Objects in one bucket; the client comes in built (wiring), so moto can be running first."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"archive write failed: {error}") from error

    def get(self, key: str) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"archive read failed: {error}") from error
        return body

    def find(self, key: str) -> bytes | None:
        """The object, or None when there is none (a backtest job nobody started)."""
        try:
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StorageUnavailable(f"archive read failed: {error}") from error
        except BotoCoreError as error:
            raise StorageUnavailable(f"archive read failed: {error}") from error
        return body

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"archive delete failed: {error}") from error

    def delete_many(self, keys: Sequence[str]) -> None:
        """A thousand keys a request (compaction deletes a day's thousands of batch objects)."""
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                answer = self._client.delete_objects(
                    Bucket=self._bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as error:
                raise StorageUnavailable(f"archive delete failed: {error}") from error
            if answer.get("Errors"):
                failed = answer["Errors"][0]
                raise StorageUnavailable(
                    f"archive delete failed for {len(answer['Errors'])} keys: {failed.get('Key')}"
                    f" {failed.get('Code')}"
                )

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            ):
                found += [item["Key"] for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"archive listing failed: {error}") from error
        return sorted(found)


class FolderBlobs:
    """The same objects as files under a folder (the local stack: .local/archive)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def put(self, key: str, body: bytes) -> None:
        path = self._root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_bytes(body)
        partial.replace(path)  # a reader never sees half an object

    def get(self, key: str) -> bytes:
        return (self._root / key).read_bytes()

    def find(self, key: str) -> bytes | None:
        try:
            return (self._root / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        (self._root / key).unlink(missing_ok=True)

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.delete(key)

    def keys(self, prefix: str) -> list[str]:
        base = self._root / prefix
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return []
        found = (
            p.relative_to(self._root).as_posix()
            for p in folder.rglob("*.gz")  # archived events and backtest jobs; never a .partial
        )
        return sorted(key for key in found if key.startswith(prefix))

    def expire_before(self, day: date) -> None:
        events = self._root / PREFIX
        if not events.is_dir():
            return
        for folder in events.iterdir():
            kept = day_in_key(folder.name)
            if kept is not None and kept < day:
                shutil.rmtree(folder, ignore_errors=True)


class EventArchive:
    def __init__(self, blobs: Blobs, *, retention_days: int, shards: int = DEFAULT_SHARDS) -> None:
        self._blobs = blobs
        self.retention_days = retention_days
        self.shards = shards
        self._expired_on: date | None = None

    def write(self, events: Sequence[ArchivedEvent]) -> int:
        """One object per day and shard of the batch; the same batch again rewrites the same keys."""
        today = datetime.now(UTC).date()
        if self._expired_on != today:  # the folder's retention, once a day per process
            self._expired_on = today
            self.expire(today)
        objects = group_objects(events, self.shards)
        puts = [(key, encode(held)) for key, held in objects.items()]
        if len(puts) == 1:
            self._blobs.put(*puts[0])
        elif puts:  # the archiver's batches span every shard: their PUTs go a few at a time, not in a row
            with ThreadPoolExecutor(max_workers=min(WRITERS, len(puts))) as pool:
                list(pool.map(lambda put: self._blobs.put(*put), puts))
        return len(objects)

    def expire(self, today: date) -> None:
        """The folder store's retention (S3's lifecycle rule does this on AWS)."""
        if isinstance(self._blobs, FolderBlobs):
            self._blobs.expire_before(today - timedelta(days=self.retention_days))

    def shard_keys(self, start: date, end: date, shard: str | None = None) -> list[str]:
        """The objects of days start..end (inclusive), of one shard or all."""
        keys: list[str] = []
        day = start
        while day <= end:
            keys += self._blobs.keys(shard_prefix(day, shard) if shard else day_prefix(day))
            day += timedelta(days=1)
        return keys

    def read(
        self, keys: Sequence[str], readers: int = 1, leads: Collection[str] | None = None
    ) -> Iterator[ArchivedEvent]:
        """The objects' events in key order (only those of `leads` when given); `readers` > 1 fetches that
        many objects at once (a backtest part reads thousands of small objects: one after another, it would
        wait on S3 most of its run). An object gone since the listing was compacted (chalicelib/lab/
        compaction.py): the compacted objects that name it are read instead, once each, after the others
        (an event read twice is read once by the replay); one erased or expired has nothing left to read."""
        missing: list[str] = []
        if readers <= 1:
            bodies: Iterator[bytes | None] = (self._blobs.find(key) for key in keys)
            yield from self._decoded(keys, bodies, missing, leads)
        else:
            with ThreadPoolExecutor(max_workers=readers) as pool:
                yield from self._decoded(keys, pool.map(self._blobs.find, keys), missing, leads)
        listed = set(keys)
        for folder in sorted({key.rsplit("/", 1)[0] + "/" for key in missing}):
            gone = {key.rsplit("/", 1)[1] for key in missing if key.startswith(folder)}
            for other in self._blobs.keys(folder):
                if other in listed or not is_compact(other):
                    continue
                found = self._blobs.find(other)
                if found is not None:
                    names, events = decode_object(found, leads)
                    if gone & set(names):
                        listed.add(other)
                        yield from events

    @staticmethod
    def _decoded(
        keys: Sequence[str],
        bodies: Iterator[bytes | None],
        missing: list[str],
        leads: Collection[str] | None = None,
    ) -> Iterator[ArchivedEvent]:
        for key, body in zip(keys, bodies, strict=True):
            if body is None:
                missing.append(key)
            else:
                yield from decode(body, leads)

    def read_part(
        self, start: date, end: date, shard: str, index: int = 0, slices: int = 1, readers: int = 1
    ) -> list[ArchivedEvent]:
        """A backtest part's events: those of days start..end of the leads of one shard's slice, and of
        every lead merged into them (and into those), wherever it was archived. The absorbed leads are found
        by their merge markers; their shards are read for the days up to the merge (an absorbed lead gets no
        event after it), only their lines decoded. The part of the absorbed lead's own shard leaves it out:
        its marker says it was merged (chalicelib/lab/replay.py `histories`)."""

        def ours(lead_id: str) -> bool:
            return shard_of(lead_id, self.shards) == shard and (
                slices == 1 or slice_of(lead_id, slices) == index
            )

        def in_window(item: ArchivedEvent) -> bool:
            return start <= item.event.at.date() <= end  # an object's day is its events' day

        own = self.read(self.shard_keys(start, end, shard), readers)
        held = [item for item in own if ours(item.lead_id) and in_window(item)]
        known = {item.lead_id for item in held}
        wanted = _absorbed(held, known)
        while wanted:  # an absorbed lead may have absorbed others before: follow the markers
            fetched: list[ArchivedEvent] = []
            for other in sorted({shard_of(lead_id, self.shards) for lead_id in wanted}):
                leads = {
                    lead_id: at for lead_id, at in wanted.items() if shard_of(lead_id, self.shards) == other
                }
                keys = self.shard_keys(start, min(end, max(leads.values())), other)
                fetched += [item for item in self.read(keys, readers, leads) if in_window(item)]
            known |= wanted.keys()
            held += fetched
            wanted = _absorbed(fetched, known)
        return held

    def forget_leads(self, lead_ids: Sequence[str], today: date) -> int:
        """Remove every archived event of these leads (a person and the leads merged into them) within the
        retention; returns how many events were removed."""
        wanted = set(lead_ids)
        removed = 0
        for shard in sorted({shard_of(lead_id, self.shards) for lead_id in wanted}):
            for key in self.shard_keys(
                today - timedelta(days=self.retention_days + 1), today + timedelta(days=1), shard
            ):
                body = self._blobs.find(key)
                if body is None:
                    continue  # compacted since the listing: the compacted object is in the listing too
                replaces, held = decode_object(body)
                kept = [item for item in held if item.lead_id not in wanted]
                if len(kept) == len(held):
                    continue
                removed += len(held) - len(kept)
                # Rewritten under the same key: its name is the batch's, a redelivery of that batch was
                # applied and skipped long before an erase can run. A compacted object keeps the line naming
                # what it replaced (even with no event left), so an unfinished compaction is still finished.
                if kept or replaces:
                    self._blobs.put(key, encode(kept, replaces))
                else:
                    self._blobs.delete(key)
        return removed
