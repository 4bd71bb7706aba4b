"""Sales actions, CRM stage changes and SLA signals applied to a prospect: accept, recycle with a reason and a
revisit date, disqualify, opportunity, won, lost, reassign, and the SLA workflow's started / escalated /
expired messages. Each raises IllegalTransition or InvalidCommand when it does not apply. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from chalicelib.domain.assignment import CRM_OWNER_TRAIT, team_lead
from chalicelib.domain.competitors import learnable_domain, says_competitor
from chalicelib.domain.decisions import (
    Assigned,
    Changed,
    CompetitorNamed,
    Effect,
    InvalidCommand,
    NotAssignable,
    Noted,
    NotifySales,
    ResolveSla,
    moment,
    transition,
)
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import (
    MAX_AMOUNT,
    MAX_OWNER_CHARS,
    MAX_REVISIT_DAYS,
    RECYCLE_REASONS,
    WITH_SALES,
    State,
    Trigger,
)
from chalicelib.domain.prospect import Prospect, Recycle
from chalicelib.domain.rules import Rules

SLA_SIGNALS = ("sla_started", "sla_escalated")


def apply_command(p: Prospect, event: Event, rules: Rules) -> list[Effect]:
    """A sales action, CRM stage change or SLA signal. Raises IllegalTransition / InvalidCommand."""
    props = event.properties
    actor = str(props.get("actor") or event.source)
    if event.name in SLA_SIGNALS:
        return _sla_signal(p, event, rules)
    if event.kind is EventKind.CRM:
        _remember_crm_owner(p, props)
    if event.name == REASSIGN:
        return _reassign(p, event, actor)
    if event.name == Trigger.SLA_EXPIRED and p.state is not State.SALES_READY:
        return [Noted("sla_expired_ignored", "sla", {"state": p.state.value})]  # worked in time after all
    if not event.name:
        return [Noted("crm_update", actor, {k: v for k, v in props.items() if k != "actor"})]
    try:
        trigger = Trigger(event.name)
    except ValueError:
        raise InvalidCommand(f"unknown action {event.name!r}") from None
    reason = props.get("reason")
    note = props.get("note")
    if trigger is Trigger.RECYCLE:
        return _recycle(p, event, actor, rules)
    if trigger in (Trigger.DISQUALIFY, Trigger.LOST) and not reason:
        raise InvalidCommand(f"{trigger.value} needs a reason")
    amount = props.get("amount")
    if amount is not None:
        # The same limit chalicelib/commands.py enforces at the edge; `not <=` also refuses NaN.
        if not isinstance(amount, int | float) or isinstance(amount, bool) or not 0 <= amount <= MAX_AMOUNT:
            raise InvalidCommand(f"amount must be a number from 0 to {MAX_AMOUNT:g}")
    effects = transition(p, trigger, event.at, actor, reason=reason, note=note)
    if trigger is Trigger.DISQUALIFY and says_competitor(reason, props.get("competitor")):
        domain = learnable_domain(p.email, rules)
        if domain is not None:
            effects.append(CompetitorNamed(domain, actor))
    if trigger is Trigger.ACCEPT:
        p.owner = str(props.get("owner") or p.owner or actor)
    if amount is not None:
        p.amount = float(amount)
    if trigger is Trigger.SLA_EXPIRED:
        p.owner = None
        moment(p, event.at, "sla_missed", "not accepted within the SLA; back to nurture")
    details = (
        {"amount": p.amount} if trigger in (Trigger.WON, Trigger.OPPORTUNITY) and p.amount is not None else {}
    )
    if details:
        effects[0] = (
            Changed(effects[0].transition, details) if isinstance(effects[0], Changed) else effects[0]
        )
    return effects


def _recycle(p: Prospect, event: Event, actor: str, rules: Rules) -> list[Effect]:
    props = event.properties
    reason = props.get("reason")
    if reason not in RECYCLE_REASONS:
        raise InvalidCommand(f"recycle reason must be one of {', '.join(RECYCLE_REASONS)}")
    revisit_days = props.get("revisit_in_days")
    if revisit_days is not None and (
        not isinstance(revisit_days, int)
        or isinstance(revisit_days, bool)
        or not 0 <= revisit_days <= MAX_REVISIT_DAYS
    ):
        # The edge (chalicelib/commands.py) refuses these first with the same constant; this guards events
        # that reach the domain another way (a replayed dead letter, an older queued message).
        raise InvalidCommand(f"revisit_in_days must be a whole number of days from 0 to {MAX_REVISIT_DAYS}")
    treatment = rules.recycle.get(reason)
    hold_days = revisit_days if revisit_days is not None else (treatment.hold_days if treatment else 0)
    effects = transition(p, Trigger.RECYCLE, event.at, actor, reason=reason, note=props.get("note"))
    count = len(p.recycles) + 1
    revisit_at = event.at + timedelta(days=hold_days) if hold_days else None
    p.recycles.append(
        Recycle(
            reason=reason,
            at=event.at,
            actor=actor,
            note=props.get("note"),
            revisit_at=revisit_at,
            count=count,
        )
    )
    del p.recycles[:-10]
    p.owner = None
    moment(p, event.at, "recycled", f"recycled by {actor}: {reason}")
    return effects


REASSIGN = "reassign"
HUBSPOT_OWNER_PROPERTY = "hubspot_owner_id"


def _remember_crm_owner(p: Prospect, props: Mapping[str, Any]) -> None:
    """An owner the CRM names (a generic CRM event's `owner`, HubSpot's owner property) wins assignment."""
    owner = props.get("owner")
    if props.get("crm_property") == HUBSPOT_OWNER_PROPERTY:
        owner = props.get("crm_value")
    if owner not in (None, "") and len(str(owner)) <= MAX_OWNER_CHARS:
        p.traits[CRM_OWNER_TRAIT] = str(owner)


def _reassign(p: Prospect, event: Event, actor: str) -> list[Effect]:
    owner = event.properties.get("owner")
    if not isinstance(owner, str) or not owner.strip() or len(owner.strip()) > MAX_OWNER_CHARS:
        raise InvalidCommand(f"reassign needs an 'owner' of 1 to {MAX_OWNER_CHARS} characters")
    if p.state not in WITH_SALES:
        raise NotAssignable(p.state)
    previous, p.owner = p.owner, owner.strip()
    if previous == p.owner:
        return [Noted("reassign_unchanged", actor, {"owner": p.owner})]
    note = event.properties.get("note")
    moment(p, event.at, "reassigned", f"reassigned by {actor} from {previous or 'nobody'} to {p.owner}")
    why = f"reassigned by {actor}" + (f": {note}" if note else "")
    return [Assigned(owner=p.owner, previous=previous, team=None, why=why, actor=actor)]


def _sla_signal(p: Prospect, event: Event, rules: Rules) -> list[Effect]:
    sla = p.sla
    token = event.properties.get("task_token")
    if sla is None or p.state is not State.SALES_READY or sla.status not in ("waiting", "escalated"):
        # The lead was worked before the workflow reported in: release the workflow at once.
        return [ResolveSla(task_token=str(token), outcome="already_worked")] if token else []
    if token:
        sla.task_token = str(token)  # the escalation's token replaces the first: only the newest resolves
    if event.name == "sla_started":
        return []  # the service recorded the start; the token is all this message adds
    sla.status = "escalated"
    sla.escalated_at = event.at
    lead = team_lead(rules.assignment, p.owner)
    to = lead or "the team lead"
    moment(
        p,
        event.at,
        "sla_escalated",
        f"SLA passed without acceptance by {p.owner or 'anyone'}; escalated to {to}",
    )
    return [
        Noted("sla_escalated", "sla", {"owner": p.owner, "team_lead": lead}),
        NotifySales(why=f"SLA escalation: not accepted by {p.owner or 'anyone'} in time; to {to}"),
    ]
