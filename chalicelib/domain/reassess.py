"""Reassessing a lead after a batch of events: rescore it, route a qualified lead or a hand-raise to sales
(its owner assigned, the SLA started, sales notified), reopen a long-lost lead, and plan the next nurture
touch. Events are folded in first by `apply`. Pure: it mutates the working profile it is given and returns
the effects the service must carry out; it neither reads the clock nor touches storage.

`reassess` is what the worker runs; `settle` is the same without scoring a lead whose scores decide
nothing (the rules lab's replay), and `decide_route` / `settle_decided` split it where the rules lab
decides one profile under two rule sets (chalicelib/lab/sharing.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.accounts import sync_accounts
from chalicelib.domain.assignment import choose_owner
from chalicelib.domain.cadence import plan_next_touch
from chalicelib.domain.decisions import (
    Assigned,
    Effect,
    NotifySales,
    StartSla,
    Turns,
    moment,
    no_turns,
    transition,
)
from chalicelib.domain.lifecycle import NURTURED, State, Trigger, can
from chalicelib.domain.prospect import Prospect, SlaTimer
from chalicelib.domain.routing import LOW_FIT_HAND_RAISE, Route, hand_raise_route, qualified_route
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, day_of, prune_buckets, score


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
    nurtured = p.state in NURTURED
    scores = score(p, rules, now) if scored or nurtured else None
    route = decide_route(p, scores, rules, now) if nurtured else None  # never routed outside nurture
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
    # Outside nurture there is no touch to plan (plan_next_touch's first answer, without the call).
    p.next_touch_at = plan_next_touch(p, rules, now) if p.state in NURTURED else None
    today = day_of(now)
    prune_buckets(p.engagement, today)
    prune_buckets(p.interests, today)
    if p.accounts:  # member rows follow the person's engagement, at most once a day (most have no account)
        effects += sync_accounts(p)
    return scores, effects


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
