"""Folding events into a prospect and deciding what follows: tracking and email events, routing a lead to
sales with its owner, the next nurture touch. Sales and CRM commands are in `sales_actions`; the effects
and the transition primitive both use are in `decisions`.

`apply_event` folds one event (idempotently: a seen event id changes nothing); `reassess` is run once after a
batch of events to rescore, route a qualified lead or a hand-raise, and plan the next nurture touch.
Both mutate the working profile they are given and return the effects the service must carry out; neither
reads the clock or touches storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.accounts import join_account, sync_accounts
from chalicelib.domain.assignment import choose_owner
from chalicelib.domain.attribution import record_touch
from chalicelib.domain.bounds import (
    admit_topic,
    clip,
    fits_id,
    remember_recent,
    set_trait,
)
from chalicelib.domain.decisions import (
    Assigned,
    Effect,
    EmailOutcome,
    Noted,
    NotifySales,
    StartSla,
    Turns,
    moment,
    no_turns,
    push,
    transition,
)
from chalicelib.domain.events import EmailEventName, Event, EventKind
from chalicelib.domain.lifecycle import (
    NURTURED,
    State,
    Trigger,
    can,
)
from chalicelib.domain.messaging import plan_next_touch
from chalicelib.domain.profiling import event_location, topics_of
from chalicelib.domain.prospect import (
    MAX_ANONYMOUS_IDS,
    MAX_CRM_IDS,
    MAX_EVENT_PROPERTIES,
    MAX_LABEL_CHARS,
    MAX_MESSAGES,
    MAX_OTHER_EVENTS,
    MAX_PAGES,
    MAX_PATH_CHARS,
    MAX_PROPERTY_CHARS,
    MAX_TITLE_CHARS,
    OtherEvent,
    PageVisit,
    Prospect,
    SentMessage,
    SlaTimer,
    Suppression,
    event_fingerprint,
    is_reserved_trait,
)
from chalicelib.domain.routing import LOW_FIT_HAND_RAISE, Route, hand_raise_route, qualified_route
from chalicelib.domain.rules import Rules
from chalicelib.domain.sales_actions import apply_command
from chalicelib.domain.scoring import Scores, add_to_bucket, day_of, prune_buckets, score
from chalicelib.domain.sending import credit_hand_raise, learns_from

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


def _merge_identity(p: Prospect, event: Event) -> None:
    anonymous_id = event.anonymous_id
    if anonymous_id:
        known = p.anonymous_ids
        # Most events come from the browser seen last: remember_recent would leave the ids as they are.
        if not (known and known[-1] == anonymous_id) and fits_id(anonymous_id):
            remember_recent(known, anonymous_id, MAX_ANONYMOUS_IDS)
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


def _route(p: Prospect, trigger: Trigger, at: datetime, why: str, rules: Rules, turn: Turns) -> list[Effect]:
    effects = transition(p, trigger, at, "leadloop", reason=why)
    p.pending_hand_raise = None
    p.next_touch_at = None
    accept_seconds, escalate_seconds = rules.sla.accept_after, rules.sla.escalate_after
    p.sla = SlaTimer(started_at=at, due_at=at + timedelta(seconds=accept_seconds))
    moment(p, at, "routed", f"routed to sales ({why})")
    if rules.assignment is not None:
        choice = choose_owner(p, rules.assignment, turn)
        effects.append(
            Assigned(owner=choice.owner, previous=p.owner, team=choice.team, why=choice.why, actor="leadloop")
        )
        p.owner = choice.owner
    return [*effects, NotifySales(why=why), StartSla(accept_seconds, escalate_seconds)]


def _engage(
    p: Prospect, event: Event, kind: str, rules: Rules, day: int, location: str | None = None
) -> None:
    where = event_location(event) if location is None else location
    for rule_id, points in _engagement_rules(rules, kind, where, event.name.lower()):
        add_to_bucket(p.engagement, rule_id, day, points)


def _engagement_rules(rules: Rules, kind: str, location: str, name: str) -> tuple[tuple[str, float], ...]:
    """The engagement rules an event matches; sites repeat a few hundred paths: remembered per document."""
    key = (kind, location, name)
    cache = rules.engagement_cache
    found = cache.get(key)
    if found is None:
        found = tuple(
            (rule.id, rule.points)
            for rule in rules.engagement_by_kind.get(kind, ())
            if (rule.name is None or rule.name.lower() == name)
            and (rule.path_pattern is None or rule.path_pattern.search(location))
        )
        if len(cache) >= ENGAGEMENT_CACHE_SIZE:
            cache.clear()
        cache[key] = found
    return found


ENGAGEMENT_CACHE_SIZE = 8192


def _page_signals(
    event: Event, kind: EventKind, rules: Rules
) -> tuple[tuple[tuple[str, float], ...], Sequence[tuple[str, float]]]:
    """A page's engagement rule hits and weighted topics, as `_engage` and `_interest` find them: most
    events are pages, and a site's pages repeat, so both are remembered per rules document by exactly what
    they read (the kind, the page's location and URL, its category, the event's name), one key instead of
    one each. A page declaring topics of its own goes the long way."""
    props = event.properties
    location = str(props.get("path") or props.get("url") or "")  # event_location
    declared = props.get("topics")
    if isinstance(declared, list | tuple):
        name = event.name.lower()
        return _engagement_rules(rules, kind, location, name), topics_of(event, rules, location)
    category = props.get("category")
    key = (
        kind,
        location,
        str(props.get("url") or ""),
        category if isinstance(category, str) and category else None,
        event.name,
    )
    cache = rules.page_cache
    found = cache.get(key)
    if found is None:
        found = (
            _engagement_rules(rules, kind, location, event.name.lower()),
            topics_of(event, rules, location),
        )
        if len(cache) >= PAGE_CACHE_SIZE:
            cache.clear()
        cache[key] = found
    return found


PAGE_CACHE_SIZE = 8192


def _interest(p: Prospect, event: Event, rules: Rules, day: int, location: str | None = None) -> None:
    # Stored as shown; `interest.daily_cap` applies when read (scoring.interest_weights), so merges and
    # redeliveries in any order give the same interests.
    for topic, weight in topics_of(event, rules, location):
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
        learn_in = learns_from(sent, outcome, machine_open=bool(props.get("machine_open")))
        effects.append(EmailOutcome(template=sent.template, outcome=outcome, learn_in=learn_in))
    elif props.get("template"):
        effects.append(EmailOutcome(template=str(props["template"]), outcome=outcome))
    if outcome == EmailEventName.OPENED and props.get("machine_open"):
        return effects  # machine opens (Apple MPP, scanners) say nothing about the person
    if outcome in (EmailEventName.OPENED, EmailEventName.CLICKED):
        _engage(p, event, "email", rules, day)
    if outcome == EmailEventName.CLICKED:
        _interest(p, event, rules, day)
        moment(p, event.at, "email_click", f"clicked {props.get('url', 'a link')}")
    suppression = HARD_SUPPRESSIONS.get(outcome)
    if outcome == EmailEventName.BOUNCED and props.get("bounce") == "hard":
        suppression = "hard_bounce"
    if suppression and p.suppression is None:
        p.suppression = Suppression(reason=suppression, at=event.at)
        p.next_touch_at = None
        moment(p, event.at, "suppressed", f"email suppressed: {suppression}")
        effects.append(
            Noted("suppressed", str(props.get("provider") or event.source), {"reason": suppression})
        )
    return effects


_PAGES = (EventKind.PAGE, EventKind.SCREEN)


def _apply_tracking(p: Prospect, event: Event, rules: Rules, day: int) -> list[Effect]:
    kind = event.kind
    if event.attribution is not None:
        record_touch(p, event)  # only tracking sources say where a visit came from
    if kind in _PAGES:  # most events: asked first (the kinds exclude each other)
        props = event.properties
        path = str(props.get("path") or props.get("url") or event.name or "")
        title = str(props.get("title") or event.name or "")
        visit = PageVisit(
            event.at,
            path if len(path) <= MAX_PATH_CHARS else clip(p, "pages", path, MAX_PATH_CHARS),
            title if len(title) <= MAX_TITLE_CHARS else clip(p, "pages", title, MAX_TITLE_CHARS),
        )
        push(p.pages, visit, MAX_PAGES)
        engaged, topics = _page_signals(event, kind, rules)
        for rule_id, points in engaged:  # as _engage, then _interest
            add_to_bucket(p.engagement, rule_id, day, points)
        for topic, weight in topics:
            if admit_topic(p, topic):
                add_to_bucket(p.interests, topic, day, weight)
    elif kind is EventKind.IDENTIFY:
        _merge_traits(p, event.traits, rules)
        _engage(p, event, "identify", rules, day)
    elif kind is EventKind.GROUP:
        # A group call describes the person's company: it links them to the account, never renames them.
        group_id = str(event.properties.get("group_id") or "")
        _engage(p, event, "identify", rules, day)
        return join_account(p, group_id, event.traits, event.at) if group_id else []
    elif kind is EventKind.TRACK:
        if event.traits:
            _merge_traits(p, event.traits, rules)
        _engage(p, event, "track", rules, day)
        _interest(p, event, rules, day)
        if event.name.lower() in rules.hand_raise_names:
            add_to_bucket(p.engagement, _hand_raise_rule(rules), day, _hand_raise_points(rules))
            p.pending_hand_raise = clip(p, "key_moments", event.name, MAX_LABEL_CHARS)
            moment(p, event.at, "hand_raise", f"raised a hand: {_about(event)}")
            return list(credit_hand_raise(p, event.at))  # the nurture send it answers, if recent
        elif _is_notable(event, rules):
            moment(p, event.at, "event", _about(event))
        else:
            # No rule scores it, so no key moment says it happened: the timeline still shows it (issue 13).
            name = clip(p, "other_events", event.name, MAX_LABEL_CHARS)
            push(p.other_events, OtherEvent(event.at, name, _picked_properties(event)), MAX_OTHER_EVENTS)
    return []


# The few properties that say what an event was about (the webinar's name, the asset downloaded): the profile
# keeps no event's properties otherwise, so the key moment carries them, bounded by its text limit (README
# "Profile bounds") and shown as text on the lead page.
MOMENT_PROPERTIES = (
    "webinar_name",
    "webinar",
    "asset_name",
    "asset",
    "content_name",
    "file_name",
    "title",
    "name",
)
MOMENT_PROPERTY_CHARS = MAX_PROPERTY_CHARS


def _picked_properties(event: Event) -> list[tuple[str, str]]:
    """The first few of MOMENT_PROPERTIES the event carries, as (name, value) pairs, each value on one line
    and within MAX_PROPERTY_CHARS."""
    picked: list[tuple[str, str]] = []
    for key in MOMENT_PROPERTIES:
        value = event.properties.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            picked.append((key, " ".join(str(value).split())[:MOMENT_PROPERTY_CHARS]))
        if len(picked) == MAX_EVENT_PROPERTIES:
            break
    return picked


def _about(event: Event) -> str:
    shown = [f"{key.replace('_', ' ')}: {text}" for key, text in _picked_properties(event)]
    return f"{event.name} ({'; '.join(shown)})" if shown else event.name


def _hand_raise_rule(rules: Rules) -> str:
    return next((rule.id for rule in rules.engagement_by_kind.get("hand_raise", ())), "hand_raise")


def _hand_raise_points(rules: Rules) -> float:
    return next((rule.points for rule in rules.engagement_by_kind.get("hand_raise", ())), 0.0)


def _is_notable(event: Event, rules: Rules) -> bool:
    return event.name.lower() in rules.notable_names


def apply_event(
    p: Prospect, event: Event, rules: Rules, now: datetime | None = None, *, deduplicated: bool = False
) -> list[Effect] | None:
    """Fold one event into the profile. Returns None for an event already applied (a duplicate): one whose
    id was applied within the idempotency window's horizon before `now` (when the event is applied; a
    replay without a clock passes none and the event's own time stands in). `deduplicated`: the caller has
    removed every duplicate already (the rules lab's replay, whose histories hold each event id once, and
    whose profiles are read for their decisions only), so the profile's window of seen ids is neither
    read nor kept: a tenth of a replay's time, spent on an answer known in advance."""
    if not deduplicated:
        fingerprint = event_fingerprint(event.message_id)
        if fingerprint in p.seen.hours:  # the window's own dict: no __contains__ call per event
            return None
        p.seen.remember(fingerprint, now or event.at)
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


