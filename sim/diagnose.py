"""Why routing is wrong where it is: the product's wrong routes by segment, route path and timing against the
person's hidden window, and the ready buyers it missed by the first cause that explains the miss.

The route path is read from the reason the product gave sales (`chalicelib.domain.routing.OPENINGS`), so a
route is attributed to the rule path that made it. A missed buyer's cause is found by replaying their events
through the product's own scoring (`apply_event`, `score`, the routing intent check) on a shadow profile:
the shadow has no sales answers, so a hold is read from the routes themselves (routed before the window and
never again inside it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.routing import (
    HAND_RAISE,
    LOW_FIT_HAND_RAISE,
    OPENINGS,
    QUALIFIED,
    RECYCLE_SURGE,
    REQUALIFIED,
    intent_reason,
)
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import day_of, score
from sim.drive import START, Route
from sim.measure import ready_buyers
from sim.population import FREE_MAILBOXES, Person


def path_of(why: str) -> str:
    """The routing path a reason was written for (the opening of each path's reason)."""
    if why.startswith("hand-raise"):
        return HAND_RAISE
    for path in (LOW_FIT_HAND_RAISE, RECYCLE_SURGE, REQUALIFIED):
        if why.startswith(OPENINGS[path]):
            return path
    return QUALIFIED


def timing(person: Person, day: float) -> str:
    """Where a wrong route falls against the person's window: none, before it (by how long) or after it."""
    if person.window is None:
        return "no window"
    start, end = person.window
    if day >= end:
        return "after window"
    ahead = start - day
    if ahead <= 7:
        return "0-7 days early"
    if ahead <= 21:
        return "8-21 days early"
    return ">21 days early"


def wrong_routes(people: Sequence[Person], routes: Sequence[Route]) -> dict[str, dict[str, int]]:
    """Wrong routes counted by segment, by path, by timing, and by the three together."""
    by_pid = {p.pid: p for p in people}
    out: dict[str, Counter[str]] = {k: Counter() for k in ("segment", "path", "timing", "detail")}
    for route in routes:
        person = by_pid[route.pid]
        if person.ready_at(route.day):
            continue
        parts = (person.segment, path_of(route.why), timing(person, route.day))
        for key, value in zip(("segment", "path", "timing"), parts, strict=True):
            out[key][value] += 1
        out["detail"][" / ".join(parts)] += 1
    return {key: dict(counter.most_common()) for key, counter in out.items()}


def right_routes_by_path(people: Sequence[Person], routes: Sequence[Route]) -> dict[str, int]:
    by_pid = {p.pid: p for p in people}
    return dict(Counter(path_of(r.why) for r in routes if by_pid[r.pid].ready_at(r.day)).most_common())


def _day(at: datetime) -> float:
    return (at - START).total_seconds() / 86400


def miss_cause(person: Person, routes: Sequence[Route], events: Sequence[Event], rules: Rules) -> str:
    """The first cause that explains why a ready buyer was never routed while ready."""
    assert person.window is not None
    start, end = person.window
    if any(r.day < start for r in routes):
        return "routed before the window, held by the recycle"
    shadow = Prospect(lead_id=f"diag-{person.pid}", created_at=datetime(2000, 1, 1, tzinfo=UTC))
    best_fit = best_engagement = float("-inf")
    above = intent = False
    for event in sorted(events, key=lambda e: e.at):
        apply_event(shadow, event, rules)
        day = _day(event.at)
        if day < start or day >= end or not shadow.email:
            continue
        scores = score(shadow, rules, event.at)
        best_fit = max(best_fit, scores.fit)
        best_engagement = max(best_engagement, scores.engagement)
        if scores.fit >= rules.thresholds.fit and scores.engagement >= rules.thresholds.engagement:
            above = True
            intent = intent or intent_reason(shadow, rules, day_of(event.at)) is not None
    if not shadow.email:
        return "never identified"
    if best_fit == float("-inf"):
        return "no visit while ready"
    if best_fit < rules.thresholds.fit:
        return "fit below threshold"
    if not above:
        return "engagement below threshold while ready"
    if not intent:
        return "no recent intent while above thresholds"
    return "other"


def missed_buyers(
    people: Sequence[Person], routes: Sequence[Route], events: dict[int, list[Event]], rules: Rules, days: int
) -> dict[str, dict[str, int]]:
    """Ready buyers never routed while ready, by cause and by segment."""
    by_person: dict[int, list[Route]] = {}
    for route in routes:
        by_person.setdefault(route.pid, []).append(route)
    causes: Counter[str] = Counter()
    segments: Counter[str] = Counter()
    fit_below: Counter[str] = Counter()
    for person in ready_buyers(people, days):
        mine = by_person.get(person.pid, [])
        if any(person.ready_at(r.day) for r in mine):
            continue
        cause = miss_cause(person, mine, events.get(person.pid, []), rules)
        causes[cause] += 1
        segments[person.segment] += 1
        if cause == "fit below threshold":
            fit_below[f"{person.segment} / {_missing_traits(person)}"] += 1
    return {
        "cause": dict(causes.most_common()),
        "segment": dict(segments.most_common()),
        "fit_below": dict(fit_below.most_common()),
    }


FORM_TRAITS = ("title", "company", "company_size", "industry", "country")


def _missing_traits(person: Person) -> str:
    """Which of the traits the fit rules read the person's forms left out ("none missing" when all sent),
    and whether the email is a personal mailbox: what a buyer held below the fit threshold lacked."""
    missing = [name for name in FORM_TRAITS if name not in person.traits]
    said = "missing " + ",".join(missing) if missing else "none missing"
    return said + (", free mailbox" if "@" + person.email.rpartition("@")[2] in _FREE else "")


_FREE = {"@" + domain for domain in FREE_MAILBOXES}


def diagnosis(
    people: Sequence[Person], routes: Sequence[Route], events: dict[int, list[Event]], rules: Rules, days: int
) -> dict[str, Any]:
    return {
        "wrong_routes": wrong_routes(people, routes),
        "right_routes_by_path": right_routes_by_path(people, routes),
        "missed_buyers": missed_buyers(people, routes, events, rules, days),
    }


def merge(diagnoses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The seeds' diagnoses summed (counts over all seeds), each count list largest first."""
    total: dict[str, Any] = {}
    for one in diagnoses:
        total = _add(total, one)
    return total


def _add(a: Any, b: Any) -> Any:
    if isinstance(b, dict):
        merged = {
            key: _add(a.get(key, {} if isinstance(value, dict) else 0), value) for key, value in b.items()
        }
        merged.update({key: value for key, value in a.items() if key not in b})
        if all(isinstance(value, int) for value in merged.values()):
            return dict(sorted(merged.items(), key=lambda kv: -kv[1]))
        return merged
    return a + b
