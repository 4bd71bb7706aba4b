"""The domain core's caches change no decision: fit remembered per rules document follows every trait and
account change, decay read from a table equals the half-life formula, over the benchmark's stream (with
group calls mixed in) every score the warm core computes equals a cold recompute and the formula, and every
next-message choice (Thompson's draw and the why included) equals one made without the remembered ones;
the replay's unscored reassessments (`settle`) leave every profile as `reassess` does."""

from __future__ import annotations

import copy
import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import yaml

from bench.domain import shipped_metas
from bench.stream import Shape, generate
from chalicelib.domain.apply import apply_event
from chalicelib.domain.bandit import Evidence
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.messaging import _CHOSEN, Choice, NoChoice, choose_next_message, claim_touch, mark_sent
from chalicelib.domain.profiling import topics_of
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_to_doc
from chalicelib.domain.reassess import reassess, settle
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.domain.scoring import (
    _INTEREST_WEIGHTS,
    _SCORED,
    BUCKET_HORIZON_DAYS,
    Scores,
    _decay_table,
    day_of,
    interest_weights,
    prune_buckets,
    score,
)
from chalicelib.lab.layout import ArchivedEvent
from chalicelib.lab.replay import _fold, histories
from chalicelib.wiring import DEFAULT_RULES, load_default_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def rules() -> Rules:
    return load_default_rules()


def _event(n: int, kind: EventKind, **fields: Any) -> Event:
    return Event(
        message_id=f"seg:jo:{n}",
        kind=kind,
        at=NOW + timedelta(minutes=n),
        source="website",
        anonymous_id="anon-jo",
        **fields,
    )


def _fit_ids(p: Prospect, rules: Rules, n: int) -> set[str]:
    """The fit lines of what is known (the unanswered questions' lines left out: test_fit_unknown's)."""
    lines = score(p, rules, NOW + timedelta(minutes=n)).breakdown
    return {line.rule for line in lines if line.kind == "fit" and line.rule not in rules.fit_unknown_ids}


