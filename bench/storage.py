"""Storage per event: the standard stream through `LeadService.apply_events` on moto, metered on every call.

Two deliveries of the same stream, each on fresh tables: batches of 10 events in arrival order, as SQS
hands them to the worker (bursts of one prospect in a batch share one read and one conditional write), and
one event per batch (the worst case: every event pays its own profile read and write). For each we report
requests per event by operation and table (`CapacityMeter`), read and write units per event from item
sizes (`bench.units.SizeMeter`; moto's own unit figures are fixed per call and shown beside them), and the
worker's CPU time per event outside DynamoDB calls (what Lambda would bill besides waiting on the network).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from moto import mock_aws

from bench.stream import Shape, generate
from bench.units import SizeMeter
from chalicelib.adapters.dynamo import (
    ActivityLog,
    CapacityMeter,
    Counters,
    DynamoSeenChunks,
    IdentityStore,
    ProspectStore,
    Tables,
    create_tables,
)
from chalicelib.adapters.dynamo_repository import DynamoProspects
from chalicelib.adapters.dynamo_tables import models_for
from chalicelib.adapters.notify import Delivery
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.effects.dispatch import Dispatcher
from chalicelib.effects.outbox import OutboxEffect, encode, writers_effects
from chalicelib.effects.stream_counts import count_stream_batch
from chalicelib.usecases.leads import LeadService
from chalicelib.wiring import load_default_rules

REGION = "us-east-1"
# Smaller than the domain benchmark's stream: moto serves a few thousand calls a second at best.
STORAGE_SHAPE = Shape(prospects=200, sessions=500)
TARGET_WRITE_UNITS = 1.5
# The effects dispatcher's stream batch (app.dispatch_effects: batch_size=100), for the counting model.
STREAM_BATCH = 100
SEQUENCE_START = 10**20  # stream sequence numbers as long as DynamoDB's
TARGET_READ_UNITS = 1.0


class SettableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class SilentNotifier:
    """Sales notifications cost no storage; the summary is still built (it is CPU the worker spends)."""

    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        return [Delivery("bench", True, "not sent")]


def fake_credentials() -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        os.environ.setdefault(name, value)


class StreamedProspects(DynamoProspects):
    """The prospects repository that also keeps every write as the table's stream would hand it to the
    count consumer (its outbox and a rising sequence number): what `deliver` counts per stream batch."""

    def __init__(self, store: ProspectStore) -> None:
        super().__init__(store)
        self.stream: list[dict[str, Any]] = []
        self.dispatched = 0  # writes whose stream record the dispatcher reads a done mark for

    def save(
        self,
        prospect: Prospect,
        *,
        score: float,
        now: datetime,
        expected: int | None,
        effects: Sequence[OutboxEffect] = (),
    ) -> int:
        version = super().save(prospect, score=score, now=now, expected=expected, effects=effects)
        image: dict[str, Any] = {"lead_id": {"S": prospect.lead_id}, "version": {"N": str(version)}}
        outbox = encode(effects)
        self.dispatched += bool(writers_effects(effects))
        if outbox:
            image["outbox"] = {"B": outbox}
        sequence = str(SEQUENCE_START + len(self.stream))
        self.stream.append(
            {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "SequenceNumber": sequence}}
        )
        return version


def count_stream(
    prospects: StreamedProspects, counters: Counters, counted: int, batches: int, *, whole: bool
) -> tuple[int, int]:
    """Hand the writes' stream after record `counted` to the count consumer in batches of STREAM_BATCH
    (`whole`: the last, partial batch too), as Lambda would; returns (records counted, batches) so far."""
    stream = prospects.stream
    while len(stream) - counted >= STREAM_BATCH or (whole and counted < len(stream)):
        batch = stream[counted : counted + STREAM_BATCH]
        count_stream_batch(counters, {"Records": batch, "shardId": "shardId-bench"})
        counted, batches = counted + len(batch), batches + 1
    return counted, batches


def lead_service(
    tables: Tables, clock: SettableClock, prospects: StreamedProspects | None = None
) -> LeadService:
    """The worker's use case as deployed: its counts left to the stream's count consumer (`count_stream`), a
    busy prospect's older event ids in idempotency chunks."""
    rules = load_default_rules()
    effects = Dispatcher.on_tables(
        tables,
        notifier=SilentNotifier(),  # type: ignore[arg-type]
        workflow=SlaWorkflow(None, None),
        rules=lambda: rules,
    )
    return LeadService(
        prospects=prospects or StreamedProspects(ProspectStore(tables)),
        identities=IdentityStore(tables),
        activity=ActivityLog(tables),
        counters=Counters(tables),
        rules=lambda: rules,
        effects=effects,
        public_url="https://leads.example.test",
        clock=clock,
        count_in_stream=True,
        seen_chunks=DynamoSeenChunks(tables),
    )


def service_ids(tables: Tables) -> list[str]:
    return [item.lead_id for item in models_for(tables).prospects.scan(attributes_to_get=["lead_id"])]


