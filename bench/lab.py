"""`python -m bench.lab`: the rules lab's two figures on the standard stream (bench/stream.py), one core.

- archive cost per worker batch: packing a batch's events into its archive-queue message (AWS) or encoding
  its day/shard objects (the local stack), beside the domain work of that batch (apply_event per event,
  reassess per prospect), and the events per object the archiver writes from a thousand batches at once;
- replay: archived events replayed per second per core with two rule sets (the published rules and a draft
  that raises the engagement threshold), each lead's next template chosen under both from the shipped
  templates (once per lead, chalicelib/lab/choices.py), decoding each object once (what a Map child
  does), and the per-part figures (decode speed, bytes per archived event and per lead row) that project a
  100-million-event backtest on AWS (`project`): wall time and dollars of the Step Functions Distributed Map
  (infra/backtest_workflow.asl.json) at the functions' configured memory, from bench/cost.py's dated prices
  plus the Step Functions and S3 prices in AWS_PRICES;
- compaction (chalicelib/lab/compaction.py), measured: the stream archived as the worker writes it (one
  object per batch, day and shard, in a folder), compacted by the real code, objects counted before and
  after, its CPU per event, and the read speed (fetch from disk and decode) per object of both layouts, plus
  the decode speed of one compacted object of the size a day's shard has at 100 million events in a
  90-day window; the projection is then run with the compacted layout (`project(..., compacted=...)`) and
  the daily compaction's own cost at that size (`project_compaction`);
- shadow cost (`_shadow_cost`): the worker's batches of the stream applied with the live rules as the
  worker does, and with a shadow active: the profile copy, the shadow's apply/reassess and both next-template
  choices per prospect and batch (usecases/shadow.ShadowScoring.observe, the real hook), CPU per event
  beside the live domain work, and the comparison rows written per event (one DynamoDB UpdateItem each,
  chalicelib/adapters/shadow_rows.py) with their size in write units.
"""

from __future__ import annotations

import gc
import gzip
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.cost import PRICES, expected_objects
from bench.stream import Shape, generate
from chalicelib.adapters.archive import EventArchive, FolderBlobs
from chalicelib.adapters.archive_queue import ARCHIVER_BATCH, ARCHIVER_WINDOW_S, pack_archived
from chalicelib.adapters.shadow_rows import InMemoryShadowRows
from chalicelib.adapters.templates import load_shipped_templates
from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_copy import copy_prospect
from chalicelib.domain.reassess import reassess
from chalicelib.lab.compaction import compact_archive
from chalicelib.lab.layout import DEFAULT_SHARDS, ArchivedEvent, decode, encode, group_objects
from chalicelib.lab.replay import replay_shard
from chalicelib.usecases.rules_text import check_rules_text
from chalicelib.usecases.shadow import SHADOW_KEY, ShadowScoring
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
    "s3_child_read_mb_per_s": 50.0,  # one child's GET throughput over its 32 connections (assumed, low)
    "window_days": 90,  # the backtest window 100 M events span (one compacted object per day and shard)
    "compact_memory_gb": 1.0,  # .chalice/config.json compact_archive
}


def _archive_vs_domain(stream: Sequence[tuple[int, Event]]) -> dict[str, float]:
    """The archive's CPU per worker batch beside the batch's domain work, both ways the worker archives:
    on AWS it packs the batch into one archive-queue message (adapters/archive_queue.py); on the local stack
    it encodes the batch's day/shard objects itself. Then the objects the archiver writes when it takes up
    to ARCHIVER_BATCH worker batches at once (app.archive_events), and the events each holds."""
    rules = load_default_rules()
    profiles: dict[int, Prospect] = {}
    domain_s = packed_s = local_s = 0.0
    batches = local_objects = messages = 0
    held: list[list[ArchivedEvent]] = []
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
        items = [ArchivedEvent(f"L{who}", e) for who, e in batch]
        messages += len(pack_archived(items))
        t2 = time.process_time()
        for objects in group_objects(items).values():
            encode(objects)
            local_objects += 1
        t3 = time.process_time()
        domain_s, packed_s, local_s = domain_s + t1 - t0, packed_s + t2 - t1, local_s + t3 - t2
        batches += 1
        held.append(items)
    archiver_objects = sum(
        len(group_objects([item for items in held[i : i + ARCHIVER_BATCH] for item in items]))
        for i in range(0, len(held), ARCHIVER_BATCH)
    )
    return {
        "batches": batches,
        "events_per_batch": BATCH,
        "domain_ms_per_batch": round(1000 * domain_s / batches, 3),
        "queue_pack_ms_per_batch": round(1000 * packed_s / batches, 3),
        "queue_messages_per_batch": round(messages / batches, 2),
        "queue_pack_share_of_domain_and_archive_cpu": round(packed_s / (domain_s + packed_s), 3),
        "local_encode_ms_per_batch": round(1000 * local_s / batches, 3),
        "local_objects_per_batch": round(local_objects / batches, 2),
        "archiver_worker_batches_per_invocation": ARCHIVER_BATCH,
        "events_per_archived_object": round(len(stream) / max(1, archiver_objects), 2),
        "events_per_object_written_by_the_worker": round(len(stream) / max(1, local_objects), 2),
    }


