"""Counters spread over shards, kept only in the periods their readers use, and one transaction per write."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.dynamo_counters import counter_shard, shard_key, shard_keys
from chalicelib.adapters.memory import InMemoryActivity, InMemoryCounters, InMemoryMarks
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.config import ConfigurationError, load_settings
from chalicelib.domain.bandit import LEARNING_PERIOD
from chalicelib.domain.prospect import Prospect
from chalicelib.effects.dispatch import Dispatcher, SavedWrite
from chalicelib.effects.outbox import CountOnScoreboard, LearnFromOutcomes
from chalicelib.usecases.scoreboard import kept_in
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def test_a_burst_of_writes_spreads_evenly_over_the_shards() -> None:
    # A campaign's delivery events: thousands of writes at once, each its own lead and version.
    shards = Counter(counter_shard(f"lead-{n}#{n % 7 + 1}#0", 16) for n in range(8_000))

    assert set(shards) == set(range(16))
    # No partition key takes much more than its share (500 each): none is hot.
    assert max(shards.values()) < 600
    assert min(shards.values()) > 400


def test_a_retried_write_lands_on_the_shard_of_its_first_attempt() -> None:
    assert {counter_shard("lead-1#4#0", 16) for _ in range(5)} == {counter_shard("lead-1#4#0", 16)}
    assert counter_shard("lead-1#4#0", 1) == 0


@pytest.mark.parametrize("shards", [0, 101])
def test_a_shard_count_out_of_range_is_refused(shards: int) -> None:
    with pytest.raises(ValueError, match="counter shards"):
        counter_shard("lead-1#4#0", shards)


def test_a_period_is_read_from_every_shard_and_from_its_unsharded_key() -> None:
    assert shard_key("2026-11", 7) == "2026-11#07"
    assert shard_keys("2026-11", 3) == ["2026-11", "2026-11#00", "2026-11#01", "2026-11#02"]


@pytest.mark.parametrize(
    ("name", "periods"),
    [
        ("entered:sales_ready", ("all", "2026-11", "2026-11-30")),
        ("template:welcome:opened", ("all", "2026-11", "2026-11-30")),
        ("first_source:google:revenue", ("all", "2026-11", "2026-11-30")),
        ("assign:team:enterprise", ("all",)),
        ("source:web:revenue:won", ("2026-11",)),
        ("source:web:sla:met", ("all",)),
    ],
)
def test_each_counter_is_kept_in_the_periods_its_readers_use(name: str, periods: tuple[str, ...]) -> None:
    assert kept_in(name, NOW) == periods


class RecordingCounters(InMemoryCounters):
    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[str] = []

    def add_once(
        self, key: str, increments: Mapping[tuple[str, str], float], *, expires_at: datetime
    ) -> bool:
        self.transactions.append(key)
        return super().add_once(key, increments, expires_at=expires_at)


def dispatcher(counters: InMemoryCounters) -> Dispatcher:
    rules = load_default_rules()
    return Dispatcher(
        activity=InMemoryActivity(),
        counters=counters,
        ledger=InMemoryMarks(),  # fresh marks: a redelivery is not skipped before the counters
        notifier=None,  # type: ignore[arg-type]
        workflow=SlaWorkflow(None, None),
        rules=lambda: rules,
        lead_url=lambda lead_id: f"https://leads.example.test/leads/{lead_id}",
    )


def test_a_write_moves_all_its_counters_in_one_transaction_and_a_redelivery_counts_once() -> None:
    counters = RecordingCounters()
    write = SavedWrite(
        "lead-1",
        4,
        Prospect(lead_id="lead-1", created_at=NOW),
        (
            CountOnScoreboard(NOW, {"template:welcome:clicked": 1.0, "assign:team:enterprise": 1.0}),
            LearnFromOutcomes(NOW, {"welcome|pricing/nurturing|clicked": 1.0}),
        ),
    )

    dispatcher(counters).perform(write)
    dispatcher(counters).perform(write)  # the stream hands it over again, its done mark lost

    # A count-only write's counter marker is its done mark: the second pass reads it and moves nothing.
    assert counters.transactions == ["lead-1#4#0"]
    assert counters.read("all") == {"template:welcome:clicked": 1.0, "assign:team:enterprise": 1.0}
    assert counters.read("2026-11-30") == {"template:welcome:clicked": 1.0}
    assert counters.read(LEARNING_PERIOD) == {"welcome|pricing/nurturing|clicked": 1.0}


def test_the_shard_count_is_a_setting_checked_once() -> None:
    assert load_settings({"LEADLOOP_STAGE": "test"}).counter_shards == 16
    assert load_settings({"LEADLOOP_STAGE": "test", "LEADLOOP_COUNTER_SHARDS": "32"}).counter_shards == 32
    with pytest.raises(ConfigurationError, match="LEADLOOP_COUNTER_SHARDS"):
        load_settings({"LEADLOOP_STAGE": "test", "LEADLOOP_COUNTER_SHARDS": "0"})
