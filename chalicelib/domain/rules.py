"""The rules document marketing and sales share: scoring, topics, personas, thresholds, cadence, SLA,
and who gets a lead when it is routed (assignment: teams, territories, round robin).

Rules are data (YAML or JSON), validated on load; every problem is reported with the path of the field that
caused it, so a marketer can fix a rule without reading code. `parse_rules` is the only way in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.domain.lifecycle import RECYCLE_REASONS


class RulesError(ValueError):
    """The rules document is invalid. `problems` is a list of {"field": dotted.path, "message": ...}."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern, re.IGNORECASE) if pattern else None


def _check_pattern(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
    return value


ACCOUNT_TRAIT_PREFIX = "account."  # `account.<name>`: the trait of the person's accounts (the best value)


def _check_trait(value: str | None) -> str | None:
    if value is not None and value.strip() == ACCOUNT_TRAIT_PREFIX.rstrip(".") + ".":
        raise ValueError(f"name the account trait after {ACCOUNT_TRAIT_PREFIX!r}, e.g. 'account.employees'")
    return value


class FitRule(_Strict):
    """Points for who the prospect is: a trait matching a pattern, in a list, or within a range.
    `trait: account.<name>` reads the person's accounts (the value worth the most points across them);
    `fallback` is read when the person's own `trait` is missing (company_size, else account.employees)."""

    id: str
    trait: str
    fallback: str | None = None
    matches: str | None = None
    one_of: tuple[str, ...] | None = None
    between: tuple[float, float] | None = None
    # Email or web domains (a subdomain counts): the email's part after @, or a website trait's host.
    domains: tuple[str, ...] | None = None
    # With `domains`: also every company domain sales disqualified as a competitor (domain/competitors.py).
    learned_from_sales: bool = False
    # `missing: true` matches when neither the trait nor its fallback is known (left out of the form, blank):
    # what an unanswered question is worth, so that absence of data need not count like a poor answer.
    missing: Literal[True] | None = None
    points: float
    # Rules of one dimension (seniority, role...) are alternatives: one line counts, the one against if any
    # matches (an intern's title), else the one worth most; rules without a dimension all count.
    dimension: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)  # what a person reads: "executive title"

    _check = field_validator("matches")(_check_pattern)
    _check_traits = field_validator("trait", "fallback")(_check_trait)

    @model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        conditions = (self.matches, self.one_of, self.between, self.domains, self.missing)
        if sum(x is not None for x in conditions) != 1:
            raise ValueError("give exactly one of matches, one_of, between, domains, missing")
        if self.learned_from_sales and self.domains is None:
            raise ValueError("learned_from_sales adds domains sales named: give it with `domains`")
        return self

    @cached_property
    def domain_set(self) -> frozenset[str]:
        return frozenset(domain.lower().strip(".") for domain in self.domains or ())

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        return _compile(self.matches)

    @cached_property
    def choices(self) -> frozenset[str]:
        return frozenset(choice.lower() for choice in self.one_of or ())


class EngagementRule(_Strict):
    """Points for what the prospect does; each occurrence adds `points`, decayed, capped at `cap`."""

    id: str
    kind: Literal["page", "screen", "track", "identify", "email", "hand_raise"]
    name: str | None = None  # track event name or email event name (exact, case-insensitive)
    path: str | None = None  # regular expression on the page path / clicked URL
    points: float  # negative for a signal against buying (job openings read); `cap` then bounds the loss
    cap: float | None = Field(default=None, ge=0)
    label: str | None = Field(default=None, min_length=1)  # what a person reads: "read the pricing page"

    _check = field_validator("path")(_check_pattern)

    @cached_property
    def path_pattern(self) -> re.Pattern[str] | None:
        return _compile(self.path)


class TopicRule(_Strict):
    topic: str
    url: str | None = None  # regular expression on page path, page URL or clicked link
    events: tuple[str, ...] = ()  # track event names that show this interest
    # Regular expression on what an event says it is about: a download's topic, category, name or title.
    content: str | None = None
    weight: float = 1.0

    _check = field_validator("url", "content")(_check_pattern)

    @cached_property
    def url_pattern(self) -> re.Pattern[str] | None:
        return _compile(self.url)

    @cached_property
    def content_pattern(self) -> re.Pattern[str] | None:
        return _compile(self.content)


