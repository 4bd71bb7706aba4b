"""The scheduler scale bench (bench/scale.py) on moto: the pool it writes straight through the bound model is
one the store can read (score band and exact score, a packed profile), and the fanned-out tick runs and
shows in the bench table."""

from __future__ import annotations

import uuid

from moto import mock_aws

from bench import report, scale
from bench.storage import REGION, fake_credentials
from chalicelib.adapters.dynamo import ProspectStore, Tables, create_tables


def test_the_scale_pool_lists_best_first_with_exact_scores_and_loads() -> None:
    fake_credentials()
    with mock_aws():
        tables = Tables(prefix=f"bs-{uuid.uuid4().hex[:6]}-", region=REGION)
        create_tables(tables)
        scale._populate(tables, prospects=30, due=10)
        store = ProspectStore(tables)
        rows, cursor = store.list(state="nurturing", owner=None, min_score=None, limit=50, cursor=None)
        loaded = store.get("L0000007")
    expected = sorted(((f"L{n:07d}", float(n % 90)) for n in range(30)), key=lambda p: (-p[1], p[0]))
    assert [(r.lead_id, r.score) for r in rows] == expected
    assert cursor is None
    assert loaded is not None and loaded.doc == {}


def test_a_fanned_out_tick_enqueues_every_due_lead_once() -> None:
    tick = scale.fanout_tick(40, rate=14.0)
    assert (tick["due"], tick["enqueued"], tick["items_read"]) == (40, 40, 40)
    assert tick["enqueue_calls"] == 1  # several leads a message, ten messages a SendMessageBatch


def test_the_bench_table_shows_the_fanned_out_tick() -> None:
    fanout = {
        "ticks": [{"due": 500, "enqueued": 500, "items_read": 500, "enqueue_calls": 50, "messages": 500}],
        "projection": [
            {
                "ses_rate": 14.0,
                "concurrency": 25,
                "sends_per_second": 12.6,
                "minutes_to_last_first_email": 133.3,
                "binds": "ses_rate",
                "before_minutes": 200.0,
            }
        ],
        "assumed_touch_seconds": 0.25,
    }
    runs = [{"prospects": 10_000, "due": 500, "items_read": 500, "queries": 4, "found_due": 500}]
    results = {"scale": {"runs": runs, "reads_grow_with_due_only": True, "fanout": fanout}}
    table = report.render(results)
    assert "500 due: 500 enqueued, 500 items read, 50 enqueue calls" in table
    assert "SES 14/s, 25 workers: 12.6/s, 133.3 min; binds: ses_rate" in table
