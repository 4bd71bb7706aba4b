"""What the use cases need from storage, as protocols: the DynamoDB adapters implement them for real, and
`chalicelib.adapters.memory` implements them in memory, so use-case tests need neither moto nor a database.

A repository hands out domain objects and their version, never storage documents: the mapping lives in
the adapter. A save is conditional on the version read, and carries the effects it decided (the outbox).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.prospect import Prospect
from chalicelib.effects.outbox import OutboxEffect

T = TypeVar("T")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    item: T
    version: int


class ProspectRepository(Protocol):
    def get(self, lead_id: str, *, consistent: bool = True) -> Versioned[Prospect] | None: ...

    def exists(self, lead_ids: Sequence[str]) -> set[str]:
        """Which of `lead_ids` are stored (one round trip for a batch)."""
        ...

    def save(
        self,
        prospect: Prospect,
        *,
        score: float,
        now: datetime,
        expected: int | None,
        effects: Sequence[OutboxEffect] = (),
    ) -> int:
        """Write `prospect` and the effects it decided in one conditional write; `expected=None` means it must
        not exist yet. Returns the new version; raises ConcurrentUpdate when the version moved."""
        ...

    def delete(self, lead_id: str, *, expected: int) -> None: ...

    def due(self, now: datetime, limit: int) -> list[str]: ...


class IdentityIndex(Protocol):
    def resolve(self, identities: Sequence[str]) -> dict[str, str]: ...

    def claim(self, identity: str, lead_id: str) -> str: ...

    def point(self, identity: str, lead_id: str) -> None: ...


class ActivityRecords(Protocol):
    def append(self, lead_id: str, entries: Sequence[ActivityEntry]) -> None:
        """Idempotent: an entry appended twice (same lead, time and content) is stored once."""
        ...

    def for_lead(self, lead_id: str, limit: int = 100) -> list[ActivityEntry]: ...

    def feed(
        self, *, since: datetime, until: datetime, actor: str | None, limit: int
    ) -> list[ActivityEntry]: ...


class ScoreboardCounters(Protocol):
    def add_once(
        self, key: str, increments: Mapping[tuple[str, str], float], *, expires_at: datetime
    ) -> bool: ...

    def read(self, period: str) -> dict[str, float]: ...


class EffectMarks(Protocol):
    def done(self, key: str) -> bool: ...

    def mark(self, key: str, *, expires_at: datetime) -> None: ...
