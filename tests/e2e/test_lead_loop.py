"""A prospect's whole journey through the public API: anonymous visit → identified → hand-raise → sales →
recycle → a different, tailored next message."""

from __future__ import annotations

import email
from email import policy

from chalicelib import wiring
from tests.e2e.conftest import Loop


def page(message_id: str, path: str, anonymous_id: str = "anon-1") -> dict:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "name": path.strip("/"),
        "properties": {"path": path, "url": f"https://www.example.com{path}", "title": path},
    }


def journey(email: str = "ada@bigco.example", anon: str = "anon-1") -> dict:
    return {
        "batch": [
            page(f"{anon}-p1", "/pricing", anon),
            page(f"{anon}-p2", "/docs/api", anon),
            page(f"{anon}-p3", "/security", anon),
            {
                "type": "identify",
                "messageId": f"{anon}-i1",
                "anonymousId": anon,
                "userId": f"user-{anon}",
                "traits": {
                    "email": email,
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "title": "VP Engineering",
                    "company": "BigCo",
                    "company_size": 800,
                },
            },
            {
                "type": "track",
                "messageId": f"{anon}-t1",
                "anonymousId": anon,
                "userId": f"user-{anon}",
                "event": "Demo Requested",
                "properties": {"source": "pricing-page"},
            },
        ]
    }


def test_hand_raise_routes_to_sales_with_the_pages_read_and_the_breakdown(loop: Loop) -> None:
    answer = loop.track("/v1/batch", journey())
    assert answer.status_code == 200 and answer.json_body == {"success": True}
    loop.drain()

    pool = loop.sales("GET", "/leads?state=sales_ready")
    assert pool.status_code == 200
    leads = pool.json_body["leads"]
    assert [lead["email"] for lead in leads] == ["ada@bigco.example"]

    summary = loop.sales("GET", f"/leads/{leads[0]['id']}").json_body
    assert {p["path"] for p in summary["pages"]} == {"/pricing", "/docs/api", "/security"}
    rules = {line["rule"] for line in summary["scores"]["breakdown"]}
    assert {"pricing_page", "hand_raise", "title_executive"} <= rules
    assert [h["to"] for h in summary["history"]] == ["nurturing", "sales_ready"]
    assert summary["why_sales"] == "hand-raise: Demo Requested"
    assert summary["identity"]["anonymous_ids"] == ["anon-1"]
    notes = list((loop.outbox / "notifications").glob("*.json"))
    assert len(notes) == 1 and "hand-raise: Demo Requested" in notes[0].read_text()
    owner_mail = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in loop.outbox.glob("*.eml")
    ]
    assert [m["To"] for m in owner_mail] == [summary["owner"]]
    assert "hand-raise: Demo Requested" in owner_mail[0].get_body(("plain",)).get_content()


def test_the_same_batch_three_times_counts_once(loop: Loop) -> None:
    for _ in range(3):
        assert loop.track("/v1/batch", journey()).status_code == 200
    loop.drain()
    leads = loop.sales("GET", "/leads").json_body["leads"]
    assert len(leads) == 1
    summary = loop.sales("GET", f"/leads/{leads[0]['id']}").json_body
    assert len(summary["pages"]) == 3
    pricing = next(line for line in summary["scores"]["breakdown"] if line["rule"] == "pricing_page")
    assert pricing["points"] == 8
    assert len(list((loop.outbox / "notifications").glob("*.json"))) == 1


def test_recycle_with_bad_timing_returns_to_nurture_and_changes_the_next_message(loop: Loop) -> None:
    loop.track("/v1/batch", journey())
    loop.drain()
    lead_id = loop.sales("GET", "/leads").json_body["leads"][0]["id"]
    prospect = wiring.lead_service().prospect(lead_id)
    before = wiring.nurture_service().choose(_as_nurturing(prospect), prospect.last_activity_at)

    answer = loop.sales(
        "POST",
        f"/leads/{lead_id}/recycle",
        {"reason": "bad_timing", "note": "budget next FY", "revisit_in_days": 0},
    )
    assert answer.status_code == 200, answer.json_body
    summary = answer.json_body
    assert summary["state"] == "nurturing"
    assert summary["recycle"]["reason"] == "bad_timing"
    assert summary["stage"] == "reengagement"

    recycled = wiring.lead_service().prospect(lead_id)
    after = wiring.nurture_service().choose(recycled, recycled.history[-1].at)
    assert before is not None and after is not None
    assert after.template.name != before.template.name
    assert "bad_timing" in after.why


def _as_nurturing(prospect):  # what the chooser would have picked had the lead stayed in nurture
    from chalicelib.domain.lifecycle import State

    prospect.state = State.NURTURING
    prospect.history = []
    return prospect


