"""Segment-compatible ingest: real client captures end to end, then limits, errors and normalisation rules."""

from __future__ import annotations

import base64
import gzip
import json
import re
import tracemalloc
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.events import Event, EventKind, event_from_wire, event_to_wire
from chalicelib.errors import MalformedInput, TooLarge
from chalicelib.ingest.segment import CALLS, MAX_MESSAGE_BYTES, parse_call
from chalicelib.ingest.segment_request import MAX_REQUEST_BYTES, decode_body, write_key_from
from tests.conftest import FIXTURES

CAPTURE_DIR = FIXTURES / "tracking-clients"
CAPTURES = sorted(CAPTURE_DIR.rglob("*.json"))
SOURCE = "website"


def _capture_id(path: Path) -> str:
    return str(path.relative_to(CAPTURE_DIR))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _ingest(capture: dict[str, Any]) -> tuple[dict[str, Any], str | None, list[Event]]:
    """What the HTTP layer does with a request: decode, find the write key, parse the call."""
    headers = dict(capture["headers"])
    raw = base64.b64decode(capture["wire_body_b64"])
    call = CALLS[capture["path"].rsplit("/", 1)[-1]]
    received_at = datetime.fromisoformat(capture["received_at"])
    body = decode_body(raw, headers)
    return body, write_key_from(headers, body), parse_call(call, body, source=SOURCE, received_at=received_at)


def _client(path: Path) -> str:
    return {"ajs": "browser", "rud": "rudder", "seg": "segment"}[path.name[:3]]


# ---------------------------------------------------------------------------------------------------------
# Real captures


def test_every_client_capture_is_present(fixtures_dir: Path) -> None:
    # Guards the parametrised tests below against silently running on an empty directory.
    assert len(CAPTURES) >= 30
    assert {_client(path) for path in CAPTURES} == {"browser", "rudder", "segment"}


@pytest.mark.parametrize("path", CAPTURES, ids=_capture_id)
def test_capture_decodes_to_what_the_client_sent(path: Path) -> None:
    capture = _load(path)
    body, write_key, events = _ingest(capture)

    assert body == capture["body_json"]
    assert write_key == capture["basic_auth_decoded"].split(":")[0]
    messages = body.get("batch", [body])
    # The client's own id, in the namespace only tracking clients write (never an internal `ll:` id).
    assert [event.message_id for event in events] == [f"seg:{message['messageId']}" for message in messages]
    assert [event.kind.value for event in events] == [message["type"] for message in messages]
    assert {event.source for event in events} == {SOURCE}


@pytest.mark.parametrize("path", CAPTURES, ids=_capture_id)
def test_capture_events_are_normalised(path: Path) -> None:
    capture = _load(path)
    _, _, events = _ingest(capture)
    received_at = datetime.fromisoformat(capture["received_at"])
    client = _client(path)

    for event in events:
        assert event.at.tzinfo is not None
        assert event.user_id == "user-123" or event.anonymous_id is not None
        assert event_from_wire(json.loads(json.dumps(event_to_wire(event)))) == event
        _EXPECTED[event.kind](event, client, received_at)


def _identify(event: Event, client: str, received_at: datetime) -> None:
    assert event.email == "lead@example.com"
    assert event.user_id == "user-123"
    assert event.traits["firstName"] == "Ada"
    if client != "browser":
        # Rudder sends identify traits under context.traits only; Segment's Python client at the top.
        assert event.traits["plan"] == "trial"
        assert event.anonymous_id == "anon-abc"


def _track(event: Event, client: str, received_at: datetime) -> None:
    assert event.name == "Demo Requested"
    assert dict(event.properties) == {"source": "pricing-page", "value": 42.5}
    if client == "browser":
        assert abs(event.at - received_at) < timedelta(seconds=2)
    else:
        # The server clients backdate this event to 2024: skew correction must keep it in the past.
        assert event.at.year == 2024
        assert event.at.date() == datetime(2024, 5, 1).date()