def test_fit_follows_every_trait_and_account_change_once_remembered(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    other = Prospect(lead_id="L2", created_at=NOW)
    steps: list[tuple[Event, set[str]]] = [
        (_event(1, EventKind.IDENTIFY, email="jo@contoso.example", traits={"title": "Intern"}),
         {"title_not_a_buyer"}),
        (_event(2, EventKind.IDENTIFY, traits={"title": "VP Marketing"}), {"title_executive"}),
        (_event(3, EventKind.GROUP, traits={"employees": 300, "name": "Contoso"},
                properties={"group_id": "acct-1"}),
         {"title_executive", "company_size_target", "has_company"}),
        # The account grows past the target range: the snapshot changes, so does fit.
        (_event(4, EventKind.GROUP, traits={"employees": 8000}, properties={"group_id": "acct-1"}),
         {"title_executive", "company_size_enterprise", "has_company"}),
        # The person's own company size wins over the account's (fallback only when missing).
        (_event(5, EventKind.IDENTIFY, traits={"company_size": 20}), {"title_executive", "has_company"}),
    ]  # fmt: skip
    for n, (event, expected) in enumerate(steps, start=1):
        apply_event(p, event, rules)
        # Another prospect scored in between with the same rules must not leak its remembered fit.
        assert _fit_ids(other, rules, n) == set()
        assert _fit_ids(p, rules, n) == expected, event


def test_a_profiles_remembered_fit_follows_every_input_changed_in_place(rules: Rules) -> None:
    """The profile's own memo of its last fit (scoring.FitMemo) is checked by value: whatever writes a
    trait, the email or an account's snapshot in place (the CRM path, merges, bounds), the next score
    sees it; another rules document does not reuse it; a deep copy starts without it."""
    p = Prospect(lead_id="L1", created_at=NOW, email="jo@contoso.example", traits={"title": "Intern"})
    assert _fit_ids(p, rules, 1) == {"title_not_a_buyer"}
    assert p.fit_memo is not None  # remembered: the changes below are read through it
    p.traits["title"] = "VP Marketing"
    assert _fit_ids(p, rules, 2) == {"title_executive"}
    p.email = "jo@gmail.com"
    assert _fit_ids(p, rules, 3) == {"title_executive", "free_mailbox"}
    apply_event(p, _event(4, EventKind.GROUP, traits={"employees": 300}, properties={"group_id": "a"}), rules)
    assert _fit_ids(p, rules, 4) == {"title_executive", "free_mailbox", "company_size_target"}
    p.accounts[0].traits["employees"] = 9000  # a snapshot changed in place (bounds trims them so)
    assert _fit_ids(p, rules, 5) == {"title_executive", "free_mailbox", "company_size_enterprise"}
    p.accounts.clear()
    assert _fit_ids(p, rules, 6) == {"title_executive", "free_mailbox"}
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    data["fit"] = [rule for rule in data["fit"] if rule["id"] != "free_mailbox"]
    no_free_mail = parse_rules(data)
    assert _fit_ids(p, no_free_mail, 7) == {"title_executive"}
    assert copy.deepcopy(p).fit_memo is None  # not the rules' whole fit cache with it
    assert _fit_ids(p, rules, 8) == {"title_executive", "free_mailbox"}


def test_remembered_topics_are_per_signal_and_declared_topics_add_first(rules: Rules) -> None:
    """topics_of remembers each location's weighted topics: a page view (1) and a click in our email (2)
    on the same link weigh what their signal is worth, in either order, and an event that declares
    topics of its own has them first, the rules' added after (one dictionary, as without the memo)."""
    link = {"url": "https://example.com/pricing"}
    view = _event(1, EventKind.PAGE, properties=link)
    click = _event(2, EventKind.EMAIL, name="clicked", properties=link)
    assert list(topics_of(view, rules)) == [("pricing", 1.0)]
    assert list(topics_of(click, rules)) == [("pricing", 2.0)]
    assert list(topics_of(view, rules)) == [("pricing", 1.0)]
    declared = _event(3, EventKind.PAGE, properties={**link, "topics": ["security", "pricing"]})
    assert list(topics_of(declared, rules)) == [("security", 1.0), ("pricing", 2.0)]
    assert list(topics_of(view, rules)) == [("pricing", 1.0)]


def test_decay_table_equals_the_half_life_formula() -> None:
    for half_life in (14.0, 30.0, 7.5):
        table = _decay_table(half_life)
        assert all(table[age] == float(0.5 ** (age / half_life)) for age in range(len(table)))


def _formula_engagement(p: Prospect, rules: Rules, now: datetime) -> dict[str, float]:
    """The engagement lines by the definition (README: points halve every half-life, each rule capped)."""
    today, lines = day_of(now), {}
    for rule_id, buckets in p.engagement.items():
        if rule_id not in rules.caps:
            continue
        points = 0.0
        for day, earned in buckets.items():
            points += earned * float(0.5 ** (max(today - day, 0) / rules.engagement_half_life_days))
        cap = rules.caps[rule_id]
        if cap is not None:
            points = max(-cap, min(cap, points))
        if round(points, 1):
            lines[rule_id] = round(points, 1)
    return lines


def _cold(p: Prospect, rules: Rules, now: datetime) -> Scores:
    rules.fit_cache.clear()
    rules.line_cache.clear()
    rules.engagement_line_cache.clear()
    _decay_table.cache_clear()
    _SCORED.clear()
    _INTEREST_WEIGHTS.clear()
    return score(copy.deepcopy(p), rules, now)  # a deep copy: without the profile's own memos


def test_scores_over_the_bench_stream_equal_a_cold_recompute(rules: Rules) -> None:
    stream = generate(Shape(prospects=150, sessions=450))
    rng = random.Random(7)
    profiles: dict[int, Prospect] = {}
    checked = 0
    for position, (index, event) in enumerate(stream):
        p = profiles.get(index)
        if p is None:
            p = profiles[index] = Prospect(lead_id=f"L{index}", created_at=event.at, source=event.source)
        if apply_event(p, event, rules) is None:
            continue
        if rng.random() < 0.05:  # group calls, which the stream lacks: account traits feed fit
            size = rng.choice((None, 3, 300, 9000))
            group = Event(
                message_id=f"g{position}", kind=EventKind.GROUP, at=event.at, source="website",
                anonymous_id=event.anonymous_id,
                traits={"name": f"Co {index % 7}", "employees": size,
                        "industry": rng.choice(("saas", "mining"))},
                properties={"group_id": f"acct-{index % 7}"},
            )  # fmt: skip
            apply_event(p, group, rules)
        warm, _ = reassess(p, rules, event.at)
        later = event.at + timedelta(days=rng.choice((0, 3, 45, 500)))  # also past the table's horizon
        for now in (event.at, later):
            hot = score(p, rules, now)
            assert hot == _cold(p, rules, now)
            # The remembered order is the breakdown's order: strongest first, then by rule id.
            assert list(hot.breakdown) == sorted(
                hot.breakdown, key=lambda line: (-abs(line.points), line.rule)
            )
            assert {line.rule: line.points for line in hot.breakdown if line.kind == "engagement"} == (
                _formula_engagement(p, rules, now)
            )
        assert warm == score(p, rules, event.at)
        assert interest_weights(p, rules, later) == {
            topic: weight
            for topic, buckets in p.interests.items()
            if (
                weight := round(
                    sum(
                        min(points, rules.interest.daily_cap or points)
                        * float(0.5 ** (max(day_of(later) - day, 0) / rules.interest_half_life_days))
                        for day, points in buckets.items()
                    ),
                    2,
                )
            )
            > 0
        }
        checked += 1
    assert checked > 1000


def test_thompson_draws_read_the_same_normal_quantiles() -> None:
    from statistics import NormalDist

    from chalicelib.domain.bandit import _normal_quantile

    for k in (0, 1, 2, 255, 32767, 32768, 40000, 65534, 65535):
        assert _normal_quantile(k) == NormalDist().inv_cdf((k + 0.5) / 65536.0)


def test_pruning_forgets_only_what_is_past_the_horizon_whatever_the_quick_check_says() -> None:
    today = 800_000
    cutoff = today - BUCKET_HORIZON_DAYS
    groups = {
        "fresh": {today: 1.0, cutoff: 2.0},  # the horizon's first day is kept
        "mixed": {cutoff - 1: 3.0, today - 1: 4.0},
        "stale": {cutoff - 30: 5.0},
        "empty": {},
    }
    prune_buckets(groups, today)
    assert groups == {"fresh": {today: 1.0, cutoff: 2.0}, "mixed": {today - 1: 4.0}}
    kept = {"a": {today: 1.0}, "b": {cutoff: 2.0}}
    prune_buckets(kept, today)
    assert kept == {"a": {today: 1.0}, "b": {cutoff: 2.0}}
    nothing: dict[str, dict[int, float]] = {}
    prune_buckets(nothing, today)
    assert nothing == {}


def test_engagement_lines_are_remembered_by_what_the_buckets_hold_on_the_day(rules: Rules) -> None:
    """A rule's remembered line follows its buckets' contents (the same dict grown in place, a day added)
    and the day it is read, and a rule dropped from the rules counts for nothing."""
    rule_id = next(r for r, cap in rules.caps.items() if cap is None or cap >= 20)
    today = day_of(NOW)
    p = Prospect(lead_id="L1", created_at=NOW, source="website")
    p.engagement = {rule_id: {today: 1.0}}
    first = score(p, rules, NOW)
    p.engagement[rule_id][today] += 1.0  # the same bucket dict, more points the same day
    grown = score(p, rules, NOW)
    assert grown.engagement > first.engagement
    p.engagement[rule_id][today - 3] = 1.0
    older = score(p, rules, NOW)
    assert older.engagement > grown.engagement
    for when in (NOW, NOW + timedelta(days=20), NOW + timedelta(days=BUCKET_HORIZON_DAYS + 5)):
        warm = score(p, rules, when)
        assert warm == _cold(p, rules, when)
        assert warm == score(p, rules, when)  # now remembered: the same answer
    assert score(p, rules, NOW + timedelta(days=20)).engagement < older.engagement
    # Another prospect holding the same buckets gets the same line; a rule not in the rules counts nothing.
    other = Prospect(lead_id="L2", created_at=NOW, source="website")
    other.engagement = {rule_id: dict(p.engagement[rule_id]), "no_such_rule": {today: 50.0}}
    assert score(other, rules, NOW) == score(p, rules, NOW)


def test_a_pages_remembered_signals_follow_its_kind_location_url_category_and_name() -> None:
    """A page's engagement hits and topics are remembered per rules document (apply._page_signals) by
    everything they read: pages differing in one of kind, path, URL, category or event name, each after
    its sibling, earn what a cold rules document gives them; a page declaring topics goes the long way."""
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    data["engagement"] += [
        {"id": "named_page", "kind": "page", "name": "Pricing", "points": 3},
        {"id": "tour_screen", "kind": "screen", "path": "^/pricing", "points": 2},
    ]
    warm_rules = parse_rules(data)
    pages: list[tuple[EventKind, str, dict[str, Any]]] = [
        (EventKind.PAGE, "Pricing", {"path": "/pricing"}),
        (EventKind.PAGE, "Plans", {"path": "/pricing"}),  # the name
        (EventKind.SCREEN, "Plans", {"path": "/pricing"}),  # the kind
        (EventKind.PAGE, "Blog", {"path": "/blog", "url": "https://x.example/security"}),
        (EventKind.PAGE, "Blog", {"path": "/blog", "url": "https://x.example/blog"}),  # the URL
        (EventKind.PAGE, "Blog", {"path": "/blog", "category": "Case Studies"}),
        (EventKind.PAGE, "Blog", {"path": "/blog", "category": "Reporting"}),  # the category
        (EventKind.PAGE, "Blog", {"path": "/blog", "category": 7}),
        (EventKind.PAGE, "Blog", {"path": "/roi"}),  # the location
        (EventKind.PAGE, "Blog", {"url": "/integrations"}),
        (EventKind.PAGE, "Blog", {"path": "/roi", "topics": ["security"]}),  # declared: the long way
    ]
    warm = Prospect(lead_id="L1", created_at=NOW)
    cold = Prospect(lead_id="L2", created_at=NOW)
    for n, (kind, name, properties) in enumerate(pages * 2):
        event = _event(n, kind, name=name, properties=properties)
        apply_event(warm, event, warm_rules)
        apply_event(cold, event, parse_rules(data))  # nothing remembered
        assert (warm.engagement, warm.interests) == (cold.engagement, cold.interests), properties
    assert set(warm.engagement) >= {"named_page", "tour_screen", "pricing_page", "integrations_page"}
    assert set(warm.interests) >= {"pricing", "security", "case_studies", "reporting", "roi", "integrations"}


@pytest.mark.parametrize(
    "field, value",
    [("email", "ada@contoso.example"), ("user_id", "u-ada"), ("anonymous_id", "a-anon"),
     ("crm_id", "hubspot:contact:1"), ("previous_id", "a-anon")],
)  # fmt: skip
def test_replay_histories_find_a_merge_by_any_identity_an_event_names(field: str, value: str) -> None:
    """The replay's histories write a lead's identity keys once per distinct identity its events name
    (replay.histories): a survivor's event naming the absorbed lead's identity by any one field, after
    events naming all its other fields alike, still joins the two (fails if that field is left out)."""
    ada = {"anonymous_id": "a-anon"} if field in ("anonymous_id", "previous_id") else {field: value}
    absorbed = Event("seg:a1", EventKind.PAGE, NOW, "segment", properties={"path": "/"}, **ada)
    mine = {"user_id": "u-b", "anonymous_id": "b-anon"}
    first = Event("seg:b1", EventKind.PAGE, NOW + timedelta(minutes=1), "segment", **mine)
    kind = EventKind.ALIAS if field == "previous_id" else EventKind.PAGE
    naming = Event("seg:b2", kind, NOW + timedelta(minutes=2), "segment", **{**mine, field: value})
    found = histories([ArchivedEvent("a", absorbed), ArchivedEvent("b", first), ArchivedEvent("b", naming)])
    assert found.survivors() == ["b"]
    assert [(join.lead_id, join.at_event) for join in found.merged["b"]] == [("a", "seg:b2")]


def test_reserved_trait_names_are_remembered_by_the_name_itself() -> None:
    """`is_reserved_trait` remembers short names' answers: names of one length, reserved or not, in any
    case or spelling, answer as the rule does, the second time too; a long name is never remembered."""
    from chalicelib.domain.prospect import _is_reserved, is_reserved_trait

    names = ["owner", "title", "Owner", "crmId", "email", "state", "phone", "hs_id", "HS_ID", "x" * 65]
    answers = [_is_reserved(name) for name in names]
    assert answers == [True, False, True, True, False, True, False, True, True, False]
    for _ in range(2):
        assert [is_reserved_trait(name) for name in names] == answers
        assert [is_reserved_trait("crm" + "x" * 70), is_reserved_trait("y" * 70)] == [True, False]


# Evidence the chooser never finds (no template has this name): it answers as with none, but evidence is
# not remembered, so this is the choice computed afresh.
UNREMEMBERED = {("no-such-template", "general/awareness"): Evidence()}


def test_remembered_choices_equal_fresh_ones_over_the_bench_stream(rules: Rules) -> None:
    stream = generate(Shape(prospects=150, sessions=450))
    metas = shipped_metas()
    profiles: dict[int, Prospect] = {}
    last: dict[int, Choice | NoChoice] = {}
    checked = remembered = 0
    _CHOSEN.clear()
    for index, event in stream:
        p = profiles.get(index)
        if p is None:
            p = profiles[index] = Prospect(lead_id=f"L{index}", created_at=event.at, source=event.source)
        if apply_event(p, event, rules) is None:
            continue
        scores, _ = reassess(p, rules, event.at)
        warm = choose_next_message(p, metas, rules, event.at, scores)
        assert warm == choose_next_message(p, metas, rules, event.at, scores, evidence=UNREMEMBERED)
        # Another seed (the lab's per-lead one) is another draw, never the remembered one.
        seeded = choose_next_message(p, metas, rules, event.at, scores, seed=f"{p.lead_id}-backtest")
        assert seeded == choose_next_message(
            p, metas, rules, event.at, scores, seed=f"{p.lead_id}-backtest", evidence=UNREMEMBERED
        )
        if isinstance(warm, Choice):
            checked += 1
            remembered += warm is last.get(index)
        last[index] = warm
    assert checked > 300 and remembered > 100  # choices made, and many of them remembered


def test_a_remembered_choice_follows_the_cooldown_when_repeats_are_allowed() -> None:
    """The same lead, interests and day, a template sent 10 days before: an hour before its cooldown ends
    it may not go again, an hour after it may (the moment is part of what is remembered)."""
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["nurture"] = {**document.get("nurture", {}), "allow_repeats": True}
    rules = parse_rules(document)
    trust = TemplateMeta(
        name="trust", subject="s", topics=("security",), stages=(), personas=(), cooldown_days=10
    )
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=1))
    apply_event(p, _event(0, EventKind.IDENTIFY, email="jo@contoso.example"), rules)
    reassess(p, rules, NOW)
    first = choose_next_message(p, [trust], rules, NOW)
    assert isinstance(first, Choice)
    mark_sent(claim_touch(p, "L1-1", trust, first.why, NOW, first.context), 1, NOW)
    before = choose_next_message(p, [trust], rules, NOW + timedelta(days=10, hours=-1))
    after = choose_next_message(p, [trust], rules, NOW + timedelta(days=10, hours=1))
    assert isinstance(before, NoChoice) and "10-day cooldown" in before.why
    assert isinstance(after, Choice) and after.template.name == "trust"
    assert before == choose_next_message(
        p, [trust], rules, NOW + timedelta(days=10, hours=-1), evidence=UNREMEMBERED
    )


