"""The outbox: what a prospect write decided must happen, stored in that same conditional write.

The domain returns decisions (`chalicelib.domain.apply` and `.reassess` effects: a transition, an
assignment, a sales notification...). `plan` turns them into outbox effects — plain, self-contained
records that carry every value their handler needs (times, texts, counter increments) — so performing one
later, or twice, does the same thing. They travel inside the prospect item (`encode`/`decode`), and
DynamoDB Streams hands each write's outbox to the dispatcher (`chalicelib.effects.dispatch`).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from chalicelib.domain.bandit import LEARNED_MEASURE, counter_name
from chalicelib.domain.decisions import (
    AccountsTouched,
    Assigned,
    Changed,
    CompetitorNamed,
    Effect,
    EmailOutcome,
    Noted,
    NotifySales,
    ResolveSla,
    StartSla,
)
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.scoreboard import scoreboard_increments

# A write's outbox is small (a routing decides about ten effects); this bounds a hostile or buggy one so
# it can never push the prospect item towards DynamoDB's 400 KB.
MAX_OUTBOX_BYTES = 32_000


@dataclass(frozen=True, slots=True)
class RecordActivity:
    """An entry on the lead's activity feed (and the global audit feed)."""

    at: datetime
    kind: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CountOnScoreboard:
    """Scoreboard counters to move, once, for the period of `at`. `by_stream`: counted by the stream's
    count consumer, once per stream batch (chalicelib.effects.stream_counts), never by the dispatcher."""

    at: datetime
    increments: dict[str, float]
    by_stream: bool = False


@dataclass(frozen=True, slots=True)
class NotifyOwner:
    """Tell sales about the lead (owner email, Slack, webhooks, outbox), with its summary as saved."""

    at: datetime
    why: str


@dataclass(frozen=True, slots=True)
class StartSlaClock:
    """Start the sales SLA workflow of one routing (`run` names it, so a retry finds the same one)."""

    at: datetime
    run: int
    accept_seconds: int
    escalate_seconds: int


@dataclass(frozen=True, slots=True)
class ReleaseSlaClock:
    """Hand the SLA workflow's task token back: the lead was worked."""

    at: datetime
    task_token: str
    outcome: str


@dataclass(frozen=True, slots=True)
class UpdateAccounts:
    """Write the lead's row in each account's member list, and the account's traits from the lead's snapshot
    where they are newer (chalicelib.domain.accounts). The profile as saved carries the values."""

    at: datetime
    account_ids: list[str]


@dataclass(frozen=True, slots=True)
class LearnFromOutcomes:
    """Evidence counters of the nurture chooser to move, once (chalicelib.domain.bandit: one counter per
    template, context and measure, in the LEARNING_PERIOD; no per-day copies). `by_stream` as for
    CountOnScoreboard."""

    at: datetime
    increments: dict[str, float]
    by_stream: bool = False


@dataclass(frozen=True, slots=True)
class LearnCompetitor:
    """Add the company domain of a lead sales disqualified as a competitor to the learned competitor
    domains (chalicelib.domain.competitors); adding one already there changes nothing."""

    at: datetime
    domain: str
    actor: str


OutboxEffect = (
    RecordActivity
    | CountOnScoreboard
    | NotifyOwner
    | StartSlaClock
    | ReleaseSlaClock
    | UpdateAccounts
    | LearnFromOutcomes
    | LearnCompetitor
)

_TYPES: dict[str, type[OutboxEffect]] = {
    "activity": RecordActivity,
    "count": CountOnScoreboard,
    "notify": NotifyOwner,
    "sla_start": StartSlaClock,
    "sla_release": ReleaseSlaClock,
    "accounts": UpdateAccounts,
    "learn": LearnFromOutcomes,
    "competitor": LearnCompetitor,
}
_NAMES = {kind: name for name, kind in _TYPES.items()}


