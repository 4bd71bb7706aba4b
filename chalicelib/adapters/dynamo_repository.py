"""`ProspectRepository` on DynamoDB: prospects in, prospects out, with the mapping to the stored item here.

The table store (`ProspectStore`) keeps documents and listing columns; this adapter turns a `Prospect` into
them (document, pool columns, due time, outbox) and back, so no use case sees a storage document.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from chalicelib.adapters.dynamo_prospects import ProspectRow, ProspectStore
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect, prospect_from_doc, prospect_to_doc
from chalicelib.effects.outbox import OutboxEffect, encode
from chalicelib.errors import UnreadableRecord
from chalicelib.usecases.ports import Versioned


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
    )


class DynamoProspects:
    def __init__(self, store: ProspectStore) -> None:
        self._store = store

    def get(self, lead_id: str, *, consistent: bool = True) -> Versioned[Prospect] | None:
        stored = self._store.get(lead_id, consistent=consistent)
        if stored is None:
            return None
        try:
            return Versioned(prospect_from_doc(stored.doc), stored.version)
        except (KeyError, ValueError, TypeError) as error:
            raise UnreadableRecord(f"the stored profile of {lead_id} cannot be read: {error!r}") from error

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
