"""In-memory implementations of the storage protocols (`chalicelib.usecases.ports`), for use-case tests.

They keep the promises the DynamoDB adapters keep — a save is conditional on the version, a profile goes
through its stored document form (so what cannot be stored fails here too), an identity is claimed once,
an activity entry appended twice is stored once, counters move once per key — and record every write with
its effects in `InMemoryProspects.writes`, as the table's stream would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamo_prospects import pack_doc
from chalicelib.adapters.dynamo_tables import iso
from chalicelib.domain.accounts import AccountRecord, Member
from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect, routed_at
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.effects.dispatch import SavedWrite
from chalicelib.effects.outbox import OutboxEffect, decode, encode
from chalicelib.errors import ConcurrentUpdate, MalformedInput
from chalicelib.usecases.ports import InboxLead, InboxQuery, InboxSlice, Versioned


@dataclass(frozen=True)
class _Listed:
    """What the inbox index holds for a lead in sales' inbox (and the score the store keeps beside it)."""

    state: str
    routed_key: str  # as the DynamoDB store writes it: "<routed at>#<lead id>", sorting in time order
    score: float
    owner: str | None
    sla_status: str | None
    searchable: tuple[str, ...]  # email, name, company


class InMemoryProspects:
    def __init__(self) -> None:
        self._items: dict[str, tuple[str, int, int | None]] = {}  # lead id -> (doc JSON, version, due at)
        self._inbox: dict[str, _Listed] = {}  # sparse, as the inbox index: only leads in sales' inbox
        self.writes: list[SavedWrite] = []  # every successful save, as the stream would carry it

    def get(self, lead_id: str, *, consistent: bool = True) -> Versioned[Prospect] | None:
        held = self._items.get(lead_id)
        if held is None:
            return None
        return Versioned(prospect_from_doc(json.loads(held[0])), held[1])

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
        doc = json.dumps(prospect_to_doc(prospect), sort_keys=True)
        encoded = encode(effects)  # refuses an oversized outbox exactly as the real write would
        version = (expected or 0) + 1
        due = math.ceil(prospect.next_touch_at.timestamp()) if prospect.next_touch_at else None
        self._items[prospect.lead_id] = (doc, version, due)
        as_written = prospect_from_doc(json.loads(doc))
        self._index(as_written, score)
        self.writes.append(SavedWrite(prospect.lead_id, version, as_written, tuple(decode(encoded))))
        return version

    def delete(self, lead_id: str, *, expected: int) -> None:
        held = self._items.get(lead_id)
        if held is None or held[1] != expected:
            raise ConcurrentUpdate(f"prospect {lead_id} changed after version {expected}")
        del self._items[lead_id]
        self._inbox.pop(lead_id, None)

    def _index(self, p: Prospect, score: float) -> None:
        routed = routed_at(p)
        if routed is None:
            self._inbox.pop(p.lead_id, None)
            return
        self._inbox[p.lead_id] = _Listed(
            state=p.state.value,
            routed_key=f"{iso(routed)}#{p.lead_id}",
            score=score,
            owner=p.owner,
            sla_status=p.sla.status if p.sla is not None and p.state is State.SALES_READY else None,
            searchable=(p.email or "", p.name, p.company),
        )

    def inbox(self, query: InboxQuery, *, limit: int, cursor: str | None) -> InboxSlice:
        if limit < 1:
            raise MalformedInput(f"limit must be at least 1, got {limit}")
        text = query.text
        matching = sorted(
            (
                (listed.routed_key, lead_id)
                for lead_id, listed in self._inbox.items()
                if listed.state == query.state
                and (query.owner is None or listed.owner == query.owner)
                and (query.sla_status is None or listed.sla_status == query.sla_status)
                and (query.min_score is None or listed.score >= query.min_score)
                and (not text or any(text in v or text.lower() in v for v in listed.searchable))
                and (cursor is None or listed.routed_key < cursor)
            ),
            reverse=True,
        )
        page = matching[:limit]
        leads = []
        for _, lead_id in page:
            p = prospect_from_doc(json.loads(self._items[lead_id][0]))
            routed = routed_at(p)
            assert routed is not None  # indexed only while routed
            leads.append(InboxLead(p, self._inbox[lead_id].score, routed))
        more = len(matching) > limit
        return InboxSlice(leads, page[-1][0] if more else None)

    def due(self, now: datetime, limit: int) -> list[str]:
        cutoff = math.floor(now.timestamp())
        found = sorted((due, lead) for lead, (_, _, due) in self._items.items() if due and due <= cutoff)
        return [lead_id for _, lead_id in found[:limit]]

    def ids(self) -> list[str]:
        return sorted(self._items)


class InMemoryIdentities:
    def __init__(self) -> None:
        self.owners: dict[str, str] = {}

    def resolve(self, identities: Sequence[str]) -> dict[str, str]:
        return {key: self.owners[key] for key in identities if key in self.owners}

    def claim(self, identity: str, lead_id: str) -> str:
        return self.owners.setdefault(identity, lead_id)

    def point(self, identity: str, lead_id: str) -> None:
        self.owners[identity] = lead_id


