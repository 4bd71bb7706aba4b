"""What the console's scoreboard and activity feed pages show, arranged from the same use cases the JSON API
answers with: `Scoreboard.report` (GET /metrics) for a date range, and `LeadService.activity_feed`
(GET /activity) one page at a time.

Nothing is counted here: every number comes from the report; this module turns it into charts
(chalicelib/console/charts.py) and the tables that say the same in text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup

from chalicelib.console import charts
from chalicelib.console.charts import Bar

# As the lead page shows them: deliveries as channels (no local paths), other details as plain text.
from chalicelib.console.views import _delivered, _text
from chalicelib.errors import MalformedInput
from chalicelib.usecases.scoreboard import parse_day

# --- the scoreboard ---

RANGE_PRESETS = (("Last 7 days", 7), ("Last 30 days", 30), ("Last 90 days", 90))


@dataclass(frozen=True)
class Chart:
    """One chart and the table a screen reader (or anyone) reads instead."""

    svg: Markup
    head: tuple[str, ...]
    rows: list[tuple[str, ...]]


def _words(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _minutes(edge: int | str | None) -> str:
    if edge is None:
        return "—"
    if isinstance(edge, str):
        return f"{edge} min"  # "over 10080": past the last bucket
    if edge >= 10**6:
        return "longer"
    if edge % 1440 == 0:
        return f"≤ {edge // 1440} d"
    if edge % 60 == 0:
        return f"≤ {edge // 60} h"
    return f"≤ {edge} min"


def date_range(params: Mapping[str, str], today: date) -> tuple[date | None, date | None]:
    """The range asked for (`from`/`to`, or `days` back from today); both None: all time."""
    if params.get("days"):
        try:
            days = int(params["days"])
        except ValueError:
            raise MalformedInput("'days' must be a whole number of days") from None
        if not 1 <= days <= 3 * 366:
            raise MalformedInput("'days' must be between 1 and 1098")
        return today - timedelta(days=days - 1), today
    return parse_day(params.get("from"), "from"), parse_day(params.get("to"), "to")


def scoreboard_charts(report: Mapping[str, Any]) -> dict[str, Chart]:
    """Each section of the report as a chart and its table."""
    stages = report["stages"]
    funnel = stages["funnel"]
    follow = report["follow_up"]
    timing = report["time_to_accept_minutes"]
    sla = report["sla"]
    recycle = report["recycle_reasons"]
    messages = report["messages"]
    revenue = report["revenue"]

    by_source: dict[str, tuple[float, float]] = {}
    for row in revenue["by_source_month"]:
        won, cost = by_source.get(row["source"], (0.0, 0.0))
        by_source[row["source"]] = (won + row["won"], cost + row["cost"])
    reasons = sorted({reason for by in recycle["by_source"].values() for reason in by})
    return {
        "funnel": Chart(
            charts.bars("Leads reaching each stage", [Bar(_words(s["stage"]), s["leads"]) for s in funnel]),
            ("Stage", "Leads", "Re-entries", "From the stage before"),
            [
                (
                    _words(s["stage"]),
                    _count(s["leads"]),
                    _count(s["reentries"]),
                    _rate(s["conversion_from_previous"]),
                )
                for s in funnel
            ],
        ),
        "follow_up": Chart(
            charts.bars(
                "Routed leads and those accepted within the SLA",
                [
                    Bar("routed", follow["routed"]),
                    Bar("accepted", follow["accepted"]),
                    Bar("within SLA", follow["accepted_within_sla"]),
                ],
            ),
            ("Routed", "Accepted", "Accepted within SLA", "Rate within SLA"),
            [
                (
                    _count(follow["routed"]),
                    _count(follow["accepted"]),
                    _count(follow["accepted_within_sla"]),
                    _rate(follow["rate"]),
                )
            ],
        ),
        "time_to_accept": Chart(
            charts.histogram(
                "How long routed leads waited to be accepted",
                [Bar(_minutes(h["at_most"]), h["count"]) for h in timing["histogram"]],
            ),
            ("Accepted within", "Leads"),
            [(_minutes(h["at_most"]), _count(h["count"])) for h in timing["histogram"]],
        ),
        "sla": Chart(
            charts.bars(
                "SLA outcomes",
                [Bar("met", sla["met"]), Bar("escalated", sla["escalated"]), Bar("missed", sla["missed"])],
                css="bar-warn",
            ),
            ("Met", "Escalated", "Missed"),
            [(_count(sla["met"]), _count(sla["escalated"]), _count(sla["missed"]))],
        ),
        "recycle": Chart(
            charts.bars(
                "Recycle reasons", [Bar(_words(reason), n) for reason, n in recycle["total"].items()]
            ),
            ("Source", *(_words(reason) for reason in reasons)),
            [
                (source, *(_count(by.get(reason, 0.0)) for reason in reasons))
                for source, by in recycle["by_source"].items()
            ],
        ),
        "templates": Chart(
            charts.bars(
                "Click rate by template",
                [Bar(m["template"], m["click_rate"] or 0.0, _rate(m["click_rate"])) for m in messages],
            ),
            ("Template", "Sent", "Opened", "Clicked", "Click rate"),
            [
                (
                    m["template"],
                    _count(m.get("sent", 0.0)),
                    _count(m.get("opened", 0.0)),
                    _count(m.get("clicked", 0.0)),
                    _rate(m["click_rate"]),
                )
                for m in messages
            ],
        ),
        "revenue": Chart(
            charts.paired_bars(
                "Revenue won against cost, by source",
                [(source, won, cost) for source, (won, cost) in sorted(by_source.items())],
                ("revenue won", "cost"),
            ),
            ("Source", "Month", "Won", "Cost", "Return"),
            [
                (
                    row["source"],
                    row["month"],
                    _count(row["won"]),
                    _count(row["cost"]),
                    "—" if row["return"] is None else f"{row['return']:.2f}×",
                )
                for row in revenue["by_source_month"]
            ],
        ),
    }


def headline(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The few figures read first."""
    timing = report["time_to_accept_minutes"]
    revenue = report["revenue"]
    return [
        ("Leads routed", _count(report["routed"]["total"])),
        ("Followed up within SLA", _rate(report["follow_up"]["rate"])),
        ("Median time to accept", _minutes(timing["median_at_most"])),
        ("SLA missed", _count(report["sla"]["missed"])),
        ("Revenue won", _count(revenue["won"])),
        ("Return on cost", "—" if revenue["return"] is None else f"{revenue['return']:.2f}×"),
    ]


