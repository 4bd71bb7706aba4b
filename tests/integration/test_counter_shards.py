"""Sharded counters on DynamoDB: a write counts once whichever shard it lands on, counters written before
sharding still count, and a burst of writes uses many partition keys, not one."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.adapters.dynamo import Counters, Tables
from chalicelib.adapters.dynamo_tables import models_for

EXPIRES = datetime(2026, 12, 30, tzinfo=UTC)


def test_a_redelivered_write_counts_once_across_shards(tables: Tables) -> None:
    counters = Counters(tables, shards=4)
    increments = {("2026-11", "entered:sales_ready"): 1.0, ("all", "entered:sales_ready"): 1.0}

    assert counters.add_once("lead-1#3#0", increments, expires_at=EXPIRES)
    assert counters.add_once("lead-2#1#0", increments, expires_at=EXPIRES)
    assert not counters.add_once("lead-1#3#0", increments, expires_at=EXPIRES)  # the stream's second pass
    # Another worker, configured with more shards since, retries it: still counted once.
    assert not Counters(tables, shards=8).add_once("lead-1#3#0", increments, expires_at=EXPIRES)

    assert counters.read("2026-11") == {"entered:sales_ready": 2.0}
    assert Counters(tables, shards=8).read("all") == {"entered:sales_ready": 2.0}


def test_counters_written_before_sharding_still_count(tables: Tables) -> None:
    model = models_for(tables).counters
    model("2026-11", "template:welcome:sent", value=5).save()  # as the unsharded store kept it
    model("all", "template:welcome:sent", value=7).save()
    counters = Counters(tables, shards=4)
    counters.add_once(
        "lead-1#2#0",
        {("2026-11", "template:welcome:sent"): 1.0, ("2026-11", "template:welcome:opened"): 1.0},
        expires_at=EXPIRES,
    )

    assert counters.read_many(["2026-11", "all", "2026-12"]) == {
        "2026-11": {"template:welcome:sent": 6.0, "template:welcome:opened": 1.0},
        "all": {"template:welcome:sent": 7.0},
        "2026-12": {},
    }


def test_a_burst_of_writes_lands_on_many_partition_keys(tables: Tables) -> None:
    counters = Counters(tables, shards=16)
    for n in range(48):
        counters.add_once(
            f"lead-{n}#1#0", {("2026-11-30", "template:welcome:delivered"): 1.0}, expires_at=EXPIRES
        )

    partitions = {item.period for item in models_for(tables).counters.scan()}
    assert len(partitions) >= 12  # of 16: no single key takes the burst
    assert all(key.startswith("2026-11#") for key in partitions)  # a day rides on its month's items
    assert counters.read("2026-11-30") == {"template:welcome:delivered": 48.0}


def test_a_counter_kept_by_day_month_and_all_time_costs_two_items(tables: Tables) -> None:
    """Each item a transaction writes is billed twice: the day's count rides on the month's item (one
    attribute a day) instead of an item of its own, and every period still reads back its own count."""
    counters = Counters(tables, shards=4)
    moved = {("all", "entered:nurturing"): 1.0, ("2026-11", "entered:nurturing"): 1.0}
    moved[("2026-11-30", "entered:nurturing")] = 1.0
    counters.add_once("lead-1#1#0", moved, expires_at=EXPIRES)

    items = sorted(item.period.split("#")[0] for item in models_for(tables).counters.scan())
    assert items == ["2026-11", "all"]
    counters.add_once("lead-2#1#0", {("2026-11-29", "entered:nurturing"): 2.0}, expires_at=EXPIRES)
    assert counters.read_many(["all", "2026-11", "2026-11-30", "2026-11-29", "2026-11-28"]) == {
        "all": {"entered:nurturing": 1.0},
        "2026-11": {"entered:nurturing": 1.0},
        "2026-11-30": {"entered:nurturing": 1.0},
        "2026-11-29": {"entered:nurturing": 2.0},
        "2026-11-28": {},
    }


def test_day_counters_written_as_items_of_their_own_still_count(tables: Tables) -> None:
    model = models_for(tables).counters
    model("2026-11-30#03", "template:welcome:sent", value=5).save()  # as day counters were kept before
    counters = Counters(tables, shards=4)
    counters.add_once("lead-1#2#0", {("2026-11-30", "template:welcome:sent"): 1.0}, expires_at=EXPIRES)

    assert counters.read("2026-11-30") == {"template:welcome:sent": 6.0}
    assert counters.read("2026-11") == {}
