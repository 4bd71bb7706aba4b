"""Ids sent out before a merge keep working after it, and a link clicked twice counts once.

An email carries its lead's id in the unsubscribe link, in every tracked `/r/` link, and in the tags a
provider echoes back with opens and clicks. When `identify` later merges that lead into another, each of them
must reach the survivor: an unsubscribe that answered 404 would leave the person contactable.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from chalicelib import wiring
from chalicelib.adapters.queue import pack
from chalicelib.adapters.tokens import REDIRECT, UNSUBSCRIBE, sign
from chalicelib.domain.events import Event, EventKind
from tests.e2e.conftest import FakeContext, Loop

AT = "2026-11-23T10:00:00Z"


def _call(kind: str, anonymous_id: str, message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "anonymousId": anonymous_id, "messageId": message_id, "timestamp": AT, **fields}


def _two_leads_then_merge(loop: Loop) -> tuple[str, str]:
    """An anonymous visitor (lead A) and a known contact (lead B), joined by an identify: B survives."""
    page = _call("page", "anon-a", "p1", properties={"path": "/pricing"})
    known = _call("identify", "anon-b", "i1", userId="u-ada", traits={"email": "ada@bigco.example"})
    assert loop.track("/v1/batch", {"batch": [page, known]}).status_code == 200
    loop.drain()
    old = wiring.lead_service().find("anon-a").lead_id
    survivor = wiring.lead_service().find("ada@bigco.example").lead_id
    assert old != survivor
    joined = _call("identify", "anon-a", "i2", userId="u-ada", traits={"email": "ada@bigco.example"})
    assert loop.track("/v1/identify", joined).status_code == 200
    loop.drain()
    assert wiring.prospects().get(old) is None  # merged away
    return old, survivor


def test_an_unsubscribe_link_of_a_merged_lead_unsubscribes_the_survivor(loop: Loop) -> None:
    old, survivor = _two_leads_then_merge(loop)
    token = sign(UNSUBSCRIBE, {"l": old}, wiring.settings().signing_secret)

    answer = loop.client.http.post(
        f"/unsubscribe/{token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"List-Unsubscribe=One-Click",
    )

    assert answer.status_code == 200
    summary = loop.sales("GET", f"/leads/{survivor}").json_body
    assert summary["contactable"] is False and summary["suppression"]["reason"] == "unsubscribed"


def test_a_tracked_link_of_a_merged_lead_counts_for_the_survivor_once_however_often_it_is_clicked(
    loop: Loop,
) -> None:
    old, survivor = _two_leads_then_merge(loop)
    link = {"u": "https://bigco.example/security", "t": ["security"], "l": old, "m": "security-overview"}
    token = sign(REDIRECT, link, wiring.settings().signing_secret)

    for _ in range(5):  # a reader double-clicks, a scanner follows it, the reader comes back
        answer = loop.client.http.get(f"/r/{token}")
        assert answer.status_code == 302
        assert answer.headers["Location"] == link["u"]

    p = wiring.lead_service().prospect(survivor)
    clicks = [m for m in p.key_moments if m.kind == "email_click"]
    assert len(clicks) == 1
    board = loop.sales("GET", "/metrics").json_body
    (row,) = [m for m in board["messages"] if m["template"] == "security-overview"]
    assert row["clicked"] == 1


def test_a_provider_event_naming_a_merged_lead_is_applied_to_the_survivor(loop: Loop) -> None:
    import app

    old, survivor = _two_leads_then_merge(loop)
    opened = Event(
        message_id="sendgrid:evt-1",
        kind=EventKind.EMAIL,
        at=datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
        source="sendgrid",
        name="clicked",
        lead_id=old,
        properties={"provider": "sendgrid", "url": "https://bigco.example/pricing", "template": "pricing"},
    )
    (body,) = pack([opened])
    record = {"messageId": "m1", "receiptHandle": "h", "body": body, "eventSource": "aws:sqs"}

    assert app.apply_events({"Records": [record]}, FakeContext()) == {"batchItemFailures": []}

    assert wiring.prospects().get(old) is None  # not brought back to life
    kinds = Counter(m.kind for m in wiring.lead_service().prospect(survivor).key_moments)
    assert kinds["email_click"] == 1
    assert loop.sales("GET", f"/leads/{old}").json_body["id"] == survivor
