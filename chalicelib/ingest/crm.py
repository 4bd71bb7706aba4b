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
- `owner` (text, at most 254 chars): the lead's owner in your CRM, on any action; it wins assignment.
- The action's own fields, exactly as the sales API takes them (chalicelib/commands.py, one set of limits):
  `reason` required for recycle (one of not_ready, no_budget, no_authority, no_need, bad_timing,
  unresponsive, wrong_contact, other), disqualify and lost (text, at most 200 chars); `revisit_in_days`
  for recycle (whole number, 0-730); `amount` for opportunity and won (number, not negative); `note` on any
  action (at most 1000 chars).
- `occurred_at`: ISO 8601 with a time zone; defaults to when Leadloop received the request.
`null` means not given. Unknown fields, and fields the action does not take, are refused. A body that breaks
these rules answers 400 naming each offending field, e.g. `events[0].revisit_in_days: Input should be less
than or equal to 730`. Whether the action is allowed in the lead's current state is decided later by the
lifecycle, not here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib.commands import SALES_ACTIONS, Accept, Command, parse_command
from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import Event, EventKind, external_id, plausible_time
from chalicelib.domain.lifecycle import MAX_OWNER_CHARS
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

PROVIDER = "crm"
SIGNATURE_HEADER = "X-Leadloop-Signature"
MAX_EVENTS = 100


class CrmEvent(BaseModel):
    """The envelope of one CRM event: which lead, what happened, who did it, the CRM's owner and when. The
    action's own fields (reason, note, amount, revisit_in_days) are let through and checked as its command."""

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200)
    lead: str = Field(min_length=1, max_length=320)
    action: Literal["accept", "recycle", "disqualify", "opportunity", "won", "lost"]
    actor: str = Field(min_length=1, max_length=200)
    owner: str | None = Field(default=None, min_length=1, max_length=MAX_OWNER_CHARS)
    occurred_at: datetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _has_time_zone(cls, occurred_at: datetime | None) -> datetime | None:
        if occurred_at is not None and occurred_at.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-11-23T12:00:00Z)")
        return occurred_at


class CrmBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_EVENTS)


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
    parsed, problems = [], []
    for index, raw_event in enumerate(batch.events):
        try:
            parsed.append(_checked(raw_event, index))
        except MalformedInput as error:
            problems.extend(_problems_of(error))
    if problems:  # every problem in the batch at once, so the sender fixes them in one go
        raise MalformedInput("; ".join(problems), details=problems)
    return [_event(item, command, received_at) for item, command in parsed]


def _checked(raw_event: dict[str, Any], index: int) -> tuple[CrmEvent, Command]:
    """The envelope and the typed command of one event, or MalformedInput listing what is wrong in both."""
    problems: list[str] = []
    item: CrmEvent | None = None
    command: Command | None = None
    try:
        item = CrmEvent.model_validate(raw_event)
    except ValidationError as error:
        problems = [
            _problem({**detail, "loc": ("events", index, *detail["loc"])}) for detail in error.errors()
        ]
    action = raw_event.get("action")
    if action in SALES_ACTIONS:
        fields = {key: value for key, value in raw_event.items() if key not in CrmEvent.model_fields}
        if action == Accept.action:
            fields["owner"] = raw_event.get("owner")  # the CRM's owner is who accepted it
        try:
            command = parse_command(str(action), fields, where=f"events[{index}]")
        except MalformedInput as error:
            problems.extend(_problems_of(error))
    if problems or item is None or command is None:
        problems = list(dict.fromkeys(problems))  # an accept's owner is checked as envelope and command
        raise MalformedInput("; ".join(problems), details=problems)
    return item, command


def _problems_of(error: MalformedInput) -> list[str]:
    details = error.details
    return [str(problem) for problem in details] if isinstance(details, list) else [error.message]


def _problem(item: Mapping[str, Any]) -> str:
    location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(
        "."
    )
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def _event(item: CrmEvent, command: Command, received_at: datetime) -> Event:
    by_email = "@" in item.lead
    # The CRM's owner travels on every action: the domain remembers it so that it wins assignment.
    owner = {"owner": item.owner} if item.owner else {}
    properties = {"actor": item.actor, **owner, **command.properties()}
    return Event(
        message_id=external_id(PROVIDER, item.id),
        kind=EventKind.CRM,
        at=plausible_time(item.occurred_at, received_at),
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
