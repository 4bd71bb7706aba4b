"""The lead pool exported as CSV: every lead a filter matches, paged through the pool's list, each cell
one a spreadsheet shows as text (no formula injection); the answer is capped by rows and bytes, with a
cursor for the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

EXPORT_COLUMNS = ("id", "email", "name", "company", "state", "owner", "score", "sla")
MAX_EXPORT_ROWS = 20_000
MAX_EXPORT_BYTES = 3 * 1024 * 1024  # the answer stays under Lambda's 6 MB, escaped, with a page to spare
EXPORT_PAGE = 200
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may evaluate (CSV injection)


class PoolRow(Protocol):
    """The columns of a listed lead (read-only, as the adapter's frozen rows are)."""

    @property
    def lead_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def score(self) -> float: ...
    @property
    def email(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def company(self) -> str: ...
    @property
    def sla_status(self) -> str | None: ...


class LeadPool(Protocol):
    def list(
        self,
        *,
        state: str | None,
        owner: str | None,
        min_score: float | None,
        limit: int,
        cursor: str | None,
        sla_status: str | None = None,
    ) -> tuple[Sequence[PoolRow], str | None]: ...


@dataclass(frozen=True)
class Export:
    text: str
    rows: int
    next_cursor: str | None  # set when the export stopped at its limit: pass it back for the rest


def neutralised(value: str | None) -> str:
    """A cell a spreadsheet shows as text: one that could start a formula gets a leading apostrophe."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _score(value: float) -> str:
    rounded = round(float(value), 2)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


def export_csv(pool: LeadPool, filters: Mapping[str, Any], *, cursor: str | None = None) -> Export:
    """Every lead the filters match, page after page, up to MAX_EXPORT_ROWS rows or MAX_EXPORT_BYTES."""
    pages = [",".join(EXPORT_COLUMNS) + "\r\n"]
    count = size = 0
    while True:
        rows, cursor = pool.list(limit=min(EXPORT_PAGE, MAX_EXPORT_ROWS - count), cursor=cursor, **filters)
        page = io.StringIO()
        writer = csv.writer(page, lineterminator="\r\n")  # RFC 4180
        for r in rows:
            writer.writerow(
                [
                    neutralised(r.lead_id),
                    neutralised(r.email),
                    neutralised(r.name),
                    neutralised(r.company),
                    neutralised(r.state),
                    neutralised(r.owner),
                    _score(r.score),
                    neutralised(r.sla_status),
                ]
            )
        pages.append(page.getvalue())
        size += len(pages[-1].encode())
        count += len(rows)
        if not cursor or count >= MAX_EXPORT_ROWS or size >= MAX_EXPORT_BYTES:
            return Export("".join(pages), count, cursor)
