"""Merging two profiles of one person: an anonymous visitor who turns out to be a known contact.

Everything learnt about either half is kept (identities, traits, engagement, interests, pages, messages,
recycles, suppression, the earlier first touch and the later last touch); the lifecycle keeps the furthest
point either half reached, so a routed visitor is neither taken from sales nor routed a second time. The
merged profile keeps the profile bounds (the newest of each list; reassess then fits the whole to its byte
budget).
"""

from __future__ import annotations

from chalicelib.domain.accounts import absorb_accounts
from chalicelib.domain.attribution import absorb_touches
from chalicelib.domain.bounds import set_trait
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import (
    MAX_ANONYMOUS_IDS,
    MAX_CRM_IDS,
    MAX_HISTORY,
    MAX_KEY_MOMENTS,
    MAX_MESSAGES,
    MAX_OTHER_EVENTS,
    MAX_PAGES,
    MAX_RECYCLES,
    Prospect,
)


def absorb_profile(p: Prospect, other: Prospect) -> None:
    """Fold a merged-away profile (an anonymous visitor who identified) into the surviving one."""
    # The survivor's own ids are the newest: the merged-away ones go first when the list is full.
    p.anonymous_ids[:0] = [a for a in other.anonymous_ids if a not in p.anonymous_ids]
    del p.anonymous_ids[:-MAX_ANONYMOUS_IDS]
    p.user_id = p.user_id or other.user_id
    p.email = p.email or other.email
    p.crm_ids[:0] = [c for c in other.crm_ids if c not in p.crm_ids]
    del p.crm_ids[:-MAX_CRM_IDS]
    for key, value in other.traits.items():
        if key not in p.traits:
            set_trait(p, key, value)
    for groups_into, groups_from in ((p.engagement, other.engagement), (p.interests, other.interests)):
        for key, days in groups_from.items():
            target = groups_into.setdefault(key, {})
            for day, points in days.items():
                target[day] = target.get(day, 0.0) + points
    p.pages = sorted(p.pages + other.pages, key=lambda v: v.at)[-MAX_PAGES:]
    p.key_moments = sorted(p.key_moments + other.key_moments, key=lambda k: k.at)[-MAX_KEY_MOMENTS:]
    p.other_events = sorted(p.other_events + other.other_events, key=lambda e: e.at)[-MAX_OTHER_EVENTS:]
    p.seen.absorb(other.seen)
    p.pending_hand_raise = p.pending_hand_raise or other.pending_hand_raise
    if other.created_at < p.created_at:
        p.created_at = other.created_at
        p.source = other.source or p.source
    absorb_accounts(p, other)  # the person belongs to every account either half was linked to
    absorb_touches(p, other)  # the earlier first touch wins: the person's first visit, whichever half saw it
    if other.last_activity_at and (p.last_activity_at is None or other.last_activity_at > p.last_activity_at):
        p.last_activity_at = other.last_activity_at
    p.messages = sorted(p.messages + other.messages, key=lambda m: m.at)[-MAX_MESSAGES:]
    p.recycles = sorted(p.recycles + other.recycles, key=lambda r: r.at)[-MAX_RECYCLES:]
    if p.suppression is None or (other.suppression is not None and other.suppression.at < p.suppression.at):
        p.suppression = other.suppression or p.suppression
    # The lead keeps the furthest point either half reached: a routed visitor who turns out to be a known
    # nurtured contact stays with sales (and is not routed, nor sales notified, a second time).
    if LIFECYCLE_RANK[other.state] > LIFECYCLE_RANK[p.state]:
        p.state, p.owner, p.sla, p.amount = (
            other.state,
            other.owner or p.owner,
            other.sla,
            other.amount or p.amount,
        )
    p.history = sorted(p.history + other.history, key=lambda t: t.at)[-MAX_HISTORY:]


LIFECYCLE_RANK = {
    State.ANONYMOUS: 0,
    State.NURTURING: 1,
    State.SALES_READY: 2,
    State.ACCEPTED: 3,
    State.OPPORTUNITY: 4,
    State.LOST: 5,
    State.DISQUALIFIED: 5,
    State.WON: 6,
}
