"""Resend (Svix) webhooks: every signed fixture verifies and normalises keyed by svix-id; a changed byte,
a stale timestamp or a wrong secret is refused; any one of several v1 signatures accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import resend
from tests.conftest import FIXTURES

FIXTURE_DIR = FIXTURES / "webhooks" / "resend"
SECRET = json.loads((FIXTURES / "webhooks" / "_test_keys" / "keys.json").read_text())["resend_svix_secret"]
SECRETS = WebhookSecrets(resend_secret=SECRET)

# fixture -> (event name, recipient, lead_id, extra properties)
EXPECTED = {
    "email_delivered_signed.json": ("delivered", "lead@example.com", "L-42", {}),
    "email_opened_signed.json": ("opened", "lead@example.com", None, {"machine_open": False}),
    "email_clicked_signed.json": (
        "clicked",
        "lead@example.com",
        None,
        {"url": "https://example.com/pricing"},
    ),
    "email_bounced_signed.json": ("bounced", "bounce@example.com", None, {"bounce": "hard"}),
    "email_complained_signed.json": ("complained", "lead@example.com", None, {}),
}


def _load(name: str) -> tuple[bytes, dict[str, str], datetime]:
    fixture = json.loads((FIXTURE_DIR / name).read_text())
    signed_at = datetime.fromtimestamp(int(fixture["headers"]["svix-timestamp"]), UTC)
    return fixture["body"].encode(), fixture["headers"], signed_at


def _signed(raw: bytes, at: datetime, msg_id: str = "msg_test") -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = resend.svix_signature(SECRET, msg_id, timestamp, raw)
    return {"Svix-Id": msg_id, "Svix-Timestamp": timestamp, "Svix-Signature": signature}


def _flip(raw: bytes, marker: bytes) -> bytes:
    index = raw.index(marker)
    return raw[:index] + bytes([raw[index] ^ 1]) + raw[index + 1 :]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_verifies_and_normalises(name: str) -> None:
    raw, headers, signed_at = _load(name)
    [event] = resend.verify_and_parse(raw, headers, secrets=SECRETS, now=signed_at)

    expected_name, recipient, lead_id, extra = EXPECTED[name]
    assert event.message_id == f"resend:{headers['svix-id']}"
    assert event.name == expected_name
    assert event.email == recipient and event.lead_id == lead_id
    assert event.at == datetime.fromisoformat(json.loads(raw)["created_at"])
    assert dict(event.properties) == {"provider": "resend", **extra}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_changed_body_byte_is_refused(name: str) -> None:
    raw, headers, signed_at = _load(name)
    with pytest.raises(Unauthenticated, match="bad signature in svix-signature"):
        resend.verify(_flip(raw, b"@example.com"), headers, secrets=SECRETS, now=signed_at)


def test_resigned_now_verifies_and_stale_is_refused(now: datetime) -> None:
    raw, _, _ = _load("email_opened_signed.json")
    resend.verify(raw, _signed(raw, now), secrets=SECRETS, now=now)
    with pytest.raises(Unauthenticated, match="replay window"):
        resend.verify(raw, _signed(raw, now - timedelta(minutes=6)), secrets=SECRETS, now=now)


def test_any_of_several_signatures_accepts(now: datetime) -> None:
    raw, _, _ = _load("email_opened_signed.json")
    headers = _signed(raw, now)
    headers["Svix-Signature"] = f"v1,bm90LXRoaXMtb25l {headers['Svix-Signature']} v2,ignored"
    resend.verify(raw, headers, secrets=SECRETS, now=now)


def test_a_different_secret_is_refused(now: datetime) -> None:
    raw, _, _ = _load("email_opened_signed.json")
    other = WebhookSecrets(resend_secret="whsec_b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmch")
    with pytest.raises(Unauthenticated, match="bad signature"):
        resend.verify(raw, _signed(raw, now), secrets=other, now=now)


def test_missing_svix_header_is_named(now: datetime) -> None:
    raw, _, _ = _load("email_opened_signed.json")
    headers = _signed(raw, now)
    del headers["Svix-Id"]
    with pytest.raises(Unauthenticated, match="missing svix-id header"):
        resend.verify(raw, headers, secrets=SECRETS, now=now)


def test_tags_in_the_sending_api_shape_identify_the_send(now: datetime) -> None:
    body = {
        "type": "email.delivery_delayed",
        "created_at": "2024-05-01T12:30:41.000Z",
        "data": {"email_id": "e1", "to": ["X@Example.com"], "tags": [{"name": "send_id", "value": "S-1"}]},
    }
    [event] = resend.parse(json.dumps(body).encode(), received_at=now, svix_id="msg_1")
    assert (event.name, event.email, event.properties["send_id"]) == ("deferred", "x@example.com", "S-1")


def test_sent_events_are_skipped_and_bad_bodies_are_malformed(now: datetime) -> None:
    assert resend.parse(b'{"type": "email.sent", "data": {}}', received_at=now) == []
    with pytest.raises(MalformedInput):
        resend.parse(b'{"type": "email.opened"}', received_at=now)


def test_fixture_files_are_all_covered() -> None:
    assert {p.name for p in Path(FIXTURE_DIR).glob("*.json")} == set(EXPECTED)
