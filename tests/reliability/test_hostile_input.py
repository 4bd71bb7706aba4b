"""Hostile input on every public route, generated with Hypothesis from the published openapi.yaml.

Each example is one request to one operation of the spec, through chalice's test client over moto (the
`loop` fixture): hostile path parameters (`/`, `%`, `..`, unicode, very long), hostile query values, random
bytes, deep and huge JSON, wrong types, bad gzip, bad Basic and Bearer credentials. Whatever it sends:
- the answer is never a 5xx;
- a refusal is a 4xx that openapi.yaml documents for the operation that served it, with the error body;
- the server keeps serving (`GET /health` answers 200 after every example).
`make test` runs a small derandomized sample (fixed seed); `make soak` a larger random one (`slow`).
Inputs that broke these properties are kept at the bottom as regression tests.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from chalice.local import RouteMatcher
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

import app as leadloop_app
from chalicelib import wiring
from tests.reliability.conftest import Loop
from tests.reliability.test_openapi import load_spec, resolve, spec_operations

SPEC = load_spec()
CRM_SECRET = "hostile-input-crm-secret-0123456789"
MAX_BODY = 256 * 1024

KEYS = {
    "write": "Basic " + base64.b64encode(b"dev-write-key:").decode(),
    "sales": "Bearer dev-sales-key",
    "marketing": "Bearer dev-marketing-key",
    "admin": "Bearer dev-admin-key",
}


@dataclass(frozen=True)
class Operation:
    method: str
    route: str
    statuses: frozenset[int]
    path_params: tuple[str, ...]
    query_params: tuple[tuple[str, str], ...]  # (name, kind): date, date-time, integer, number, enum:a|b
    body_fields: tuple[str, ...]
    content_types: tuple[str, ...] = field(default=())


def _kind(parameter: dict[str, Any]) -> str:
    schema = resolve(SPEC, parameter.get("schema", {}))
    if "enum" in schema:
        return "enum:" + "|".join(schema["enum"])
    return str(schema.get("format") or schema.get("type") or "string")


def _operations() -> list[Operation]:
    found = []
    for (method, route), operation in sorted(spec_operations(SPEC).items()):
        parameters = [resolve(SPEC, p) for p in operation.get("parameters", [])]
        fields: set[str] = set()
        for media in resolve(SPEC, operation.get("requestBody", {})).get("content", {}).values():
            fields |= set(resolve(SPEC, media.get("schema", {})).get("properties", {}))
        found.append(
            Operation(
                method=method,
                route=route,
                statuses=frozenset(int(code) for code in operation["responses"]),
                path_params=tuple(p["name"] for p in parameters if p["in"] == "path"),
                query_params=tuple((p["name"], _kind(p)) for p in parameters if p["in"] == "query"),
                body_fields=tuple(sorted(fields)),
                content_types=tuple(leadloop_app.app.routes[route][method].content_types),
            )
        )
    return found


OPERATIONS = _operations()
BY_ROUTE = {(op.method, op.route): op for op in OPERATIONS}

# --- strategies -------------------------------------------------------------------------------------------

NASTY = [
    "", ".", "..", "../..", "../../etc/passwd", "%", "%2", "%zz", "%00", "%2F", "%252F", "a/b", "/", "//",
    "\x00", " ", "null", "undefined", "{ref}", "nobody@example.com", "ll_admin_x", "🙂", "é", "\u202e",
    "\ud800", "a" * 300, "x" * 5000, "-1", "0", "1e309", "NaN", "inf", "' OR 1=1 --", "<script>", "${7*7}",
    "{{ 7*7 }}", "welcome-product-tour", "2026-11", "accept", "recycle", "sales_ready", "0001-01-01",
    "9999-12-31", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00", "2026-11-23T12:00:00-23:59",
]  # fmt: skip
nasty_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
NUMBERS = ["-1", "0", "1", "1.5", "1e9", "1e309", "-1e309", "nan", "inf", "-inf", "0x10", " 1", "1_000", "١"]
DATES = ["0001-01-01", "0001-01-02", "9999-12-30", "9999-12-31", "2026-02-30", "2026-11-23", "20261123"]
TIMES = [*DATES, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999+00:00", "2026-11-23T12:00:00-23:59",
         "2026-11-23T12:00:00+24:00", "2026-11-23T25:00:00Z", "2026-11-23 12:00"]  # fmt: skip


def query_value(kind: str) -> st.SearchStrategy[str]:
    """Values aimed at what the parameter is documented to be, and anything else."""
    if kind.startswith("enum:"):
        aimed = st.sampled_from(kind[5:].split("|"))
    elif kind in ("integer", "number"):
        aimed = st.one_of(st.sampled_from(NUMBERS), st.integers().map(str), st.floats().map(str))
    elif kind == "date":
        aimed = st.one_of(st.sampled_from(DATES), st.dates().map(str))
    elif kind == "date-time":
        aimed = st.one_of(st.sampled_from(TIMES), st.datetimes().map(lambda d: d.isoformat() + "Z"))
    else:
        aimed = nasty_text
    return st.one_of(aimed, nasty_text)


# Header values travel as latin-1 at most; line breaks cannot be sent at all.
header_text = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=60)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    nasty_text,
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


@st.composite
def json_body(draw: st.DrawFn, operation: Operation) -> bytes:
    """A JSON text: wrong types in the operation's own fields, random values, huge strings, deep nesting."""
    fields = [*operation.body_fields, "writeKey", "type", "batch", "events", "messageId", "userId"]
    kind = draw(st.sampled_from(["fields", "any", "huge", "deep", "many"]))
    if kind == "fields":
        value: Any = draw(st.dictionaries(st.sampled_from(fields), json_value, max_size=5))
    elif kind == "any":
        value = draw(json_value)
    elif kind == "huge":
        size = draw(st.sampled_from([40 * 1024, MAX_BODY - 100, MAX_BODY + 1, 600 * 1024]))
        value = {draw(st.sampled_from(fields)): "x" * size}
    elif kind == "many":
        value = {"batch": [{"type": "track", "event": "e", "userId": str(i)} for i in range(600)]}
    else:
        depth = draw(st.sampled_from([50, 500, 5_000, 40_000]))
        return _deep(depth, draw(st.sampled_from(["[", '{"a":'])))
    return json.dumps(value).encode()


