"""Bulk import: leads imported from a CSV file (the pool exported as CSV is `pool_export`).

An import turns each row into one IDENTIFY event from the source `import` and applies it through
`LeadService.apply_events`, so bounds, merges, scoring, nurture and the outbox treat it like any other
identify. The file is read twice with `csv.reader` over the decoded text, row by row, never held as a list
of rows: the first pass refuses a file that cannot be read as a whole (not UTF-8, no `email` column,
broken CSV, too many rows) before anything is written, and finds the first valid row of each email; the
second pass applies the rows in batches. An import is idempotent: a row's event id is derived from its
email and content, and a row already applied (or whose values the lead already has) changes nothing.
One request stops, between batches, before the function runs out of time; its answer names the line to
resume from (`from_line`), so a file larger than one request's time is imported in several calls.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.apply import TRAIT_ALIASES
from chalicelib.domain.bounds import CORE_TRAITS, fit_traits
from chalicelib.domain.events import Event, EventKind, internal_id
from chalicelib.domain.prospect import (
    MAX_TRAIT_KEY_CHARS,
    MAX_TRAIT_TEXT_CHARS,
    is_reserved_trait,
)
from chalicelib.domain.rules import Rules
from chalicelib.errors import LeadloopError, MalformedInput, StorageUnavailable, TooLarge
from chalicelib.usecases.leads import LeadService
from chalicelib.usecases.ports import IdentityIndex, ProspectRepository

# Lambda accepts at most 6 MB of request event, and API Gateway base64-encodes a body it treats as binary
# (a third larger): 4 MB of CSV fits either way.
MAX_IMPORT_BYTES = 4 * 1024 * 1024
MAX_IMPORT_ROWS = 50_000
MAX_IMPORT_COLUMNS = 200
MAX_LABEL_CHARS = 100
IMPORT_SOURCE = "import"
IMPORT_BATCH = 25  # rows per apply_events call; small enough to stop in time between batches
MIN_TIME_MARGIN_SECONDS = 2.0  # left unused when a request stops early: the answer still has to go out
MAX_REJECTIONS_LISTED = 1_000  # a file of bad rows must not make an answer over Lambda's 6 MB
EMAIL_COLUMNS = frozenset({"email", "e_mail", "email_address"})
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit, as the tracking path
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")  # the tracking path's plausibility check
_WHOLE_NUMBER = re.compile(r"\d{1,15}")
NUMERIC_TRAITS = frozenset({"company_size"})  # "800" in a file is the number the fit rules compare
# Header names compared without case or punctuation: "First Name", "firstName" and "first_name" are one.
_ALIASES = {re.sub(r"[^0-9a-z]+", "_", key.lower()).strip("_"): value for key, value in TRAIT_ALIASES.items()}


@dataclass(frozen=True)
class Columns:
    """What the header row says: where the email is, which columns set which trait, what is ignored."""

    email: int
    traits: dict[int, str]
    width: int
    unknown: list[str]
    refused: list[str]


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    traits: dict[str, Any]

    @property
    def event_id(self) -> str:
        content = json.dumps([self.email, sorted(self.traits.items())], separators=(",", ":"), default=str)
        return internal_id(IMPORT_SOURCE, hashlib.blake2b(content.encode(), digest_size=16).hexdigest())

    def event(self, at: Any) -> Event:
        return Event(
            message_id=self.event_id,
            kind=EventKind.IDENTIFY,
            at=at,
            source=IMPORT_SOURCE,
            email=self.email,
            traits=self.traits,
        )


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_total: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    refused_columns: list[str] = field(default_factory=list)
    rows: int = 0
    resume_from_line: int | None = None

    def reject(self, line: int, reason: str) -> None:
        self.rejected_total += 1
        if len(self.rejected) < MAX_REJECTIONS_LISTED:
            self.rejected.append({"line": line, "reason": reason})

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejected_total": self.rejected_total,
            "unknown_columns": self.unknown_columns,
            "refused_columns": self.refused_columns,
            "rows": self.rows,
            "done": self.resume_from_line is None,
            "resume_from_line": self.resume_from_line,
        }


def decode(raw: bytes) -> str:
    """The body as text: UTF-8, a byte order mark (Excel's "CSV UTF-8") dropped; anything else is a 400."""
    if not raw:
        raise MalformedInput(
            "the body is empty; send a CSV file with a header row that names an email column"
        )
    if len(raw) > MAX_IMPORT_BYTES:
        raise TooLarge(f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB; split it")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedInput(
            f"the file is not UTF-8 text (byte {error.start} cannot be read); save it as CSV UTF-8"
        ) from None
    # API Gateway passes a text body on as UTF-8 with U+FFFD for each byte it could not read: the same file
    # is refused on AWS as locally, not stored with its accents lost.
    if "\ufffd" in text:
        raise MalformedInput(
            "the file is not UTF-8 text (it holds U+FFFD, an unreadable character); save it as CSV UTF-8"
        )
    return text


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each non-blank record; a record may span lines (newlines inside quotes)."""
    # strict: a quote left open would otherwise swallow every later row into one cell, silently.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise MalformedInput(f"line {line} cannot be read as CSV: {error}") from None
        if any(cell.strip() for cell in cells):
            yield line, cells


def _column_name(raw: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", raw.strip().casefold()).strip("_")


def read_header(cells: Sequence[str], known: frozenset[str]) -> Columns:
    if len(cells) > MAX_IMPORT_COLUMNS:
        raise MalformedInput(f"the header has {len(cells)} columns; at most {MAX_IMPORT_COLUMNS}")
    email: int | None = None
    traits: dict[int, str] = {}
    unknown: list[str] = []
    refused: list[str] = []
    for index, raw in enumerate(cells):
        label = raw.strip()[:MAX_LABEL_CHARS]  # named back in the answer: a huge header cell is cut
        name = _column_name(raw)
        if name in EMAIL_COLUMNS:
            if email is not None:
                raise MalformedInput(f"the header names an email column twice ({cells[email]!r}, {label!r})")
            email = index
        elif not name:
            unknown.append(label or f"column {index + 1}")
        elif is_reserved_trait(label) or is_reserved_trait(name):
            refused.append(label)  # owner, lifecycle, suppression, scores: sales and the CRM own them
        else:
            trait = _ALIASES.get(name, name)
            if trait not in known or len(trait) > MAX_TRAIT_KEY_CHARS:
                unknown.append(label)
                continue
            if trait in traits.values():
                first = next(cells[i].strip() for i, t in traits.items() if t == trait)
                raise MalformedInput(f"columns {first!r} and {label!r} both set the trait {trait!r}")
            traits[index] = trait
    if email is None:
        raise MalformedInput(
            "the header row has no 'email' column; the first row must name the columns, one of them email",
            details={"header": [cell[:MAX_LABEL_CHARS] for cell in cells[:50]]},
        )
    return Columns(email=email, traits=traits, width=len(cells), unknown=unknown, refused=refused)


def read_row(line: int, cells: Sequence[str], columns: Columns) -> Row | str:
    """The row's email and traits, or why it is rejected."""
    extra = [cell for cell in cells[columns.width :] if cell.strip()]
    if extra:
        return f"{len(cells)} columns, but the header names {columns.width}"
    email = cells[columns.email].strip().lower() if columns.email < len(cells) else ""
    if not email:
        return "no email"
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        return f"{email[:100]!r} is not an email address"
    traits: dict[str, Any] = {}
    for index, trait in columns.traits.items():
        value = cells[index].strip() if index < len(cells) else ""
        if not value:
            continue  # an empty cell proposes nothing: it never erases what is known
        if len(value) > MAX_TRAIT_TEXT_CHARS:
            return f"the {trait} value is longer than {MAX_TRAIT_TEXT_CHARS} characters"
        if trait in NUMERIC_TRAITS and _WHOLE_NUMBER.fullmatch(value):
            traits[trait] = int(value)
        else:
            traits[trait] = value
    return Row(line=line, email=email, traits=traits)


def _reason(error: Exception) -> str:
    if isinstance(error, StorageUnavailable):
        return "storage was busy; import the file again to retry this row"
    if isinstance(error, LeadloopError):
        return error.message
    return f"could not be stored ({type(error).__name__}); import the file again to retry this row"


class BulkImport:
    """Imports a CSV file of leads through the lead write path."""

    def __init__(
        self,
        *,
        leads: LeadService,
        identities: IdentityIndex,
        prospects: ProspectRepository,
        rules: Callable[[], Rules],
        clock: Callable[[], Any],
        time_left: Callable[[], float] | None = None,
    ) -> None:
        self._leads = leads
        self._identities = identities
        self._prospects = prospects
        self._rules = rules
        self._clock = clock
        self._time_left = time_left

    def known_traits(self) -> frozenset[str]:
        """What a column may set: who the person is (as the tracking path names it) and what fit scores."""
        return frozenset(CORE_TRAITS | set(TRAIT_ALIASES.values()) | fit_traits(self._rules())) - {"email"}

    def run(self, raw: bytes, *, from_line: int = 1) -> ImportReport:
        text = decode(raw)
        columns, first_of = self._survey(text)
        report = ImportReport(unknown_columns=columns.unknown, refused_columns=columns.refused)
        batch: list[Row] = []
        slowest = 0.0
        stopping = False
        records = _records(text)
        next(records)  # the header
        for line, cells in records:
            if line < from_line:
                continue
            if stopping:
                report.resume_from_line = line
                break
            report.rows += 1
            row = read_row(line, cells, columns)
            if isinstance(row, str):
                report.reject(line, row)
                continue
            if first_of[row.email] != line:
                report.reject(
                    line, f"duplicate of line {first_of[row.email]} (the first row of an email wins)"
                )
                continue
            batch.append(row)
            if len(batch) >= IMPORT_BATCH:
                slowest = max(slowest, self._timed(batch, report))
                batch = []
                stopping = self._out_of_time(slowest)
        if batch:
            self._apply(batch, report)
        return report

    def _survey(self, text: str) -> tuple[Columns, dict[str, int]]:
        """The first pass: the header, the row count and the first valid line of each email."""
        records = _records(text)
        header = next(records, None)
        if header is None:
            raise MalformedInput("the file has no header row; the first row must name the columns")
        columns = read_header(header[1], self.known_traits())
        first_of: dict[str, int] = {}
        count = 0
        for line, cells in records:
            count += 1
            if count > MAX_IMPORT_ROWS:
                raise TooLarge(f"the file has more than {MAX_IMPORT_ROWS} rows; split it")
            row = read_row(line, cells, columns)
            if isinstance(row, Row):
                first_of.setdefault(row.email, line)
        return columns, first_of

    def _out_of_time(self, slowest: float) -> bool:
        if self._time_left is None:
            return False
        return self._time_left() < max(MIN_TIME_MARGIN_SECONDS, 2 * slowest)

    def _timed(self, rows: list[Row], report: ImportReport) -> float:
        started = time.monotonic()
        self._apply(rows, report)
        return time.monotonic() - started

    def _apply(self, rows: list[Row], report: ImportReport) -> None:
        """One batch: rows the lead already holds are unchanged (nothing written); the rest go through
        `apply_events`; a prospect that fails rejects its row."""
        owners = self._identities.resolve([f"email:{row.email}" for row in rows])
        now = self._clock()
        todo: list[tuple[Row, bool]] = []
        for row in rows:
            lead_id = owners.get(f"email:{row.email}")
            if lead_id is not None and self._holds(lead_id, row):
                report.unchanged += 1
            else:
                todo.append((row, lead_id is not None))
        if not todo:
            return
        outcome = self._leads.apply_events([row.event(now) for row, _ in todo])
        failed = {event.message_id: f.error for f in outcome.failed for event in f.events}
        for row, existed in todo:
            error = failed.get(row.event_id)
            if error is not None:
                report.reject(row.line, _reason(error))
            elif existed:
                report.updated += 1
            else:
                report.imported += 1

    def _holds(self, lead_id: str, row: Row) -> bool:
        """Whether the lead has this row already: this very row imported before (newer values from other
        sources are kept, not overwritten by an old file), or every value it proposes."""
        stored = self._prospects.get(lead_id, consistent=False)
        if stored is None:
            return False
        prospect = stored.item
        if self._leads.applied_before(prospect, row.event(self._clock())):  # its id may be in a chunk
            return True
        return all(prospect.traits.get(name) == value for name, value in row.traits.items())
