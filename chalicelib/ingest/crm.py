"""Generic CRM webhook (`POST /webhooks/crm`): any CRM or script reports sales actions on Leadloop leads.

Signing (Stripe-style). Send the header
`X-Leadloop-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>`, computed over the
exact bytes sent. Several `v1=` entries may be given (one per secret while rotating); any match accepts. A
request whose `t` is more than 5 minutes from Leadloop's clock is refused, so sign when sending. Missing or
bad signatures answer 401.

Body (JSON, at most 1 MB, 1 to 100 events):
`{"events": [{"id": "crm-evt-1", "lead": "L-42" | "jane@example.com", "action": "accept", "actor": "jane.doe",
"reason": null, "note": null, "owner": null, "amount": null, "revisit_in_days": null,
"occurred_at": "2026-11-23T12:00:00Z"}]}`
- `id` (required, 1-200 chars): your unique id for the event; a resent id is applied once.
- `lead` (required): a Leadloop lead id, or the lead's email address (anything containing "@").
- `action` (required): one of accept, recycle, disqualify, opportunity, won, lost.
- `actor` (required): who did it, as your CRM names them; kept in the lead's history.
- `reason`: required for recycle (one of not_ready, no_budget, no_authority, no_need, bad_timing,
  unresponsive, wrong_contact, other) and for disqualify (free text); optional for lost.
- `note`, `owner` (text), `amount` (number, not negative), `revisit_in_days` (whole number, 0-3650).
- `occurred_at`: ISO 8601 with a time zone; defaults to when Leadloop received the request.
Unknown fields are refused. A body that breaks these rules answers 400 naming each offending field, e.g.
`events[0].action: Input should be 'accept', 'recycle', ...`. Whether the action is allowed in the lead's
current state is decided later by the lifecycle, not here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import RECYCLE_REASONS
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest.webhooks import (
    WebhookSecrets,
    check_fresh,
    check_size,
    load_json,
    require_header,
    require_secret,
    same,
    unix_time,
)

PROVIDER = "crm"
SIGNATURE_HEADER = "X-Leadloop-Signature"
MAX_EVENTS = 100


class CrmEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    lead: str = Field(min_length=1, max_length=320)
    action: Literal["accept", "recycle", "disqualify", "opportunity", "won", "lost"]
    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=500, validate_default=True)
    note: str | None = Field(default=None, max_length=5000)
    owner: str | None = Field(default=None, max_length=200)
    amount: float | None = Field(default=None, ge=0)
    revisit_in_days: int | None = Field(default=None, ge=0, le=3650)
    occurred_at: datetime | None = None

    @field_validator("reason")
    @classmethod
    def _reason_fits_action(cls, reason: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action == "recycle" and reason not in RECYCLE_REASONS:
            raise ValueError(f"recycle needs a reason, one of {', '.join(RECYCLE_REASONS)}")
        if action == "disqualify" and not reason:
            raise ValueError("disqualify needs a reason")
        return reason

    @field_validator("occurred_at")
    @classmethod
    def _has_time_zone(cls, occurred_at: datetime | None) -> datetime | None:
        if occurred_at is not None and occurred_at.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-11-23T12:00:00Z)")
        return occurred_at


class CrmBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[CrmEvent] = Field(min_length=1, max_length=MAX_EVENTS)


def sign_crm_payload(secret: str, raw: bytes, timestamp: int) -> str:
    """The X-Leadloop-Signature header value for `raw` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, str(timestamp), raw)}"


def _digest(secret: str, timestamp: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def verify(raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime) -> None:
    check_size(raw)
    secret = require_secret(secrets.crm_secret, PROVIDER)
    timestamp, candidates = _signature_parts(require_header(headers, SIGNATURE_HEADER))
    check_fresh(unix_time(timestamp, f"{SIGNATURE_HEADER} t="), now)
    expected = _digest(secret, timestamp, raw)
    matches = [same(candidate.lower(), expected) for candidate in candidates]
    if not any(matches):
        raise Unauthenticated(f"bad signature in {SIGNATURE_HEADER} header")


def _signature_parts(value: str) -> tuple[str, list[str]]:
    timestamp, candidates = None, []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            timestamp = item
        elif key == "v1":
            candidates.append(item)
    if not timestamp or not candidates:
        raise Unauthenticated(f"{SIGNATURE_HEADER} header must be t=<unix seconds>,v1=<hex hmac>")
    return timestamp, candidates


def parse(raw: bytes, *, received_at: datetime) -> list[Event]:
    check_size(raw)
    body = load_json(raw, PROVIDER)
    try:
        batch = CrmBatch.model_validate(body)
    except ValidationError as error:
        problems = [_problem(item) for item in error.errors()]
        raise MalformedInput("; ".join(problems), details=problems) from None
    return [_event(item, received_at) for item in batch.events]


def _problem(item: Mapping[str, Any]) -> str:
    location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(
        "."
    )
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def _event(item: CrmEvent, received_at: datetime) -> Event:
    by_email = "@" in item.lead
    properties = {
        key: value
        for key, value in item.model_dump(
            include={"actor", "reason", "note", "owner", "amount", "revisit_in_days"}
        ).items()
        if value is not None
    }
    return Event(
        message_id=f"{PROVIDER}:{item.id}",
        kind=EventKind.CRM,
        at=item.occurred_at or received_at,
        source=PROVIDER,
        name=item.action,
        email=item.lead.lower() if by_email else None,
        lead_id=None if by_email else item.lead,
        properties=properties,
    )


def verify_and_parse(
    raw: bytes, headers: Mapping[str, str], *, secrets: WebhookSecrets, now: datetime
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now)
    return parse(raw, received_at=now)
