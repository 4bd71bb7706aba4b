"""Scheduler scale: items one `ProspectStore.due` sweep reads with 10,000 and 100,000 prospects, the same
number due in both.

Every prospect that is not due still has a touch scheduled (later this week), so it sits in the sparse due
index too: the sweep's range condition, not sparseness alone, must keep it from being read. The pool is
written with BatchWriteItem through the bound model directly (through `ProspectStore.save` 100,000
conditional puts would take minutes on moto); the sweep itself is the store's own code, metered by
`CapacityMeter` (ScannedCount summed over the shards' queries).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from moto import mock_aws

from bench.storage import REGION, fake_credentials
from bench.stream import START
from chalicelib.adapters.dynamo import CapacityMeter, ProspectStore, Tables, create_tables
from chalicelib.adapters.dynamo_tables import due_shard, models_for

DUE = 500
SIZES = (10_000, 100_000)


def _populate(tables: Tables, prospects: int, due: int) -> None:
    model = models_for(tables).prospects
    now = int(START.timestamp())
    with model.batch_write() as batch:
        for n in range(prospects):
            lead_id = f"L{n:07d}"
            # The first `due` are due (spread over the last hour); the rest are scheduled days ahead.
            touch = now - (n % 3600) if n < due else now + 86_400 + n % 500_000
            batch.save(
                model(
                    lead_id,
                    doc="{}",
                    version=1,
                    state="nurturing",
                    score=float(n % 90),
                    updated_at=START.isoformat(),
                    next_touch_at=touch,
                    due_shard=due_shard(lead_id),
                )
            )


def sweep(prospects: int, due: int = DUE) -> dict[str, Any]:
    fake_credentials()
    with mock_aws():
        tables = Tables(prefix=f"scale-{uuid.uuid4().hex[:6]}-", region=REGION)
        create_tables(tables)
        started = time.perf_counter()
        _populate(tables, prospects, due)
        populate_seconds = time.perf_counter() - started
        store = ProspectStore(tables)
        meter = CapacityMeter()
        meter.watch(tables)
        try:
            found = store.due(START + timedelta(seconds=1), limit=2 * due)
            reading = meter.reading()
        finally:
            meter.close()
    return {
        "prospects": prospects,
        "due": due,
        "found_due": len(found),
        "items_read": reading.items_examined,
        "queries": sum(reading.calls.values()),
        "populate_seconds": round(populate_seconds, 1),
    }


def measure(sizes: tuple[int, ...] = SIZES, due: int = DUE) -> dict[str, Any]:
    runs = [sweep(size, due) for size in sizes]
    return {
        "runs": runs,
        "method": "pool written with BatchWriteItem on moto; sweep = ProspectStore.due over every shard",
        "reads_grow_with_due_only": len({run["items_read"] for run in runs}) == 1
        and all(run["found_due"] == due for run in runs),
    }
