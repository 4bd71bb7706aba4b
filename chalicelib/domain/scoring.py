"""Scores: fit (who they are) and engagement (what they do), each with the breakdown sales reads.

Engagement and interests are stored as points per day; their value now is computed at read time with an
exponential half-life, so a prospect who went quiet cools down without any job touching the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from chalicelib.domain.accounts import AcrossAccounts, trait_value
from chalicelib.domain.prospect import BUCKET_HORIZON_DAYS, DayBuckets, Prospect
from chalicelib.domain.rules import FitRule, Rules


@dataclass(frozen=True, slots=True)
class ScoreLine:
    rule: str
    kind: str  # "fit" | "engagement"
    points: float


@dataclass(frozen=True, slots=True)
class Scores:
    fit: float
    engagement: float
    breakdown: tuple[ScoreLine, ...]
    rules_version: int

    @property
    def total(self) -> float:
        return round(self.fit + self.engagement, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fit": self.fit,
            "engagement": self.engagement,
            "total": self.total,
            "rules_version": self.rules_version,
            "breakdown": [
                {"rule": line.rule, "kind": line.kind, "points": line.points} for line in self.breakdown
            ],
        }


def day_of(moment: datetime) -> int:
    # One event's moment is asked for its day 3 to 4 times (apply, score, the reassessment's pruning,
    # interests): the last answer is kept with the very object it was for (a datetime is immutable, and the
    # reference held keeps its identity from being reused).
    global _LAST_DAY
    last = _LAST_DAY
    if moment is last[0]:
        return last[1]
    day = moment.date().toordinal()
    _LAST_DAY = (moment, day)  # one assignment: a reader sees the old pair or the new, never half of one
    return day


_LAST_DAY: tuple[datetime | None, int] = (None, 0)


@lru_cache(maxsize=8192)
def _decay(age_days: int, half_life_days: float) -> float:
    return float(0.5 ** (max(age_days, 0) / half_life_days))


@lru_cache(maxsize=64)
def _decay_table(half_life_days: float) -> tuple[float, ...]:
    """`_decay(age, half_life)` for every age a kept bucket can have (0 to BUCKET_HORIZON_DAYS): the hot
    loops index it instead of calling `_decay` per bucket. The same expression, so the same floats."""
    return tuple(_decay(age, half_life_days) for age in range(BUCKET_HORIZON_DAYS + 1))


def decayed(buckets: DayBuckets, half_life_days: float, today: int) -> float:
    # Ages are whole days and half-lives few: the factors repeat, so they are computed once.
    table = _decay_table(half_life_days)
    size = len(table)
    return sum(
        points * (table[age] if 0 <= (age := today - day) < size else _decay(age, half_life_days))
        for day, points in buckets.items()
    )


def add_to_bucket(groups: dict[str, DayBuckets], key: str, day: int, amount: float) -> None:
    days = groups.setdefault(key, {})
    days[day] = days.get(day, 0.0) + amount


def prune_buckets(groups: dict[str, DayBuckets], today: int) -> None:
    """Forget buckets whose decayed value is negligible, so profiles stay small."""
    cutoff = today - BUCKET_HORIZON_DAYS
    # This runs twice on every event and is rarely true: the earliest day of all, found in C, says whether
    # anything is stale. An empty group (or none at all) raises, and goes the long way, which drops it.
    try:
        if min(map(min, groups.values())) >= cutoff:
            return
    except ValueError:
        pass
    stale = [key for key, days in groups.items() if not days or min(days) < cutoff]
    for key in stale:
        days = groups[key]
        for day in [day for day in days if day < cutoff]:
            del days[day]
        if not days:
            del groups[key]


def _fit_value(prospect: Prospect, rule: FitRule) -> Any:
    value = trait_value(prospect, rule.trait)
    if (value is None or value == "") and rule.fallback:
        value = trait_value(prospect, rule.fallback)  # e.g. the account's employees for company_size
    return value


def _fit_points(rule: FitRule, value: Any) -> float:
    if rule.missing:  # the trait (and its fallback) not known: a question the form left unanswered
        return rule.points if _unknown(value) else 0.0
    if isinstance(value, AcrossAccounts):  # the person's accounts: the best value counts
        return max((_fit_points(rule, one) for one in value), default=0.0)
    if value is None or value == "":
        return 0.0
    if rule.pattern is not None:
        return rule.points if rule.pattern.search(str(value)) else 0.0
    if rule.between is not None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return 0.0
        low, high = rule.between
        return rule.points if low <= number <= high else 0.0
    if rule.domains is not None:
        return rule.points if in_domains(str(value), rule.domain_set) else 0.0
    return rule.points if str(value).lower() in rule.choices else 0.0


def _unknown(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def in_domains(value: str, domains: frozenset[str]) -> bool:
    """Whether an email address's or a website's domain is one of `domains` or under one of them."""
    host = value.rpartition("@")[2] if "@" in value else value.split("//")[-1].split("/")[0]
    host = host.strip().strip(".").lower()
    while host:
        if host in domains:
            return True
        host = host.partition(".")[2]
    return False


def _fit_key(prospect: Prospect, rules: Rules) -> Any:
    """Everything the fit rules can read of `prospect`, raw (before fallbacks): the email if a rule reads
    it, the person's traits they name, and each account's traits they name. Fit is a function of this, so
    it keys the remembered answer; reading ~6 names costs far less than resolving every rule's value."""
    reads_email, person, account = rules.fit_reads
    traits_of = prospect.traits.get
    return (
        prospect.email if reads_email else None,
        tuple(map(traits_of, person)),
        tuple(tuple(map(link.traits.get, account)) for link in prospect.accounts) if account else (),
    )


