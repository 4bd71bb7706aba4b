"""Generic CRM webhook: Stripe-style X-Leadloop-Signature (rotation-friendly), 5-minute window, and a body
validated field by field before any event reaches a lead."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EventKind
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import crm

SECRET = "crm-test-secret"
SECRETS = WebhookSecrets(crm_secret=SECRET)


def _body(**changes: Any) -> bytes:
    event = {"id": "evt-1", "lead": "L-42", "action": "accept", "actor": "jane.doe", "owner": "jane.doe"}
    event.update(changes)
    return json.dumps({"events": [event]}).encode()


def _headers(raw: bytes, at: datetime, secret: str = SECRET) -> dict[str, str]:
    return {"x-leadloop-signature": crm.sign_crm_payload(secret, raw, int(at.timestamp()))}


def test_signed_batch_becomes_crm_events(now: datetime) -> None:
    raw = json.dumps({"events": [
        {"id": "evt-1", "lead": "L-42", "action": "accept", "actor": "jane.doe", "owner": "jane.doe"},
        {"id": "evt-2", "lead": "Buyer@Example.com", "action": "recycle", "actor": "sam",
         "reason": "bad_timing", "note": "call in Q3", "revisit_in_days": 90,
         "occurred_at": "2026-11-23T11:58:00+01:00"},
    ]}).encode()  # fmt: skip
    accepted, recycled = crm.verify_and_parse(raw, _headers(raw, now), secrets=SECRETS, now=now)

    assert accepted.message_id == "crm:evt-1" and accepted.kind is EventKind.CRM and accepted.source == "crm"
    assert (accepted.name, accepted.lead_id, accepted.email, accepted.at) == ("accept", "L-42", None, now)
    assert dict(accepted.properties) == {"actor": "jane.doe", "owner": "jane.doe"}
    assert (recycled.name, recycled.lead_id, recycled.email) == ("recycle", None, "buyer@example.com")
    assert recycled.at == datetime(2026, 11, 23, 10, 58, tzinfo=UTC)
    assert dict(recycled.properties) == {
        "actor": "sam",
        "reason": "bad_timing",
        "note": "call in Q3",
        "revisit_in_days": 90,
    }


def test_signature_header_has_the_documented_shape() -> None:
    expected = hmac.new(b"s", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert crm.sign_crm_payload("s", b"{}", 1700000000) == f"t=1700000000,v1={expected}"


def test_any_v1_entry_accepts_so_secrets_can_rotate(now: datetime) -> None:
    raw = _body()
    old = _headers(raw, now, secret="old-secret")["x-leadloop-signature"]
    new = _headers(raw, now)["x-leadloop-signature"]
    header = f"{old},{new.split(',')[1]}"  # t=...,v1=<old>,v1=<new>
    crm.verify(raw, {"X-Leadloop-Signature": header}, secrets=SECRETS, now=now)


def test_one_changed_body_byte_is_refused(now: datetime) -> None:
    raw = _body()
    headers = _headers(raw, now)
    with pytest.raises(Unauthenticated, match="bad signature"):
        crm.verify(raw.replace(b"L-42", b"L-43"), headers, secrets=SECRETS, now=now)


def test_outside_the_window_is_refused(now: datetime) -> None:
    raw = _body()
    with pytest.raises(Unauthenticated, match="replay window"):
        crm.verify(raw, _headers(raw, now - timedelta(minutes=6)), secrets=SECRETS, now=now)
    with pytest.raises(Unauthenticated, match="replay window"):
        crm.verify(raw, _headers(raw, now + timedelta(minutes=6)), secrets=SECRETS, now=now)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing X-Leadloop-Signature header"),
        ({"X-Leadloop-Signature": "v1=abc"}, "must be t=<unix seconds>,v1=<hex hmac>"),
        ({"X-Leadloop-Signature": "t=soon,v1=abc"}, "not a unix timestamp"),
    ],
)
def test_bad_signature_headers_are_named(headers: dict[str, str], message: str, now: datetime) -> None:
    with pytest.raises(Unauthenticated, match=message):
        crm.verify(_body(), headers, secrets=SECRETS, now=now)


def test_unconfigured_secret_refuses(now: datetime) -> None:
    raw = _body()
    with pytest.raises(Unauthenticated, match="crm webhook is not configured"):
        crm.verify(raw, _headers(raw, now), secrets=WebhookSecrets(), now=now)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_body(action="promote"), r"events\[0\]\.action: Input should be 'accept'"),
        (_body(action="recycle"), r"events\[0\]\.reason: required; one of: not_ready"),
        (_body(action="recycle", reason="too_busy"), r"events\[0\]\.reason: must be one of: not_ready"),
        (
            _body(action="recycle", reason="bad_timing", revisit_in_days=3650),
            r"events\[0\]\.revisit_in_days: Input should be less than or equal to 730",
        ),
        (_body(action="disqualify"), r"events\[0\]\.reason: required"),
        (_body(action="lost"), r"events\[0\]\.reason: required"),
        (_body(action="won", amount=-5), r"events\[0\]\.amount: Input should be greater than or equal to 0"),
        (_body(amount=5), r"events\[0\]\.amount: unknown field; accept takes: note, owner"),
        (_body(owner="x" * 255), r"events\[0\]\.owner: String should have at most 254 characters"),
        (_body(occurred_at="2026-11-23T12:00:00"), r"events\[0\]\.occurred_at: needs a time zone"),
        (_body(amout=5), r"events\[0\]\.amout: unknown field; accept takes: note, owner"),
        (_body(lead=""), r"events\[0\]\.lead: String should have at least 1 character"),
        (json.dumps({"events": [{"id": "x"}]}).encode(), r"events\[0\]\.lead: Field required"),
        (b'{"events": []}', r"events: List should have at least 1 item"),
        (b"[]", r"Input should be a valid dictionary"),
        (b"{", "not JSON"),
    ],
)
def test_invalid_bodies_name_the_offending_field(raw: bytes, message: str, now: datetime) -> None:
    with pytest.raises(MalformedInput, match=message):
        crm.parse(raw, received_at=now)


def test_every_problem_is_reported_at_once(now: datetime) -> None:
    with pytest.raises(MalformedInput) as caught:
        crm.parse(_body(action="won", amount=-1, lead=""), received_at=now)
    assert len(caught.value.details) == 2  # type: ignore[arg-type]
