"""Segment-compatible tracking ingest: turn the messages of a tracking call into normalised `Event`s.

Owns the message side of `POST /v1/identify|track|page|screen|group|alias|batch` (and the browser short
forms `/v1/i|t|p|s|g|a|b`): per-message validation and normalisation (ids in the `seg:` namespace, email,
traits, page properties, source attribution from the campaign, UTM parameters and referrer, clock-skew
corrected and plausible time). The request body and write key they arrive in are `segment_request.py`.
Pure: no HTTP framework, no AWS, no clock; the caller passes `received_at`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.events import Event, EventKind, external_id, plausible_time
from chalicelib.errors import MalformedInput, TooLarge
from chalicelib.ingest.attribution import attribution_of
from chalicelib.ingest.segment_request import json_type

MAX_MESSAGE_BYTES = 32 * 1024

CALLS: dict[str, str] = {
    "identify": "identify",
    "i": "identify",
    "track": "track",
    "t": "track",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
    "batch": "batch",
    "b": "batch",
}

_MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
_PAGE_CONTEXT_KEYS = ("url", "path", "title", "referrer", "search")
_MAX_ID_CHARS = 256  # ids become storage keys; a megabyte "userId" is an error, not an identity
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_MAX_EMAIL_CHARS = 254  # RFC 5321 path limit


def _preview(value: Any) -> str:
    """A value quoted in an error, cut short: the message is for a person, not an echo of the payload."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------------------
# Messages


def parse_call(call: str, body: Mapping[str, Any], *, source: str, received_at: datetime) -> list[Event]:
    """Normalised events for one tracking call; `call` is a value of CALLS (the path decides the type)."""
    if call not in _MESSAGE_TYPES and call != "batch":
        raise ValueError(f"unknown tracking call {call!r}; expected a value of CALLS")
    if call != "batch":
        message = _require_object(body, "body")
        return [_parse_message({**message, "type": call}, "body", None, source, received_at)]
    messages = body.get("batch")
    if not isinstance(messages, list) or not messages:
        raise MalformedInput('"batch" must be a non-empty list of messages')
    shared_context = body.get("context") if isinstance(body.get("context"), dict) else None
    batch_sent_at = _optional_time(body, "sentAt", "body")
    events = []
    for index, item in enumerate(messages):
        label = f"batch[{index}]"
        message = _require_object(item, label)
        if shared_context:
            # Segment applies a batch-level context to every message; the message's own keys win.
            message = {**message, "context": {**shared_context, **_object(message, "context", label)}}
        events.append(_parse_message(message, label, batch_sent_at, source, received_at))
    return events


def _parse_message(
    message: Mapping[str, Any], label: str, batch_sent_at: datetime | None, source: str, received_at: datetime
) -> Event:
    _check_size(message, label)
    kind = _kind(message, label)
    anonymous_id = _optional_id(message, "anonymousId", label)
    user_id = _optional_id(message, "userId", label)
    if anonymous_id is None and user_id is None:
        raise _field_error(label, "userId", 'or "anonymousId" is required')
    previous_id = None
    if kind is EventKind.ALIAS:
        _required_id(message, "userId", label)
        previous_id = _required_id(message, "previousId", label)
    context = _object(message, "context", label)
    context_traits = _object(context, "traits", f"{label}.context")
    if kind is EventKind.GROUP:
        # A group call's traits are the account's (name, employees, plan...); context.traits are the
        # person's, and a group call never changes the person: only the account's traits travel.
        traits = dict(_object(message, "traits", label))
    else:
        traits = {**context_traits, **_object(message, "traits", label)}
    properties = _PROPERTIES[kind](message, context, label)
    return Event(
        message_id=_message_id(message, label, source),
        kind=kind,
        at=_event_time(message, label, batch_sent_at, received_at),
        source=source,
        name=_name(message, kind, label),
        anonymous_id=anonymous_id,
        user_id=user_id,
        email=_email(message, kind, context_traits, label),
        previous_id=previous_id,
        crm_id=_crm_id(context_traits if kind is EventKind.GROUP else traits),
        traits=traits,
        properties=properties,
        attribution=attribution_of(kind, context, properties),
    )


# Traits a site can set so CRM webhooks (which only know their own object ids) reach the same prospect.
CRM_ID_TRAITS = {"hubspot_contact_id": "hubspot:contact:", "hubspotContactId": "hubspot:contact:"}


def _crm_id(traits: Mapping[str, Any]) -> str | None:
    for trait, prefix in CRM_ID_TRAITS.items():
        value = traits.get(trait)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return prefix + str(value).strip()
    return None


def _field_error(label: str, field: str, problem: str) -> MalformedInput:
    return MalformedInput(f'{label}: "{field}" {problem}', details={"message": label, "field": field})