def plan(p: Prospect, effects: Iterable[Effect], now: datetime) -> list[OutboxEffect]:
    """The outbox effects for the domain `effects` one unit of work decided on `p` (as it is saved)."""
    activity: list[RecordActivity] = []
    increments: dict[str, float] = {}
    work: list[OutboxEffect] = []
    learned: dict[str, float] = {}
    accounts: dict[str, None] = {}  # every account a unit of work touched, written once

    def count(name: str, amount: float = 1.0) -> None:
        increments[name] = increments.get(name, 0.0) + amount

    for effect in effects:
        if isinstance(effect, Changed):
            t = effect.transition
            data = {
                "from": t.from_state.value,
                "to": t.to_state.value,
                "trigger": t.trigger.value,
                "reason": t.reason,
                "note": t.note,
                **effect.details,
            }
            activity.append(RecordActivity(t.at, "transition", t.actor, _clean(data)))
            for name, amount in scoreboard_increments(p, effect).items():
                count(name, amount)
        elif isinstance(effect, Assigned):
            data = {"owner": effect.owner, "previous": effect.previous, "team": effect.team}
            data["why"] = effect.why
            activity.append(RecordActivity(now, "assigned", effect.actor, _clean(data)))
            if effect.team:
                count(f"assign:team:{effect.team}")
        elif isinstance(effect, NotifySales):
            work.append(NotifyOwner(now, effect.why))
        elif isinstance(effect, StartSla):
            work.append(StartSlaClock(now, len(p.history), effect.accept_seconds, effect.escalate_seconds))
        elif isinstance(effect, ResolveSla):
            work.append(ReleaseSlaClock(now, effect.task_token, effect.outcome))
        elif isinstance(effect, EmailOutcome):
            count(f"template:{effect.template}:{effect.outcome}")
            if effect.learn_in:
                name = counter_name(effect.template, effect.learn_in, LEARNED_MEASURE[effect.outcome])
                learned[name] = learned.get(name, 0.0) + 1.0
        elif isinstance(effect, Noted):
            activity.append(RecordActivity(now, effect.kind, effect.actor, _clean(effect.data)))
            if effect.kind == "sla_escalated":
                count("sla:escalated")
        elif isinstance(effect, AccountsTouched):
            accounts.update(dict.fromkeys(effect.account_ids))
        elif isinstance(effect, CompetitorNamed):
            work.append(LearnCompetitor(now, effect.domain, effect.actor))
    if accounts:
        work.insert(0, UpdateAccounts(now, list(accounts)))
    ordered = _in_order(activity)
    planned: list[OutboxEffect] = list(ordered)
    if any(increments.values()):
        planned.append(CountOnScoreboard(now, {k: v for k, v in increments.items() if v}))
    if learned:
        planned.append(LearnFromOutcomes(now, learned))
    # Handlers of the remaining effects write their own feed entries (notified, sla_started...): they come
    # after this write's entries, in the order decided.
    last = ordered[-1].at if ordered else None
    for task in work:
        if last is not None and task.at <= last:
            task = replace(task, at=last + timedelta(microseconds=1))
        last = task.at
        planned.append(task)
    return planned


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _in_order(entries: list[RecordActivity]) -> list[RecordActivity]:
    """Entries of one unit of work often share an instant; the feed sorts by time, so nudge each by a
    microsecond where needed to keep the order in which things happened (routed, assigned, notified)."""
    ordered: list[RecordActivity] = []
    for entry in sorted(entries, key=lambda e: e.at):
        if ordered and entry.at <= ordered[-1].at:
            entry = replace(entry, at=ordered[-1].at + timedelta(microseconds=1))
        ordered.append(entry)
    return ordered


def counted_by_stream(effects: Iterable[OutboxEffect]) -> list[OutboxEffect]:
    """`effects` with their counts handed to the stream's count consumer (README "Counting once per stream
    batch"): the writer and the dispatcher then leave them alone."""
    counts = CountOnScoreboard | LearnFromOutcomes
    return [replace(effect, by_stream=True) if isinstance(effect, counts) else effect for effect in effects]


def _by_stream(effect: OutboxEffect) -> TypeGuard[CountOnScoreboard | LearnFromOutcomes]:
    return isinstance(effect, CountOnScoreboard | LearnFromOutcomes) and effect.by_stream


def stream_counts(effects: Iterable[OutboxEffect]) -> list[CountOnScoreboard | LearnFromOutcomes]:
    """The counts of a write that the stream's count consumer moves."""
    return [e for e in effects if _by_stream(e)]


def writers_effects(effects: Iterable[OutboxEffect]) -> tuple[OutboxEffect, ...]:
    """The effects of a write that its writer and the dispatcher perform: all but `stream_counts`."""
    return tuple(e for e in effects if not _by_stream(e))


# --- the stored form ---


class OutboxTooLarge(ValueError):
    """A unit of work decided more than an item can carry; the prospect is parked with this reason."""


def encode(effects: Sequence[OutboxEffect]) -> bytes | None:
    """zlib-compressed JSON (the item is billed per KB), or None when there is nothing to do."""
    if not effects:
        return None
    wire = [_to_wire(effect) for effect in effects]
    blob = zlib.compress(json.dumps(wire, separators=(",", ":"), default=str).encode(), 6)
    if len(blob) > MAX_OUTBOX_BYTES:
        raise OutboxTooLarge(f"the effects of one write take {len(blob)} bytes (limit {MAX_OUTBOX_BYTES})")
    return blob


def decode(blob: bytes | None) -> list[OutboxEffect]:
    if not blob:
        return []
    return [_from_wire(item) for item in json.loads(zlib.decompress(blob))]


def _to_wire(effect: OutboxEffect) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": _NAMES[type(effect)]}
    for name in effect.__slots__:  # type: ignore[union-attr]
        value = getattr(effect, name)
        if name == "by_stream" and not value:
            continue  # the writer counts it: stored as before the stream counted
        wire[name] = value.isoformat() if isinstance(value, datetime) else value
    return wire


def _from_wire(wire: dict[str, Any]) -> OutboxEffect:
    kind = _TYPES[wire.pop("type")]
    wire["at"] = datetime.fromisoformat(wire["at"])
    return kind(**wire)
