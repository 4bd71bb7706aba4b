"""Naive routing baselines, run on exactly the behaviour the product saw (the tailored arm's events):

- `fit_at_first_touch`: route when a person first gives an email (a form) if their fit score, by the same
  rules' fit lines, passes the fit threshold: what routing on the form fill alone does.
- `static_points`: classic points scoring, the same rules' points and caps but no decay: route the first time
  fit and accumulated engagement both pass their thresholds.
- `hand_raise_only`: route on a demo or contact-sales request, nothing else.

Each baseline routes a person at most once (at the first moment its condition holds): with sales' answers
unknown to a baseline, a second route would repeat the first. Scoring goes through the product's own domain
(`apply_event`, `score`) on a shadow profile, so a baseline reads events exactly as the product does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import score
from sim.drive import START, Route

NAMES = ("fit_at_first_touch", "static_points", "hand_raise_only")


def _day(at: datetime) -> float:
    return (at - START).total_seconds() / 86400


def baseline_routes(rules: Rules, events: dict[int, list[Event]]) -> dict[str, list[Route]]:
    """Each baseline's routes for everyone whose events are given (pid -> events in time order)."""
    static = rules.model_copy(update={"engagement_half_life_days": 1e9})  # half-life of ~3 million years
    thresholds = rules.thresholds
    out: dict[str, list[Route]] = {name: [] for name in NAMES}
    for pid, stream in sorted(events.items()):
        shadow = Prospect(lead_id=f"shadow-{pid}", created_at=datetime(2000, 1, 1, tzinfo=UTC))
        done: set[str] = set()
        for event in sorted(stream, key=lambda e: e.at):
            apply_event(shadow, event, static)
            day = _day(event.at)
            if "hand_raise_only" not in done and _is_hand_raise(event, rules):
                done.add("hand_raise_only")
                out["hand_raise_only"].append(Route(pid, day, "hand-raise"))
            if not shadow.email:
                continue
            scores = score(shadow, static, event.at)
            if "fit_at_first_touch" not in done:
                done.add("fit_at_first_touch")  # decided once, at the first touch that names them
                if scores.fit >= thresholds.fit:
                    out["fit_at_first_touch"].append(Route(pid, day, "fit at first touch"))
            if "static_points" not in done and _qualifies(scores.fit, scores.engagement, rules):
                done.add("static_points")
                out["static_points"].append(Route(pid, day, "static points"))
    return out


def _is_hand_raise(event: Event, rules: Rules) -> bool:
    return event.kind is EventKind.TRACK and event.name.lower() in rules.hand_raise_names


def _qualifies(fit: float, engagement: float, rules: Rules) -> bool:
    return fit >= rules.thresholds.fit and engagement >= rules.thresholds.engagement
