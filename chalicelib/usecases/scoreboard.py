"""The one scoreboard both teams are judged by, read from counters kept as events flow (never a table scan).

`LeadService` adds to the counters on every transition (`domain.scoreboard`), send and email
outcome, per period: "all", each month ("2026-11") and each day ("2026-11-23") — each counter only in the
periods something reads it from (`kept_in`). A range is read as whole months where it covers them and
single days where it does not, so a year costs at most a few dozen periods (each one Query per counter
shard, run a few at once: chalicelib.adapters.dynamo_counters).
Marketing and sales costs are entered per lead source and month (`PUT /costs/{source}/{month}`) and kept as
versioned content, so every change of a cost stays on record with its author; revenue is compared with
them by source and month. The funnel counts leads (each lead once per stage) and shows re-entries apart;
leads, routings, acceptances, wins and revenue are also reported by the lead's first-touch source and
campaign. `build_scoreboard` is pure: counters in, the report out.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo import ContentStore, Counters
from chalicelib.domain.bandit import LEARNING_PERIOD, evidence_from_counters, posterior, prior, prior_mean
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.messaging import stage_fit
from chalicelib.domain.scoreboard import ATTRIBUTED_MEASURES
from chalicelib.errors import InvalidContent, MalformedInput

FUNNEL = ("nurturing", "sales_ready", "accepted", "opportunity", "won")
OTHER_STAGES = ("lost", "disqualified")
ACCEPT_BUCKET = "accept:within_minutes_le:"
MAX_RANGE_DAYS = 3 * 366
COST_KEY = "cost#"
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Cost:
    source: str
    month: str
    amount: float


def periods_for(start: date, end: date) -> list[str]:
    """The counter periods that add up to [start, end]: whole months where covered, days elsewhere."""
    periods: list[str] = []
    day = start
    while day <= end:
        last = _month_end(day)
        if day.day == 1 and last <= end:
            periods.append(f"{day:%Y-%m}")
            day = last + timedelta(days=1)
        else:
            periods.append(day.isoformat())
            day += timedelta(days=1)
    return periods


def kept_in(name: str, at: datetime) -> tuple[str, ...]:
    """The periods counter `name` is kept in, moved at `at`: only those a reader reads it from, since each
    period costs a write (a day's count rides on its month's item, so all/month/day is two items:
    chalicelib.adapters.dynamo_counters). The report reads every name it shows from "all" (no range) and
    from months and days (a range); a few names have narrower readers."""
    month = f"{at:%Y-%m}"
    if name.startswith("assign:team:"):
        return ("all",)  # the round robin reads all-time counts only (usecases.leads._Turns)
    if name.startswith("source:") and name.endswith(":revenue:won"):
        return (month,)  # only the revenue table by source and month reads it
    if name.startswith("source:") and ":sla:" in name:
        return ("all",)  # no report reads it yet; kept all-time so one can
    return ("all", month, f"{at:%Y-%m-%d}")


def months_between(start: date, end: date) -> list[str]:
    months, day = [], start.replace(day=1)
    while day <= end:
        months.append(f"{day:%Y-%m}")
        day = _month_end(day) + timedelta(days=1)
    return months


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantile(buckets: Mapping[int, float], q: float) -> int | str | None:
    """The upper edge of the bucket holding the q-quantile (nearest rank), in minutes."""
    total = sum(buckets.values())
    if not total:
        return None
    rank, seen = math.ceil(q * total), 0.0
    edges = sorted(buckets)
    for edge in edges:
        seen += buckets[edge]
        if seen >= rank:
            return edge if edge < 10**6 else f"over {edges[-2] if len(edges) > 1 else 10080}"
    return None


def _suffix_split(name: str, prefix: str, marker: str) -> tuple[str, str] | None:
    """Split a per-source counter name: "source:web:recycled:no_budget" -> ("web", "no_budget")."""
    if not name.startswith(prefix) or marker not in name:
        return None
    head, _, tail = name[len(prefix) :].rpartition(marker)
    return head, tail


def build_scoreboard(
    totals: Mapping[str, float], by_month: Mapping[str, Mapping[str, float]], costs: list[Cost]
) -> dict[str, Any]:
    """The report from summed counters (`totals`), each month's counters and the costs entered."""

    def count(name: str) -> float:
        return float(totals.get(name, 0.0))

    def reentries(stage: str) -> float:
        return count(f"reentered:{stage}")

    # `entered:<stage>` counts each lead once (its first entry), `reentered:<stage>` the entries of leads
    # that had been there before: conversion is between leads, never between entries.
    funnel, previous = [], None
    for stage in FUNNEL:
        leads = count(f"entered:{stage}")
        funnel.append(
            {
                "stage": stage,
                "leads": leads,
                "reentries": reentries(stage),
                "entered": leads + reentries(stage),
                "conversion_from_previous": _ratio(leads, count(f"entered:{previous}")) if previous else None,
            }
        )
        previous = stage
    routed = count("entered:sales_ready") + reentries("sales_ready")  # every handoff, a lead's second too
    buckets = {
        int(name[len(ACCEPT_BUCKET) :]): value
        for name, value in totals.items()
        if name.startswith(ACCEPT_BUCKET) and value
    }
    accepted = count("accept:count")
    entered_by_source: dict[str, dict[str, float]] = {}
    recycle_total: dict[str, float] = {}
    recycle_by_source: dict[str, dict[str, float]] = {}
    templates: dict[str, dict[str, float]] = {}
    attributed: dict[str, dict[str, dict[str, float]]] = {"first_source": {}, "first_campaign": {}}
    for name, value in totals.items():
        prefix, _, rest = name.partition(":")
        if prefix in attributed and rest.count(":") == 1:
            label, _, measure = rest.partition(":")
            attributed[prefix].setdefault(label, {})[measure] = value
        elif name.startswith("recycled:"):
            recycle_total[name.split(":", 1)[1]] = value
        elif (split := _suffix_split(name, "source:", ":recycled:")) is not None:
            recycle_by_source.setdefault(split[0], {})[split[1]] = value
        elif (split := _suffix_split(name, "source:", ":entered:")) is not None:
            entered_by_source.setdefault(split[0], {})[split[1]] = value
        elif name.startswith("template:"):
            template, _, outcome = name[len("template:") :].rpartition(":")
            templates.setdefault(template, {})[outcome] = value
    messages = []
    for template in sorted(templates):
        outcomes = templates[template]
        sent = outcomes.get("sent", 0.0)
        messages.append(
            {
                "template": template,
                **{outcome: outcomes[outcome] for outcome in sorted(outcomes)},
                "open_rate": _ratio(outcomes.get("opened", 0.0), sent),
                "click_rate": _ratio(outcomes.get("clicked", 0.0), sent),
            }
        )
    return {
        "stages": {
            "funnel": funnel,
            **{stage: count(f"entered:{stage}") for stage in OTHER_STAGES},
            "reentries": {stage: reentries(stage) for stage in (*FUNNEL, *OTHER_STAGES)},
            "by_source": {
                source: {stage: by.get(stage, 0.0) for stage in (*FUNNEL, *OTHER_STAGES)}
                for source, by in sorted(entered_by_source.items())
            },
        },
        "routed": {
            "total": routed,
            "leads": count("entered:sales_ready"),
            "hand_raise": count("routed:hand_raise"),
            "qualified": count("routed:qualified"),
        },
        "follow_up": {
            "routed": routed,
            "accepted": accepted,
            "accepted_within_sla": count("sla:met"),
            "rate": _ratio(count("sla:met"), routed),
        },
        "time_to_accept_minutes": {
            "accepted": accepted,
            "mean": round(count("accept:minutes_total") / accepted, 3) if accepted else None,
            "median_at_most": _quantile(buckets, 0.5),
            "p90_at_most": _quantile(buckets, 0.9),
            "histogram": [{"at_most": edge, "count": buckets[edge]} for edge in sorted(buckets)],
        },
        "sla": {
            "met": count("sla:met"),
            "escalated": count("sla:escalated"),
            "missed": count("sla:missed"),
        },
        "recycle_reasons": {
            "total": dict(sorted(recycle_total.items())),
            "by_source": {source: dict(sorted(r.items())) for source, r in sorted(recycle_by_source.items())},
        },
        "messages": messages,
        "revenue": _revenue(count("revenue:won"), by_month, costs),
        "attribution": {
            "by_source": _by_touch(attributed["first_source"]),
            "by_campaign": _by_touch(attributed["first_campaign"]),
        },
    }