def _page(event: Event, client: str, received_at: datetime) -> None:
    assert event.name == "Pricing"
    assert event.properties["path"] == "/pricing"
    assert event.properties["category"] == "Docs"
    if client == "browser":
        assert event.properties["url"] == (
            "https://www.example.com/pricing?utm_source=google&utm_campaign=spring"
        )
        assert event.properties["title"] == "Pricing"
        assert event.properties["search"] == "?utm_source=google&utm_campaign=spring"
    else:
        assert event.properties["url"] == "https://example.com/pricing"
        assert event.properties["referrer"] == "https://google.com/"


def _screen(event: Event, client: str, received_at: datetime) -> None:
    assert event.name == "Home"
    assert event.user_id == "user-123"


def _alias(event: Event, client: str, received_at: datetime) -> None:
    assert event.previous_id == "anon-abc"
    assert event.user_id == "user-123"


def _group(event: Event, client: str, received_at: datetime) -> None:
    assert event.traits["name"] == "Acme"
    assert event.properties["group_id"] == "acct-9"
    assert event.email is None


_EXPECTED = {
    EventKind.IDENTIFY: _identify,
    EventKind.TRACK: _track,
    EventKind.PAGE: _page,
    EventKind.SCREEN: _screen,
    EventKind.ALIAS: _alias,
    EventKind.GROUP: _group,
}


def test_retried_requests_carry_the_same_message_ids() -> None:
    attempts: dict[str, list[list[str]]] = defaultdict(list)
    for path in sorted((CAPTURE_DIR / "retry").glob("*.json")):
        _, _, events = _ingest(_load(path))
        attempts[re.sub(r"-\d+$", "", path.stem)].append([event.message_id for event in events])

    resent = {scenario: ids for scenario, ids in attempts.items() if len(ids) > 1}
    assert len(resent) >= 3
    for scenario, ids in resent.items():
        assert all(attempt == ids[0] for attempt in ids), scenario


# ---------------------------------------------------------------------------------------------------------
# decode_body


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_text_plain_body_is_parsed_as_json() -> None:
    body = decode_body(b'{"userId": "u1", "event": "Signed Up"}', {"Content-Type": "text/plain"})
    assert body == {"userId": "u1", "event": "Signed Up"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Encoding": "gzip"},
        {"content-encoding": "gzip"},
        {"CONTENT-ENCODING": "GZIP"},
        {"Content-Encoding": "x-gzip"},
        {},  # no header: recognised by the gzip magic bytes
    ],
    ids=["canonical", "lower", "upper", "x-gzip", "sniffed"],
)
def test_gzip_body_is_inflated_whatever_the_header_case(headers: dict[str, str]) -> None:
    assert decode_body(gzip.compress(b'{"userId": "u1"}'), headers) == {"userId": "u1"}


def test_body_already_inflated_by_a_proxy_is_still_read() -> None:
    assert decode_body(b'{"userId": "u1"}', {"Content-Encoding": "gzip"}) == {"userId": "u1"}