def test_remembered_choices_are_bounded() -> None:
    from chalicelib.domain import messaging

    rules = load_default_rules()
    metas = shipped_metas()
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, _event(0, EventKind.IDENTIFY, email="jo@contoso.example"), rules)
    for n in range(messaging.CHOSEN_CACHE_SIZE + 10):
        choose_next_message(p, metas, rules, NOW, seed=f"s{n}")
        assert len(_CHOSEN) <= messaging.CHOSEN_CACHE_SIZE


def test_interest_weights_are_remembered_by_what_the_buckets_hold_on_the_day(rules: Rules) -> None:
    from chalicelib.domain import scoring

    today = day_of(NOW)
    p = Prospect(lead_id="L1", created_at=NOW, source="website")
    p.interests = {"pricing": {today: 1.0}}
    first = interest_weights(p, rules, NOW)
    p.interests["pricing"][today] += 1.0  # the same bucket dict, more points the same day
    grown = interest_weights(p, rules, NOW)
    assert grown["pricing"] > first["pricing"]
    later = interest_weights(p, rules, NOW + timedelta(days=20))
    assert later["pricing"] < grown["pricing"]
    scoring._INTEREST_WEIGHTS.clear()
    assert interest_weights(p, rules, NOW) == grown
    assert interest_weights(p, rules, NOW + timedelta(days=20)) == later
    for n in range(scoring.INTEREST_WEIGHT_CACHE_SIZE + 10):
        p.interests["pricing"][today] = float(n)
        interest_weights(p, rules, NOW)
        assert len(scoring._INTEREST_WEIGHTS) <= scoring.INTEREST_WEIGHT_CACHE_SIZE


