"""The shared scoreboard's counters: what one transition adds, and the periods every counter is kept for.

The funnel counts leads, not entries: a transition into a stage the lead has been in before (recycled and
routed again, a lost lead reopened) is a re-entry (`reentered:<stage>`), not a lead entering
(`entered:<stage>`). Outcomes are also counted by the lead's first-touch source and campaign
(`first_source:<name>:<measure>`, `first_campaign:<name>:<measure>`, names from `counter_label`).
Counters are maintained as events flow (atomic ADDs), never by scanning the pool;
`chalicelib.usecases.scoreboard` turns them into rates, medians and the revenue-against-cost measure both
teams are judged by.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.decisions import Changed
from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import Prospect, Transition

# Time-to-accept histogram edges, in minutes (the last bucket is "later than a week").
ACCEPT_BUCKETS = (1, 5, 15, 30, 60, 120, 240, 480, 1440, 2880, 10080)


def by_period(increments: dict[str, float], now: datetime) -> dict[tuple[str, str], float]:
    """Each counter is kept for all time, for its month and for its day."""
    periods = ("all", f"{now:%Y-%m}", f"{now:%Y-%m-%d}")
    return {(period, name): amount for name, amount in increments.items() for period in periods}


def accept_bucket(minutes: float) -> int:
    return next((edge for edge in ACCEPT_BUCKETS if minutes <= edge), 10**6)


# What a lead's first entry into a stage counts as, by first-touch source and campaign.
ATTRIBUTED_STAGES = {
    State.NURTURING: "leads",
    State.SALES_READY: "routed",
    State.ACCEPTED: "accepted",
    State.WON: "won",
}
ATTRIBUTED_MEASURES = ("leads", "routed", "accepted", "won", "revenue")
NO_ATTRIBUTION = "(none)"  # a lead without a first touch, or a first touch without that field
MAX_COUNTER_LABEL_CHARS = 64


def counter_label(value: str | None) -> str:
    """A name from outside (a UTM source or campaign) as part of a counter name: `:` separates a counter
    name's parts, so it becomes `_`; whitespace runs and control characters become one space; at most
    MAX_COUNTER_LABEL_CHARS characters."""
    text = "".join(" " if ch.isspace() or not ch.isprintable() else ch for ch in value or "")
    text = " ".join(text.replace(":", "_").split())[:MAX_COUNTER_LABEL_CHARS].strip()
    return text or NO_ATTRIBUTION


def is_reentry(p: Prospect, t: Transition) -> bool:
    """Whether the lead had been in `t`'s target stage before `t` (its history as saved holds `t`)."""
    history = p.history
    index = next((i for i in range(len(history) - 1, -1, -1) if history[i] is t), None)
    if index is None:
        index = next((i for i in range(len(history) - 1, -1, -1) if history[i] == t), len(history))
    return any(earlier.to_state is t.to_state for earlier in history[:index])


def scoreboard_increments(p: Prospect, change: Changed) -> dict[str, float]:
    """Counters one transition moves on the shared scoreboard."""
    t = change.transition
    source = p.source or "unknown"
    stage = t.to_state.value
    reentry = is_reentry(p, t)
    counts: dict[str, float] = (
        {f"reentered:{stage}": 1.0}
        if reentry
        else {f"entered:{stage}": 1.0, f"source:{source}:entered:{stage}": 1.0}
    )
    touch = p.first_touch
    by = (
        f"first_source:{counter_label(touch.source if touch else None)}",
        f"first_campaign:{counter_label(touch.campaign if touch else None)}",
    )
    measure = ATTRIBUTED_STAGES.get(t.to_state)
    if measure is not None and not reentry:
        counts.update({f"{prefix}:{measure}": 1.0 for prefix in by})
    if t.trigger in (Trigger.HAND_RAISE, Trigger.QUALIFIED):
        counts[f"routed:{t.trigger.value}"] = 1.0
    if t.trigger is Trigger.RECYCLE and t.reason:
        counts[f"recycled:{t.reason}"] = 1.0
        counts[f"source:{source}:recycled:{t.reason}"] = 1.0
    if t.trigger is Trigger.SLA_EXPIRED:
        counts["sla:missed"] = 1.0
        counts[f"source:{source}:sla:missed"] = 1.0
    if t.trigger is Trigger.ACCEPT and p.sla is not None:
        minutes = (t.at - p.sla.started_at).total_seconds() / 60
        counts["accept:count"] = 1.0
        counts["accept:minutes_total"] = round(minutes, 3)
        counts[f"accept:within_minutes_le:{accept_bucket(minutes)}"] = 1.0
        if p.sla.status == "met":
            counts["sla:met"] = 1.0
            counts[f"source:{source}:sla:met"] = 1.0
    if t.trigger is Trigger.WON and p.amount is not None:
        counts["revenue:won"] = p.amount
        counts[f"source:{source}:revenue:won"] = p.amount
        counts.update({f"{prefix}:revenue": p.amount for prefix in by})
    return counts