def test_errors_are_documented_4xx_and_the_server_keeps_serving(loop: Loop) -> None:
    assert (
        loop.client.http.post(
            "/v1/batch", headers={"Authorization": "Basic ZGV2LXdyaXRlLWtleTo="}, body=b"{not json"
        ).status_code
        == 400
    )
    wrong = loop.client.http.post(
        "/v1/batch", headers={"Authorization": "Basic d3Jvbmc6"}, body=b'{"batch":[]}'
    )
    assert wrong.status_code == 401 and wrong.json_body["error"]["code"] == "unauthenticated"
    assert loop.sales("GET", "/leads/L-nope").status_code == 404
    loop.track("/v1/batch", journey())
    loop.drain()
    lead_id = loop.sales("GET", "/leads").json_body["leads"][0]["id"]
    illegal = loop.sales("POST", f"/leads/{lead_id}/won", {"amount": 10})
    assert illegal.status_code == 409
    assert illegal.json_body["error"]["details"]["state"] == "sales_ready"
    assert illegal.json_body["error"]["details"]["allowed"] == ["accept", "recycle", "disqualify"]
    assert illegal.json_body["error"]["message"] == (
        "This lead is waiting for sales to accept it, so it cannot be marked won. "
        "You can: accept, recycle, disqualify."
    )  # only what the caller can do, in English: no internal triggers (qualified, hand_raise, sla_expired)
    assert loop.client.http.get("/health").status_code == 200
    no_key = loop.client.http.get("/leads")
    assert no_key.status_code == 401
    marketing_writes = loop.client.http.post(
        f"/leads/{lead_id}/accept", headers={"Authorization": "Bearer dev-marketing-key"}, body=b"{}"
    )
    assert marketing_writes.status_code == 403


def test_nurture_sends_a_tailored_email_with_one_click_unsubscribe(loop: Loop) -> None:
    batch = journey()
    batch["batch"] = batch["batch"][:4]  # no hand-raise: stays in nurture
    loop.track("/v1/batch", batch)
    loop.drain()
    lead_id = loop.sales("GET", "/leads").json_body["leads"][0]["id"]
    loop.make_due(lead_id)
    assert loop.sweep()["sent"] == 1
    emails = list(loop.outbox.glob("*.eml"))
    assert len(emails) == 1
    text = emails[0].read_text()
    assert "=?utf-8?" not in text.split("\n\n", 1)[0]  # headers stay readable for mail clients
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text
    summary = loop.sales("GET", f"/leads/{lead_id}").json_body
    assert summary["messages"][0]["why"]

    header = email.message_from_string(text)["List-Unsubscribe"]
    token = header.strip("<>").rsplit("/unsubscribe/", 1)[1]
    assert (
        loop.client.http.post(f"/unsubscribe/{token}", body=b"List-Unsubscribe=One-Click").status_code == 200
    )
    assert loop.sales("GET", f"/leads/{lead_id}").json_body["suppression"]["reason"] == "unsubscribed"
    loop.make_due(lead_id)
    assert loop.sweep()["sent"] == 0


def test_identify_merges_another_devices_anonymous_history_into_the_known_prospect(loop: Loop) -> None:
    loop.track("/v1/batch", {"batch": [page("laptop-1", "/pricing", "laptop")]})
    loop.track(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "identify",
                    "messageId": "laptop-i",
                    "anonymousId": "laptop",
                    "traits": {"email": "ada@bigco.example"},
                },
            ]
        },
    )
    loop.drain()
    loop.track(
        "/v1/batch", {"batch": [page("phone-1", "/security", "phone"), page("phone-2", "/docs/api", "phone")]}
    )
    loop.drain()
    assert len(loop.sales("GET", "/leads").json_body["leads"]) == 2  # the phone is still a stranger

    loop.track(
        "/v1/identify",
        {"messageId": "phone-i", "anonymousId": "phone", "traits": {"email": "Ada@BigCo.example"}},
    )
    loop.drain()
    leads = loop.sales("GET", "/leads").json_body["leads"]
    assert len(leads) == 1
    summary = loop.sales("GET", "/leads/ada@bigco.example").json_body
    assert sorted(summary["identity"]["anonymous_ids"]) == ["laptop", "phone"]
    assert {p["path"] for p in summary["pages"]} == {"/pricing", "/security", "/docs/api"}
    assert loop.sales("GET", f"/leads/{summary['id']}").status_code == 200


def test_alias_joins_the_previous_id(loop: Loop) -> None:
    loop.track("/v1/page", page("a-1", "/pricing", "anon-x"))
    loop.drain()
    loop.track("/v1/alias", {"messageId": "al-1", "previousId": "anon-x", "userId": "user-x"})
    loop.drain()
    summary = loop.sales("GET", "/leads/user-x").json_body
    assert summary["identity"]["user_id"] == "user-x" and "anon-x" in summary["identity"]["anonymous_ids"]
    assert [p["path"] for p in summary["pages"]] == ["/pricing"]


def test_curl_style_bodies_and_encoded_emails_are_understood(loop: Loop) -> None:
    loop.track("/v1/batch", journey(email="ada+x@bigco.example"))
    loop.drain()
    form = {"Authorization": "Bearer dev-sales-key", "Content-Type": "application/x-www-form-urlencoded"}
    answer = loop.client.http.post(
        "/leads/ada%2Bx%40bigco.example/accept", headers=form, body=b'{"owner": "sam"}'
    )
    assert answer.status_code == 200, answer.body
    assert answer.json_body["owner"] == "sam" and answer.json_body["state"] == "accepted"


def test_the_pool_filters_by_sla_status(loop: Loop) -> None:
    loop.track("/v1/batch", journey())
    loop.track("/v1/batch", journey(email="bo@bigco.example", anon="anon-2"))
    loop.drain()
    waiting = loop.sales("GET", "/leads?sla=waiting").json_body["leads"]
    assert sorted(lead["email"] for lead in waiting) == ["ada@bigco.example", "bo@bigco.example"]
    assert all(lead["sla"] == "waiting" for lead in waiting)
    loop.sales("POST", "/leads/ada@bigco.example/accept", {"owner": "sam"})
    still = loop.sales("GET", "/leads?sla=waiting&limit=1").json_body
    assert [lead["email"] for lead in still["leads"]] == ["bo@bigco.example"]
    assert loop.sales("GET", "/leads?sla=late-ish").status_code == 400
