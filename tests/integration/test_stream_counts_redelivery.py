"""Counting once per stream batch when the stream redelivers records out of order, on moto and on DynamoDB
Local. Lambda's tumbling windows process each record at least once, "in order the first time", but records
processed more than once "might be processed out of order" (Lambda's DynamoDB tumbling-window docs): the
shard's checkpoint must then move to the newest record counted, never to whichever came last, nor back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.dynamo import Counters, Tables

EXPIRES = datetime(2026, 12, 3, 12, tzinfo=UTC) + timedelta(days=3)
SHARD = "shardId-00000001700000000000-0123abcd"
BASE = 4421584500000000017450439091  # a DynamoDB stream sequence number's length


def _record(n: int, names: Mapping[str, float]) -> tuple[str, dict[tuple[str, str], float]]:
    return str(BASE + n), {(period, name): amount for name, amount in names.items() for period in ("all",)}


def _opened(n: int) -> tuple[str, dict[tuple[str, str], float]]:
    return _record(n, {"template:welcome:opened": 1.0})


def test_a_batch_redelivered_out_of_order_moves_the_checkpoint_to_its_newest_record(tables: Tables) -> None:
    counters = Counters(tables)
    assert counters.add_stream_batch(SHARD, [_opened(n) for n in (0, 1)], expires_at=EXPIRES) == 2

    # A retry hands back records 2..5 out of order; then the next batch starts at 5.
    shuffled = [_opened(n) for n in (5, 3, 2, 4)]
    assert counters.add_stream_batch(SHARD, shuffled, expires_at=EXPIRES) == 4
    assert counters.add_stream_batch(SHARD, [_opened(n) for n in (5, 6, 7)], expires_at=EXPIRES) == 2

    assert counters.read("all")["template:welcome:opened"] == 8  # records 0..7, each once


def test_an_out_of_order_batch_in_several_transactions_never_moves_the_checkpoint_back(
    tables: Tables,
) -> None:
    counters = Counters(tables)
    # 60 counter items each: two records never share a transaction, so each moves the checkpoint on its own.
    wide = {n: _record(n, {f"source:s{n}-{k}:entered:known": 1.0 for k in range(60)}) for n in range(3)}

    assert counters.add_stream_batch(SHARD, [wide[2], wide[0], wide[1]], expires_at=EXPIRES) == 3
    assert counters.add_stream_batch(SHARD, [wide[1], wide[2]], expires_at=EXPIRES) == 0  # redelivered

    totals = counters.read("all")
    assert len(totals) == 180 and set(totals.values()) == {1.0}
