"""Issue #14's "done when", in process: after a scripted month of traffic and sales outcomes
(scripts/lab_month.py, the story `make lab-demo` tells on the local stack), a marketer posts a draft that
raises the engagement threshold and reads how many fewer leads sales would have received and how many
later-won leads it would have missed; the backtest of the published rules reproduces the month, lead for
lead; shadow mode shows the same comparison on live events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from chalicelib import wiring
from tests.conftest import script_module
from tests.e2e.conftest import MARKETING, SALES, WRITE, Loop

BUCKET = "leadloop-test-lab-month"


def _lab_month() -> ModuleType:
    return script_module("lab_month")


class InProcessLab:
    """scripts/lab_month.py's `Lab` on the in-process loop: the same routes, the worker drained by hand."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def track(self, batch: list[dict[str, Any]]) -> None:
        answer = self.loop.track("/v1/batch", {"batch": batch})
        assert answer.status_code == 200, answer.body

    def call(self, role: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"sales": SALES, "marketing": MARKETING}[role]
        send = getattr(self.loop.client.http, method.lower())
        answer = (
            send(path, headers=headers)
            if body is None
            else send(path, headers=headers, body=json.dumps(body))
        )
        return answer.status_code, answer.json_body

    def caught_up(self) -> None:
        while self.loop.drain() or self.loop.drain_stream():
            pass


@pytest.fixture
def lab(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InProcessLab, Any]]:
    module = _lab_month()
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("LEADLOOP_ARCHIVE_BUCKET", BUCKET)
    clock = module.SimulatedClock()
    monkeypatch.setattr(wiring, "utc_now", clock)
    wiring.reset()
    month = module.InProcessMonth(
        loop.client,
        loop.sqs,
        loop.queue_url,
        clock,
        write_auth=WRITE["Authorization"],
    )
    yield InProcessLab(loop), month


def test_a_month_then_a_stricter_draft_shows_fewer_leads_for_sales_and_the_won_leads_it_would_miss(
    lab: tuple[InProcessLab, Any],
) -> None:
    said: list[str] = []
    story = _lab_month().play(
        *lab,
        seed=3,
        people=30,
        run="t",
        engagement=80,
        say=said.append,
        poll=lambda: time.sleep(0.05),
        shadow_wait=lambda: None,
    )
    report, sales = story["backtest"], story["sales"]
    published, draft = report["published"], report["draft"]

    # The replay of the published rules is the month that happened: every lead sales got, no other.
    assert story["live_routed"] > 0
    assert published["routed"] == story["live_routed"]
    assert report["lost"]["count"] - report["gained"]["count"] == published["routed"] - draft["routed"] > 0
    # Sales' answers are the outcomes it is judged on: the leads it won, all routed by the published rules.
    assert published["won"]["later_won"] == sales.get("won", 0) == published["won"]["routed"]
    assert draft["won"]["routed"] <= published["won"]["routed"]
    judged = published["outcomes"]["good"] + published["outcomes"]["bad"]
    assert judged == published["routed"] - published["outcomes"]["unjudged"] > 0
    assert any(line.strip().startswith("the draft sends sales") for line in said)

    # Shadow mode: the same draft on a week of live visits, the published rules live beside it.
    shadow = story["shadow"]
    assert shadow["report"]["published"]["routed"] >= shadow["report"]["draft"]["routed"]
    routed_by = shadow["report"]["routed_by"]
    assert routed_by["live_only"] == shadow["report"]["lost"]["count"] > 0
    status, after = lab[0].call("marketing", "GET", "/rules/shadow")
    assert status == 404, after  # discarded at the end: the published rules are unchanged