class _CountedRows(InMemoryShadowRows):
    """The shadow's rows, counting the writes and the size of each (a DynamoDB item: 1 WCU per KB)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = self.write_units = self.row_bytes = 0

    def record(self, shadow_id: str, lead_id: str, row: Any, *, expires_at: datetime) -> None:
        size = len(json.dumps(row, separators=(",", ":"))) + len(shadow_id) + len(lead_id) + 40  # keys, TTL
        self.writes, self.row_bytes = self.writes + 1, self.row_bytes + size
        self.write_units += math.ceil(size / 1024)
        super().record(shadow_id, lead_id, row, expires_at=expires_at)


class _OneShadow:
    """The content store holding one active shadow of the DRAFT rules (what PUT /rules/shadow writes)."""

    def __init__(self, started_at: datetime) -> None:
        doc = {"id": "sh-bench", "rules": DRAFT, "based_on": None, "days": 30, "author": "bench",
               "started_at": started_at.isoformat(), "status": "active",
               "ends_at": (started_at + timedelta(days=365)).isoformat()}  # fmt: skip
        self._latest = SimpleNamespace(body=json.dumps(doc))

    def save(self, *args: Any, **kwargs: Any) -> int:
        raise NotImplementedError

    def latest(self, key: str) -> Any:
        return self._latest if key == SHADOW_KEY else None


def _shadow_cost(stream: Sequence[tuple[int, Event]]) -> dict[str, Any]:
    """What an active shadow adds to the worker, per event: CPU beside the live domain work, and rows."""
    rules = load_default_rules()
    catalogue = [t.meta for t in load_shipped_templates().values()]
    rows = _CountedRows()
    hook = ShadowScoring(versions=_OneShadow(stream[0][1].at), rows=rows, live_rules=lambda: rules,
                         catalogue=lambda: catalogue)  # fmt: skip
    profiles: dict[int, Prospect] = {}
    domain_s = copy_s = shadow_s = 0.0
    touched_total = 0
    for start in range(0, len(stream), BATCH):
        batch = stream[start : start + BATCH]
        now = batch[-1][1].at
        shadow = hook.current(now)
        assert shadow is not None
        by_lead: dict[int, list[Event]] = {}
        for who, event in batch:
            by_lead.setdefault(who, []).append(event)
        for who, events in by_lead.items():  # the worker's per-prospect apply (usecases/leads.py)
            p = profiles.setdefault(who, Prospect(lead_id=f"L{who}", created_at=events[0].at,
                                                  source=events[0].source))  # fmt: skip
            t0 = time.process_time()
            before = copy_prospect(p)  # the worker's copy for the hook (usecases/leads.py)
            t1 = time.process_time()
            for event in sorted(events, key=lambda e: e.at):
                try:
                    apply_event(p, event, rules)
                except Exception:  # noqa: BLE001 - the worker notes an illegal event and goes on
                    continue
            scores, _ = reassess(p, rules, now)
            t2 = time.process_time()
            hook.observe(shadow, before, events, p, scores.total, now)
            t3 = time.process_time()
            domain_s += t2 - t1
            copy_s += t1 - t0
            shadow_s += t3 - t2
        touched_total += len(by_lead)
    events = len(stream)
    return {
        "events": events,
        "prospect_batches": touched_total,
        "live_domain_us_per_event": round(1e6 * domain_s / events, 1),
        "shadow_us_per_event": round(1e6 * (copy_s + shadow_s) / events, 1),
        "shadow_copy_us_per_event": round(1e6 * copy_s / events, 1),
        "shadow_share_of_worker_cpu": round((copy_s + shadow_s) / (domain_s + copy_s + shadow_s), 3),
        "rows_written_per_event": round(rows.writes / events, 3),
        "write_units_per_event": round(rows.write_units / events, 3),
        "row_bytes_mean": round(rows.row_bytes / max(1, rows.writes)),
        "leads_with_rows": len(rows.all("sh-bench")),
    }


def _replay(stream: Sequence[tuple[int, Event]]) -> dict[str, float]:
    published = load_default_rules()
    draft, _ = check_rules_text(DRAFT)
    assert draft is not None
    catalogue = [t.meta for t in load_shipped_templates().values()]
    items = [ArchivedEvent(f"L{who}", event) for who, event in stream]
    objects = [encode(held) for held in group_objects(items).values()]
    # A Map child holds only its own part: without this, the collector rescans everything the benches
    # before this one left in the process (make bench's decode figure read 6,800 events/s, 57,000 alone).
    gc.collect()
    gc.freeze()
    try:
        t0 = time.process_time()
        decoded = [item for body in objects for item in decode(body)]
        t1 = time.process_time()
        rows = replay_shard(decoded, published, draft, catalogue=catalogue)
        t2 = time.process_time()
    finally:
        gc.unfreeze()
    rows_bytes = len(gzip.compress(json.dumps(rows, separators=(",", ":")).encode(), mtime=0))
    return {
        "events": len(items),
        "leads": len(rows),
        "routed_published": sum(1 for row in rows if row["published"]["routed_at"]),
        "routed_draft": sum(1 for row in rows if row["draft"]["routed_at"]),
        "next_template_changed": sum(1 for row in rows if row["published"]["next"] != row["draft"]["next"]),
        "decoded_events_per_second_per_core": round(len(decoded) / (t1 - t0)),
        "replayed_events_per_second_per_core_two_rule_sets": round(len(items) / (t2 - t1)),
        "archived_bytes_per_event": round(sum(len(body) for body in objects) / len(items), 1),
        "part_bytes_per_lead": round(rows_bytes / max(1, len(rows)), 1),
        "events_per_lead": round(len(items) / max(1, len(rows)), 1),
    }


def project(
    replay: dict[str, float],
    events_per_object: float,
    events: int = 100_000_000,
    decode_per_second: float | None = None,
    bytes_per_event: float | None = None,
) -> dict[str, Any]:
    """A backtest of `events` archived events on AWS, from the measured per-part figures; `decode_per_second`
    and `bytes_per_event` of the objects as laid out (the compacted ones' are measured apart)."""
    p, lam = AWS_PRICES, PRICES
    replay_eps = replay["replayed_events_per_second_per_core_two_rule_sets"] * p["shard_vcpu"]
    decode_eps = (decode_per_second or replay["decoded_events_per_second_per_core"]) * p["shard_vcpu"]
    stored = bytes_per_event or replay["archived_bytes_per_event"]
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
        + per_shard * stored / 1e6 / p["s3_child_read_mb_per_s"]  # the bytes themselves
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
        "events_per_object": round(events_per_object, 1),
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


def _read_speed(archive: EventArchive, keys: Sequence[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    events = sum(1 for _ in archive.read(keys))
    elapsed = time.perf_counter() - t0
    return {
        "objects": len(keys),
        "events_per_object": round(events / max(1, len(keys)), 1),
        "read_events_per_second": round(events / elapsed),
        "read_objects_per_second": round(len(keys) / elapsed),
    }


def _compaction(stream: Sequence[tuple[int, Event]]) -> dict[str, Any]:
    """The stream archived batch by batch as the worker does, then compacted by the real code."""
    with tempfile.TemporaryDirectory() as folder:
        archive = EventArchive(FolderBlobs(Path(folder)), retention_days=3650)
        for start in range(0, len(stream), BATCH):
            archive.write([ArchivedEvent(f"L{who}", e) for who, e in stream[start : start + BATCH]])
        first, last = stream[0][1].at.date(), max(e.at for _, e in stream).date()
        small = archive.shard_keys(first, last)
        small_read = _read_speed(archive, small)
        t0 = time.process_time()
        counts = compact_archive(
            FolderBlobs(Path(folder)), last + timedelta(days=1), lookback_days=(last - first).days + 1
        )
        compact_s = time.process_time() - t0
        compacted = archive.shard_keys(first, last)
        compacted_read = _read_speed(archive, compacted)
        stored = sum((Path(folder) / key).stat().st_size for key in compacted)
    # One compacted object of a day's shard at 100 M events in the window (the stream's events renamed
    # until there are that many), decoded: the per-object figure a Map child's reading is made of.
    size = round(100_000_000 / DEFAULT_SHARDS / AWS_PRICES["window_days"])
    items = [
        ArchivedEvent(f"L{who}-{n}", replace(e, message_id=f"{e.message_id}-{n}"))
        for n in range(math.ceil(size / len(stream)))
        for who, e in stream
    ][:size]
    body = encode(items)
    t0 = time.process_time()
    decoded = sum(1 for _ in decode(body))
    decode_s = time.process_time() - t0
    return {
        "days": (last - first).days + 1,
        "objects_before": len(small),
        "objects_after": len(compacted),
        "compaction_cpu_us_per_event": round(1e6 * compact_s / len(stream), 2),
        "counts": counts.as_dict() | {"days": len(counts.days)},
        "batch_objects_read": small_read,
        "compacted_objects_read": compacted_read,
        "compacted_bytes_per_event": round(stored / len(stream), 1),
        "day_shard_object_at_100m": {
            "events": decoded,
            "gzip_mb": round(len(body) / 1e6, 2),
            "decode_seconds": round(decode_s, 2),
            "decoded_events_per_second_per_core": round(decoded / decode_s),
        },
    }


def project_compaction(replay: dict[str, float], compaction: dict[str, Any], events_per_object: float,
                       events: int = 100_000_000) -> dict[str, Any]:  # fmt: skip
    """The daily compaction of `events` archived over the window: each batch object read once."""
    p, lam = AWS_PRICES, PRICES
    per_day = events / p["window_days"]
    objects = per_day / events_per_object
    day_s = (
        per_day * compaction["compaction_cpu_us_per_event"] / 1e6
        + objects * p["s3_round_trip_ms"] / 1000 / p["part_readers"]
    )
    gb_s = day_s * p["compact_memory_gb"]
    dollars_per_day = (
        gb_s * lam["lambda_per_gb_second"]
        + objects * p["s3_get_per_1000"] / 1000
        + (DEFAULT_SHARDS + DEFAULT_SHARDS * 7 + objects / 1000) * p["s3_put_list_per_1000"] / 1000
    )
    return {
        "events_per_day": round(per_day),
        "batch_objects_per_day": round(objects),
        "run_seconds": round(day_s, 1),
        "fits_lambda_timeout": day_s < p["lambda_timeout_s"],
        "dollars_per_day": round(dollars_per_day, 2),
        "dollars_for_the_window": round(dollars_per_day * p["window_days"], 2),
    }


def measure() -> dict[str, Any]:
    stream = generate(Shape())
    replay = _replay(stream)
    archive = _archive_vs_domain(stream)
    compaction = _compaction(stream)
    shadow = _shadow_cost(stream)
    at_100m = compaction["day_shard_object_at_100m"]
    # The archiver's runs at that volume: 100 M events in the 90-day window are ~13 events/s, so a run holds
    # a minute of events (its batching window), fewer than its 100 worker batches, in ~16 day/shard objects.
    per_run = min(
        ARCHIVER_BATCH * BATCH, 100_000_000 / (AWS_PRICES["window_days"] * 86_400) * ARCHIVER_WINDOW_S
    )
    at_rate = round(per_run / expected_objects(per_run, DEFAULT_SHARDS), 1)
    return {
        "stream_events": len(stream),
        "archive_vs_domain": archive,
        "replay": replay,
        "compaction": compaction,
        "shadow": shadow,
        "target_events_per_second_per_core": 20_000,
        "archiver_events_per_object_at_100m": at_rate,
        "projected_100m_on_aws": project(replay, at_rate),
        "projected_100m_on_aws_compacted": project(
            replay,
            at_100m["events"],
            decode_per_second=at_100m["decoded_events_per_second_per_core"],
            bytes_per_event=compaction["compacted_bytes_per_event"],
        ),
        "projected_daily_compaction_at_100m": project_compaction(replay, compaction, at_rate),
    }


def render(results: dict[str, Any]) -> str:
    replay, aws = results["replay"], results["projected_100m_on_aws"]
    packed, daily = results["projected_100m_on_aws_compacted"], results["projected_daily_compaction_at_100m"]
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
            f"  compacted (measured): {packed['map_children']} Map children of {packed['child_seconds']} s"
            f" (fits: {packed['child_fits_lambda_timeout']}), wall {packed['wall_seconds']} s,"
            f" ${packed['dollars']['total']}; daily compaction {daily['run_seconds']} s,"
            f" ${daily['dollars_per_day']}/day",
            f"  shadow active: +{results['shadow']['shadow_us_per_event']} us CPU per event"
            f" (live domain {results['shadow']['live_domain_us_per_event']} us),"
            f" {results['shadow']['rows_written_per_event']} row writes"
            f" ({results['shadow']['write_units_per_event']} WCU) per event",
        ]
    )


def main() -> None:
    print(json.dumps(measure(), indent=2))


if __name__ == "__main__":
    main()
