"""What the console's marketing pages show, arranged from the marketing, scoreboard and nurture use cases: the
templates list with each one's sends, opens, clicks and click rate; a diff between two versions of a template
or of the rules (difflib, shown as escaped text); the problems the save checks find, each at its line; a rules
backtest's report, published and draft side by side.

No business logic lives here: checks are the save's own (`TemplateRenderer.validate`, `check_rules_text`),
figures are the scoreboard's, a backtest's are its report's (usecases/backtest.py).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from chalicelib.adapters.template_checks import problem_dict
from chalicelib.console import charts
from chalicelib.errors import LeadloopError, MalformedInput
from chalicelib.usecases.rules_text import check_rules_text

MAX_DIFF_LINES = 2_000  # a diff longer than this is cut (templates and rules are far shorter)
STATUS_ACTIONS = {"paused": "Pause", "active": "Resume", "deleted": "Delete"}
STATUS_DONE = {
    "paused": "Paused: nurture will not choose this template until it is resumed.",
    "active": "Resumed: nurture may choose this template again.",
    "deleted": "Deleted: never chosen again; its versions stay readable.",
}
TEMPLATE_DONE = {
    "saved": "Saved: this version is now in force.",
    "unchanged": "Nothing changed: the text is the version in force.",
    "restored": "Restored: that version's text is saved as the newest version, now in force.",
    "tested": "Test sent: look in the outbox (or your inbox when SES is configured).",
    **STATUS_DONE,
}


@dataclass(frozen=True, slots=True)
class TemplateRow:
    name: str
    subject: str
    version: int
    status: str
    topics: tuple[str, ...]
    sent: float
    opened: float
    clicked: float
    click_rate: float | None


def template_rows(
    listing: Iterable[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]]
) -> list[TemplateRow]:
    """Each template with its status and the scoreboard's figures (all time) beside it, by name."""
    figures = {str(m["template"]): m for m in messages}
    rows = []
    for item in listing:
        found = figures.get(item["name"], {})
        rows.append(
            TemplateRow(
                name=item["name"],
                subject=item["subject"],
                version=int(item["version"]),
                status=item["status"],
                topics=tuple(item["topics"]),
                sent=float(found.get("sent", 0.0)),
                opened=float(found.get("opened", 0.0)),
                clicked=float(found.get("clicked", 0.0)),
                click_rate=found.get("click_rate"),
            )
        )
    return sorted(rows, key=lambda row: (row.status != "active", row.name))


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # add | del | hunk | same | head
    text: str


def diff(old: str, new: str, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff of two texts, line by line with its kind, for display as text (never markup)."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm="", n=3
    )
    shown = []
    for index, line in enumerate(lines):
        if index >= MAX_DIFF_LINES:
            shown.append(DiffLine("hunk", f"… cut at {MAX_DIFF_LINES} lines"))
            break
        if line.startswith(("---", "+++")) and index < 2:
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        shown.append(DiffLine(kind, line))
    return shown


def version_param(params: Mapping[str, str], name: str) -> int | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise MalformedInput(f"{name} must be a version number, like 3")
    return int(value)


def problems_of(error: LeadloopError) -> list[dict[str, Any]]:
    """The problems a refused template or rules save lists (each with its line), or the message alone."""
    details = error.details
    if isinstance(details, list) and all(isinstance(item, dict) for item in details):
        return [_shown(item) for item in details]
    if isinstance(details, dict) and "line" in details:
        return [_shown({"line": details["line"], "message": error.message})]
    return [_shown({"message": error.message})]


def _shown(problem: Mapping[str, Any]) -> dict[str, Any]:
    """Every problem with the same keys (line and field may be None), as the page and console.js read it."""
    return {"line": problem.get("line"), "field": problem.get("field"), "message": str(problem["message"])}


def template_problems(problems: Iterable[Any]) -> list[dict[str, Any]]:
    return [_shown(problem_dict(problem)) for problem in problems]


def rules_problems(text: str) -> list[dict[str, Any]]:
    """The problems PUT /rules would refuse `text` with (each with its field and line); [] when it passes."""
    _, problems = check_rules_text(text)
    return [_shown(problem.as_dict()) for problem in problems]


def problem_lines(problems: Iterable[Mapping[str, Any]]) -> list[int]:
    return sorted({int(p["line"]) for p in problems if p.get("line")})


# --- the rules lab: a backtest report beside the draft ---

BACKTEST_DAYS = 30  # the window the form offers first: the last month
SHOWN_CHANGES = 10  # gained and lost leads listed on the page (the report keeps the top 50)


def backtest_window(today: date) -> tuple[str, str]:
    """The form's default window: the last BACKTEST_DAYS days up to today, as ISO dates."""
    return (today - timedelta(days=BACKTEST_DAYS)).isoformat(), today.isoformat()


@dataclass(frozen=True, slots=True)
class SideBySide:
    label: str
    published: str
    draft: str
    changed: bool


