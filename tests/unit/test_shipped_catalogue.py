"""The shipped template catalogue against the default rules: deep enough that the nurture chooser, which
sends only what is relevant and never repeats, has something on each interest to send next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from chalicelib.adapters.templates import (
    ParsedTemplate,
    ProspectFields,
    RenderContext,
    SenderFields,
    load_shipped_templates,
    render,
)
from chalicelib.domain.apply import apply_event
from chalicelib.domain.catalogue import Stage, TemplateMeta
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.messaging import Choice, choose_next_message, claim_touch, mark_sent
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SENDER = SenderFields(name="Maya Ortiz", company="Acme Analytics", address="1 Market St, Springfield")
READER = ProspectFields(email="ada@bigco.example", first_name="Ada", company="BigCo", title="Analyst")
# A buyer reads a few emails over a quarter; what the chooser needs per topic to keep answering an interest
# without repeating itself, and per topic and stage to fit where the buyer is.
PER_TOPIC = 4
FIRST_STAGES = frozenset({Stage.AWARENESS, Stage.CONSIDERATION, Stage.DECISION})


@pytest.fixture(scope="module")
def shipped() -> dict[str, ParsedTemplate]:
    return load_shipped_templates()


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


def links_of(parsed: ParsedTemplate) -> list[tuple[str, tuple[str, ...]]]:
    calls: list[tuple[str, tuple[str, ...]]] = []

    def recording(url: str, topics: tuple[str, ...]) -> str:
        calls.append((url, tuple(topics)))
        return f"https://t.leadloop.example/r?to={url}"

    context = RenderContext(
        prospect=READER, sender=SENDER, unsubscribe_url="https://u.example/x", link_builder=recording
    )
    render(parsed, context)
    return calls


def clicked_in(template: TemplateMeta, url: str, topics: tuple[str, ...], rules: Rules) -> Prospect:
    """A new reader who was sent `template` and clicked its link to `url` (and nothing else)."""
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=10))
    base = {"source": "test", "email": "ada@bigco.example"}
    apply_event(
        p, Event(message_id="m1", kind=EventKind.IDENTIFY, at=NOW - timedelta(days=10), **base), rules
    )
    sent_at = NOW - timedelta(days=4)
    claim = claim_touch(p, "L1-1", template, "first touch", sent_at, "general/awareness")
    mark_sent(claim, 0, sent_at)
    click = Event(
        message_id="m2",
        kind=EventKind.EMAIL,
        at=sent_at + timedelta(hours=2),
        name="clicked",
        properties={"url": url, "topics": list(topics), "send_id": "L1-1", "template": template.name},
        **base,
    )
    apply_event(p, click, rules)
    reassess(p, rules, NOW)
    return p


def test_a_click_on_any_shipped_link_is_followed_by_more_on_that_interest(
    shipped: dict[str, ParsedTemplate], rules: Rules
) -> None:
    catalogue = [parsed.meta for parsed in shipped.values()]
    stalled = []
    for name, parsed in sorted(shipped.items()):
        for url, topics in dict.fromkeys(links_of(parsed)):  # each link is in both blocks
            p = clicked_in(parsed.meta, url, topics, rules)
            choice = choose_next_message(p, catalogue, rules, NOW, seed="s")
            if not isinstance(choice, Choice) or set(choice.template.topics).isdisjoint(topics):
                stalled.append(f"{name} -> {url} {list(topics)}: {choice.why}")
    assert not stalled, "\n".join(stalled)


def test_every_topic_the_rules_infer_has_templates_at_several_stages(
    shipped: dict[str, ParsedTemplate], rules: Rules
) -> None:
    metas = [parsed.meta for parsed in shipped.values()]
    thin = []
    for topic in sorted(rule.topic for rule in rules.topics):
        on_topic = [m for m in metas if topic in m.topics]
        stages = {stage for m in on_topic for stage in (m.stages or tuple(Stage))}
        # Interest in a decision topic (pricing) makes its reader a decision-stage buyer, until it fades.
        wanted = FIRST_STAGES - {Stage.AWARENESS} if topic in rules.stages.decision_topics else FIRST_STAGES
        if len(on_topic) < PER_TOPIC or not wanted <= stages:
            thin.append(f"{topic}: {len(on_topic)} templates, stages {sorted(stages)}")
    assert not thin, "\n".join(thin)


def test_each_persona_has_templates_on_every_topic(shipped: dict[str, ParsedTemplate], rules: Rules) -> None:
    metas = [parsed.meta for parsed in shipped.values()]
    missing = [
        f"{topic} for {persona}"
        for topic in sorted(rule.topic for rule in rules.topics)
        for persona in ("executive", "practitioner", "technical")
        if not any(topic in m.topics and (not m.personas or persona in m.personas) for m in metas)
    ]
    assert not missing, "\n".join(missing)
