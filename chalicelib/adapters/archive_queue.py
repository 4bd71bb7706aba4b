"""The worker's side of the event archive on AWS: what it applied is queued for the archiver, not put in S3.

Written from the worker, the archive cost one S3 PUT per day and shard of every worker batch. A browser's
events arrive one per message and ten messages per invocation, so that was about 0.8 PUTs per event
($0.005 per 1,000: ~$4 per million events, more than the rest of ingest together) and several S3 round
trips on the hot path. Now the worker sends what it applied as one SQS message (the archive's own gzipped
JSON lines, base64, split so no message passes MAX_MESSAGE_BYTES), and `app.archive_events` writes the
objects of up to ARCHIVER_BATCH messages at once (gathered for at most ARCHIVER_WINDOW_S): thousands of
events share each day-and-shard object. The local stack keeps writing its folder from the worker (wiring).

What is decided is still done: a send that fails fails the worker's records, and SQS redelivers them
(applying them again changes nothing, and they are queued for the archive then). The archiver's batch
fails whole and comes back; its objects' keys are hashes of their event ids, and the replay reads each
event id once, so an event archived twice under two keys is still replayed once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.archive import EventArchive
from chalicelib.adapters.dynamo_tables import Tables, models_for, storage_errors
from chalicelib.errors import StorageUnavailable
from chalicelib.lab.layout import ArchivedEvent, decode_object, encode

# SQS takes 256 KB a message; base64 of gzipped lines stays well below with room for the envelope.
MAX_MESSAGE_BYTES = 200 * 1024

# The archiver's SQS trigger (app.archive_events; infra/resources.yaml sizes the queue's visibility by the
# window). A run costs one S3 PUT per day and shard it fills, so the more events a run holds, the fewer PUTs
# per event: a browser's worker batch is ~10 events, so 100 messages a run made ~62 events an object ($0.08
# per million events in PUTs); 1,000 make ~625 at volume. The window binds below volume: at ~13 events/s a run
# holds what 5 minutes bring. The price is archive latency: an event lands in S3 up to ARCHIVER_WINDOW_S
# (plus the run) after the worker applied it. The most a run holds does not grow: Lambda stops gathering at
# a 6 MB invocation payload, which 100 messages of up to MAX_MESSAGE_BYTES could already reach.
ARCHIVER_BATCH = 1000
ARCHIVER_WINDOW_S = 300  # Lambda's largest batching window


def pack_archived(events: Sequence[ArchivedEvent]) -> list[str]:
    """The message bodies holding `events` (halved until each fits; one event always fits: the queue's
    events are at most 256 KB, and an archived line is a small part of that)."""
    if not events:
        return []
    body = base64.b64encode(encode(events)).decode()
    if len(body) <= MAX_MESSAGE_BYTES or len(events) == 1:
        return [body]
    half = len(events) // 2
    return pack_archived(events[:half]) + pack_archived(events[half:])


def unpack_archived(body: str) -> list[ArchivedEvent]:
    """The events one archive message holds; ValueError when it is not one."""
    try:
        _, events = decode_object(base64.b64decode(body, validate=True))
    except (ValueError, OSError, KeyError, TypeError) as error:  # gzip raises OSError (BadGzipFile)
        raise ValueError(f"not an archive message: {type(error).__name__}: {error}") from None
    return events


class QueuedArchive:
    """`BatchArchive` (chalicelib.entrypoints.worker) for the worker on AWS: one message per batch."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def write(self, events: Sequence[ArchivedEvent]) -> int:
        bodies = pack_archived(events)
        for body in bodies:
            try:
                self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)
            except (BotoCoreError, ClientError) as error:
                raise StorageUnavailable(f"archive queue send failed: {error}") from error
        return len(bodies)


# An erase rewrites the archive's objects without the person's events, but their last events may still be in
# the archive queue (up to its 14-day retention when the archiver keeps failing). The erase leaves each of the
# person's lead ids here, and the archiver drops their events: kept a day longer than the queue keeps a
# message. An archiver run that had already read the marks when the erase began can still write its batch.
ERASED_PREFIX = "erased-lead#"
ERASED_KEEP = timedelta(days=15)
BATCH_GET = 100  # keys per BatchGetItem


class ErasedLeads:
    """Lead ids erased lately, in the nonces table (TTL), so the archiver drops their queued events."""

    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).nonces

    def mark(self, lead_ids: Iterable[str], *, at: datetime) -> None:
        with storage_errors("mark erased leads"), self._model.batch_write() as batch:
            for lead_id in sorted(set(lead_ids)):
                batch.save(self._model(ERASED_PREFIX + lead_id, expires_at=at + ERASED_KEEP))

    def among(self, lead_ids: Iterable[str]) -> set[str]:
        """Which of `lead_ids` were erased (a strongly consistent read would not close the race above)."""
        return self._among(lead_ids, consistent=False)

    def among_now(self, lead_ids: Iterable[str]) -> set[str]:
        """Which of `lead_ids` were erased, by a strongly consistent read: a mark written a moment ago is
        seen (the compaction's race with an erase, chalicelib/lab/compaction.py, needs it)."""
        return self._among(lead_ids, consistent=True)

    def _among(self, lead_ids: Iterable[str], *, consistent: bool) -> set[str]:
        keys = sorted({ERASED_PREFIX + lead_id for lead_id in lead_ids})
        found: set[str] = set()
        with storage_errors("read erased leads"):
            for start in range(0, len(keys), BATCH_GET):
                batch = keys[start : start + BATCH_GET]
                for item in self._model.batch_get(batch, consistent_read=consistent):
                    found.add(item.key.removeprefix(ERASED_PREFIX))
        return found


class ForgettingLeadEvents:
    """The erase's side of the archive when it is queued: mark the lead ids erased (so queued events are
    dropped when archived), then rewrite the objects already written without them."""

    def __init__(self, archive: EventArchive, erased: ErasedLeads, clock: Callable[[], datetime]) -> None:
        self._archive = archive
        self._erased = erased
        self._clock = clock

    def forget_leads(self, lead_ids: Sequence[str], today: date) -> int:
        self._erased.mark(lead_ids, at=self._clock())
        return self._archive.forget_leads(lead_ids, today)
