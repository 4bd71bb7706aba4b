"""Counting once per stream batch: the scoreboard's and the nurture learning's counters of every write in a
batch of the prospects table's stream, merged and moved exactly once (README "Counting once per stream
batch").

A writer that counts through the stream stores its counts in the write's outbox marked `by_stream`
(chalicelib.effects.outbox.counted_by_stream); neither it nor the dispatcher moves them. This consumer reads
the same stream as the dispatcher, one batch of one stream shard at a time (its event source has no
parallelisation, so a shard's batches come in order), and hands the batch's counts with their sequence
numbers to `add_stream_batch`, which merges them into as few counter items as the batch touches and moves a
per-shard checkpoint in the same transaction. Why that is exact:

- a stream shard's records come in order with rising sequence numbers, and each appears in it once;
- a retried batch (a timeout, a throttled transaction) or a bisected one re-reads records at or below the
  checkpoint, which are skipped; the checkpoint moves only with the counts it covers, to the newest record
  counted (records processed more than once may come back out of order: `add_stream_batch` orders them);
- the event names its shard only under a tumbling window (the event source mapping's
  `TumblingWindowInSeconds`, infra/resources.yaml); the window's own state is not used, and its
  "at least once" delivery is what the checkpoint absorbs.

Writes stored before counting moved here carry unmarked counts, which the dispatcher still moves with its
per-write marker, so none is counted twice or missed across the change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo_stream import outboxes
from chalicelib.effects.dispatch import MARK_DAYS, counter_increments
from chalicelib.effects.outbox import decode, stream_counts
from chalicelib.usecases.ports import StreamCounters

log = logging.getLogger("leadloop.counts")


class NoStreamShard(ValueError):
    """The event names no stream shard: its event source mapping lacks a tumbling window."""


def count_stream_batch(counters: StreamCounters, event: Mapping[str, Any]) -> dict[str, int]:
    """Count the `by_stream` counts of every write in one stream batch (Lambda's event with `shardId`);
    returns how many writes carried counts, how many of those were counted now (the rest were counted by
    an earlier delivery), and how many outboxes could not be read (logged, skipped)."""
    shard = event.get("shardId")
    if not isinstance(shard, str) or not shard:
        raise NoStreamShard(
            "the stream event names no shardId: the count consumer's event source needs a tumbling window"
        )
    counted: list[tuple[str, Mapping[tuple[str, str], float]]] = []
    newest: datetime | None = None
    unreadable = 0
    for record in event.get("Records") or []:
        try:
            found = outboxes([record])
            if not found:
                continue  # a deletion, or a write that decided nothing
            sequence, outbox = found[0]
            int(sequence)  # what the checkpoint compares
            counts = stream_counts(decode(outbox))
        except Exception as error:  # noqa: BLE001 - any unreadable record is a bug, never an outage
            # Retrying cannot help, and holding the shard would stop every later count of it.
            log.error("a stream record is unreadable, not counted: %s: %s", type(error).__name__, error)
            unreadable += 1
            continue
        increments = counter_increments(counts)
        if increments:
            counted.append((sequence, increments))
            at = max(effect.at for effect in counts)
            newest = at if newest is None or at > newest else newest
    if not counted or newest is None:
        return {"writes": 0, "counted": 0, "unreadable": unreadable}
    # In any order: a record processed more than once may come back out of order (Lambda's tumbling
    # windows say so), and the counters order them before moving the checkpoint.
    moved = counters.add_stream_batch(shard, counted, expires_at=newest + timedelta(days=MARK_DAYS))
    return {"writes": len(counted), "counted": moved, "unreadable": unreadable}
