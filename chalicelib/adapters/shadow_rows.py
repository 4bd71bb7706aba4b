"""The shadow's comparison rows (chalicelib/usecases/shadow.py): in memory, and on DynamoDB in the counters
table under the partition `shadow#<shadow id>`, one item `lead#<lead id>` per lead.

The counters table because the worker may already write and query it (no new table, no new permission)
and its partitions are read by name only (the scoreboard reads its periods, never a scan). Each write is
one UpdateItem: scores and the next-template choices (one JSON attribute) are overwritten; a routing is
written with if_not_exists, so the first one stays and a redelivered batch changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chalicelib.adapters.dynamo_tables import Tables, models_for, storage_errors

ROUTINGS = ("live", "shadow")


class ShadowRowModel(Model):
    period = UnicodeAttribute(hash_key=True)  # shadow#<id>
    name = UnicodeAttribute(range_key=True)  # lead#<lead id>
    value = NumberAttribute()  # the shadow's score (the counters table's value)
    live_score = NumberAttribute(null=True)
    first_touch = UnicodeAttribute(null=True)
    at = UnicodeAttribute(null=True)
    live = UnicodeAttribute(null=True)  # JSON of the first live routing since the shadow began
    shadow = UnicodeAttribute(null=True)  # JSON of the shadow's first routing
    choices = UnicodeAttribute(null=True)  # JSON {"next": {live, shadow}, "why": {live, shadow} | null}
    expires_at = TTLAttribute(null=True)


@lru_cache(maxsize=16)
def _model(tables: Tables) -> type[ShadowRowModel]:
    counters = models_for(tables).counters
    meta = type("Meta", (), {"table_name": counters.Meta.table_name, "host": tables.host,
                             "region": tables.region})  # fmt: skip
    body = {"Meta": meta, "__module__": __name__}
    bound = cast(type[ShadowRowModel], type("ShadowRowModel", (ShadowRowModel,), body))
    # The counters table's own connection (same keys): the shared one holds one schema per table name.
    bound._connection = counters._get_connection()
    return bound


def _partition(shadow_id: str) -> str:
    return f"shadow#{shadow_id}"


def _row(item: ShadowRowModel) -> dict[str, Any]:
    row: dict[str, Any] = {
        "shadow_score": float(item.value),
        "live_score": float(item.live_score or 0.0),
        "first_touch": item.first_touch,
        "at": item.at,
        "live": json.loads(item.live) if item.live else None,
        "shadow": json.loads(item.shadow) if item.shadow else None,
    }
    if item.choices:
        choices = json.loads(item.choices)
        row["next"], row["next_why"] = choices["next"], choices.get("why")
    return row


class DynamoShadowRows:
    def __init__(self, tables: Tables) -> None:
        self._model = _model(tables)

    def record(self, shadow_id: str, lead_id: str, row: Mapping[str, Any], *, expires_at: datetime) -> None:
        m = self._model
        actions: list[Action] = [
            m.value.set(row["shadow_score"]),
            m.live_score.set(row["live_score"]),
            m.at.set(row["at"]),
            m.first_touch.set(m.first_touch | row["first_touch"]),
            m.expires_at.set(expires_at),
        ]
        for side in ROUTINGS:
            if row.get(side):
                attribute = getattr(m, side)
                actions.append(attribute.set(attribute | json.dumps(row[side])))
        if "next" in row:
            choices = {"next": row["next"], "why": row.get("next_why")}
            actions.append(m.choices.set(json.dumps(choices, separators=(",", ":"))))
        with storage_errors(f"record the shadow row of {lead_id}"):
            m(_partition(shadow_id), f"lead#{lead_id}").update(actions=actions)

    def all(self, shadow_id: str) -> dict[str, dict[str, Any]]:
        with storage_errors("read the shadow rows"):
            return {
                item.name.removeprefix("lead#"): _row(item)
                for item in self._model.query(_partition(shadow_id))
            }

    def forget(self, shadow_id: str) -> int:
        m = self._model
        with storage_errors("forget the shadow rows"):
            keys = list(m.query(_partition(shadow_id), attributes_to_get=["period", "name"]))
            with m.batch_write() as batch:
                for item in keys:
                    batch.delete(item)
        return len(keys)

    def forget_leads(self, shadow_id: str, lead_ids: Sequence[str]) -> int:
        m = self._model
        with storage_errors("forget a person's shadow rows"):
            with m.batch_write() as batch:
                for lead_id in lead_ids:
                    batch.delete(m(_partition(shadow_id), f"lead#{lead_id}"))
        return len(lead_ids)


class InMemoryShadowRows:
    """The same rules in memory (tests, and a stage without tables)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}

    def record(self, shadow_id: str, lead_id: str, row: Mapping[str, Any], *, expires_at: datetime) -> None:
        with self._lock:
            held = self.rows.setdefault(shadow_id, {}).setdefault(lead_id, {})
            held.update({k: row[k] for k in ("shadow_score", "live_score", "at")})
            held.setdefault("first_touch", row["first_touch"])
            if "next" in row:
                held["next"], held["next_why"] = row["next"], row.get("next_why")
            for side in ROUTINGS:
                if held.get(side) is None:
                    held[side] = row.get(side)

    def all(self, shadow_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {lead: dict(row) for lead, row in self.rows.get(shadow_id, {}).items()}

    def forget(self, shadow_id: str) -> int:
        with self._lock:
            return len(self.rows.pop(shadow_id, {}))

    def forget_leads(self, shadow_id: str, lead_ids: Sequence[str]) -> int:
        with self._lock:
            held = self.rows.get(shadow_id, {})
            return sum(held.pop(lead_id, None) is not None for lead_id in lead_ids)