def doc_bytes_by_field(store: ProspectStore, lead_ids: Sequence[str]) -> dict[str, int]:
    """Mean JSON bytes each field of the stored profile takes, biggest first: what a write pays for."""
    totals: dict[str, int] = {}
    for stored in store.get_many(lead_ids).values():
        for name, value in stored.doc.items():
            totals[name] = totals.get(name, 0) + len(json.dumps(value, separators=(",", ":")))
    n = max(len(lead_ids), 1)
    return {name: round(size / n) for name, size in sorted(totals.items(), key=lambda kv: -kv[1])[:8]}


def deliver(events: Sequence[Event], batch_size: int) -> dict[str, Any]:
    """Apply `events` in batches of `batch_size` on fresh moto tables, and count the writes' stream in
    batches of STREAM_BATCH as the count consumer does (app.count_effects); the meters' totals per event."""
    fake_credentials()
    with mock_aws():
        tables = Tables(prefix=f"bench-{uuid.uuid4().hex[:6]}-", region=REGION)
        create_tables(tables)
        clock = SettableClock(events[0].at)
        prospects = StreamedProspects(ProspectStore(tables))
        service = lead_service(tables, clock, prospects)
        counters = Counters(tables)
        meter, sizes = CapacityMeter(), SizeMeter(tables)
        meter.watch(tables)
        written = counted = batches = 0
        cpu = calls = 0.0  # the worker's own: the count consumer's CPU and calls are not the worker's

        started_wall = time.perf_counter()
        try:
            for start in range(0, len(events), batch_size):
                batch = events[start : start + batch_size]
                clock.now = max(event.at for event in batch)
                cpu_before, calls_before = time.process_time(), sizes.seconds_in_calls
                outcome = service.apply_events(batch)
                cpu += time.process_time() - cpu_before
                calls += sizes.seconds_in_calls - calls_before
                if outcome.failed:
                    raise RuntimeError(f"the bench stream failed to apply: {outcome.failed[0].error!r}")
                written += outcome.written
                counted, batches = count_stream(prospects, counters, counted, batches, whole=False)
            counted, batches = count_stream(prospects, counters, counted, batches, whole=True)
            wall = time.perf_counter() - started_wall
            moto = meter.reading()
            reads, writes, requests = sizes.totals()
        finally:
            meter.close()
            sizes.close()
        # Read after the meters are closed: this inspection is not part of the worker's bill.
        doc_fields = doc_bytes_by_field(ProspectStore(tables), service_ids(tables))
    n = len(events)
    worker_cpu = max(cpu - calls, 0.0)
    return {
        "events": n,
        "batch_size": batch_size,
        "invocations": -(-n // batch_size),
        "prospect_writes_per_event": round(written / n, 4),
        # The dispatcher reads a done mark only for a write with effects of its own (not counts alone).
        "dispatched_writes_per_event": round(prospects.dispatched / n, 4),
        "requests_per_event": round(sum(moto.calls.values()) / n, 3),
        "requests_by_operation": dict(sorted(moto.calls.items())),
        "requests_by_table": dict(sorted(sizes.requests.items())),
        "read_units_per_event": round(reads / n, 3),
        "write_units_per_event": round(writes / n, 3),
        "read_units_by_table": {k: round(v / n, 3) for k, v in sorted(sizes.read_units.items())},
        "write_units_by_table": {k: round(v / n, 3) for k, v in sorted(sizes.write_units.items())},
        "mean_prospect_item_bytes": round(
            sizes.bytes_written["prospects"]
            / max(
                sum(v for k, v in sizes.requests.items() if k.endswith(" prospects") and k.startswith("Put")),
                1,
            )
        ),
        "mean_doc_bytes_by_field": doc_fields,
        "moto_read_units_per_event": round(moto.read_units / n, 3),
        "moto_write_units_per_event": round(moto.write_units / n, 3),
        "worker_cpu_ms_per_event": round(worker_cpu / n * 1e3, 4),
        "seconds_in_dynamodb_calls": round(sizes.seconds_in_calls, 2),
        "wall_seconds": round(wall, 2),
        "count_consumer": {
            "stream_batch": STREAM_BATCH,
            "stream_batches": batches,
            "records": counted,
        },
    }


def measure(shape: Shape = STORAGE_SHAPE) -> dict[str, Any]:
    events = [event for _, event in generate(shape)]
    batched = deliver(events, 10)
    single = deliver(events, 1)
    return {
        "shape": {"prospects": shape.prospects, "sessions": shape.sessions, "seed": shape.seed},
        "batched_per_prospect": batched,
        "one_event_per_batch": single,
        "target_write_units_per_event": TARGET_WRITE_UNITS,
        "target_read_units_per_event": TARGET_READ_UNITS,
        "meets_target": batched["write_units_per_event"] <= TARGET_WRITE_UNITS
        and batched["read_units_per_event"] <= TARGET_READ_UNITS,
    }
