"""How a prospect's engagement score rose and cools: its value on each day from a few weeks back to a few
weeks ahead, from the stored day buckets and the rules' half-life, the way `scoring.score` computes it
today (each rule's cap applied). Days ahead assume nothing new happens, which is what "decays" means to
the salesperson reading the lead page. Pure: the day `now` falls on is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import day_of

DAYS_BACK = 28
DAYS_AHEAD = 28
STEP_DAYS = 2


@dataclass(frozen=True, slots=True)
class CurvePoint:
    offset_days: int  # days from today: negative in the past, positive ahead
    engagement: float


def engagement_on(p: Prospect, rules: Rules, day: int) -> float:
    """The engagement score on `day` (an ordinal), counting only points earned by then."""
    total = 0.0
    for rule_id, buckets in p.engagement.items():
        if rule_id not in rules.caps:  # a rule removed since no longer counts, as in score()
            continue
        points = sum(
            earned * 0.5 ** ((day - earned_on) / rules.engagement_half_life_days)
            for earned_on, earned in buckets.items()
            if earned_on <= day
        )
        cap = rules.caps[rule_id]
        if cap is not None and (points > cap or points < -cap):
            points = cap if points > 0 else -cap
        total += round(points, 1)
    return round(total, 1)


def engagement_curve(
    p: Prospect,
    rules: Rules,
    now: datetime,
    *,
    back: int = DAYS_BACK,
    ahead: int = DAYS_AHEAD,
    step: int = STEP_DAYS,
) -> list[CurvePoint]:
    today = day_of(now)
    return [
        CurvePoint(offset, engagement_on(p, rules, today + offset))
        for offset in range(-back, ahead + 1, step)
    ]
