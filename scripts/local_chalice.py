"""`chalice local` for the local stack, with the events queue journaled: the same CLI and arguments, run in
this process after the app's events queue is swapped for `chalicelib.adapters.queue.JournaledQueue` writing
to $LEADLOOP_LOCAL_JOURNAL, so every event answered 2xx is on disk before the answer (moto's queue is in
memory only; scripts/local_journal.py replays what was never applied).

Usage (scripts/local_stack.py runs it): python scripts/local_chalice.py local --host ... --port ...
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def journal_the_events_queue(journal_dir: Path) -> None:
    """Make `wiring.event_queue()` return a JournaledQueue, unless wiring already builds one itself."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from chalicelib import wiring
    from chalicelib.adapters.queue import JournaledQueue

    built = wiring.event_queue()
    if isinstance(built, JournaledQueue):
        return

    @cache
    def journaled_event_queue() -> JournaledQueue:
        return JournaledQueue(wiring.aws("sqs"), str(wiring.settings().queue_url), journal_dir)

    journaled_event_queue()  # fail here, at start, rather than on the first request
    wiring.event_queue = journaled_event_queue  # type: ignore[assignment]  # see the module docstring


def main(argv: list[str]) -> int:
    journal = os.environ.get("LEADLOOP_LOCAL_JOURNAL")
    if not journal:
        print("local_chalice: LEADLOOP_LOCAL_JOURNAL is not set", file=sys.stderr)
        return 2
    journal_the_events_queue(Path(journal))
    from chalice.cli import main as chalice

    sys.argv = ["chalice", *argv]
    return int(chalice() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
