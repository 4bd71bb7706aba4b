"""Counting once per stream batch through the whole loop (README "Counting once per stream batch"): with
LEADLOOP_COUNT_IN_STREAM, as deployed, the worker leaves a routing's counts in the write; the scoreboard shows
them once app.count_effects has read the prospects table's stream (moto), and reading the whole stream again
counts nothing twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import wiring
from tests.e2e.conftest import Loop

HAND_RAISE = {
    "batch": [
        {
            "type": "identify",
            "messageId": "sc-1",
            "userId": "sc-ada",
            "traits": {"email": "ada@bigco.example"},
        },
        {"type": "track", "messageId": "sc-2", "userId": "sc-ada", "event": "Demo Requested"},
    ]
}


@pytest.fixture
def counting(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loop]:
    monkeypatch.setenv("LEADLOOP_COUNT_IN_STREAM", "1")
    wiring.reset()
    yield loop


def _routed(loop: Loop) -> float:
    board = loop.sales("GET", "/metrics")
    assert board.status_code == 200, board.body
    return float(board.json_body["routed"]["hand_raise"])


def test_a_routing_is_counted_once_by_the_stream_and_not_again_when_it_is_read_again(counting: Loop) -> None:
    counting.track("/v1/batch", HAND_RAISE)
    counting.drain()
    assert counting.sales("GET", "/leads/ada@bigco.example").json_body["state"] == "sales_ready"
    assert _routed(counting) == 0  # the worker left it to the stream

    assert counting.drain_counts() > 0
    assert _routed(counting) == 1

    counting.drain_stream()  # the dispatcher leaves the counts alone
    counting.drain_counts()  # the whole stream again, from its start
    assert _routed(counting) == 1
