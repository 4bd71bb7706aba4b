"""Postmark webhooks: Postmark signs nothing, so a call is authenticated by the HTTP Basic credentials set on
the webhook URL; each record (Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange) becomes a
normalised email `Event`. Leadloop's identity keys arrive in `Metadata`. Postmark sends no event id, so the
idempotency key is derived from MessageID, RecordType and the record's own time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EmailEventName, Event, plausible_time
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest.headers import header
from chalicelib.ingest.webhooks import (
    check_size,
    email_event,
    load_json,
    looks_machine_open,
    parse_iso,
    require_secret,
    same,
)

PROVIDER = "postmark"

# RecordType -> (event name, the field holding the record's time, the field holding the recipient).
RECORDS: Mapping[str, tuple[EmailEventName, str, str]] = {
    "Delivery": (EmailEventName.DELIVERED, "DeliveredAt", "Recipient"),
    "Bounce": (EmailEventName.BOUNCED, "BouncedAt", "Email"),
    "SpamComplaint": (EmailEventName.COMPLAINED, "BouncedAt", "Email"),
    "Open": (EmailEventName.OPENED, "ReceivedAt", "Recipient"),
    "Click": (EmailEventName.CLICKED, "ReceivedAt", "Recipient"),
    "SubscriptionChange": (EmailEventName.UNSUBSCRIBED, "ChangedAt", "Recipient"),
}

# Bounce Type values that mean the address is dead; other delivery failures are soft. Bounce records that are
# not delivery failures at all (auto-responders, challenge mails, address-change notices) are skipped.
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
NOT_FAILURES = frozenset(
    {"AutoResponder", "AddressChange", "ChallengeVerification", "OpenRelayTest", "Subscribe"}
)


def verify(raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime) -> None:
    """`now` is unused (Postmark sends no timestamp to bound a replay) but kept for a uniform interface."""
    check_size(raw)
    username = require_secret(secrets.postmark_username, PROVIDER)
    password = require_secret(secrets.postmark_password, PROVIDER)
    given_user, given_password = _basic_credentials(header(headers, "Authorization"))
    # Both comparisons always run, so timing does not tell which half was wrong.
    user_ok = same(given_user, username)
    password_ok = same(given_password, password)
    if not (user_ok and password_ok):
        raise Unauthenticated("bad postmark webhook credentials")


def _basic_credentials(value: str | None) -> tuple[str, str]:
    if not value:
        raise Unauthenticated("missing Authorization header (postmark webhooks use HTTP Basic credentials)")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Unauthenticated("Authorization header is not HTTP Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Authorization header is not valid base64 Basic credentials") from None
    user, separator, password = decoded.partition(":")
    if not separator:
        raise Unauthenticated("Authorization header has no user:password pair")
    return user, password


def parse(raw: bytes, *, received_at: datetime) -> list[Event]:
    check_size(raw)
    record = load_json(raw, PROVIDER)
    if not isinstance(record, dict):
        raise MalformedInput("postmark webhook body must be a JSON object")
    record_type = record.get("RecordType")
    known = RECORDS.get(str(record_type))
    if known is None:
        return []
    name, time_field, recipient_field = known
    details = _details(name, record)
    if details is None:
        return []
    message_id = record.get("MessageID")
    if not isinstance(message_id, str) or not message_id:
        raise MalformedInput(f"postmark {record_type} record has no MessageID")
    stamp = record.get(time_field)
    at = plausible_time(parse_iso(stamp, f"postmark {time_field}") if stamp else None, received_at)
    event_id = f"{message_id}:{record_type}:{stamp or received_at.isoformat()}"
    identity = record.get("Metadata") if isinstance(record.get("Metadata"), dict) else None
    return [
        email_event(
            PROVIDER, event_id, name, at, email=record.get(recipient_field), identity=identity, **details
        )
    ]


def _details(name: EmailEventName, record: Mapping[str, Any]) -> dict[str, Any] | None:
    if name is EmailEventName.BOUNCED:
        kind = record.get("Type")
        if kind in NOT_FAILURES:
            return None
        return {"bounce": "hard" if kind in HARD_BOUNCES else "soft"}
    if name is EmailEventName.CLICKED:
        return {"url": record.get("OriginalLink")}
    if name is EmailEventName.OPENED:
        return {"machine_open": looks_machine_open(record.get("UserAgent"))}
    if name is EmailEventName.UNSUBSCRIBED and not _is_unsubscribe(record):
        return None
    return {}


def _is_unsubscribe(record: Mapping[str, Any]) -> bool:
    # Postmark also reports suppressions caused by bounces and complaints here; their own Bounce and
    # SpamComplaint records already say so. A change with SuppressSending false is a re-subscription.
    return bool(record.get("SuppressSending")) and record.get("SuppressionReason") == "ManualSuppression"


def verify_and_parse(
    raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now)
    return parse(raw, received_at=now)
