"""Replaying archived events through the worker's own domain code, once per rule set: pure, no I/O.

Each lead's archived events are folded in time order with `apply_event` into a fresh profile and the lead is
reassessed (`reassess`: scoring and routing, as the worker does after a batch) whenever the events pause
for more than `BURST`, at the time of the last event of the burst. Sales and CRM events are not replayed:
they record what sales did with the leads the live rules sent them, which is the outcome the report judges
against (chalicelib/lab/report.py), not a signal a rules change could alter. What is kept of a lead per rule
set is when it was first routed to sales, why, its score at the end of the window and, given the catalogue
of active templates, the template nurture would send it next (chalicelib/lab/choices.py: once per lead, at
its last event, not per event).

`replay_shard` is the shard function: whole histories in, one JSON-ready row per lead out; the rows of all
shards are what `report.build_report` merges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.apply import apply_event, reassess
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.decisions import InvalidCommand
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import IllegalTransition, State, Trigger
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.routing import LOW_FIT_HAND_RAISE, OPENINGS
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores
from chalicelib.lab.choices import next_choice
from chalicelib.lab.layout import ArchivedEvent

BURST = timedelta(seconds=60)  # events closer than this reached the worker in one batch, as a rule
NOT_REPLAYED = frozenset({EventKind.SALES, EventKind.CRM})
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
) -> LeadRun:
    """One lead's history under one rule set (events in time order, duplicates already removed); with a
    catalogue, also the template nurture would send next after the last event."""
    p = Prospect(lead_id=lead_id, created_at=events[0].at, source=events[0].source)
    routed_at: datetime | None = None
    reason = why = None
    score = 0.0
    scores: Scores | None = None
    scored_at: datetime | None = None
    for index, event in enumerate(events):
        try:
            apply_event(p, event, rules)
        except (IllegalTransition, InvalidCommand):
            continue  # as the worker does: noted and ignored
        following = events[index + 1] if index + 1 < len(events) else None
        if following is not None and following.at - event.at <= BURST:
            continue
        scores, _ = reassess(p, rules, event.at)
        scored_at, score = event.at, scores.total
        if (
            routed_at is None
            and p.state is State.SALES_READY
            and p.history
            and p.history[-1].trigger in ROUTED
        ):
            last = p.history[-1]
            routed_at, why = last.at, last.reason
            reason = last.trigger.value
            if why and why.startswith(OPENINGS[LOW_FIT_HAND_RAISE]):
                reason = LOW_FIT_HAND_RAISE
    if catalogue is None:
        return LeadRun(routed_at, reason, why, score)
    end = events[-1].at
    # The last reassessment's scores are the chooser's when they are of this instant (no second scoring).
    template, next_why = next_choice(p, catalogue, rules, end, scores if scored_at == end else None)
    return LeadRun(routed_at, reason, why, score, True, template, next_why)


def histories(items: Iterable[ArchivedEvent]) -> dict[str, list[Event]]:
    """lead id -> its replayable events in time order, each once (a redelivered batch may be archived
    twice under another key)."""
    seen: set[str] = set()
    found: dict[str, list[Event]] = {}
    for item in items:
        event = item.event
        if event.kind in NOT_REPLAYED or event.message_id in seen:
            continue
        seen.add(event.message_id)
        found.setdefault(item.lead_id, []).append(event)
    for events in found.values():
        events.sort(key=lambda e: (e.at, e.message_id))
    return found


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
    for lead_id, events in sorted(histories(items).items()):
        before = replay_lead(lead_id, events, published, catalogue)
        after = replay_lead(lead_id, events, draft, catalogue)
        row = {
            "lead": lead_id,
            "events": len(events),
            "first_touch": events[0].at.isoformat(),
            "published": before.as_dict(),
            "draft": after.as_dict(),
        }
        if before.next_template != after.next_template:
            row["next_why"] = {"published": before.next_why, "draft": after.next_why}
        rows.append(row)
        if progress is not None:
            progress(len(events))
    return rows
