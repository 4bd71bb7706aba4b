"""Prospect profiles and the identities that point at them, on DynamoDB.

`ProspectStore` keeps each profile as an opaque, compressed JSON document (`doc_codec`) beside the columns the
pool list and the scheduler need, with optimistic locking on a version number: a writer that read
version n can only write n+1. The pool is sorted by a score band, not the exact score (dynamo_pool), so
a save that moves the score a little writes no index row. `IdentityStore` maps every identity a source
knows (email, anonymous id, user id, CRM id) to one lead id; a claim is a conditional put so two first
sightings of one person cannot make two leads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition

# The stored document's form; re-exported, as callers import it from here.
from chalicelib.adapters.doc_codec import pack_doc as pack_doc
from chalicelib.adapters.doc_codec import unpack_doc as unpack_doc
from chalicelib.adapters.dynamo_cursors import decode_inbox_cursor, decode_pool_cursor, encode_cursor
from chalicelib.adapters.dynamo_pool import PoolReader, band_for, exact_score
from chalicelib.adapters.dynamo_tables import (
    ProspectModel,
    Tables,
    due_shard,
    due_shards,
    is_condition_failure,
    iso,
    models_for,
    storage_errors,
)
from chalicelib.errors import ConcurrentUpdate, MalformedInput, RecordRefused


@dataclass(frozen=True)
class ProspectRow:
    """The columns of a prospect that lists filter and show; `updated_at` (ISO-8601) is '' in pool lists."""

    lead_id: str
    state: str
    owner: str | None
    score: float
    email: str | None
    name: str
    company: str
    updated_at: str
    sla_status: str | None = None
    # When the lead was last routed, only while it is in sales' inbox: the write then puts it in the sparse
    # inbox index (dynamo_tables.InboxIndex); None takes it out.
    routed_at: datetime | None = None


# Named because ProspectStore.list shadows the builtin inside the class.
LeadIds = list[str]
InboxItems = list["InboxItem"]


@dataclass(frozen=True)
class StoredProspect:
    lead_id: str
    doc: dict[str, Any]
    version: int


@dataclass(frozen=True)
class InboxItem:
    """A lead of the inbox: its profile and the score it was stored with."""

    stored: StoredProspect
    score: float


@contextmanager
def _conditional(conflict: str) -> Iterator[None]:
    """A lost condition check becomes `ConcurrentUpdate(conflict)`; outages become `StorageUnavailable`; a
    write DynamoDB will never accept (an item over 400 KB) becomes `RecordRefused`."""
    with storage_errors(conflict):
        try:
            yield
        except PynamoDBException as exc:
            if is_condition_failure(exc):
                raise ConcurrentUpdate(conflict) from exc
            if exc.cause_response_code == "ValidationException":
                detail = exc.cause_response_message or str(exc)
                raise RecordRefused(f"DynamoDB refuses this record: {detail}") from exc
            raise


# How many leads' pool keys a store remembers between reading a lead and writing it back.
BANDS_REMEMBERED = 4096


class ProspectStore:
    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).prospects
        self._pool = PoolReader(self._model, _row)
        # lead id -> (version, pool key) as last read or written. A save conditional on that version
        # knows the item's key exactly, so it can keep it (dynamo_pool.band_for) without reading it again.
        self._bands: dict[str, tuple[int, float]] = {}
        self._bands_lock = threading.Lock()

    def _remember(self, lead_id: str, version: int, band: float) -> None:
        with self._bands_lock:
            self._bands.pop(lead_id, None)
            self._bands[lead_id] = (version, band)
            if len(self._bands) > BANDS_REMEMBERED:
                del self._bands[next(iter(self._bands))]

    def _band_at(self, lead_id: str, version: int | None) -> float | None:
        with self._bands_lock:
            known = self._bands.get(lead_id)
        return known[1] if known is not None and version is not None and known[0] == version else None

    def get(self, lead_id: str, *, consistent: bool = True) -> StoredProspect | None:
        """`consistent=False` costs half the read units; safe before a conditional write, which refuses a
        stale version (the caller then reads again, consistently)."""
        with storage_errors(f"read prospect {lead_id}"):
            try:
                item = self._model.get(lead_id, consistent_read=consistent)
            except self._model.DoesNotExist:
                return None
        self._remember(lead_id, int(item.version), float(item.score_band))
        return _stored(item)

    def get_many(self, lead_ids: Sequence[str]) -> dict[str, StoredProspect]:
        """Profiles by lead id (one BatchGet per 100); unknown ids are simply absent from the answer."""
        with storage_errors("read prospects"):
            items = list(self._model.batch_get(set(lead_ids), consistent_read=True))
        return {item.lead_id: _stored(item) for item in items}

    def save(
        self,
        lead_id: str,
        doc: dict[str, Any],
        row: ProspectRow,
        *,
        next_touch_at: datetime | None,
        expected_version: int | None,
        outbox: bytes | None = None,
    ) -> int:
        """Write the whole profile, with the effects it decided (`outbox`, see chalicelib.effects) in the
        same conditional write; `expected_version=None` means it must not exist yet. Returns the new
        version, or raises `ConcurrentUpdate` when another writer got there first."""
        if row.lead_id != lead_id:
            raise ValueError(f"row is for {row.lead_id!r}, not {lead_id!r}")
        band = band_for(row.score, self._band_at(lead_id, expected_version))
        item = self._model(
            lead_id,
            doc=pack_doc(doc),
            state=row.state,
            owner=row.owner,
            score_band=band,
            score=row.score,
            email=row.email,
            name=row.name or None,
            company=row.company or None,
            updated_at=row.updated_at,
            sla_status=row.sla_status,
            outbox=outbox,
        )
        if expected_version is not None:
            item.version = expected_version  # PynamoDB saves it as +1, on condition it is still this
        if next_touch_at is not None:
            # Rounded up so a touch is never found due before its time.
            item.next_touch_at = math.ceil(next_touch_at.timestamp())
            item.due_shard = due_shard(lead_id)
        if row.routed_at is not None:
            # Both stay the same while the lead stays in one inbox state, so a save that changes only the
            # score or the profile writes no index row (README "Console").
            item.inbox = row.state
            item.routed_key = f"{iso(row.routed_at)}#{lead_id}"
        condition: Condition | None = None
        if expected_version is None:
            condition = self._model.lead_id.does_not_exist()
        with _conditional(_moved(lead_id, expected_version)):
            item.save(condition=condition)
        self._remember(lead_id, int(item.version), band)
        return int(item.version)

    def delete(self, lead_id: str, *, expected_version: int) -> None:
        item = self._model(lead_id, version=expected_version)
        with _conditional(_moved(lead_id, expected_version)):
            item.delete()

    def list(
        self,
        *,
        state: str | None,
        owner: str | None,
        min_score: float | None,
        limit: int,
        cursor: str | None,
        sla_status: str | None = None,
        text: str | None = None,
    ) -> tuple[list[ProspectRow], str | None]:
        """One page of the pool: within a state, best score band first and each page by exact score (ties by
        lead id; dynamo_pool says why not exact across pages). Without a state the index is scanned, so pages
        then come in no particular order. The cursor is opaque; pass it back unchanged.

        DynamoDB applies a page limit before a filter, so a filtered page is filled by reading on until it
        holds `limit` rows or the index is exhausted: a filter never ends the listing early. Each row's exact
        score is read from its item."""
        if limit < 1:
            raise MalformedInput(f"limit must be at least 1, got {limit}")
        last = decode_pool_cursor(cursor, state) if cursor else None
        condition = _list_filter(self._model, owner, sla_status, text)
        with storage_errors("list prospects"):
            return self._pool.page(state, condition, min_score=min_score, limit=limit, last=last)

    def inbox(
        self,
        state: str,
        *,
        owner: str | None,
        sla_status: str | None,
        text: str | None,
        min_score: float | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[InboxItems, str | None]:
        """One page of sales' inbox in `state`, newest routing first, from the sparse inbox index; each lead
        with its profile (one BatchGet a round). Owner, SLA and search filter on the index; the score is not
        in it (so a score change writes no index row) and is checked on the items read, so a minimum score
        reads the profiles it skips. A page is filled by reading on, as `list` does."""
        if limit < 1:
            raise MalformedInput(f"limit must be at least 1, got {limit}")
        last = decode_inbox_cursor(cursor, state) if cursor else None
        condition = _list_filter(self._model, owner, sla_status, text)
        found: InboxItems = []
        with storage_errors("list the inbox"):
            while True:
                results = self._model.inbox_index.query(
                    state,
                    filter_condition=condition,
                    scan_index_forward=False,
                    limit=limit - len(found),
                    last_evaluated_key=last,
                )
                keys = [item.lead_id for item in results]
                last = results.last_evaluated_key
                items = {i.lead_id: i for i in self._model.batch_get(set(keys))} if keys else {}
                for lead_id in keys:
                    item = items.get(lead_id)
                    # The index is eventually consistent: a lead that left the inbox a moment ago is skipped.
                    if item is None or getattr(item, "inbox", None) != state:
                        continue
                    if min_score is not None and exact_score(item) < min_score:
                        continue
                    found.append(InboxItem(_stored(item), exact_score(item)))
                if not last or len(found) >= limit:
                    break
        return found, (encode_cursor(last) if last else None)

    def due(self, now: datetime, limit: int) -> LeadIds:
        """Lead ids whose next touch is at or before `now`, earliest first. Reads only the sparse due index
        (one query per shard), so the work grows with the number due, not with the number of prospects."""
        cutoff = math.floor(now.timestamp())
        found: list[tuple[int, str]] = []
        with storage_errors("find due prospects"):
            for shard in due_shards():
                query = self._model.due.query(shard, self._model.next_touch_at <= cutoff, limit=limit)
                found.extend((int(item.next_touch_at), item.lead_id) for item in query)
        return [lead_id for _, lead_id in sorted(found)[:limit]]


class IdentityStore:
    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).identities

    def resolve(self, identities: Sequence[str]) -> dict[str, str]:
        """identity -> lead id for the identities already known; unknown ones are absent.

        Eventually consistent (half the read units): an identity claimed a moment ago and missed here is
        caught by `claim`, a conditional put that answers the lead that owns it."""
        with storage_errors("resolve identities"):
            items = list(self._model.batch_get(set(identities), consistent_read=False))
        return {item.identity: item.lead_id for item in items}

    def claim(self, identity: str, lead_id: str) -> str:
        """Point `identity` at `lead_id` unless it already points somewhere; returns the lead that owns it
        (`lead_id` when this call won)."""
        with storage_errors(f"claim identity {identity}"):
            try:
                self._model(identity, lead_id=lead_id).save(condition=self._model.identity.does_not_exist())
                return lead_id
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
            owner = self._model.get(identity, consistent_read=True)
        return owner.lead_id

    def point(self, identity: str, lead_id: str) -> None:
        """Re-point unconditionally: a merge moves identities from the absorbed lead to the survivor."""
        with storage_errors(f"point identity {identity}"):
            self._model(identity, lead_id=lead_id).save()


def _list_filter(
    model: type[ProspectModel], owner: str | None, sla_status: str | None, text: str | None
) -> Condition | None:
    """The filters both lists apply to their index's projected columns."""
    condition: Condition | None = None
    if owner is not None:
        condition = model.owner == owner
    if sla_status is not None:
        wanted = model.sla_status == sla_status
        condition = wanted if condition is None else condition & wanted
    if text:
        # Search by email, name or company: a substring, as typed or lower-cased (DynamoDB's contains()
        # is case-sensitive; emails are stored lower-case, names as the person wrote them).
        found = model.email.contains(text.lower())
        for attribute in (model.name, model.company):
            found = found | attribute.contains(text) | attribute.contains(text.lower())
        condition = found if condition is None else condition & found
    return condition


def _moved(lead_id: str, expected_version: int | None) -> str:
    if expected_version is None:
        return f"prospect {lead_id} already exists; reload it and apply the change again"
    return (
        f"prospect {lead_id} changed after version {expected_version}; reload it and apply your change again"
    )


def _stored(item: ProspectModel) -> StoredProspect:
    return StoredProspect(lead_id=item.lead_id, doc=unpack_doc(item.doc), version=int(item.version))


def _row(item: ProspectModel) -> ProspectRow:
    return ProspectRow(
        lead_id=item.lead_id,
        state=item.state,
        owner=item.owner,
        score=exact_score(item),
        email=item.email,
        name=item.name or "",
        company=item.company or "",
        updated_at="",  # pool rows leave it out, as they always did (it was never in the by_state index)
        sla_status=item.sla_status,
    )
