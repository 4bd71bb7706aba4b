"""`python -m bench.lab`: the rules lab's two figures on the standard stream (bench/stream.py), one core.

- archive cost per worker batch: encoding a batch's events into its day/shard objects (JSON lines, gzip),
  beside the domain work of that batch (apply_event per event, reassess per prospect), so the share the
  archive adds to the worker's CPU is seen; the S3 PUT itself is one request per object (measured by
  bench/storage.py's request counts, not here);
- replay: archived events replayed per second per core with two rule sets (the published rules and a draft
  that raises the engagement threshold), decoding each object once (what a Map child does), and the
  per-part figures (decode speed, bytes per archived event and per lead row) that project a
  100-million-event backtest on AWS (`project`): wall time and dollars of the Step Functions Distributed Map
  (infra/backtest_workflow.asl.json) at the functions' configured memory, from bench/cost.py's dated prices
  plus the Step Functions and S3 prices in AWS_PRICES.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Sequence
from typing import Any

from bench.cost import PRICES
from bench.stream import Shape, generate
from chalicelib.domain.apply import apply_event, reassess
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.lab.layout import DEFAULT_SHARDS, ArchivedEvent, decode, encode, group_objects
from chalicelib.lab.replay import replay_shard
from chalicelib.usecases.rules_text import check_rules_text
from chalicelib.wiring import DEFAULT_RULES, load_default_rules

BATCH = 10 * 5  # ten SQS messages of about five events (a page burst)
DRAFT = DEFAULT_RULES.read_text().replace("  engagement: 35", "  engagement: 45")
AWS_PRICES: dict[str, Any] = {
    "as_of": "2026-11-23 (us-east-1 list prices, read with bench/cost.py's)",
    "step_functions_standard_per_1000_transitions": 0.025,
    "s3_get_per_1000": 0.0004,
    "s3_put_list_per_1000": 0.005,
    # .chalice/config.json and infra/: what the projection runs with
    "shard_memory_gb": 2.0,
    "merge_memory_gb": 3.0,
    "map_max_concurrency": 64,
    "lambda_timeout_s": 900,
    "shard_vcpu": 1.0,  # Lambda gives ~1 vCPU per 1,769 MB: the replay is one thread
    # per child execution: Map child start + ReplayPart task + end; per run: map, merge, start/end
    "transitions_per_child": 3,
    "transitions_per_run": 6,
    "s3_round_trip_ms": 30.0,
    "part_readers": 32,  # chalicelib/usecases/backtest.py PART_READERS: objects fetched at once
    "events_in_memory_bytes": 1500,  # a decoded Event and its share of the lead's history (assumed)
}


def _archive_vs_domain(stream: Sequence[tuple[int, Event]]) -> dict[str, float]:
    rules = load_default_rules()
    profiles: dict[int, Prospect] = {}
    domain_s = archive_s = 0.0
    batches = objects = 0
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
            objects += 1
        t2 = time.process_time()
        domain_s, archive_s, batches = domain_s + t1 - t0, archive_s + t2 - t1, batches + 1
    return {
        "batches": batches,
        "events_per_batch": BATCH,
        "domain_ms_per_batch": round(1000 * domain_s / batches, 3),
        "archive_encode_ms_per_batch": round(1000 * archive_s / batches, 3),
        "archive_share_of_worker_cpu": round(archive_s / (domain_s + archive_s), 3),
        "events_per_archived_object": round(len(stream) / max(1, objects), 2),
    }


def _replay(stream: Sequence[tuple[int, Event]]) -> dict[str, float]:
    published = load_default_rules()
    draft, _ = check_rules_text(DRAFT)
    assert draft is not None
    items = [ArchivedEvent(f"L{who}", event) for who, event in stream]
    objects = [encode(held) for held in group_objects(items).values()]
    t0 = time.process_time()
    decoded = [item for body in objects for item in decode(body)]
    t1 = time.process_time()
    rows = replay_shard(decoded, published, draft)
    t2 = time.process_time()
    rows_bytes = len(gzip.compress(json.dumps(rows, separators=(",", ":")).encode(), mtime=0))
    return {
        "events": len(items),
        "leads": len(rows),
        "routed_published": sum(1 for row in rows if row["published"]["routed_at"]),
        "routed_draft": sum(1 for row in rows if row["draft"]["routed_at"]),
        "decoded_events_per_second_per_core": round(len(decoded) / (t1 - t0)),
        "replayed_events_per_second_per_core_two_rule_sets": round(len(items) / (t2 - t1)),
        "archived_bytes_per_event": round(sum(len(body) for body in objects) / len(items), 1),
        "part_bytes_per_lead": round(rows_bytes / max(1, len(rows)), 1),
        "events_per_lead": round(len(items) / max(1, len(rows)), 1),
    }


def project(replay: dict[str, float], events_per_object: float, events: int = 100_000_000) -> dict[str, Any]:
    """A backtest of `events` archived events on AWS, from the measured per-part figures."""
    p, lam = AWS_PRICES, PRICES
    replay_eps = replay["replayed_events_per_second_per_core_two_rule_sets"] * p["shard_vcpu"]
    decode_eps = replay["decoded_events_per_second_per_core"] * p["shard_vcpu"]
    per_shard = events / DEFAULT_SHARDS
    # Slices per shard: a child keeps its slice's histories in memory (half its memory at most) and a
    # shard's objects are read by every slice of it, so the fewest slices that fit.
    fits = p["shard_memory_gb"] * 1e9 / 2 / p["events_in_memory_bytes"]
    slices = max(1, math.ceil(per_shard / fits))
    children = DEFAULT_SHARDS * slices
    objects_per_shard = per_shard / events_per_object  # the worker's batches, as archived (measured)
    child_s = (
        per_shard / decode_eps  # every slice decodes its whole shard, keeps its leads
        + per_shard / slices / replay_eps
        + objects_per_shard * p["s3_round_trip_ms"] / 1000 / p["part_readers"]
    )
    waves = math.ceil(children / p["map_max_concurrency"])
    leads = events / replay["events_per_lead"]
    merge_s = (
        leads * replay["part_bytes_per_lead"] / 50e6 + leads / 200_000
    )  # 50 MB/s read; 200k rows/s merge
    gb_s = children * child_s * p["shard_memory_gb"] + merge_s * p["merge_memory_gb"]
    gets = round(children * objects_per_shard + children + 1)  # events objects per slice; parts by the merge
    puts = children + 4  # parts, spec, job record writes
    dollars = {
        "lambda_gb_seconds": round(gb_s * lam["lambda_per_gb_second"], 2),
        "lambda_requests": round((children + 1) * lam["lambda_per_million_requests"] / 1e6, 4),
        "step_functions_transitions": round(
            (children * p["transitions_per_child"] + p["transitions_per_run"])
            * p["step_functions_standard_per_1000_transitions"] / 1000, 4),
        "s3_requests": round(gets * p["s3_get_per_1000"] / 1000 + puts * p["s3_put_list_per_1000"] / 1000, 4),
    }  # fmt: skip
    return {
        "events": events,
        "slices_per_shard": slices,
        "map_children": children,
        "child_seconds": round(child_s, 1),
        "child_fits_lambda_timeout": child_s < p["lambda_timeout_s"],
        "merge_seconds": round(merge_s, 1),
        "wall_seconds": round(waves * child_s + merge_s, 1),
        "lambda_gb_seconds": round(gb_s),
        "s3_gets": gets,
        "dollars": {**dollars, "total": round(sum(dollars.values()), 2)},
        "prices": p,
    }


def measure() -> dict[str, Any]:
    stream = generate(Shape())
    replay = _replay(stream)
    archive = _archive_vs_domain(stream)
    return {
        "stream_events": len(stream),
        "archive_vs_domain": archive,
        "replay": replay,
        "target_events_per_second_per_core": 20_000,
        "projected_100m_on_aws": project(replay, archive["events_per_archived_object"]),
    }


def render(results: dict[str, Any]) -> str:
    replay, aws = results["replay"], results["projected_100m_on_aws"]
    return "\n".join(
        [
            "rules lab (one core, standard stream)",
            "  replay, two rule sets: "
            f"{replay['replayed_events_per_second_per_core_two_rule_sets']:,} events/s"
            f" (target {results['target_events_per_second_per_core']:,}); decode:"
            f" {replay['decoded_events_per_second_per_core']:,} events/s",
            f"  100 M events on AWS: {aws['map_children']} Map children of {aws['child_seconds']} s"
            f" (fits the Lambda timeout: {aws['child_fits_lambda_timeout']}), wall {aws['wall_seconds']} s,"
            f" ${aws['dollars']['total']} ({aws['prices']['as_of']})",
        ]
    )


def main() -> None:
    print(json.dumps(measure(), indent=2))


if __name__ == "__main__":
    main()