def fit_lines(prospect: Prospect, rules: Rules) -> tuple[ScoreLine, ...]:
    """Fit changes only when traits do; the answer is remembered per rules document and trait values, and
    the profile's last answer on the profile (most events change no trait: then no key is built)."""
    cache = rules.fit_cache
    memo = prospect.fit_memo
    accounts = prospect.accounts
    if (
        memo is not None
        and memo.cache is cache  # the same rules document (the memo holds it: its id is not reused)
        and memo.email == prospect.email
        and memo.traits == prospect.traits
        and (memo.accounts == list(map(_link_traits, accounts)) if accounts else not memo.accounts)
    ):
        return memo.lines
    key = _fit_key(prospect, rules)
    try:  # the lookup hashes the key once: no separate check that it can be hashed
        held = cache.get(key)
    except TypeError:  # an unhashable trait value (a list): compute without remembering
        key = held = None
    if held is not None:
        _memo_fit(prospect, cache, held)
        return held
    values = tuple(_fit_value(prospect, rule) for rule in rules.fit)
    found: list[ScoreLine] = []
    best: dict[str, int] = {}  # dimension -> index in `found` of the one line that counts for it
    for rule, value in zip(rules.fit, values, strict=True):
        points = _fit_points(rule, value)
        if not points:
            continue
        line = ScoreLine(rule.id, "fit", points)
        if rule.dimension is None:
            found.append(line)
        elif rule.dimension not in best:
            best[rule.dimension] = len(found)
            found.append(line)
        elif _outranks(points, found[best[rule.dimension]].points):
            found[best[rule.dimension]] = line
    lines = tuple(found)
    if key is not None:
        if len(cache) >= FIT_CACHE_SIZE:
            cache.clear()
        cache[key] = lines
        _memo_fit(prospect, cache, lines)
    return lines


_link_traits = attrgetter("traits")


class FitMemo:
    """A profile's last fit with copies of everything it read (`Prospect.fit_memo`). A copy of the profile
    (copy.deepcopy) starts without one: it would otherwise copy the rules' whole fit cache."""

    __slots__ = ("cache", "email", "traits", "accounts", "lines")

    def __init__(self, cache: dict[Any, Any], prospect: Prospect, lines: tuple[ScoreLine, ...]) -> None:
        self.cache = cache
        self.email = prospect.email
        self.traits = dict(prospect.traits)
        self.accounts = [dict(link.traits) for link in prospect.accounts]
        self.lines = lines

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None


