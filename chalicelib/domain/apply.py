"""Folding events into a prospect: tracking and email events (identity, traits, pages, engagement,
interests, key moments, a pending hand-raise), and sales and CRM events through `sales_actions`. What
follows a batch of them (rescore, route, plan the next touch) is `reassess`'s; the effects and the
transition primitive both use are in `decisions`.

`apply_event` folds one event (idempotently: a seen event id changes nothing). It mutates the working
profile it is given and returns the effects the service must carry out; it neither reads the clock nor
touches storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain.accounts import join_account
from chalicelib.domain.attribution import record_touch
from chalicelib.domain.bounds import (
    admit_topic,
    clip,
    fits_id,
    remember_recent,
    set_trait,
)
from chalicelib.domain.decisions import (
    Effect,
    EmailOutcome,
    Noted,
    moment,
    push,
    transition,
)
from chalicelib.domain.events import EmailEventName, Event, EventKind
from chalicelib.domain.lifecycle import (
    State,
    Trigger,
)
from chalicelib.domain.profiling import event_location, topics_of
from chalicelib.domain.prospect import (
    MAX_ANONYMOUS_IDS,
    MAX_CRM_IDS,
    MAX_EVENT_PROPERTIES,
    MAX_INTEREST_TOPICS,
    MAX_LABEL_CHARS,
    MAX_OTHER_EVENTS,
    MAX_PAGES,
    MAX_PATH_CHARS,
    MAX_PROPERTY_CHARS,
    MAX_TITLE_CHARS,
    MAX_TOPIC_CHARS,
    OtherEvent,
    PageVisit,
    Prospect,
    Suppression,
    event_fingerprint,
    is_reserved_trait,
)
from chalicelib.domain.rules import Rules
from chalicelib.domain.sales_actions import apply_command
from chalicelib.domain.scoring import add_to_bucket, day_of
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
    event: Event, kind: EventKind, rules: Rules, location: str
) -> tuple[tuple[tuple[str, float], ...], Sequence[tuple[str, float]]]:
    """A page's engagement rule hits and weighted topics, as `_engage` and `_interest` find them: most
    events are pages, and a site's pages repeat, so both are remembered per rules document by exactly what
    they read (the kind, the page's location and URL, its category, the event's name), one key instead of
    one each. A page declaring topics of its own goes the long way. `location`: the page's, as
    `event_location` reads it (the caller has it)."""
    props = event.properties
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
        where = props.get("path") or props.get("url")
        path = str(where or event.name or "")
        title = str(props.get("title") or event.name or "")
        visit = PageVisit(
            event.at,
            path if len(path) <= MAX_PATH_CHARS else clip(p, "pages", path, MAX_PATH_CHARS),
            title if len(title) <= MAX_TITLE_CHARS else clip(p, "pages", title, MAX_TITLE_CHARS),
        )
        pages = p.pages
        pages.append(visit)  # push, inline
        if len(pages) > MAX_PAGES:
            del pages[: len(pages) - MAX_PAGES]
        engaged, topics = _page_signals(event, kind, rules, path if where else "")
        # As _engage, then _interest, with add_to_bucket inline (a page adds a few points: a call each saved).
        groups = p.engagement
        for rule_id, points in engaged:
            days = groups.get(rule_id)
            if days is None:
                days = groups[rule_id] = {}
            days[day] = days.get(day, 0.0) + points
        groups = p.interests
        for topic, weight in topics:
            # admit_topic's answer is yes, without the call, for a short name already held or with room.
            if (
                len(topic) <= MAX_TOPIC_CHARS and (topic in groups or len(groups) < MAX_INTEREST_TOPICS)
            ) or admit_topic(p, topic):
                days = groups.get(topic)
                if days is None:
                    days = groups[topic] = {}
                days[day] = days.get(day, 0.0) + weight
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
        seen = p.seen
        # The window's own collections, not __contains__: one call fewer per event. `recalled` holds what
        # the store found in the window's chunks (chalicelib.domain.seen), usually nothing.
        if fingerprint in seen.hours or fingerprint in seen.recalled:
            return None
        seen.remember(fingerprint, now or event.at)
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