def test_body_of_exactly_the_request_limit_is_accepted() -> None:
    prefix, suffix = b'{"pad": "', b'"}'
    raw = prefix + b"x" * (MAX_REQUEST_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(raw) == MAX_REQUEST_BYTES
    assert decode_body(raw, {})["pad"].startswith("x")


def _big_json(size: int) -> bytes:
    return _json({"pad": "x" * size})


def _multi_member_gzip() -> bytes:
    # Two gzip members, each under the limit, together over it.
    half = b" " * (MAX_REQUEST_BYTES // 2 + 10)
    return gzip.compress(b'{"pad": "' + half) + gzip.compress(half + b'"}')


@pytest.mark.parametrize(
    ("raw", "headers", "expected"),
    [
        (_big_json(MAX_REQUEST_BYTES), {}, "request body is 512011 bytes; the limit is 512000 bytes"),
        (gzip.compress(_big_json(MAX_REQUEST_BYTES)), {"Content-Encoding": "gzip"}, "inflates to more"),
        (_multi_member_gzip(), {"Content-Encoding": "gzip"}, "inflates to more"),
    ],
    ids=["wire", "inflated", "multi-member"],
)
def test_oversize_request_is_refused_with_413(raw: bytes, headers: dict[str, str], expected: str) -> None:
    with pytest.raises(TooLarge, match=expected) as caught:
        decode_body(raw, headers)
    assert caught.value.status == 413


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"[" + b" " * 30_000_000 + b"]", compresslevel=9)
    assert len(bomb) < MAX_REQUEST_BYTES  # small on the wire: only the inflated size can catch it

    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="inflates to more than the 512000 byte limit"):
            decode_body(bomb, {"Content-Encoding": "gzip"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflating the whole bomb would hold 30 MB; a Lambda must stay near the request limit instead.
    assert peak < 4 * MAX_REQUEST_BYTES


@pytest.mark.parametrize(
    ("raw", "headers", "expected"),
    [
        (b"", {}, "request body is empty"),
        (b"  \n", {}, "request body is empty"),
        (b'{"userId": "u1",', {}, "request body is not valid JSON: Expecting property name"),
        (b"[1, 2]", {}, "must be a JSON object, got an array"),
        (b'"identify"', {}, "must be a JSON object, got a string"),
        (b"42", {}, "must be a JSON object, got a number"),
        (b"null", {}, "must be a JSON object, got null"),
        (b'{"value": NaN}', {}, "NaN is not a JSON number"),
        (b'{"name": "\xc3\x28"}', {}, "not UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, {}, "nested too deeply"),
        (gzip.compress(b'{"userId": "u1"}')[:-12], {}, "truncated gzip"),
        (b"\x1f\x8bnot really gzip", {}, "not valid gzip data"),
        (b"hello", {"Content-Encoding": "gzip"}, "Content-Encoding is gzip but the body is not gzip data"),
        (b'{"userId": "u1"}', {"Content-Encoding": "br"}, "'br' is not supported"),
    ],
    ids=[
        "empty",
        "blank",
        "broken-json",
        "array",
        "string",
        "number",
        "null",
        "nan",
        "not-utf8",
        "deep",
        "truncated-gzip",
        "bad-gzip",
        "declared-gzip",
        "brotli",
    ],
)
def test_malformed_body_is_refused_with_400(raw: bytes, headers: dict[str, str], expected: str) -> None:
    with pytest.raises(MalformedInput, match=re.escape(expected)) as caught:
        decode_body(raw, headers)
    assert caught.value.status == 400


# ---------------------------------------------------------------------------------------------------------
# write_key_from


def _basic(credentials: str, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(credentials.encode()).decode()}"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Authorization": _basic("wk_live:")}, {}, "wk_live"),
        ({"authorization": _basic("wk_live:")}, {}, "wk_live"),
        ({"AUTHORIZATION": _basic("wk_live:", scheme="basic")}, {}, "wk_live"),
        ({"Authorization": _basic("wk_live:ignored-password")}, {}, "wk_live"),
        ({"Authorization": _basic("wk_header:")}, {"writeKey": "wk_body"}, "wk_header"),
        ({}, {"writeKey": "wk_body"}, "wk_body"),
        ({"Authorization": "Bearer abc"}, {"writeKey": "wk_body"}, "wk_body"),
        ({"Authorization": "Basic %%%not-base64"}, {"writeKey": "wk_body"}, "wk_body"),
        ({"Authorization": _basic(":password-only")}, {"writeKey": "wk_body"}, "wk_body"),
        ({}, {}, None),
        ({}, {"writeKey": ""}, None),
        ({}, {"writeKey": 42}, None),
    ],
    ids=[
        "basic",
        "lower-header",
        "upper-header-lower-scheme",
        "password-ignored",
        "header-wins",
        "body",
        "bearer-falls-back",
        "garbage-falls-back",
        "empty-username",
        "neither",
        "empty-body-key",
        "non-string-body-key",
    ],
)
def test_write_key(headers: dict[str, str], body: dict[str, Any], expected: str | None) -> None:
    assert write_key_from(headers, body) == expected


# ---------------------------------------------------------------------------------------------------------
# parse_call: calls and validation


def test_short_forms_name_the_same_calls() -> None:
    assert {short: CALLS[short] for short in "itpsgab"} == {
        "i": "identify",
        "t": "track",
        "p": "page",
        "s": "screen",
        "g": "group",
        "a": "alias",
        "b": "batch",
    }
    assert all(CALLS[long] == long for long in CALLS.values())


