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

from chalicelib.domain.accounts import AccountRecord, Member
from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.competitors import LearnedCompetitor
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.suppression import SuppressedAddress
from chalicelib.effects.outbox import OutboxEffect
from chalicelib.lab.shadow import Shadow

T = TypeVar("T")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    item: T
    version: int


@dataclass(frozen=True)
class InboxQuery:
    """Which of sales' inbox to list: one inbox state (sales_ready or accepted) and optional filters."""

    state: str
    owner: str | None = None
    sla_status: str | None = None  # waiting | escalated
    min_score: float | None = None
    text: str | None = None  # a substring of the email, name or company


@dataclass(frozen=True)
class InboxLead:
    prospect: Prospect
    score: float  # as stored with the profile's last write
    routed_at: datetime


@dataclass(frozen=True)
class InboxSlice:
    leads: list[InboxLead]
    cursor: str | None  # opaque; None: nothing more


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

    def inbox(self, query: InboxQuery, *, limit: int, cursor: str | None) -> InboxSlice:
        """Up to `limit` leads of one inbox state, newest routing first (ties by lead id), each once across
        the pages a cursor walks; a lead leaves it as soon as a write moves it out of the state. Costs reads
        that grow with the page, not with the number of leads."""
        ...


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

    def counted(self, key: str) -> bool: ...

    def read(self, period: str) -> dict[str, float]: ...


class StreamCounters(Protocol):
    def add_stream_batch(
        self,
        stream_shard: str,
        counted: Sequence[tuple[str, Mapping[tuple[str, str], float]]],
        *,
        expires_at: datetime,
    ) -> int:
        """Each (sequence number, increments) of one stream shard counted exactly once, in any order (a record
        given twice is one); returns how many were counted now."""
        ...


class EffectMarks(Protocol):
    def done(self, key: str) -> bool: ...

    def mark(self, key: str, *, expires_at: datetime) -> None: ...


class SuppressionList(Protocol):
    """Keyed hashes of erased people's addresses (chalicelib.domain.suppression); never the addresses."""

    def add(self, entry: SuppressedAddress) -> None:
        """Idempotent: adding a digest already held keeps the first entry."""
        ...

    def find(self, digest: str) -> SuppressedAddress | None: ...


class PersonRecords(Protocol):
    """What erase and export need beside the profile: every record that names a person's lead ids."""

    def identities_of(self, lead_id: str) -> dict[str, str]:
        """identity -> lead id for every identity pointing at `lead_id` or at a lead merged into it (the
        `lead:<old id>` forwards are followed backwards, so merges of merges are found)."""
        ...

    def forget_identities(self, owners: Mapping[str, str]) -> int:
        """Delete each identity still pointing at the lead given for it; returns how many were deleted."""
        ...

    def activity_of(self, lead_ids: Sequence[str], limit: int) -> list[ActivityEntry]: ...

    def forget_activity(self, lead_ids: Sequence[str], *, keep_kinds: Sequence[str] = ()) -> int:
        """Delete the leads' activity entries, except those of `keep_kinds` (audit entries that hold no
        personal data); returns how many were deleted."""
        ...

    def forget_marks(self, lead_ids: Sequence[str], *, now: datetime) -> tuple[int, int]:
        """Delete the effect marks and counter markers naming the leads; returns (deleted, kept): marks of
        writes a stream record may still deliver are kept until they expire (see README)."""
        ...


class AccountDirectory(Protocol):
    """Accounts (group calls' groupIds) and their member lists (chalicelib.domain.accounts)."""

    def record(self, account: AccountRecord, member: Member, *, lead_version: int) -> None:
        """Idempotent, and never older over newer: the account's traits are written unless the stored ones
        came from a later group call; the member row unless a later write of the lead wrote it."""
        ...

    def get(self, account_id: str) -> AccountRecord | None: ...

    def members(self, account_id: str, limit: int) -> tuple[list[Member], bool]:
        """Up to `limit` members, and whether there are more."""
        ...

    def remove_member(self, lead_id: str, account_ids: Sequence[str]) -> None:
        """Forget one lead's rows in these accounts' member lists (erasing the person); idempotent."""
        ...


class CompetitorList(Protocol):
    """Competitor domains learned from sales' disqualifications (chalicelib.domain.competitors), at most
    MAX_LEARNED_COMPETITORS."""

    def learn(self, entry: LearnedCompetitor) -> str:
        """Add the domain: "learned", "known" (already there: nothing changes) or "full"."""
        ...

    def entries(self) -> list[LearnedCompetitor]:
        """Every learned domain, oldest first."""
        ...

    def forget(self, domain: str, *, actor: str, at: datetime) -> bool:
        """Remove a domain; False when it was not there."""
        ...


class ShadowHook(Protocol):
    """Scores a prospect's applied events with a rules draft too, recording comparison facts only."""

    def current(self, now: datetime) -> Shadow | None: ...

    def observe(
        self,
        shadow: Shadow,
        before: Prospect,
        events: Sequence[Event],
        live: Prospect,
        score: float,
        now: datetime,
    ) -> None: ...


class SeenChunks(Protocol):
    """Chunks of profiles' idempotency windows, each written once (chalicelib.domain.seen)."""

    def put(self, chunk_id: str, fingerprints: Sequence[str], *, expires_at: datetime) -> None:
        """Write a new chunk, kept at least until `expires_at`. Raises ConcurrentUpdate when `chunk_id` is
        held already (ids are random, so the caller reloads and draws another)."""
        ...

    def get_many(self, chunk_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """The fingerprints of each chunk found (read consistently); a chunk not found is absent."""
        ...
