"""Source attribution and honest funnel numbers through the public API: a visit from a campaign becomes the
lead's first touch in its summary and its outcomes count under that source and campaign in `/metrics`; a
lead that goes round the funnel twice is one lead in each stage, its second pass shown as re-entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import wiring
from scripts.report import render
from tests.e2e.conftest import Loop

START = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
LANDING = (
    "https://www.acme.test/pricing?utm_source=google&utm_medium=cpc&utm_campaign=spring-launch&utm_term=crm"
)


def ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.json_body
    return dict(answer.json_body)


def at(n: int) -> str:
    """The n-th visit's time: an hour after the one before."""
    return (START + timedelta(hours=n)).isoformat()


def page(anon: str, n: int, url: str, referrer: str | None = None) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": f"{anon}-p{n}",
        "anonymousId": anon,
        "name": "Pricing",
        "timestamp": at(n),
        "properties": {"path": "/pricing", "url": url, **({"referrer": referrer} if referrer else {})},
    }


def identify(anon: str, email: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": f"{anon}-i1",
        "anonymousId": anon,
        "userId": f"user-{anon}",
        "traits": {"email": email, "firstName": "Ada", "title": "VP Engineering", "company": "BigCo"},
    }


def demo_requested(anon: str, n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"{anon}-t{n}",
        "anonymousId": anon,
        "userId": f"user-{anon}",
        "event": "Demo Requested",
    }


def test_a_campaign_visit_is_the_leads_first_touch_and_its_outcomes_count_under_it(loop: Loop) -> None:
    assert (
        loop.track("/v1/page", page("v1", 1, LANDING, "https://www.google.com/search?q=crm")).status_code
        == 200
    )
    assert loop.track("/v1/identify", identify("v1", "ada@bigco.example")).status_code == 200
    loop.drain()
    lead_id = str(wiring.lead_service().find("ada@bigco.example").lead_id)

    first = {
        "source": "google",
        "medium": "cpc",
        "campaign": "spring-launch",
        "term": "crm",
        "content": None,
        "referrer": "https://www.google.com/search?q=crm",
        "landing_page": LANDING,
        "at": at(1),
    }
    summary = ok(loop.sales("GET", f"/leads/{lead_id}"))
    assert summary["attribution"] == {"first_touch": first, "last_touch": first}

    # A later visit from a newsletter is the latest touch; the first stays. A visit within the site is none.
    newsletter = "https://www.acme.test/blog?utm_source=newsletter&utm_medium=email&utm_campaign=march"
    assert loop.track("/v1/page", page("v1", 2, newsletter)).status_code == 200
    assert loop.track("/v1/page", page("v1", 3, "https://www.acme.test/docs", LANDING)).status_code == 200
    assert loop.track("/v1/track", demo_requested("v1", 1)).status_code == 200
    loop.drain()
    attribution = ok(loop.sales("GET", f"/leads/{lead_id}"))["attribution"]
    assert attribution["first_touch"] == first
    assert attribution["last_touch"] == {
        "source": "newsletter",
        "medium": "email",
        "campaign": "march",
        "term": None,
        "content": None,
        "referrer": None,
        "landing_page": newsletter,
        "at": at(2),
    }

    ok(loop.sales("POST", f"/leads/{lead_id}/accept", {}))
    ok(loop.sales("POST", f"/leads/{lead_id}/opportunity", {"amount": 7000}))
    ok(loop.sales("POST", f"/leads/{lead_id}/won", {"amount": 7000}))
    # A second lead with no attribution at all counts apart, under "(none)".
    assert loop.track("/v1/identify", identify("v2", "bob@other.example")).status_code == 200
    loop.drain()

    board = ok(loop.sales("GET", "/metrics"))
    spring = {"leads": 1, "routed": 1, "accepted": 1, "won": 1, "revenue": 7000}
    unattributed = {"leads": 1, "routed": 0, "accepted": 0, "won": 0, "revenue": 0}
    assert board["attribution"] == {
        "by_source": {"google": spring, "(none)": unattributed},
        "by_campaign": {"spring-launch": spring, "(none)": unattributed},
    }
    printed = render(board)  # what `make report` shows
    assert "Leads by first-touch campaign" in printed
    assert [line.split() for line in printed.splitlines() if line.startswith("spring-launch")] == [
        ["spring-launch", "1", "1", "1", "1", "7,000"]
    ]


def test_a_lead_accepted_recycled_and_routed_again_is_one_lead_per_stage(loop: Loop) -> None:
    anon = "r1"
    calls = [page(anon, 1, "https://www.acme.test/pricing"), identify(anon, "ada@bigco.example")]
    assert loop.track("/v1/batch", {"batch": [*calls, demo_requested(anon, 1)]}).status_code == 200
    loop.drain()
    lead_id = str(wiring.lead_service().find("ada@bigco.example").lead_id)
    ok(loop.sales("POST", f"/leads/{lead_id}/accept", {}))
    ok(loop.sales("POST", f"/leads/{lead_id}/recycle", {"reason": "bad_timing"}))
    assert loop.track("/v1/track", demo_requested(anon, 2)).status_code == 200  # raises a hand again
    loop.drain()
    assert ok(loop.sales("GET", f"/leads/{lead_id}"))["state"] == "sales_ready"

    board = ok(loop.sales("GET", "/metrics"))
    funnel = {row["stage"]: row for row in board["stages"]["funnel"]}
    assert {stage: (row["leads"], row["reentries"]) for stage, row in funnel.items()} == {
        "nurturing": (1, 1),
        "sales_ready": (1, 1),
        "accepted": (1, 0),
        "opportunity": (0, 0),
        "won": (0, 0),
    }
    assert funnel["sales_ready"]["conversion_from_previous"] == 1.0  # the one lead went on, not "50%"
    assert funnel["accepted"]["conversion_from_previous"] == 1.0
    assert board["stages"]["reentries"]["nurturing"] == 1
    assert board["stages"]["by_source"]["dev-write"]["nurturing"] == 1
    # Both handoffs still ask for follow-up: routings are counted as such, and the leads among them.
    assert (board["routed"]["total"], board["routed"]["leads"]) == (2, 1)
    assert board["follow_up"]["routed"] == 2
    funnel_lines = render(board).split("\n\n")[1].splitlines()
    assert funnel_lines[1].split() == ["stage", "leads", "re-entries", "conversion"]
    assert funnel_lines[3].split() == ["nurturing", "1", "1", "-"]
    assert funnel_lines[4].split() == ["sales_ready", "1", "1", "100.0%"]
