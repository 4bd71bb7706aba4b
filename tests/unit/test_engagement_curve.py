"""How engagement decays on the lead page's chart: pure domain, a fixed clock, the default rules."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from chalicelib.domain.engagement_curve import engagement_curve, engagement_on
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import parse_rules
from chalicelib.domain.scoring import day_of, score
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_the_curve_rises_when_points_were_earned_matches_the_score_today_and_halves_per_half_life() -> None:
    rules = parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))
    rule = next(r for r in rules.engagement if r.kind == "track" and (rules.caps.get(r.id) or 0) >= 20)
    p = Prospect(lead_id="L1", created_at=NOW)
    today = day_of(NOW)
    p.engagement = {rule.id: {today - 10: 10.0}}
    curve = {point.offset_days: point.engagement for point in engagement_curve(p, rules, NOW, step=1)}
    assert curve[-12] == 0.0  # before the points were earned
    assert curve[0] == score(p, rules, NOW).engagement  # today, as the score says
    half = rules.engagement_half_life_days
    later = engagement_on(p, rules, today - 10 + round(half))
    assert abs(later - 5.0) <= 0.6  # half of it one half-life after it was earned (whole days)
    assert curve[28] < curve[0] < curve[-10]  # cooling ahead, nothing new assumed
