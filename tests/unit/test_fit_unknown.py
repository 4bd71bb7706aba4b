"""Fit judged on what is known (issue 12, recall): a question the form left unanswered earns part of what a
good answer earns (`missing: true` fit rules), a poor answer earns nothing, and negative evidence (free and
student mailboxes, titles that are not a buyer's, competitors) still counts against."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.rules import Rules, RulesError, parse_rules
from chalicelib.domain.scoring import fit_lines, score
from chalicelib.domain.summary import summarize
from tests.unit.test_routing import NOW, Feed, document


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(document())


def fit(feed: Feed, rules: Rules) -> float:
    return score(feed.p, rules, NOW).fit


def test_a_practitioner_whose_form_left_size_and_industry_out_reaches_fit(rules: Rules) -> None:
    # A "Data Engineer" at a named company: nothing says the company is small or in the wrong industry.
    feed = Feed(rules).who(title="Data Engineer", company="Northwind", country="US")
    assert fit(feed, rules) >= rules.thresholds.fit


def test_a_blank_title_at_a_company_in_the_target_range_reaches_fit(rules: Rules) -> None:
    for title in (None, "", "  "):
        traits: dict[str, Any] = {"company": "Northwind", "company_size": 300}
        if title is not None:
            traits["title"] = title
        feed = Feed(rules).who(**traits)
        assert fit(feed, rules) >= rules.thresholds.fit, title
        assert "title_not_given" in {line.rule for line in fit_lines(feed.p, rules)}


def test_a_poor_answer_earns_nothing_where_no_answer_earns_some(rules: Rules) -> None:
    unknown = Feed(rules).who(title="Owner", company="Corner Shop")
    small = Feed(rules).who(title="Owner", company="Corner Shop", company_size=8, industry="hospitality")
    assert fit(small, rules) < fit(unknown, rules) < rules.thresholds.fit
    unanswered = {"company_size_not_given", "industry_not_given"}
    assert not {line.rule for line in fit_lines(small.p, rules)} & unanswered


def test_an_answer_from_the_account_is_not_unknown(rules: Rules) -> None:
    feed = Feed(rules).who(title="Data Engineer", company="Northwind")
    feed.p.accounts = []  # no account: size unknown
    assert "company_size_not_given" in {line.rule for line in fit_lines(feed.p, rules)}
    known = Feed(rules).who(title="Data Engineer", company="Northwind", company_size=8)
    assert "company_size_not_given" not in {line.rule for line in fit_lines(known.p, rules)}


@pytest.mark.parametrize(
    ("email", "traits"),
    [
        ("ada@gmail.com", {}),  # a free mailbox and an empty form
        ("ada@gmail.com", {"company": "University 7"}),
        ("ada@student.mit.edu", {}),
        ("ada@bigco.example", {"title": "Marketing intern"}),
    ],
)
def test_negative_evidence_still_keeps_a_sparse_form_below_fit(
    rules: Rules, email: str, traits: dict[str, Any]
) -> None:
    feed = Feed(rules, email=email).who(**traits)
    assert fit(feed, rules) < rules.thresholds.fit


def test_an_unknown_trait_reads_as_not_given_for_sales(rules: Rules) -> None:
    feed = Feed(rules).who(title="Data Engineer", company="Northwind")
    lines = {line["rule"]: line["text"] for line in summarize(feed.p, rules, NOW)["scores"]["breakdown"]}
    assert lines["company_size_not_given"] == "company size not given: half credit"


def test_missing_is_a_condition_of_its_own() -> None:
    doc = document()
    doc["fit"].append({"id": "no_phone", "trait": "phone", "missing": True, "points": 3})
    assert parse_rules(doc).fit[-1].missing
    doc["fit"][0]["missing"] = True  # beside `matches`
    with pytest.raises(RulesError) as refused:
        parse_rules(doc)
    assert "fit.0" in {problem["field"] for problem in refused.value.problems}


def test_a_hand_raise_is_flagged_low_fit_on_what_is_known_never_on_unanswered_questions(rules: Rules) -> None:
    empty = Feed(rules).who().track("Demo Requested")
    empty.reassess()
    assert empty.p.history[-1].reason == "hand-raise: Demo Requested"  # nothing known: not evidence
    owner = Feed(rules).who(title="Owner", company="Corner Shop").track("Demo Requested")
    owner.reassess()
    why = owner.p.history[-1].reason or ""
    assert why.startswith("low-fit hand-raise: Demo Requested") and "[has_company]" in why
    assert "not given" not in why
