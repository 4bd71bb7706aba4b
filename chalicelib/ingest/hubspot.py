"""HubSpot CRM webhooks: verifies `X-HubSpot-Signature-v3` (base64 HMAC-SHA256 with the app's client secret
over method + public URL + raw body + `X-HubSpot-Request-Timestamp`, milliseconds, 5-minute window) and turns
contact lifecycle-stage and deal-stage changes into CRM `Event`s named by the Leadloop lifecycle trigger they
mean ("" when the change is only informational). Other subscription types are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.commands import COMMANDS, parse_command
from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import Event, EventKind, plausible_time
from chalicelib.domain.lifecycle import MAX_REASON_CHARS
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest.webhooks import (
    check_fresh,
    check_size,
    load_json,
    require_header,
    require_secret,
    same,
    unix_time,
)

PROVIDER = "hubspot"
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"

# HubSpot stage -> Leadloop lifecycle trigger. Stages not listed (subscriber, lead, marketingqualifiedlead,
# evangelist, other; open deal stages such as appointmentscheduled or contractsent) are informational: the
# event is kept with name "" so the change shows in the lead's history without moving its state.
LIFECYCLE_STAGE_TRIGGERS: Mapping[str, str] = {
    "salesqualifiedlead": "accept",
    "opportunity": "opportunity",
    "customer": "won",
}
DEAL_STAGE_TRIGGERS: Mapping[str, str] = {
    "closedwon": "won",
    "closedlost": "lost",
}
# HubSpot's lead status is where sales marks a contact as not a fit.
LEAD_STATUS_TRIGGERS: Mapping[str, str] = {
    "UNQUALIFIED": "disqualify",
}
# (subscriptionType, propertyName) -> (crm object, mapping table)
TRACKED_PROPERTIES: Mapping[tuple[str, str], tuple[str, Mapping[str, str]]] = {
    ("contact.propertyChange", "lifecyclestage"): ("contact", LIFECYCLE_STAGE_TRIGGERS),
    ("contact.propertyChange", "hs_lead_status"): ("contact", LEAD_STATUS_TRIGGERS),
    ("deal.propertyChange", "dealstage"): ("deal", DEAL_STAGE_TRIGGERS),
}

# HubSpot signs the URI with these characters decoded (its documented list); everything else stays encoded.
_URI_DECODES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def signature_v3(client_secret: str, method: str, url: str, raw: bytes, timestamp_ms: str) -> str:
    signed = f"{method.upper()}{_signed_uri(url)}".encode() + raw + timestamp_ms.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), signed, hashlib.sha256).digest()).decode()


def _signed_uri(url: str) -> str:
    for encoded, plain in _URI_DECODES.items():
        url = url.replace(encoded, plain).replace(encoded.lower(), plain)
    return url


def verify(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: WebhookSecrets,
    now: datetime,
    method: str,
    url: str,
) -> None:
    """`url` is the full public URL HubSpot called (scheme, host, path, query), as the caller rebuilds it."""
    check_size(raw)
    secret = require_secret(secrets.hubspot_client_secret, PROVIDER)
    given = require_header(headers, SIGNATURE_HEADER)
    timestamp = require_header(headers, TIMESTAMP_HEADER)
    check_fresh(unix_time(timestamp, f"{TIMESTAMP_HEADER} header", millis=True), now)
    if not same(given.strip(), signature_v3(secret, method, url, raw, timestamp)):
        raise Unauthenticated(f"bad signature in {SIGNATURE_HEADER} header")


def parse(raw: bytes, *, received_at: datetime) -> list[Event]:
    check_size(raw)
    batch = load_json(raw, PROVIDER)
    if not isinstance(batch, list):
        raise MalformedInput("hubspot webhook body must be a JSON array of events")
    events = []
    for index, item in enumerate(batch):
        if not isinstance(item, dict):
            raise MalformedInput(f"hubspot event {index} is not a JSON object")
        event = _event(item, index, received_at)
        if event is not None:
            events.append(event)
    return events


def _event(item: Mapping[str, Any], index: int, received_at: datetime) -> Event | None:
    tracked = TRACKED_PROPERTIES.get((str(item.get("subscriptionType")), str(item.get("propertyName"))))
    if tracked is None:
        return None
    crm_object, triggers = tracked
    event_id, object_id = item.get("eventId"), item.get("objectId")
    if event_id is None or object_id is None:
        raise MalformedInput(f"hubspot event {index} needs eventId and objectId")
    value = str(item.get("propertyValue") or "")[:MAX_REASON_CHARS]  # kept in history: bounded
    trigger = triggers.get(value, "")
    # The CRM's own field and value say why; a command that takes a reason (disqualify, lost) gets it as one.
    why = f"hubspot {item['propertyName']} = {value}"[:MAX_REASON_CHARS]
    command: dict[str, Any] = {}
    if trigger:
        takes_reason = "reason" in COMMANDS[trigger].model_fields
        command = parse_command(
            trigger, {"reason": why} if takes_reason else {}, where=f"[{index}]"
        ).properties()
    return Event(
        message_id=f"{PROVIDER}:{event_id}",
        kind=EventKind.CRM,
        at=_at(item.get("occurredAt"), index, received_at),
        source=PROVIDER,
        name=trigger,
        crm_id=f"{PROVIDER}:{crm_object}:{object_id}",
        properties={
            "crm_property": item["propertyName"],
            "crm_value": value,
            "actor": item.get("sourceId"),
            "reason": why,
            **command,
        },
    )


def _at(value: Any, index: int, received_at: datetime) -> datetime:
    if value is None:
        return received_at
    try:
        return plausible_time(unix_time(value, "occurredAt", millis=True), received_at)
    except Unauthenticated:
        raise MalformedInput(
            f"hubspot event {index} occurredAt is not a unix time in ms: {value!r}"
        ) from None


def verify_and_parse(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: WebhookSecrets,
    now: datetime,
    method: str,
    url: str,
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now, method=method, url=url)
    return parse(raw, received_at=now)
