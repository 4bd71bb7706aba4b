"""What Leadloop infers about a prospect: topics an event shows interest in, persona, buying stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def topics_of(event: Event, rules: Rules, location: str | None = None) -> Sequence[tuple[str, float]]:
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
        key: tuple[Any, ...] = ("t", signal, event.name.lower(), *words, "\n", *locations)
    else:
        signal = signals.click if kind is EventKind.EMAIL else signals.page
        category = props.get("category")
        words = (category,) if isinstance(category, str) and category else ()
        if location is None:
            location = event_location(event)
        url = str(props.get("url") or "")
        locations = (location, url) if url and url != location else (location,) if location else ()
        key = ("p", signal, *words, "\n", *locations)
    hits = rules.topic_cache.get(key)
    if hits is None:
        hits = _rule_topics(rules, key, words, locations, event.name.lower(), signal)
    declared = props.get("topics")
    if not isinstance(declared, list | tuple):
        return hits[0]  # the usual event: no topics of its own, so the answer is the rules' alone
    found: dict[str, float] = {}
    for topic in declared:
        if isinstance(topic, str) and topic:
            found[topic] = found.get(topic, 0.0) + signal
    for topic, weighted in hits[1]:
        found[topic] = found.get(topic, 0.0) + weighted
    return list(found.items())


def _texts(props: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value for name in fields if isinstance(value := props.get(name), str) and value)


TopicHits = tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]


def _rule_topics(
    rules: Rules,
    key: tuple[Any, ...],
    words: tuple[str, ...],
    locations: tuple[str, ...],
    name: str,
    signal: float,
) -> TopicHits:
    """The rules' topics for what an event says it is about and where it points, each rule's weight times
    the signal (`key` holds all of these); sites repeat a few hundred paths and assets: remembered. Both the
    answer (a topic two rules name summed, as topics_of sums) and each rule's weighted hit in order (for an
    event that declares topics of its own, added after them as before)."""
    vocabulary = rules.topic_names
    named = {vocabulary[topic_key(word)] for word in words if topic_key(word) in vocabulary}
    is_track = key[0] == "t"
    weighted = []
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
            weighted.append((rule.topic, rule.weight * signal))
    summed: dict[str, float] = {}
    for topic, points in weighted:
        summed[topic] = summed.get(topic, 0.0) + points
    cache = rules.topic_cache
    if len(cache) >= TOPIC_CACHE_SIZE:
        cache.clear()
    hits: TopicHits = (tuple(summed.items()), tuple(weighted))
    cache[key] = hits
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
    for topic in stages.decision_topics:  # a loop, not any(generator): asked on every choice
        if weights.get(topic, 0.0) >= 1.0:
            return DECISION
    if scores.engagement >= stages.consideration_engagement:
        return CONSIDERATION
    return AWARENESS
