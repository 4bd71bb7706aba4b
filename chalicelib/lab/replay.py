"""Replaying archived events through the worker's own domain code, once per rule set: pure, no I/O.

Each lead's archived events are folded in time order with `apply_event` into a fresh profile and the lead is
reassessed (`reassess`: scoring and routing, as the worker does after a batch) whenever the events pause
for more than `BURST`, at the time of the last event of the burst; a lead the worker merged into another
(`histories`) is replayed apart until the event that joined them, then absorbed as the worker does.
Sales and CRM events are not replayed:
they record what sales did with the leads the live rules sent them, which is the outcome the report judges
against (chalicelib/lab/report.py), not a signal a rules change could alter. What is kept of a lead per rule
set is when it was first routed to sales, why, its score at the end of the window and, given the catalogue
of active templates, the template nurture would send it next (chalicelib/lab/choices.py: once per lead, at
its last event, not per event).

`replay_shard` is the shard function: whole histories in, one JSON-ready row per lead out; the rows of all
shards are what `report.build_report` merges. As long as the two rule sets cannot treat a lead differently
yet, its events are folded once and each rule set goes on from its own copy where they could
(chalicelib/lab/sharing.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from chalicelib.domain.apply import apply_event
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.decisions import InvalidCommand
from chalicelib.domain.events import Event, EventKind, alias_keys, identity_keys, internal_id
from chalicelib.domain.lifecycle import IllegalTransition, State, Trigger
from chalicelib.domain.merge import absorb_profile
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess, settle
from chalicelib.domain.routing import LOW_FIT_HAND_RAISE, OPENINGS
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores
from chalicelib.lab.choices import next_choice
from chalicelib.lab.layout import ArchivedEvent, merged_leads
from chalicelib.lab.sharing import BURST, NOT_REPLAYED, SharedPrefix, Sharing, fold_shared

ROUTED = frozenset({Trigger.QUALIFIED, Trigger.HAND_RAISE})


@dataclass(frozen=True, slots=True)
class LeadRun:
    routed_at: datetime | None
    reason: str | None  # qualified | hand_raise | low_fit_hand_raise
    why: str | None
    score: float
    chose: bool = False  # whether the next template was asked for (a catalogue was given)
    next_template: str | None = None  # None: nurture would wait
    next_why: str = ""

    def as_dict(self) -> dict[str, Any]:
        found = {
            "routed_at": self.routed_at.isoformat() if self.routed_at else None,
            "reason": self.reason,
            "why": self.why,
            "score": self.score,
        }
        if self.chose:
            found["next"] = self.next_template
        return found


def replay_lead(
    lead_id: str,
    events: Sequence[Event],
    rules: Rules,
    catalogue: Sequence[TemplateMeta] | None = None,
    merged: Mapping[str, Sequence[Merged]] | None = None,
    shared: SharedPrefix | None = None,
) -> LeadRun:
    """One lead's history under one rule set (events in time order, duplicates already removed); with a
    catalogue, also the template nurture would send next after the last event. `merged`: the leads folded
    into this one (or into those) when an event joined them, as `histories` found them. `shared`: the
    first events already folded (`fold_shared`: this rule set's own copy, or the whole history folded alike
    for both, only read from then on), the fold goes on from there."""
    p, scores, scored_at = _fold(lead_id, events, rules, merged or {}, shared=shared)
    routed_at, reason, why = _first_routing(p)
    score = scores.total if scores is not None else 0.0
    if catalogue is None:
        return LeadRun(routed_at, reason, why, score)
    end = max([event.at for event in events[-1:]] + [join.at for join in (merged or {}).get(lead_id, ())])
    # The last reassessment's scores are the chooser's when they are of this instant (no second scoring).
    template, next_why = next_choice(p, catalogue, rules, end, scores if scored_at == end else None)
    return LeadRun(routed_at, reason, why, score, True, template, next_why)


def _fold(
    lead_id: str,
    events: Sequence[Event],
    rules: Rules,
    merged: Mapping[str, Sequence[Merged]],
    *,
    scored: bool = True,
    lazy: bool = True,
    shared: SharedPrefix | None = None,
) -> tuple[Prospect, Scores | None, datetime | None]:
    """The profile the worker built: each event applied, reassessed at the end of each batch; a lead merged
    into this one is replayed on its own up to the event that joined them, then absorbed as the worker's
    merge does (BatchResolution.merge in usecases/identity_resolution.py: absorb, a merge event, reassess)
    before that event is applied (or, with no event of this lead after it in the window, after this lead's
    last event).

    Only the last reassessment's scores are read (`scored`: at all): the ones before it are `settle`d,
    which leaves the profile exactly as `reassess` does without scoring a lead that is not in nurture (most
    reassessments: an anonymous visitor's, a lead already with sales). Should the last reassessment turn
    out to be one of those (the lead's last event could not be applied), the lead is folded again with
    every reassessment scored (`lazy=False`), from the first event (not from `shared`)."""
    if shared is None:
        first = events[0] if events else min((j.events[0] for j in merged[lead_id]), key=lambda e: e.at)
        p = Prospect(lead_id=lead_id, created_at=first.at, source=first.source)
    else:
        p = shared.p
    joins: dict[str | None, list[Merged]] = {}
    for join in merged.get(lead_id, ()):
        joins.setdefault(join.at_event, []).append(join)
    trailing = sorted(joins.get(None, ()), key=lambda join: join.at)
    scores: Scores | None = shared.scores if shared else None
    scored_at: datetime | None = shared.scored_at if shared else None

    def reassessed(at: datetime, last: bool) -> Scores | None:
        if (last and scored) or not lazy:
            return reassess(p, rules, at)[0]
        return settle(p, rules, at)

    def absorb(join: Merged, at: datetime, last: bool) -> None:
        nonlocal scores, scored_at
        other, _, _ = _fold(join.lead_id, join.events, rules, merged, scored=False)
        absorb_profile(p, other)
        merge = Event(internal_id("merge", f"{join.lead_id}:{lead_id}"), EventKind.IDENTIFY, at, "merge")
        apply_event(p, merge, rules, deduplicated=True)
        scores = reassessed(at, last)
        scored_at = at

    final = len(events) - 1
    start = 0
    if shared is not None:
        start = shared.next
        if shared.owed is not None:  # the reassessment the shared fold stopped at is this set's own
            scores = reassessed(shared.owed, start > final and not trailing)
            scored_at = shared.owed
    for index, event in enumerate(events[start:] if start else events, start=start):
        for join in joins.get(event.message_id, ()):
            absorb(join, event.at, False)
        try:
            apply_event(p, event, rules, deduplicated=True)
        except (IllegalTransition, InvalidCommand):
            continue  # as the worker does: noted and ignored
        following = events[index + 1] if index < final else None
        if following is not None and following.at - event.at <= BURST:
            continue
        scores = reassessed(event.at, index == final and not trailing)
        scored_at = event.at
    for position, join in enumerate(trailing, start=1):
        absorb(join, join.at, position == len(trailing))
    if scored and scores is None and scored_at is not None:
        return _fold(lead_id, events, rules, merged, lazy=False)
    return p, scores, scored_at


def _first_routing(p: Prospect) -> tuple[datetime | None, str | None, str | None]:
    """When, on which path and why the lead first went to sales, read from its history as live profiles
    are read (a merged half's routing included: a merge keeps the furthest point either half reached)."""
    for change in p.history:
        if change.trigger in ROUTED and change.to_state is State.SALES_READY:
            reason = change.trigger.value
            if change.reason and change.reason.startswith(OPENINGS[LOW_FIT_HAND_RAISE]):
                reason = LOW_FIT_HAND_RAISE
            return change.at, reason, change.reason
    return None, None, None


@dataclass(frozen=True, slots=True)
class Merged:
    """A lead the worker merged into another: its own history, and the event (of the survivor) that joined
    them, before which it is absorbed."""

    lead_id: str
    events: list[Event]
    at_event: str | None  # None: the survivor has no event after it in the window; absorbed at `at`
    at: datetime


@dataclass
class Histories:
    """lead id -> its replayable events in time order (each once); the leads merged away, by survivor."""

    events: dict[str, list[Event]]
    merged: dict[str, list[Merged]]
    gone: set[str]  # merged into another lead: replayed with it (here, or in the survivor's part)

    def survivors(self) -> list[str]:
        return sorted(lead for lead in self.events if lead not in self.gone)

    def total(self, lead_id: str) -> int:
        return len(self.events[lead_id]) + sum(
            self.total(join.lead_id) for join in self.merged.get(lead_id, ())
        )

    def first_touch(self, lead_id: str) -> datetime:
        return min(
            [event.at for event in self.events[lead_id][:1]]
            + [self.first_touch(join.lead_id) for join in self.merged.get(lead_id, ())]
        )


def _keys(event: Event) -> set[str]:
    """The identities an event names: those the worker claims for its lead, and an alias' previous id."""
    return {*identity_keys(event), *alias_keys(event)}


_time_and_id = attrgetter("at", "message_id")


def histories(items: Iterable[ArchivedEvent]) -> Histories:
    """Each lead's replayable events in time order, each once (a redelivered batch may be archived twice
    under another key), and the merges the worker made. Events are archived under the lead they were
    applied to, so the events of a visitor later merged into a known contact sit under the visitor's lead
    id. The merge markers (chalicelib/lab/layout.py) say which lead was merged into which: a lead marked as
    merged away is replayed only with its survivor, so a part holding the absorbed lead's shard but not the
    survivor leaves it to the survivor's part (which fetched it). Without a marker (events archived before
    markers were), an identity two archived leads both carry means one was merged into the other. Either
    way the merge happened before the first later event of the survivor that names one of the absorbed
    lead's identities (the worker sends every later event to the survivor)."""
    seen: set[str] = set()
    found: dict[str, list[Event]] = {}
    keys: dict[str, set[str]] = {}
    # A lead's events name the same few identities over and over: their keys are written once per
    # distinct (email, user id, anonymous id, CRM id, alias' previous id), not once per event.
    named: dict[tuple[str | None, ...], tuple[str, ...]] = {}
    marked: dict[str, tuple[str, datetime]] = {}  # absorbed lead -> (survivor, when the worker merged)
    hosts: set[str] = set()
    for item in items:
        event = item.event
        merge = merged_leads(event)
        if merge is not None:
            marked[merge[0]] = (merge[1], event.at)
            if item.lead_id == merge[1]:  # the survivor's own copy: this part replays the survivor
                hosts.add(merge[1])
            continue
        if event.message_id in seen:
            continue
        seen.add(event.message_id)
        kind = event.kind
        identity = (
            event.email,
            event.user_id,
            event.anonymous_id,
            event.crm_id,
            event.previous_id if kind is EventKind.ALIAS else None,
        )
        held = named.get(identity)
        if held is None:
            held = named[identity] = tuple(_keys(event))
        lead_keys = keys.get(item.lead_id)
        if lead_keys is None:
            lead_keys = keys[item.lead_id] = set()
        lead_keys.update(held)
        if kind not in NOT_REPLAYED:
            found.setdefault(item.lead_id, []).append(event)
    for events in found.values():
        events.sort(key=_time_and_id)  # (at, message id), as a tuple built in C
    owners: dict[str, set[str]] = {}
    for lead_id in found:
        for key in keys[lead_id]:
            owners.setdefault(key, set()).add(lead_id)
    merged: dict[str, list[Merged]] = {}
    gone = set(marked)
    for lead_id in sorted(found):
        last = found[lead_id][-1].at
        if lead_id in marked:
            into, merged_at = marked[lead_id]
            if into in found or into in hosts:  # else: the survivor's part replays it
                later = [e for e in found.setdefault(into, []) if last <= e.at]
                naming = [e for e in later if _keys(e) & keys[lead_id]]
                join = (naming or later)[:1]  # none: the survivor has no event after it in the window
                at_event = join[0].message_id if join else None
                merged.setdefault(into, []).append(Merged(lead_id, found[lead_id], at_event, merged_at))
            continue
        sharing = {other for key in keys[lead_id] for other in owners[key]} - {lead_id} - gone
        joins = [
            (event.at, event.message_id, other)
            for other in sharing
            for event in found[other]
            if event.at >= last and _keys(event) & keys[lead_id]
        ]
        if joins:
            at, at_event, into = min(joins)
            merged.setdefault(into, []).append(Merged(lead_id, found[lead_id], at_event, at))
            gone.add(lead_id)
    return Histories(found, merged, gone)


def replay_shard(
    items: Iterable[ArchivedEvent],
    published: Rules,
    draft: Rules,
    progress: Callable[[int], None] | None = None,
    catalogue: Sequence[TemplateMeta] | None = None,
) -> list[dict[str, Any]]:
    """The shard function: a row per lead with its first touch and what each rule set made of it. The
    whys of the next template are kept only where the two choices differ (the report's examples): a part
    stays small when most choices agree."""
    rows: list[dict[str, Any]] = []
    found = histories(items)
    sharing = Sharing.of(published, draft)
    for lead_id in found.survivors():
        events = found.events[lead_id]
        shared = theirs = None
        if sharing.events and events:
            merges = found.merged.get(lead_id, ())
            joins = {join.at_event for join in merges if join.at_event is not None}
            last = all(join.at_event is not None for join in merges)
            shared = fold_shared(lead_id, events, published, draft, sharing, joins, last)
            theirs = shared.for_draft(draft)
        before = replay_lead(lead_id, events, published, catalogue, found.merged, shared)
        after = replay_lead(lead_id, events, draft, catalogue, found.merged, theirs)
        total = found.total(lead_id)
        row = {
            "lead": lead_id,
            "events": total,
            "first_touch": found.first_touch(lead_id).isoformat(),
            "published": before.as_dict(),
            "draft": after.as_dict(),
        }
        if before.next_template != after.next_template:
            row["next_why"] = {"published": before.next_why, "draft": after.next_why}
        rows.append(row)
        if progress is not None:
            progress(total)
    return rows