def _memo_fit(prospect: Prospect, cache: dict[Any, Any], lines: tuple[ScoreLine, ...]) -> None:
    """Remember on the profile the fit just found (only when its inputs could key the rules' cache: hashable
    values, which a shallow copy keeps as they are)."""
    prospect.fit_memo = FitMemo(cache, prospect, lines)


FIT_CACHE_SIZE = 4096
LINE_CACHE_SIZE = 4096


def _outranks(points: float, held: float) -> bool:
    """Within a dimension, a line against (an intern's title) wins over any line for; else the largest."""
    if (points < 0) != (held < 0):
        return points < 0
    return abs(points) > abs(held)


def score(prospect: Prospect, rules: Rules, now: datetime) -> Scores:
    lines: list[ScoreLine] = list(fit_lines(prospect, rules))
    fitted = len(lines)
    today = day_of(now)
    caps = rules.caps
    half_life = rules.engagement_half_life_days
    made = rules.line_cache
    held = rules.engagement_line_cache
    # The hottest loop of the domain (every event rescored). A rule's line is a function of its days and
    # points and of today; the same few buckets recur (about 1 in 30 is new on the bench stream), so the
    # line (or None: no points) is remembered by exactly those, and the sum below runs only for new ones.
    bucket_key: tuple[Any, ...]
    for rule_id, buckets in prospect.engagement.items():
        if len(buckets) == 1:  # most rules (2 in 3): one day's points, whose line is that of their age
            for day, earned in buckets.items():
                bucket_key = (rule_id, today - day, earned)
        else:  # (a float never equals a tuple: the two kinds of key never meet)
            bucket_key = (rule_id, today, tuple(buckets.items()))
        line = held.get(bucket_key, _UNSEEN)
        if line is _UNSEEN:
            line = _engagement_line(rule_id, buckets, today, caps, half_life, made)
            if len(held) >= ENGAGEMENT_LINE_CACHE_SIZE:
                held.clear()
            held[bucket_key] = line
        if line is not None:
            lines.append(line)
    # The same few lines recur in the same combinations. The scores are a function of the lines in this
    # order (fit's lines, then engagement's, each summed in that order) and of the rules' version, so they
    # are remembered by the lines' identities (the remembered scores hold those very objects in their
    # breakdown, so no id is reused while they are kept).
    key = tuple(map(id, lines))
    known = _SCORED.get(key)
    if known is not None and known.rules_version == rules.version:
        return known
    fit = round(sum(map(_points, lines[:fitted])), 1)  # the same additions in the same order as a generator
    engagement = 0.0
    for line in lines[fitted:]:
        engagement += line.points
    if known is None:
        lines.sort(key=_line_order)
        ordered = tuple(lines)
    else:  # the same lines under another version of the rules: only the version differs
        ordered = known.breakdown
    scores = Scores(fit=fit, engagement=round(engagement, 1), breakdown=ordered, rules_version=rules.version)
    if len(_SCORED) >= ORDER_CACHE_SIZE:
        _SCORED.clear()
    _SCORED[key] = scores
    return scores


ORDER_CACHE_SIZE = 16384
_SCORED: dict[tuple[int, ...], Scores] = {}
ENGAGEMENT_LINE_CACHE_SIZE = 16384
_UNSEEN = object()


