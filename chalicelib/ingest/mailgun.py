"""Mailgun webhooks (the JSON kind): verifies the `signature` object inside the body (hex HMAC-SHA256 of
timestamp + token with the webhook signing key), refuses a token seen before, and turns `event-data` into a
normalised email `Event`. Leadloop's identity keys arrive in `user-variables`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EmailEventName, Event, plausible_time
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest.webhooks import (
    check_fresh,
    check_size,
    email_event,
    load_json,
    looks_machine_open,
    require_secret,
    same,
    unix_time,
)

PROVIDER = "mailgun"

# Answers False when the token was already seen (the caller backs it with a conditional write).
RememberToken = Callable[[str, datetime], bool]

EVENT_NAMES: Mapping[str, EmailEventName] = {
    "delivered": EmailEventName.DELIVERED,
    "opened": EmailEventName.OPENED,
    "clicked": EmailEventName.CLICKED,
    "complained": EmailEventName.COMPLAINED,
    "unsubscribed": EmailEventName.UNSUBSCRIBED,
    "rejected": EmailEventName.DROPPED,
}

# A "failed" event, by severity and reason. Temporary failures are retried by Mailgun (deferred); a permanent
# one is a bounce, except when Mailgun refused to send at all because of a suppression that is not a bounce,
# or gave up after retrying for too long ("old", a soft bounce).
PERMANENT_FAILURES: Mapping[str, tuple[EmailEventName, str | None]] = {
    "suppress-unsubscribe": (EmailEventName.DROPPED, None),
    "suppress-complaint": (EmailEventName.DROPPED, None),
    "old": (EmailEventName.BOUNCED, "soft"),
    "espblock": (EmailEventName.BOUNCED, "soft"),
}


def expected_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def verify(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: WebhookSecrets,
    now: datetime,
    remember_token: RememberToken,
) -> None:
    check_size(raw)
    key = require_secret(secrets.mailgun_signing_key, PROVIDER)
    timestamp, token, signature = _signature_fields(load_json(raw, PROVIDER))
    check_fresh(unix_time(timestamp, "mailgun signature.timestamp"), now)
    if not same(signature.lower(), expected_signature(key, timestamp, token)):
        raise Unauthenticated("bad signature in mailgun signature.signature")
    # Only a genuine request may use up a token, so the memory is asked last.
    if not remember_token(token, now):
        raise Unauthenticated("mailgun signature.token was already used (replayed request)")


def _signature_fields(body: Any) -> tuple[str, str, str]:
    block = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(block, dict):
        raise Unauthenticated("missing mailgun signature object in the body")
    values = []
    for name in ("timestamp", "token", "signature"):
        value = block.get(name)
        if not isinstance(value, str | int) or value == "":
            raise Unauthenticated(f"missing mailgun signature.{name}")
        values.append(str(value))
    return values[0], values[1], values[2]


def parse(raw: bytes, *, received_at: datetime) -> list[Event]:
    check_size(raw)
    body = load_json(raw, PROVIDER)
    data = body.get("event-data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise MalformedInput("mailgun webhook body has no event-data object")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedInput("mailgun event-data has no id")
    classified = _classify(data)
    if classified is None:
        return []
    name, details = classified
    at = plausible_time(_at(data.get("timestamp"), received_at), received_at)
    identity = data.get("user-variables") if isinstance(data.get("user-variables"), dict) else None
    return [
        email_event(PROVIDER, event_id, name, at, email=data.get("recipient"), identity=identity, **details)
    ]


def _classify(data: Mapping[str, Any]) -> tuple[EmailEventName, dict[str, Any]] | None:
    kind = data.get("event")
    if kind == "failed":
        return _failure(data)
    name = EVENT_NAMES.get(str(kind))
    if name is None:
        return None
    if name is EmailEventName.CLICKED:
        return name, {"url": data.get("url")}
    if name is EmailEventName.OPENED:
        user_agent = (data.get("client-info") or {}).get("user-agent")
        return name, {"machine_open": looks_machine_open(user_agent)}
    return name, {}


def _failure(data: Mapping[str, Any]) -> tuple[EmailEventName, dict[str, Any]]:
    if data.get("severity") != "permanent":
        return EmailEventName.DEFERRED, {}
    name, bounce = PERMANENT_FAILURES.get(str(data.get("reason")), (EmailEventName.BOUNCED, "hard"))
    return name, ({"bounce": bounce} if bounce else {})


def _at(value: Any, received_at: datetime) -> datetime:
    if value is None:
        return received_at
    try:
        return unix_time(value, "event-data.timestamp")
    except Unauthenticated:
        raise MalformedInput(f"mailgun event-data.timestamp is not a unix time: {value!r}") from None


def verify_and_parse(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: WebhookSecrets,
    now: datetime,
    remember_token: RememberToken,
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now, remember_token=remember_token)
    return parse(raw, received_at=now)