# --- after a batch: rescore, route, plan ---


def reassess(p: Prospect, rules: Rules, now: datetime, turn: Turns = no_turns) -> tuple[Scores, list[Effect]]:
    """Rescore; route a pending hand-raise or a qualified lead (assigning its owner; `turn` is each team's
    round robin position); reopen a long-lost lead; plan the next touch. (The whole profile is kept within
    its budget once per write: `bounds.keep_within_budget`, called by the service.)"""
    scores, effects = _reassess(p, rules, now, turn, scored=True)
    assert scores is not None  # scored=True: always scored
    return scores, effects


def settle(p: Prospect, rules: Rules, now: datetime, turn: Turns = no_turns) -> Scores | None:
    """Everything `reassess` does to the profile, without scoring a lead whose scores decide nothing now (not
    in nurture: nothing to route): for a replay, whose reassessments before a lead's last are read for
    what they change, not for their scores. The scores when they were computed (a lead in nurture), else
    None."""
    return _reassess(p, rules, now, turn, scored=False)[0]


def _reassess(
    p: Prospect, rules: Rules, now: datetime, turn: Turns, *, scored: bool
) -> tuple[Scores | None, list[Effect]]:
    effects: list[Effect] = []
    if (
        p.state is State.LOST
        and p.history
        and now - p.history[-1].at >= timedelta(days=rules.lost_reopen_days)
    ):
        effects += transition(p, Trigger.REOPEN, now, "leadloop", reason="lost_reopen_delay")
    # Scoring reads the profile and changes nothing: skipped (scored=False) only where routing does not read
    # it, so the profile ends exactly as reassess leaves it.
    scores = score(p, rules, now) if scored or p.state in NURTURED else None
    route = decide_route(p, scores, rules, now)
    return _carry_out(p, rules, now, turn, scores, route, effects)


