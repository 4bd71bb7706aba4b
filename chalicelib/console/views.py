"""What the console's pages show, built from the same stores and use cases the JSON API reads: the sales
inbox (a page of the pool, each lead with why and when it was routed, its SLA and when it was last seen) and
the lead page (the summary, one journey timeline merged from the profile and its activity records, the next
planned touch with the chooser's why, and a chart of how engagement decays).

No business logic lives here: scores, reasons and states come from the summary; this module only arranges
them for reading.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from markupsafe import Markup

from chalicelib.console import charts
from chalicelib.domain.engagement_curve import engagement_curve
from chalicelib.domain.lifecycle import RECYCLE_REASONS, State
from chalicelib.domain.messaging import Choice, why_not_emailed
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.errors import MalformedInput
from chalicelib.usecases.ports import InboxLead, InboxQuery, ProspectRepository

INBOX_STATES = (State.SALES_READY.value, State.ACCEPTED.value)
PAGE_SIZE = 25
SLA_FILTERS = ("waiting", "escalated")
MAX_SEARCH_CHARS = 100

# The documented recycle reasons (README "Recycling a lead"), in words a salesperson picks from.
RECYCLE_LABELS = {
    "not_ready": "Not ready to buy yet",
    "no_budget": "No budget",
    "no_authority": "Not the decision maker",
    "no_need": "No need for the product",
    "bad_timing": "Bad timing",
    "unresponsive": "Did not respond",
    "wrong_contact": "Wrong contact",
    "other": "Other (say why in the note)",
}
assert set(RECYCLE_LABELS) == set(RECYCLE_REASONS), "every documented recycle reason has a label"


@dataclass(frozen=True)
class InboxFilters:
    state: str | None = None  # None: both inbox states, sales-ready first
    owner: str | None = None
    sla: str | None = None
    min_score: float | None = None
    text: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> InboxFilters:
        state = params.get("state") or None
        if state is not None and state not in INBOX_STATES:
            raise MalformedInput(f"the inbox shows {' or '.join(INBOX_STATES)} leads, not {state!r}")
        sla = params.get("sla") or None
        if sla is not None and sla not in SLA_FILTERS:
            raise MalformedInput(f"SLA filter must be one of: {', '.join(SLA_FILTERS)}")
        min_score = None
        if params.get("min_score"):
            try:
                min_score = float(params["min_score"])
            except ValueError:
                raise MalformedInput("the minimum score must be a number") from None
        text = (params.get("q") or "").strip() or None
        if text is not None and len(text) > MAX_SEARCH_CHARS:
            raise MalformedInput(f"search for at most {MAX_SEARCH_CHARS} characters")
        owner = (params.get("owner") or "").strip() or None
        return cls(state=state, owner=owner, sla=sla, min_score=min_score, text=text)


@dataclass(frozen=True)
class InboxRow:
    lead_id: str
    name: str
    email: str | None
    company: str
    state: str
    owner: str | None
    score: float
    why: str | None
    routed_at: datetime | None
    sla_status: str | None
    sla_due_at: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    next_cursor: str | None


def _encode_cursor(state: str, inner: str | None) -> str:
    return base64.urlsafe_b64encode(f"{state}\n{inner or ''}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str | None]:
    try:
        state, _, inner = base64.urlsafe_b64decode(cursor.encode()).decode().partition("\n")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MalformedInput("that page link is damaged; start again from the first page") from None
    if state not in INBOX_STATES:
        raise MalformedInput("that page link is damaged; start again from the first page")
    return state, inner or None


def inbox(
    prospects: ProspectRepository, filters: InboxFilters, cursor: str | None, now: datetime
) -> InboxPage:
    """One page of the inbox: sales-ready leads, then accepted ones (or the one state filtered on), newest
    routing first within a state, from the sparse inbox index. The cursor walks across both states."""
    states = [filters.state] if filters.state else list(INBOX_STATES)
    state, inner = _decode_cursor(cursor) if cursor else (states[0], None)
    if state not in states:
        raise MalformedInput("that page link belongs to another filter; start again from the first page")
    leads: list[InboxLead] = []
    next_cursor: str | None = None
    for position in range(states.index(state), len(states)):
        current = states[position]
        query = InboxQuery(
            state=current,
            owner=filters.owner,
            sla_status=filters.sla,
            min_score=filters.min_score,
            text=filters.text,
        )
        found = prospects.inbox(query, limit=PAGE_SIZE - len(leads), cursor=inner)
        leads.extend(found.leads)
        inner = found.cursor
        if inner is not None:
            next_cursor = _encode_cursor(current, inner)
            break
        if position + 1 < len(states):
            next_cursor = _encode_cursor(states[position + 1], None)
            if len(leads) >= PAGE_SIZE:
                break
        else:
            next_cursor = None
        inner = None
    return InboxPage([_inbox_row(lead) for lead in leads], next_cursor)


def _inbox_row(lead: InboxLead) -> InboxRow:
    """A lead as the inbox shows it: why and when it was routed, its SLA clock, when last seen."""
    p = lead.prospect
    routed = _routing(p)
    return InboxRow(
        lead_id=p.lead_id,
        name=p.name,
        email=p.email,
        company=p.company,
        state=p.state.value,
        owner=p.owner,
        score=lead.score,
        why=routed.reason if routed is not None else None,
        routed_at=lead.routed_at,
        sla_status=p.sla.status if p.sla is not None else None,
        sla_due_at=p.sla.due_at if p.sla is not None else None,
        last_seen=p.last_activity_at,
    )


def _routing(p: Prospect) -> Any:
    return next((t for t in reversed(p.history) if t.to_state is State.SALES_READY), None)


# --- the lead page ---


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # page | event | email | transition | activity
    title: str
    details: list[tuple[str, str]] = field(default_factory=list)


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def timeline(summary: Mapping[str, Any]) -> list[TimelineEntry]:
    """The journey in order, oldest first: pages read, events and key moments, emails with their outcomes,
    state transitions, and the activity records (sales actions, notifications, SLA events)."""
    entries: list[TimelineEntry] = []
    # The summary lists pages, moments and messages newest first: oldest first here, so that entries at the
    # same instant (one batch) keep the order they happened in once sorted.
    for page in reversed(summary.get("pages") or []):
        entries.append(_entry(page["at"], "page", f"Read {page['path']}", [("title", page.get("title"))]))
    for moment in reversed(summary.get("key_moments") or []):
        entries.append(_entry(moment["at"], "event", moment["text"], [("kind", moment["kind"])]))
    for other in reversed(summary.get("other_events") or []):  # events no rule scores, with what they were
        properties = [
            (key.replace("_", " "), value) for key, value in (other.get("properties") or {}).items()
        ]
        entries.append(_entry(other["at"], "event", other["name"], [("kind", "not scored"), *properties]))
    for message in reversed(summary.get("messages") or []):
        outcomes = ", ".join(f"{name} {count}" for name, count in (message.get("outcomes") or {}).items())
        entries.append(
            _entry(
                message["at"],
                "email",
                f"Email {message['template']} v{message['version']} ({message.get('status') or 'sent'})",
                [
                    ("why", message.get("why")),
                    ("outcomes", outcomes or "none yet"),
                    ("error", message.get("error")),
                ],
            )
        )
    for change in summary.get("history") or []:
        entries.append(
            _entry(
                change["at"],
                "transition",
                f"{_words(change['from'])} → {_words(change['to'])}",
                [
                    ("by", change.get("actor")),
                    ("trigger", _words(change.get("trigger"))),
                    ("reason", change.get("reason")),
                    ("note", change.get("note")),
                ],
            )
        )
    for record in reversed(summary.get("activity") or []):
        if record["kind"] in TRANSITION_RECORDS:  # the profile's history above already shows the move
            continue
        data = {k: _delivered(v) if k == "deliveries" else v for k, v in record.items()}
        data = {k: v for k, v in data.items() if k not in ("at", "kind", "actor")}
        entries.append(
            _entry(
                record["at"],
                "activity",
                _words(record["kind"]).capitalize(),
                [("by", record.get("actor")), *sorted((k, _text(v)) for k, v in data.items())],
            )
        )
    return sorted(entries, key=lambda entry: entry.at)


TRANSITION_RECORDS = frozenset({"transition"})


def _delivered(deliveries: Any) -> str:
    """A notification's deliveries as 'outbox: ok, slack: failed (...)', without local file paths."""
    if not isinstance(deliveries, list):
        return _text(deliveries)
    shown = []
    for item in deliveries:
        if isinstance(item, dict):
            ok = item.get("ok")
            shown.append(
                f"{item.get('channel')}: {'ok' if ok else 'failed (' + str(item.get('detail')) + ')'}"
            )
    return ", ".join(shown)