def test_settle_leaves_the_profile_as_reassess_does_over_the_bench_stream(rules: Rules) -> None:
    """The replay settles the reassessments whose scores nobody reads: the profile (and the scores, where a
    lead in nurture was scored to decide its routing) must be what reassess leaves."""
    stream = generate(Shape(prospects=150, sessions=450))
    full: dict[int, Prospect] = {}
    settled: dict[int, Prospect] = {}
    compared = 0
    for index, event in stream:
        for profiles in (full, settled):
            if index not in profiles:
                profiles[index] = Prospect(lead_id=f"L{index}", created_at=event.at, source=event.source)
        if apply_event(full[index], event, rules) is None:
            continue
        apply_event(settled[index], event, rules)
        scores, _ = reassess(full[index], rules, event.at)
        found = settle(settled[index], rules, event.at)
        assert found is None or found == scores
        assert prospect_to_doc(settled[index]) == prospect_to_doc(full[index])
        compared += found is None
    assert compared > 1000  # most reassessments went unscored


def test_a_replayed_lead_whose_last_event_cannot_be_applied_is_still_scored(rules: Rules) -> None:
    """The last reassessment's scores are the row's: when the lead's last event is a command the profile
    refuses (here: accepting an anonymous visitor), the reassessment before it is the last, and scored."""
    visit = _event(1, EventKind.PAGE, properties={"path": "/pricing"})
    accept = Event(message_id="crm:1", kind=EventKind.SALES, at=NOW + timedelta(minutes=5),
                   source="crm", name="accept", anonymous_id="anon-jo")  # fmt: skip
    lazy = _fold("L1", [visit, accept], rules, {})
    eager = _fold("L1", [visit, accept], rules, {}, lazy=False)
    assert eager[1] is not None and lazy[1] == eager[1] and lazy[2] == eager[2] == visit.at
    assert prospect_to_doc(lazy[0]) == prospect_to_doc(eager[0])


