"""Folding a lead's history once for both rule sets of a backtest while they cannot differ yet: pure, no I/O.

A backtest replays each lead under the published rules and under the draft (chalicelib/lab/replay.py). Most
drafts change little (a threshold), so the two folds agree for most of a history: `fold_shared` folds the
events once, under the published rules, and stops (forks) just before the first step at which the two rule
sets could leave the profile differently; each rule set then goes on from its own copy
(`SharedPrefix.copy_for`). What each step reads of the rules decides how far that is (`Sharing.of`):

- `apply_event` reads the engagement rules, the topics, the interest weights, the hand-raise names and the
  trait names the fit rules keep (`sharing_key`): with those alike, every replayed event folds alike;
- a reassessment of a lead not in nurture (anonymous, with sales) neither scores nor routes nor plans a
  touch: with the events alike, it settles alike (a lost lead's reopening reads its own rule: such a lead
  forks);
- a reassessment of a lead in nurture scores it and decides its route: with the rule sets differing only
  in what decides routes (`DECIDING`: the thresholds, the intent and surge rules, the SLA and the
  assignment), the lead is scored once and the route decided under both; the same route (or none for
  both), with the same SLA and assignment when there is one, settles alike. Otherwise the lead forks there,
  its events of that batch applied, the reassessment owed to each rule set.

The lead's last reassessment (scored: the report reads its scores) is shared too when the rule sets differ
only in DECIDING and route the lead alike then: the fold is `done`, and both rule sets read the one profile
(what a backtest reads of it, its routing, its scores, the next template, reads no version), so most leads
are never copied. Everything after an event that joins a merged lead to this one is each rule set's own
(the absorbed half is folded per rule set), and so is the last reassessment of a lead that absorbs one
after its last event.
"""

from __future__ import annotations

import json
from collections.abc import Container, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.domain.apply import apply_event
from chalicelib.domain.decisions import InvalidCommand
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import NURTURED, IllegalTransition, State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_copy import copy_prospect
from chalicelib.domain.reassess import decide_route, settle, settle_decided
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, score

# Events of one lead closer than this were decided on together: the events one client call sends (a form's
# identify and track) reach the worker in one message. Not longer: SQS hands the worker what is queued at
# once, so page views half a minute apart are decided one by one (a 60 s burst routed qualified leads minutes
# after the worker had, with other scores in their why; tests/unit/test_backtest_equality.py).
BURST = timedelta(seconds=5)
NOT_REPLAYED = frozenset({EventKind.SALES, EventKind.CRM})
# What of a rule set a nurtured lead's reassessment reads only to decide or carry out its route
# (chalicelib/domain/routing.py, reassess._route): anything else differing, the lead forks at its first one.
DECIDING = frozenset({"version", "thresholds", "routing", "sla", "assignment"})


def sharing_key(rules: Rules) -> str:
    """Everything of a rule set that `apply_event` reads, and `settle` for a lead not in nurture: the
    engagement rules (points, matching, the hand-raise and notable track rules among them), the topics and
    what each signal is worth, the hand-raise names, the trait names the fit rules keep over other traits.
    `settle` scores, routes and plans only a lead in nurture (`plan_next_touch` answers None before reading
    the rules) and reopens only a lost one. Two rule sets with the same key fold a lead's events to the same
    profile as long as it stays out of nurture (an anonymous visitor, a lead with sales)."""
    return json.dumps(
        [
            [rule.model_dump(mode="json") for rule in rules.engagement],
            [rule.model_dump(mode="json") for rule in rules.topics],
            rules.interest.model_dump(mode="json"),
            sorted(rules.hand_raise_names),
            sorted({rule.trait for rule in rules.fit}),
        ],
        sort_keys=True,
    )


@dataclass(frozen=True, slots=True)
class Sharing:
    """What two rule sets let a fold share: `events` (the same `sharing_key`: events, and reassessments out
    of nurture, fold alike; without it nothing is shared), `decisions` (they differ in DECIDING only: a
    nurtured lead is scored alike and the routes are compared), `carried` (the same SLA and assignment: a
    route both take is carried out alike)."""

    events: bool
    decisions: bool
    carried: bool

    @classmethod
    def of(cls, published: Rules, draft: Rules) -> Sharing:
        ours, theirs = published.model_dump(mode="json"), draft.model_dump(mode="json")
        differing = {name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name)}
        events = sharing_key(published) == sharing_key(draft)
        carried = not differing & {"sla", "assignment"}
        return cls(events, events and differing <= DECIDING, carried)


