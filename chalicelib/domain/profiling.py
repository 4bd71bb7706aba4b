"""What Leadloop infers about a prospect: topics an event shows interest in, persona, buying stage."""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, interest_weights

AWARENESS, CONSIDERATION, DECISION, REENGAGEMENT = "awareness", "consideration", "decision", "reengagement"


def event_location(event: Event) -> str:
    """The path or URL an event points at: a page's path/URL or a clicked link."""
    props = event.properties
    return str(props.get("path") or props.get("url") or "")


def topics_of(event: Event, rules: Rules) -> list[tuple[str, float]]:
    """Topics (with weights) an event shows interest in; links may declare theirs explicitly."""
    found: dict[str, float] = {}
    declared = event.properties.get("topics")
    if isinstance(declared, list | tuple):
        for topic in declared:
            if isinstance(topic, str) and topic:
                found[topic] = found.get(topic, 0.0) + 1.0
    location = event_location(event)
    url = str(event.properties.get("url") or "")
    for topic, weight in _rule_topics(
        rules, event.kind is EventKind.TRACK, location, url, event.name.lower()
    ):
        found[topic] = found.get(topic, 0.0) + weight
    return list(found.items())


def _rule_topics(
    rules: Rules, is_track: bool, location: str, url: str, name: str
) -> tuple[tuple[str, float], ...]:
    """The rules' topics for one location and event name; sites repeat a few hundred paths: remembered."""
    cache = rules.topic_cache
    key = (is_track, location, url, name)
    if key in cache:
        return cache[key]
    hits = []
    for rule in rules.topics:
        pattern = rule.url_pattern
        hit = pattern is not None and bool(pattern.search(location) or (url and pattern.search(url)))
        if not hit and is_track:
            hit = any(name == wanted.lower() for wanted in rule.events)
        if hit:
            hits.append((rule.topic, rule.weight))
    if len(cache) >= TOPIC_CACHE_SIZE:
        cache.clear()
    cache[key] = tuple(hits)
    return cache[key]


TOPIC_CACHE_SIZE = 8192


def persona_of(prospect: Prospect, rules: Rules) -> str:
    title = str(prospect.traits.get("title") or "")
    if title:
        for rule in rules.personas:
            if rule.title_pattern.search(title):
                return rule.persona
    return rules.default_persona


def buying_stage(prospect: Prospect, scores: Scores, rules: Rules, now: datetime) -> str:
    recycle = prospect.current_recycle
    if recycle is not None:
        treatment = rules.recycle.get(recycle.reason)
        if treatment and treatment.prefer_stage:
            return treatment.prefer_stage
    stages = rules.stages
    if scores.engagement >= stages.decision_engagement:
        return DECISION
    weights = interest_weights(prospect, rules, now)
    if any(weights.get(topic, 0.0) >= 1.0 for topic in stages.decision_topics):
        return DECISION
    if scores.engagement >= stages.consideration_engagement:
        return CONSIDERATION
    return AWARENESS
