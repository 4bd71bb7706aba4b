"""One-off after deploying the inbox index: re-save every sales_ready and accepted lead once, so a profile
stored before the index existed gets its `inbox` and `routed_key` attributes (any later write of the lead
would add them too; until then such a lead is missing from the console inbox).

Reads the pool's by_state index (no table scan), then each profile, and writes it back unchanged through the
repository with its version as the condition: a lead that moved meanwhile was written by the app, which
set the attributes itself, so a lost condition is skipped. No effects are decided (an empty outbox).

    PYTHONPATH=. python scripts/backfill_inbox.py   (with the stage's settings, as the API has them)
"""

from __future__ import annotations

from chalicelib import wiring
from chalicelib.errors import ConcurrentUpdate


def main() -> None:
    store, prospects, now = wiring.prospects(), wiring.prospect_repository(), wiring.utc_now()
    written = 0
    for state in ("sales_ready", "accepted"):
        cursor: str | None = None
        while True:
            rows, cursor = store.list(state=state, owner=None, min_score=None, limit=200, cursor=cursor)
            for row in rows:
                held = prospects.get(row.lead_id)
                if held is None:
                    continue
                try:
                    prospects.save(held.item, score=row.score, now=now, expected=held.version)
                    written += 1
                except ConcurrentUpdate:
                    pass  # written by the app meanwhile, which set the inbox attributes
            if cursor is None:
                break
    print(f"re-saved {written} leads into the inbox index")


if __name__ == "__main__":
    main()