class InterestSignals(_Strict):
    """How much one sign of interest weighs, by what the prospect did."""

    page: float = Field(default=1.0, ge=0)  # a page or screen viewed
    click: float = Field(default=1.0, ge=0)  # a link clicked in one of our emails
    event: float = Field(default=1.0, ge=0)  # a tracked event: a download, a webinar, a calculator used


class Interest(_Strict):
    signals: InterestSignals = InterestSignals()
    # At most this much interest per topic per day, applied when read (None: no limit): one long session is
    # one day's interest; repeated interest means coming back on other days.
    daily_cap: float | None = Field(default=None, gt=0)


class Confirmer(_Strict):
    """Recent intent: the engagement rules `rules` matched `times` times in all, on `days` different days,
    within the intent window."""

    rules: tuple[str, ...] = Field(min_length=1)
    times: int = Field(default=1, ge=1)
    days: int = Field(default=1, ge=1)


class Intent(_Strict):
    within_days: int = Field(ge=1, le=90)
    confirmers: tuple[Confirmer, ...] = Field(min_length=1)
    # Velocity, beside a confirmer: the engagement points earned within the window (as earned, each rule's
    # cap applied; not the decaying total) must reach this. None: no velocity asked for.
    recent_points: float | None = Field(default=None, gt=0)
    # Return visits, beside a confirmer: engagement on at least this many different days within the window
    # (any engagement rule that earns points). None: not asked for.
    recent_days: int | None = Field(default=None, ge=1, le=90)
    # A history, beside a confirmer: engagement on at least this many different days before the window (any
    # engagement rule that earned points, as far back as the profile keeps). None: not asked for.
    earlier_days: int | None = Field(default=None, ge=1, le=90)


class RecycleSurge(_Strict):
    """A held lead is re-routed when the engagement points it earned since the recycle, within the last
    `within_days` days (each rule's cap applied, not decayed), reach `points`."""

    within_days: int = Field(ge=1, le=90)
    points: float = Field(gt=0)
    # And faster than the week that sent the lead to sales last time (points earned in the same number of
    # days up to that route, as earned): the rep saw that pace on the call and said "not yet", so only a
    # clearer change overrides the date they gave. False: `points` alone.
    beat_routed_pace: bool = False


class Routing(_Strict):
    # Without `intent`, fit and engagement alone qualify a lead (documents from before routing had it).
    intent: Intent | None = None
    # Without `recycle_surge`, a held lead waits for its revisit date or a hand-raise.
    recycle_surge: RecycleSurge | None = None


class PersonaRule(_Strict):
    persona: str
    title: str

    _check = field_validator("title")(_check_pattern)

    @cached_property
    def title_pattern(self) -> re.Pattern[str]:
        return re.compile(self.title, re.IGNORECASE)


class Thresholds(_Strict):
    fit: float = Field(ge=0)
    engagement: float = Field(ge=0)


class StageRules(_Strict):
    consideration_engagement: float = Field(ge=0)
    decision_engagement: float = Field(ge=0)
    decision_topics: tuple[str, ...] = ("pricing",)


class Cadence(_Strict):
    first_touch_minutes: int = Field(ge=0)
    min_days_between: float = Field(gt=0)
    max_per_30_days: int = Field(ge=1)


class Nurture(_Strict):
    """How the nurture chooser may fill a touch (chalicelib.domain.messaging)."""

    # Nothing on the prospect's interests is eligible: wait and look again after a cadence interval
    # (the reason is on the profile) rather than send an off-topic email.
    wait_for_relevant: bool = True
    # A template already sent to a prospect may go again once its cooldown has passed.
    allow_repeats: bool = False
    # An interest the chooser answers is at least this share of the prospect's strongest one. A topic
    # well behind the strongest is mostly glances (pages every evaluator reads); answering it is close to
    # a fixed drip's aim, so nurture waits for clearer interest instead.
    relevant_share: float = Field(default=0.8, gt=0, le=1)


