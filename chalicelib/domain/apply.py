"""Folding events into a prospect and deciding what follows: transitions, sales routing with assignment,
SLA signals, reassignment, effects.

`apply_event` folds one event (idempotently: a seen event id changes nothing); `reassess` is run once after a
batch of events to rescore, route a qualified lead or a hand-raise, and plan the next nurture touch.
Both mutate the working profile they are given and return the effects the service must carry out; neither
reads the clock or touches storage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.assignment import CRM_OWNER_TRAIT, choose_owner, team_lead
from chalicelib.domain.attribution import record_touch
from chalicelib.domain.bounds import (
    admit_topic,
    clip,
    clip_optional,
    fits_id,
    remember_recent,
    set_trait,
)
from chalicelib.domain.events import EmailEventName, Event, EventKind
from chalicelib.domain.lifecycle import (
    MAX_AMOUNT,
    MAX_NOTE_CHARS,
    MAX_OWNER_CHARS,
    MAX_REASON_CHARS,
    MAX_REVISIT_DAYS,
    NURTURED,
    RECYCLE_REASONS,
    WITH_SALES,
    State,
    Trigger,
    can,
    next_state,
)
from chalicelib.domain.messaging import plan_next_touch
from chalicelib.domain.profiling import event_location, topics_of
from chalicelib.domain.prospect import (
    MAX_ANONYMOUS_IDS,
    MAX_CRM_IDS,
    MAX_HISTORY,
    MAX_KEY_MOMENTS,
    MAX_LABEL_CHARS,
    MAX_MESSAGES,
    MAX_MOMENT_CHARS,
    MAX_PAGES,
    MAX_PATH_CHARS,
    MAX_SEEN_EVENTS,
    MAX_TITLE_CHARS,
    KeyMoment,
    PageVisit,
    Prospect,
    Recycle,
    SentMessage,
    SlaTimer,
    Suppression,
    Transition,
    event_fingerprint,
    is_reserved_trait,
)
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, add_to_bucket, day_of, prune_buckets, score


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


@dataclass(frozen=True, slots=True)
class Noted:
    """Something worth an activity entry that is not a transition (suppression, ignored CRM update...)."""

    kind: str
    actor: str
    data: dict[str, Any]


Effect = NotifySales | StartSla | ResolveSla | Changed | Assigned | EmailOutcome | Noted

TRAIT_ALIASES = {
    "firstName": "first_name",
    "firstname": "first_name",
    "lastName": "last_name",
    "lastname": "last_name",
    "jobTitle": "title",
    "job_title": "title",
    "employees": "company_size",
    "companySize": "company_size",
    "company_size": "company_size",
    "phone": "phone",
}
HARD_SUPPRESSIONS = {
    EmailEventName.COMPLAINED.value: "complaint",
    EmailEventName.UNSUBSCRIBED.value: "unsubscribed",
}


def _push(items: list[Any], item: Any, limit: int) -> None:
    items.append(item)
    if len(items) > limit:
        del items[: len(items) - limit]


def _moment(p: Prospect, at: datetime, kind: str, text: str) -> None:
    moment = KeyMoment(at=at, kind=kind, text=clip(p, "key_moments", text, MAX_MOMENT_CHARS))
    _push(p.key_moments, moment, MAX_KEY_MOMENTS)


def _merge_identity(p: Prospect, event: Event) -> None:
    if event.anonymous_id and fits_id(event.anonymous_id):
        remember_recent(p.anonymous_ids, event.anonymous_id, MAX_ANONYMOUS_IDS)
    if event.user_id and not p.user_id and fits_id(event.user_id):
        p.user_id = event.user_id
    if event.email and not p.email and fits_id(event.email):
        p.email = event.email
    if event.crm_id and fits_id(event.crm_id):
        remember_recent(p.crm_ids, event.crm_id, MAX_CRM_IDS)


def _merge_traits(p: Prospect, traits: Mapping[str, Any], rules: Rules) -> None:
    """Fold the traits a tracking source proposes: identity traits only. A name that sales or the CRM own
    (owner, CRM ids, lifecycle, suppression, scores: `is_reserved_trait`) is dropped, whatever its case or
    spelling; values are stored within the profile's bounds (plain values only, nested ones dropped)."""
    keep = {rule.trait for rule in rules.fit}  # what the rules score on is kept over other extras
    for key, value in traits.items():
        if value is None or key in ("email", "userId", "anonymousId"):
            continue
        name = TRAIT_ALIASES.get(str(key), str(key))
        if is_reserved_trait(name):
            continue  # a tracking source may propose who someone is, never who owns them
        if name == "company" and isinstance(value, Mapping):
            if value.get("employee_count") is not None:
                set_trait(p, "company_size", value["employee_count"], keep)
            if value.get("industry"):
                set_trait(p, "industry", value["industry"], keep)
            value = value.get("name")
            if value is None:
                continue
        if name == "address" and isinstance(value, Mapping):
            if value.get("country"):
                set_trait(p, "country", value["country"], keep)
            continue
        set_trait(p, name, value, keep)


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
    _push(p.history, change, MAX_HISTORY)
    p.state = target
    effects: list[Effect] = [Changed(change)]
    sla = p.sla
    if change.from_state is State.SALES_READY and sla is not None and sla.status in ("waiting", "escalated"):
        sla.resolved_at = at
        sla.status = "missed" if trigger is Trigger.SLA_EXPIRED else ("met" if at <= sla.due_at else "late")
        if sla.task_token and trigger is not Trigger.SLA_EXPIRED:
            effects.append(ResolveSla(task_token=sla.task_token, outcome=trigger.value))
    return effects


