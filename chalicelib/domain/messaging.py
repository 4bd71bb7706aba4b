"""Nurture cadence and next-message choice: when a prospect may hear from us, and what they hear.

The chooser ranks the templates a prospect is eligible for (not suppressed, not sent within the template's
cooldown, cadence and frequency cap respected) by how well each matches the prospect's interests, buying
stage and persona, and the reason sales last recycled them. It is deterministic for the same inputs and
always says why it chose what it chose, or why it chose nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.lifecycle import NURTURED
from chalicelib.domain.profiling import buying_stage, persona_of
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, interest_weights, score

WINDOW = timedelta(days=30)

# How much each kind of match weighs in a template's rank.
TOPIC_WEIGHT = 3.0
STAGE_WEIGHT = 2.0
PERSONA_WEIGHT = 1.5
RECYCLE_WEIGHT = 4.0
PREFERRED_TOPIC_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class Choice:
    template: TemplateMeta
    rank: float
    why: str


@dataclass(frozen=True, slots=True)
class NoChoice:
    why: str


def contactable(p: Prospect) -> bool:
    return bool(p.email) and p.suppression is None


def plan_next_touch(p: Prospect, rules: Rules, now: datetime) -> datetime | None:
    """When the scheduler should next consider this prospect (None: not while things stay as they are)."""
    if p.state not in NURTURED or not contactable(p):
        return None
    recycle = p.current_recycle
    if recycle is not None and recycle.revisit_at is not None and recycle.revisit_at > now:
        return recycle.revisit_at
    cadence = rules.cadence
    if not p.messages:
        planned = now + timedelta(minutes=cadence.first_touch_minutes)
        return min(planned, p.next_touch_at) if p.next_touch_at and p.next_touch_at > now else planned
    earliest = p.messages[-1].at + timedelta(days=cadence.min_days_between)
    recent = [m.at for m in p.messages if m.at > now - WINDOW]
    if len(recent) >= cadence.max_per_30_days:
        earliest = max(earliest, sorted(recent)[-cadence.max_per_30_days] + WINDOW)
    return max(earliest, now)


def choose_next_message(
    p: Prospect, catalogue: Sequence[TemplateMeta], rules: Rules, now: datetime, scores: Scores | None = None
) -> Choice | NoChoice:
    if p.state not in NURTURED:
        return NoChoice(f"lead is {p.state.value}: nurture email pauses while sales owns it")
    if not p.email:
        return NoChoice("no email address known")
    if p.suppression is not None:
        return NoChoice(f"suppressed ({p.suppression.reason})")
    planned = plan_next_touch(p, rules, now)
    if planned is not None and planned > now and p.messages:
        return NoChoice(f"cadence: next touch not before {planned.isoformat()}")
    scores = scores or score(p, rules, now)
    stage = buying_stage(p, scores, rules, now)
    persona = persona_of(p, rules)
    interests = interest_weights(p, rules, now)
    strongest = max(interests.values(), default=0.0) or 1.0
    recycle = p.current_recycle
    treatment = rules.recycle.get(recycle.reason) if recycle else None
    last_sent = {m.template: m.at for m in p.messages}
    ranked: list[tuple[float, str, TemplateMeta, list[str]]] = []
    for template in catalogue:
        sent_at = last_sent.get(template.name)
        if sent_at is not None and now - sent_at < timedelta(days=template.cooldown_days):
            continue
        if template.stages and stage not in template.stages:
            continue
        if template.personas and persona not in template.personas:
            continue
        reasons: list[str] = []
        rank = template.priority * 0.1
        matched = [(topic, interests[topic]) for topic in template.topics if topic in interests]
        if matched:
            rank += TOPIC_WEIGHT * sum(weight for _, weight in matched) / strongest
            reasons.append("interests " + ", ".join(f"{topic} ({weight:g})" for topic, weight in matched))
        if template.stages:
            rank += STAGE_WEIGHT
            reasons.append(f"stage {stage}")
        if template.personas:
            rank += PERSONA_WEIGHT
            reasons.append(f"persona {persona}")
        if recycle is not None and recycle.reason in template.recycle_reasons:
            rank += RECYCLE_WEIGHT
            reasons.append(f"answers recycle reason {recycle.reason}")
        if treatment is not None:
            preferred = [topic for topic in template.topics if topic in treatment.prefer_topics]
            if preferred:
                rank += PREFERRED_TOPIC_WEIGHT
                reasons.append(f"{recycle.reason if recycle else ''} calls for {', '.join(preferred)}")
        ranked.append((round(rank, 4), template.name, template, reasons))
    if not ranked:
        return NoChoice(
            f"no eligible template for stage {stage}, persona {persona} (all in cooldown or unsuited)"
        )
    ranked.sort(key=lambda item: (-item[0], item[1]))
    rank, _, template, reasons = ranked[0]
    why = "; ".join(reasons) if reasons else "general fit (no specific match)"
    return Choice(template=template, rank=rank, why=f"{template.name}: {why}")
