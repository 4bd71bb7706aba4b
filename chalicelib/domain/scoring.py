"""Scores: fit (who they are) and engagement (what they do), each with the breakdown sales reads.

Engagement and interests are stored as points per day; their value now is computed at read time with an
exponential half-life, so a prospect who went quiet cools down without any job touching the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.prospect import BUCKET_HORIZON_DAYS, DayBuckets, Prospect
from chalicelib.domain.rules import FitRule, Rules


@dataclass(frozen=True, slots=True)
class ScoreLine:
    rule: str
    kind: str  # "fit" | "engagement"
    points: float


@dataclass(frozen=True, slots=True)
class Scores:
    fit: float
    engagement: float
    breakdown: tuple[ScoreLine, ...]
    rules_version: int

    @property
    def total(self) -> float:
        return round(self.fit + self.engagement, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fit": self.fit,
            "engagement": self.engagement,
            "total": self.total,
            "rules_version": self.rules_version,
            "breakdown": [
                {"rule": line.rule, "kind": line.kind, "points": line.points} for line in self.breakdown
            ],
        }


def day_of(moment: datetime) -> int:
    return moment.date().toordinal()


def decayed(buckets: DayBuckets, half_life_days: float, today: int) -> float:
    return sum(points * 0.5 ** (max(today - day, 0) / half_life_days) for day, points in buckets.items())


def add_to_bucket(groups: dict[str, DayBuckets], key: str, day: int, amount: float) -> None:
    days = groups.setdefault(key, {})
    days[day] = days.get(day, 0.0) + amount


def prune_buckets(groups: dict[str, DayBuckets], today: int) -> None:
    """Forget buckets whose decayed value is negligible, so profiles stay small."""
    for key in list(groups):
        days = groups[key]
        for day in [day for day in days if today - day > BUCKET_HORIZON_DAYS]:
            del days[day]
        if not days:
            del groups[key]


def _fit_points(rule: FitRule, value: Any) -> float:
    if value is None or value == "":
        return 0.0
    if rule.pattern is not None:
        return rule.points if rule.pattern.search(str(value)) else 0.0
    if rule.between is not None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return 0.0
        low, high = rule.between
        return rule.points if low <= number <= high else 0.0
    return rule.points if str(value).lower() in rule.choices else 0.0


def score(prospect: Prospect, rules: Rules, now: datetime) -> Scores:
    lines: list[ScoreLine] = []
    traits = prospect.traits
    for rule in rules.fit:
        value = prospect.email if rule.trait == "email" else traits.get(rule.trait)
        points = _fit_points(rule, value)
        if points:
            lines.append(ScoreLine(rule.id, "fit", points))
    today = day_of(now)
    caps = rules.caps
    for rule_id, buckets in prospect.engagement.items():
        if rule_id not in caps:  # a rule removed since the points were earned no longer counts
            continue
        points = decayed(buckets, rules.engagement_half_life_days, today)
        cap = caps[rule_id]
        if cap is not None:
            points = min(points, cap)
        points = round(points, 1)
        if points:
            lines.append(ScoreLine(rule_id, "engagement", points))
    fit = round(sum(line.points for line in lines if line.kind == "fit"), 1)
    engagement = round(sum(line.points for line in lines if line.kind == "engagement"), 1)
    lines.sort(key=lambda line: (-abs(line.points), line.rule))
    return Scores(fit=fit, engagement=engagement, breakdown=tuple(lines), rules_version=rules.version)


def interest_weights(prospect: Prospect, rules: Rules, now: datetime) -> dict[str, float]:
    today = day_of(now)
    weights = {
        topic: round(decayed(buckets, rules.interest_half_life_days, today), 2)
        for topic, buckets in prospect.interests.items()
    }
    return {topic: weight for topic, weight in weights.items() if weight > 0}


def top_interests(prospect: Prospect, rules: Rules, now: datetime, limit: int = 5) -> list[tuple[str, float]]:
    weights = interest_weights(prospect, rules, now)
    return sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:limit]
