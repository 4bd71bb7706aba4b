"""`python -m bench.prospect_copy`: what the shadow's profile copy costs the worker, deepcopy beside
copy_prospect (chalicelib/domain/prospect_copy.py), on the standard stream (bench/stream.py), one core.

The worker's batches are applied as in bench/lab.py's shadow figure; before each prospect's events, the
profile as it stands is copied both ways (the copy the worker makes for the shadow hook while a shadow is
active), each copy timed alone. Reported per event (the figure the worker's CPU per event is read in),
per copy, and beside the live domain work of the same batches. Profiles grow through the stream, so later
copies copy longer histories; the largest profile's copy is timed too.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from bench.stream import Shape, generate
from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_copy import copy_prospect
from chalicelib.domain.reassess import reassess
from chalicelib.wiring import load_default_rules

BATCH = 10 * 5  # as bench/lab.py: ten SQS messages of about five events
REPEAT_LARGEST = 2000


def measure() -> dict[str, Any]:
    stream = generate(Shape())
    rules = load_default_rules()
    profiles: dict[int, Prospect] = {}
    deep_s = fast_s = domain_s = 0.0
    copies = 0
    for start in range(0, len(stream), BATCH):
        batch = stream[start : start + BATCH]
        now = batch[-1][1].at
        by_lead: dict[int, list[Event]] = {}
        for who, event in batch:
            by_lead.setdefault(who, []).append(event)
        for who, events in by_lead.items():
            p = profiles.setdefault(
                who, Prospect(lead_id=f"L{who}", created_at=events[0].at, source=events[0].source)
            )
            t0 = time.process_time()
            deep = copy.deepcopy(p)
            t1 = time.process_time()
            fast = copy_prospect(p)
            t2 = time.process_time()
            assert fast == deep
            for event in sorted(events, key=lambda e: e.at):
                try:
                    apply_event(p, event, rules, now)
                except Exception:  # noqa: BLE001 - the worker notes an illegal event and goes on
                    continue
            reassess(p, rules, now)
            t3 = time.process_time()
            deep_s += t1 - t0
            fast_s += t2 - t1
            domain_s += t3 - t2
            copies += 1
    largest = max(
        profiles.values(), key=lambda p: len(p.seen) + len(p.pages) + len(p.messages) + len(p.history)
    )
    events = len(stream)
    return {
        "events": events,
        "copies": copies,
        "live_domain_us_per_event": round(1e6 * domain_s / events, 1),
        "deepcopy_us_per_event": round(1e6 * deep_s / events, 1),
        "copy_prospect_us_per_event": round(1e6 * fast_s / events, 1),
        "deepcopy_us_per_copy": round(1e6 * deep_s / copies, 1),
        "copy_prospect_us_per_copy": round(1e6 * fast_s / copies, 1),
        "speedup": round(deep_s / fast_s, 1) if fast_s else None,
        "largest_profile": {
            "seen": len(largest.seen),
            "pages": len(largest.pages),
            "deepcopy_us": _timed(copy.deepcopy, largest),
            "copy_prospect_us": _timed(copy_prospect, largest),
        },
    }


def _timed(copier: Any, p: Prospect) -> float:
    t0 = time.process_time()
    for _ in range(REPEAT_LARGEST):
        copier(p)
    return round(1e6 * (time.process_time() - t0) / REPEAT_LARGEST, 1)


def main() -> None:
    print(json.dumps(measure(), indent=2))


if __name__ == "__main__":
    main()
