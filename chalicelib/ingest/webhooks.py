"""What every provider webhook shares: the secrets they are checked with, case-insensitive header lookup,
the body size limit, the 5-minute replay window, constant-time comparison, and the one constructor that turns
a provider's delivery/engagement record into a normalised email `Event` (identity fallback included).

Provider modules (`sendgrid`, `mailgun`, `postmark`, `ses`, `resend`, `hubspot`, `crm`) stay pure: no clock,
no environment, no AWS; the caller passes `now` and whatever I/O a provider needs (a token memory, a
certificate fetcher).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.events import EmailEventName, Event, EventKind, external_id
from chalicelib.errors import MalformedInput, TooLarge, Unauthenticated
from chalicelib.ingest import json_numbers
from chalicelib.ingest.headers import header

MAX_BODY_BYTES = 1024 * 1024
REPLAY_WINDOW = timedelta(minutes=5)

# Keys Leadloop attaches to every message it sends (SendGrid custom_args, Mailgun user-variables, Postmark
# Metadata, SES message tags, Resend tags) so that provider events find their way back to the prospect.
IDENTITY_KEYS = ("lead_id", "send_id", "template")


def require_secret(value: str | None, provider: str) -> str:
    if not value:
        raise Unauthenticated(f"{provider} webhook is not configured")
    return value


def check_size(raw: bytes) -> None:
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"webhook body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")


def require_header(headers: Mapping[str, str], name: str) -> str:
    value = header(headers, name)
    if not value:
        raise Unauthenticated(f"missing {name} header")
    return value


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality, so a forger learns nothing from how long a refusal took."""
    given_bytes = given.encode() if isinstance(given, str) else given
    expected_bytes = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(given_bytes, expected_bytes)


def unix_time(value: str | int | float, what: str, *, millis: bool = False) -> datetime:
    """A signed timestamp as an aware datetime; a value that is not a number cannot be trusted (401)."""
    try:
        seconds = float(value) / (1000 if millis else 1)
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Unauthenticated(f"{what} is not a unix timestamp: {str(value)[:40]!r}") from None


def check_fresh(signed_at: datetime, now: datetime, *, window: timedelta = REPLAY_WINDOW) -> None:
    """Refuse a signed request made too long ago (a replay) or too far ahead (a skewed or forged clock)."""
    if abs(now - signed_at) > window:
        minutes = int(window.total_seconds() // 60)
        raise Unauthenticated(
            f"request timestamp {signed_at.isoformat()} is outside the {minutes}-minute replay window"
        )


def load_json(raw: bytes | str, provider: str) -> Any:
    try:
        return json_numbers.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedInput(f"{provider} webhook body is not JSON: {error}") from None
    except RecursionError:
        raise MalformedInput(f"{provider} webhook body is nested too deeply") from None


def parse_iso(value: object, what: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (UTC when the provider leaves the zone out)."""
    if not isinstance(value, str):
        raise MalformedInput(f"{what} is not an ISO 8601 timestamp: {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _trim_fraction(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedInput(f"{what} is not an ISO 8601 timestamp: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _trim_fraction(text: str) -> str:
    # .NET-style providers (Postmark) send 7 fractional digits; Python reads at most 6.
    if "." not in text:
        return text
    head, _, rest = text.partition(".")
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}" if digits else text


def looks_machine_open(user_agent: object) -> bool:
    """Apple Mail Privacy Protection prefetches images through a proxy whose user agent is a bare
    "Mozilla/5.0"; a human's mail client always says more."""
    return isinstance(user_agent, str) and user_agent.strip() == "Mozilla/5.0"


def email_event(
    provider: str,
    event_id: str,
    name: EmailEventName,
    at: datetime,
    *,
    email: object,
    identity: Mapping[str, Any] | None = None,
    **properties: Any,
) -> Event:
    """A normalised email event. `identity` is what Leadloop attached when sending (lead_id, send_id,
    template); the recipient email is always kept, lower-cased, so an event without a lead_id still finds
    its prospect."""
    known = {key: str(identity[key]) for key in IDENTITY_KEYS if identity and identity.get(key)}
    props: dict[str, Any] = {"provider": provider}
    for key in ("send_id", "template"):
        if key in known:
            props[key] = known[key]
    props.update({key: value for key, value in properties.items() if value is not None})
    address = email.strip().lower() if isinstance(email, str) and email.strip() else None
    if not address and "lead_id" not in known:
        raise MalformedInput(f"{provider} event {event_id} names neither a recipient nor a lead")
    return Event(
        message_id=external_id(provider, event_id),
        kind=EventKind.EMAIL,
        at=at,
        source=provider,
        name=name.value,
        email=address,
        lead_id=known.get("lead_id"),
        properties=props,
    )
