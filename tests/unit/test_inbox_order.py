"""Sales' inbox (#13 "Sales"): newest routing first, paged each lead once, over the in-memory repository
that keeps the inbox index's promises (the DynamoDB one: tests/integration/test_inbox_index.py)."""

from __future__ import annotations

from chalicelib.adapters.memory import InMemoryProspects
from chalicelib.domain.lifecycle import State
from chalicelib.usecases.ports import InboxQuery
from tests.inbox_leads import T0, recycled, routed, walk


def test_ten_thousand_leads_page_newest_routing_first_each_once() -> None:
    prospects = InMemoryProspects()
    count = 10_000
    for n in range(count):
        # Scores run against routing time, and pairs share a minute: the order is routing, not score.
        prospects.save(routed(f"L{n:05d}", n // 2), score=float(count - n), now=T0, expected=None)
    prospects.save(routed("NURTURED", 0, state=State.NURTURING), score=99.0, now=T0, expected=None)
    seen = walk(prospects, InboxQuery(state="sales_ready"), page=250)
    assert len(seen) == count and len(set(seen)) == count
    assert seen[:4] == ["L09999", "L09998", "L09997", "L09996"]
    assert seen[-1] == "L00000"


def test_a_lead_that_leaves_sales_ready_leaves_the_inbox() -> None:
    prospects = InMemoryProspects()
    for n in range(3):
        prospects.save(routed(f"L{n}", n), score=50.0, now=T0, expected=None)
    prospects.save(recycled(routed("L1", 1)), score=50.0, now=T0, expected=1)
    accepted = routed("L2", 2, state=State.ACCEPTED)
    prospects.save(accepted, score=50.0, now=T0, expected=1)
    assert walk(prospects, InboxQuery(state="sales_ready"), page=10) == ["L0"]
    assert walk(prospects, InboxQuery(state="accepted"), page=10) == ["L2"]
    assert (
        prospects.inbox(InboxQuery(state="accepted"), limit=1, cursor=None).leads[0].routed_at
        == accepted.history[0].at
    )


def test_filters_keep_the_order_and_the_paging() -> None:
    prospects = InMemoryProspects()
    for n in range(30):
        prospects.save(
            routed(f"L{n:02d}", n, owner="ana" if n % 3 else "bo"), score=float(n), now=T0, expected=None
        )
    seen = walk(prospects, InboxQuery(state="sales_ready", owner="bo", min_score=10), page=2)
    assert seen == ["L27", "L24", "L21", "L18", "L15", "L12"]