@st.composite
def body(draw: st.DrawFn, operation: Operation) -> tuple[bytes, dict[str, str]]:
    """The body and any headers describing it (Content-Type, Content-Encoding)."""
    headers: dict[str, str] = {}
    kind = draw(st.sampled_from(["none", "bytes", "text", "json", "json", "gzip-json", "bad-gzip", "bomb"]))
    if kind == "none":
        raw = b""
    elif kind == "bytes":
        raw = draw(st.binary(max_size=2000))
    elif kind == "text":
        raw = draw(st.text(max_size=500)).encode("utf-8", "surrogatepass")
    elif kind == "json":
        raw = draw(json_body(operation))
    elif kind == "gzip-json":
        raw = gzip.compress(draw(json_body(operation)))
        headers["Content-Encoding"] = "gzip"
    elif kind == "bad-gzip":
        good = gzip.compress(b'{"type": "track", "event": "e", "userId": "u"}')
        raw = draw(st.sampled_from([good[: len(good) // 2], b"\x1f\x8b" + b"\x00" * 20, b"not gzip", b""]))
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "x-gzip", "deflate", "br", "gzip, gzip"]))
    else:  # a gzip bomb: a few KB that inflate to 20 MB
        raw = gzip.compress(b" " * (20 * 1024 * 1024), compresslevel=9)
        headers["Content-Encoding"] = "gzip"
    content_type = draw(st.sampled_from([None, *operation.content_types, "application/json; charset=utf-8"]))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return raw, headers


@st.composite
def credentials(draw: st.DrawFn) -> dict[str, str]:
    kind = draw(st.sampled_from([*KEYS, "admin", "none", "basic-junk", "bearer-junk", "scheme-junk"]))
    if kind in KEYS:
        return {"Authorization": KEYS[kind]}
    if kind == "none":
        return {}
    if kind == "basic-junk":
        user = draw(st.binary(max_size=40))
        encoded = draw(
            st.sampled_from(
                [
                    base64.b64encode(user).decode(),  # bytes that may not be UTF-8
                    base64.b64encode(user + b":").decode(),
                    "!!!not base64!!!",
                    "",
                    "ZGV2LXdyaXRlLWtleTo",  # dev-write-key: without its padding
                ]
            )
        )
        return {"Authorization": f"Basic {encoded}"}
    if kind == "bearer-junk":
        return {"Authorization": "Bearer " + draw(st.text(st.characters(max_codepoint=0x7E), max_size=60))}
    return {"Authorization": draw(st.sampled_from(["Basic ", "Bearer ", "Digest ", ""])) + draw(header_text)}


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _crm_signature(raw: bytes) -> str:
    t = str(int(time.time()))
    digest = hmac.new(CRM_SECRET.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


@st.composite
def requests(draw: st.DrawFn, operations: list[Operation]) -> tuple[Operation, str, dict[str, str], bytes]:
    operation = draw(st.sampled_from(operations))
    path = operation.route
    for name in operation.path_params:
        value = draw(nasty_text)
        # Mostly as a client should send it (percent-encoded); sometimes with '/', '%' and '.' left raw.
        safe = draw(st.sampled_from(["", "", "", "%.", "/%."]))
        path = path.replace("{" + name + "}", quote(_utf8(value), safe=safe))
    query = {name: draw(query_value(kind)) for name, kind in operation.query_params if draw(st.booleans())}
    if draw(st.booleans()):
        query[draw(nasty_text)] = draw(nasty_text)
    if query:
        path += "?" + urlencode({_utf8(k): _utf8(v) for k, v in query.items()})
    raw, headers = draw(body(operation))
    headers.update(draw(credentials()))
    if draw(st.booleans()):
        headers["If-Match"] = draw(header_text)
    if "webhooks/{provider}" in operation.route and draw(st.booleans()):
        headers["X-Leadloop-Signature"] = _crm_signature(raw)  # let the generic CRM parser see the body
    return operation, path, headers, raw


# --- known bugs -------------------------------------------------------------------------------------------
# Requests that break the property today, skipped by the generated tests (hypothesis.assume) so that they
# keep guarding everything else; each also gets a strict xfail regression test at the bottom of this file.


def _inflated(raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)[: 2 * MAX_BODY] if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error):
        return raw


def _query(path: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(path).query, keep_blank_values=True).items()}


