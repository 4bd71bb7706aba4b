"""Who may set what (DESIGN.md, "Trust model"): a tracking source proposes identity traits, never ownership or
any other fact sales or the CRM own; the CRM still names owners; the owner's email goes to team members only.
The pure domain and the notifier with a fake mailer: no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.adapters.mail import OutgoingEmail
from chalicelib.adapters.notify import SalesNotifier
from chalicelib.domain.apply import apply_event
from chalicelib.domain.decisions import Assigned
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.domain.summary import summarize

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES_FILE = Path(__file__).resolve().parents[2] / "chalicelib" / "default_rules.yaml"
ATTACKER = "attacker@evil.example"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(RULES_FILE.read_text()))


def tracked(kind: EventKind, n: int, name: str = "", **traits: Any) -> Event:
    return Event(
        message_id=f"m{n}",
        kind=kind,
        at=NOW - timedelta(minutes=10 - n),
        source="dev-write",
        name=name,
        anonymous_id="a1",
        email="ada@bigco.example",
        traits=traits,
    )


def crm(n: int, **props: Any) -> Event:
    return Event(
        message_id=f"crm{n}", kind=EventKind.CRM, at=NOW, source="hubspot", lead_id="L1", properties=props
    )


def routed(p: Prospect, rules: Rules) -> list[Any]:
    apply_event(p, tracked(EventKind.TRACK, 9, "Demo Requested"), rules)
    _, effects = reassess(p, rules, NOW)
    assert p.state is State.SALES_READY
    return effects


RESERVED = {
    "crm_owner": ATTACKER,
    "crmOwner": ATTACKER,
    "owner": ATTACKER,
    "Owner_Id": ATTACKER,
    "hubspot_owner_id": "4711",
    "hubspot_contact_id": "512",
    "crm_ids": ["hubspot:contact:1"],
    "state": "won",
    "lifecycle_stage": "customer",
    "lifecyclestage": "customer",
    "suppression": None,
    "unsubscribed": False,
    "score": 1000,
    "lead_score": 1000,
    "amount": 10**6,
}


def test_a_tracking_identify_cannot_name_the_owner_the_territory_does(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=1), source="dev-write")
    apply_event(p, tracked(EventKind.IDENTIFY, 1, title="VP Engineering", country="GB", **RESERVED), rules)

    effects = routed(p, rules)

    assert p.owner == "pierre@example.com"  # emea, round robin 1 of 2: the attacker named nobody
    assigned = next(e for e in effects if isinstance(e, Assigned))
    assert assigned.team == "emea" and "CRM" not in assigned.why
    assert p.traits == {"title": "VP Engineering", "country": "GB"}  # identity traits are still proposed


@pytest.mark.parametrize("kind", [EventKind.TRACK, EventKind.GROUP, EventKind.PAGE, EventKind.SCREEN])
def test_no_tracking_kind_can_smuggle_an_owner_in_its_traits(rules: Rules, kind: EventKind) -> None:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=1), source="dev-write")
    apply_event(p, tracked(kind, 1, "Viewed", crm_owner=ATTACKER, owner=ATTACKER), rules)
    routed(p, rules)
    assert p.owner == "sam@example.com"  # the default team's first turn
    assert ATTACKER not in str(p.traits)


def test_the_crm_still_names_the_owner_and_tracking_cannot_overwrite_it(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=1), source="dev-write")
    apply_event(p, crm(1, owner="olga@example.com", actor="hubspot"), rules)
    apply_event(p, tracked(EventKind.IDENTIFY, 2, crm_owner=ATTACKER, country="GB"), rules)

    effects = routed(p, rules)

    assert p.owner == "olga@example.com"
    assert next(e for e in effects if isinstance(e, Assigned)).why == "owner known from the CRM"


def test_nested_company_and_address_traits_keep_only_plain_values(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW, source="dev-write")
    nested = {"x": ["deep"] * 10}
    apply_event(
        p,
        tracked(
            EventKind.IDENTIFY,
            1,
            company={"name": "BigCo", "employee_count": nested, "industry": nested},
            address={"country": nested},
        ),
        rules,
    )
    assert p.traits == {"company": "BigCo"}


class Outbox:
    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        self.sent.append(email)
        return f"sent-{len(self.sent)}"


def notify_owner(
    tmp_path: Path, rules: Rules, owner: str, *, sales_addresses: tuple[str, ...] = ()
) -> tuple[list[Any], Outbox]:
    p = Prospect(lead_id="L1", created_at=NOW, source="dev-write", email="ada@bigco.example")
    p.state, p.owner = State.SALES_READY, owner
    mailer = Outbox()
    notifier = SalesNotifier(
        tmp_path, mailer=mailer, sender="leadloop@example.com", sales_addresses=sales_addresses
    )
    deliveries = notifier.notify(summarize(p, rules, NOW), "hand-raise", "https://x/leads/L1", NOW)
    return deliveries, mailer


def test_the_owner_email_goes_to_a_team_member(tmp_path: Path, rules: Rules) -> None:
    deliveries, mailer = notify_owner(tmp_path, rules, "Greta@Example.com")  # addresses are case-blind
    assert [m.to for m in mailer.sent] == ["Greta@Example.com"]
    assert [(d.channel, d.ok) for d in deliveries] == [("outbox", True), ("owner_email", True)]


def test_a_team_lead_and_a_configured_sales_address_are_mailed_too(tmp_path: Path, rules: Rules) -> None:
    _, mailer = notify_owner(tmp_path, rules, "ines@example.com")  # emea's lead
    _, configured = notify_owner(
        tmp_path, rules, "vp-sales@example.com", sales_addresses=("VP-Sales@example.com",)
    )
    assert [m.to for m in mailer.sent + configured.sent] == ["ines@example.com", "vp-sales@example.com"]


def test_an_owner_who_is_not_a_team_member_is_refused_and_not_mailed(tmp_path: Path, rules: Rules) -> None:
    deliveries, mailer = notify_owner(tmp_path, rules, ATTACKER)
    assert mailer.sent == []
    refused = next(d for d in deliveries if d.channel == "owner_email")
    assert not refused.ok and "not a team member" in refused.detail


def test_without_assignment_rules_no_owner_is_mailed(tmp_path: Path) -> None:
    doc = yaml.safe_load(RULES_FILE.read_text())
    del doc["assignment"]
    deliveries, mailer = notify_owner(tmp_path, parse_rules(doc), "pierre@example.com")
    assert mailer.sent == [] and any(d.channel == "owner_email" and not d.ok for d in deliveries)
