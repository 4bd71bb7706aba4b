"""A working copy of a prospect profile that shares nothing mutable with the original: `copy_prospect`.

The rules shadow (usecases/shadow.py) applies a batch's events to its own copy of the profile as it was
before them, so the worker copies each profile it writes while a shadow is active. `copy.deepcopy` spent
more on that than the worker spent applying the events (its memo and per-object dispatch); this copy
rebuilds each field knowing its shape: a new list of new records for each list of records (every record
here is mutable, and the domain does mutate some in place: a message's outcomes, an SLA's status, a
transition's note cut by the bounds), a new dict of new day buckets for engagement and interests, a new
seen window. Values that are immutable (str, numbers, datetimes, enums, tuples of str) are shared.
tests/unit/test_prospect_copy.py walks every field, so a field added to a record is not forgotten here.
"""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.domain.prospect import (
    AccountLink,
    DayBuckets,
    KeyMoment,
    OtherEvent,
    PageVisit,
    Prospect,
    Recycle,
    SentMessage,
    SlaTimer,
    Suppression,
    Touch,
    Transition,
)
from chalicelib.domain.seen import SeenWindow

# Trait values are plain by the bounds (bounds._plain); anything else (a document stored before the bounds)
# is deep-copied, so the copy stays independent whatever it holds.
_PLAIN = (str, int, float, bool, type(None))


def copy_prospect(p: Prospect) -> Prospect:
    """A copy of `p` that can be changed in every field without touching `p` (or `p` without it)."""
    return Prospect(
        lead_id=p.lead_id,
        created_at=p.created_at,
        source=p.source,
        anonymous_ids=list(p.anonymous_ids),
        user_id=p.user_id,
        email=p.email,
        crm_ids=list(p.crm_ids),
        traits=_plain_values(p.traits),
        engagement=_buckets(p.engagement),
        interests=_buckets(p.interests),
        state=p.state,
        owner=p.owner,
        history=[
            Transition(t.at, t.from_state, t.to_state, t.trigger, t.actor, t.reason, t.note)
            for t in p.history
        ],
        suppression=Suppression(p.suppression.reason, p.suppression.at) if p.suppression else None,
        messages=[_message(m) for m in p.messages],
        key_moments=[KeyMoment(k.at, k.kind, k.text) for k in p.key_moments],
        other_events=[OtherEvent(o.at, o.name, list(o.properties)) for o in p.other_events],
        pages=[PageVisit(v.at, v.path, v.title) for v in p.pages],
        recycles=[Recycle(r.reason, r.at, r.actor, r.note, r.revisit_at, r.count) for r in p.recycles],
        sla=_sla(p.sla) if p.sla else None,
        next_touch_at=p.next_touch_at,
        nurture_waiting=p.nurture_waiting,
        seen=SeenWindow(dict(p.seen.hours), p.seen.unstamped, list(p.seen.chunks), set(p.seen.recalled)),
        last_activity_at=p.last_activity_at,
        amount=p.amount,
        rules_version=p.rules_version,
        pending_hand_raise=p.pending_hand_raise,
        first_touch=_touch(p.first_touch) if p.first_touch else None,
        last_touch=_touch(p.last_touch) if p.last_touch else None,
        accounts=[AccountLink(a.account_id, a.at, _plain_values(a.traits), a.synced_day) for a in p.accounts],
        trimmed=dict(p.trimmed),
    )


def _plain_values(values: dict[str, Any]) -> dict[str, Any]:
    for value in values.values():
        if not isinstance(value, _PLAIN):
            return copy.deepcopy(values)
    return dict(values)


def _buckets(by_name: dict[str, DayBuckets]) -> dict[str, DayBuckets]:
    return {name: dict(days) for name, days in by_name.items()}


def _message(m: SentMessage) -> SentMessage:
    return SentMessage(
        m.send_id,
        m.template,
        m.version,
        m.at,
        m.reason,
        dict(m.outcomes),
        m.status,
        m.tries,
        m.error,
        m.context,
        list(m.learned),
    )


def _sla(s: SlaTimer) -> SlaTimer:
    return SlaTimer(s.started_at, s.due_at, s.status, s.task_token, s.escalated_at, s.resolved_at)


def _touch(t: Touch) -> Touch:
    return Touch(t.at, t.source, t.medium, t.campaign, t.term, t.content, t.referrer, t.landing_page)
