"""Metric counters on DynamoDB, sharded so no partition key is hot, each write's increments moved once.

A counter is an item (period#shard, name) holding a number that is only ever ADDed to. Every counter of a
period used to share one partition key ("all", "2026-11", "2026-11-30"), so all counter writes of the whole
system landed on one DynamoDB partition (about 1,000 writes/s). Now a write's increments go to one of
`shards` partition keys ("2026-11#07"), chosen from the write's own key: one write still touches one
partition, and different writes spread evenly. A read sums the shards, plus the bare period key where
counters written before sharding still live (shard ""), so nothing needs migrating.

The shard count may be raised at any time (reads cover every shard below it) but never lowered: counts in
the shards above a lowered count would no longer be read.

A day's count rides on its month's item, as an attribute named after the day ("d30"), instead of an item of
its own: DynamoDB bills a write per item (at least 1 KB each, and twice inside a transaction), and a month
item with its 31 day attributes stays far below 1 KB, so a counter kept in "all", its month and its day
costs two items, not three. Day ranges read the month partitions anyway (the revenue table reads every
month of a range), so this adds no Query; day counters written as items of their own before ("2026-11-30#07")
are still read and added.

Exactly once, two ways: `add_once` moves one write's increments with a marker item that must not exist yet
(the dispatcher's path, for writes stored before counting moved to the stream); `add_stream_batch` merges a
stream batch's increments into few items and moves them with the stream shard's checkpoint (the count
consumer's, chalicelib.effects.stream_counts). Both build their transaction in `_counted`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo_tables import Tables, models_for, shared_connection, storage_errors

DEFAULT_SHARDS = 16
MAX_SHARDS = 100
LEGACY_SHARD = ""  # the bare period key, where counters written before sharding live
# A transaction holds at most 100 items: the marker and 99 counter items per part.
COUNTERS_PER_TRANSACTION = 99
DAY = re.compile(r"^(\d{4}-\d{2})-(\d{2})$")
VALUE = "value"  # the attribute holding a period's own count
# A stream shard's checkpoint (add_stream_batch): an item of the nonces table, expiring like the marks.
CHECKPOINT_PREFIX = "counted-stream#"
SEQUENCE = "sequence"
SEQUENCE_DIGITS = 48  # DynamoDB's stream sequence numbers have 21 to 40 digits
# Reading a period is one Query per shard; a few at a time keep /metrics' latency near one round trip
# per few shards without a burst of connections.
READ_THREADS = 8


class CheckpointUnreadable(RuntimeError):
    """A stream shard's stored checkpoint fails the condition written for the value read from it (a format
    this code does not write): counting stops loudly instead of retrying the same transaction forever."""


def counter_shard(key: str, shards: int) -> int:
    """The shard of a write's counters: stable for its key (a retry lands where the first attempt did),
    uniform over the keys of different writes."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"counter shards must be 1..{MAX_SHARDS}, got {shards}")
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % shards


def shard_key(period: str, shard: int | str) -> str:
    """The partition key of a period's shard: "2026-11#07"; the legacy shard is the bare period."""
    if shard == LEGACY_SHARD:
        return period
    return f"{period}#{int(shard):02d}"


def shard_keys(period: str, shards: int) -> list[str]:
    """Every partition key a period's counters may live under (the legacy one first)."""
    return [shard_key(period, LEGACY_SHARD), *(shard_key(period, n) for n in range(shards))]


