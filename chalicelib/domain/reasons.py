"""Plain words for sales: what a score line, an intent confirmer or a recycle surge means, as a person reads
it ("read the pricing page 3 times this week, most recently yesterday"), the rule id kept beside it in
reasons (`[pricing_page]`). Labels come from the rules document (`label`), else from the rule's id. Pure;
used by routing (why a lead went to sales) and the summary (each breakdown line); never per event.
"""

from __future__ import annotations

from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import EngagementRule, FitRule, Rules
from chalicelib.domain.scoring import ScoreLine

MAX_VALUE_CHARS = 60  # a trait quoted in a reason ("executive title: VP Sales") is cut to this


def times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def ago(days: int) -> str:
    return {0: "today", 1: "yesterday"}.get(days, f"{days} days ago")


def window(days: int) -> str:
    return {1: "today", 7: "this week", 30: "this month"}.get(days, f"in the last {days} days")


def _words(rule_id: str) -> str:
    return rule_id.replace("_", " ")


def engagement_label(rule: EngagementRule) -> str:
    return rule.label or _words(rule.id)


def fit_label(rule: FitRule) -> str:
    return rule.label or _words(rule.id)


def count_of(amount: float, rule: EngagementRule) -> int:
    """How many times a rule matched, from the raw points it stored (each match stores `points`)."""
    return max(1, round(amount / rule.points)) if rule.points else 1


def engagement_text(p: Prospect, rule: EngagementRule, today: int) -> str:
    """ "read the pricing page 5 times over 20 days, most recently 2 days ago"."""
    buckets = p.engagement.get(rule.id) or {}
    if not buckets:
        return engagement_label(rule)
    first, last = min(buckets), max(buckets)
    count = count_of(sum(buckets.values()), rule)
    span = "this week" if today - first < 7 else f"over {today - first + 1} days"
    return f"{engagement_label(rule)} {times(count)} {span}, most recently {ago(max(today - last, 0))}"


def fit_text(p: Prospect, rule: FitRule) -> str:
    """ "executive title: VP Sales": the label and the value that earned it (when the person's own trait)."""
    value = p.email if rule.trait == "email" else p.traits.get(rule.trait)
    if value is None or value == "" or isinstance(value, dict | list | tuple):
        return fit_label(rule)
    text = str(value)
    if rule.domains is not None and "@" in text:
        text = text.rpartition("@")[2]
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return f"{fit_label(rule)}: {text}"


def line_text(p: Prospect, rules: Rules, line: ScoreLine, today: int) -> str:
    if line.kind == "fit":
        fit_rule = next((rule for rule in rules.fit if rule.id == line.rule), None)
        return fit_text(p, fit_rule) if fit_rule is not None else _words(line.rule)
    engagement_rule = rules.engagement_by_id.get(line.rule)
    return engagement_text(p, engagement_rule, today) if engagement_rule is not None else _words(line.rule)


def cited(text: str, rule_id: str) -> str:
    """A reason with its rule id beside it, as `why_sales` shows it."""
    return f"{text} [{rule_id}]"
