"""A write that only moves counters keeps one mark: its counter marker is its done mark, on DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.adapters.dynamo import Counters, EffectLedger, Tables
from chalicelib.adapters.dynamo_tables import models_for
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.domain.prospect import Prospect
from chalicelib.effects.dispatch import Dispatcher, SavedWrite
from chalicelib.effects.outbox import CountOnScoreboard, LearnFromOutcomes
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _dispatcher(tables: Tables) -> Dispatcher:
    rules = load_default_rules()
    return Dispatcher.on_tables(
        tables,
        notifier=None,  # type: ignore[arg-type]
        workflow=SlaWorkflow(None, None),
        rules=lambda: rules,
    )


def _count_only(version: int) -> SavedWrite:
    return SavedWrite(
        "lead-7",
        version,
        Prospect(lead_id="lead-7", created_at=NOW),
        (
            CountOnScoreboard(NOW, {"template:welcome:opened": 1.0}),
            LearnFromOutcomes(NOW, {"welcome|pricing/nurturing|opened": 1.0}),
        ),
    )


def _marks(tables: Tables) -> list[str]:
    return sorted(item.key for item in models_for(tables).nonces.scan())


def test_a_count_only_write_counts_once_and_keeps_one_mark(moto_tables: Tables) -> None:
    write = _count_only(3)
    _dispatcher(moto_tables).perform(write, just_written=True)  # the writer, right after its save
    _dispatcher(moto_tables).perform(write)  # the table's stream hands it over
    _dispatcher(moto_tables).perform(write)  # and Lambda retries the batch

    counters = Counters(moto_tables)
    assert counters.read("all") == {"template:welcome:opened": 1.0}
    assert counters.read("learning") == {"welcome|pricing/nurturing|opened": 1.0}
    assert _marks(moto_tables) == ["counted#lead-7#3#0#0"]  # no separate "effect#write#..." done mark


def test_a_write_counted_under_the_old_marks_is_not_counted_again(moto_tables: Tables) -> None:
    """Before, a count-only write was counted under the same marker, then marked done apart; a crash between
    the two left the marker alone. A redelivery now finds the marker either way."""
    write = _count_only(4)
    expires = NOW + timedelta(days=3)
    Counters(moto_tables).add_once(
        "lead-7#4#0", {("all", "template:welcome:opened"): 1.0}, expires_at=expires
    )  # counted; the done mark never written
    _dispatcher(moto_tables).perform(write)
    EffectLedger(moto_tables).mark("write#lead-7#4", expires_at=expires)  # and with the done mark too
    _dispatcher(moto_tables).perform(write)

    assert Counters(moto_tables).read("all") == {"template:welcome:opened": 1.0}
