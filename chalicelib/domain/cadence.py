"""Nurture cadence: when a prospect may hear from us. Whether they can be emailed at all, when the scheduler
should next consider them (the cadence's spacing and monthly cap, a touch in flight, a recycle's revisit
date), and why no touch may go now. What they hear is chalicelib.domain.messaging's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.lifecycle import NURTURED, State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.sending import parked, pending_claim, retry_at, sent_messages

WINDOW = timedelta(days=30)  # the cadence's max_per_30_days counts sends within it


def contactable(p: Prospect) -> bool:
    return bool(p.email) and p.suppression is None


def why_not_emailed(p: Prospect) -> str | None:
    """Why nurture may not email this lead at all now (None: it may)."""
    if p.state not in NURTURED:
        return PAUSED_WHY[p.state]
    if not p.email:
        return "no email address known"
    if p.suppression is not None:
        return f"suppressed ({p.suppression.reason})"
    return None


# Why nurture pauses for each state outside it (the chooser's refusal, built once from these).
PAUSED_WHY = {
    state: f"lead is {state.value}: nurture email pauses while sales owns it"
    for state in State
    if state not in NURTURED
}


def plan_next_touch(p: Prospect, rules: Rules, now: datetime) -> datetime | None:
    """When the scheduler should next consider this prospect (None: not while things stay as they are).

    A prospect already due keeps the time it became due (`p.next_touch_at`) as long as that time is still
    allowed: the sweep finds it all the same (it reads everything at or before now), and a save that only
    records a page view then leaves the stored time, and so the due index, untouched."""
    if p.state not in NURTURED or not contactable(p):
        return None
    messages = p.messages  # none yet for most leads in nurture: no claim, nothing parked, nothing sent
    if messages:
        claim = pending_claim(p)
        if claim is not None:  # finish the touch in hand first: when its try is over, try again
            return _due_since(p, retry_at(claim), now)
        if parked(p) is not None:
            return None
    recycle = p.current_recycle
    if recycle is not None and recycle.revisit_at is not None and recycle.revisit_at > now:
        return recycle.revisit_at
    cadence = rules.cadence
    sent = sent_messages(p) if messages else []
    if not sent:
        # The first touch: the time planned when the prospect came into nurture stands, due or not (a
        # later event does not push it back); only a plan further out than first_touch_minutes is brought in.
        planned = now + timedelta(minutes=cadence.first_touch_minutes)
        return min(planned, p.next_touch_at) if p.next_touch_at is not None else planned
    earliest = max(m.at for m in sent) + timedelta(days=cadence.min_days_between)
    recent = [m.at for m in sent if m.at > now - WINDOW]
    if len(recent) >= cadence.max_per_30_days:
        earliest = max(earliest, sorted(recent)[-cadence.max_per_30_days] + WINDOW)
    return _due_since(p, earliest, now)


def _due_since(p: Prospect, earliest: datetime, now: datetime) -> datetime:
    """`earliest` when it is still ahead; once it has passed, the prospect is due: at the time already
    stored if that one is due too and not before `earliest` (never earlier than allowed), else now."""
    if earliest > now:
        return earliest
    kept = p.next_touch_at
    return kept if kept is not None and earliest <= kept <= now else now


def why_no_touch_now(p: Prospect, rules: Rules, now: datetime) -> str | None:
    """Why no template at all may go to `p` now (the lead's own state, not any template's): not emailable,
    a touch in flight, nurture parked, or the cadence not yet due."""
    unreachable = why_not_emailed(p)
    if unreachable is not None:
        return unreachable
    claim = pending_claim(p)
    if claim is not None:
        return f"{claim.template} is being sent ({claim.send_id}, try {claim.tries})"
    stuck = parked(p)
    if stuck is not None:
        return f"nurture parked: {stuck.template} failed {stuck.tries} tries ({stuck.error})"
    if not sent_messages(p):  # no send yet: the cadence holds nothing back (asked first: it is cheaper)
        return None
    planned = plan_next_touch(p, rules, now)
    if planned is not None and planned > now:
        return f"cadence: next touch not before {planned.isoformat()}"
    return None