# --- the activity feed ---

FEED_PAGE = 25
FEED_READ = 200  # entries read per page at most when a kind filter skips some (a bounded read)
KIND_PATTERN = re.compile(r"^[a-z_]{1,40}$")
MAX_FILTER_CHARS = 254
FEED_KINDS = (
    "transition",
    "assigned",
    "notified",
    "sla_started",
    "sla_resolved",
    "sla_escalated",
    "email_sent",
    "email_failed",
    "suppressed",
    "crm_update",
)


@dataclass(frozen=True)
class FeedFilters:
    actor: str | None = None
    kind: str | None = None
    lead: str | None = None  # a lead id (ids only: an email would put PII in the URL)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FeedFilters:
        values = {name: (params.get(name) or "").strip() or None for name in ("actor", "kind", "lead")}
        for name, value in values.items():
            if value is not None and (len(value) > MAX_FILTER_CHARS or not value.isprintable()):
                raise MalformedInput(
                    f"the {name} filter must be printable text of at most {MAX_FILTER_CHARS} characters"
                )
        if values["kind"] is not None and not KIND_PATTERN.match(values["kind"]):
            raise MalformedInput("a kind is lowercase letters and '_', like transition or notified")
        if values["lead"] is not None and "@" in values["lead"]:
            raise MalformedInput("filter by a lead's id (shown on its page), not an email address")
        return cls(**values)

    def query(self) -> dict[str, str]:
        return {
            name: value
            for name, value in (("actor", self.actor), ("kind", self.kind), ("lead", self.lead))
            if value
        }


@dataclass(frozen=True)
class FeedRow:
    at: datetime
    lead_id: str
    kind: str
    actor: str
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class FeedPage:
    rows: list[FeedRow]
    next_cursor: str | None


def _encode(at: str, skip: int) -> str:
    return base64.urlsafe_b64encode(f"{at}\n{skip}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, int]:
    try:
        at, _, skip = base64.urlsafe_b64decode(cursor.encode()).decode().partition("\n")
        return datetime.fromisoformat(at), int(skip)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MalformedInput("that page link is damaged; start again from the first page") from None


FeedReader = Callable[..., Mapping[str, Any]]


def feed_page(read: FeedReader, filters: FeedFilters, cursor: str | None) -> FeedPage:
    """One page of the feed, newest first. `read` is LeadService.activity_feed. The cursor is the time of
    the last entry looked at and how many entries at that very instant were looked at, so entries that
    share an instant are neither repeated nor skipped across pages. A kind filter is applied to a bounded
    read (FEED_READ entries): such a page may hold fewer rows, and the next one goes on from there."""
    until, skip = None, 0
    if cursor:
        last, skip = _decode(cursor)
        until = last + timedelta(microseconds=1)
    want = FEED_PAGE if filters.kind is None else FEED_READ
    fetched = list(read(lead=filters.lead, actor=filters.actor, until=until, limit=want + skip)["entries"])
    # Newest first: the first `skip` entries read are the ones at the cursor's instant already looked at.
    looked = fetched[skip:]
    more = len(fetched) >= want + skip
    if filters.kind is not None:
        matching = [index for index, e in enumerate(looked) if e["kind"] == filters.kind]
        if len(matching) > FEED_PAGE:
            looked, more = looked[: matching[FEED_PAGE - 1] + 1], True
    rows = [_row(e) for e in looked if filters.kind is None or e["kind"] == filters.kind]
    next_cursor = None
    if more and looked:
        tail = looked[-1]["at"]
        next_cursor = _encode(tail, sum(1 for e in fetched[: skip + len(looked)] if e["at"] == tail))
    return FeedPage(rows, next_cursor)


def _row(entry: Mapping[str, Any]) -> FeedRow:
    details = [
        (name, _delivered(value) if name == "deliveries" else _text(value))
        for name, value in sorted(entry.items())
        if name not in ("at", "lead_id", "kind", "actor") and value not in (None, "", [], {})
    ]
    return FeedRow(
        datetime.fromisoformat(entry["at"]), entry["lead_id"], entry["kind"], entry["actor"], details
    )
