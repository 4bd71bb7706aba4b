"""`ProspectRepository` on DynamoDB: prospects in, prospects out, with the mapping to the stored item here.

The table store (`ProspectStore`) keeps documents and listing columns; this adapter turns a `Prospect` into
them (document, pool columns, due time, outbox) and back, so no use case sees a storage document.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from chalicelib.adapters.dynamo_prospects import ProspectRow, ProspectStore, StoredProspect
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect, routed_at
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.effects.outbox import OutboxEffect, encode
from chalicelib.errors import UnreadableRecord
from chalicelib.usecases.ports import InboxLead, InboxQuery, InboxSlice, Versioned


def pool_row(p: Prospect, score: float, now: datetime) -> ProspectRow:
    """The columns the shared pool lists and filters by."""
    return ProspectRow(
        lead_id=p.lead_id,
        state=p.state.value,
        owner=p.owner,
        score=score,
        email=p.email,
        name=p.name,
        company=p.company,
        updated_at=now.isoformat(),
        # Only while the lead waits on sales: the pool can then be filtered by SLA status.
        sla_status=p.sla.status if p.sla is not None and p.state is State.SALES_READY else None,
        routed_at=routed_at(p),
    )


class DynamoProspects:
    def __init__(self, store: ProspectStore) -> None:
        self._store = store

    def get(self, lead_id: str, *, consistent: bool = True) -> Versioned[Prospect] | None:
        stored = self._store.get(lead_id, consistent=consistent)
        if stored is None:
            return None
        return Versioned(self._prospect(stored), stored.version)

    @staticmethod
    def _prospect(stored: StoredProspect) -> Prospect:
        try:
            return prospect_from_doc(stored.doc)
        except (KeyError, ValueError, TypeError) as error:
            detail = f"the stored profile of {stored.lead_id} cannot be read: {error!r}"
            raise UnreadableRecord(detail) from error

    def exists(self, lead_ids: Sequence[str]) -> set[str]:
        return set(self._store.get_many(lead_ids)) if lead_ids else set()

    def save(
        self,
        prospect: Prospect,
        *,
        score: float,
        now: datetime,
        expected: int | None,
        effects: Sequence[OutboxEffect] = (),
    ) -> int:
        return self._store.save(
            prospect.lead_id,
            prospect_to_doc(prospect),
            pool_row(prospect, score, now),
            next_touch_at=prospect.next_touch_at,
            expected_version=expected,
            outbox=encode(effects),
        )

    def delete(self, lead_id: str, *, expected: int) -> None:
        self._store.delete(lead_id, expected_version=expected)

    def due(self, now: datetime, limit: int) -> list[str]:
        return self._store.due(now, limit)

    def inbox(self, query: InboxQuery, *, limit: int, cursor: str | None) -> InboxSlice:
        items, next_cursor = self._store.inbox(
            query.state,
            owner=query.owner,
            sla_status=query.sla_status,
            text=query.text,
            min_score=query.min_score,
            limit=limit,
            cursor=cursor,
        )
        leads = []
        for item in items:
            prospect = self._prospect(item.stored)
            routed = routed_at(prospect)
            if routed is not None:
                leads.append(InboxLead(prospect, item.score, routed))
        return InboxSlice(leads, next_cursor)