def _figure(value: Any, kind: str = "") -> str:
    if value is None:
        return "—"
    if kind == "percent":
        return f"{float(value):.0%}"
    if kind == "days":
        return f"{float(value):g} days"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _pairs(published: Mapping[str, Any], draft: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    keys = sorted(set(published) | set(draft), key=_bucket_order)
    return [(key, int(published.get(key, 0)), int(draft.get(key, 0))) for key in keys]


def _bucket_order(key: str) -> tuple[float, str]:
    """Score buckets ('10..20') in numeric order, anything else (weeks, reasons) by name."""
    low = key.split("..", 1)[0]
    try:
        return float(low), key
    except ValueError:
        return float("inf"), key


def _changes(found: Mapping[str, Any], routed_by: str, not_by: str) -> dict[str, Any]:
    top = [
        {
            "lead": item["lead"],
            "href": "/console/leads/" + quote(str(item["lead"]), safe=""),
            "why": item.get("why") or "—",
            "routed_at": item.get("routed_at"),
            "score": _figure(item.get(f"score_{routed_by}")),
            "other_score": _figure(item.get(f"score_{not_by}")),
        }
        for item in found.get("top", [])[:SHOWN_CHANGES]
    ]
    return {"count": int(found.get("count", 0)), "top": top}


def backtest_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The backtest report (chalicelib/lab/report.py) arranged for the page: published and draft side by
    side, row by row, plus the score distribution as paired bars. Figures are the report's, only formatted."""
    if report.get("empty"):
        return {"empty": True, "message": report.get("message", ""), "window": report.get("window", {})}
    pub, dra = report["published"], report["draft"]

    def row(label: str, a: Any, b: Any, kind: str = "") -> SideBySide:
        return SideBySide(label, _figure(a, kind), _figure(b, kind), a != b)

    headline = [
        row("Leads routed to sales", pub["routed"], dra["routed"]),
        row(
            "Median days, first touch to routing",
            pub["median_days_first_touch_to_routing"],
            dra["median_days_first_touch_to_routing"],
            "days",
        ),
        row("Precision (good of judged)", pub["precision"], dra["precision"], "percent"),
        row("Good: accepted, opportunity or won", pub["outcomes"]["good"], dra["outcomes"]["good"]),
        row(
            "Bad: recycled not ready/no need, disqualified, unworked",
            pub["outcomes"]["bad"],
            dra["outcomes"]["bad"],
        ),
        row("Routed but not judged yet", pub["outcomes"]["unjudged"], dra["outcomes"]["unjudged"]),
        row(
            "Later-won leads routed",
            f"{pub['won']['routed']} of {pub['won']['later_won']}",
            f"{dra['won']['routed']} of {dra['won']['later_won']}",
        ),
        row(
            "Median days routed before won",
            pub["won"]["median_days_routed_before_won"],
            dra["won"]["median_days_routed_before_won"],
            "days",
        ),
    ]
    scores = _pairs(pub["score_distribution"], dra["score_distribution"])
    return {
        "empty": False,
        "window": report["window"],
        "events": report["events"],
        "leads": report["leads"],
        "published_version": (report.get("rules") or {}).get("published_version"),
        "headline": headline,
        "by_week": _pairs(pub["by_week"], dra["by_week"]),
        "by_reason": _pairs(pub["by_reason"], dra["by_reason"]),
        "scores": scores,
        "score_chart": charts.paired_bars(
            "Leads by score at the end of the window, published against draft",
            [(f"{label} points", float(a), float(b)) for label, a, b in scores],
            ("Published", "Draft"),
        ),
        "gained": _changes(report["gained"], "draft", "published"),
        "lost": _changes(report["lost"], "published", "draft"),
        "unjudged_leads": report["unjudged_leads"],
        "template_changes": report.get("template_changes"),
        "limits": report["limits"],
    }


class BacktestDrafts:
    """Job id -> the draft text the console started that backtest with, so the report is shown beside the
    draft it judged (a reload or the no-script Refresh link brings both back). Kept in this process, bounded
    as BacktestJobs keeps the jobs themselves: the oldest are forgotten first."""

    def __init__(self, limit: int = 50) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._drafts: dict[str, str] = {}

    def put(self, job_id: str, source: str) -> None:
        with self._lock:
            self._drafts[job_id] = source
            while len(self._drafts) > self._limit:
                self._drafts.pop(next(iter(self._drafts)))

    def get(self, job_id: str) -> str | None:
        with self._lock:
            return self._drafts.get(job_id)


BACKTEST_ID = re.compile(r"^bt-[0-9a-f]{1,64}$")
BACKTEST_FAILED = "The backtest failed on our side; it was logged. Start it again, or try a shorter window."


def backtest_id(value: str) -> str:
    if not BACKTEST_ID.match(value):
        raise MalformedInput("that is not a backtest id")
    return value


def backtest_panel(job_id: str, job: Mapping[str, Any] | None, *, draft_kept: bool = True) -> dict[str, Any]:
    """The rules lab panel for one job: its status and progress while it runs (with the URL console.js polls
    and the Refresh link that works without it), the arranged report when done; `job` None when it is no
    longer kept; `draft_kept` False when this process no longer has the draft it was started with."""
    quoted = quote(job_id, safe="")
    status = str(job["status"]) if job is not None else "forgotten"
    report = job.get("report") if job is not None else None
    return {
        "id": job_id,
        "status": status,
        "running": status in ("queued", "running"),
        "percent": round(100 * float(job.get("progress") or 0.0)) if job is not None else 0,
        "poll": f"/console/rules/backtest/{quoted}",
        "refresh": f"/console/rules?backtest={quoted}",
        "report": backtest_report(report) if status == "done" and report else None,
        "failed": BACKTEST_FAILED if status == "failed" else None,
        "draft_kept": draft_kept,
    }
