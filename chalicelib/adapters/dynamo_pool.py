"""The shared pool's sort key on DynamoDB: a coarse score band, read in index order.

The pool index (dynamo_tables.ByStateIndex: `state`, then the band) used to be sorted by the exact score,
which moves on nearly every event, so nearly every save deleted and put an index row (2 write units). Its
sort key is now a band: a multiple of `BAND` that the exact score stays near. A save keeps the band it
found while the score is within `SLACK` of it (`band_for`), so a typical event writes no index row; the
exact score is a base-table attribute (`exact_score`) outside the index.

Invariant on every stored item: `band - SLACK <= score < band + BAND + SLACK`. Items written before bands
carry their exact score as the key (and no `exact_score`), which meets it too, so they list with no backfill.

A state is listed in index order: best band first (issue 15 allows the coarser order), each page sorted by
exact score, each row with its exact score (read from the items: one BatchGet a round), paged by the index's
own cursor. So a page costs what it reads, however crowded a band is: ordering a crowded band exactly (say
every anonymous visitor between 0 and 10 points) would mean reading all of it for every page, and an export
paging through it would read it once per page. Without a state the index is scanned (no order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pynamodb.expressions.condition import Condition

from chalicelib.adapters.dynamo_cursors import encode_cursor
from chalicelib.adapters.dynamo_tables import ProspectModel

BAND = 10.0
# How far a score may leave its band before the key is rewritten: an event worth less than this never
# moves the key, and after a move the score sits at least this far inside the new band's reach.
SLACK = 10.0
# Index rows read per round: a page of the pool index is small (no profile in it).
ROUND = 200
# What a pool row is built from (the stored names): the profile is not read for a list.
ROW_ATTRIBUTES = [
    "lead_id",
    "state",
    "owner",
    "score",
    "exact_score",
    "email",
    "name",
    "company",
    "sla_status",
]


def band_of(score: float) -> float:
    return math.floor(score / BAND) * BAND


def band_for(score: float, stored: float | None) -> float:
    """The pool key for `score`: the stored one while the invariant still holds for it, else its band."""
    if stored is not None and stored - SLACK <= score < stored + BAND + SLACK:
        return stored
    return band_of(score)


def lowest_key_for(min_score: float) -> float:
    """The lowest key an item scoring at least `min_score` can have."""
    return min_score - BAND - SLACK


def exact_score(item: ProspectModel) -> float:
    """The exact score; an item written before score bands has it as its pool key."""
    return float(item.score if item.score is not None else item.score_band)


RowT = TypeVar("RowT")


class PoolReader(Generic[RowT]):
    """Pages of the pool on the by_state index, each row built by `row` from its item's list columns."""

    def __init__(self, model: type[ProspectModel], row: Callable[[ProspectModel], RowT]) -> None:
        self._model = model
        self._row = row

    def page(
        self,
        state: str | None,
        condition: Condition | None,
        *,
        min_score: float | None,
        limit: int,
        last: dict[str, Any] | None,
    ) -> tuple[list[RowT], str | None]:
        """One page after `last` (a decoded cursor), and the next page's cursor (None when nothing is left).
        The caller checks the arguments and maps storage errors."""
        if state is None:
            return self._scan(condition, min_score, limit, last)
        band = self._model.score_band >= lowest_key_for(min_score) if min_score is not None else None
        found: list[tuple[float, str, RowT]] = []
        while True:
            results = self._model.by_state.query(
                state,
                band,
                filter_condition=condition,
                scan_index_forward=False,
                limit=min(limit - len(found), ROUND),
                last_evaluated_key=last,
            )
            index_rows = list(results)
            last = results.last_evaluated_key
            found.extend(
                (score, lead_id, row)
                for score, lead_id, row in self._exact(index_rows, state)
                if min_score is None or score >= min_score
            )
            if not last or len(found) >= limit:
                break
        found.sort(key=lambda f: (-f[0], f[1]))  # within the page: best exact score first, ties by id
        return [row for _, _, row in found], (encode_cursor(last) if last else None)

    def _exact(self, index_rows: Sequence[ProspectModel], state: str | None) -> list[tuple[float, str, RowT]]:
        """The rows behind these index rows, read from their items (the exact score lives there); a lead
        that left the state since (the index is eventually consistent) or is gone is left out."""
        ids = [r.lead_id for r in index_rows]
        if not ids:
            return []
        held = {i.lead_id: i for i in self._model.batch_get(set(ids), attributes_to_get=ROW_ATTRIBUTES)}
        found: list[tuple[float, str, RowT]] = []
        for lead_id in ids:
            item = held.get(lead_id)
            if item is None or (state is not None and item.state != state):
                continue
            found.append((exact_score(item), lead_id, self._row(item)))
        return found

    def _scan(
        self, condition: Condition | None, min_score: float | None, limit: int, last: dict[str, Any] | None
    ) -> tuple[list[RowT], str | None]:
        if min_score is not None:
            candidate = self._model.score_band >= lowest_key_for(min_score)
            condition = candidate if condition is None else condition & candidate
        rows: list[RowT] = []
        while True:
            results = self._model.by_state.scan(
                filter_condition=condition, limit=limit - len(rows), last_evaluated_key=last
            )
            index_rows = list(results)
            last = results.last_evaluated_key
            rows.extend(
                row
                for score, _, row in self._exact(index_rows, None)
                if min_score is None or score >= min_score
            )
            if not last or len(rows) >= limit:
                break
        return rows, (encode_cursor(last) if last else None)
