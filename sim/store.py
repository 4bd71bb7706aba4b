"""A prospect store for the simulation: `chalicelib.adapters.memory.InMemoryProspects`'s promises that matter
to a single-threaded run (a save is conditional on the version; the due index) without its cost, because a
simulation saves hundreds of thousands of profiles.

The unit-test store round-trips every profile through its stored JSON document on every read and write, to
catch what could not be stored; that is a third of a simulation's time. This one holds the profile object
itself: a read returns the object last saved. That is safe here because the sim runs one unit of work at a
time and every product path that changes a profile it read then saves it. The product still keeps every
profile within its bounds before a write (`LeadService.save_profile` calls `keep_within_budget`).
tests/unit/test_sim.py checks that a small run gives the same measures on this store and on the unit-test
store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from chalicelib.domain.prospect import Prospect
from chalicelib.effects.outbox import OutboxEffect
from chalicelib.errors import ConcurrentUpdate
from chalicelib.usecases.ports import Versioned


class LiveProspects:
    def __init__(self) -> None:
        self._items: dict[str, tuple[Prospect, int, int | None]] = {}  # lead id -> (profile, version, due)

    def get(self, lead_id: str, *, consistent: bool = True) -> Versioned[Prospect] | None:
        held = self._items.get(lead_id)
        if held is None:
            return None
        return Versioned(held[0], held[1])

    def exists(self, lead_ids: Sequence[str]) -> set[str]:
        return {lead_id for lead_id in lead_ids if lead_id in self._items}

    def save(
        self,
        prospect: Prospect,
        *,
        score: float,
        now: datetime,
        expected: int | None,
        effects: Sequence[OutboxEffect] = (),
    ) -> int:
        held = self._items.get(prospect.lead_id)
        if (held[1] if held else None) != expected:
            raise ConcurrentUpdate(f"prospect {prospect.lead_id} changed after version {expected}")
        version = (expected or 0) + 1
        due = math.ceil(prospect.next_touch_at.timestamp()) if prospect.next_touch_at else None
        self._items[prospect.lead_id] = (prospect, version, due)
        return version

    def delete(self, lead_id: str, *, expected: int) -> None:
        held = self._items.get(lead_id)
        if held is None or held[1] != expected:
            raise ConcurrentUpdate(f"prospect {lead_id} changed after version {expected}")
        del self._items[lead_id]

    def due(self, now: datetime, limit: int) -> list[str]:
        cutoff = math.floor(now.timestamp())
        found = sorted((due, lead) for lead, (_, _, due) in self._items.items() if due and due <= cutoff)
        return [lead_id for _, lead_id in found[:limit]]

    def ids(self) -> list[str]:
        return sorted(self._items)
