"""Hostile and odd input at the HTTP edge (issue 11, defects 9, 11, 13, 14), through chalice's test client
over moto: every refusal is a documented 4xx, every accepted value is clean, and nothing a visitor sends can
pass for something Leadloop did itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from chalicelib import wiring
from chalicelib.adapters.tokens import UNSUBSCRIBE, sign
from tests.reliability.conftest import Loop

SALES_READ = {"Authorization": "Bearer dev-sales-key"}


def _identified(loop: Loop, email: str = "ada@bigco.example", **extra: object) -> str:
    message = {
        "type": "identify",
        "messageId": f"i-{email}",
        "userId": f"u-{email}",
        "traits": {"email": email},
    }
    assert loop.track("/v1/identify", {**message, **extra}).status_code == 200
    loop.drain()
    return str(loop.sales("GET", f"/leads/{email}").json_body["id"])


def _refused(answer: object, status: int = 400) -> dict:
    assert answer.status_code == status, answer.body  # type: ignore[attr-defined]
    error = json.loads(answer.body)["error"]  # type: ignore[attr-defined]
    assert isinstance(error["code"], str) and error["message"]
    return error


# --- #11: numbers JSON can spell but nothing can store -----------------------------------------------------


def test_a_5000_digit_integer_in_a_tracking_body_is_a_400_not_a_500(loop: Loop) -> None:
    raw = b'{"userId": "u1", "event": "E", "properties": {"n": ' + b"9" * 5000 + b"}}"
    error = _refused(loop.track("/v1/track", raw))
    assert "digits" in error["message"]
    assert loop.drain() == 0


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"Infinity", b"NaN"])
def test_non_finite_numbers_are_refused_by_every_json_reader(loop: Loop, number: bytes) -> None:
    tracked = b'{"userId": "u1", "event": "E", "properties": {"n": ' + number + b"}}"
    _refused(loop.track("/v1/track", tracked))
    lead_id = _identified(loop)
    action = loop.client.http.post(
        f"/leads/{lead_id}/accept",
        headers={"Authorization": "Bearer dev-sales-key", "Content-Type": "application/json"},
        body=b'{"owner": "sam@leadloop.example", "amount": ' + number + b"}",
    )
    _refused(action)


# --- #11: event times outside any plausible range ----------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
)
def test_an_implausible_timestamp_is_replaced_by_the_received_time(loop: Loop, when: str) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    email = "old@bigco.example"
    _identified(loop, email, timestamp=when)
    page = {"type": "page", "messageId": "p-old", "userId": f"u-{email}", "timestamp": when,
            "properties": {"path": "/pricing"}}  # fmt: skip
    assert loop.track("/v1/page", page).status_code == 200
    loop.drain()
    summary = loop.client.http.get(f"/leads/{email}", headers=SALES_READ)
    assert summary.status_code == 200, summary.body
    lead = summary.json_body
    times = [v["at"] for v in lead["pages"]] + [lead["created_at"], lead["last_activity_at"]]
    stamps = [datetime.fromisoformat(t) for t in times if t]
    assert len(stamps) == 3 and all(
        before <= at <= datetime.now(UTC) + timedelta(minutes=1) for at in stamps
    ), stamps


# --- #11: path parameters and link tokens ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["a" * 3000, "%00abc", "a%0Ab", "%E2%80%AEab"], ids=["3000-chars", "nul", "newline", "bidi"]
)
def test_an_unreadable_lead_ref_is_a_400(loop: Loop, ref: str) -> None:
    _refused(loop.client.http.get(f"/leads/{ref}", headers=SALES_READ))
    assert loop.client.http.get("/health").status_code == 200


def test_a_lead_ref_of_the_longest_email_still_reads(loop: Loop) -> None:
    assert (
        loop.client.http.get(f"/leads/{'a' * 64}%40{'b' * 247}.example", headers=SALES_READ).status_code
        == 404
    )


@pytest.mark.parametrize("route", ["/r/", "/unsubscribe/"])
@pytest.mark.parametrize("token", ["é", "\u00e9.\u00e9", "abc.d\u00e9f", "%C3%A9.x"])
def test_non_ascii_link_tokens_are_a_404(loop: Loop, route: str, token: str) -> None:
    for method in ("GET", "POST") if route == "/unsubscribe/" else ("GET",):
        answer = loop.client.http.request(method, route + token, headers={}, body=b"")
        _refused(answer, 404)


# --- #13: the tracking preflight ---------------------------------------------------------------------------


# Request headers tracking clients send (tests/../shared/fixtures/tracking-clients): analytics.js and the
# Segment libraries send Authorization and Content-Type, X-Retry-Count on every retry, Content-Encoding when
# they gzip. A browser asks for them, lower-cased, in the preflight.
CLIENT_HEADERS = ["authorization", "content-type", "content-encoding", "x-retry-count"]


def _allowed(value: str) -> set[str]:
    return {h.strip().lower() for h in value.split(",")}


def test_the_preflight_api_gateway_answers_allows_what_tracking_clients_send() -> None:
    from chalice.deploy.swagger import SwaggerGenerator

    import app as leadloop_app

    handler = {"api_handler_arn": "arn:aws:lambda:us-east-1:123456789012:function:leadloop-api"}
    spec = SwaggerGenerator("us-east-1", handler).generate_swagger(leadloop_app.app)
    for path in ("/v1/{call}",):
        answer = spec["paths"][path]["options"]["x-amazon-apigateway-integration"]["responses"]["default"]
        headers = answer["responseParameters"]
        allowed = _allowed(headers["method.response.header.Access-Control-Allow-Headers"].strip("'"))
        assert set(CLIENT_HEADERS) <= allowed
        assert "POST" in headers["method.response.header.Access-Control-Allow-Methods"]


def test_the_preflight_chalice_local_answers_allows_what_tracking_clients_send() -> None:
    from chalice.config import Config
    from chalice.local import LocalGateway

    import app as leadloop_app

    asked = {
        "Origin": "https://www.customer.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ",".join(CLIENT_HEADERS),
    }
    answer = LocalGateway(leadloop_app.app, Config()).handle_request("OPTIONS", "/v1/t", asked, b"")
    assert answer["statusCode"] == 200
    assert set(CLIENT_HEADERS) <= _allowed(answer["headers"]["Access-Control-Allow-Headers"])
    assert answer["headers"]["Access-Control-Allow-Origin"] == "*"


def test_a_retried_browser_call_is_accepted(loop: Loop) -> None:
    message = {"userId": "u-retry", "event": "Demo Requested", "messageId": "ajs-retry-1"}
    assert (
        loop.track("/v1/t", message, {"X-Retry-Count": "1", "Content-Type": "text/plain"}).status_code == 200
    )


# --- #14: a link scanner's GET must not unsubscribe --------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.fields: list[dict[str, str | None]] = []
        self.buttons = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append(dict(attrs))
        elif tag == "input":
            self.fields.append(dict(attrs))
        if tag == "button" or (tag == "input" and dict(attrs).get("type") == "submit"):
            self.buttons += 1


def _suppression(loop: Loop, lead_id: str) -> object:
    return loop.sales("GET", f"/leads/{lead_id}").json_body["suppression"]


def test_get_on_the_unsubscribe_link_asks_and_only_post_unsubscribes(loop: Loop) -> None:
    lead_id = _identified(loop)
    token = sign(UNSUBSCRIBE, {"l": lead_id}, wiring.settings().signing_secret)

    for _ in range(3):  # a link scanner, a preview pane, the reader: none of them is a decision
        page = loop.client.http.get(f"/unsubscribe/{token}")
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
    assert _suppression(loop, lead_id) is None

    forms = _Forms()
    forms.feed(page.body.decode())
    assert len(forms.forms) == 1 and forms.buttons == 1
    form = forms.forms[0]
    assert (form.get("method") or "").lower() == "post"
    assert form.get("action") in (None, token, f"/unsubscribe/{token}")  # the same URL
    posted = "&".join(f"{f['name']}={f.get('value') or ''}" for f in forms.fields if f.get("name"))
    pressed = loop.client.http.post(
        f"/unsubscribe/{token}",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
        body=posted.encode(),
    )
    assert pressed.status_code == 200 and pressed.headers["Content-Type"].startswith("text/html")
    assert "unsubscribed" in pressed.body.decode()
    assert _suppression(loop, lead_id)["reason"] == "unsubscribed"  # type: ignore[index]


def test_the_rfc_8058_one_click_post_unsubscribes(loop: Loop) -> None:
    lead_id = _identified(loop)
    token = sign(UNSUBSCRIBE, {"l": lead_id}, wiring.settings().signing_secret)
    answer = loop.client.http.post(
        f"/unsubscribe/{token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"List-Unsubscribe=One-Click",
    )
    assert answer.status_code == 200 and answer.json_body == {"unsubscribed": True}
    assert _suppression(loop, lead_id)["reason"] == "unsubscribed"  # type: ignore[index]


def test_the_confirmation_page_escapes_what_it_shows(loop: Loop) -> None:
    token = sign(UNSUBSCRIBE, {"l": "<script>alert(1)</script>"}, wiring.settings().signing_secret)
    page = loop.client.http.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and "<script>" not in page.body.decode()


# --- #9: a client cannot write an internal event id --------------------------------------------------------


@pytest.mark.parametrize("squatted", ["unsubscribe:{lead}", "ll:unsubscribe:{lead}"])
def test_a_client_message_id_cannot_pre_empt_the_real_unsubscribe(loop: Loop, squatted: str) -> None:
    lead_id = _identified(loop)
    message_id = squatted.format(lead=lead_id)  # the old internal id, and the current one
    squat = {"userId": "u-ada@bigco.example", "event": "Looked Around", "messageId": message_id}
    assert loop.track("/v1/track", squat).status_code == 200
    loop.drain()
    token = sign(UNSUBSCRIBE, {"l": lead_id}, wiring.settings().signing_secret)
    assert (
        loop.client.http.post(f"/unsubscribe/{token}", body=b"List-Unsubscribe=One-Click").status_code == 200
    )
    assert _suppression(loop, lead_id)["reason"] == "unsubscribed"  # type: ignore[index]


def test_the_same_client_message_id_twice_is_one_event(loop: Loop) -> None:
    _identified(loop)
    page = {
        "type": "page",
        "messageId": "dup-1",
        "userId": "u-ada@bigco.example",
        "properties": {"path": "/x"},
    }
    for _ in range(2):
        assert loop.track("/v1/page", page).status_code == 200
        loop.drain()
    pages = loop.sales("GET", "/leads/ada@bigco.example").json_body["pages"]
    assert [p["path"] for p in pages].count("/x") == 1
