"""Erase and export on DynamoDB: finding every record that names a person's lead ids, deleting them, and the
suppression list of erased addresses.

The suppression list shares the identities table: an entry is keyed `suppressed:<keyed hash>` (a key no
identity lookup ever asks for) and holds no lead id, so nothing links it to the erased profile. Finding a
person's identities scans the identities table (there is no index by lead id: one would cost a write on
every identity claimed, for an operation run by hand a few times a month); the scan reads the table once
per merge generation, which README "Erase and export" states.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import cast

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from chalicelib.adapters.dynamo_tables import (
    NonceModel,
    Tables,
    from_iso,
    is_condition_failure,
    models_for,
    shared_connection,
    storage_errors,
)
from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.suppression import SuppressedAddress

SUPPRESSED_PREFIX = "suppressed:"
FORWARD_PREFIX = "lead:"  # chalicelib.usecases.identity_resolution.forward_key
MAX_MERGE_GENERATIONS = 10  # merges of merges followed back (the lead service follows 5 forwards)
IN_LIMIT = 100  # values one DynamoDB IN condition may hold
# Marks of a write younger than this may still be needed by a stream record of that write not yet
# delivered (the stream keeps records 24 hours): deleting one would let the dispatcher perform the write's
# effects again, a sales notification about the erased person among them. They expire on their own.
STREAM_RETENTION = timedelta(hours=24)
MARK_LIFETIME = timedelta(days=3)  # chalicelib.effects.dispatch.MARK_DAYS


class SuppressionModel(Model):
    """An entry of the suppression list, in the identities table."""

    identity = UnicodeAttribute(hash_key=True)
    reason = UnicodeAttribute()
    suppressed_at = UTCDateTimeAttribute()


@lru_cache(maxsize=16)
def _suppression_model(tables: Tables) -> type[SuppressionModel]:
    """The model bound to the identities table, on the connection every table of `tables` shares (which
    knows the table's schema already, through the identities model)."""
    meta = type(
        "Meta", (), {"table_name": f"{tables.prefix}identities", "host": tables.host, "region": tables.region}
    )
    bound = cast(
        type[SuppressionModel],
        type("SuppressionModel", (SuppressionModel,), {"Meta": meta, "__module__": __name__}),
    )
    bound._get_connection().connection = shared_connection(tables)
    return bound


class DynamoSuppressionList:
    def __init__(self, tables: Tables) -> None:
        self._model = _suppression_model(tables)

    def add(self, entry: SuppressedAddress) -> None:
        item = self._model(SUPPRESSED_PREFIX + entry.digest, reason=entry.reason, suppressed_at=entry.at)
        with storage_errors("add to the suppression list"):
            try:
                item.save(condition=self._model.identity.does_not_exist())
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise  # held already: the first entry (and its time) stands

    def find(self, digest: str) -> SuppressedAddress | None:
        with storage_errors("read the suppression list"):
            try:
                item = self._model.get(SUPPRESSED_PREFIX + digest)
            except self._model.DoesNotExist:
                return None
        return SuppressedAddress(digest, item.reason, item.suppressed_at)


class DynamoPersonRecords:
    def __init__(self, tables: Tables) -> None:
        models = models_for(tables)
        self._identities = models.identities
        self._activity = models.activity
        self._nonces = models.nonces

    # --- identities ---

    def identities_of(self, lead_id: str) -> dict[str, str]:
        found: dict[str, str] = {}
        seen = {lead_id}
        frontier = {lead_id}
        for _ in range(MAX_MERGE_GENERATIONS):
            if not frontier:
                break
            generation: dict[str, str] = {}
            for chunk in _chunks(sorted(frontier), IN_LIMIT):
                condition = self._identities.lead_id.is_in(*chunk)
                with storage_errors("find a person's identities"):
                    for item in self._identities.scan(condition):
                        generation[item.identity] = item.lead_id
            found.update(generation)
            # A lead merged into one of these left `lead:<its id>` pointing here: its own identities (and
            # the forwards of leads merged into it) may still point at it.
            merged = {key[len(FORWARD_PREFIX) :] for key in generation if key.startswith(FORWARD_PREFIX)}
            frontier = merged - seen
            seen |= frontier
        return found

    def forget_identities(self, owners: Mapping[str, str]) -> int:
        deleted = 0
        model = self._identities
        for identity, lead_id in owners.items():
            with storage_errors("delete an identity"):
                try:
                    # Only while it still points there: a merge may have re-pointed it to someone else since.
                    model(identity).delete(condition=model.lead_id == lead_id)
                    deleted += 1
                except PynamoDBException as exc:
                    if not is_condition_failure(exc):
                        raise
        return deleted

    # --- activity ---

    def activity_of(self, lead_ids: Sequence[str], limit: int) -> list[ActivityEntry]:
        entries: list[ActivityEntry] = []
        for lead_id in lead_ids:
            with storage_errors(f"read activity of {lead_id}"):
                for item in self._activity.query(lead_id, scan_index_forward=False):
                    at = from_iso(item.seq.split("#", 1)[0])
                    entries.append(
                        ActivityEntry(item.lead_id, at, item.kind, item.actor, json.loads(item.data))
                    )
                    if len(entries) >= limit:
                        return entries
        return entries

    def forget_activity(self, lead_ids: Sequence[str], *, keep_kinds: Sequence[str] = ()) -> int:
        deleted = 0
        for lead_id in lead_ids:
            with storage_errors(f"delete activity of {lead_id}"):
                query = self._activity.query(lead_id, attributes_to_get=["lead_id", "seq", "kind"])
                doomed = [item for item in query if item.kind not in keep_kinds]
                with self._activity.batch_write() as batch:
                    for item in doomed:
                        batch.delete(item)
            deleted += len(doomed)
        return deleted

    # --- effect marks and counter markers ---

    def forget_marks(self, lead_ids: Sequence[str], *, now: datetime) -> tuple[int, int]:
        if not lead_ids:
            return 0, 0
        model = self._nonces
        condition = None
        for lead_id in lead_ids:
            # Marks are `effect#<kind>#<lead>#<version>...` and `counted#<lead>#<version>#...`.
            names = model.key.contains(f"#{lead_id}#")
            condition = names if condition is None else condition | names
        young_after = now + MARK_LIFETIME - STREAM_RETENTION
        old: list[NonceModel] = []
        kept = 0
        with storage_errors("find effect marks"):
            for item in model.scan(condition):
                if item.expires_at is not None and item.expires_at > young_after:
                    kept += 1
                else:
                    old.append(item)
            with model.batch_write() as batch:
                for mark in old:
                    batch.delete(mark)
        return len(old), kept


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
