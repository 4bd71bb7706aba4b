"""Metric counters on DynamoDB, sharded so no partition key is hot, each write's increments moved once.

A counter is an item (period#shard, name) holding a number that is only ever ADDed to. Every counter of a
period used to share one partition key ("all", "2026-11", "2026-11-30"), so all counter writes of the whole
system landed on one DynamoDB partition (about 1,000 writes/s). Now a write's increments go to one of
`shards` partition keys ("2026-11#07"), chosen from the write's own key: one write still touches one
partition, and different writes spread evenly. A read sums the shards, plus the bare period key where
counters written before sharding still live (shard ""), so nothing needs migrating.

The shard count may be raised at any time (reads cover every shard below it) but never lowered: counts in
the shards above a lowered count would no longer be read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo_tables import Tables, models_for, shared_connection, storage_errors

DEFAULT_SHARDS = 16
MAX_SHARDS = 100
LEGACY_SHARD = ""  # the bare period key, where counters written before sharding live
# A transaction holds at most 100 items: the marker and 99 counters per part.
COUNTERS_PER_TRANSACTION = 99
# Reading a period is one Query per shard; a few at a time keep /metrics' latency near one round trip
# per few shards without a burst of connections.
READ_THREADS = 8


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
        updates = [(counter, amount) for counter, amount in increments.items() if amount]
        shard = counter_shard(key, self.shards)
        applied = False
        for part, start in enumerate(range(0, len(updates), COUNTERS_PER_TRANSACTION)):
            marker = self._nonces(f"counted#{key}#{part}", expires_at=expires_at)
            with storage_errors("update counters"):
                try:
                    # TOTAL, like every other call PynamoDB makes: the capacity meter reads it off the answer.
                    with TransactWrite(
                        connection=self._connection, return_consumed_capacity="TOTAL"
                    ) as transaction:
                        transaction.save(marker, condition=self._nonces.key.does_not_exist())
                        for (period, name), amount in updates[start : start + COUNTERS_PER_TRANSACTION]:
                            counter = self._model(shard_key(period, shard), name)
                            transaction.update(counter, actions=[self._model.value.add(amount)])
                except TransactWriteError as exc:
                    reasons = exc.cancellation_reasons
                    if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                        continue  # this part was counted by an earlier attempt
                    raise
            applied = True
        return applied

    def read(self, period: str) -> dict[str, float]:
        return self.read_many([period])[period]

    def read_many(self, periods: Iterable[str]) -> dict[str, dict[str, float]]:
        """Each period's counters, summed over its shards: one Query per period and shard, a few at once."""
        wanted = list(dict.fromkeys(periods))
        keys = [(period, key) for period in wanted for key in shard_keys(period, self.shards)]
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(keys) or 1)) as pool:
            parts = list(pool.map(lambda pair: (pair[0], self._query(pair[1])), keys))
        totals: dict[str, dict[str, float]] = {period: {} for period in wanted}
        for period, part in parts:
            into = totals[period]
            for name, value in part:
                into[name] = into.get(name, 0.0) + value
        return totals

    def _query(self, partition: str) -> list[tuple[str, float]]:
        with storage_errors(f"read counters for {partition}"):
            return [
                (item.name, float(item.value)) for item in self._model.query(partition, consistent_read=True)
            ]
