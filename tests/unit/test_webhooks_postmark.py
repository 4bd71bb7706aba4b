"""Postmark webhooks: Basic credentials authenticate (Postmark signs nothing); each record type normalises."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import postmark
from tests.conftest import FIXTURES

FIXTURE_DIR = FIXTURES / "webhooks" / "postmark"
SECRETS = WebhookSecrets(postmark_username="pmuser", postmark_password="pmpass-test")

# fixture -> (event name, recipient, time, extra properties)
EXPECTED = {
    "delivery.json": ("delivered", "lead@example.com", "2024-05-01T12:30:45.123456", {}),
    "bounce.json": ("bounced", "bounce@example.com", "2024-05-01T12:30:45.123456", {"bounce": "hard"}),
    "spam_complaint.json": ("complained", "lead@example.com", "2024-05-01T12:35:45.123456", {}),
    "open.json": ("opened", "lead@example.com", "2024-05-01T12:31:45.123456", {"machine_open": False}),
    "click.json": (
        "clicked",
        "lead@example.com",
        "2024-05-01T12:32:45.123456",
        {"url": "https://example.com/pricing"},
    ),
    "subscription_change.json": ("unsubscribed", "lead@example.com", "2024-05-01T12:36:45.416071", {}),
}


def _load(name: str) -> tuple[bytes, dict[str, str]]:
    fixture = json.loads((FIXTURE_DIR / name).read_text())
    return fixture["body"].encode(), fixture["headers"]


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_verifies_and_normalises(name: str, now: datetime) -> None:
    raw, headers = _load(name)
    [event] = postmark.verify_and_parse(raw, headers, secrets=SECRETS, now=now)

    expected_name, recipient, at, extra = EXPECTED[name]
    record = json.loads(raw)
    assert event.name == expected_name
    assert event.lead_id == "L-42" and event.email == recipient
    assert event.at == datetime.fromisoformat(at).replace(tzinfo=UTC)
    assert event.message_id.startswith(f"postmark:{record['MessageID']}:{record['RecordType']}:")
    assert dict(event.properties) == {"provider": "postmark", **extra}


def test_events_of_one_message_get_distinct_ids(now: datetime) -> None:
    ids = {postmark.parse(_load(name)[0], received_at=now)[0].message_id for name in EXPECTED}
    assert len(ids) == len(EXPECTED)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization header"),
        (_basic("pmuser", "wrong"), "bad postmark webhook credentials"),
        (_basic("someone", "pmpass-test"), "bad postmark webhook credentials"),
        ({"Authorization": "Bearer pmpass-test"}, "not HTTP Basic"),
        ({"Authorization": "Basic !!!"}, "not valid base64"),
    ],
)
def test_wrong_or_missing_credentials_are_refused(
    headers: dict[str, str], message: str, now: datetime
) -> None:
    raw, _ = _load("delivery.json")
    with pytest.raises(Unauthenticated, match=message):
        postmark.verify(raw, headers, secrets=SECRETS, now=now)


def test_unconfigured_credentials_refuse(now: datetime) -> None:
    raw, headers = _load("delivery.json")
    with pytest.raises(Unauthenticated, match="postmark webhook is not configured"):
        postmark.verify(raw, headers, secrets=WebhookSecrets(postmark_username="pmuser"), now=now)


def test_soft_bounce_and_resubscription(now: datetime) -> None:
    soft = json.dumps({"RecordType": "Bounce", "Type": "SoftBounce", "MessageID": "m", "Email": "a@b.c"})
    [bounced] = postmark.parse(soft.encode(), received_at=now)
    assert bounced.properties["bounce"] == "soft" and bounced.at == now
    resubscribed = json.dumps(
        {"RecordType": "SubscriptionChange", "MessageID": "m", "Recipient": "a@b.c", "SuppressSending": False}
    )
    assert postmark.parse(resubscribed.encode(), received_at=now) == []


def test_auto_responder_bounce_records_are_not_bounces(now: datetime) -> None:
    raw = json.dumps({"RecordType": "Bounce", "Type": "AutoResponder", "MessageID": "m", "Email": "a@b.c"})
    assert postmark.parse(raw.encode(), received_at=now) == []


def test_record_without_message_id_is_malformed(now: datetime) -> None:
    with pytest.raises(MalformedInput, match="no MessageID"):
        postmark.parse(b'{"RecordType": "Delivery", "Recipient": "a@b.c"}', received_at=now)


def test_fixture_files_are_all_covered() -> None:
    assert {p.name for p in Path(FIXTURE_DIR).glob("*.json")} == set(EXPECTED)
