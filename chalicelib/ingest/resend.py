"""Resend webhooks, delivered by Svix: verifies `svix-signature` (space-separated `v1,<base64>` entries, any
one matching accepts, so secrets can rotate) as HMAC-SHA256 over `{svix-id}.{svix-timestamp}.{raw body}`
with the base64 key after `whsec_`, and turns `email.*` events into normalised email `Event`s keyed by the
svix-id. Leadloop's identity keys arrive in `data.tags`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EmailEventName, Event, plausible_time
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest.headers import header
from chalicelib.ingest.webhooks import (
    check_fresh,
    check_size,
    email_event,
    load_json,
    looks_machine_open,
    parse_iso,
    require_header,
    require_secret,
    same,
    unix_time,
)

PROVIDER = "resend"

# "email.sent" and any other type are skipped.
EVENT_NAMES: Mapping[str, EmailEventName] = {
    "email.delivered": EmailEventName.DELIVERED,
    "email.delivery_delayed": EmailEventName.DEFERRED,
    "email.opened": EmailEventName.OPENED,
    "email.clicked": EmailEventName.CLICKED,
    "email.bounced": EmailEventName.BOUNCED,
    "email.complained": EmailEventName.COMPLAINED,
    "email.failed": EmailEventName.DROPPED,
}


def svix_signature(secret: str, msg_id: str, timestamp: str, raw: bytes) -> str:
    """The `v1,<base64>` entry Svix sends for this message (also used by tests to re-sign fixtures)."""
    signed = f"{msg_id}.{timestamp}.".encode() + raw
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise Unauthenticated("resend webhook secret is not a Svix whsec_ base64 key") from None


def verify(raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime) -> None:
    check_size(raw)
    secret = require_secret(secrets.resend_secret, PROVIDER)
    msg_id = require_header(headers, "svix-id")
    timestamp = require_header(headers, "svix-timestamp")
    given = require_header(headers, "svix-signature")
    check_fresh(unix_time(timestamp, "svix-timestamp header"), now)
    expected = svix_signature(secret, msg_id, timestamp, raw)
    # Compare every entry, even after a match, so the time taken does not reveal which one matched.
    matches = [same(entry, expected) for entry in given.split() if entry.startswith("v1,")]
    if not any(matches):
        raise Unauthenticated("bad signature in svix-signature header")


def parse(raw: bytes, *, received_at: datetime, svix_id: str | None = None) -> list[Event]:
    """`svix_id` (the svix-id header) is the event id; without it, one is made of the email id and type."""
    check_size(raw)
    body = load_json(raw, PROVIDER)
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise MalformedInput("resend webhook body must be an object with a data object")
    name = EVENT_NAMES.get(str(body.get("type")))
    if name is None:
        return []
    data = body["data"]
    event_id = svix_id or f"{data.get('email_id')}:{body.get('type')}"
    stamp = body.get("created_at")
    at = plausible_time(parse_iso(stamp, "resend created_at") if stamp else None, received_at)
    return [
        email_event(
            PROVIDER, event_id, name, at, email=_recipient(data), identity=_tags(data), **_details(name, data)
        )
    ]


def _recipient(data: Mapping[str, Any]) -> str | None:
    to = data.get("to")
    if isinstance(to, list):
        return to[0] if to and isinstance(to[0], str) else None
    return to if isinstance(to, str) else None


def _tags(data: Mapping[str, Any]) -> dict[str, Any] | None:
    tags = data.get("tags")
    if isinstance(tags, dict):
        return tags
    if isinstance(tags, list):  # the sending API's shape: [{"name": ..., "value": ...}]
        return {t["name"]: t.get("value") for t in tags if isinstance(t, dict) and "name" in t}
    return None


def _details(name: EmailEventName, data: Mapping[str, Any]) -> dict[str, Any]:
    if name is EmailEventName.CLICKED:
        return {"url": (data.get("click") or {}).get("link")}
    if name is EmailEventName.OPENED:
        return {"machine_open": looks_machine_open((data.get("open") or {}).get("userAgent"))}
    if name is EmailEventName.BOUNCED:
        return {"bounce": "hard" if (data.get("bounce") or {}).get("type") == "Permanent" else "soft"}
    return {}


def verify_and_parse(
    raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now)
    return parse(raw, received_at=now, svix_id=header(headers, "svix-id"))
