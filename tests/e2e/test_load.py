"""A load run on the local stack, bounded in count and time, loopback only: N events sent, N applied, none
twice.

Boots scripts/local_stack.py as `make run` does (bench/latency.py's `running_stack`, free ports, state in a
temporary folder), posts N page views for a few dozen identified prospects to /v1/batch over HTTP, every
prospect's pages split over two requests (so two queue messages, applied by separate worker invocations),
sends one request a second time as a client retry would, waits until the events queue is drained, and
checks every prospect's summary through the sales API: exactly the pages sent to it, each once.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.latency import (
    Stack,
    dynamodb_jar,
    page_view,
    post_batch,
    queue_backlog,
    request,
    running_stack,
    sales_headers,
)

PROSPECTS = 30
PAGES_EACH = 10
N = PROSPECTS * PAGES_EACH  # 300 page events
DRAIN_TIMEOUT_S = 90.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    jar = dynamodb_jar()
    if jar is None:
        if os.environ.get("LEADLOOP_SKIP_DYNAMODB_LOCAL") == "1":
            pytest.skip("DynamoDB Local not installed and LEADLOOP_SKIP_DYNAMODB_LOCAL=1")
        pytest.fail("DynamoDB Local is not installed: run `make test` (or scripts/install_dynamodb_local.sh)")
    with running_stack(tmp_path, jar) as running:
        yield running


def _batches(run: str) -> tuple[list[list[dict[str, Any]]], dict[str, set[str]]]:
    """Requests of 10 events: half of one prospect's pages and half of the next one's, so every prospect's
    pages arrive in two requests."""
    half = PAGES_EACH // 2
    sent: dict[str, set[str]] = {f"load-{run}-{p}": set() for p in range(PROSPECTS)}
    users = list(sent)
    batches = []
    for n in range(PROSPECTS):
        first, second = users[n], users[(n + 1) % PROSPECTS]
        batch = [page_view(first, f"/load/{first}/{i}") for i in range(half, PAGES_EACH)]
        batch += [page_view(second, f"/load/{second}/{i}") for i in range(half)]
        for event in batch:
            sent[event["userId"]].add(event["properties"]["path"])
        batches.append(batch)
    return batches, sent


def _wait_until_drained(stack: Stack) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if queue_backlog(stack.moto_url) == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"events queue not drained within {DRAIN_TIMEOUT_S:.0f} s:\n{stack.log_tail()}")


@pytest.mark.dynamodb_local
def test_n_page_events_sent_over_http_are_n_applied_none_twice(stack: Stack) -> None:
    batches, sent = _batches(uuid.uuid4().hex[:6])
    assert sum(len(batch) for batch in batches) == N
    for batch in batches:
        assert post_batch(stack.url, batch) == 200
    assert post_batch(stack.url, batches[0]) == 200  # a client retry: the same messageIds again

    _wait_until_drained(stack)

    applied: dict[str, list[str]] = {}
    lead_ids = set()
    for user_id in sent:
        status, summary = request(f"{stack.url}/leads/{user_id}", headers=sales_headers())
        assert status == 200, summary
        applied[user_id] = [page["path"] for page in summary["pages"]]
        lead_ids.add(summary["id"])
    assert sum(len(paths) for paths in applied.values()) == N
    assert {user: sorted(paths) for user, paths in applied.items()} == {
        user: sorted(paths) for user, paths in sent.items()
    }

    status, pool = request(f"{stack.url}/leads?limit=500", headers=sales_headers())
    assert status == 200, pool
    assert lead_ids <= {lead["id"] for lead in pool["leads"]}
    assert len(lead_ids) == PROSPECTS  # one lead per prospect: no split profiles