def _engagement_line(
    rule_id: str,
    buckets: DayBuckets,
    today: int,
    caps: dict[str, float | None],
    half_life: float,
    made: dict[Any, Any],
) -> ScoreLine | None:
    """One engagement rule's line now: its days decayed and summed, capped, rounded to tenths; None when a
    rule removed since the points were earned, or no points (after rounding)."""
    if rule_id not in caps:
        return None
    table = _decay_table(half_life)
    size = len(table)
    points = 0.0
    for day, earned in buckets.items():
        age = today - day
        points += earned * (table[age] if 0 <= age < size else _decay(age, half_life))
    cap = caps[rule_id]
    if cap is not None and (points > cap or points < -cap):  # a negative rule's cap bounds its loss
        points = cap if points > 0 else -cap
    points = round(points, 1)
    if not points:
        return None
    # Points are rounded to tenths: the same few lines recur, so each is built once (the remembered
    # breakdown order below is keyed by the lines' identities).
    line: ScoreLine | None = made.get((rule_id, points))
    if line is None:
        if len(made) >= LINE_CACHE_SIZE:
            made.clear()
        line = made[rule_id, points] = ScoreLine(rule_id, "engagement", points)
    return line


def engagement_since(prospect: Prospect, rules: Rules, first_day: int, today: int, *, decay: bool) -> float:
    """The engagement points earned from `first_day` to `today` inclusive (each rule's cap applied):
    decayed to `today`, or as earned (`decay=False`: a velocity, or the pace of a past week when `today` is
    that week's last day). Never on the per-event path of a lead below the fit threshold."""
    total = 0.0
    half_life = rules.engagement_half_life_days
    caps = rules.caps
    for rule_id, buckets in prospect.engagement.items():
        if rule_id not in caps:
            continue
        points = sum(
            earned * (_decay(today - day, half_life) if decay else 1.0)
            for day, earned in buckets.items()
            if first_day <= day <= today
        )
        cap = caps[rule_id]
        if cap is not None and (points > cap or points < -cap):
            points = cap if points > 0 else -cap
        total += points
    return round(total, 1)


_points = attrgetter("points")


def _line_order(line: ScoreLine) -> tuple[float, str]:
    return (-abs(line.points), line.rule)


def interest_weights(prospect: Prospect, rules: Rules, now: datetime) -> dict[str, float]:
    """Each topic's interest now: its days decayed, each day counted up to `interest.daily_cap` (applied
    here, at read time, so the answer does not depend on the order events arrived in or on merges)."""
    today = day_of(now)
    half_life = rules.interest_half_life_days
    cap = rules.interest.daily_cap
    if cap is None:
        interests = prospect.interests
        weights = {topic: round(decayed(days, half_life, today), 2) for topic, days in interests.items()}
        return {topic: weight for topic, weight in weights.items() if weight > 0}
    found: dict[str, float] = {}
    held = _INTEREST_WEIGHTS
    key: tuple[Any, ...]
    for topic, buckets in prospect.interests.items():
        # A topic's weight is a function of its days and points, today, the half-life and the cap: the same
        # buckets recur (as engagement's do), so the weight is remembered by exactly those.
        if len(buckets) == 1:  # one day's points (most topics): the weight is that of their age
            for day, points in buckets.items():
                key = (today - day, half_life, cap, points)
        else:  # (a float never equals a tuple: the two kinds of key never meet)
            key = (today, half_life, cap, tuple(buckets.items()))
        weight = held.get(key)
        if weight is None:
            table = _decay_table(half_life)
            size = len(table)
            # sum() as before, not a running +=: Python 3.12's sum() rounds differently, and must agree.
            weight = round(
                sum(
                    min(points, cap)
                    * (table[age] if 0 <= (age := today - day) < size else _decay(age, half_life))
                    for day, points in buckets.items()
                ),
                2,
            )
            if len(held) >= INTEREST_WEIGHT_CACHE_SIZE:
                held.clear()
            held[key] = weight
        if weight > 0:
            found[topic] = weight
    return found


INTEREST_WEIGHT_CACHE_SIZE = 16384
_INTEREST_WEIGHTS: dict[tuple[Any, ...], float] = {}


def top_interests(prospect: Prospect, rules: Rules, now: datetime, limit: int = 5) -> list[tuple[str, float]]:
    weights = interest_weights(prospect, rules, now)
    return sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:limit]
