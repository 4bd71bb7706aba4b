"""What the console's marketing pages show, arranged from the marketing, scoreboard and nurture use cases: the
templates list with each one's sends, opens, clicks and click rate; a diff between two versions of a template
or of the rules (difflib, shown as escaped text); the problems the save checks find, each at its line.

No business logic lives here: checks are the save's own (`TemplateRenderer.validate`, `check_rules_text`),
figures are the scoreboard's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.template_checks import problem_dict
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