class InMemoryActivity:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, datetime, str], ActivityEntry] = {}

    def append(self, lead_id: str, entries: Sequence[ActivityEntry]) -> None:
        for entry in entries:
            content = json.dumps([entry.kind, entry.actor, entry.data], sort_keys=True, default=str)
            self._entries[(lead_id, entry.at, content)] = entry

    def for_lead(self, lead_id: str, limit: int = 100) -> list[ActivityEntry]:
        mine = [e for (lead, _, _), e in self._entries.items() if lead == lead_id]
        return sorted(mine, key=lambda e: e.at, reverse=True)[:limit]

    def feed(self, *, since: datetime, until: datetime, actor: str | None, limit: int) -> list[ActivityEntry]:
        found = [
            e for e in self._entries.values() if since <= e.at < until and (actor is None or e.actor == actor)
        ]
        return sorted(found, key=lambda e: e.at, reverse=True)[:limit]


class InMemoryCounters:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], float] = {}
        self._applied: set[str] = set()
        self.checkpoints: dict[str, int] = {}  # stream shard -> last sequence number counted

    def add_once(
        self, key: str, increments: Mapping[tuple[str, str], float], *, expires_at: datetime
    ) -> bool:
        if key in self._applied:
            return False
        self._applied.add(key)
        for counter, amount in increments.items():
            self.values[counter] = self.values.get(counter, 0.0) + amount
        return True

    def counted(self, key: str) -> bool:
        return key in self._applied

    def add_stream_batch(
        self,
        stream_shard: str,
        counted: Sequence[tuple[str, Mapping[tuple[str, str], float]]],
        *,
        expires_at: datetime,
    ) -> int:
        done = self.checkpoints.get(stream_shard, -1)
        by_sequence = {int(sequence): increments for sequence, increments in counted}  # as DynamoDB's
        todo = [
            (sequence, increments) for sequence, increments in sorted(by_sequence.items()) if sequence > done
        ]
        for sequence, increments in todo:
            for counter, amount in increments.items():
                self.values[counter] = self.values.get(counter, 0.0) + amount
            self.checkpoints[stream_shard] = sequence
        return len(todo)

    def read(self, period: str) -> dict[str, float]:
        return {name: value for (p, name), value in self.values.items() if p == period}

    def read_many(self, periods: Iterable[str]) -> dict[str, dict[str, float]]:
        return {period: self.read(period) for period in periods}


class InMemoryMarks:
    def __init__(self) -> None:
        self.marks: dict[str, datetime] = {}

    def done(self, key: str) -> bool:
        return key in self.marks

    def mark(self, key: str, *, expires_at: datetime) -> None:
        self.marks[key] = expires_at


class InMemorySeenChunks:
    """Idempotency chunks by id; `expired(now)` drops what DynamoDB's TTL would have by then."""

    def __init__(self) -> None:
        self.chunks: dict[str, tuple[frozenset[str], datetime]] = {}

    def put(self, chunk_id: str, fingerprints: Sequence[str], *, expires_at: datetime) -> None:
        if chunk_id in self.chunks:
            raise ConcurrentUpdate(f"idempotency chunk {chunk_id} exists")
        self.chunks[chunk_id] = (frozenset(fingerprints), expires_at)

    def get_many(self, chunk_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        return {key: self.chunks[key][0] for key in chunk_ids if key in self.chunks}

    def expire(self, now: datetime) -> None:
        self.chunks = {key: held for key, held in self.chunks.items() if held[1] > now}


class InMemoryAccounts:
    """Accounts and member lists, with the DynamoDB adapter's ordering promises (never older over newer)."""

    def __init__(self) -> None:
        self.accounts: dict[str, AccountRecord] = {}
        self.rows: dict[str, dict[str, tuple[Member, int]]] = {}  # account -> lead -> (row, lead version)

    def record(self, account: AccountRecord, member: Member, *, lead_version: int) -> None:
        held = self.accounts.get(account.account_id)
        stored_at, proposed_at = held.updated_at if held else None, account.updated_at
        if held is not None and not account.traits:
            pass  # a group call that named no traits leaves the account as it was
        elif stored_at is None or (proposed_at is not None and proposed_at >= stored_at):
            self.accounts[account.account_id] = account
        rows = self.rows.setdefault(account.account_id, {})
        old = rows.get(member.lead_id)
        if old is None or old[1] < lead_version:
            joined = min(old[0].joined_at, member.joined_at) if old else member.joined_at
            rows[member.lead_id] = (replace(member, joined_at=joined), lead_version)

    def get(self, account_id: str) -> AccountRecord | None:
        return self.accounts.get(account_id)

    def members(self, account_id: str, limit: int) -> tuple[list[Member], bool]:
        rows = sorted(self.rows.get(account_id, {}).items())
        return [member for _, (member, _) in rows[:limit]], len(rows) > limit

    def remove_member(self, lead_id: str, account_ids: Sequence[str]) -> None:
        for account_id in account_ids:
            self.rows.get(account_id, {}).pop(lead_id, None)


def as_stream_record(write: SavedWrite) -> dict[str, Any]:
    """A stored write in the shape DynamoDB Streams hands to Lambda (for tests of the stream path)."""
    image: dict[str, Any] = {
        "lead_id": {"S": write.lead_id},
        "version": {"N": str(write.version)},
        "doc": {"B": pack_doc(prospect_to_doc(write.prospect))},
    }
    outbox = encode(write.effects)
    if outbox:
        image["outbox"] = {"B": outbox}
    return {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "SequenceNumber": str(write.version)}}