def test_an_event_applied_as_deduplicated_changes_all_but_the_seen_window_alike(rules: Rules) -> None:
    """The replay applies events it has deduplicated already without the seen window: every decision and
    every other part of the profile is what the checked apply makes of them."""
    stream = generate(Shape(prospects=150, sessions=450))
    once: dict[str, Event] = {}
    for _, event in stream:
        once.setdefault(event.message_id, event)
    checked: dict[int, Prospect] = {}
    trusted: dict[int, Prospect] = {}
    applied = 0
    for index, event in stream:
        if once.pop(event.message_id, None) is None:
            continue  # a redelivery: the replay's histories drop it before applying
        for profiles in (checked, trusted):
            if index not in profiles:
                profiles[index] = Prospect(lead_id=f"L{index}", created_at=event.at, source=event.source)
        effects = apply_event(checked[index], event, rules)
        assert effects is not None
        assert apply_event(trusted[index], event, rules, deduplicated=True) == effects
        assert reassess(trusted[index], rules, event.at) == reassess(checked[index], rules, event.at)
        assert len(trusted[index].seen) == 0
        applied += 1
    assert applied > 1000
    for index, p in checked.items():
        assert {**prospect_to_doc(trusted[index]), "sw": None} == {**prospect_to_doc(p), "sw": None}


