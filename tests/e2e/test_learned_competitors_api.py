"""Competitors learned from sales through the public API and the console: a rep disqualifies a routed lead
as a competitor, everyone can read what the rules learned, a marketer removes it (API or console), sales
cannot."""

from __future__ import annotations

from tests.browser.test_console_http import routed_lead, sign_in
from tests.browser.test_console_marketing_http import get, post, text
from tests.e2e.conftest import MARKETING, Loop


def test_a_competitor_disqualification_is_learned_listed_and_removable(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    email = loop.sales("GET", f"/leads/{lead_id}").json_body["identity"]["email"]
    domain = email.split("@")[1]
    answer = loop.sales("POST", f"/leads/{lead_id}/disqualify", {"reason": "Competitor: pricing intel"})
    assert answer.status_code == 200, answer.body
    loop.drain_stream()  # the effect is performed by the writer; the stream's second pass changes nothing

    learned = loop.sales("GET", "/rules/competitors").json_body
    assert [c["domain"] for c in learned["competitors"]] == [domain]
    assert learned["competitors"][0]["lead_id"] == lead_id and learned["count"] == 1
    assert loop.sales("DELETE", f"/rules/competitors/{domain}").status_code == 403

    cookie, csrf = sign_in(loop, "dev-marketing-key")
    page = text(get(loop, cookie, "/console/rules"))
    assert "Competitors learned from sales" in page and domain in page
    removed = post(loop, cookie, "/console/rules/competitors/forget", {"csrf": csrf, "domain": domain})
    assert removed.status_code == 303 and domain in removed.headers["Location"]
    assert loop.sales("GET", "/rules/competitors").json_body["competitors"] == []

    again = loop.client.http.delete(f"/rules/competitors/{domain}", headers=MARKETING)
    assert again.status_code == 404 and "not a learned competitor domain" in again.body.decode()
    bad = loop.client.http.delete("/rules/competitors/not%20a%20domain", headers=MARKETING)
    assert bad.status_code == 400
    refused = post(loop, cookie, "/console/rules/competitors/forget", {"csrf": csrf, "domain": domain})
    assert refused.status_code == 404 and "Not removed" in text(refused)