def test_single_call_takes_its_type_from_the_path(now: datetime) -> None:
    [event] = parse_call("track", {"userId": "u1", "event": "Signed Up"}, source=SOURCE, received_at=now)
    assert (event.kind, event.name, event.user_id, event.at) == (EventKind.TRACK, "Signed Up", "u1", now)


def test_unknown_call_is_a_programming_error(now: datetime) -> None:
    with pytest.raises(ValueError, match="unknown tracking call"):
        parse_call("purchase", {"userId": "u1"}, source=SOURCE, received_at=now)


_TRACK = {"type": "track", "userId": "u1", "event": "Signed Up"}


@pytest.mark.parametrize(
    ("call", "body", "expected"),
    [
        ("batch", {}, '"batch" must be a non-empty list of messages'),
        ("batch", {"batch": []}, '"batch" must be a non-empty list of messages'),
        ("batch", {"batch": _TRACK}, '"batch" must be a non-empty list of messages'),
        ("batch", {"batch": [_TRACK, "track"]}, "batch[1]: a message must be a JSON object, got a string"),
        (
            "batch",
            {"batch": [_TRACK, _TRACK, _TRACK, {"type": "track", "event": "Signed Up"}]},
            'batch[3]: "userId" or "anonymousId" is required',
        ),
        (
            "batch",
            {"batch": [{"type": "track", "event": "E", "userId": None, "anonymousId": ""}]},
            'batch[0]: "userId" or "anonymousId" is required',
        ),
        ("identify", {"traits": {"email": "a@b.co"}}, 'body: "userId" or "anonymousId" is required'),
        ("batch", {"batch": [{"userId": "u1"}]}, 'batch[0]: "type" is required'),
        (
            "batch",
            {"batch": [{"type": "purchase", "userId": "u1"}]},
            'batch[0]: "type" "purchase" is unknown',
        ),
        ("batch", {"batch": [{"type": "batch", "userId": "u1"}]}, 'batch[0]: "type" "batch" is unknown'),
        ("track", {"userId": "u1"}, 'body: "event" is required'),
        ("batch", {"batch": [{**_TRACK, "event": "  "}]}, 'batch[0]: "event" is required'),
        ("alias", {"userId": "u1"}, 'body: "previousId" is required'),
        ("alias", {"anonymousId": "a1", "previousId": "p1"}, 'body: "userId" is required'),
        ("group", {"userId": "u1", "traits": {"name": "Acme"}}, 'body: "groupId" is required'),
        ("identify", {"userId": {"id": 1}}, 'body: "userId" must be a string, got an object'),
        ("identify", {"userId": "u" * 300}, 'body: "userId" is longer than 256 characters'),
        ("identify", {"userId": "u1", "traits": ["a"]}, 'body: "traits" must be an object, got an array'),
        ("track", {**_TRACK, "properties": "x"}, 'body: "properties" must be an object, got a string'),
        ("identify", {"userId": "u1", "context": {"traits": 1}}, 'body.context: "traits" must be an object'),
        (
            "identify",
            {"userId": "u1", "timestamp": "yesterday"},
            'body: "timestamp" must be an ISO 8601 date-time, got "yesterday"',
        ),
        (
            "track",
            {**_TRACK, "sentAt": 1700000000},
            'body: "sentAt" must be an ISO 8601 date-time, got 1700000000',
        ),
        ("batch", {"batch": [_TRACK], "sentAt": "soon"}, 'body: "sentAt" must be an ISO 8601 date-time'),
        (
            "track",
            {**_TRACK, "timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"},
            'body: "timestamp" is too far from "sentAt"',
        ),
        (
            "batch",
            {"batch": [_TRACK, {**_TRACK, "originalTimestamp": "2026-13-45"}]},
            'batch[1]: "originalTimestamp" must be an ISO 8601 date-time',
        ),
    ],
    ids=lambda value: None if not isinstance(value, str) or len(value) > 40 else value,
)
def test_invalid_message_is_refused_with_400(
    call: str, body: dict[str, Any], expected: str, now: datetime
) -> None:
    with pytest.raises(MalformedInput) as caught:
        parse_call(call, body, source=SOURCE, received_at=now)
    assert expected in caught.value.message
    assert caught.value.status == 400


