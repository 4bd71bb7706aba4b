"""Mailgun webhooks: every signed fixture verifies and normalises; a changed signature block, a stale
timestamp and a replayed token are refused. (Mailgun signs only timestamp + token, not event-data.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import mailgun
from tests.conftest import FIXTURES

FIXTURE_DIR = FIXTURES / "webhooks" / "mailgun"
KEY = json.loads((FIXTURES / "webhooks" / "_test_keys" / "keys.json").read_text())[
    "mailgun_webhook_signing_key"
]
SECRETS = WebhookSecrets(mailgun_signing_key=KEY)

# fixture -> (event name, extra properties)
EXPECTED = {
    "delivered_signed.json": ("delivered", {}),
    "opened_signed.json": ("opened", {"machine_open": False}),
    "clicked_signed.json": ("clicked", {"url": "https://example.com/pricing"}),
    "complained_signed.json": ("complained", {}),
    "unsubscribed_signed.json": ("unsubscribed", {}),
    "failed_permanent_signed.json": ("bounced", {"bounce": "hard"}),
    "failed_temporary_signed.json": ("deferred", {}),
}


class Memory:
    """Stands in for the DynamoDB-backed token memory."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, token: str, at: datetime) -> bool:
        if token in self.seen:
            return False
        self.seen.add(token)
        return True


def _load(name: str) -> tuple[bytes, dict[str, str], datetime]:
    fixture = json.loads((FIXTURE_DIR / name).read_text())
    body = json.loads(fixture["body"])
    signed_at = datetime.fromtimestamp(int(body["signature"]["timestamp"]), UTC)
    return fixture["body"].encode(), fixture["headers"], signed_at


def _resigned(raw: bytes, at: datetime, token: str = "fresh-token-0001") -> bytes:
    body = json.loads(raw)
    timestamp = str(int(at.timestamp()))
    body["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun.expected_signature(KEY, timestamp, token),
    }
    return json.dumps(body).encode()


def _flip(raw: bytes, marker: bytes) -> bytes:
    index = raw.index(marker)
    return raw[:index] + bytes([raw[index] ^ 1]) + raw[index + 1 :]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_verifies_and_normalises(name: str) -> None:
    raw, headers, signed_at = _load(name)
    [event] = mailgun.verify_and_parse(raw, headers, secrets=SECRETS, now=signed_at, remember_token=Memory())

    expected_name, extra = EXPECTED[name]
    event_id = json.loads(raw)["event-data"]["id"]
    assert event.message_id == f"mailgun:{event_id}"
    assert event.name == expected_name
    assert event.lead_id == "L-42" and event.email == "lead@example.com"
    assert event.at == datetime.fromtimestamp(1795386148.766, UTC)
    assert dict(event.properties) == {"provider": "mailgun", **extra}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("field", ["token", "signature"])
def test_one_changed_byte_in_the_signed_block_is_refused(name: str, field: str) -> None:
    raw, headers, signed_at = _load(name)
    value = json.loads(raw)["signature"][field].encode()
    with pytest.raises(Unauthenticated, match="bad signature"):
        mailgun.verify(_flip(raw, value), headers, secrets=SECRETS, now=signed_at, remember_token=Memory())


def test_resigned_now_verifies(now: datetime) -> None:
    raw, headers, _ = _load("delivered_signed.json")
    mailgun.verify(_resigned(raw, now), headers, secrets=SECRETS, now=now, remember_token=Memory())


def test_a_stale_timestamp_is_refused(now: datetime) -> None:
    raw, headers, _ = _load("delivered_signed.json")
    stale = _resigned(raw, now - timedelta(minutes=6))
    with pytest.raises(Unauthenticated, match="replay window"):
        mailgun.verify(stale, headers, secrets=SECRETS, now=now, remember_token=Memory())


def test_a_replayed_token_is_refused(now: datetime) -> None:
    raw, headers, _ = _load("opened_signed.json")
    signed = _resigned(raw, now)
    memory = Memory()
    mailgun.verify(signed, headers, secrets=SECRETS, now=now, remember_token=memory)
    with pytest.raises(Unauthenticated, match="already used"):
        mailgun.verify(
            signed, headers, secrets=SECRETS, now=now + timedelta(seconds=30), remember_token=memory
        )


def test_a_forged_request_does_not_use_up_the_token(now: datetime) -> None:
    raw, headers, _ = _load("opened_signed.json")
    signed = _resigned(raw, now, token="token-to-keep")
    forged = signed.replace(b'"signature": "', b'"signature": "0')
    memory = Memory()
    with pytest.raises(Unauthenticated):
        mailgun.verify(forged, headers, secrets=SECRETS, now=now, remember_token=memory)
    mailgun.verify(signed, headers, secrets=SECRETS, now=now, remember_token=memory)


def test_missing_signature_object_is_named(now: datetime) -> None:
    with pytest.raises(Unauthenticated, match="missing mailgun signature object"):
        mailgun.verify(b'{"event-data": {}}', {}, secrets=SECRETS, now=now, remember_token=Memory())


def test_unconfigured_key_refuses(now: datetime) -> None:
    raw, headers, _ = _load("opened_signed.json")
    with pytest.raises(Unauthenticated, match="mailgun webhook is not configured"):
        mailgun.verify(
            _resigned(raw, now), headers, secrets=WebhookSecrets(), now=now, remember_token=Memory()
        )


def test_without_user_variables_the_recipient_identifies_the_lead(now: datetime) -> None:
    raw = json.dumps(
        {"event-data": {"id": "x1", "event": "complained", "recipient": "Jane@Example.COM", "timestamp": 1}}
    ).encode()
    [event] = mailgun.parse(raw, received_at=now)
    assert event.lead_id is None and event.email == "jane@example.com"


def test_event_data_without_id_is_malformed(now: datetime) -> None:
    with pytest.raises(MalformedInput, match="no id"):
        mailgun.parse(b'{"event-data": {"event": "opened", "recipient": "a@b.c"}}', received_at=now)


def test_fixture_files_are_all_covered() -> None:
    assert {p.name for p in Path(FIXTURE_DIR).glob("*.json")} == set(EXPECTED)
