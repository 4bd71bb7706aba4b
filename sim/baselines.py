"""Naive routing baselines, run on exactly the behaviour the product saw (the tailored arm's events):

- `fit_at_first_touch`: route when a person first gives an email (a form) if their fit score, by the same
  rules' fit lines, passes the fit threshold: what routing on the form fill alone does. Decided once.
- `static_points`: classic points scoring: the same rules' points with no decay and no caps; route when
  fit and the points earned since the last route both pass the thresholds (a recycled lead's score is
  reset, as marketing automation tools do on recycle).
- `hand_raise_only`: route on each demo or contact-sales request, nothing else.

Sales answers a baseline's route as it answers the product's (`sim.sales`): a lead accepted or disqualified
is not routed again. Scoring goes through the product's own domain (`apply_event`, `score`) on a shadow
profile, so a baseline reads events exactly as the product does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import score
from sim import sales
from sim.drive import START, Route
from sim.population import Person

NAMES = ("fit_at_first_touch", "static_points", "hand_raise_only")


def _day(at: datetime) -> float:
    return (at - START).total_seconds() / 86400


def static_rules(rules: Rules) -> Rules:
    """The rules with decay and caps taken out: points once earned count for good."""
    uncapped = tuple(rule.model_copy(update={"cap": None}) for rule in rules.engagement)
    return rules.model_copy(update={"engagement_half_life_days": 1e9, "engagement": uncapped})


def baseline_routes(
    rules: Rules, events: dict[int, list[Event]], people: Sequence[Person], seed: int = 0
) -> dict[str, list[Route]]:
    """Each baseline's routes for everyone whose events are given (pid -> events in time order)."""
    static = static_rules(rules)
    thresholds = rules.thresholds
    by_pid = {person.pid: person for person in people}
    out: dict[str, list[Route]] = {name: [] for name in NAMES}
    for pid, stream in sorted(events.items()):
        person = by_pid[pid]
        rng = random.Random(f"baseline-sales:{seed}:{pid}")
        shadow = Prospect(lead_id=f"shadow-{pid}", created_at=datetime(2000, 1, 1, tzinfo=UTC))
        done: set[str] = set()
        reset = 0.0  # static points: the points a recycle wiped

        for event in sorted(stream, key=lambda e: e.at):
            apply_event(shadow, event, static)
            day = _day(event.at)
            if "hand_raise_only" not in done and _is_hand_raise(event, rules):
                _route(out, done, "hand_raise_only", person, day, rng)
            if not shadow.email:
                continue
            scores = score(shadow, static, event.at)
            if "fit_at_first_touch" not in done:
                done.add("fit_at_first_touch")  # decided once, at the first touch that names them
                if scores.fit >= thresholds.fit:
                    out["fit_at_first_touch"].append(Route(pid, day, "fit_at_first_touch"))
            if "static_points" not in done and _qualifies(scores.fit, scores.engagement - reset, rules):
                _route(out, done, "static_points", person, day, rng)
                reset = scores.engagement
    return out


def _route(
    out: dict[str, list[Route]], done: set[str], name: str, person: Person, day: float, rng: random.Random
) -> None:
    """Route `person` for baseline `name`; sales' answer says whether the baseline may route them again."""
    out[name].append(Route(person.pid, day, name))
    if sales.answer(person, day, rng).action != "recycle":
        done.add(name)


def _is_hand_raise(event: Event, rules: Rules) -> bool:
    return event.kind is EventKind.TRACK and event.name.lower() in rules.hand_raise_names


def _qualifies(fit: float, engagement: float, rules: Rules) -> bool:
    return fit >= rules.thresholds.fit and engagement >= rules.thresholds.engagement