KNOWN_BUGS: dict[str, Callable[[str, str, dict[str, str], bytes], bool]] = {
    # Empty: the six bugs this suite found (deep JSON in json_body and in webhook bodies, non-ASCII Basic
    # credentials, a lone surrogate in tracking JSON, dates at the ends of the calendar, Chalice's own 415)
    # are fixed; their regression tests are at the bottom of this file.
}


def known_bug(method: str, path: str, headers: dict[str, str], raw: bytes) -> str | None:
    return next((name for name, hit in KNOWN_BUGS.items() if hit(method, path, headers, raw)), None)


# --- the property -----------------------------------------------------------------------------------------

MATCHER = RouteMatcher(list(leadloop_app.app.routes))


def _served_by(method: str, path: str) -> Operation | None:
    """The operation API Gateway (and chalice's local gateway) routes this request to, if any."""
    try:
        route = MATCHER.match_route(path).route
    except ValueError:
        return None
    return BY_ROUTE.get((method, route))


def check(loop: Loop, operation: Operation, path: str, headers: dict[str, str], raw: bytes) -> None:
    assume(known_bug(operation.method, path, headers, raw) is None)
    served = _served_by(operation.method, path)
    # chalice's local gateway (not the app, not API Gateway) crashes quoting a non-ASCII Authorization
    # header in its "Missing Authentication Token" answer for a path no route matches.
    assume(served is not None or headers.get("Authorization", "").isascii())
    answer = loop.client.http.request(operation.method, path, headers=headers, body=raw)
    where = f"{operation.method} {path[:200]!r} headers={headers!r} body={raw[:200]!r}"
    assert answer.status_code < 500, f"{answer.status_code} from {where}: {answer.body[:500]!r}"
    if served is None:
        # A raw '/' or an empty segment can make a path no route matches: API Gateway answers that
        # itself (403 "Missing Authentication Token") before the app is invoked.
        assert answer.status_code in (403, 404, 405), f"{answer.status_code} from the gateway for {where}"
    else:
        assert answer.status_code in served.statuses, (
            f"{answer.status_code} is not documented for {served.method} {served.route}: {where}: "
            f"{answer.body[:500]!r}"
        )
        if answer.status_code >= 400:
            error = json.loads(answer.body)["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str), answer.body
    health = loop.client.http.get("/health")
    assert health.status_code == 200, f"/health answered {health.status_code} after {where}"


@pytest.fixture
def hostile_loop(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Loop:
    """The loop with a generic CRM secret, so signed hostile bodies reach the CRM parser."""
    monkeypatch.setenv("LEADLOOP_CRM_SECRET", CRM_SECRET)
    wiring.reset()  # settings and the intake service were built with the secrets of their time
    return loop


COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}


@seed(20261123)
@settings(max_examples=150, derandomize=True, **COMMON)
@given(request=requests(OPERATIONS))
def test_hostile_requests_get_documented_answers(
    hostile_loop: Loop, request: tuple[Operation, str, dict[str, str], bytes]
) -> None:
    check(hostile_loop, *request)


@settings(max_examples=7, derandomize=True, **COMMON)
@given(data=st.data())
def test_every_operation_survives_hostile_input(hostile_loop: Loop, data: Any) -> None:
    """Each example sends one hostile request to every operation, so none is left out of the fast run."""
    for operation in OPERATIONS:
        check(hostile_loop, *data.draw(requests([operation]), label=f"{operation.method} {operation.route}"))


@pytest.mark.slow
@settings(max_examples=3000, **COMMON)
@given(request=requests(OPERATIONS))
def test_hostile_requests_soak(
    hostile_loop: Loop, request: tuple[Operation, str, dict[str, str], bytes]
) -> None:
    check(hostile_loop, *request)


# --- hostile inputs that break the property today (do not fix here: each names its bug) -----------------


def _assert_documented_refusal(
    loop: Loop, method: str, path: str, headers: dict[str, str], raw: bytes
) -> None:
    operation = _served_by(method, path)
    assert operation is not None
    answer = loop.client.http.request(method, path, headers=headers, body=raw)
    assert answer.status_code in operation.statuses and 400 <= answer.status_code < 500, (
        f"{answer.status_code} from {method} {path}: {answer.body[:300]!r}"
    )
    assert set(json.loads(answer.body)["error"]) >= {"code", "message"}
    assert loop.client.http.get("/health").status_code == 200


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000  # 200 KB, under the 256 KB limit


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/templates/welcome-product-tour/preview", "marketing"),
        ("/leads/nobody@example.com/accept", "sales"),
        ("/costs/web/2026-11", "admin"),
    ],
)
def test_deeply_nested_json_is_refused_with_400(hostile_loop: Loop, path: str, role: str) -> None:
    method = "PUT" if path.startswith("/costs") else "POST"
    headers = {"Authorization": KEYS[role], "Content-Type": "application/json"}
    _assert_documented_refusal(hostile_loop, method, path, headers, DEEP_JSON)