def test_a_remembered_choice_is_for_the_catalogue_it_was_made_from(rules: Rules) -> None:
    metas = shipped_metas()
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, _event(0, EventKind.IDENTIFY, email="jo@contoso.example"), rules)
    first = choose_next_message(p, metas, rules, NOW)
    assert isinstance(first, Choice)
    assert choose_next_message(p, list(metas), rules, NOW) is first  # the same templates in another list
    without = [meta for meta in metas if meta.name != first.template.name]
    other = choose_next_message(p, without, rules, NOW)
    assert other == choose_next_message(p, without, rules, NOW, evidence=UNREMEMBERED)
    assert not isinstance(other, Choice) or other.template.name != first.template.name


def test_remembered_scores_follow_the_lines_their_order_and_the_rules_version(rules: Rules) -> None:
    """Scores are remembered by the identities of their lines (fit's, then engagement's): a trait that
    changes fit, the same engagement under another fit, and a copy of the rules with another version
    (sharing its caches, so the very same lines) each get scores of their own; the memory is bounded."""
    from chalicelib.domain import scoring

    rule_id = next(r for r, cap in rules.caps.items() if cap is None or cap >= 20)
    today = day_of(NOW)
    p = Prospect(lead_id="L1", created_at=NOW, traits={"title": "Intern"})
    p.engagement = {rule_id: {today: 2.0}}
    intern = score(p, rules, NOW)
    p.traits["title"] = "VP Marketing"
    executive = score(p, rules, NOW)
    assert executive.fit != intern.fit and executive.engagement == intern.engagement
    assert executive == _cold(p, rules, NOW)
    other = Prospect(lead_id="L2", created_at=NOW)
    other.engagement = {rule_id: {today: 2.0}}
    unanswered = sum(rule.points for rule in rules.fit if rule.missing)
    assert score(other, rules, NOW).fit == unanswered  # nothing known: only the unanswered questions' lines
    assert score(p, rules, NOW) == executive
    newer = rules.model_copy(update={"version": rules.version + 1})
    assert newer.line_cache is rules.line_cache  # the very same lines: only the version tells them apart
    expected = Scores(executive.fit, executive.engagement, executive.breakdown, rules.version + 1)
    assert score(p, newer, NOW) == expected
    assert score(p, rules, NOW).rules_version == rules.version
    for n in range(scoring.ORDER_CACHE_SIZE + 10):
        p.engagement[rule_id][today] = n / 10
        score(p, rules, NOW)
        assert len(scoring._SCORED) <= scoring.ORDER_CACHE_SIZE


