"""Every event on the journey (#13 "Sales"): an event no rule scores makes no key moment, yet it shows on the
lead page and in GET /leads/{id} with the properties that say what it was, as text."""

from __future__ import annotations

from tests.browser.test_console_http import routed_lead, sign_in
from tests.e2e.conftest import Loop


def test_an_unscored_event_with_its_properties_is_on_the_lead_page_and_in_the_summary(loop: Loop) -> None:
    lead_id = routed_lead(loop)
    email = loop.sales("GET", f"/leads/{lead_id}").json_body["identity"]["email"]
    registered = {
        "type": "track",
        "messageId": "unscored-1",
        "userId": "user-anon-1",
        "event": "Webinar Registered",  # no rule scores a registration
        "properties": {
            "webinar_name": "Pipelines <i>live</i>",
            "asset": "agenda.pdf",
            "secret": "never-shown",
        },
        "traits": {"email": email},
    }
    assert loop.track("/v1/batch", {"batch": [registered]}).status_code == 200
    loop.drain()

    summary = loop.sales("GET", f"/leads/{lead_id}").json_body
    assert summary["other_events"][0]["name"] == "Webinar Registered"
    assert summary["other_events"][0]["properties"] == {
        "webinar_name": "Pipelines <i>live</i>",
        "asset": "agenda.pdf",
    }
    cookie, _ = sign_in(loop, "dev-sales-key")
    html = loop.client.http.get(f"/console/leads/{lead_id}", headers={"Cookie": cookie}).body.decode()
    assert "Webinar Registered" in html
    assert "Pipelines &lt;i&gt;live&lt;/i&gt;" in html and "<i>live" not in html
    assert "agenda.pdf" in html and "never-shown" not in html