class RecycleTreatment(_Strict):
    hold_days: int = Field(default=0, ge=0)  # no nurture email until then (revisit_in_days overrides)
    prefer_topics: tuple[str, ...] = ()
    prefer_stage: str | None = None


class Sla(_Strict):
    accept_minutes: int = Field(gt=0)
    escalate_minutes: int = Field(gt=0)
    # Seconds win over minutes when given: demos and tests cannot wait hours for a timeout.
    accept_seconds: int | None = Field(default=None, gt=0)
    escalate_seconds: int | None = Field(default=None, gt=0)

    @property
    def accept_after(self) -> int:
        return self.accept_seconds or self.accept_minutes * 60

    @property
    def escalate_after(self) -> int:
        return self.escalate_seconds or self.escalate_minutes * 60


class Team(_Strict):
    """Reps who take turns (round robin) and the team lead who hears about unworked leads."""

    members: tuple[str, ...] = Field(min_length=1)
    lead: str | None = None


class Territory(_Strict):
    """Leads matching every condition given go to `team`; the first matching territory wins."""

    team: str
    countries: tuple[str, ...] | None = None
    company_size: tuple[float, float] | None = None  # inclusive range of employees

    @model_validator(mode="after")
    def _some_condition(self) -> Territory:
        if self.countries is None and self.company_size is None:
            raise ValueError("give countries, company_size or both")
        return self

    @cached_property
    def country_codes(self) -> frozenset[str]:
        return frozenset(code.upper() for code in self.countries or ())


class Assignment(_Strict):
    """Who owns a routed lead: an owner the CRM already knows, else a territory's team, else the default
    team; within a team, members take turns."""

    crm_owner_wins: bool = True
    teams: dict[str, Team] = Field(min_length=1)
    territories: tuple[Territory, ...] = ()
    default_team: str

    @model_validator(mode="after")
    def _known_teams(self) -> Assignment:
        named = [self.default_team, *(territory.team for territory in self.territories)]
        unknown = sorted({team for team in named if team not in self.teams})
        if unknown:
            raise ValueError(f"unknown team(s) {unknown}; teams: {sorted(self.teams)}")
        return self


