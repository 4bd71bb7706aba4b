"""What the domain decides besides the profile itself: the effects a unit of work returns for the service
to carry out (a transition for the feed and scoreboard, an assignment, a sales notification, the SLA
workflow, an email outcome, a note), the errors of a command, and the one way a lead changes state
(`transition`), shared by event folding (`apply`) and sales actions (`sales_actions`). Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.bounds import clip, clip_optional
from chalicelib.domain.lifecycle import (
    MAX_NOTE_CHARS,
    MAX_OWNER_CHARS,
    MAX_REASON_CHARS,
    WITH_SALES,
    State,
    Trigger,
    next_state,
)
from chalicelib.domain.prospect import (
    MAX_HISTORY,
    MAX_KEY_MOMENTS,
    MAX_MOMENT_CHARS,
    KeyMoment,
    Prospect,
    Transition,
)


class InvalidCommand(ValueError):
    """A sales or CRM command whose arguments are wrong (unknown reason, negative amount...)."""


class NotAssignable(InvalidCommand):
    """A reassignment of a lead that sales does not hold (answered 409 with the state)."""

    def __init__(self, state: State) -> None:
        held = ", ".join(sorted(s.value for s in WITH_SALES))
        super().__init__(f"cannot reassign a lead that is {state.value}; only leads that are {held}")
        self.state = state


Turns = Callable[[str], int]  # team -> how many leads it was assigned before (round robin position)


def no_turns(team: str) -> int:
    return 0


# --- effects: what the service must do after the write succeeds ---


@dataclass(frozen=True, slots=True)
class NotifySales:
    why: str  # "hand-raise: Demo Requested" or the qualifying scores


@dataclass(frozen=True, slots=True)
class StartSla:
    accept_seconds: int
    escalate_seconds: int


@dataclass(frozen=True, slots=True)
class ResolveSla:
    task_token: str
    outcome: str  # the trigger that resolved it


@dataclass(frozen=True, slots=True)
class Changed:
    """A lifecycle transition happened (for the activity feed and the scoreboard)."""

    transition: Transition
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assigned:
    """The lead has a new owner (routing or reassignment): activity feed, notification, round robin count."""

    owner: str
    previous: str | None
    team: str | None
    why: str
    actor: str


@dataclass(frozen=True, slots=True)
class EmailOutcome:
    template: str
    outcome: str
    # The send's context when this outcome teaches the nurture chooser (chalicelib.domain.bandit): the first
    # of its kind for the send, never a machine open. None: it counts on the scoreboard only.
    learn_in: str | None = None


@dataclass(frozen=True, slots=True)
class Noted:
    """Something worth an activity entry that is not a transition (suppression, ignored CRM update...)."""

    kind: str
    actor: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccountsTouched:
    """The person's membership of these accounts (and their traits, as its group calls said) is to be
    written to the accounts table (chalicelib.domain.accounts)."""

    account_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompetitorNamed:
    """Sales disqualified the lead as a competitor: its company domain joins the rules' learned competitor
    domains (chalicelib.domain.competitors)."""

    domain: str
    actor: str


Effect = (
    NotifySales | StartSla | ResolveSla | Changed | Assigned | EmailOutcome | Noted | AccountsTouched
    | CompetitorNamed
)  # fmt: skip


def push(items: list[Any], item: Any, limit: int) -> None:
    items.append(item)
    if len(items) > limit:
        del items[: len(items) - limit]


def moment(p: Prospect, at: datetime, kind: str, text: str) -> None:
    moment = KeyMoment(at=at, kind=kind, text=clip(p, "key_moments", text, MAX_MOMENT_CHARS))
    push(p.key_moments, moment, MAX_KEY_MOMENTS)


def transition(
    p: Prospect,
    trigger: Trigger,
    at: datetime,
    actor: str,
    *,
    reason: str | None = None,
    note: str | None = None,
) -> list[Effect]:
    """Move the lead; raises IllegalTransition when the state does not allow the trigger."""
    target = next_state(p.state, trigger)
    change = Transition(
        at=at,
        from_state=p.state,
        to_state=target,
        trigger=trigger,
        actor=clip(p, "history", actor, MAX_OWNER_CHARS),
        reason=clip_optional(p, "history", reason, MAX_REASON_CHARS),
        note=clip_optional(p, "history", note, MAX_NOTE_CHARS),
    )
    push(p.history, change, MAX_HISTORY)
    p.state = target
    effects: list[Effect] = [Changed(change)]
    sla = p.sla
    if change.from_state is State.SALES_READY and sla is not None and sla.status in ("waiting", "escalated"):
        sla.resolved_at = at
        sla.status = "missed" if trigger is Trigger.SLA_EXPIRED else ("met" if at <= sla.due_at else "late")
        if sla.task_token and trigger is not Trigger.SLA_EXPIRED:
            effects.append(ResolveSla(task_token=sla.task_token, outcome=trigger.value))
    return effects
