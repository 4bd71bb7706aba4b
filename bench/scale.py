"""Scheduler scale: items one `ProspectStore.due` sweep reads with 10,000 and 100,000 prospects, the same
number due in both.

Every prospect that is not due still has a touch scheduled (later this week), so it sits in the sparse due
index too: the sweep's range condition, not sparseness alone, must keep it from being read. The pool is
written with BatchWriteItem through the bound model directly (through `ProspectStore.save` 100,000
conditional puts would take minutes on moto), with the columns the store writes (the pool key a new item
gets, `dynamo_pool.band_for`, and a packed profile), so the store can list and load what it wrote; the
sweep itself is the store's own code, metered by `CapacityMeter` (ScannedCount summed over the shards'
queries). `measure_fanout` times one tick of the fanned-out sweep (`TouchFanout`, paced as deployed).
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
from chalicelib.adapters.dynamo_pool import band_for
from chalicelib.adapters.dynamo_prospects import pack_doc
from chalicelib.adapters.dynamo_tables import due_shard, models_for

DUE = 500
SIZES = (10_000, 100_000)


def _populate(tables: Tables, prospects: int, due: int) -> None:
    model = models_for(tables).prospects
    now = int(START.timestamp())
    doc = pack_doc({})
    with model.batch_write() as batch:
        for n in range(prospects):
            lead_id = f"L{n:07d}"
            # The first `due` are due (spread over the last hour); the rest are scheduled days ahead.
            touch = now - (n % 3600) if n < due else now + 86_400 + n % 500_000
            score = float(n % 90)
            batch.save(
                model(
                    lead_id,
                    doc=doc,
                    version=1,
                    state="nurturing",
                    score_band=band_for(score, None),  # as ProspectStore.save writes a new item
                    score=score,
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


# --- the fanned-out sweep (issue 15): reads and enqueue calls per tick; time to an import's first emails

IMPORT = 100_000
TICKS = (DUE, IMPORT)  # leads due in the measured ticks: a usual tick, and a whole import due at once
QUICK_TICKS = (DUE, 5_000)
SES_RATES = (14.0, 100.0)  # SES's usual starting production rate, and a raised one (emails/s)
TOUCH_SECONDS = 0.25  # assumed wall time of one touch in a send worker (two profile writes, render, SES call)


class _CountingSqs:
    def __init__(self) -> None:
        self.calls = 0
        self.messages = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        self.messages += len(Entries)
        return {"Successful": Entries}


def fanout_tick(due: int, rate: float) -> dict[str, Any]:
    """One sweep tick with `due` prospects due (all of them), on moto: items the due index read, leads and
    SendMessageBatch calls enqueued."""
    from chalicelib.adapters.queue import TouchQueue
    from chalicelib.usecases.nurture_fanout import TouchFanout
    from chalicelib.wiring import SEND_SHARE

    fake_credentials()
    with mock_aws():
        tables = Tables(prefix=f"fan-{uuid.uuid4().hex[:6]}-", region=REGION)
        create_tables(tables)
        _populate(tables, due, due)
        sqs = _CountingSqs()
        meter = CapacityMeter()
        meter.watch(tables)
        try:
            counts = TouchFanout(
                due=ProspectStore(tables),
                queue=TouchQueue(sqs, "https://sqs.local/touches"),
                send_rate=lambda: rate * SEND_SHARE,  # as wiring.send_rate paces the deployed sweep
                clock=lambda: START + timedelta(seconds=1),
            ).sweep()
            reading = meter.reading()
        finally:
            meter.close()
    return {
        "due": due,
        "enqueued": counts["enqueued"],
        "items_read": reading.items_examined,
        "enqueue_calls": sqs.calls,
        "messages": sqs.messages,
    }


def import_projection(rate: float, concurrency: int) -> dict[str, Any]:
    """Minutes until every lead of a 100,000-lead import has had its first email, and which limit binds:
    the sweep's enqueueing (rate x 60 per tick), the workers (concurrency / touch time), or SES's rate."""
    from chalicelib.usecases.nurture_fanout import sweep_limit
    from chalicelib.wiring import SEND_SHARE

    share = rate * SEND_SHARE
    limits = {
        "ses_rate": share,
        "sweep": sweep_limit(share) / 60,
        "workers": concurrency / TOUCH_SECONDS,
    }
    binding = min(limits, key=lambda name: limits[name])
    per_second = limits[binding]
    return {
        "ses_rate": rate,
        "concurrency": concurrency,
        "sends_per_second": round(per_second, 1),
        "minutes_to_last_first_email": round((60 + IMPORT / per_second) / 60, 1),  # + up to one tick
        "binds": binding,
        "before_minutes": round(IMPORT / 500, 1),  # one sender, 500 a tick
    }


def measure_fanout(dues: tuple[int, ...] = TICKS) -> dict[str, Any]:
    from chalicelib.config import SEND_CONCURRENCY

    return {
        "ticks": [fanout_tick(due, SES_RATES[0]) for due in dues],
        "projection": [import_projection(rate, SEND_CONCURRENCY) for rate in SES_RATES],
        "assumed_touch_seconds": TOUCH_SECONDS,
    }


def render_fanout(result: dict[str, Any]) -> str:
    lines = ["Fanned-out sweep, one tick at SES 14/s (reads and SendMessageBatch calls)"]
    for t in result["ticks"]:
        lines.append(
            f"  {t['due']:>7,} due: {t['enqueued']:,} enqueued, {t['items_read']:,} items read, "
            f"{t['enqueue_calls']} enqueue calls"
        )
    lines.append(f"100,000-lead import, time until every lead has its first email (was {IMPORT // 500} min)")
    for p in result["projection"]:
        lines.append(
            f"  SES {p['ses_rate']:g}/s, {p['concurrency']} workers: {p['sends_per_second']}/s, "
            f"{p['minutes_to_last_first_email']} min; binds: {p['binds']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    quick = "--quick" in sys.argv
    for run in measure(SIZES[:1] if quick else SIZES)["runs"]:
        print(
            f"Sweep, {run['prospects']:,} prospects, {run['due']} due: {run['items_read']:,} items read, "
            f"{run['queries']} queries, found {run['found_due']}"
        )
    print(render_fanout(measure_fanout(QUICK_TICKS if quick else TICKS)))
