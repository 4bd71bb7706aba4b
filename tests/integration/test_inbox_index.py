"""The sparse inbox index on DynamoDB (moto, and DynamoDB Local where the `tables` fixture runs it): sales'
inbox newest routing first, every lead once across pages, a lead out of the inbox out of the index, and
a score change that leaves the index row as it was."""

from __future__ import annotations

import pytest

from chalicelib.adapters.dynamo import ProspectStore, Tables
from chalicelib.adapters.dynamo_repository import DynamoProspects
from chalicelib.adapters.dynamo_tables import models_for
from chalicelib.domain.lifecycle import State
from chalicelib.errors import MalformedInput
from chalicelib.usecases.ports import InboxQuery
from tests.inbox_leads import T0, recycled, routed, walk


def test_the_inbox_pages_newest_routing_first_and_drops_leads_that_leave(moto_tables: Tables) -> None:
    prospects = DynamoProspects(ProspectStore(moto_tables))
    for n in range(40):
        prospects.save(routed(f"L{n:02d}", n // 2), score=float(100 - n), now=T0, expected=None)
    prospects.save(routed("N", 99, state=State.NURTURING), score=500.0, now=T0, expected=None)
    seen = walk(prospects, InboxQuery(state="sales_ready"), page=7)
    assert seen == [f"L{n:02d}" for n in reversed(range(40))]

    prospects.save(recycled(routed("L39", 19)), score=10.0, now=T0, expected=1)
    prospects.save(routed("L38", 19, state=State.ACCEPTED), score=10.0, now=T0, expected=1)
    assert walk(prospects, InboxQuery(state="sales_ready"), page=50)[:2] == ["L37", "L36"]
    assert walk(prospects, InboxQuery(state="accepted"), page=50) == ["L38"]
    assert walk(prospects, InboxQuery(state="sales_ready", min_score=95.0), page=2) == [
        "L05", "L04", "L03", "L02", "L01", "L00"
    ]  # fmt: skip


def test_a_score_change_keeps_the_leads_index_keys(moto_tables: Tables) -> None:
    prospects = DynamoProspects(ProspectStore(moto_tables))
    prospects.save(routed("L1", 5), score=40.0, now=T0, expected=None)
    model = models_for(moto_tables).prospects
    before = model.get("L1")
    prospects.save(routed("L1", 5), score=75.0, now=T0, expected=1)
    after = model.get("L1")
    assert (
        (after.inbox, after.routed_key)
        == (before.inbox, before.routed_key)
        == ("sales_ready", after.routed_key)
    )
    assert after.routed_key.endswith("#L1")


def test_an_edited_inbox_cursor_is_a_400(moto_tables: Tables) -> None:
    prospects = DynamoProspects(ProspectStore(moto_tables))
    with pytest.raises(MalformedInput):
        prospects.inbox(InboxQuery(state="sales_ready"), limit=5, cursor="bm90LWEtY3Vyc29y")
