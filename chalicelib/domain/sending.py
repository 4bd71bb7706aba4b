"""Claiming, sending and failing a nurture touch: the bookkeeping on the profile's messages.

A touch is claimed before it is sent (`claim_touch`, stored with a version-checked write), then marked sent
(`mark_sent`) or failed (`record_failure`). A claimed message counts as sent for cadence and cooldown; while
its try is in flight (the lease) nobody else sends it, and once the try is over without a mark, the next
sweep sends that same message again (same send id). A touch that keeps failing backs off, then is parked.
A send's outcomes (a click, a hand-raise soon after it) are marked on it once each, in the context the
chooser learns in (`learns_from`, `credit_hand_raise`). (Moved out of chalicelib.domain.messaging, which
re-exports every name.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.bandit import LEARNED_MEASURE
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.decisions import EmailOutcome
from chalicelib.domain.prospect import MAX_KEY_MOMENTS, MAX_MESSAGES, KeyMoment, Prospect, SentMessage

CLAIMED, SENT, FAILED = "claimed", "sent", "failed"
# How long one try of a touch may take before another sweep may take it over. Far above a mailer call;
# short enough that a crashed sweep delays the touch by minutes, not by a cadence interval.
CLAIM_LEASE = timedelta(minutes=10)
# When try n+1 may start after try n began (or failed): the lease first, then a growing backoff.
RETRY_AFTER = (CLAIM_LEASE, timedelta(hours=1), timedelta(hours=6))
MAX_TRIES = len(RETRY_AFTER) + 1  # the last try's failure parks the prospect
# A claim whose last try is older than this (the lead left nurture, then came back) is not sent any more.
CLAIM_MAX_AGE = timedelta(days=2)
# A hand-raise this soon after a send counts as a response to it.
HAND_RAISE_CREDIT = timedelta(days=7)


def sent_messages(p: Prospect) -> list[SentMessage]:
    """The messages that count for cadence and cooldown: sent, or claimed (a claimed one may be out)."""
    return [m for m in p.messages if m.status != FAILED]


def pending_claim(p: Prospect) -> SentMessage | None:
    for m in reversed(p.messages):  # asked on every event of a lead in nurture: a loop, no generator
        if m.status == CLAIMED:
            return m
    return None


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


def claim_touch(
    p: Prospect, send_id: str, template: TemplateMeta, why: str, now: datetime, context: str | None = None
) -> SentMessage:
    claim = SentMessage(
        send_id=send_id,
        template=template.name,
        version=template.version,
        at=now,
        reason=why,
        status=CLAIMED,
        context=context,
    )
    p.nurture_waiting = None
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


def abandon_claim(claim: SentMessage, now: datetime, why: str | None = None) -> None:
    """A claim not to be sent any more: left over from before the lead left nurture (so long after it was
    chosen), or its template paused or deleted since (`why`)."""
    claim.status = FAILED
    claim.error = f"abandoned {now:%Y-%m-%d}: " + (
        why or f"no try for {CLAIM_MAX_AGE.days} days after the last one"
    )


# --- learning from outcomes ---------------------------------------------------------------------------------


def learns_from(sent: SentMessage, outcome: str, *, machine_open: bool = False) -> str | None:
    """The context in which this outcome of `sent` teaches the chooser, or None (a machine open, a measure
    this send already taught, an outcome that teaches nothing, a send from before learning). Marks it."""
    measure = LEARNED_MEASURE.get(outcome)
    if measure is None or measure == "sent" or sent.context is None or measure in sent.learned:
        return None
    if machine_open and outcome == "opened":
        return None  # Apple Mail privacy, link scanners: says nothing about the person
    sent.learned.append(measure)
    return sent.context


def credit_hand_raise(p: Prospect, at: datetime) -> list[EmailOutcome]:
    """A hand-raise soon after a nurture send is that send's response (once per send)."""
    last = next((m for m in reversed(p.messages) if m.status == SENT), None)
    if last is None or not last.at <= at <= last.at + HAND_RAISE_CREDIT:
        return []
    context = learns_from(last, "hand_raise")
    return [EmailOutcome(last.template, "hand_raise", context)] if context else []
