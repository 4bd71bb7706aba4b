"""Counting once per stream batch on DynamoDB (moto): `Counters.add_stream_batch` moves a batch's merged
counts with its shard's checkpoint in one transaction, so redelivered, bisected and overlapping batches count
each record once; a batch touching more counter items than a transaction holds is split by records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.dynamo import Counters, Tables
from chalicelib.adapters.dynamo_tables import models_for

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=3)
SHARD = "shardId-00000001700000000000-0123abcd"
BASE = 4421584500000000017450439091  # a DynamoDB stream sequence number's length


def _record(n: int, names: Mapping[str, float]) -> tuple[str, dict[tuple[str, str], float]]:
    return str(BASE + n), {
        (period, name): amount for name, amount in names.items() for period in ("all", "2026-11")
    }


def _batch(first: int, last: int) -> list[tuple[str, dict[tuple[str, str], float]]]:
    return [
        _record(n, {"template:welcome:opened": 1.0, f"template:t{n % 3}:clicked": 1.0})
        for n in range(first, last)
    ]


def test_a_batch_counted_again_whole_or_in_halves_counts_each_record_once(moto_tables: Tables) -> None:
    counters = Counters(moto_tables)

    assert counters.add_stream_batch(SHARD, _batch(0, 10), expires_at=EXPIRES) == 10
    assert counters.add_stream_batch(SHARD, _batch(0, 10), expires_at=EXPIRES) == 0  # redelivered
    assert counters.add_stream_batch(SHARD, _batch(5, 15), expires_at=EXPIRES) == 5  # overlapping
    assert counters.add_stream_batch(SHARD, _batch(10, 15), expires_at=EXPIRES) == 0  # a bisected half

    assert counters.read("all")["template:welcome:opened"] == 15
    assert counters.read("2026-11")["template:welcome:opened"] == 15
    assert sum(v for k, v in counters.read("all").items() if k.endswith(":clicked")) == 15


def test_each_shard_keeps_its_own_checkpoint(moto_tables: Tables) -> None:
    counters = Counters(moto_tables)
    counters.add_stream_batch(SHARD, _batch(0, 5), expires_at=EXPIRES)
    counters.add_stream_batch("shardId-other", _batch(0, 5), expires_at=EXPIRES)  # the same numbers elsewhere

    assert counters.read("all")["template:welcome:opened"] == 10


def test_a_batch_larger_than_a_transaction_is_split_by_records_and_still_counted_once(
    moto_tables: Tables,
) -> None:
    counters = Counters(moto_tables)
    wide = [
        _record(n, {f"source:s{n}:entered:known": 1.0, f"first_source:s{n}:known": 1.0}) for n in range(60)
    ]

    assert counters.add_stream_batch(SHARD, wide, expires_at=EXPIRES) == 60  # 240 counter items
    assert counters.add_stream_batch(SHARD, wide, expires_at=EXPIRES) == 0

    totals = counters.read("all")
    assert len(totals) == 120 and set(totals.values()) == {1.0}


def test_one_record_wider_than_a_transaction_is_counted_once_by_its_marker(moto_tables: Tables) -> None:
    counters = Counters(moto_tables)
    huge = [_record(1, {f"recycled:r{n}": 1.0 for n in range(60)})]  # 120 items: more than one transaction

    counters.add_stream_batch(SHARD, huge, expires_at=EXPIRES)
    counters.add_stream_batch(SHARD, huge, expires_at=EXPIRES)

    assert sum(counters.read("all").values()) == 60


def test_the_checkpoint_expires_with_the_marks(moto_tables: Tables) -> None:
    counters = Counters(moto_tables)
    counters.add_stream_batch(SHARD, _batch(0, 2), expires_at=EXPIRES)

    item = models_for(moto_tables).nonces.get(f"counted-stream#{SHARD}")
    assert item.expires_at == EXPIRES


def test_a_checkpoint_moved_by_another_invocation_meanwhile_is_read_again(moto_tables: Tables) -> None:
    counters = Counters(moto_tables)
    counters.add_stream_batch(SHARD, _batch(0, 5), expires_at=EXPIRES)
    late = Counters(moto_tables)
    real = late._checkpoint
    reads = iter([-1])  # it read the checkpoint before the other invocation moved it
    late._checkpoint = lambda key: next(reads, None) or real(key)  # type: ignore[method-assign]

    assert late.add_stream_batch(SHARD, _batch(0, 8), expires_at=EXPIRES) == 3

    assert counters.read("all")["template:welcome:opened"] == 8


def test_a_checkpoint_in_a_format_this_code_does_not_write_stops_counting_loudly(moto_tables: Tables) -> None:
    import pytest

    from chalicelib.adapters.dynamo_counters import CheckpointUnreadable

    counters = Counters(moto_tables)
    counters.add_stream_batch(SHARD, _batch(0, 2), expires_at=EXPIRES)
    nonces = models_for(moto_tables).nonces
    counters._connection.client.update_item(  # the checkpoint stored unpadded, as this code never writes it
        TableName=nonces.Meta.table_name,
        Key={"key": {"S": f"counted-stream#{SHARD}"}},
        UpdateExpression="SET #s = :v",
        ExpressionAttributeNames={"#s": "sequence"},
        ExpressionAttributeValues={":v": {"S": str(BASE + 1)}},
    )

    with pytest.raises(CheckpointUnreadable):
        counters.add_stream_batch(SHARD, _batch(0, 5), expires_at=EXPIRES)
    assert counters.read("all")["template:welcome:opened"] == 2