class Counters:
    """Metric counters by period ("all", "2026-11", "2026-11-23", "learning"), each write's moved once."""

    def __init__(self, tables: Tables, *, shards: int = DEFAULT_SHARDS) -> None:
        counter_shard("", shards)  # checks the count
        self._model = models_for(tables).counters
        self._nonces = models_for(tables).nonces
        self._connection = shared_connection(tables)
        self.shards = shards

    def add_once(
        self, key: str, increments: Mapping[tuple[str, str], float], *, expires_at: datetime
    ) -> bool:
        """The ADDs one write decided, exactly once: they go in one transaction with a marker item that must
        not exist yet (kept until `expires_at`, past any redelivery), all in the shard `key` picks. False
        when `key` was applied before."""
        updates = list(_merged({}, increments, counter_shard(key, self.shards)).items())
        applied = False
        for part, start in enumerate(range(0, len(updates), COUNTERS_PER_TRANSACTION)):
            marker = self._nonces(f"counted#{key}#{part}", expires_at=expires_at)
            # False: this part was counted by an earlier attempt.
            if self._counted(dict(updates[start : start + COUNTERS_PER_TRANSACTION]), marker):
                applied = True
        return applied

    def add_stream_batch(
        self,
        stream_shard: str,
        counted: Sequence[tuple[str, Mapping[tuple[str, str], float]]],
        *,
        expires_at: datetime,
    ) -> int:
        """The increments of a batch of one stream shard's records, each (sequence number, increments) in
        any order, moved exactly once: merged, in as few transactions as fit, each of which also
        moves the shard's checkpoint (the last sequence number counted, kept until `expires_at`) from the
        value read to its last record's. A record at or below the checkpoint was counted before (a
        redelivered or bisected batch) and is skipped; a checkpoint moved by someone else meanwhile is read
        again. Returns how many records were counted now."""
        key = CHECKPOINT_PREFIX + stream_shard
        done = self._checkpoint(key)
        # Sorted: a record processed more than once may come back out of order (Lambda's tumbling windows),
        # and the checkpoint must move to the newest record counted, never back.
        todo = sorted(_by_sequence(counted).items())
        todo = [record for record in todo if record[0] > done]
        applied = 0
        while todo:
            # Each transaction's counter shard from its first record: a busy stream shard's batches spread
            # over every counter shard (which shard holds a count never matters: reads sum them all).
            shard = counter_shard(f"{stream_shard}#{todo[0][0]}", self.shards)
            items: dict[tuple[str, str], dict[str, float]] = {}
            taken = 0
            for _sequence, increments in todo:
                merged = _merged(items, increments, shard)
                if len(merged) > COUNTERS_PER_TRANSACTION and taken:
                    break
                items, taken = merged, taken + 1
            last = todo[taken - 1][0]
            if len(items) > COUNTERS_PER_TRANSACTION:  # one record alone: its parts, each once, by marker
                self.add_once(f"{key}#{last}", todo[0][1], expires_at=expires_at)
                items = {}
            if self._move_checkpoint(key, done, last, items, expires_at):
                done, todo, applied = last, todo[taken:], applied + taken
            else:  # another invocation moved it: count only what it has not
                moved = self._checkpoint(key)
                if moved == done:  # read back unchanged, yet the condition failed: never retry blindly
                    raise CheckpointUnreadable(f"{key}: the stored checkpoint does not compare as {done}")
                done = moved
                todo = [record for record in todo if record[0] > done]
        return applied

    def _checkpoint(self, key: str) -> int:
        """The shard's last counted sequence number, -1 before its first batch (a raw read: the nonces model
        does not declare the attribute)."""
        with storage_errors("read the stream checkpoint"):
            item = self._connection.get_item(self._nonces.Meta.table_name, key, consistent_read=True)
        value = item.get("Item", {}).get(SEQUENCE, {}).get("S")
        return int(value) if value is not None else -1

    def _move_checkpoint(
        self,
        key: str,
        done: int,
        last: int,
        items: Mapping[tuple[str, str], Mapping[str, float]],
        expires_at: datetime,
    ) -> bool:
        """One transaction: the checkpoint from `done` to `last`, and the merged `items`. False when the
        checkpoint was not `done` any more."""
        checkpoint = Path(SEQUENCE)
        condition = checkpoint.does_not_exist() if done < 0 else checkpoint == _sequence(done)
        actions: list[Action] = [checkpoint.set(_sequence(last)), self._nonces.expires_at.set(expires_at)]
        return self._counted(items, self._nonces(key), condition, actions)

    def _counted(
        self,
        items: Mapping[tuple[str, str], Mapping[str, float]],
        guard: Model,
        condition: Condition | None = None,
        actions: list[Action] | None = None,
    ) -> bool:
        """One transaction: the nonces item `guard` (put, on condition that it does not exist yet; or
        updated with `actions` on `condition`), and the ADDs to the counter `items`. False when the guard's
        condition failed: nothing moved."""
        with storage_errors("update counters"):
            try:
                # TOTAL, like every other call PynamoDB makes: the capacity meter reads it off the answer.
                with TransactWrite(
                    connection=self._connection, return_consumed_capacity="TOTAL"
                ) as transaction:
                    if actions is None:
                        transaction.save(guard, condition=self._nonces.key.does_not_exist())
                    else:
                        transaction.update(guard, actions=actions, condition=condition)
                    for (partition, name), adds in items.items():
                        adding: list[Action] = [Path(a).add(amount) for a, amount in adds.items()]
                        transaction.update(self._model(partition, name), actions=adding)
            except TransactWriteError as exc:
                reasons = exc.cancellation_reasons
                if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                    return False
                raise
        return True

    def counted(self, key: str) -> bool:
        """Whether `add_once(key, ...)` was applied (its first transaction: one holds 99 counter items, and
        a caller that relies on this alone keeps its writes to one)."""
        with storage_errors("read counter marker"):
            try:
                self._nonces.get(f"counted#{key}#0", consistent_read=True)
            except self._nonces.DoesNotExist:
                return False
        return True

    def read(self, period: str) -> dict[str, float]:
        return self.read_many([period])[period]

    def read_many(self, periods: Iterable[str]) -> dict[str, dict[str, float]]:
        """Each period's counters, summed over its shards: one Query per partition and shard, a few at once
        (a day is read from its month's items and from the day items written before days moved there)."""
        wanted = list(dict.fromkeys(periods))
        partitions = list(dict.fromkeys(p for period in wanted for p in (period, item_of(period)[0])))
        keys = [(partition, key) for partition in partitions for key in shard_keys(partition, self.shards)]
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(keys) or 1)) as pool:
            parts = list(pool.map(lambda pair: (pair[0], self._query(pair[1])), keys))
        rows: dict[str, list[dict[str, Any]]] = {partition: [] for partition in partitions}
        for partition, part in parts:
            rows[partition].extend(part)
        totals: dict[str, dict[str, float]] = {}
        for period in wanted:
            into = totals[period] = {}
            partition, attribute = item_of(period)
            sources = [(period, VALUE)] + ([(partition, attribute)] if partition != period else [])
            for source, field in sources:
                for row in rows[source]:
                    if field in row:
                        into[row["name"]] = into.get(row["name"], 0.0) + row[field]
        return totals

    def _query(self, partition: str) -> list[dict[str, Any]]:
        """Every item of one partition, each as its name and numeric attributes (the day attributes are not
        part of the model, so the items are read as DynamoDB returns them)."""
        found: list[dict[str, Any]] = []
        connection = self._model._get_connection()
        start: dict[str, Any] | None = None
        with storage_errors(f"read counters for {partition}"):
            while True:
                page = connection.query(partition, consistent_read=True, exclusive_start_key=start)
                for item in page.get("Items", []):
                    row: dict[str, Any] = {"name": item["name"]["S"]}
                    for attribute, value in item.items():
                        if "N" in value:
                            row[attribute] = float(value["N"])
                    found.append(row)
                start = page.get("LastEvaluatedKey")
                if not start:
                    return found


