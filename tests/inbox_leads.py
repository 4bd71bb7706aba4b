"""Leads in sales' inbox for the inbox tests: routed at a given minute, optionally accepted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import Prospect, Transition
from chalicelib.usecases.ports import InboxQuery


class InboxReader(Protocol):
    def inbox(self, query: InboxQuery, *, limit: int, cursor: str | None) -> Any: ...


T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def routed(lead_id: str, minute: int, *, state: State = State.SALES_READY, owner: str = "sam") -> Prospect:
    at = T0 + timedelta(minutes=minute)
    history = [Transition(at, State.NURTURING, State.SALES_READY, Trigger.QUALIFIED, "system", "fit 60")]
    if state is State.ACCEPTED:
        history.append(
            Transition(at + timedelta(hours=1), State.SALES_READY, State.ACCEPTED, Trigger.ACCEPT, owner)
        )
    return Prospect(
        lead_id=lead_id,
        created_at=T0 - timedelta(days=3),
        email=f"{lead_id}@example.com",
        state=state,
        owner=owner,
        history=history,
    )


def recycled(p: Prospect) -> Prospect:
    at = p.history[-1].at + timedelta(hours=2)
    p.history.append(Transition(at, p.state, State.NURTURING, Trigger.RECYCLE, "sam", "not_ready"))
    p.state = State.NURTURING
    return p


def walk(prospects: InboxReader, query: InboxQuery, page: int) -> list[str]:
    """Every lead id the inbox lists for `query`, page by page, following the cursor to the end."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        found = prospects.inbox(query, limit=page, cursor=cursor)
        seen += [lead.prospect.lead_id for lead in found.leads]
        if found.cursor is None:
            return seen
        cursor = found.cursor
