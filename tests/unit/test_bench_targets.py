"""`make bench` ends with every target it measured, met or missed, and why a missed one is (issue 15: the
bench "says plainly which one is not and why")."""

from __future__ import annotations

from bench.targets import WHY, note_load, render


def _results(events_per_second: int, write_units: float) -> dict[str, object]:
    return {
        "load_average": {"domain": [3.5, 2.0, 1.0]},
        "domain": {"events_per_second": events_per_second, "target_events_per_second": 20_000,
                   "meets_target": events_per_second >= 20_000},
        "storage": {
            "batched_per_prospect": {"write_units_per_event": write_units, "read_units_per_event": 0.7},
            "target_write_units_per_event": 1.5,
            "target_read_units_per_event": 1.0,
        },
    }  # fmt: skip


def test_a_missed_target_is_named_with_its_reason_and_the_load_it_ran_under() -> None:
    text = render(_results(17_000, 2.3))

    assert "Targets: 1 of 3 met" in text
    assert "MISSED  domain, one event at a time: 17,000 events/s (load average 3.5" in text
    assert WHY["domain"] in text and WHY["write_units"] in text
    assert "met     read units per event" in text


def test_a_met_target_gives_no_reason() -> None:
    text = render(_results(21_000, 1.4))

    assert "Targets: 3 of 3 met" in text
    assert "why:" not in text


def test_the_load_is_recorded_per_section() -> None:
    results: dict[str, object] = {}
    note_load(results, "lab", read=lambda: (1.234, 0.5, 0.25))
    assert results == {"load_average": {"lab": [1.23, 0.5, 0.25]}}
