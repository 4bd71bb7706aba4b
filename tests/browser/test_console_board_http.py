"""The console's scoreboard and activity feed over HTTP (in-process): who may open them, that they show the
figures GET /metrics and GET /activity answer with (as charts and as tables), the date range and the feed's
filters and pages, and that what a prospect or an API client chose is shown as text."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.test_console_http import headers, routed_lead, sign_in
from tests.e2e.conftest import Loop
from tests.e2e.test_lead_loop import journey


def get(loop: Loop, path: str, cookie: str) -> Any:
    return loop.client.http.get(path, headers={"Cookie": cookie})


def test_every_console_role_reads_the_scoreboard_and_the_feed_and_nobody_else(loop: Loop) -> None:
    for key in ("dev-sales-key", "dev-marketing-key", "dev-admin-key"):
        cookie, _ = sign_in(loop, key)
        inbox = get(loop, "/console/leads", cookie).body.decode()
        assert 'href="/console/scoreboard"' in inbox and 'href="/console/activity"' in inbox, key
        for path in ("/console/scoreboard", "/console/activity"):
            answer = get(loop, path, cookie)
            assert answer.status_code == 200, (key, path)
            assert "unsafe-inline" not in headers(answer)["content-security-policy"]
    for path in ("/console/scoreboard", "/console/activity"):
        signed_out = loop.client.http.get(path)
        assert signed_out.status_code == 303 and headers(signed_out)["location"] == "/console/sign-in"


def test_the_scoreboard_shows_the_funnel_follow_up_and_time_to_accept_of_the_metrics(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    assert loop.sales("POST", f"/leads/{lead_id}/accept", {}).status_code == 200
    metrics = loop.sales("GET", "/metrics").json_body
    cookie, _ = sign_in(loop, "dev-sales-key")
    page = get(loop, "/console/scoreboard", cookie).body.decode()
    for heading in (
        "Funnel by stage",
        "Follow-up within SLA",
        "Time to accept",
        "SLA misses",
        "Recycle reasons",
        "Template performance",
        "Revenue against cost",
    ):
        assert f">{heading}</h2>" in page, heading
    assert page.count('<svg class="chart" role="img"') >= 3  # funnel, follow-up, time to accept at least
    # The funnel's table says what its bars show: the leads per stage GET /metrics counts.
    accepted = next(s for s in metrics["stages"]["funnel"] if s["stage"] == "accepted")
    assert accepted["leads"] == 1
    assert re.search(r"<tr><td>accepted</td><td>1</td><td>0</td>", page)
    assert "<dt>Leads routed</dt><dd>1</dd>" in page


def test_the_scoreboard_reads_a_date_range_and_refuses_a_bad_one_in_words(loop: Loop) -> None:
    routed_lead(loop)
    cookie, _ = sign_in(loop, "dev-marketing-key")
    old = get(loop, "/console/scoreboard?from=2001-01-01&to=2001-01-31", cookie)
    assert old.status_code == 200
    body = old.body.decode()
    assert "From 2001-01-01 to 2001-01-31" in body and "<dt>Leads routed</dt><dd>0</dd>" in body
    recent = get(loop, "/console/scoreboard?days=7", cookie).body.decode()
    assert "<dt>Leads routed</dt><dd>1</dd>" in recent
    backwards = get(loop, "/console/scoreboard?from=2026-02-01&to=2026-01-01", cookie)
    assert backwards.status_code == 400 and "must not be before" in backwards.body.decode()
    nonsense = get(loop, "/console/scoreboard?from=soon", cookie)
    assert nonsense.status_code == 400 and "YYYY-MM-DD" in nonsense.body.decode()


def test_the_feed_says_who_did_what_to_which_lead_and_filters_by_actor_kind_and_lead(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    assert loop.sales("POST", f"/leads/{lead_id}/accept", {}).status_code == 200
    cookie, _ = sign_in(loop, "dev-admin-key")
    page = get(loop, "/console/activity", cookie).body.decode()
    assert f'href="/console/leads/{lead_id}"' in page
    assert "dev-sales" in page and ">transition</td>" in page and ">notified</td>" in page
    by_kind = get(loop, "/console/activity?kind=notified", cookie).body.decode()
    assert ">notified</td>" in by_kind and ">transition</td>" not in by_kind
    by_actor = get(loop, "/console/activity?actor=nobody-at-all", cookie).body.decode()
    assert "No activity matches" in by_actor
    other = routed_lead_named(loop, "bo")
    by_lead = get(loop, f"/console/activity?lead={lead_id}", cookie).body.decode()
    assert f"/console/leads/{lead_id}" in by_lead and f"/console/leads/{other}" not in by_lead
    by_email = get(loop, "/console/activity?lead=ada%40bigco.example", cookie)
    assert by_email.status_code == 400 and "not an email address" in by_email.body.decode()


def routed_lead_named(loop: Loop, tag: str) -> str:
    assert loop.track("/v1/batch", journey(email=f"{tag}@example.com", anon=f"anon-{tag}")).status_code == 200
    loop.drain()
    leads = loop.sales("GET", "/leads?state=sales_ready").json_body["leads"]
    return str(next(lead["id"] for lead in leads if lead["email"] == f"{tag}@example.com"))


def test_the_feed_pages_through_every_entry_once(loop: Loop, monkeypatch: Any) -> None:
    from chalicelib.console import board_views

    for tag in ("ann", "bob", "cy"):
        routed_lead_named(loop, tag)
    everything = loop.sales("GET", "/activity?limit=1000").json_body["entries"]
    assert len(everything) >= 6
    monkeypatch.setattr(board_views, "FEED_PAGE", 2)
    cookie, _ = sign_in(loop, "dev-sales-key")
    rows: list[str] = []
    path: str | None = "/console/activity"
    while path is not None:
        page = get(loop, path, cookie).body.decode()
        rows += re.findall(r'<tr>\s*<td data-label="When"><time datetime="([^"]+)"', page)
        found = re.search(r'class="button" href="([^"]+)"', page)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert len(rows) == len(everything)
    assert rows == sorted(rows, reverse=True)


def test_feed_details_chosen_by_a_client_are_text(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    note = "<script>alert(1)</script>"
    assert loop.sales("POST", f"/leads/{lead_id}/accept", {"note": note}).status_code == 200
    cookie, _ = sign_in(loop, "dev-sales-key")
    page = get(loop, "/console/activity", cookie).body.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
