"""`python -m bench.lab`: the rules lab's two figures on the standard stream (bench/stream.py), one core.

- archive cost per worker batch: encoding a batch's events into its day/shard objects (JSON lines, gzip),
  beside the domain work of that batch (apply_event per event, reassess per prospect), so the share the
  archive adds to the worker's CPU is seen; the S3 PUT itself is one request per object (measured by
  bench/storage.py's request counts, not here);
- replay: archived events replayed per second per core with two rule sets (published and a draft).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.stream import Shape, generate
from chalicelib.domain.apply import apply_event, reassess
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.lab.layout import ArchivedEvent, encode, group_objects
from chalicelib.lab.replay import replay_shard
from chalicelib.wiring import load_default_rules

BATCH = 10 * 5  # ten SQS messages of about five events (a page burst)


def _archive_vs_domain(stream: Sequence[tuple[int, Event]]) -> dict[str, float]:
    rules = load_default_rules()
    profiles: dict[int, Prospect] = {}
    domain_s = archive_s = 0.0
    batches = 0
    for start in range(0, len(stream), BATCH):
        batch = stream[start : start + BATCH]
        t0 = time.process_time()
        touched: dict[int, Prospect] = {}
        for who, event in batch:
            p = profiles.setdefault(
                who, Prospect(lead_id=f"L{who}", created_at=event.at, source=event.source)
            )
            apply_event(p, event, rules)
            touched[who] = p
        for p in touched.values():
            reassess(p, rules, batch[-1][1].at)
        t1 = time.process_time()
        for held in group_objects([ArchivedEvent(f"L{who}", e) for who, e in batch]).values():
            encode(held)
        t2 = time.process_time()
        domain_s, archive_s, batches = domain_s + t1 - t0, archive_s + t2 - t1, batches + 1
    return {
        "batches": batches,
        "events_per_batch": BATCH,
        "domain_ms_per_batch": round(1000 * domain_s / batches, 3),
        "archive_encode_ms_per_batch": round(1000 * archive_s / batches, 3),
        "archive_share_of_worker_cpu": round(archive_s / (domain_s + archive_s), 3),
    }


def _replay(stream: Sequence[tuple[int, Event]]) -> dict[str, float]:
    published = load_default_rules()
    draft = load_default_rules()
    items = [ArchivedEvent(f"L{who}", event) for who, event in stream]
    t0 = time.process_time()
    rows = replay_shard(items, published, draft)
    seconds = time.process_time() - t0
    return {
        "events": len(items),
        "leads": len(rows),
        "replayed_events_per_second_per_core_two_rule_sets": round(len(items) / seconds),
    }


def main() -> None:
    stream = generate(Shape())
    print(f"standard stream: {len(stream)} events, {Shape().prospects} prospects")
    print("archive vs domain:", _archive_vs_domain(stream))
    print("replay:", _replay(stream))


if __name__ == "__main__":
    main()
