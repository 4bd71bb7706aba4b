"""The shared scoreboard's counters: what one transition adds, and the periods every counter is kept for.

Counters are maintained as events flow (atomic ADDs), never by scanning the pool;
`chalicelib.usecases.scoreboard` turns them into rates, medians and the revenue-against-cost measure both
teams are judged by.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.apply import Changed
from chalicelib.domain.lifecycle import Trigger
from chalicelib.domain.prospect import Prospect

# Time-to-accept histogram edges, in minutes (the last bucket is "later than a week").
ACCEPT_BUCKETS = (1, 5, 15, 30, 60, 120, 240, 480, 1440, 2880, 10080)


def by_period(increments: dict[str, float], now: datetime) -> dict[tuple[str, str], float]:
    """Each counter is kept for all time, for its month and for its day."""
    periods = ("all", f"{now:%Y-%m}", f"{now:%Y-%m-%d}")
    return {(period, name): amount for name, amount in increments.items() for period in periods}


def accept_bucket(minutes: float) -> int:
    return next((edge for edge in ACCEPT_BUCKETS if minutes <= edge), 10**6)


def scoreboard_increments(p: Prospect, change: Changed) -> dict[str, float]:
    """Counters one transition moves on the shared scoreboard."""
    t = change.transition
    source = p.source or "unknown"
    counts: dict[str, float] = {
        f"entered:{t.to_state.value}": 1.0,
        f"source:{source}:entered:{t.to_state.value}": 1.0,
    }
    if t.trigger in (Trigger.HAND_RAISE, Trigger.QUALIFIED):
        counts[f"routed:{t.trigger.value}"] = 1.0
    if t.trigger is Trigger.RECYCLE and t.reason:
        counts[f"recycled:{t.reason}"] = 1.0
        counts[f"source:{source}:recycled:{t.reason}"] = 1.0
    if t.trigger is Trigger.SLA_EXPIRED:
        counts["sla:missed"] = 1.0
        counts[f"source:{source}:sla:missed"] = 1.0
    if t.trigger is Trigger.ACCEPT and p.sla is not None:
        minutes = (t.at - p.sla.started_at).total_seconds() / 60
        counts["accept:count"] = 1.0
        counts["accept:minutes_total"] = round(minutes, 3)
        counts[f"accept:within_minutes_le:{accept_bucket(minutes)}"] = 1.0
        if p.sla.status == "met":
            counts["sla:met"] = 1.0
            counts[f"source:{source}:sla:met"] = 1.0
    if t.trigger is Trigger.WON and p.amount is not None:
        counts["revenue:won"] = p.amount
        counts[f"source:{source}:revenue:won"] = p.amount
    return counts