def _by_touch(counted: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Outcomes by first-touch source (or campaign), most leads first."""
    rows = {
        label: {measure: float(by.get(measure, 0.0)) for measure in ATTRIBUTED_MEASURES}
        for label, by in counted.items()
        if any(by.values())
    }
    return dict(sorted(rows.items(), key=lambda item: (-item[1]["leads"], item[0])))


def _revenue(won: float, by_month: Mapping[str, Mapping[str, float]], costs: list[Cost]) -> dict[str, Any]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for month, counters in by_month.items():
        for name, value in counters.items():
            split = _suffix_split(name, "source:", ":revenue:won")
            if split is not None and split[1] == "" and value:
                rows.setdefault((split[0], month), {"won": 0.0, "cost": 0.0})["won"] += value
    for cost in costs:
        if cost.month in by_month:
            rows.setdefault((cost.source, cost.month), {"won": 0.0, "cost": 0.0})["cost"] += cost.amount
    table = [
        {
            "source": source,
            "month": month,
            "won": row["won"],
            "cost": row["cost"],
            "return": _ratio(row["won"], row["cost"]),
        }
        for (source, month), row in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0]))
    ]
    cost_total = sum(row["cost"] for row in table)
    return {
        "won": won,
        "cost": cost_total,
        "return": _ratio(won, cost_total),
        "by_source_month": table,
    }


def learning_report(
    counters: Mapping[str, float], templates: Mapping[str, TemplateMeta]
) -> list[dict[str, Any]]:
    """What the nurture chooser has learnt (all time): per template and context ("topic/stage"), its sends,
    first human opens and responses (clicks, or a hand-raise within a week), and its Beta posterior of the
    response rate. The prior shown is the template's priority and stage preference; the chooser's own also
    weighs each prospect's interest strength, persona and recycle reason (chalicelib.domain.messaging)."""
    rows = []
    for (name, context), evidence in sorted(evidence_from_counters(counters).items()):
        meta = templates.get(name)
        topic, _, stage = context.rpartition("/")
        fit = stage_fit(meta, stage) if meta is not None else 1.0
        belief = posterior(prior(prior_mean(meta.priority if meta is not None else 0, fit)), evidence)
        rows.append(
            {
                "template": name,
                "context": context,
                "topic": topic,
                "stage": stage,
                "sent": evidence.sent,
                "opened": evidence.opened,
                "clicked": evidence.clicked,
                "click_rate": _ratio(evidence.clicked, evidence.sent),
                "posterior": {
                    "alpha": round(belief.alpha, 3),
                    "beta": round(belief.beta, 3),
                    "mean": round(belief.mean, 4),
                },
            }
        )
    return rows


class Scoreboard:
    """Reads the counters for a date range and the costs entered; records costs. `templates`: the
    templates in force, for the priors of what the nurture chooser learnt (`learning`)."""

    def __init__(
        self,
        counters: Counters,
        content: ContentStore,
        clock: Callable[[], datetime],
        templates: Callable[[], Mapping[str, TemplateMeta]] | None = None,
    ) -> None:
        self._counters = counters
        self._content = content
        self._clock = clock
        self._templates = templates

    def report(self, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        answer = self._report(start, end)
        templates = self._templates() if self._templates is not None else {}
        answer["learning"] = learning_report(self._counters.read(LEARNING_PERIOD), templates)
        return answer

    def _report(self, start: date | None, end: date | None) -> dict[str, Any]:
        costs = self._costs()
        if start is None and end is None:
            months = sorted({cost.month for cost in costs} | {f"{self._clock():%Y-%m}"})
            read = self._counters.read_many(["all", *months])
            by_month = {month: read[month] for month in months}
            answer = build_scoreboard(read["all"], by_month, costs)
            return {"from": None, "to": None, **answer}
        today = self._clock().date()
        start = start or (end or today).replace(day=1)
        end = end or today
        if end < start:
            raise MalformedInput("'to' must not be before 'from'")
        if (end - start).days > MAX_RANGE_DAYS:
            raise MalformedInput(f"the scoreboard spans at most {MAX_RANGE_DAYS} days; narrow from/to")
        totals: dict[str, float] = {}
        periods = periods_for(start, end)
        months = months_between(start, end)
        read = self._counters.read_many([*periods, *months])  # one pass: the shards of all at once
        for period in periods:
            for name, value in read[period].items():
                totals[name] = totals.get(name, 0.0) + value
        by_month = {m: read[m] for m in months}
        answer = build_scoreboard(totals, by_month, costs)
        return {"from": start.isoformat(), "to": end.isoformat(), **answer}

    def set_cost(self, source: str, month: str, body: Mapping[str, Any], actor: str) -> dict[str, Any]:
        """Enter (or correct) what marketing and sales spent on one lead source in one month."""
        if not SOURCE_PATTERN.match(source):
            raise MalformedInput("source must be 1-64 letters, digits, '.', '_' or '-'")
        if not MONTH_PATTERN.match(month):
            raise MalformedInput("month must be YYYY-MM")
        amount = body.get("amount")
        if not isinstance(amount, int | float) or isinstance(amount, bool) or not 0 <= amount < 1e12:
            raise InvalidContent("'amount' must be a non-negative number")
        note = body.get("note")
        record = {"amount": float(amount), "note": str(note) if note is not None else None}
        version = self._content.save(f"{COST_KEY}{source}#{month}", json.dumps(record), actor, self._clock())
        return {"source": source, "month": month, "amount": float(amount), "version": version, "by": actor}

    def _costs(self) -> list[Cost]:
        costs = []
        for key in self._content.keys(COST_KEY):
            latest = self._content.latest(key)
            if latest is None:
                continue
            _, source, month = key.split("#", 2)
            costs.append(Cost(source=source, month=month, amount=float(json.loads(latest.body)["amount"])))
        return costs


def parse_day(value: str | None, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        raise MalformedInput(f"query parameter {name!r} must be a date (YYYY-MM-DD), got {value!r}") from None
    if not 2000 <= day.year <= 2999:  # the scoreboard's calendar; also keeps date arithmetic in range
        raise MalformedInput(f"query parameter {name!r} must be a date between the years 2000 and 2999")
    return day
