"""The measures: routing precision, recall and days from readiness to routing; nurture click rate, topic
match share and repeats; and their mean with min-max across seeds.

Definitions (docs/simulation.md says the same in words):
- a route is *right* when the person is inside their hidden readiness window at the moment of the route;
  precision = right routes / routes (every route counts, re-routes after a recycle too);
- *ready buyers* are the people whose window opens at least `MIN_WINDOW_DAYS` before the horizon ends;
  recall = ready buyers routed at least once while ready / ready buyers;
- days to route = for each recalled buyer, the first route inside the window minus the window's start; median;
- click rate = sends with at least one human click / sends; topic match = sends whose template covers one of
  the person's hidden interests / sends; repeats = sends of a template the person had already received.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sim.drive import Route, Send
from sim.population import Person

MIN_WINDOW_DAYS = 7


def ready_buyers(people: Sequence[Person], days: int) -> list[Person]:
    return [p for p in people if p.window is not None and p.window[0] <= days - MIN_WINDOW_DAYS]


def routing(people: Sequence[Person], routes: Sequence[Route], days: int) -> dict[str, Any]:
    by_pid = {p.pid: p for p in people}
    right = [r for r in routes if by_pid[r.pid].ready_at(r.day)]
    buyers = ready_buyers(people, days)
    first_right: dict[int, float] = {}
    for route in sorted(right, key=lambda r: r.day):
        first_right.setdefault(route.pid, route.day)
    recalled = [p for p in buyers if p.pid in first_right]
    delays = [first_right[p.pid] - p.window[0] for p in recalled if p.window is not None]
    segments = Counter(by_pid[r.pid].segment for r in routes)
    return {
        "routes": len(routes),
        "precision": len(right) / len(routes) if routes else 0.0,
        "recall": len(recalled) / len(buyers) if buyers else 0.0,
        "median_days_to_route": statistics.median(delays) if delays else None,
        "ready_buyers": len(buyers),
        "routes_by_segment": dict(sorted(segments.items())),
    }


def nurture(sends: Sequence[Send]) -> dict[str, Any]:
    n = len(sends)
    return {
        "sends": n,
        "click_rate": sum(s.clicked for s in sends) / n if n else 0.0,
        "open_rate": sum(s.opened for s in sends) / n if n else 0.0,
        "topic_match": sum(s.relevant for s in sends) / n if n else 0.0,
        "repeats": sum(s.repeat for s in sends),
        "templates": dict(sorted(Counter(s.template for s in sends).items())),
    }


def spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean, min and max of the seeds' values (None where a seed had no value)."""
    known = [v for v in values if v is not None]
    if not known:
        return {"mean": None, "min": None, "max": None}
    return {"mean": statistics.fmean(known), "min": min(known), "max": max(known)}