def test_the_day_remembered_for_a_moment_is_that_moments_own() -> None:
    """`day_of` keeps its last answer with the very moment it was for: the same instant seen from another
    time zone (another calendar day there), the next moment, and an equal but distinct object each get
    their own day, asked one after the other."""
    late = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    east = late.astimezone(timezone(timedelta(hours=2)))  # equal to `late`, yet already the 24th
    assert late == east
    assert day_of(late) == date(2026, 11, 23).toordinal()
    assert day_of(east) == date(2026, 11, 24).toordinal()
    assert day_of(late) == date(2026, 11, 23).toordinal()
    assert day_of(late + timedelta(hours=1)) == date(2026, 11, 24).toordinal()
    assert day_of(datetime(2026, 11, 23, 23, 30, tzinfo=UTC)) == date(2026, 11, 23).toordinal()


def test_a_catalogue_list_changed_in_place_is_chosen_from_as_it_is_now(rules: Rules) -> None:
    """The chooser takes the last catalogue's entry without hashing its ids when it is handed the same list
    again: a list whose template was swapped in place since (same object, same length) is another
    catalogue, and the choice is made from it, as one made without the remembered ones is."""
    metas = list(shipped_metas())
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, _event(0, EventKind.IDENTIFY, email="jo@contoso.example"), rules)
    first = choose_next_message(p, metas, rules, NOW)
    assert isinstance(first, Choice)
    assert choose_next_message(p, metas, rules, NOW) is first
    spare = TemplateMeta(name="spare", subject="s", topics=(), stages=(), personas=())
    metas[metas.index(first.template)] = spare  # the same list, one template swapped
    again = choose_next_message(p, metas, rules, NOW)
    assert again == choose_next_message(p, metas, rules, NOW, evidence=UNREMEMBERED)
    assert not isinstance(again, Choice) or again.template.name != first.template.name


