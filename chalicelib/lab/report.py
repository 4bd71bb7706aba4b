"""The backtest report: the shards' rows merged and judged against what happened afterwards. Pure.

An outcome is read from a lead's current profile history (`outcome_of`): accepted, opportunity or won count
as good; recycled as not_ready or no_need, disqualified, or returned unworked (the SLA ran out) count as
bad; anything else, and every lead the live rules never sent to sales, cannot be judged and is counted as
such, never guessed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from chalicelib.domain.lifecycle import RecycleReason, State, Trigger
from chalicelib.domain.prospect import Prospect
from chalicelib.lab.choices import template_changes

TOP = 50
SCORE_BUCKET = 10  # points per bar of the score distribution
VERSIONS = ("published", "draft")
BAD_RECYCLES = frozenset({RecycleReason.NOT_READY.value, RecycleReason.NO_NEED.value})
LIMITS = (
    "A backtest cannot know what sales would have done with leads the live rules never sent them: those "
    "leads are counted under 'unjudged', never as good or bad. Sales and CRM events are not replayed; "
    "nurture sends are those that happened, not those the draft would have chosen. Template changes compare "
    "the next template each version would send after a lead's last event in the window, from the templates "
    "active when the backtest started, on priors alone (what each template has earned is not used)."
)


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: str | None  # "good" | "bad" | None: not known (yet)
    won_at: datetime | None


def outcome_of(p: Prospect) -> Outcome:
    """What sales made of the lead the first time they got it."""
    won_at = next((t.at for t in p.history if t.to_state is State.WON), None)
    verdict: str | None = None
    for change in p.history:
        if change.to_state in (State.ACCEPTED, State.OPPORTUNITY, State.WON):
            verdict = "good"
        elif change.trigger in (Trigger.DISQUALIFY, Trigger.SLA_EXPIRED) or (
            change.trigger is Trigger.RECYCLE and (change.reason or "") in BAD_RECYCLES
        ):
            verdict = "bad"
        if verdict is not None:
            break
    return Outcome("good" if won_at is not None else verdict, won_at)


def _days(start: str | datetime, end: str | datetime) -> float:
    begin = datetime.fromisoformat(start) if isinstance(start, str) else start
    finish = datetime.fromisoformat(end) if isinstance(end, str) else end
    return (finish - begin).total_seconds() / 86400


def _week(at: str) -> str:
    year, week, _ = datetime.fromisoformat(at).isocalendar()
    return f"{year}-W{week:02d}"


def _side(rows: Sequence[Mapping[str, Any]], version: str, outcomes: Mapping[str, Outcome]) -> dict[str, Any]:
    routed = [row for row in rows if row[version]["routed_at"]]
    verdicts = Counter(
        (outcomes.get(row["lead"]) or Outcome(None, None)).verdict or "unjudged" for row in routed
    )
    judged = verdicts["good"] + verdicts["bad"]
    days = [_days(row["first_touch"], row[version]["routed_at"]) for row in routed]
    won = [(row, outcome.won_at) for row in rows if (outcome := outcomes.get(row["lead"])) and outcome.won_at]
    early = [_days(row[version]["routed_at"], won_at) for row, won_at in won if row[version]["routed_at"]]
    scores = Counter(int(row[version]["score"] // SCORE_BUCKET) * SCORE_BUCKET for row in rows)
    return {
        "routed": len(routed),
        "by_week": dict(sorted(Counter(_week(r[version]["routed_at"]) for r in routed).items())),
        "by_reason": dict(sorted(Counter(r[version]["reason"] for r in routed).items())),
        "median_days_first_touch_to_routing": round(median(days), 2) if days else None,
        "outcomes": {"good": verdicts["good"], "bad": verdicts["bad"], "unjudged": verdicts["unjudged"]},
        "precision": round(verdicts["good"] / judged, 3) if judged else None,
        "won": {
            "later_won": len(won),
            "routed": len(early),
            "median_days_routed_before_won": round(median(early), 2) if early else None,
        },
        "score_distribution": {f"{low}..{low + SCORE_BUCKET}": n for low, n in sorted(scores.items())},
    }


def _changed(rows: Sequence[Mapping[str, Any]], routed_by: str, not_by: str) -> list[dict[str, Any]]:
    picked = [row for row in rows if row[routed_by]["routed_at"] and not row[not_by]["routed_at"]]
    picked.sort(key=lambda row: (-row[routed_by]["score"], row["lead"]))
    return [
        {
            "lead": row["lead"],
            "why": row[routed_by]["why"],
            "routed_at": row[routed_by]["routed_at"],
            f"score_{routed_by}": row[routed_by]["score"],
            f"score_{not_by}": row[not_by]["score"],
        }
        for row in picked[:TOP]
    ]


def build_report(
    rows: Sequence[Mapping[str, Any]],
    outcomes: Mapping[str, Outcome],
    *,
    window: Mapping[str, Any],
    catalogue: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The merge function: every shard's rows and the leads' outcomes, side by side per rule set.
    `catalogue`: what the template choices were made from ({"active", "templates"}: counts)."""
    events = sum(int(row["events"]) for row in rows)
    if not rows:
        return {"window": dict(window), "events": 0, "leads": 0, "empty": True,
                "message": "no archived events in this window: nothing to replay"}  # fmt: skip
    gained = [r for r in rows if r["draft"]["routed_at"] and not r["published"]["routed_at"]]
    lost = [r for r in rows if r["published"]["routed_at"] and not r["draft"]["routed_at"]]
    return {
        "window": dict(window),
        "events": events,
        "leads": len(rows),
        "empty": False,
        "published": _side(rows, "published", outcomes),
        "draft": _side(rows, "draft", outcomes),
        "gained": {"count": len(gained), "top": _changed(rows, "draft", "published")},
        "lost": {"count": len(lost), "top": _changed(rows, "published", "draft")},
        "unjudged_leads": sum(
            1 for r in rows if (outcomes.get(r["lead"]) or Outcome(None, None)).verdict is None
        ),
        "template_changes": template_changes(rows, catalogue),  # None: rows made without a catalogue
        "limits": LIMITS,
    }
