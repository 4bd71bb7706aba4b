"""Nurture cadence and next-message choice: when a prospect may hear from us, and what they hear.

The chooser ranks the templates a prospect is eligible for (not suppressed, not sent within the template's
cooldown, cadence and frequency cap respected) by how well each matches the prospect's interests, buying
stage and persona, and the reason sales last recycled them. It is deterministic for the same inputs and
always says why it chose what it chose, or why it chose nothing.

A touch is claimed before it is sent (`claim_touch`, stored with a version-checked write), then marked sent
(`mark_sent`) or failed (`record_failure`). A claimed message counts as sent for cadence and cooldown; while
its try is in flight (the lease) nobody else sends it, and once the try is over without a mark, the next
sweep sends that same message again (same send id). A touch that keeps failing backs off, then is parked:
no next touch until the lead's lifecycle moves on, with the reason on the profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.lifecycle import NURTURED
from chalicelib.domain.profiling import buying_stage, persona_of
from chalicelib.domain.prospect import MAX_KEY_MOMENTS, MAX_MESSAGES, KeyMoment, Prospect, SentMessage
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, interest_weights, score

WINDOW = timedelta(days=30)

CLAIMED, SENT, FAILED = "claimed", "sent", "failed"
# How long one try of a touch may take before another sweep may take it over. Far above a mailer call;
# short enough that a crashed sweep delays the touch by minutes, not by a cadence interval.
CLAIM_LEASE = timedelta(minutes=10)
# When try n+1 may start after try n began (or failed): the lease first, then a growing backoff.
RETRY_AFTER = (CLAIM_LEASE, timedelta(hours=1), timedelta(hours=6))
MAX_TRIES = len(RETRY_AFTER) + 1  # the last try's failure parks the prospect
# A claim whose last try is older than this (the lead left nurture, then came back) is not sent any more.
CLAIM_MAX_AGE = timedelta(days=2)

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


def why_not_emailed(p: Prospect) -> str | None:
    """Why nurture may not email this lead at all now (None: it may)."""
    if p.state not in NURTURED:
        return f"lead is {p.state.value}: nurture email pauses while sales owns it"
    if not p.email:
        return "no email address known"
    if p.suppression is not None:
        return f"suppressed ({p.suppression.reason})"
    return None


def plan_next_touch(p: Prospect, rules: Rules, now: datetime) -> datetime | None:
    """When the scheduler should next consider this prospect (None: not while things stay as they are)."""
    if p.state not in NURTURED or not contactable(p):
        return None
    claim = pending_claim(p)
    if claim is not None:  # finish the touch in hand first: when its try is over, try again
        return max(retry_at(claim), now)
    if parked(p) is not None:
        return None
    recycle = p.current_recycle
    if recycle is not None and recycle.revisit_at is not None and recycle.revisit_at > now:
        return recycle.revisit_at
    cadence = rules.cadence
    sent = sent_messages(p)
    if not sent:
        planned = now + timedelta(minutes=cadence.first_touch_minutes)
        return min(planned, p.next_touch_at) if p.next_touch_at and p.next_touch_at > now else planned
    earliest = max(m.at for m in sent) + timedelta(days=cadence.min_days_between)
    recent = [m.at for m in sent if m.at > now - WINDOW]
    if len(recent) >= cadence.max_per_30_days:
        earliest = max(earliest, sorted(recent)[-cadence.max_per_30_days] + WINDOW)
    return max(earliest, now)


def choose_next_message(
    p: Prospect, catalogue: Sequence[TemplateMeta], rules: Rules, now: datetime, scores: Scores | None = None
) -> Choice | NoChoice:
    unreachable = why_not_emailed(p)
    if unreachable is not None:
        return NoChoice(unreachable)
    claim = pending_claim(p)
    if claim is not None:
        return NoChoice(f"{claim.template} is being sent ({claim.send_id}, try {claim.tries})")
    stuck = parked(p)
    if stuck is not None:
        return NoChoice(f"nurture parked: {stuck.template} failed {stuck.tries} tries ({stuck.error})")
    sent = sent_messages(p)
    planned = plan_next_touch(p, rules, now)
    if planned is not None and planned > now and sent:
        return NoChoice(f"cadence: next touch not before {planned.isoformat()}")
    scores = scores or score(p, rules, now)
    stage = buying_stage(p, scores, rules, now)
    persona = persona_of(p, rules)
    interests = interest_weights(p, rules, now)
    strongest = max(interests.values(), default=0.0) or 1.0
    recycle = p.current_recycle
    treatment = rules.recycle.get(recycle.reason) if recycle else None
    last_sent = {m.template: m.at for m in sent}
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


# --- claiming, sending, failing -----------------------------------------------------------------------------


def sent_messages(p: Prospect) -> list[SentMessage]:
    """The messages that count for cadence and cooldown: sent, or claimed (a claimed one may be out)."""
    return [m for m in p.messages if m.status != FAILED]


def pending_claim(p: Prospect) -> SentMessage | None:
    return next((m for m in reversed(p.messages) if m.status == CLAIMED), None)


def retry_at(claim: SentMessage) -> datetime:
    """When the claim's current try is over for sure (lease run out, or the backoff after a failure)."""
    return claim.at + RETRY_AFTER[min(max(claim.tries, 1), len(RETRY_AFTER)) - 1]


def parked(p: Prospect) -> SentMessage | None:
    """The touch whose failures parked nurture for this lead, until its lifecycle moves on (a recycle or a
    reopen gives it a fresh start)."""
    last = p.messages[-1] if p.messages else None
    if last is None or last.status != FAILED or last.tries < MAX_TRIES:
        return None
    if p.history and p.history[-1].at > last.at:
        return None
    return last


def claim_touch(p: Prospect, send_id: str, template: TemplateMeta, why: str, now: datetime) -> SentMessage:
    claim = SentMessage(
        send_id=send_id, template=template.name, version=template.version, at=now, reason=why, status=CLAIMED
    )
    p.messages.append(claim)
    del p.messages[: max(0, len(p.messages) - MAX_MESSAGES)]
    return claim


def retry_claim(claim: SentMessage, now: datetime) -> None:
    """Begin another try of the same message (same send id: a mailer that knows it sends nothing new)."""
    claim.tries += 1
    claim.at = now


def mark_sent(message: SentMessage, version: int, now: datetime) -> None:
    message.status, message.version, message.at, message.error = SENT, version, now, None


def record_failure(p: Prospect, claim: SentMessage, error: str, now: datetime) -> bool:
    """The claim's current try failed with `error` (no prospect data in it). True when this parks nurture
    for the lead: the touch had its last try."""
    claim.error, claim.at = error, now
    if claim.tries < MAX_TRIES:
        return False
    claim.status = FAILED
    text = f"nurture email paused: {claim.template} failed {claim.tries} tries in a row ({error})"
    p.key_moments.append(KeyMoment(at=now, kind="nurture_parked", text=text))
    del p.key_moments[: max(0, len(p.key_moments) - MAX_KEY_MOMENTS)]
    return True


def abandon_claim(claim: SentMessage, now: datetime) -> None:
    """A claim left over from before the lead left nurture: not sent now, so long after it was chosen."""
    claim.status = FAILED
    claim.error = f"abandoned {now:%Y-%m-%d}: no try for {CLAIM_MAX_AGE.days} days after the last one"