def decide_route(p: Prospect, scores: Scores | None, rules: Rules, now: datetime) -> Route | None:
    """The route the rules take for the lead now, given its scores (None: it stays where it is; a lead not
    in nurture is never routed). Pure: the rules lab asks it of two rule sets for one profile."""
    if p.state not in NURTURED or scores is None:
        return None
    if p.pending_hand_raise:
        return hand_raise_route(p, scores, rules, now)
    return qualified_route(p, scores, rules, now)


def settle_decided(
    p: Prospect, rules: Rules, now: datetime, scores: Scores | None, route: Route | None
) -> Scores | None:
    """`settle` for a lead that is not lost, whose scores (None: not in nurture) and route
    (`decide_route`) are already known: the profile ends as `settle` leaves it. The rules lab settles a lead
    once for two rule sets that decide it alike (chalicelib/lab/sharing.py)."""
    assert p.state is not State.LOST  # reopening comes before scoring: not for a decision made already
    return _carry_out(p, rules, now, no_turns, scores, route, [])[0]


def _carry_out(
    p: Prospect,
    rules: Rules,
    now: datetime,
    turn: Turns,
    scores: Scores | None,
    route: Route | None,
    effects: list[Effect],
) -> tuple[Scores | None, list[Effect]]:
    """The decided route taken (owner, SLA, notice; the lead rescored), then the rest of a reassessment,
    which the rules read only for their version and the nurture cadence."""
    if route is not None:
        if route.path == LOW_FIT_HAND_RAISE:  # routed all the same (buyers decide), flagged for sales
            moment(p, now, LOW_FIT_HAND_RAISE, route.why)
        effects += _route(p, route.trigger, now, route.why, rules, turn)
        scores = score(p, rules, now)
    elif (
        p.state not in NURTURED
        and p.pending_hand_raise
        and not can(p.state, Trigger.HAND_RAISE)
        and p.state is not State.ANONYMOUS
    ):
        p.pending_hand_raise = (
            None  # already with sales (or closed): the moment is recorded, nothing to route
        )
    p.rules_version = rules.version
    p.next_touch_at = plan_next_touch(p, rules, now)
    today = day_of(now)
    prune_buckets(p.engagement, today)
    prune_buckets(p.interests, today)
    effects += sync_accounts(p)  # member rows follow the person's engagement, at most once a day
    return scores, effects


def record_send(p: Prospect, send_id: str, template: str, version: int, at: datetime, why: str) -> None:
    push(
        p.messages,
        SentMessage(send_id=send_id, template=template, version=version, at=at, reason=why),
        MAX_MESSAGES,
    )