def test_non_ascii_basic_credentials_are_refused_with_401(hostile_loop: Loop) -> None:
    headers = {"Authorization": "Basic \xe9", "Content-Type": "application/json"}
    _assert_documented_refusal(hostile_loop, "POST", "/v1/track", headers, b'{"event": "e", "userId": "u"}')


def test_lone_surrogate_in_a_tracking_body_is_refused(hostile_loop: Loop) -> None:
    headers = {"Authorization": KEYS["write"], "Content-Type": "application/json"}
    raw = b'{"userId": "\\ud800", "traits": {"email": "ada@bigco.example"}}'
    _assert_documented_refusal(hostile_loop, "POST", "/v1/identify", headers, raw)


@pytest.mark.parametrize(
    ("method", "path", "role", "content_type"),
    [
        ("GET", "/leads", "sales", "text/plain"),
        ("POST", "/v1/track", "write", "text/html"),
        ("PUT", "/rules", "admin", "multipart/form-data; boundary=x"),
    ],
)
def test_an_unlisted_content_type_gets_a_documented_answer(
    hostile_loop: Loop, method: str, path: str, role: str, content_type: str
) -> None:
    headers = {"Authorization": KEYS[role], "Content-Type": content_type}
    answer = hostile_loop.client.http.request(method, path, headers=headers, body=b'{"event": "e"}')
    operation = _served_by(method, path)
    assert operation is not None
    assert answer.status_code in operation.statuses, f"{answer.status_code}: {answer.body[:300]!r}"
    assert hostile_loop.client.http.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/activity?until=0001-01-01T00:00:00Z", "/metrics?to=9999-12-31"])
def test_dates_at_the_ends_of_the_calendar_are_refused(hostile_loop: Loop, path: str) -> None:
    _assert_documented_refusal(hostile_loop, "GET", path, {"Authorization": KEYS["sales"]}, b"")


def test_deeply_nested_json_in_a_signed_crm_webhook_is_refused_with_400(hostile_loop: Loop) -> None:
    headers = {"X-Leadloop-Signature": _crm_signature(DEEP_JSON), "Content-Type": "application/json"}
    _assert_documented_refusal(hostile_loop, "POST", "/webhooks/crm", headers, DEEP_JSON)
