"""A prospect's next touch time stays put while it is still allowed: a due prospect keeps the time it
became due across page views (so a page view rewrites no due-index row) and the sweep still finds it; the
time is never earlier than the cadence allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.memory import InMemoryProspects
from chalicelib.domain.apply import apply_event
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.messaging import claim_touch, mark_sent, plan_next_touch
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = load_default_rules()


def page(p: Prospect, n: int, at: datetime) -> None:
    """What a page-view save does to the plan: apply the event, reassess (which plans the next touch)."""
    view = Event(
        message_id=f"seg:page-{n}",
        kind=EventKind.PAGE,
        at=at,
        source="web",
        anonymous_id="a",
        properties={"path": f"/blog/post-{n}", "title": "Post"},
    )
    apply_event(p, view, RULES)
    reassess(p, RULES, at)


def nurtured() -> Prospect:
    p = Prospect(lead_id="L1", created_at=NOW)
    identify = Event(
        message_id="m1", kind=EventKind.IDENTIFY, at=NOW, source="test", anonymous_id="a", email="a@b.example"
    )
    apply_event(p, identify, RULES)
    reassess(p, RULES, NOW)
    assert p.state is State.NURTURING
    return p


def test_a_prospect_not_yet_emailed_keeps_its_first_touch_time_across_page_views() -> None:
    p = nurtured()
    first = p.next_touch_at
    assert first == NOW + timedelta(minutes=RULES.cadence.first_touch_minutes)

    for n in range(1, 6):  # browsing on, before and after the first touch falls due
        page(p, n, NOW + timedelta(minutes=4 * n))
        assert p.next_touch_at == first


@pytest.mark.parametrize("views_after_due", [1, 5])
def test_a_due_prospect_keeps_its_time_and_is_never_planned_before_the_cadence(views_after_due: int) -> None:
    p = nurtured()
    sent = claim_touch(
        p, "L1-1", TemplateMeta(name="roi", subject="s", topics=(), stages=(), personas=()), "why", NOW
    )
    mark_sent(sent, 1, NOW)
    allowed = NOW + timedelta(days=RULES.cadence.min_days_between)

    at = NOW + timedelta(days=1)
    page(p, 0, at)
    assert p.next_touch_at == allowed  # not due yet: the cadence's time, not earlier

    at = allowed + timedelta(hours=2)
    page(p, 1, at)
    became_due = p.next_touch_at
    assert became_due is not None and allowed <= became_due <= at
    for n in range(views_after_due):
        at += timedelta(minutes=7)
        page(p, 2 + n, at)
        assert p.next_touch_at == became_due


def test_a_stored_time_earlier_than_the_cadence_allows_is_not_kept() -> None:
    p = nurtured()
    sent = claim_touch(
        p, "L1-1", TemplateMeta(name="roi", subject="s", topics=(), stages=(), personas=()), "why", NOW
    )
    mark_sent(sent, 1, NOW)
    p.next_touch_at = NOW + timedelta(hours=1)  # a stale plan from before the send
    later = NOW + timedelta(days=RULES.cadence.min_days_between, hours=1)

    assert plan_next_touch(p, RULES, later) == later


def test_the_sweep_still_finds_a_due_prospect_that_keeps_browsing() -> None:
    prospects = InMemoryProspects()
    p = nurtured()
    version = prospects.save(p, score=0.0, now=NOW, expected=None)
    due_at = p.next_touch_at
    assert due_at is not None

    at = due_at + timedelta(minutes=1)
    for n in range(3):
        at += timedelta(minutes=3)
        page(p, n, at)
        version = prospects.save(p, score=0.0, now=at, expected=version)
        stored = prospects.get("L1")
        assert stored is not None and stored.item.next_touch_at == due_at
        assert prospects.due(at, limit=10) == ["L1"]
    assert prospects.due(due_at - timedelta(seconds=1), limit=10) == []  # and never before its time