def test_oversize_message_is_refused_with_413_naming_its_index(now: datetime) -> None:
    fits = {**_TRACK, "properties": {"blob": "x" * (MAX_MESSAGE_BYTES - 200)}}
    too_big = {**_TRACK, "properties": {"blob": "x" * MAX_MESSAGE_BYTES}}
    assert len(parse_call("batch", {"batch": [fits]}, source=SOURCE, received_at=now)) == 1

    with pytest.raises(TooLarge, match=r"batch\[1\]: message is \d+ bytes; the limit is 32768") as caught:
        parse_call("batch", {"batch": [fits, too_big]}, source=SOURCE, received_at=now)
    assert caught.value.status == 413


def test_oversize_single_call_is_refused_with_413(now: datetime) -> None:
    with pytest.raises(TooLarge, match="body: message is"):
        parse_call(
            "identify", {"userId": "u1", "traits": {"bio": "é" * 20_000}}, source=SOURCE, received_at=now
        )


# ---------------------------------------------------------------------------------------------------------
# parse_call: normalisation


def _one(call: str, message: dict[str, Any], now: datetime) -> Event:
    [event] = parse_call(call, message, source=SOURCE, received_at=now)
    return event


@pytest.mark.parametrize(
    ("call", "message", "expected"),
    [
        ("identify", {"traits": {"email": "  Lead@Example.COM "}}, "lead@example.com"),
        ("identify", {"context": {"traits": {"email": "Ctx@Example.com"}}}, "ctx@example.com"),
        (
            "identify",
            {"traits": {"email": "top@example.com"}, "context": {"traits": {"email": "ctx@example.com"}}},
            "top@example.com",
        ),
        (
            "identify",
            {"traits": {"email": "not-an-email"}, "context": {"traits": {"email": "ctx@example.com"}}},
            "ctx@example.com",
        ),
        ("identify", {"traits": {"email": "ada@localhost"}}, None),
        ("identify", {"traits": {"email": 42}}, None),
        ("identify", {"traits": {"firstName": "Ada"}}, None),
        (
            "track",
            {"event": "Form Submitted", "properties": {"email": "Form@Example.com"}},
            "form@example.com",
        ),
        (
            "track",
            {
                "event": "E",
                "properties": {"email": "p@example.com"},
                "context": {"traits": {"email": "c@example.com"}},
            },
            "c@example.com",
        ),
        ("page", {"properties": {"email": "p@example.com"}}, None),
        ("group", {"groupId": "acct-9", "traits": {"email": "billing@acme.com"}}, None),
    ],
    ids=[
        "traits",
        "context-traits",
        "traits-win",
        "implausible-skipped",
        "no-dot-domain",
        "not-a-string",
        "absent",
        "track-properties",
        "context-over-properties",
        "page-properties-ignored",
        "group-traits-are-the-account",
    ],
)
def test_email_is_found_and_normalised(
    call: str, message: dict[str, Any], expected: str | None, now: datetime
) -> None:
    assert _one(call, {"userId": "u1", **message}, now).email == expected


def test_identify_traits_are_merged_over_context_traits(now: datetime) -> None:
    event = _one(
        "identify",
        {
            "userId": "u1",
            "traits": {"firstName": "Ada", "title": "CTO"},
            "context": {"traits": {"firstName": "A.", "plan": "trial"}},
        },
        now,
    )
    assert dict(event.traits) == {"firstName": "Ada", "title": "CTO", "plan": "trial"}


def test_page_properties_combine_context_page_and_the_call(now: datetime) -> None:
    event = _one(
        "page",
        {
            "anonymousId": "a1",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"title": "Pricing | Acme", "plan": "team"},
            "context": {
                "page": {
                    "url": "https://acme.test/pricing?x=1",
                    "path": "/pricing",
                    "title": "old title",
                    "referrer": "https://search.test/",
                    "search": "?x=1",
                    "width": 1024,
                }
            },
        },
        now,
    )
    assert event.name == "Pricing"
    assert dict(event.properties) == {
        "url": "https://acme.test/pricing?x=1",
        "path": "/pricing",
        "title": "Pricing | Acme",
        "referrer": "https://search.test/",
        "search": "?x=1",
        "plan": "team",
        "name": "Pricing",
        "category": "Docs",
    }


