"""The lead lifecycle: states, triggers and the transition table, declared as data.

The worker is the only caller that changes a prospect's state; it asks `next_state`, which either answers
or raises `IllegalTransition` carrying the current state, the trigger and what would have been allowed.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    ANONYMOUS = "anonymous"
    NURTURING = "nurturing"
    SALES_READY = "sales_ready"
    ACCEPTED = "accepted"
    OPPORTUNITY = "opportunity"
    WON = "won"
    LOST = "lost"
    DISQUALIFIED = "disqualified"


class Trigger(StrEnum):
    IDENTIFIED = "identified"
    QUALIFIED = "qualified"
    HAND_RAISE = "hand_raise"
    ACCEPT = "accept"
    SLA_EXPIRED = "sla_expired"
    RECYCLE = "recycle"
    DISQUALIFY = "disqualify"
    OPPORTUNITY = "opportunity"
    WON = "won"
    LOST = "lost"
    REOPEN = "reopen"  # a lost lead returns to nurture after the configured delay


class RecycleReason(StrEnum):
    """Why sales hands a lead back to nurture; the nurture chooser and the scoreboard group by it."""

    NOT_READY = "not_ready"
    NO_BUDGET = "no_budget"
    NO_AUTHORITY = "no_authority"
    NO_NEED = "no_need"
    BAD_TIMING = "bad_timing"
    UNRESPONSIVE = "unresponsive"
    WRONG_CONTACT = "wrong_contact"
    OTHER = "other"


RECYCLE_REASONS: tuple[str, ...] = tuple(reason.value for reason in RecycleReason)

# The one set of limits on what sales and the CRM send with a command. chalicelib/commands.py refuses a
# command beyond them at the edge (naming the field); the domain re-checks those it acts on with the same
# constants, so an edge and the domain can never disagree about what is accepted.
MAX_REVISIT_DAYS = 730  # a recycled lead is looked at again within two years at the latest
MAX_NOTE_CHARS = 1000
MAX_OWNER_CHARS = 254  # an email address at most (RFC 5321 path limit)
MAX_REASON_CHARS = 200
MAX_AMOUNT = 1e12  # a deal's value; anything larger is a typo or an attack, not revenue

TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.ANONYMOUS, Trigger.IDENTIFIED): State.NURTURING,
    (State.NURTURING, Trigger.QUALIFIED): State.SALES_READY,
    (State.NURTURING, Trigger.HAND_RAISE): State.SALES_READY,
    (State.SALES_READY, Trigger.ACCEPT): State.ACCEPTED,
    (State.SALES_READY, Trigger.SLA_EXPIRED): State.NURTURING,
    (State.SALES_READY, Trigger.RECYCLE): State.NURTURING,
    (State.ACCEPTED, Trigger.RECYCLE): State.NURTURING,
    (State.OPPORTUNITY, Trigger.RECYCLE): State.NURTURING,
    (State.NURTURING, Trigger.DISQUALIFY): State.DISQUALIFIED,
    (State.SALES_READY, Trigger.DISQUALIFY): State.DISQUALIFIED,
    (State.ACCEPTED, Trigger.DISQUALIFY): State.DISQUALIFIED,
    (State.ACCEPTED, Trigger.OPPORTUNITY): State.OPPORTUNITY,
    (State.OPPORTUNITY, Trigger.WON): State.WON,
    (State.OPPORTUNITY, Trigger.LOST): State.LOST,
    (State.LOST, Trigger.REOPEN): State.NURTURING,
}

# States in which sales owns the lead: marketing sends no nurture email while a lead is here.
WITH_SALES = frozenset({State.SALES_READY, State.ACCEPTED, State.OPPORTUNITY})
# States in which nurture email may be sent.
NURTURED = frozenset({State.NURTURING})


class IllegalTransition(Exception):
    """A trigger that the current state does not allow. Never a silent no-op."""

    def __init__(self, state: State, trigger: Trigger, allowed: tuple[Trigger, ...]) -> None:
        allowed_text = ", ".join(allowed) or "none"
        super().__init__(f"cannot {trigger.value} a lead that is {state.value}; allowed: {allowed_text}")
        self.state = state
        self.trigger = trigger
        self.allowed = allowed


def triggers_from(state: State) -> tuple[Trigger, ...]:
    return tuple(trigger for (source, trigger) in TRANSITIONS if source is state)


def can(state: State, trigger: Trigger) -> bool:
    return (state, trigger) in TRANSITIONS


def next_state(current: State, trigger: Trigger) -> State:
    try:
        return TRANSITIONS[current, trigger]
    except KeyError:
        raise IllegalTransition(current, trigger, allowed=triggers_from(current)) from None