def _route(p: Prospect, trigger: Trigger, at: datetime, why: str, rules: Rules, turn: Turns) -> list[Effect]:
    effects = transition(p, trigger, at, "leadloop", reason=why)
    p.pending_hand_raise = None
    p.next_touch_at = None
    accept_seconds, escalate_seconds = rules.sla.accept_after, rules.sla.escalate_after
    p.sla = SlaTimer(started_at=at, due_at=at + timedelta(seconds=accept_seconds))
    _moment(p, at, "routed", f"routed to sales ({why})")
    if rules.assignment is not None:
        choice = choose_owner(p, rules.assignment, turn)
        effects.append(
            Assigned(owner=choice.owner, previous=p.owner, team=choice.team, why=choice.why, actor="leadloop")
        )
        p.owner = choice.owner
    return [*effects, NotifySales(why=why), StartSla(accept_seconds, escalate_seconds)]


def _engage(p: Prospect, event: Event, kind: str, rules: Rules, day: int) -> None:
    location = event_location(event)
    name = event.name.lower()
    for rule in rules.engagement_by_kind.get(kind, ()):
        if rule.name is not None and rule.name.lower() != name:
            continue
        if rule.path_pattern is not None and not rule.path_pattern.search(location):
            continue
        add_to_bucket(p.engagement, rule.id, day, rule.points)


def _interest(p: Prospect, event: Event, rules: Rules, day: int) -> None:
    for topic, weight in topics_of(event, rules):
        if admit_topic(p, topic):  # links and events may declare topics of their own: bounded
            add_to_bucket(p.interests, topic, day, weight)


