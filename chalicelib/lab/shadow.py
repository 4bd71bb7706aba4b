"""Shadow scoring of a rules draft on live traffic (README "Rules lab"): pure, no I/O.

A shadow is a draft published beside the live rules for a number of days. After the worker applies a
prospect's events with the live rules, `observe` applies the same events to a deep copy of the profile as
it was before them, with the shadow's rules, and reassesses the copy: what the copy decided (effects, an
owner, a touch) is thrown away; only comparison facts are kept, one row per lead: the first routing each
rule set made since the shadow began (when, why) and both scores after the latest batch. Each batch starts
the copy from the live profile, so the shadow sees the lifecycle sales actually drove, and a routing is
counted once per lead and rule set however often it would repeat (the rows keep the first one).

`comparison` turns the rows into the backtest's report (chalicelib/lab/report.py): `published` is the live
rules, `draft` the shadow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.apply import apply_event
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.decisions import InvalidCommand
from chalicelib.domain.events import Event
from chalicelib.domain.lifecycle import IllegalTransition, State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_copy import copy_prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.routing import LOW_FIT_HAND_RAISE, OPENINGS
from chalicelib.domain.rules import Rules
from chalicelib.lab.choices import next_choice, template_changes
from chalicelib.lab.replay import ROUTED
from chalicelib.lab.report import Outcome, build_report

MAX_DAYS = 30
WHY_CHARS = 300  # a routing's why, as kept in a row (bounded like every stored string)
LIMITS = (
    "Shadow scoring sees live traffic only since the shadow began. Each batch starts the shadow's copy "
    "from the live profile, so a lead the live rules routed is sales_ready for the shadow too; the "
    "shadow's own routings are never sent to sales, so their outcomes cannot be judged (unjudged). "
    "Template changes compare the next template each rule set would send after a lead's latest batch, from "
    "the templates active then, on priors alone (what each template has earned is not used)."
)


@dataclass(frozen=True, slots=True)
class Shadow:
    id: str
    rules: Rules
    source: str  # the draft's text, as PUT /rules would store it
    based_on: int | None  # the saved rules version the draft came from, if any
    days: int
    started_at: datetime
    ends_at: datetime
    author: str

    def active(self, now: datetime) -> bool:
        return self.started_at <= now < self.ends_at

    def days_left(self, now: datetime) -> float:
        return round(max(0.0, (self.ends_at - now) / timedelta(days=1)), 2)


def _routing(p: Prospect, since: int) -> dict[str, Any] | None:
    """The first routing among the transitions from index `since` on (those this batch added)."""
    for change in p.history[since:]:
        if change.trigger in ROUTED and change.to_state is State.SALES_READY:
            why = change.reason or ""
            reason = change.trigger.value
            if why.startswith(OPENINGS[LOW_FIT_HAND_RAISE]):
                reason = LOW_FIT_HAND_RAISE
            return {"routed_at": change.at.isoformat(), "reason": reason, "why": why[:WHY_CHARS]}
    return None


def observe(
    rules: Rules,
    before: Prospect,
    events: Sequence[Event],
    live: Prospect,
    live_score: float,
    now: datetime,
    *,
    choosing: tuple[Rules, Sequence[TemplateMeta]] | None = None,
    owned: bool = False,
) -> dict[str, Any]:
    """One lead's comparison facts for one batch: `before` is the profile as loaded, `live` the same profile
    after the live rules applied `events`; `choosing` (the live rules and the active templates) adds each
    rule set's next template. `owned`: `before` is a copy made for the shadow alone (the worker's), so the
    shadow's events are applied to it in place; otherwise to a deep copy (the copy costs more than the
    shadow's own scoring: bench/lab.py "shadow")."""
    since = len(before.history)
    shadow = before if owned else copy_prospect(before)
    for event in sorted(events, key=lambda e: e.at):
        try:
            apply_event(shadow, event, rules)
        except (IllegalTransition, InvalidCommand):
            continue  # as the worker does: noted and ignored
    scores, _ = reassess(shadow, rules, now)  # its effects are decided and dropped: never performed
    first = min((e.at for e in events), default=now)
    row: dict[str, Any] = {
        "first_touch": first.isoformat(),
        "live_score": float(live_score),
        "shadow_score": float(scores.total),
        "live": _routing(live, since),
        "shadow": _routing(shadow, since),
        "at": now.isoformat(),
    }
    if choosing is not None:
        live_rules, catalogue = choosing
        live_next, live_why = next_choice(live, catalogue, live_rules, now, None)
        shadow_next, shadow_why = next_choice(shadow, catalogue, rules, now, scores)
        row["next"] = {"live": live_next, "shadow": shadow_next}
        # The whys are the report's examples, shown only for a change: kept only then (a row stays small).
        if live_next != shadow_next:
            row["next_why"] = {"live": live_why[:WHY_CHARS], "shadow": shadow_why[:WHY_CHARS]}
    return row


def _side(row: Mapping[str, Any], which: str) -> dict[str, Any]:
    routed = row.get(which) or {}
    return {
        "routed_at": routed.get("routed_at"),
        "reason": routed.get("reason"),
        "why": routed.get("why"),
        "score": float(row.get(f"{which}_score") or 0.0),
    }


def as_report_rows(rows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """lead id -> stored row, in the backtest's row shape (published = live, draft = shadow)."""
    found: list[dict[str, Any]] = []
    for lead, row in sorted(rows.items()):
        published, draft = _side(row, "live"), _side(row, "shadow")
        chose = row.get("next")
        if chose is not None:
            published["next"], draft["next"] = chose.get("live"), chose.get("shadow")
        out = {"lead": lead, "events": 0, "first_touch": row.get("first_touch") or row.get("at"),
               "published": published, "draft": draft}  # fmt: skip
        if chose is not None and published["next"] != draft["next"]:
            why = row.get("next_why") or {}
            out["next_why"] = {"published": why.get("live", ""), "draft": why.get("shadow", "")}
        found.append(out)
    return found


def comparison(
    shadow: Shadow,
    rows: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, Outcome],
    now: datetime,
    catalogue: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The backtest's report over the leads the shadow saw, with the routing counts and the score shift.
    `catalogue`: the active templates' counts ({"active", "compared"}) shown beside the template changes."""
    report_rows = as_report_rows(rows)
    window = {"from": shadow.started_at.isoformat(), "to": min(now, shadow.ends_at).isoformat()}
    report = build_report(report_rows, outcomes, window=window)
    report.pop("events", None)  # the shadow counts leads, not events
    # Over the leads whose rows carry choices (a worker without templates records none): None if no lead's do.
    chosen = [row for row in report_rows if "next" in row["published"]]
    report["template_changes"] = template_changes(chosen, catalogue)
    live = {r["lead"] for r in report_rows if r["published"]["routed_at"]}
    shadowed = {r["lead"] for r in report_rows if r["draft"]["routed_at"]}
    shifts = [r["draft"]["score"] - r["published"]["score"] for r in report_rows]
    report["routed_by"] = {
        "live_only": len(live - shadowed),
        "shadow_only": len(shadowed - live),
        "both": len(live & shadowed),
    }
    report["score_shift"] = {
        "mean": round(sum(shifts) / len(shifts), 2) if shifts else None,
        "raised": sum(1 for s in shifts if s > 0),
        "lowered": sum(1 for s in shifts if s < 0),
    }
    if report.get("empty"):
        report["message"] = "no events reached the worker since the shadow began"
    report["limits"] = LIMITS
    return report
