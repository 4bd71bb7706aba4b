"""What Leadloop infers about a prospect: topics an event shows interest in, persona, buying stage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules, topic_key
from chalicelib.domain.scoring import Scores, interest_weights

AWARENESS, CONSIDERATION, DECISION, REENGAGEMENT = "awareness", "consideration", "decision", "reengagement"


def event_location(event: Event) -> str:
    """The path or URL an event points at: a page's path/URL or a clicked link."""
    props = event.properties
    return str(props.get("path") or props.get("url") or "")


# What a tracked event (a download, a webinar) may say about what it is about, as real sources spell it:
# a declared topic or category, the asset's name or title, the asset's URL.
DECLARED_FIELDS = ("topic", "category")
NAME_FIELDS = ("name", "title", "asset", "asset_name", "content_name", "file_name")
URL_FIELDS = ("asset_url", "file_url", "href", "url", "path")


def topics_of(event: Event, rules: Rules, location: str | None = None) -> list[tuple[str, float]]:
    """Topics (with weights) an event shows interest in; links may declare theirs explicitly. A weight is
    the topic rule's weight times what the signal is worth (`interest.signals`: a page seen, a link
    clicked in our email, a tracked event such as a download). `location`: the event's
    `event_location`, when the caller has it already."""
    signals = rules.interest.signals
    kind = event.kind
    props = event.properties
    if kind is EventKind.TRACK:
        signal = signals.event
        words = _texts(props, DECLARED_FIELDS + NAME_FIELDS)
        locations = _texts(props, URL_FIELDS)
        key: tuple[str, ...] = ("t", event.name.lower(), *words, "\n", *locations)
    else:
        signal = signals.click if kind is EventKind.EMAIL else signals.page
        category = props.get("category")
        words = (category,) if isinstance(category, str) and category else ()
        if location is None:
            location = event_location(event)
        url = str(props.get("url") or "")
        locations = (location, url) if url and url != location else (location,) if location else ()
        key = ("p", *words, "\n", *locations)
    found: dict[str, float] = {}
    declared = props.get("topics")
    if isinstance(declared, list | tuple):
        for topic in declared:
            if isinstance(topic, str) and topic:
                found[topic] = found.get(topic, 0.0) + signal
    for topic, weight in _rule_topics(rules, key, words, locations, event.name.lower()):
        found[topic] = found.get(topic, 0.0) + weight * signal
    return list(found.items())


def _texts(props: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value for name in fields if isinstance(value := props.get(name), str) and value)


def _rule_topics(
    rules: Rules, key: tuple[str, ...], words: tuple[str, ...], locations: tuple[str, ...], name: str
) -> tuple[tuple[str, float], ...]:
    """The rules' topics for what an event says it is about and where it points; sites repeat a few hundred
    paths and assets: remembered."""
    cache = rules.topic_cache
    hits = cache.get(key)
    if hits is not None:
        return hits
    vocabulary = rules.topic_names
    named = {vocabulary[topic_key(word)] for word in words if topic_key(word) in vocabulary}
    is_track = key[0] == "t"
    found = []
    for rule in rules.topics:
        hit = rule.topic in named
        url, content = rule.url_pattern, rule.content_pattern
        if not hit and url is not None:
            hit = any(url.search(location) for location in locations)
        if not hit and content is not None:
            # A track event's URL names its asset ("/assets/soc-2-checklist.pdf"): read it as words too.
            hit = any(content.search(text) for text in words) or (
                is_track and any(content.search(location) for location in locations)
            )
        if not hit and is_track and rule.events:
            hit = any(name == wanted.lower() for wanted in rule.events)
        if hit:
            found.append((rule.topic, rule.weight))
    if len(cache) >= TOPIC_CACHE_SIZE:
        cache.clear()
    hits = cache[key] = tuple(found)
    return hits


TOPIC_CACHE_SIZE = 8192


def persona_of(prospect: Prospect, rules: Rules) -> str:
    title = str(prospect.traits.get("title") or "")
    if title:
        for rule in rules.personas:
            if rule.title_pattern.search(title):
                return rule.persona
    return rules.default_persona


def buying_stage(
    prospect: Prospect,
    scores: Scores,
    rules: Rules,
    now: datetime,
    interests: Mapping[str, float] | None = None,
) -> str:
    """The prospect's buying stage now. `interests`: `interest_weights(prospect, rules, now)` when the
    caller has them already (the chooser does), so they are not computed twice per choice."""
    recycle = prospect.current_recycle
    if recycle is not None:
        treatment = rules.recycle.get(recycle.reason)
        if treatment and treatment.prefer_stage:
            return treatment.prefer_stage
    stages = rules.stages
    if scores.engagement >= stages.decision_engagement:
        return DECISION
    weights = interest_weights(prospect, rules, now) if interests is None else interests
    if any(weights.get(topic, 0.0) >= 1.0 for topic in stages.decision_topics):
        return DECISION
    if scores.engagement >= stages.consideration_engagement:
        return CONSIDERATION
    return AWARENESS