def test_page_without_a_name_falls_back_to_its_properties(now: datetime) -> None:
    assert _one("page", {"anonymousId": "a1", "properties": {"name": "Docs"}}, now).name == "Docs"
    assert _one("screen", {"anonymousId": "a1"}, now).name == ""


def test_batch_level_context_applies_to_every_message(now: datetime) -> None:
    body = {
        "context": {"page": {"url": "https://acme.test/", "path": "/"}},
        "batch": [
            {"type": "page", "anonymousId": "a1"},
            {"type": "page", "anonymousId": "a1", "context": {"page": {"path": "/own"}}},
        ],
    }
    first, second = parse_call("batch", body, source=SOURCE, received_at=now)
    assert first.properties["path"] == "/"
    assert second.properties["path"] == "/own"


def test_numeric_ids_are_kept_as_strings(now: datetime) -> None:
    event = _one("track", {"userId": 1234, "event": "E", "messageId": 99}, now)
    assert (event.user_id, event.message_id) == ("1234", "seg:99")


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "expected"),
    [
        # The client clock runs 2h slow: the event happened 30 s before it was sent, i.e. 30 s before now.
        ("2026-11-23T10:00:00Z", "2026-11-23T10:00:30Z", datetime(2026, 11, 23, 11, 59, 30, tzinfo=UTC)),
        # The client clock runs 1h fast and is in another zone.
        (
            "2026-11-23T15:00:00+02:00",
            "2026-11-23T15:00:05.5+02:00",
            datetime(2026, 11, 23, 11, 59, 54, 500000, tzinfo=UTC),
        ),
        ("2026-11-23T12:00:00+02:00", None, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("2026-11-23T09:15:00.123456789Z", None, datetime(2026, 11, 23, 9, 15, 0, 123456, tzinfo=UTC)),
        ("2026-11-23T08:00:00", None, datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        (None, "2026-11-23T10:00:30Z", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        (None, None, datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
    ],
    ids=["skew-slow", "skew-fast-offset", "offset", "nanoseconds", "naive-is-utc", "sent-only", "neither"],
)
def test_event_time_corrects_client_clock_skew(
    timestamp: str | None, sent_at: str | None, expected: datetime, now: datetime
) -> None:
    message = {**_TRACK, "timestamp": timestamp, "sentAt": sent_at}
    at = _one("track", message, now).at
    assert at == expected
    assert at.tzinfo is not None


def test_batch_sent_at_corrects_messages_that_lack_their_own(now: datetime) -> None:
    body = {
        "sentAt": "2026-11-23T10:01:00Z",
        "batch": [
            {**_TRACK, "timestamp": "2026-11-23T10:00:00Z"},
            {**_TRACK, "timestamp": "2026-11-23T10:00:00Z", "sentAt": "2026-11-23T10:00:10Z"},
        ],
    }
    first, second = parse_call("batch", body, source=SOURCE, received_at=now)
    assert first.at == now - timedelta(minutes=1)
    assert second.at == now - timedelta(seconds=10)


def test_missing_message_id_is_derived_so_a_resend_deduplicates(now: datetime) -> None:
    message = {"userId": "u1", "event": "Signed Up", "timestamp": "2026-11-23T11:00:00Z"}
    first = _one("track", {**message, "sentAt": "2026-11-23T11:00:01Z"}, now)
    resent = _one("track", {**message, "sentAt": "2026-11-23T11:05:00Z"}, now + timedelta(minutes=5))
    other = _one("track", {**message, "event": "Logged In"}, now)
    elsewhere = parse_call("track", message, source="other-site", received_at=now)[0]

    assert first.message_id.startswith("seg-derived:")
    assert resent.message_id == first.message_id
    assert other.message_id != first.message_id
    assert elsewhere.message_id != first.message_id