@dataclass(frozen=True, slots=True)
class SharedPrefix:
    """A lead's first `next` events folded once, as `_fold` leaves them under the published rules: the
    profile, the last reassessment's scores (None: not scored) and time, `owed`: the time of the
    reassessment that ends the batch of event `next - 1`, owed to each rule set (the rule sets may settle it
    differently), `settled`: whether any reassessment ran, `done`: the whole history folded, its last
    reassessment included (both rule sets made it alike)."""

    p: Prospect
    next: int
    scores: Scores | None
    scored_at: datetime | None
    owed: datetime | None
    settled: bool
    done: bool = False

    def copy_for(self, rules: Rules) -> SharedPrefix:
        """An independent copy for another rule set, as that set's own fold would have left it: the only
        traces a rule set leaves that the other's shared steps did not are its version, stamped by each
        reassessment on the profile and on the scores."""
        p = copy_prospect(self.p)
        if self.settled:
            p.rules_version = rules.version
        scores = replace(self.scores, rules_version=rules.version) if self.scores is not None else None
        return replace(self, p=p, scores=scores)

    def for_draft(self, draft: Rules) -> SharedPrefix:
        """What the draft's fold starts from: `copy_for`, or for a `done` fold, which is only read from now
        on, the same profile (its version stamp, which nothing reads, is the published one) with the
        draft's scores."""
        if not self.done:
            return self.copy_for(draft)
        scores = replace(self.scores, rules_version=draft.version) if self.scores is not None else None
        return replace(self, scores=scores)


def fold_shared(
    lead_id: str,
    events: Sequence[Event],
    published: Rules,
    draft: Rules,
    sharing: Sharing,
    joins: Container[str] = (),
    last: bool = True,
) -> SharedPrefix:
    """The events folded as `_fold` folds them under `published`, each batch settled, up to the first step
    the draft could take differently (see the module's docstring) or the first event that joins a merged
    lead (`joins`: their ids; absorbing is each rule set's own). `last`: the last event's reassessment is
    the history's last (no merged lead is absorbed after it), scored."""
    first = events[0]
    p = Prospect(lead_id=lead_id, created_at=first.at, source=first.source)
    scores: Scores | None = None
    scored_at: datetime | None = None
    final = len(events) - 1
    for index, event in enumerate(events):
        if event.message_id in joins or event.kind in NOT_REPLAYED:
            return SharedPrefix(p, index, scores, scored_at, None, scored_at is not None)
        try:
            apply_event(p, event, published, deduplicated=True)
        except (IllegalTransition, InvalidCommand):
            continue  # as `_fold`: noted and ignored, no reassessment for it
        if index < final and events[index + 1].at - event.at <= BURST:
            continue
        if index == final and not last:  # a merged lead is absorbed after it: each rule set's own
            return SharedPrefix(p, index + 1, scores, scored_at, event.at, scored_at is not None)
        scored = index == final
        alike, settled = _settle_alike(p, published, draft, event.at, sharing, scored=scored)
        if not alike:
            return SharedPrefix(p, index + 1, scores, scored_at, event.at, scored_at is not None)
        if scored:
            return SharedPrefix(p, index + 1, settled, event.at, None, True, done=True)
        scores, scored_at = settled, event.at
    return SharedPrefix(p, len(events), scores, scored_at, None, scored_at is not None)


def _settle_alike(
    p: Prospect, published: Rules, draft: Rules, now: datetime, sharing: Sharing, *, scored: bool
) -> tuple[bool, Scores | None]:
    """Settle the lead once for both rule sets when they would leave it alike (`scored`: reassess it, the
    scores are read): (True, the scores); else (False, None), the lead left as it is: it forks."""
    state = p.state
    if state is State.LOST:
        return False, None  # its reopening reads a rule of its own (not replayed so far: sales loses leads)
    if state not in NURTURED and not scored:
        return True, settle(p, published, now)
    if not sharing.decisions:  # scores (and routes) may differ
        return False, None
    scores = score(p, published, now)
    route = decide_route(p, scores, published, now)
    if route != decide_route(p, scores, draft, now) or (route is not None and not sharing.carried):
        return False, None
    return True, settle_decided(p, published, now, scores, route)