def _by_sequence(
    counted: Iterable[tuple[str, Mapping[tuple[str, str], float]]],
) -> dict[int, Mapping[tuple[str, str], float]]:
    """Each record's increments by its sequence number as a number (a record delivered twice in one batch
    is one record)."""
    return {int(sequence): increments for sequence, increments in counted}


def _sequence(number: int) -> str:
    """A stream sequence number as stored: zero-padded, so the stored strings also sort as numbers."""
    return f"{number:0{SEQUENCE_DIGITS}d}"


def _merged(
    items: Mapping[tuple[str, str], Mapping[str, float]],
    increments: Mapping[tuple[str, str], float],
    shard: int,
) -> dict[tuple[str, str], dict[str, float]]:
    """`items` (counter item -> attribute -> amount) with `increments` added, in `shard`."""
    merged = {item: dict(adds) for item, adds in items.items()}
    for (period, name), amount in increments.items():
        if amount:
            partition, attribute = item_of(period)
            adds = merged.setdefault((shard_key(partition, shard), name), {})
            adds[attribute] = adds.get(attribute, 0.0) + amount
    return merged


def item_of(period: str) -> tuple[str, str]:
    """Where a period's count is kept: (the item's period, its attribute). A day's is its month's item,
    attribute "d" + the day of the month; every other period's is its own item's "value"."""
    day = DAY.match(period)
    if day is None:
        return period, VALUE
    return day.group(1), f"d{day.group(2)}"