def _entry(at: str, kind: str, title: str, details: Iterable[tuple[str, Any]]) -> TimelineEntry:
    moment = _at(at)
    assert moment is not None
    return TimelineEntry(moment, kind, title, [(k, _text(v)) for k, v in details if v not in (None, "")])


def _words(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return str(value)


# Which actions a lead page offers in each state (the lifecycle refuses the rest with a 409 all the same).
ACTIONS_BY_STATE: dict[str, tuple[str, ...]] = {
    State.SALES_READY.value: ("accept", "recycle", "disqualify", "reassign"),
    State.ACCEPTED.value: ("opportunity", "won", "lost", "recycle", "disqualify", "reassign"),
    State.OPPORTUNITY.value: ("won", "lost", "recycle", "reassign"),
}


def actions_for(state: str) -> tuple[str, ...]:
    return ACTIONS_BY_STATE.get(state, ())


def command_fields(action: str, form: Mapping[str, str], today: date) -> dict[str, Any]:
    """A lead page form as the JSON body the sales API takes (commands.parse_command validates it)."""
    body: dict[str, Any] = {}
    for name in ("note", "owner", "reason"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    if form.get("amount", "").strip():
        try:
            body["amount"] = float(form["amount"].replace(",", ""))
        except ValueError:
            raise MalformedInput("the amount must be a number, like 12000") from None
    if action == "recycle" and form.get("revisit_on", "").strip():
        body["revisit_in_days"] = _days_until(form["revisit_on"].strip(), today)
    return body


def _days_until(value: str, today: date) -> int:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise MalformedInput("the revisit date must be a date, like 2026-12-01") from None
    if day < today:
        raise MalformedInput("the revisit date must be today or later")
    return (day - today).days


# What the lead page says after an action went through (the action's name is the only thing in the URL).
ACTION_DONE = {
    "accept": "Accepted: the lead is yours to work.",
    "recycle": "Recycled: the lead is back in nurture with your reason.",
    "disqualify": "Disqualified.",
    "opportunity": "Marked as an open opportunity.",
    "won": "Marked won.",
    "lost": "Marked lost.",
    "reassign": "Reassigned to the new owner.",
}


# --- the lead page: what goes next, and how engagement cools ---


@dataclass(frozen=True)
class NextTouch:
    at: datetime | None
    template: str | None  # None: no email is planned
    why: str


def next_touch(
    p: Prospect, choose: Callable[[Prospect, datetime], Choice | None], now: datetime
) -> NextTouch:
    """The next planned email and the chooser's why (NurtureService.choose, seeded as the sweep is, so this
    is what the sweep will send if nothing changes before then); or why none is planned."""
    unreachable = why_not_emailed(p)
    if unreachable is not None:
        return NextTouch(None, None, unreachable)
    at = max(now, p.next_touch_at) if p.next_touch_at is not None else now
    choice = choose(p, at)
    if choice is None:
        return NextTouch(p.next_touch_at, None, p.nurture_waiting or "no template fits this lead yet")
    return NextTouch(at, choice.template.name, choice.why)


@dataclass(frozen=True)
class DecayChart:
    svg: Markup
    half_life_days: float
    rows: list[tuple[str, str]]  # (day, engagement): the chart as a table


def decay_chart(p: Prospect, rules: Rules, now: datetime) -> DecayChart:
    curve = engagement_curve(p, rules, now)
    points = [(float(point.offset_days), point.engagement) for point in curve]
    first, last = curve[0].offset_days, curve[-1].offset_days
    svg = charts.line(
        f"Engagement by day, {-first} days back to {last} days ahead if nothing new happens",
        points,
        mark_x=0.0,
        x_labels=[(float(first), f"{first}d"), (0.0, "today"), (float(last), f"+{last}d")],
        css="chart decay",
    )
    rows = [
        ("today" if point.offset_days == 0 else f"{point.offset_days:+d} d", f"{point.engagement:g}")
        for point in curve[:: max(1, len(curve) // 8)]
    ]
    return DecayChart(svg, rules.engagement_half_life_days, rows)