class Rules(_Strict):
    version: int = Field(ge=0, default=0)
    thresholds: Thresholds
    engagement_half_life_days: float = Field(gt=0)
    interest_half_life_days: float = Field(gt=0)
    hand_raise_events: tuple[str, ...] = Field(min_length=1)
    fit: tuple[FitRule, ...]
    engagement: tuple[EngagementRule, ...]
    topics: tuple[TopicRule, ...]
    personas: tuple[PersonaRule, ...]
    default_persona: str
    stages: StageRules
    cadence: Cadence
    nurture: Nurture = Nurture()
    recycle: dict[str, RecycleTreatment] = {}
    sla: Sla
    assignment: Assignment | None = None  # without it, routed leads wait unassigned until accepted
    lost_reopen_days: int = Field(ge=0)
    interest: Interest = Interest()
    routing: Routing = Routing()

    @field_validator("recycle")
    @classmethod
    def _known_reasons(cls, value: dict[str, RecycleTreatment]) -> dict[str, RecycleTreatment]:
        unknown = sorted(set(value) - set(RECYCLE_REASONS))
        if unknown:
            raise ValueError(f"unknown recycle reason(s) {unknown}; known: {list(RECYCLE_REASONS)}")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Rules:
        ids = [rule.id for rule in self.fit] + [rule.id for rule in self.engagement]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids must be unique; repeated: {duplicates}")
        learning = [rule.id for rule in self.fit if rule.learned_from_sales]
        if len(learning) > 1:
            raise ValueError(f"one fit rule at most may learn from sales; these do: {learning}")
        return self

    @cached_property
    def hand_raise_names(self) -> frozenset[str]:
        return frozenset(name.lower() for name in self.hand_raise_events)

    @cached_property
    def engagement_by_kind(self) -> dict[str, tuple[EngagementRule, ...]]:
        grouped: dict[str, list[EngagementRule]] = {}
        for rule in self.engagement:
            grouped.setdefault(rule.kind, []).append(rule)
        return {kind: tuple(rules) for kind, rules in grouped.items()}

    @cached_property
    def notable_names(self) -> frozenset[str]:
        """The names (lowercased) of the track events an engagement rule names: a key moment each."""
        return frozenset(rule.name.lower() for rule in self.engagement_by_kind.get("track", ()) if rule.name)

    @cached_property
    def engagement_by_id(self) -> dict[str, EngagementRule]:
        return {rule.id: rule for rule in self.engagement}

    @cached_property
    def fit_unknown_ids(self) -> frozenset[str]:
        """The fit rules scoring an unanswered question (`missing: true`): not something known of a lead."""
        return frozenset(rule.id for rule in self.fit if rule.missing)

    @cached_property
    def topic_names(self) -> dict[str, str]:
        """Topics by their name as an event may spell it: "Case Studies", "case-studies" -> case_studies."""
        return {topic_key(rule.topic): rule.topic for rule in self.topics}

    @cached_property
    def fit_cache(self) -> dict[Any, Any]:
        """Fit lines by trait values, for this document only (scoring.fit_lines fills it)."""
        return {}

    @cached_property
    def fit_reads(self) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
        """What the fit rules read (traits and fallbacks), each name once: whether the email, the person's
        trait names, the account trait names (`account.<name>` without the prefix). scoring keys fit on it."""
        names = dict.fromkeys(name for rule in self.fit for name in (rule.trait, rule.fallback) if name)
        account = tuple(n[len(ACCOUNT_TRAIT_PREFIX) :] for n in names if n.startswith(ACCOUNT_TRAIT_PREFIX))
        person = tuple(n for n in names if n != "email" and not n.startswith(ACCOUNT_TRAIT_PREFIX))
        return "email" in names, person, account

    @cached_property
    def line_cache(self) -> dict[Any, Any]:
        """Engagement score lines by (rule id, points), for this document only (scoring.score fills it)."""
        return {}

    @cached_property
    def engagement_line_cache(self) -> dict[Any, Any]:
        """Engagement score lines (or None) by (rule id, day, the rule's day buckets), for this document
        only (scoring.score fills it)."""
        return {}

    @cached_property
    def engagement_cache(self) -> dict[Any, Any]:
        """Engagement rules matched by (kind, location, event name), for this document (apply fills it)."""
        return {}

    @cached_property
    def page_cache(self) -> dict[Any, Any]:
        """A page's engagement hits and topics by (kind, location, url, category, event name), for this
        document only (apply fills it)."""
        return {}

    @cached_property
    def topic_cache(self) -> dict[Any, Any]:
        """Topics by (kind, location, url, event name), for this document only (profiling fills it)."""
        return {}

    @cached_property
    def caps(self) -> dict[str, float | None]:
        return {rule.id: rule.cap for rule in self.engagement}


def topic_key(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split())


def parse_rules(data: Mapping[str, Any]) -> Rules:
    """Validate a rules document; raise RulesError naming every bad field."""
    if not isinstance(data, Mapping):
        raise RulesError([{"field": "(document)", "message": "the rules document must be a mapping"}])
    try:
        rules = Rules.model_validate(dict(data))
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in issue["loc"]) or "(document)", "message": issue["msg"]}
            for issue in error.errors()
        ]
        raise RulesError(problems) from None
    problems = _references(rules)
    if problems:
        raise RulesError(problems)
    return rules


def _references(rules: Rules) -> list[dict[str, str]]:
    """Fields that name another part of the document by id, each checked against it."""
    problems: list[dict[str, str]] = []
    intent = rules.routing.intent
    for index, confirmer in enumerate(intent.confirmers if intent else ()):
        for position, rule_id in enumerate(confirmer.rules):
            rule = rules.engagement_by_id.get(rule_id)
            if rule is None or not rule.points:
                problems.append(
                    {
                        "field": f"routing.intent.confirmers.{index}.rules.{position}",
                        "message": f"{rule_id!r} is not an engagement rule that earns points; "
                        f"engagement rules: {sorted(rules.engagement_by_id)}",
                    }
                )
    return problems