def _require_object(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedInput(f"{label}: a message must be a JSON object, got {json_type(value)}")
    return dict(value)


def _check_size(message: Mapping[str, Any], label: str) -> None:
    try:
        size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:  # JSON may spell a lone surrogate ("\ud800"); no text can hold it
        raise MalformedInput(f"{label}: contains an invalid unicode character (a lone surrogate)") from None
    if size > MAX_MESSAGE_BYTES:
        raise TooLarge(
            f"{label}: message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes per message",
            details={"message": label},
        )


def _kind(message: Mapping[str, Any], label: str) -> EventKind:
    kind = message.get("type")
    if kind is None:
        raise _field_error(label, "type", "is required")
    if kind not in _MESSAGE_TYPES:
        raise _field_error(
            label, "type", f"{_preview(kind)} is unknown; expected one of {', '.join(_MESSAGE_TYPES)}"
        )
    return EventKind(kind)


def _object(container: Mapping[str, Any], field: str, label: str) -> dict[str, Any]:
    """A nested object the spec allows to be absent or null; anything else is the client's mistake."""
    value = container.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _field_error(label, field, f"must be an object, got {json_type(value)}")
    return value


def _optional_id(message: Mapping[str, Any], field: str, label: str) -> str | None:
    value = message.get(field)
    if isinstance(value, bool) or (value is not None and not isinstance(value, str | int | float)):
        raise _field_error(label, field, f"must be a string, got {json_type(value)}")
    # Some server libraries send numeric ids; they name the same user as their string form.
    text = str(value).strip() if value is not None else ""
    if len(text) > _MAX_ID_CHARS:
        raise _field_error(label, field, f"is longer than {_MAX_ID_CHARS} characters")
    return text or None


def _required_id(message: Mapping[str, Any], field: str, label: str) -> str:
    value = _optional_id(message, field, label)
    if value is None:
        raise _field_error(label, field, "is required")
    return value


# Tracking message ids live in their own namespaces (domain/events.py): a client's messageId can never equal
# an id Leadloop makes itself (`ll:unsubscribe:<lead>`), nor one derived here for a message that had none.
ID_NAMESPACE = "seg"
DERIVED_ID_NAMESPACE = "seg-derived"


def _message_id(message: Mapping[str, Any], label: str, source: str) -> str:
    given = _optional_id(message, "messageId", label)
    if given:
        return external_id(ID_NAMESPACE, given)
    # A resend of the same message must land on the same id; sentAt is restamped on every attempt.
    stable = {key: value for key, value in message.items() if key != "sentAt"}
    canonical = json.dumps([source, stable], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return external_id(DERIVED_ID_NAMESPACE, hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32])


def _name(message: Mapping[str, Any], kind: EventKind, label: str) -> str:
    if kind is EventKind.TRACK:
        event = message.get("event")
        if not isinstance(event, str) or not event.strip():
            raise _field_error(label, "event", "is required")
        return event.strip()
    if kind in (EventKind.PAGE, EventKind.SCREEN):
        name = message.get("name")
        if name is None:
            name = _object(message, "properties", label).get("name")
        return name.strip() if isinstance(name, str) else ""
    return ""


def _email(
    message: Mapping[str, Any], kind: EventKind, context_traits: Mapping[str, Any], label: str
) -> str | None:
    # Group traits describe the account, not the person, so only identify traits name the person.
    candidates = [context_traits.get("email")]
    if kind is EventKind.IDENTIFY:
        candidates.insert(0, _object(message, "traits", label).get("email"))
    if kind in (EventKind.IDENTIFY, EventKind.TRACK):
        candidates.append(_object(message, "properties", label).get("email"))
    for candidate in candidates:
        email = _plausible_email(candidate)
        if email:
            return email
    return None


def _plausible_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if len(email) > _MAX_EMAIL_CHARS or not _EMAIL.match(email):
        return None
    return email


# ---------------------------------------------------------------------------------------------------------
# Properties by kind


def _message_properties(message: Mapping[str, Any], context: Mapping[str, Any], label: str) -> dict[str, Any]:
    return dict(_object(message, "properties", label))


def _page_properties(message: Mapping[str, Any], context: Mapping[str, Any], label: str) -> dict[str, Any]:
    page = _object(context, "page", f"{label}.context")
    properties = {key: page[key] for key in _PAGE_CONTEXT_KEYS if page.get(key) is not None}
    properties.update(_object(message, "properties", label))
    for key in ("name", "category"):
        if message.get(key) is not None:
            properties[key] = message[key]
    return properties


def _group_properties(message: Mapping[str, Any], context: Mapping[str, Any], label: str) -> dict[str, Any]:
    return {"group_id": _required_id(message, "groupId", label)}


def _no_properties(message: Mapping[str, Any], context: Mapping[str, Any], label: str) -> dict[str, Any]:
    return {}


_PROPERTIES: dict[EventKind, Callable[[Mapping[str, Any], Mapping[str, Any], str], dict[str, Any]]] = {
    EventKind.IDENTIFY: _no_properties,
    EventKind.TRACK: _message_properties,
    EventKind.PAGE: _page_properties,
    EventKind.SCREEN: _page_properties,
    EventKind.GROUP: _group_properties,
    EventKind.ALIAS: _no_properties,
}


# ---------------------------------------------------------------------------------------------------------
# Time


def _event_time(
    message: Mapping[str, Any], label: str, batch_sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Segment's clock-skew correction: the client's clock is trusted for intervals, ours for the instant.
    A result no clock could mean (before 2000, over a day ahead) becomes the received time."""
    timestamp = _optional_time(message, "timestamp", label)
    if timestamp is None:
        timestamp = _optional_time(message, "originalTimestamp", label)
    sent_at = _optional_time(message, "sentAt", label) or batch_sent_at
    if timestamp is None or sent_at is None:
        return plausible_time(timestamp, received_at)
    try:
        return plausible_time(received_at - (sent_at - timestamp), received_at)
    except OverflowError:
        raise _field_error(label, "timestamp", 'is too far from "sentAt" to be a real event time') from None


def _optional_time(container: Mapping[str, Any], field: str, label: str) -> datetime | None:
    value = container.get(field)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _field_error(label, field, f"must be an ISO 8601 date-time, got {_preview(value)}") from None
    # A client that omits the offset is almost always sending UTC; rejecting it would drop real events.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