def test_a_single_days_line_and_weight_are_remembered_by_rule_age_and_points(rules: Rules) -> None:
    """One day's points (most rules and topics) are remembered by their age rather than their day: the same
    age read on another day is the same line, another age or amount another line, another rule its own
    line; a topic's weight follows its age, its points and the rules' half-life and daily cap."""
    capped = [r for r, cap in rules.caps.items() if cap is None or cap >= 20]
    first_rule, second_rule = capped[0], capped[1]
    today = day_of(NOW)
    p = Prospect(lead_id="L1", created_at=NOW, source="website")
    p.engagement = {first_rule: {today: 2.0}}
    fresh = score(p, rules, NOW)
    p.engagement = {first_rule: {today - 5: 2.0}}
    aged = score(p, rules, NOW)
    assert aged.engagement < fresh.engagement and aged == _cold(p, rules, NOW)
    assert score(p, rules, NOW + timedelta(days=5)) == _cold(p, rules, NOW + timedelta(days=5))
    p.engagement = {first_rule: {today + 5: 2.0}}  # the same age (0) five days on: the same line
    assert score(p, rules, NOW + timedelta(days=5)).breakdown == fresh.breakdown
    p.engagement = {first_rule: {today: 3.0}}
    assert score(p, rules, NOW).engagement > fresh.engagement
    p.engagement = {second_rule: {today: 2.0}}
    engaged = [line.rule for line in score(p, rules, NOW).breakdown if line.kind != "fit"]
    assert engaged == [second_rule]  # (fit lines: the unanswered questions of a lead nothing is known of)
    p.interests = {"pricing": {today: 2.0}}
    weight = interest_weights(p, rules, NOW)["pricing"]
    p.interests = {"pricing": {today - 30: 2.0}}
    assert interest_weights(p, rules, NOW)["pricing"] == pytest.approx(weight / 2, abs=0.01)
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["interest"] = {**document["interest"], "daily_cap": 4}
    other_cap = parse_rules(document)
    p.interests = {"pricing": {today: 5.0}}
    assert interest_weights(p, rules, NOW)["pricing"] == 3.0  # the shipped daily cap
    assert interest_weights(p, other_cap, NOW)["pricing"] == 4.0
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["interest_half_life_days"] = 10
    other_half_life = parse_rules(document)
    p.interests = {"pricing": {today - 10: 2.0}}
    assert interest_weights(p, rules, NOW)["pricing"] == round(2.0 * 0.5 ** (10 / 30), 2)
    assert interest_weights(p, other_half_life, NOW)["pricing"] == 1.0
