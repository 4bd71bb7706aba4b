"""HubSpot webhooks: the v3-signed fixture batch verifies against its public URL; stage changes map to
Leadloop lifecycle triggers; tampering, a stale timestamp and the wrong URL are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EventKind
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import hubspot
from tests.conftest import FIXTURES

FIXTURE = json.loads((FIXTURES / "webhooks" / "hubspot" / "webhook_batch_v3_signed.json").read_text())
RAW = FIXTURE["body"].encode()
URL = FIXTURE["signed_uri"]
SIGNED_AT = datetime.fromtimestamp(int(FIXTURE["headers"][hubspot.TIMESTAMP_HEADER]) / 1000, UTC)
SECRET = FIXTURE["verify_with"]["client_secret"]
SECRETS = WebhookSecrets(hubspot_client_secret=SECRET)


def _signed(raw: bytes, at: datetime, url: str = URL) -> dict[str, str]:
    timestamp = str(int(at.timestamp() * 1000))
    return {
        hubspot.SIGNATURE_HEADER: hubspot.signature_v3(SECRET, "POST", url, raw, timestamp),
        hubspot.TIMESTAMP_HEADER: timestamp,
    }


def _change(event_id: int, kind: str, object_id: int, prop: str, value: str) -> dict[str, object]:
    return {
        "eventId": event_id, "subscriptionType": f"{kind}.propertyChange", "objectId": object_id,
        "propertyName": prop, "propertyValue": value, "occurredAt": 1795386149500, "sourceId": "userId:7",
    }  # fmt: skip


def test_fixture_batch_verifies_and_maps_stage_changes() -> None:
    events = hubspot.verify_and_parse(
        RAW, FIXTURE["headers"], secrets=SECRETS, now=SIGNED_AT, method="POST", url=URL
    )

    contact, deal = events  # contact.creation is not a stage change: skipped
    assert contact.message_id == "hubspot:1803926161"
    assert contact.kind is EventKind.CRM and contact.source == "hubspot"
    assert contact.crm_id == "hubspot:contact:512"
    assert contact.name == ""  # marketingqualifiedlead is informational
    assert dict(contact.properties) == {
        "crm_property": "lifecyclestage", "crm_value": "marketingqualifiedlead", "actor": "userId:1234567",
        "reason": "hubspot lifecyclestage = marketingqualifiedlead",
    }  # fmt: skip
    assert contact.at == datetime.fromtimestamp(1795386149.5, UTC)
    assert (deal.crm_id, deal.name, deal.properties["crm_value"]) == ("hubspot:deal:9001", "", "contractsent")


@pytest.mark.parametrize(
    ("kind", "prop", "value", "trigger"),
    [
        ("contact", "lifecyclestage", "salesqualifiedlead", "accept"),
        ("contact", "lifecyclestage", "opportunity", "opportunity"),
        ("contact", "lifecyclestage", "customer", "won"),
        ("contact", "lifecyclestage", "lead", ""),
        ("contact", "hs_lead_status", "UNQUALIFIED", "disqualify"),
        ("deal", "dealstage", "closedwon", "won"),
        ("deal", "dealstage", "closedlost", "lost"),
        ("deal", "dealstage", "appointmentscheduled", ""),
    ],
)
def test_stage_values_map_to_lifecycle_triggers(
    kind: str, prop: str, value: str, trigger: str, now: datetime
) -> None:
    [event] = hubspot.parse(json.dumps([_change(1, kind, 5, prop, value)]).encode(), received_at=now)
    assert event.name == trigger and event.crm_id == f"hubspot:{kind}:5"


def test_other_property_changes_are_skipped(now: datetime) -> None:
    raw = json.dumps([_change(1, "contact", 5, "firstname", "Jane")]).encode()
    assert hubspot.parse(raw, received_at=now) == []


def test_one_changed_body_byte_is_refused() -> None:
    index = RAW.index(b"marketingqualifiedlead")
    tampered = RAW[:index] + b"n" + RAW[index + 1 :]
    with pytest.raises(Unauthenticated, match="bad signature"):
        hubspot.verify(tampered, FIXTURE["headers"], secrets=SECRETS, now=SIGNED_AT, method="POST", url=URL)


def test_a_different_public_url_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="bad signature"):
        hubspot.verify(
            RAW, FIXTURE["headers"], secrets=SECRETS, now=SIGNED_AT, method="POST", url=URL + "?x=1"
        )


def test_resigned_now_verifies_and_stale_is_refused(now: datetime) -> None:
    hubspot.verify(RAW, _signed(RAW, now), secrets=SECRETS, now=now, method="POST", url=URL)
    stale = _signed(RAW, now - timedelta(minutes=5, seconds=1))
    with pytest.raises(Unauthenticated, match="replay window"):
        hubspot.verify(RAW, stale, secrets=SECRETS, now=now, method="POST", url=URL)


def test_missing_timestamp_header_is_named(now: datetime) -> None:
    headers = {hubspot.SIGNATURE_HEADER: "x"}
    with pytest.raises(Unauthenticated, match=f"missing {hubspot.TIMESTAMP_HEADER} header"):
        hubspot.verify(RAW, headers, secrets=SECRETS, now=now, method="POST", url=URL)


def test_unconfigured_secret_refuses(now: datetime) -> None:
    with pytest.raises(Unauthenticated, match="hubspot webhook is not configured"):
        hubspot.verify(RAW, _signed(RAW, now), secrets=WebhookSecrets(), now=now, method="POST", url=URL)


def test_a_body_that_is_not_an_array_is_malformed(now: datetime) -> None:
    with pytest.raises(MalformedInput, match="JSON array"):
        hubspot.parse(b'{"eventId": 1}', received_at=now)


def test_stage_changes_carry_what_their_command_needs_and_a_bounded_value(now: datetime) -> None:
    raw = json.dumps(
        [
            _change(1, "deal", 5, "dealstage", "closedlost"),
            _change(2, "contact", 5, "lifecyclestage", "x" * 5000),
        ]
    ).encode()
    lost, informational = hubspot.parse(raw, received_at=now)
    assert (lost.name, lost.properties["reason"]) == ("lost", "hubspot dealstage = closedlost")
    assert informational.name == ""
    assert (
        len(informational.properties["crm_value"]) <= 200 and len(informational.properties["reason"]) <= 200
    )
