"""The lead page's second pass (#13 "Sales"), over HTTP: an event's properties in the journey (the webinar's
name, the asset downloaded), escaped; the next planned touch and the chooser's why; and how the engagement
score decays (an SVG line with a table)."""

from __future__ import annotations

from chalicelib import wiring
from tests.browser.test_console_http import routed_lead, sign_in
from tests.e2e.conftest import Loop
from tests.e2e.test_lead_loop import page


def test_the_journey_shows_an_events_properties_as_text(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    email = loop.sales("GET", f"/leads/{lead_id}").json_body["identity"]["email"]
    webinar = {
        "type": "track",
        "messageId": "w-1",
        "userId": "user-anon-1",
        "event": "Webinar Attended",
        "properties": {"webinar_name": "Scaling <b>analytics</b>", "asset": "roi-guide.pdf", "secret": "x"},
        "traits": {"email": email},
    }
    assert loop.track("/v1/batch", {"batch": [webinar]}).status_code == 200
    loop.drain()
    cookie, _ = sign_in(loop, "dev-sales-key")
    html = loop.client.http.get(f"/console/leads/{lead_id}", headers={"Cookie": cookie}).body.decode()
    assert "Webinar Attended" in html
    assert "Scaling &lt;b&gt;analytics&lt;/b&gt;" in html and "<b>analytics" not in html
    assert "roi-guide.pdf" in html


def nurtured_lead(loop: Loop) -> str:
    batch = {
        "batch": [
            page("n-p1", "/blog/reporting", "anon-n"),
            {
                "type": "identify",
                "messageId": "n-i1",
                "anonymousId": "anon-n",
                "userId": "user-n",
                "traits": {"email": "nia@smallco.example", "firstName": "Nia", "company": "SmallCo"},
            },
        ]
    }
    assert loop.track("/v1/batch", batch).status_code == 200
    loop.drain()
    return str(loop.sales("GET", "/leads/nia@smallco.example").json_body["id"])


def test_the_lead_page_says_what_goes_next_and_why(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    prospect = wiring.lead_service().prospect(lead_id)
    choice = wiring.nurture_service().choose(
        prospect, max(wiring.utc_now(), prospect.next_touch_at or wiring.utc_now())
    )
    cookie, _ = sign_in(loop, "dev-marketing-key")
    html = loop.client.http.get(f"/console/leads/{lead_id}", headers={"Cookie": cookie}).body.decode()
    assert 'id="next-template"' in html
    if choice is not None:
        assert choice.template.name in html and choice.why.split(":")[0] in html
    else:  # nothing relevant to send yet: the page says so, with the chooser's reason
        assert "No email planned:" in html
    routed = routed_lead(loop)
    html = loop.client.http.get(f"/console/leads/{routed}", headers={"Cookie": cookie}).body.decode()
    assert "nurture email pauses while sales owns it" in html


def test_the_lead_page_draws_how_engagement_decays(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    cookie, _ = sign_in(loop, "dev-sales-key")
    html = loop.client.http.get(f"/console/leads/{lead_id}", headers={"Cookie": cookie}).body.decode()
    assert '<svg class="chart decay" role="img"' in html
    assert "half-life" in html and "Engagement by day" in html


def test_each_score_reason_reads_in_plain_words_beside_its_rule(loop: Loop) -> None:
    import html as markup

    lead_id = routed_lead(loop)
    breakdown = loop.sales("GET", f"/leads/{lead_id}").json_body["scores"]["breakdown"]
    worded = [line for line in breakdown if line.get("text")]
    assert worded  # the summary words its reasons; the page must show those words, not rule ids
    cookie, _ = sign_in(loop, "dev-sales-key")
    page_html = loop.client.http.get(f"/console/leads/{lead_id}", headers={"Cookie": cookie}).body.decode()
    for line in worded:
        assert markup.escape(line["text"]) in page_html and line["rule"] in page_html
