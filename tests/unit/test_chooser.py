"""The nurture chooser: relevance before filling a slot, waiting (with the reason) when nothing relevant is
eligible, hard requirements, no repeats, and learning from outcomes by Thompson sampling (domain.bandit)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.apply import apply_event
from chalicelib.domain.bandit import Evidence, context_of
from chalicelib.domain.catalogue import Stage, TemplateMeta, meta_from_front_matter
from chalicelib.domain.decisions import EmailOutcome
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.messaging import Choice, NoChoice, choose_next_message, claim_touch, mark_sent
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, RulesError, parse_rules
from chalicelib.effects.outbox import LearnFromOutcomes, plan
from chalicelib.errors import InvalidContent
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOPICS = ("pricing", "roi", "integrations", "security", "reporting", "case_studies", "onboarding")


def rules_with(**nurture: object) -> Rules:
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["nurture"] = {**document.get("nurture", {}), **nurture}
    return parse_rules(document)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return rules_with()


def meta(name: str, *topics: str, **kw: object) -> TemplateMeta:
    fields: dict[str, object] = {"stages": (), "personas": (), **kw}
    return TemplateMeta(name=name, subject="s", topics=topics, **fields)  # type: ignore[arg-type]


def event(n: int, kind: EventKind, name: str = "", **properties: object) -> Event:
    return Event(
        message_id=f"m{n}",
        kind=kind,
        at=NOW - timedelta(hours=100 - n),
        source="test",
        anonymous_id="a1",
        email="ada@bigco.example",
        name=name,
        properties=dict(properties),
    )


def prospect(rules: Rules, *paths: str) -> Prospect:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=5))
    apply_event(p, event(1, EventKind.IDENTIFY), rules)
    for n, path in enumerate(paths, start=2):
        apply_event(p, event(n, EventKind.PAGE, path, path=path), rules)
    reassess(p, rules, NOW)
    return p


def send(p: Prospect, choice: Choice, at: datetime) -> None:
    claim = claim_touch(p, f"L1-{len(p.messages) + 1}", choice.template, choice.why, at, choice.context)
    mark_sent(claim, 1, at)


def test_a_template_on_the_prospects_interest_beats_a_higher_priority_one_off_topic(rules: Rules) -> None:
    p = prospect(rules, "/security", "/security/soc2")
    catalogue = [meta("tour", "onboarding", priority=100), meta("trust", "security", priority=-20)]
    choice = choose_next_message(p, catalogue, rules, NOW)
    assert isinstance(choice, Choice) and choice.template.name == "trust"
    assert "interest security" in choice.why and choice.context == "security/awareness"


def test_stage_and_persona_are_preferences_not_gates(rules: Rules) -> None:
    p = prospect(rules, "/integrations")  # a practitioner at the awareness stage
    only = meta("api", "integrations", stages=(Stage.DECISION,), personas=("technical",))
    choice = choose_next_message(p, [only], rules, NOW)
    assert isinstance(choice, Choice) and choice.template.name == "api"
    assert "meant for decision" in choice.why


def test_a_hard_requirement_in_the_front_matter_is_a_gate(rules: Rules) -> None:
    p = prospect(rules, "/integrations")
    data = {"subject": "s", "topics": ["integrations"], "requires": {"stage": ["decision"]}}
    gated = meta_from_front_matter("api", data)
    assert gated.requires_stages == (Stage.DECISION,)
    refused = choose_next_message(p, [gated], rules, NOW)
    assert isinstance(refused, NoChoice)
    assert refused.why == "api requires stage decision; the prospect is at awareness"
    with pytest.raises(InvalidContent, match="requires"):
        meta_from_front_matter("api", {**data, "requires": {"stag": ["decision"]}})


def test_nothing_relevant_eligible_waits_and_says_why_instead_of_sending_filler(rules: Rules) -> None:
    p = prospect(rules, "/pricing", "/pricing")
    catalogue = [meta("tour", "onboarding"), meta("api", "integrations")]
    waiting = choose_next_message(p, catalogue, rules, NOW)
    assert isinstance(waiting, NoChoice)
    assert "waiting for a relevant template" in waiting.why and "pricing" in waiting.why

    filler = choose_next_message(p, catalogue, rules_with(wait_for_relevant=False), NOW)
    assert isinstance(filler, Choice) and "general fit" in filler.why


def test_an_interest_well_behind_the_strongest_is_not_answered_unless_the_rules_say_so(rules: Rules) -> None:
    """Three reporting pages and two pricing glances: pricing is 2/3 of the strongest interest, below the
    default relevant_share (0.8), so the pricing template waits for clearer interest; a marketer who lowers
    the share fills the slot with it."""
    p = prospect(
        rules, "/features/reporting", "/features/reporting", "/features/reporting", "/pricing", "/plans"
    )
    catalogue = [meta("pricing-guide", "pricing")]
    waiting = choose_next_message(p, catalogue + [meta("tour", "onboarding")], rules, NOW)
    assert isinstance(waiting, NoChoice)
    assert "none eligible on reporting" in waiting.why and "pricing" not in waiting.why

    lowered = choose_next_message(p, catalogue, rules_with(relevant_share=0.5), NOW)
    assert isinstance(lowered, Choice) and lowered.template.name == "pricing-guide"
    assert "interest pricing" in lowered.why


def test_a_relevant_share_outside_0_to_1_is_refused() -> None:
    with pytest.raises(RulesError, match="nurture.relevant_share"):
        rules_with(relevant_share=1.5)


def test_asked_about_one_template_the_refusal_names_that_templates_own_reason(rules: Rules) -> None:
    # The nurture view asks template by template why it is not next: the answer must be that template's.
    p = prospect(rules, "/pricing", "/pricing")
    off_topic = choose_next_message(p, [meta("api", "integrations")], rules, NOW)
    assert isinstance(off_topic, NoChoice)
    assert off_topic.why == "api is about integrations, not the prospect's interests (pricing)"
    plans = meta("plans", "pricing")
    send(p, choose_next_message(p, [plans], rules, NOW), NOW - timedelta(days=10))  # type: ignore[arg-type]
    sent = choose_next_message(p, [plans], rules, NOW)
    assert isinstance(sent, NoChoice)
    day = f"{NOW - timedelta(days=10):%Y-%m-%d}"
    assert sent.why == f"plans was sent on {day} (the rules send a template once)"


def test_a_prospect_with_no_interest_yet_gets_the_best_general_fit(rules: Rules) -> None:
    p = prospect(rules)
    choice = choose_next_message(p, [meta("tour", "onboarding", stages=(Stage.AWARENESS,))], rules, NOW)
    assert isinstance(choice, Choice) and choice.context == "general/awareness"


def test_a_template_is_never_repeated_unless_the_rules_allow_it(rules: Rules) -> None:
    p = prospect(rules, "/security")
    catalogue = [meta("trust", "security", cooldown_days=10)]
    first = choose_next_message(p, catalogue, rules, NOW)
    assert isinstance(first, Choice)
    send(p, first, NOW)
    later = NOW + timedelta(days=60)
    assert isinstance(choose_next_message(p, catalogue, rules, later), NoChoice)
    again = choose_next_message(p, catalogue, rules_with(allow_repeats=True), later)
    assert isinstance(again, Choice) and again.template.name == "trust"


def test_the_why_says_best_so_far_with_the_record_or_exploring(rules: Rules) -> None:
    p = prospect(rules, "/pricing", "/pricing")
    stage = "decision"  # read the pricing page: the decision stage by the default rules
    catalogue = [meta("a-pricing", "pricing"), meta("b-pricing", "pricing")]
    context = context_of("pricing", stage)
    proven = {
        ("a-pricing", context): Evidence(sent=230, clicked=14),
        ("b-pricing", context): Evidence(sent=200),
    }
    choice = choose_next_message(p, catalogue, rules, NOW, evidence=proven, seed="s1")
    assert isinstance(choice, Choice) and choice.template.name == "a-pricing"
    assert choice.why.startswith("a-pricing: best so far (clicked 14 of 230 in pricing/decision)")

    fresh = choose_next_message(p, catalogue, rules, NOW)  # no evidence: both plausible, so both drawn
    whys = set()
    for n in range(40):
        pick = choose_next_message(p, catalogue, rules, NOW, seed=f"s{n}")
        assert isinstance(pick, Choice)
        whys.add(pick.why.split(" (")[0].split(": ")[1])
    assert whys == {"best so far", "exploring"}
    assert fresh == choose_next_message(p, list(reversed(catalogue)), rules, NOW)  # deterministic


def test_evidence_moves_the_choice_away_from_the_marketers_priority(rules: Rules) -> None:
    p = prospect(rules, "/pricing", "/pricing")
    catalogue = [meta("favourite", "pricing", priority=20), meta("sleeper", "pricing")]
    context = context_of("pricing", "decision")
    learnt = {
        ("favourite", context): Evidence(sent=400, clicked=2),
        ("sleeper", context): Evidence(sent=400, clicked=40),
    }
    picks = [choose_next_message(p, catalogue, rules, NOW, evidence=learnt, seed=f"s{n}") for n in range(30)]
    assert all(isinstance(c, Choice) and c.template.name == "sleeper" for c in picks)


def test_outcomes_teach_once_per_send_and_machine_opens_never(rules: Rules) -> None:
    p = prospect(rules, "/security")
    choice = choose_next_message(p, [meta("trust", "security")], rules, NOW)
    assert isinstance(choice, Choice)
    send(p, choice, NOW - timedelta(hours=1))
    send_id = p.messages[-1].send_id

    def outcome(n: int, name: str, **props: object) -> list[EmailOutcome]:
        effects = apply_event(
            p, replace(event(n, EventKind.EMAIL, name, send_id=send_id, **props), at=NOW), rules
        )
        return [x for x in effects or [] if isinstance(x, EmailOutcome)]

    assert outcome(201, "opened", machine_open=True)[0].learn_in is None
    assert outcome(202, "opened")[0].learn_in == "security/awareness"
    assert outcome(203, "opened")[0].learn_in is None  # the second human open teaches nothing new
    assert outcome(204, "clicked")[0].learn_in == "security/awareness"
    assert outcome(205, "clicked")[0].learn_in is None
    assert prospect_from_doc(prospect_to_doc(p)).messages == p.messages  # context and marks are stored


def test_a_hand_raise_soon_after_a_send_counts_as_its_response(rules: Rules) -> None:
    p = prospect(rules, "/security")
    choice = choose_next_message(p, [meta("trust", "security")], rules, NOW)
    assert isinstance(choice, Choice)
    send(p, choice, NOW - timedelta(days=2))
    raised = Event(
        message_id="hr", kind=EventKind.TRACK, at=NOW, source="test", anonymous_id="a1", name="Demo Requested"
    )
    effects = apply_event(p, raised, rules) or []
    learnt = [e for e in effects if isinstance(e, EmailOutcome)]
    assert learnt == [EmailOutcome("trust", "hand_raise", "security/awareness")]
    [counted] = [e for e in plan(p, learnt, NOW) if isinstance(e, LearnFromOutcomes)]
    assert counted.increments == {"trust|security/awareness|clicked": 1.0}


def test_a_send_and_its_outcomes_become_learning_counters(rules: Rules) -> None:
    effects = [
        EmailOutcome("trust", "sent", "security/decision"),
        EmailOutcome("trust", "opened", None),  # a machine open, or a second one: scoreboard only
    ]
    planned = plan(Prospect(lead_id="L1", created_at=NOW), effects, NOW)
    [counted] = [e for e in planned if isinstance(e, LearnFromOutcomes)]
    assert counted.increments == {"trust|security/decision|sent": 1.0}


CATALOGUE = [
    meta(f"t{n}-{topic}", topic, *extra, priority=priority, cooldown_days=cooldown, **gates)
    for n, (topic, extra, priority, cooldown, gates) in enumerate(
        [
            ("pricing", ("roi",), 20, 30, {}),
            ("pricing", (), 0, 45, {"requires_stages": (Stage.DECISION,)}),
            ("security", (), 10, 60, {"requires_personas": ("technical",)}),
            ("integrations", (), 5, 30, {}),
            ("reporting", ("roi",), 0, 30, {"stages": (Stage.AWARENESS,)}),
            ("case_studies", (), -10, 60, {}),
            ("onboarding", (), 15, 90, {}),
        ]
    )
]


@settings(max_examples=60, deadline=None)
@given(
    visits=st.lists(st.sampled_from(TOPICS), max_size=8),
    allow_repeats=st.booleans(),
    clicks=st.lists(st.integers(min_value=0, max_value=50), min_size=len(CATALOGUE), max_size=len(CATALOGUE)),
    touches=st.integers(min_value=1, max_value=12),
)
def test_the_chooser_never_sends_an_ineligible_or_repeated_template(
    visits: list[str], allow_repeats: bool, clicks: list[int], touches: int
) -> None:
    rules = rules_with(allow_repeats=allow_repeats)
    paths = {"pricing": "/pricing", "roi": "/roi", "integrations": "/integrations", "security": "/security"}
    paths |= {"reporting": "/dashboards", "case_studies": "/customers", "onboarding": "/tour"}
    p = prospect(rules, *(paths[topic] for topic in visits))
    at = NOW
    for _ in range(touches):
        evidence = {}
        for template, clicked in zip(CATALOGUE, clicks, strict=True):
            for topic in (*TOPICS, None):
                for stage in Stage:
                    evidence[(template.name, context_of(topic, stage))] = Evidence(sent=50, clicked=clicked)
        choice = choose_next_message(p, CATALOGUE, rules, at, evidence=evidence, seed=f"{at}")
        if isinstance(choice, Choice):
            template = choice.template
            earlier = [m.at for m in p.messages if m.template == template.name]
            if earlier:
                assert allow_repeats and at - max(earlier) >= timedelta(days=template.cooldown_days)
            stage, persona = choice.context.split("/")[1], "practitioner"
            assert not template.requires_stages or stage in template.requires_stages
            assert not template.requires_personas or persona in template.requires_personas
            send(p, choice, at)
        at += timedelta(days=rules.cadence.min_days_between + 5)
