"""Accounts without infrastructure: a group call links a person to an account and never renames them,
account traits feed fit, the snapshot stays within bounds, and the summary says when several people of one
account engage (the use cases over in-memory storage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory import (
    InMemoryAccounts,
    InMemoryActivity,
    InMemoryCounters,
    InMemoryIdentities,
    InMemoryMarks,
    InMemoryProspects,
)
from chalicelib.domain.apply import apply_event
from chalicelib.domain.bounds import keep_within_budget, stored_size
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import (
    MAX_ACCOUNT_TEXT_CHARS,
    MAX_ACCOUNT_TRAITS,
    MAX_ACCOUNTS,
    MAX_PROFILE_BYTES,
    Prospect,
)
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import RulesError, parse_rules
from chalicelib.domain.scoring import score
from chalicelib.effects.dispatch import Dispatcher
from chalicelib.usecases.accounts import AccountService
from chalicelib.usecases.leads import LeadService
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = load_default_rules()


def _event(n: int, kind: EventKind, who: str = "jo", **fields: Any) -> Event:
    return Event(
        message_id=f"seg:{who}:{n}",
        kind=kind,
        at=NOW - timedelta(minutes=30 - n),
        source="website",
        anonymous_id=f"anon-{who}",
        **fields,
    )


def identify(n: int, who: str = "jo", **traits: Any) -> Event:
    return _event(n, EventKind.IDENTIFY, who, email=f"{who}@contoso.example", traits=traits)


def group(n: int, group_id: str, who: str = "jo", **traits: Any) -> Event:
    return _event(n, EventKind.GROUP, who, traits=traits, properties={"group_id": group_id})


def page(n: int, path: str, who: str = "jo") -> Event:
    return _event(n, EventKind.PAGE, who, properties={"path": path})


def fold(*events: Event) -> Prospect:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(hours=1))
    for event in events:
        apply_event(p, event, RULES)
    reassess(p, RULES, NOW)
    return p


def fit_rules(p: Prospect) -> set[str]:
    return {line.rule for line in score(p, RULES, NOW).breakdown if line.kind == "fit"}


# --- a group call never changes the person ---


def test_a_group_call_never_renames_the_person() -> None:
    p = fold(
        identify(1, name="Jo Smith", title="Head of Data", company="Contoso"),
        group(2, "acct-9", name="Contoso Ltd", employees=800, email="billing@contoso.example", plan="pro"),
    )

    assert p.name == "Jo Smith"
    assert p.traits == {"name": "Jo Smith", "title": "Head of Data", "company": "Contoso"}
    assert p.email == "jo@contoso.example"
    [account] = p.accounts
    assert (account.account_id, account.name) == ("acct-9", "Contoso Ltd")
    assert account.traits == {"name": "Contoso Ltd", "employees": 800, "plan": "pro"}  # no person's email


def test_the_account_snapshot_survives_the_stored_form() -> None:
    p = fold(identify(1, name="Jo Smith"), group(2, "acct-9", name="Contoso Ltd", employees=800))
    again = prospect_from_doc(prospect_to_doc(p))
    assert again.accounts == p.accounts


def test_a_later_group_call_updates_the_account_and_an_older_one_does_not() -> None:
    p = fold(
        group(5, "acct-9", name="Contoso Ltd", plan="pro"),
        group(2, "acct-9", name="Contoso (old name)", industry="software"),  # arrives late, happened first
        group(6, "acct-9", plan="enterprise"),
    )
    assert p.accounts[0].traits == {"name": "Contoso Ltd", "plan": "enterprise"}


# --- fit ---


def test_account_traits_feed_fit_where_the_person_says_nothing() -> None:
    alone = fold(identify(1, name="Jo Smith", title="Engineer"))
    with_account = fold(
        identify(1, name="Jo Smith", title="Engineer"),
        group(2, "acct-9", name="Contoso Ltd", employees=800, industry="software", address={"country": "DE"}),
    )

    assert not {"company_size_target", "industry_target", "country_served", "has_company"} & fit_rules(alone)
    assert {"company_size_target", "industry_target", "country_served", "has_company"} <= fit_rules(
        with_account
    )
    assert score(with_account, RULES, NOW).fit > score(alone, RULES, NOW).fit


def test_the_persons_own_trait_wins_over_the_accounts() -> None:
    p = fold(identify(1, company_size=20), group(2, "acct-9", employees=800))
    assert "company_size_target" not in fit_rules(p)  # 20 people, as the person said


def test_a_rule_on_an_account_trait_takes_the_best_of_the_persons_accounts() -> None:
    document = {
        **_rules_document(),
        "fit": [{"id": "paid", "trait": "account.plan", "one_of": ["pro"], "points": 30}],
    }
    rules = parse_rules(document)
    p = Prospect(lead_id="L1", created_at=NOW)
    for event in (group(1, "acct-free", plan="free"), group(2, "acct-pro", plan="pro")):
        apply_event(p, event, rules)
    assert score(p, rules, NOW).fit == 30


def test_a_rule_naming_no_account_trait_is_refused() -> None:
    document = {**_rules_document(), "fit": [{"id": "x", "trait": "account.", "matches": ".", "points": 1}]}
    with pytest.raises(RulesError, match="account"):
        parse_rules(document)


def _rules_document() -> dict[str, Any]:
    import yaml

    from chalicelib.wiring import DEFAULT_RULES

    return dict(yaml.safe_load(DEFAULT_RULES.read_text()))


# --- bounds ---


def test_a_person_in_many_accounts_keeps_the_newest_within_bounds() -> None:
    p = fold(*(group(n, f"acct-{n}", name=f"Company {n}") for n in range(1, 26)))
    assert [a.account_id for a in p.accounts] == [f"acct-{n}" for n in range(26 - MAX_ACCOUNTS, 26)]
    assert p.trimmed["accounts"] >= 25 - MAX_ACCOUNTS


def test_huge_account_traits_are_cut_and_the_profile_stays_storable() -> None:
    huge = {f"trait_{n}": "ü" * 5000 for n in range(300)}
    events = [
        group(n, f"acct-{n}-" + "x" * 100, name="é" * 10_000, employees=1e300, **huge) for n in range(30)
    ]
    p = fold(*events)
    keep_within_budget(p)

    assert len(p.accounts) <= MAX_ACCOUNTS
    for account in p.accounts:
        assert len(account.traits) <= MAX_ACCOUNT_TRAITS
        assert "name" in account.traits  # the core traits are kept over the extras
        assert all(len(str(v)) <= MAX_ACCOUNT_TEXT_CHARS for v in account.traits.values())
        assert "employees" not in account.traits  # not a number anyone could mean
    assert stored_size(p) <= MAX_PROFILE_BYTES
    assert p.trimmed["accounts"] > 0


def test_an_account_id_too_long_to_store_links_nothing() -> None:
    p = fold(group(1, "a" * 300, name="Contoso Ltd"))
    assert p.accounts == []
    assert p.trimmed["accounts"] == 1


# --- the use cases over in-memory storage ---


class Store:
    def __init__(self) -> None:
        self.prospects = InMemoryProspects()
        self.accounts = InMemoryAccounts()
        self.identities = InMemoryIdentities()
        counters = InMemoryCounters()
        activity = InMemoryActivity()
        dispatcher = Dispatcher(
            activity=activity,
            counters=counters,
            ledger=InMemoryMarks(),
            notifier=None,  # type: ignore[arg-type]  # nobody is routed here
            workflow=None,  # type: ignore[arg-type]
            rules=lambda: RULES,
            lead_url=lambda lead_id: f"https://leads.example.test/leads/{lead_id}",
            accounts=self.accounts,
        )
        ids = iter(f"L{n:03d}" for n in range(1000))
        self.leads = LeadService(
            prospects=self.prospects,
            identities=self.identities,
            activity=activity,
            counters=counters,
            rules=lambda: RULES,
            effects=dispatcher,
            public_url="https://leads.example.test",
            clock=lambda: NOW,
            new_id=lambda: next(ids),
            pause=lambda seconds: None,
            accounts=self.accounts,
        )
        self.account_service = AccountService(
            accounts=self.accounts, prospects=self.prospects, rules=lambda: RULES, clock=lambda: NOW
        )


def test_a_person_in_two_accounts_is_a_member_of_both() -> None:
    store = Store()
    store.leads.apply_events(
        [
            identify(1, name="Jo Smith"),
            group(2, "acct-9", name="Contoso Ltd"),
            group(3, "acct-7", name="Fabrikam"),
        ]
    )

    summary = store.leads.summary("jo@contoso.example")
    assert [(a["id"], a["name"], a["people"]) for a in summary["accounts"]] == [
        ("acct-7", "Fabrikam", 1),
        ("acct-9", "Contoso Ltd", 1),
    ]
    assert store.account_service.show("acct-7")["people"][0]["name"] == "Jo Smith"
    assert store.account_service.show("acct-9")["people"][0]["name"] == "Jo Smith"


def test_when_two_people_of_one_account_engage_each_summary_says_so() -> None:
    store = Store()
    for who, name in (("jo", "Jo Smith"), ("sam", "Sam Lee")):
        store.leads.apply_events(
            [
                identify(1, who, name=name),
                group(2, "acct-9", who, name="Contoso Ltd", employees=800),
                page(3, "/pricing", who),
            ]
        )
    store.leads.apply_events([identify(1, "kim", name="Kim Park"), group(2, "acct-9", "kim")])  # no visit

    line = "2 people at Contoso Ltd engaged in the last 14 days"
    for email in ("jo@contoso.example", "sam@contoso.example"):
        summary = store.leads.summary(email)
        assert summary["accounts"][0]["people"] == 3
        assert summary["accounts"][0]["engaged_people"] == 2
        assert summary["account_signals"] == [line]
    account = store.account_service.show("acct-9")
    assert account["engaged_people"] == 2 and account["signal"] == line
    assert account["engagement"] == sum(person["engagement"] for person in account["people"]) > 0
    assert {person["name"] for person in account["people"]} == {"Jo Smith", "Sam Lee", "Kim Park"}


def test_one_engaged_person_makes_no_signal() -> None:
    store = Store()
    store.leads.apply_events(
        [identify(1, name="Jo Smith"), group(2, "acct-9", name="Contoso Ltd"), page(3, "/")]
    )
    assert store.leads.summary("jo@contoso.example")["account_signals"] == []


def test_member_rows_are_not_rewritten_for_every_page_view() -> None:
    store = Store()
    store.leads.apply_events(
        [identify(1, name="Jo Smith"), group(2, "acct-9", name="Contoso Ltd"), page(3, "/")]
    )
    writes = len(store.prospects.writes)
    store.leads.apply_events([page(4, "/docs"), page(5, "/pricing")])  # the same day: already counted engaged
    later = store.prospects.writes[writes:]
    assert later and not any(type(e).__name__ == "UpdateAccounts" for w in later for e in w.effects)


def test_a_merged_profile_keeps_the_accounts_either_half_was_linked_to() -> None:
    from chalicelib.domain.merge import absorb_profile

    known = fold(identify(1, name="Jo Smith"), group(2, "acct-9", name="Contoso Ltd"))
    visitor = Prospect(lead_id="L2", created_at=NOW - timedelta(hours=2))
    apply_event(visitor, group(3, "acct-7", who="visitor", name="Fabrikam"), RULES)

    absorb_profile(known, visitor)

    assert sorted(a.account_id for a in known.accounts) == ["acct-7", "acct-9"]
    assert known.traits.get("name") == "Jo Smith"
