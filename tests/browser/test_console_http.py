"""The console over HTTP, without a browser: what its security promises look like on the wire (the headers
every page carries, the session cookie's attributes, CSRF refusals, a revoked key ending a session, escaped
prospect data, no key or PII in a URL), and the owner notification's link to the lead page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from chalicelib import wiring
from chalicelib.usecases.auth import hash_key
from tests.e2e.conftest import Loop
from tests.e2e.test_lead_loop import journey

FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}


def headers(answer: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in answer.headers.items()}


def _cookie_of(answer: Any) -> str:
    value = headers(answer)["set-cookie"]
    return value.split(";", 1)[0]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "every console form carries a CSRF token"
    return found.group(1)


def sign_in(loop: Loop, key: str) -> tuple[str, str]:
    """(the session cookie, the CSRF token of the page signed in to)."""
    form = loop.client.http.get("/console/sign-in")
    anonymous = _cookie_of(form)
    body = urlencode({"key": key, "csrf": _csrf(form.body.decode())})
    answer = loop.client.http.post("/console/sign-in", headers={**FORM, "Cookie": anonymous}, body=body)
    assert answer.status_code == 303, answer.body
    cookie = _cookie_of(answer)
    inbox = loop.client.http.get("/console/leads", headers={"Cookie": cookie})
    assert inbox.status_code == 200
    return cookie, _csrf(inbox.body.decode())


def routed_lead(loop: Loop, **names: str) -> str:
    batch = journey()
    batch["batch"][3]["traits"].update(names)
    assert loop.track("/v1/batch", batch).status_code == 200
    loop.drain()
    leads = loop.sales("GET", "/leads?state=sales_ready").json_body["leads"]
    return str(leads[0]["id"])


def test_every_console_page_carries_the_security_headers(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-sales-key")
    lead_id = routed_lead(loop)
    for path in (
        "/console/sign-in",
        "/console/leads",
        f"/console/leads/{lead_id}",
        "/console/static/console.js",
    ):
        signed_in = {} if path == "/console/sign-in" else {"Cookie": cookie}  # signed in: on to the inbox
        answer = loop.client.http.get(path, headers=signed_in)
        assert answer.status_code == 200, path
        policy = headers(answer)["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert headers(answer)["x-content-type-options"] == "nosniff", path
        assert headers(answer)["referrer-policy"] == "no-referrer", path


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(loop: Loop) -> None:
    form = loop.client.http.get("/console/sign-in")
    body = urlencode({"key": "dev-sales-key", "csrf": _csrf(form.body.decode())})
    answer = loop.client.http.post(
        "/console/sign-in",
        headers={**FORM, "Cookie": _cookie_of(form), "X-Forwarded-Proto": "https"},
        body=body,
    )
    cookie = headers(answer)["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert "dev-sales-key" not in cookie and headers(answer)["location"] == "/console/leads"


def test_a_form_without_its_csrf_token_is_refused(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-sales-key")
    lead_id = routed_lead(loop)
    forged = loop.client.http.post(
        f"/console/leads/{lead_id}/accept", headers={**FORM, "Cookie": cookie}, body="note=hi"
    )
    assert forged.status_code == 403 and "reload the page" in forged.body.decode()
    assert loop.sales("GET", f"/leads/{lead_id}").json_body["state"] == "sales_ready"


def test_a_revoked_key_ends_its_console_session_at_once(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-sales-key")
    wiring.keys().revoke(hash_key("dev-sales-key"), datetime.now(UTC))
    answer = loop.client.http.get("/console/leads", headers={"Cookie": cookie})
    assert answer.status_code == 303 and headers(answer)["location"] == "/console/sign-in"


def test_a_lead_named_as_markup_is_shown_as_text(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-sales-key")
    lead_id = routed_lead(loop, firstName="<img src=x onerror=alert(1)>", lastName="")
    for path in ("/console/leads", f"/console/leads/{lead_id}"):
        page = loop.client.http.get(path, headers={"Cookie": cookie}).body.decode()
        assert "<img src=x" not in page, path
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, path


def test_marketing_sees_no_sales_actions_and_is_refused_one(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    lead_id = routed_lead(loop)
    page = loop.client.http.get(f"/console/leads/{lead_id}", headers={"Cookie": cookie}).body.decode()
    assert "Actions" not in page and f"/console/leads/{lead_id}/accept" not in page
    answer = loop.client.http.post(
        f"/console/leads/{lead_id}/accept", headers={**FORM, "Cookie": cookie}, body=urlencode({"csrf": csrf})
    )
    assert answer.status_code == 403 and "may not" in answer.body.decode()
    assert loop.sales("GET", f"/leads/{lead_id}").json_body["state"] == "sales_ready"


def test_a_refused_action_is_a_sentence_on_the_lead_page(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-sales-key")
    lead_id = routed_lead(loop)
    answer = loop.client.http.post(
        f"/console/leads/{lead_id}/won", headers={**FORM, "Cookie": cookie}, body=urlencode({"csrf": csrf})
    )
    assert answer.status_code == 409
    assert "This lead is waiting for sales to accept it, so it cannot be marked won." in answer.body.decode()


def test_a_search_keeps_the_words_out_of_the_url(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-sales-key")
    routed_lead(loop)
    found = loop.client.http.post(
        "/console/leads", headers={**FORM, "Cookie": cookie}, body=urlencode({"csrf": csrf, "q": "BigCo"})
    )
    assert found.status_code == 200 and "ada@bigco.example" in found.body.decode()
    missed = loop.client.http.post(
        "/console/leads", headers={**FORM, "Cookie": cookie}, body=urlencode({"csrf": csrf, "q": "nobody"})
    )
    assert "ada@bigco.example" not in missed.body.decode() and "No leads match." in missed.body.decode()


def test_the_owner_notification_links_to_the_console_lead_page(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    notes = list((loop.outbox / "notifications").glob("*.json"))
    payload = json.loads(notes[0].read_text())
    assert payload["console_url"] == f"https://leads.example.test/console/leads/{lead_id}"
    mails = [p.read_text() for p in loop.outbox.glob("*.eml")]
    assert mails and f"/console/leads/{lead_id}" in mails[0]


def test_the_inbox_pages_through_sales_ready_then_accepted_leads_once_each(
    loop: Loop, monkeypatch: Any
) -> None:
    from chalicelib.console import views

    cookie, csrf = sign_in(loop, "dev-sales-key")
    for name in ("ann", "bob", "cy"):
        batch = journey(email=f"{name}@example.com", anon=f"anon-{name}")
        assert loop.track("/v1/batch", batch).status_code == 200
    loop.drain()
    first = loop.sales("GET", "/leads?state=sales_ready").json_body["leads"][0]["id"]
    assert loop.sales("POST", f"/leads/{first}/accept", {}).status_code == 200
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    seen: list[str] = []
    path: str | None = "/console/leads"
    while path is not None:
        page = loop.client.http.get(path, headers={"Cookie": cookie}).body.decode()
        seen += re.findall(r'href="/console/leads/([^"?/]+)"', page)
        found = re.search(r'class="button" href="([^"]+)"', page)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == 3 and len(set(seen)) == 3
    assert seen[-1] == first, "accepted leads come after the sales-ready ones"


def test_a_tampered_or_expired_session_cookie_is_no_session() -> None:
    from chalicelib.console import sessions

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    session = sessions.signed_in("a" * 64, now)
    value = sessions.encode(session, "secret")
    assert sessions.decode(value, "secret", now) == session
    assert sessions.decode(value, "another secret", now) is None
    _, mac = value.split(".")
    forged = sessions.encode(
        sessions.Session(csrf=session.csrf, expires=session.expires, key_hash="b" * 64), "x"
    )
    assert sessions.decode(forged.split(".")[0] + "." + mac, "secret", now) is None
    later = datetime.fromtimestamp(session.expires + 1, UTC)
    assert sessions.decode(value, "secret", later) is None
