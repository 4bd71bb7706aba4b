"""SendGrid Event Webhook: verifies the signed event batch (ECDSA P-256 / SHA-256 over the timestamp header
followed by the raw body) and turns each event into a normalised email `Event`. Leadloop's custom_args arrive
as top-level keys of each event (`lead_id`, `send_id`, `template`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EmailEventName, Event, plausible_time
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest.webhooks import (
    check_fresh,
    check_size,
    email_event,
    load_json,
    require_header,
    require_secret,
    unix_time,
)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid event type -> Leadloop email event. "processed", "group_resubscribe" and anything new are skipped.
EVENT_NAMES: Mapping[str, EmailEventName] = {
    "delivered": EmailEventName.DELIVERED,
    "open": EmailEventName.OPENED,
    "click": EmailEventName.CLICKED,
    "bounce": EmailEventName.BOUNCED,
    "spamreport": EmailEventName.COMPLAINED,
    "unsubscribe": EmailEventName.UNSUBSCRIBED,
    "group_unsubscribe": EmailEventName.UNSUBSCRIBED,
    "deferred": EmailEventName.DEFERRED,
    "dropped": EmailEventName.DROPPED,
}


def verify(raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime) -> None:
    check_size(raw)
    key_b64 = require_secret(secrets.sendgrid_public_key_b64, PROVIDER)
    signature_b64 = require_header(headers, SIGNATURE_HEADER)
    timestamp = require_header(headers, TIMESTAMP_HEADER)
    check_fresh(unix_time(timestamp, f"{TIMESTAMP_HEADER} header"), now)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        _public_key(key_b64).verify(signature, timestamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthenticated(f"bad signature in {SIGNATURE_HEADER} header") from None


def _public_key(key_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(key_b64))
    except (binascii.Error, ValueError):
        raise Unauthenticated(f"{PROVIDER} webhook verification key is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Unauthenticated(f"{PROVIDER} webhook verification key is not an ECDSA key")
    return key


def parse(raw: bytes, *, received_at: datetime) -> list[Event]:
    check_size(raw)
    batch = load_json(raw, PROVIDER)
    if not isinstance(batch, list):
        raise MalformedInput("sendgrid webhook body must be a JSON array of events")
    events = []
    for index, item in enumerate(batch):
        event = _event(item, index, received_at)
        if event is not None:
            events.append(event)
    return events


def _event(item: Any, index: int, received_at: datetime) -> Event | None:
    if not isinstance(item, dict):
        raise MalformedInput(f"sendgrid event {index} is not a JSON object")
    name = EVENT_NAMES.get(str(item.get("event")))
    if name is None:
        return None
    event_id = item.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedInput(f"sendgrid event {index} has no sg_event_id")
    at = _at(item.get("timestamp"), index) if item.get("timestamp") is not None else None
    at = plausible_time(at, received_at)
    return email_event(
        PROVIDER, event_id, name, at, email=item.get("email"), identity=item, **_details(name, item)
    )


def _at(value: Any, index: int) -> datetime:
    try:
        return unix_time(value, "timestamp")
    except Unauthenticated:
        raise MalformedInput(f"sendgrid event {index} timestamp is not a unix time: {value!r}") from None


def _details(name: EmailEventName, item: Mapping[str, Any]) -> dict[str, Any]:
    if name is EmailEventName.CLICKED:
        return {"url": item.get("url")}
    if name is EmailEventName.OPENED:
        return {"machine_open": bool(item.get("sg_machine_open"))}
    if name is EmailEventName.BOUNCED:
        # type "blocked" is a temporary refusal by the receiving server; "bounce" is a dead address.
        return {"bounce": "soft" if item.get("type") == "blocked" else "hard"}
    return {}


def verify_and_parse(
    raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now)
    return parse(raw, received_at=now)
