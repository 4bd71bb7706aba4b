"""Values at the edge (issue 11, defects 9 and 11), without AWS: event id namespaces, believable event times,
JSON numbers nothing can hold, lead refs and link tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.tokens import REDIRECT, UNSUBSCRIBE, sign, verify
from chalicelib.domain.events import (
    INTERNAL_ID_PREFIX,
    EmailEventName,
    external_id,
    internal_id,
    plausible_time,
)
from chalicelib.entrypoints.http import MAX_LEAD_REF_CHARS, json_body, lead_ref
from chalicelib.errors import MalformedInput, NotFound
from chalicelib.ingest import crm, json_numbers, segment, segment_request, sendgrid
from chalicelib.ingest.webhooks import email_event

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INTERNAL_KINDS = ("unsubscribe", "click", "api", "merge", "sla")


# --- #9: ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", INTERNAL_KINDS)
def test_no_tracking_message_id_can_equal_an_internal_id(kind: str) -> None:
    internal = internal_id(kind, "L-1")
    for chosen in (f"{kind}:L-1", internal, f"{INTERNAL_ID_PREFIX}{kind}:L-1"):
        message = {"type": "track", "userId": "u1", "event": "E", "messageId": chosen}
        [event] = segment.parse_call("batch", {"batch": [message]}, source="site", received_at=NOW)
        assert event.message_id != internal
        assert not event.message_id.startswith(INTERNAL_ID_PREFIX)


def test_the_same_client_message_id_is_the_same_event_id() -> None:
    message = {"type": "track", "userId": "u1", "event": "E", "messageId": "m-1"}
    first = segment.parse_call("track", message, source="site", received_at=NOW)[0]
    again = segment.parse_call("track", {**message, "event": "Other"}, source="site", received_at=NOW)[0]
    assert first.message_id == again.message_id == "seg:m-1"


def test_a_derived_id_cannot_be_chosen_as_a_message_id() -> None:
    message = {"type": "track", "userId": "u1", "event": "E"}
    derived = segment.parse_call("track", message, source="site", received_at=NOW)[0].message_id
    squat = {**message, "event": "Other", "messageId": derived.partition(":")[2]}
    assert segment.parse_call("track", squat, source="site", received_at=NOW)[0].message_id != derived


def test_webhook_event_ids_stay_in_their_providers_namespace() -> None:
    event = email_event("sendgrid", "unsubscribe:L-1", EmailEventName.UNSUBSCRIBED, NOW, email="a@b.example")
    assert event.message_id == "sendgrid:unsubscribe:L-1"
    body = {"events": [{"id": "ll:unsubscribe:L-1", "lead": "L-1", "action": "accept", "actor": "jane"}]}
    [crm_event] = crm.parse(json.dumps(body).encode(), received_at=NOW)
    assert crm_event.message_id == "crm:ll:unsubscribe:L-1" != internal_id("unsubscribe", "L-1")


@pytest.mark.parametrize("source", ["", "ll", "a:b"])
def test_no_source_may_name_the_internal_namespace(source: str) -> None:
    with pytest.raises(ValueError):
        external_id(source, "x")


# --- #11: event times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), NOW),
        (datetime(1970, 1, 1, tzinfo=UTC), NOW),
        (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), NOW),
        (datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC)),
        (NOW - timedelta(days=400), NOW - timedelta(days=400)),
        (NOW + timedelta(hours=23), NOW + timedelta(hours=23)),
        (NOW + timedelta(days=2), NOW),
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), NOW),
        (None, NOW),
    ],
)
def test_an_implausible_event_time_becomes_the_received_time(at: datetime | None, expected: datetime) -> None:
    assert plausible_time(at, NOW) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"timestamp": "0001-01-01T00:00:00Z"},
        {"timestamp": "0001-01-01T00:00:00+05:00"},
        {"originalTimestamp": "9999-12-31T23:59:59Z"},
        {"timestamp": "2026-11-23T11:00:00Z", "sentAt": "0001-01-01T00:00:00Z"},
    ],
)
def test_a_tracking_call_from_the_ends_of_the_calendar_happened_when_received(fields: dict[str, str]) -> None:
    message = {"type": "track", "userId": "u1", "event": "E", **fields}
    assert segment.parse_call("track", message, source="site", received_at=NOW)[0].at == NOW


def test_a_provider_timestamp_of_zero_is_the_received_time() -> None:
    item = {"event": "delivered", "sg_event_id": "e1", "email": "a@b.example", "timestamp": 0}
    [event] = sendgrid.parse(json.dumps([item]).encode(), received_at=NOW)
    assert event.at == NOW


# --- #11: numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b"9" * 5000, b"-" + b"9" * 101]
)
def test_numbers_nothing_can_hold_are_refused_by_every_reader(text: bytes) -> None:
    raw = b'{"n": ' + text + b"}"
    with pytest.raises(MalformedInput):
        json_numbers.loads(raw)
    with pytest.raises(MalformedInput):
        json_body(raw)
    with pytest.raises(MalformedInput):
        segment_request.decode_body(raw, {})
    with pytest.raises(MalformedInput):
        crm.parse(raw, received_at=NOW)


def test_ordinary_numbers_still_read() -> None:
    big = int("9" * json_numbers.MAX_INTEGER_DIGITS)
    assert json_numbers.loads(f"[1, -2.5, 1e300, 1e-400, {big}]") == [1, -2.5, 1e300, 0.0, big]


# --- #11: lead refs and link tokens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("L-42", "L-42"),
        ("ada%40bigco.example", "ada@bigco.example"),
        ("user%20one", "user one"),
        ("Jos%C3%A9", "José"),
        ("a" * MAX_LEAD_REF_CHARS, "a" * MAX_LEAD_REF_CHARS),
    ],
)
def test_a_lead_ref_is_unquoted(raw: str, expected: str) -> None:
    assert lead_ref(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "%20", "a" * (MAX_LEAD_REF_CHARS + 1), "a%00b", "a%0Ab", "%E2%80%AE", "%FF%FE", "\x7f", "a\u2028b"],
)
def test_an_unreadable_lead_ref_is_malformed(raw: str) -> None:
    with pytest.raises(MalformedInput):
        lead_ref(raw)


@pytest.mark.parametrize("purpose", [UNSUBSCRIBE, REDIRECT])
@pytest.mark.parametrize("token", ["é", "é.é", "abc.dé", "\udcff.x", "a.\x00"])
def test_a_token_that_is_not_ascii_is_not_found(purpose: str, token: str) -> None:
    with pytest.raises(NotFound):
        verify(purpose, token, "secret")


def test_a_genuine_token_still_verifies() -> None:
    assert verify(UNSUBSCRIBE, sign(UNSUBSCRIBE, {"l": "L-1"}, "secret"), "secret") == {"l": "L-1"}
