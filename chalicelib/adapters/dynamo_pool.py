"""The shared pool's sort key on DynamoDB: a coarse score band, with the exact order recovered at read time.

The pool index (dynamo_tables.ByStateIndex: `state`, then the band) used to be sorted by the exact score,
which moves on nearly every event, so nearly every save deleted and put an index row (2 write units). Its
sort key is now a band: a multiple of `BAND` that the exact score stays near. A save keeps the band it
found while the score is within `SLACK` of it (`band_for`), so a typical event writes no index row; the
exact score is a base-table attribute (`exact_score`) outside the index.

Invariant on every stored item: `band - SLACK <= score < band + BAND + SLACK`. Items written before bands
carry their exact score as the key (and no `exact_score`), which meets it too, so they list correctly with
no backfill. Reading a state best first (`read_best_first`, on DynamoDB through `PoolReader`) therefore
goes down the index band by band, reads the exact scores of what it found (one BatchGet a round: reads are a
fifth of the price of writes, and a pool listing is rare next to events), and hands out a row only once
nothing unread can outrank it: after all keys above `k` are read, an unread item scores below
`k + BAND + SLACK`. Ties go by lead id. Without a state the index is scanned (no order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
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


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last row handed out, in the order (score descending, lead id ascending)."""

    score: float
    lead_id: str

    def before(self, score: float, lead_id: str) -> bool:
        """Whether (score, lead_id) was handed out already (comes at or before this position)."""
        return score > self.score or (score == self.score and lead_id <= self.lead_id)


@dataclass(frozen=True)
class Found:
    score: float
    lead_id: str
    row: Any  # the caller's row for the lead


Query = Callable[[Condition | None, dict[str, Any] | None], tuple[list[Any], dict[str, Any] | None]]
Exact = Callable[[list[Any]], list[Found]]


def read_best_first(
    query: Query,
    exact: Exact,
    range_condition: Callable[[float | None, float | None], Condition | None],
    *,
    min_score: float | None,
    after: Position | None,
    limit: int,
) -> tuple[list[Found], Position | None]:
    """One page of a state, best exact score first. `query(range, start)` reads one round of index rows
    (keys descending) and answers them with its LastEvaluatedKey; `exact(rows)` gives each row's exact score
    (rows gone from the state are left out); `range_condition(low, high)` bounds the key. Answers the page
    and where the next one starts (None when nothing is left)."""
    low = lowest_key_for(min_score) if min_score is not None else None
    high = after.score + SLACK if after is not None else None  # a higher key holds only rows handed out
    condition = range_condition(low, high)
    buffer: list[Found] = []
    page: list[Found] = []
    start: dict[str, Any] | None = None
    while True:
        rows, start = query(condition, start)
        for found in exact(rows):
            if after is not None and after.before(found.score, found.lead_id):
                continue
            if min_score is not None and found.score < min_score:
                continue
            buffer.append(found)
        # Nothing unread can score at or above `safe`: its key is at most the last key read.
        safe = float(Decimal(start["score"]["N"])) + BAND + SLACK if start else -math.inf
        buffer.sort(key=lambda f: (-f.score, f.lead_id))
        ready = 0
        while ready < len(buffer) and buffer[ready].score >= safe and len(page) + ready < limit:
            ready += 1
        page.extend(buffer[:ready])
        del buffer[:ready]
        if len(page) >= limit or start is None:
            break
    more = bool(buffer) or start is not None
    last = page[-1] if page else None
    return page, (Position(last.score, last.lead_id) if more and last is not None else None)


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
        after = Position(float(last["score"]["N"]), last["lead_id"]["S"]) if last else None
        found, position = read_best_first(
            lambda band, start: self._query_round(state, band, condition, start),
            lambda items: self._exact(items, state),
            self._band_range,
            min_score=min_score,
            after=after,
            limit=limit,
        )
        rows: list[RowT] = [f.row for f in found]
        if position is None:
            return rows, None
        key = {
            "lead_id": {"S": position.lead_id},
            "state": {"S": state},
            "score": {"N": repr(position.score)},
        }
        return rows, encode_cursor(key)

    def _band_range(self, low: float | None, high: float | None) -> Condition | None:
        band = self._model.score_band
        if low is not None and high is not None:
            return band.between(low, high) if low <= high else band < low  # (an empty range)
        if low is not None:
            return band >= low
        return band <= high if high is not None else None

    def _query_round(
        self, state: str, band: Condition | None, condition: Condition | None, start: dict[str, Any] | None
    ) -> tuple[list[ProspectModel], dict[str, Any] | None]:
        results = self._model.by_state.query(
            state,
            band,
            filter_condition=condition,
            scan_index_forward=False,
            limit=ROUND,
            last_evaluated_key=start,
        )
        items = list(results)
        return items, results.last_evaluated_key

    def _exact(self, index_rows: Sequence[ProspectModel], state: str | None) -> list[Found]:
        """The rows behind these index rows, read from their items (the exact score lives there); a lead
        that left the state since (the index is eventually consistent) or is gone is left out."""
        ids = [r.lead_id for r in index_rows]
        if not ids:
            return []
        held = {i.lead_id: i for i in self._model.batch_get(set(ids), attributes_to_get=ROW_ATTRIBUTES)}
        found: list[Found] = []
        for lead_id in ids:
            item = held.get(lead_id)
            if item is None or (state is not None and item.state != state):
                continue
            found.append(Found(exact_score(item), lead_id, self._row(item)))
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
                f.row for f in self._exact(index_rows, None) if min_score is None or f.score >= min_score
            )
            if not last or len(rows) >= limit:
                break
        return rows, (encode_cursor(last) if last else None)