def _apply_email(p: Prospect, event: Event, rules: Rules, day: int) -> list[Effect]:
    props = event.properties
    outcome = event.name
    effects: list[Effect] = []
    send_id = props.get("send_id")
    sent = next((m for m in reversed(p.messages) if send_id and m.send_id == send_id), None)
    if sent is not None:
        sent.outcomes[outcome] = sent.outcomes.get(outcome, 0) + 1
        effects.append(EmailOutcome(template=sent.template, outcome=outcome))
    elif props.get("template"):
        effects.append(EmailOutcome(template=str(props["template"]), outcome=outcome))
    if outcome == EmailEventName.OPENED and props.get("machine_open"):
        return effects  # machine opens (Apple MPP, scanners) say nothing about the person
    if outcome in (EmailEventName.OPENED, EmailEventName.CLICKED):
        _engage(p, event, "email", rules, day)
    if outcome == EmailEventName.CLICKED:
        _interest(p, event, rules, day)
        _moment(p, event.at, "email_click", f"clicked {props.get('url', 'a link')}")
    suppression = HARD_SUPPRESSIONS.get(outcome)
    if outcome == EmailEventName.BOUNCED and props.get("bounce") == "hard":
        suppression = "hard_bounce"
    if suppression and p.suppression is None:
        p.suppression = Suppression(reason=suppression, at=event.at)
        p.next_touch_at = None
        _moment(p, event.at, "suppressed", f"email suppressed: {suppression}")
        effects.append(
            Noted("suppressed", str(props.get("provider") or event.source), {"reason": suppression})
        )
    return effects


def _apply_tracking(p: Prospect, event: Event, rules: Rules, day: int) -> list[Effect]:
    kind = event.kind
    record_touch(p, event)  # only tracking sources say where a visit came from
    if kind in (EventKind.IDENTIFY, EventKind.GROUP):
        _merge_traits(p, event.traits, rules)
        _engage(p, event, "identify", rules, day)
    elif kind in (EventKind.PAGE, EventKind.SCREEN):
        path = str(event.properties.get("path") or event.properties.get("url") or event.name or "")
        title = str(event.properties.get("title") or event.name or "")
        visit = PageVisit(
            at=event.at,
            path=clip(p, "pages", path, MAX_PATH_CHARS),
            title=clip(p, "pages", title, MAX_TITLE_CHARS),
        )
        _push(p.pages, visit, MAX_PAGES)
        _engage(p, event, kind.value, rules, day)
        _interest(p, event, rules, day)
    elif kind is EventKind.TRACK:
        if event.traits:
            _merge_traits(p, event.traits, rules)
        _engage(p, event, "track", rules, day)
        _interest(p, event, rules, day)
        if event.name.lower() in rules.hand_raise_names:
            add_to_bucket(p.engagement, _hand_raise_rule(rules), day, _hand_raise_points(rules))
            p.pending_hand_raise = clip(p, "key_moments", event.name, MAX_LABEL_CHARS)
            _moment(p, event.at, "hand_raise", f"raised a hand: {event.name}")
        elif _is_notable(event, rules):
            _moment(p, event.at, "event", event.name)
    return []


def _hand_raise_rule(rules: Rules) -> str:
    return next((rule.id for rule in rules.engagement_by_kind.get("hand_raise", ())), "hand_raise")


def _hand_raise_points(rules: Rules) -> float:
    return next((rule.points for rule in rules.engagement_by_kind.get("hand_raise", ())), 0.0)


def _is_notable(event: Event, rules: Rules) -> bool:
    name = event.name.lower()
    return any(rule.name and rule.name.lower() == name for rule in rules.engagement_by_kind.get("track", ()))


def apply_event(p: Prospect, event: Event, rules: Rules) -> list[Effect] | None:
    """Fold one event into the profile. Returns None for an event already applied (a duplicate)."""
    fingerprint = event_fingerprint(event.message_id)
    if fingerprint in p.seen:
        return None
    _push(p.seen, fingerprint, MAX_SEEN_EVENTS)
    _merge_identity(p, event)
    if p.last_activity_at is None or event.at > p.last_activity_at:
        p.last_activity_at = event.at
    day = day_of(event.at)
    if event.kind is EventKind.EMAIL:
        effects = _apply_email(p, event, rules, day)
    elif event.kind in (EventKind.SALES, EventKind.CRM):
        effects = apply_command(p, event, rules)
    else:
        effects = _apply_tracking(p, event, rules, day)
    if p.state is State.ANONYMOUS and (p.email or p.user_id):
        effects = transition(p, Trigger.IDENTIFIED, event.at, "leadloop") + effects
    return effects


