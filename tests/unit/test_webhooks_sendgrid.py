"""SendGrid Event Webhook: the signed fixture batch verifies and normalises; tampering, staleness and a
missing key are refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.config import WebhookSecrets
from chalicelib.errors import MalformedInput, TooLarge, Unauthenticated
from chalicelib.ingest import sendgrid
from chalicelib.ingest.webhooks import MAX_BODY_BYTES
from tests.conftest import FIXTURES

KEYS = FIXTURES / "webhooks" / "_test_keys"
BATCH = FIXTURES / "webhooks" / "sendgrid" / "event_batch_signed.json"


def _fixture() -> tuple[bytes, dict[str, str], datetime]:
    fixture = json.loads(BATCH.read_text())
    signed_at = datetime.fromtimestamp(int(fixture["headers"][sendgrid.TIMESTAMP_HEADER]), UTC)
    return fixture["body"].encode(), fixture["headers"], signed_at


def _secrets() -> WebhookSecrets:
    keys = json.loads((KEYS / "keys.json").read_text())
    return WebhookSecrets(sendgrid_public_key_b64=keys["sendgrid_verification_key_b64_der"])


def _sign(raw: bytes, at: datetime) -> dict[str, str]:
    key = serialization.load_pem_private_key((KEYS / "sendgrid_test_private_key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    timestamp = str(int(at.timestamp()))
    signature = key.sign(timestamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    return {
        sendgrid.SIGNATURE_HEADER.lower(): base64.b64encode(signature).decode(),
        sendgrid.TIMESTAMP_HEADER.lower(): timestamp,
    }


def _flip(raw: bytes, marker: bytes) -> bytes:
    index = raw.index(marker)
    return raw[:index] + bytes([raw[index] ^ 1]) + raw[index + 1 :]


def test_fixture_batch_becomes_normalised_email_events() -> None:
    raw, headers, signed_at = _fixture()
    events = sendgrid.verify_and_parse(raw, headers, secrets=_secrets(), now=signed_at)

    assert [e.name for e in events] == [
        "delivered", "opened", "clicked", "bounced", "dropped", "complained", "unsubscribed", "unsubscribed",
        "deferred",
    ]  # fmt: skip
    delivered, opened, clicked, bounced = events[:4]
    assert delivered.message_id == "sendgrid:rWVYmVk90MjZJ9iohOBa3w=="
    assert delivered.lead_id == "L-42" and delivered.email == "lead@example.com"
    assert delivered.at == datetime.fromtimestamp(1795386100, UTC)
    assert delivered.properties["provider"] == "sendgrid"
    assert opened.properties["machine_open"] is False
    assert clicked.properties["url"] == "https://example.com/pricing?utm_source=nurture"
    assert bounced.properties["bounce"] == "hard"
    assert bounced.lead_id is None and bounced.email == "bounce@example.com"


def test_batch_resigned_now_with_the_test_key_verifies(now: datetime) -> None:
    raw, _, _ = _fixture()
    sendgrid.verify(raw, _sign(raw, now), secrets=_secrets(), now=now)


def test_one_changed_body_byte_is_refused() -> None:
    raw, headers, signed_at = _fixture()
    with pytest.raises(Unauthenticated, match="bad signature"):
        sendgrid.verify(_flip(raw, b"lead@example.com"), headers, secrets=_secrets(), now=signed_at)


def test_a_signature_older_than_five_minutes_is_refused(now: datetime) -> None:
    raw, _, _ = _fixture()
    headers = _sign(raw, now - timedelta(minutes=5, seconds=1))
    with pytest.raises(Unauthenticated, match="replay window"):
        sendgrid.verify(raw, headers, secrets=_secrets(), now=now)


def test_missing_signature_header_is_named(now: datetime) -> None:
    raw, _, _ = _fixture()
    headers = {sendgrid.TIMESTAMP_HEADER: str(int(now.timestamp()))}
    with pytest.raises(Unauthenticated, match=f"missing {sendgrid.SIGNATURE_HEADER} header"):
        sendgrid.verify(raw, headers, secrets=_secrets(), now=now)


def test_unconfigured_key_refuses_every_call(now: datetime) -> None:
    raw, _, _ = _fixture()
    with pytest.raises(Unauthenticated, match="sendgrid webhook is not configured"):
        sendgrid.verify(raw, _sign(raw, now), secrets=WebhookSecrets(), now=now)


def test_a_body_over_one_megabyte_is_too_large(now: datetime) -> None:
    raw = b"[" + b" " * MAX_BODY_BYTES + b"]"
    with pytest.raises(TooLarge):
        sendgrid.verify(raw, _sign(raw, now), secrets=_secrets(), now=now)


def test_processed_events_are_skipped_and_custom_args_identify_the_send(now: datetime) -> None:
    raw = json.dumps([
        {"email": "A@Example.com", "event": "processed", "sg_event_id": "p1", "timestamp": 1},
        {"email": "A@Example.com", "event": "open", "sg_event_id": "o1", "timestamp": 1,
         "sg_machine_open": True, "send_id": "S-9", "template": "welcome"},
    ]).encode()  # fmt: skip
    [opened] = sendgrid.parse(raw, received_at=now)
    assert opened.email == "a@example.com"
    assert opened.properties == {
        "provider": "sendgrid",
        "send_id": "S-9",
        "template": "welcome",
        "machine_open": True,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"event": "open"}', "JSON array"),
        (b'[{"event": "open", "email": "a@example.com"}]', "event 0 has no sg_event_id"),
    ],
)
def test_unreadable_content_is_malformed(raw: bytes, message: str, now: datetime) -> None:
    with pytest.raises(MalformedInput, match=message):
        sendgrid.parse(raw, received_at=now)
