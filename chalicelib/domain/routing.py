"""Whether a lead goes to sales now, by which path, and why in plain words.

Four paths (`Route.path`, shown as the summary's `routed_as`):
- `hand_raise`: the buyer asked; routed at once, whatever the score.
- `low_fit_hand_raise`: the buyer asked but what is known of them fits poorly (fit below its threshold):
  still routed, because buyers decide, but `why_sales` starts with "low-fit hand-raise" and says why.
- `qualified`: fit and accumulated engagement both reach their thresholds AND the rules' intent confirmers
  see recent intent (a pricing, security or integration page this week; a second visit this week...), so a
  lead still researching is not handed over weeks early.
- after a recycle, the old score never counts twice: a lead sales holds (a revisit date) is re-routed only
  by a surge of engagement since the recycle (`recycle_surge`: velocity, not the old total); a lead recycled
  without a hold needs new engagement since the recycle worth the engagement threshold (`requalified`).
Pure: `now` is an argument. Engagement is kept per day, so "since the recycle" means from the next day on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import Prospect, Recycle
from chalicelib.domain.reasons import ago, cited, count_of, engagement_label, line_text, times, window
from chalicelib.domain.rules import EngagementRule, Rules
from chalicelib.domain.scoring import Scores, day_of, engagement_since

HAND_RAISE, LOW_FIT_HAND_RAISE = "hand_raise", "low_fit_hand_raise"
QUALIFIED, REQUALIFIED, RECYCLE_SURGE = "qualified", "requalified", "recycle_surge"
# How each path's reason begins: the summary tells the paths apart by it (a transition keeps only a reason).
OPENINGS = {
    LOW_FIT_HAND_RAISE: "low-fit hand-raise:",
    RECYCLE_SURGE: "surge after recycle",
    REQUALIFIED: "re-qualified after recycle",
    QUALIFIED: "qualified:",
}
MAX_QUOTED = 2  # fit lines quoted in a low-fit hand-raise's reason


@dataclass(frozen=True, slots=True)
class Route:
    trigger: Trigger
    path: str
    why: str


def hand_raise_route(p: Prospect, scores: Scores, rules: Rules, now: datetime) -> Route:
    """Routed whatever the score; flagged as low fit when what is known of them falls short of the fit
    threshold (nothing known at all is not evidence of a poor fit: the summary's scores show it; the lines
    of unanswered questions, `missing: true`, are not something known, so never the flag's reason)."""
    name = p.pending_hand_raise or "hand-raise"
    threshold = rules.thresholds.fit
    unknown = rules.fit_unknown_ids
    known = [line for line in scores.breakdown if line.kind == "fit" and line.rule not in unknown]
    if scores.fit >= threshold or not known:
        return Route(Trigger.HAND_RAISE, HAND_RAISE, f"hand-raise: {name}")
    against = sorted((line for line in known if line.points < 0), key=lambda line: line.points)
    today = day_of(now)
    quoted = against or known  # what counts against them, else the little that counts for them
    said = "; ".join(cited(line_text(p, rules, line, today), line.rule) for line in quoted[:MAX_QUOTED])
    why = f"{OPENINGS[LOW_FIT_HAND_RAISE]} {name} (fit {scores.fit:g} < {threshold:g}: "
    return Route(Trigger.HAND_RAISE, LOW_FIT_HAND_RAISE, why + ("" if against else "only ") + said + ")")


def qualified_route(p: Prospect, scores: Scores, rules: Rules, now: datetime) -> Route | None:
    """The route for a lead that did not raise a hand, or None while it should stay in nurture."""
    thresholds = rules.thresholds
    if scores.fit < thresholds.fit:
        return None  # most events stop here: nothing below runs per event for a lead that does not fit
    recycle = p.current_recycle
    if recycle is not None:
        return _after_recycle(p, recycle, scores, rules, now)
    last = p.history[-1] if p.history else None
    if last is not None and last.trigger is Trigger.SLA_EXPIRED and not _engaged_since(p, last.at):
        return None  # nobody worked it: re-routing the same score at once would only miss again
    if scores.engagement < thresholds.engagement:
        return None
    intent = intent_reason(p, rules, day_of(now))
    if intent is None:
        return None
    why = (
        f"{OPENINGS[QUALIFIED]} fit {scores.fit:g} ≥ {thresholds.fit:g}, "
        f"engagement {scores.engagement:g} ≥ {thresholds.engagement:g}{intent}"
    )
    return Route(Trigger.QUALIFIED, QUALIFIED, why)


def _after_recycle(
    p: Prospect, recycle: Recycle, scores: Scores, rules: Rules, now: datetime
) -> Route | None:
    today = day_of(now)
    recycled = day_of(recycle.at)
    when = f"{recycle.reason}, {ago(today - recycled)}"
    if recycle.revisit_at is not None and now < recycle.revisit_at:
        surge = rules.routing.recycle_surge
        if surge is None:
            return None  # sales asked us to wait; only the buyer raising a hand overrides that
        start = max(recycled + 1, today - surge.within_days + 1)
        velocity = engagement_since(p, rules, start, today, decay=False)
        if velocity < surge.points:
            return None
        beaten = ""
        if (
            surge.beat_routed_pace
            and (seen := _routed_pace(p, rules, recycle, surge.within_days)) is not None
        ):
            if velocity <= seen:
                return None  # no faster than the week the rep already called "not yet"
            beaten = f", faster than the {seen:g} of the week it was routed"
        intent = intent_reason(p, rules, today)
        if intent is None:
            return None
        why = (
            f"{OPENINGS[RECYCLE_SURGE]} ({when}): {velocity:g} new points {window(surge.within_days)} "
            f"≥ {surge.points:g}{beaten}{intent}"
        )
        return Route(Trigger.QUALIFIED, RECYCLE_SURGE, why)
    fresh = engagement_since(p, rules, recycled + 1, today, decay=True)
    threshold = rules.thresholds.engagement
    if fresh < threshold:
        return None  # the score that sent it to sales last time does not count twice
    intent = intent_reason(p, rules, today)
    if intent is None:
        return None
    why = f"{OPENINGS[REQUALIFIED]} ({when}): new engagement {fresh:g} ≥ {threshold:g}{intent}"
    return Route(Trigger.QUALIFIED, REQUALIFIED, why)


def _routed_pace(p: Prospect, rules: Rules, recycle: Recycle, days: int) -> float | None:
    """The points the lead earned in the `days` days up to the route that sales answered with this recycle
    (as earned, caps applied), or None when that route is no longer in the history."""
    route = next(
        (t for t in reversed(p.history) if t.to_state is State.SALES_READY and t.at <= recycle.at),
        None,
    )
    if route is None:
        return None
    routed = day_of(route.at)
    return engagement_since(p, rules, routed - days + 1, routed, decay=False)


def intent_reason(p: Prospect, rules: Rules, today: int) -> str | None:
    """The recent intent the rules ask for, as it reads at the end of a reason ("; recent intent this week:
    read the pricing page twice [pricing_page]"); "" when the rules ask for none; None when none is recent."""
    intent = rules.routing.intent
    if intent is None:
        return ""
    since = today - intent.within_days + 1
    engagement = p.engagement
    by_id = rules.engagement_by_id
    for confirmer in intent.confirmers:
        wanted = confirmer.rules
        if len(wanted) == 1:  # most confirmers: a rule holding fewer days than asked for cannot confirm
            held = engagement.get(wanted[0])
            if not held or len(held) < confirmer.days:
                continue
        days: set[int] = set()
        done: list[tuple[EngagementRule, int]] = []  # what was done and how often, rule by rule
        count = 0
        for rule_id in confirmer.rules:
            buckets = engagement.get(rule_id)
            if not buckets:
                continue
            recent = [day for day in buckets if day >= since]
            if not recent:
                continue
            rule = by_id[rule_id]
            times_here = count_of(sum(buckets[day] for day in recent), rule)
            count += times_here
            days.update(recent)
            done.append((rule, times_here))
        if count < confirmer.times or len(days) < confirmer.days or not done:
            continue
        # The pace is checked only once a confirmer holds: confirmers are cheap and most often fail. The
        # words are written only then too (a lead in nurture with the scores asks this on every event).
        history = _history(p, rules, since)
        if history is None:
            return None
        pace = _pace(p, rules, since, today)
        if pace is None:
            return None
        seen = ", ".join(cited(f"{engagement_label(rule)} {times(n)}", rule.id) for rule, n in done)
        spread = f", on {len(days)} different days" if confirmer.days > 1 else ""
        return f"{history}; recent intent {window(intent.within_days)}: {seen}{spread}{pace}"
    return None


def _history(p: Prospect, rules: Rules, since: int) -> str | None:
    """The history the intent rules ask for before the window, as it reads in the reason ("" when none is
    asked for), or None when the lead has too little."""
    intent = rules.routing.intent
    assert intent is not None
    wanted = intent.earlier_days
    if wanted is None:
        return ""
    # Buyers reach sales after weeks of their own research: a lead first seen this week is discovering
    # (reading everything, pricing included), not deciding. Days before the window however long ago: a lead
    # that went quiet and comes back with a burst is a buying signal, not a newcomer.
    earlier = {
        day
        for buckets in p.engagement.values()
        for day, earned in buckets.items()
        if day < since and earned > 0
    }
    if len(earlier) < wanted:
        return None
    return f", seen on {len(earlier)} earlier days"


def _pace(p: Prospect, rules: Rules, since: int, today: int) -> str | None:
    """The buyer's pace the intent rules ask for beside a confirmer, as it reads in the reason ("" when none
    is asked for), or None when it falls short."""
    intent = rules.routing.intent
    assert intent is not None
    said = ""
    if intent.recent_days is not None:
        # Buyers close to a call come back day after day; a researcher drops by now and then.
        active = {
            day
            for buckets in p.engagement.values()
            for day, earned in buckets.items()
            if day >= since and earned > 0
        }
        if len(active) < intent.recent_days:
            return None
        said = f", active on {len(active)} days {window(intent.within_days)}"
    if intent.recent_points is not None:
        # Accumulated points say how long someone has been researching; the week's pace says they are
        # deciding now (a buyer close to a call comes back often, reads more per visit).
        velocity = engagement_since(p, rules, since, today, decay=False)
        if velocity < intent.recent_points:
            return None
        said += f", {velocity:g} points earned {window(intent.within_days)} ≥ {intent.recent_points:g}"
    return said


def _engaged_since(p: Prospect, moment: datetime) -> bool:
    return (
        p.last_activity_at is not None
        and p.last_activity_at > moment
        and any(page.at > moment for page in p.pages)
    )


def routed_as(p: Prospect) -> str | None:
    """The path of the lead's latest routing to sales (None: never routed)."""
    last = next((t for t in reversed(p.history) if t.to_state is State.SALES_READY), None)
    if last is None:
        return None
    reason = last.reason or ""
    if last.trigger is Trigger.HAND_RAISE:
        return LOW_FIT_HAND_RAISE if reason.startswith(OPENINGS[LOW_FIT_HAND_RAISE]) else HAND_RAISE
    for path in (RECYCLE_SURGE, REQUALIFIED):
        if reason.startswith(OPENINGS[path]):
            return path
    return QUALIFIED