# --- commands from sales, the CRM and the SLA workflow ---

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
    if trigger is Trigger.ACCEPT:
        p.owner = str(props.get("owner") or p.owner or actor)
    if amount is not None:
        p.amount = float(amount)
    if trigger is Trigger.SLA_EXPIRED:
        p.owner = None
        _moment(p, event.at, "sla_missed", "not accepted within the SLA; back to nurture")
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
    _moment(p, event.at, "recycled", f"recycled by {actor}: {reason}")
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
    _moment(p, event.at, "reassigned", f"reassigned by {actor} from {previous or 'nobody'} to {p.owner}")
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
    _moment(
        p,
        event.at,
        "sla_escalated",
        f"SLA passed without acceptance by {p.owner or 'anyone'}; escalated to {to}",
    )
    return [
        Noted("sla_escalated", "sla", {"owner": p.owner, "team_lead": lead}),
        NotifySales(why=f"SLA escalation: not accepted by {p.owner or 'anyone'} in time; to {to}"),
    ]


# --- after a batch: rescore, route, plan ---


def reassess(p: Prospect, rules: Rules, now: datetime, turn: Turns = no_turns) -> tuple[Scores, list[Effect]]:
    """Rescore; route a pending hand-raise or a qualified lead (assigning its owner; `turn` is each team's
    round robin position); reopen a long-lost lead; plan the next touch. (The whole profile is kept within
    its budget once per write: `bounds.keep_within_budget`, called by the service.)"""
    effects: list[Effect] = []
    if (
        p.state is State.LOST
        and p.history
        and now - p.history[-1].at >= timedelta(days=rules.lost_reopen_days)
    ):
        effects += transition(p, Trigger.REOPEN, now, "leadloop", reason="lost_reopen_delay")
    scores = score(p, rules, now)
    if p.state in NURTURED:
        if p.pending_hand_raise:
            effects += _route(p, Trigger.HAND_RAISE, now, f"hand-raise: {p.pending_hand_raise}", rules, turn)
            scores = score(p, rules, now)
        elif _qualifies(p, scores, rules, now):
            why = (
                f"qualified: fit {scores.fit:g} ≥ {rules.thresholds.fit:g}, "
                f"engagement {scores.engagement:g} ≥ {rules.thresholds.engagement:g}"
            )
            effects += _route(p, Trigger.QUALIFIED, now, why, rules, turn)
    elif p.pending_hand_raise and not can(p.state, Trigger.HAND_RAISE) and p.state is not State.ANONYMOUS:
        p.pending_hand_raise = (
            None  # already with sales (or closed): the moment is recorded, nothing to route
        )
    p.rules_version = rules.version
    p.next_touch_at = plan_next_touch(p, rules, now)
    today = day_of(now)
    prune_buckets(p.engagement, today)
    prune_buckets(p.interests, today)
    return scores, effects


def _qualifies(p: Prospect, scores: Scores, rules: Rules, now: datetime) -> bool:
    recycle = p.current_recycle
    if recycle is not None and recycle.revisit_at is not None and now < recycle.revisit_at:
        return False  # sales asked us to wait; only the buyer raising a hand overrides that
    if recycle is not None and not _engaged_since(p, recycle.at):
        return False  # the score that sent it to sales last time does not count twice
    last = p.history[-1] if p.history else None
    if last is not None and last.trigger is Trigger.SLA_EXPIRED and not _engaged_since(p, last.at):
        return False  # nobody worked it: re-routing the same score at once would only miss again
    return scores.fit >= rules.thresholds.fit and scores.engagement >= rules.thresholds.engagement


def _engaged_since(p: Prospect, moment: datetime) -> bool:
    return (
        p.last_activity_at is not None
        and p.last_activity_at > moment
        and any(page.at > moment for page in p.pages)
    )


def record_send(p: Prospect, send_id: str, template: str, version: int, at: datetime, why: str) -> None:
    _push(
        p.messages,
        SentMessage(send_id=send_id, template=template, version=version, at=at, reason=why),
        MAX_MESSAGES,
    )
