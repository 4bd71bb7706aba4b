"""The local stack's count reader at shutdown (scripts/local_streams.py, scripts/local_stack.py): it retries
a failing batch until it is counted, as on AWS, but stopping the stack drains each stream only for the time
it was given. A count batch that keeps failing (DynamoDB Local gone, a bug) must not keep the stack from
stopping; it stays unacknowledged, so the next start hands it over again."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.integration.test_local_streams import Table, moto_table  # noqa: F401 - the fixture

JOIN_S = 60.0  # far more than the drain was given: the drain either ends or never would


class FailingCounts:
    """Stands in for `app.count_effects` while storage refuses every transaction."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        self.calls += 1
        raise RuntimeError("counters unavailable")


def test_stopping_the_stack_ends_a_count_batch_that_keeps_failing(
    moto_table: Table,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    moto_table.save("lead-1", "count-1")
    counts = FailingCounts()
    poller = moto_table.poller(counts, tmp_path, max_attempts=10**9)  # as the stack's count reader
    hurry = threading.Event()  # a second Ctrl-C: never pressed here
    drain = threading.Thread(target=poller.drain, args=(0.2, hurry), daemon=True)

    drain.start()
    drain.join(JOIN_S)
    hurry.set()  # let a stuck drain go, whatever happened
    stuck = drain.is_alive()
    drain.join(JOIN_S)

    assert not stuck, "the stack's stop waited on a failing count batch past its drain time"
    assert counts.calls >= 1
    assert not poller.checkpoint.positions  # not acknowledged: the next start hands the batch over again
