"""The cost model (bench/cost.py) prices what is deployed: each function's memory as .chalice/config.json
sets it, the CPU share that memory buys, and the archiver's runs as its SQS trigger gathers them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import cost
from chalicelib.adapters.archive_queue import ARCHIVER_BATCH, ARCHIVER_WINDOW_S
from tests.conftest import REPO_ROOT


def test_the_model_prices_each_function_at_the_memory_it_is_deployed_with() -> None:
    config = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())["lambda_functions"]
    assert cost.FUNCTION_MEMORY_MB == {name: f["lambda_memory_size"] for name, f in config.items()}
    assert cost.PRICES["archiver_messages_per_invocation"] == ARCHIVER_BATCH
    assert cost.PRICES["archiver_window_seconds"] == ARCHIVER_WINDOW_S


def test_less_memory_slows_the_cpu_part_but_not_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    memory: dict[str, int] = {"half": 256, "whole": 512, "big": 4096}
    monkeypatch.setattr(cost, "FUNCTION_MEMORY_MB", memory)
    assert cost.lambda_ms("half", 1.0, 15.0) - 15.0 == pytest.approx(
        2 * (cost.lambda_ms("whole", 1.0, 15.0) - 15.0)
    )
    assert cost.lambda_ms("half", 0.0, 15.0) == cost.lambda_ms("whole", 0.0, 15.0) == 15.0
    assert cost.lambda_ms("big", 1.0, 0.0) == 1.0  # past one vCPU a single thread gains nothing
    # Half the memory is half the price of a millisecond: 16 ms at 512 MB costs what 32 ms at 256 MB does.
    assert cost._lambda_dollars(32, 1e6, "half") == pytest.approx(cost._lambda_dollars(16, 1e6, "whole"))


@pytest.mark.parametrize(
    ("rate", "events_per_message", "message_bytes", "expected"),
    [
        (1000, 10, 413, ARCHIVER_BATCH),  # browsers at volume: the batch fills before the window ends
        (13, 10, 413, 13 / 10 * ARCHIVER_WINDOW_S),  # a quiet stage: what the window brings
        (1000, 1000, 41_000, 6 * 1024 * 1024 / 41_000),  # server-side: Lambda's 6 MB payload binds
    ],
)
def test_an_archiver_run_holds_the_least_of_its_batch_its_window_and_the_payload_limit(
    monkeypatch: pytest.MonkeyPatch, rate: float, events_per_message: int, message_bytes: int, expected: Any
) -> None:
    monkeypatch.setitem(cost.PRICES, "events_per_second", rate)
    assert cost.archiver_messages_per_run(events_per_message, message_bytes) == pytest.approx(expected)


def test_the_count_consumers_batch_is_the_deployed_one() -> None:
    """bench/projection.py bounds the stream the count consumer keeps up with by its time for a full batch."""
    import app

    (source,) = [s for s in app.app.event_sources if getattr(s, "name", "") == "count_effects"]
    assert cost.COUNT_CONSUMER_BATCH == source.batch_size
