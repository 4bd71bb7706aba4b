"""Erase and export a person through the public API (README "Erase and export (GDPR/CCPA)"): after an erase
nothing of the person is left in any table or in the outbox, the address stays suppressed, and a new visit
or identify starts a fresh profile."""

from __future__ import annotations

import json
from typing import Any

import boto3

from chalicelib import wiring
from tests.e2e.conftest import Loop

ADMIN = {"Authorization": "Bearer dev-admin-key"}
EMAIL = "erin.erased@bigco.example"
ANON, PHONE = "anon-erin-laptop", "anon-erin-phone"
PERSONAL = (EMAIL, ANON, PHONE, "user-erin", "Erin", "Erasmus")


def _page(message_id: str, path: str, anon: str) -> dict[str, Any]:
    return {"type": "page", "messageId": message_id, "anonymousId": anon, "properties": {"path": path}}


def _identify(message_id: str, anon: str, email: str = EMAIL) -> dict[str, Any]:
    traits = {
        "email": email,
        "firstName": "Erin",
        "lastName": "Erasmus",
        "company": "BigCo",
        "company_size": 800,
    }
    return {
        "type": "identify",
        "messageId": message_id,
        "anonymousId": anon,
        "userId": "user-erin",
        "traits": traits,
    }


def _person(loop: Loop) -> tuple[str, str]:
    """Erin: a laptop visit and identify, a nurture email, a phone visit merged in, a hand-raise routed to
    sales (a notification in the outbox). Returns (lead id, the merged-away lead id)."""
    group = {"type": "group", "messageId": "e-g1", "anonymousId": ANON, "userId": "user-erin",
             "groupId": "acct-erin", "traits": {"name": "BigCo Ltd", "employees": 800}}  # fmt: skip
    loop.track("/v1/batch", {"batch": [_page("e-p1", "/pricing", ANON), _identify("e-i1", ANON), group]})
    loop.drain()
    lead_id = loop.sales("GET", f"/leads/{EMAIL}").json_body["id"]
    loop.make_due(lead_id)
    assert loop.sweep()["sent"] == 1
    loop.track("/v1/batch", {"batch": [_page("e-p2", "/docs", PHONE)]})
    loop.drain()
    phone_lead = loop.sales("GET", f"/leads/{PHONE}").json_body["id"]
    assert phone_lead != lead_id
    hand_raise = {"type": "track", "messageId": "e-t1", "anonymousId": PHONE, "event": "Demo Requested"}
    loop.track("/v1/batch", {"batch": [_identify("e-i2", PHONE), hand_raise]})
    loop.drain()
    loop.drain_stream()
    summary = loop.sales("GET", f"/leads/{phone_lead}").json_body  # the old id forwards to the survivor
    assert summary["id"] == lead_id and summary["state"] == "sales_ready"
    return lead_id, phone_lead


def _every_item() -> list[tuple[str, str]]:
    """(table, item as JSON) for every item of every table of this stage."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    prefix = wiring.settings().table_prefix
    found = []
    for table in client.list_tables()["TableNames"]:
        if not table.startswith(prefix):
            continue
        for page in client.get_paginator("scan").paginate(TableName=table):
            found.extend(
                (table.removeprefix(prefix), json.dumps(item, default=str)) for item in page["Items"]
            )
    return found


def test_export_answers_everything_held_and_only_admins_may_ask(loop: Loop) -> None:
    lead_id, phone_lead = _person(loop)
    for headers, status in ((None, 401), ({"Authorization": "Bearer dev-sales-key"}, 403),
                            ({"Authorization": "Bearer dev-marketing-key"}, 403)):  # fmt: skip
        assert loop.client.http.get(f"/leads/{lead_id}/export", headers=headers or {}).status_code == status
        assert loop.client.http.delete(f"/leads/{lead_id}", headers=headers or {}).status_code == status

    answer = loop.client.http.get(f"/leads/{EMAIL}/export", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    export = answer.json_body
    assert export["lead_id"] == lead_id
    assert export["profile"]["email"] == EMAIL
    assert {f"email:{EMAIL}", f"anon:{ANON}", f"anon:{PHONE}", "user:user-erin"} <= set(export["identities"])
    assert export["merged_lead_ids"] == [phone_lead]
    kinds = {entry["kind"] for entry in export["activity"]}
    assert {"transition", "email_sent"} <= kinds
    assert {entry["lead_id"] for entry in export["activity"]} <= {lead_id, phone_lead}
    (message,) = export["messages"]
    assert message["status"] == "sent" and message["send_id"]
    assert export["suppression"] == {"profile": None, "contactable": True, "on_erasure_list": False}
    assert [account["account_id"] for account in export["accounts"]] == ["acct-erin"]

    feed = loop.client.http.get(f"/activity?lead={lead_id}", headers=ADMIN).json_body["entries"]
    (exported,) = [entry for entry in feed if entry["kind"] == "exported"]
    assert exported["actor"] and exported["lead_id"] == lead_id
    assert not any(value in json.dumps(exported) for value in PERSONAL)


def test_erase_leaves_nothing_of_the_person_and_keeps_the_address_suppressed(loop: Loop) -> None:
    lead_id, phone_lead = _person(loop)
    send_id = loop.sales("GET", f"/leads/{lead_id}").json_body["messages"][0]["send_id"]
    assert (loop.outbox / f"{send_id}.eml").exists()
    assert list((loop.outbox / "notifications").glob(f"*-{lead_id}.json"))

    answer = loop.client.http.delete(f"/leads/{lead_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.body
    assert answer.json_body["erased"] == lead_id
    assert answer.json_body["removed"]["merged_leads"] == 1
    loop.drain()
    loop.drain_stream()

    for ref in (lead_id, phone_lead, EMAIL, ANON, "user-erin"):
        assert loop.sales("GET", f"/leads/{ref}").status_code == 404
    assert loop.client.http.delete(f"/leads/{lead_id}", headers=ADMIN).status_code == 404  # idempotent
    assert loop.client.http.get(f"/leads/{lead_id}/export", headers=ADMIN).status_code == 404

    left = _every_item()
    for table, item in left:
        assert not any(value in item for value in PERSONAL), f"{table} still holds {item}"
    naming = [(table, item) for table, item in left if lead_id in item or phone_lead in item]
    audit = [item for table, item in naming if table == "activity"]
    marks = [item for table, item in naming if table == "nonces"]
    assert len(naming) == len(audit) + len(marks), naming
    assert {json.loads(item)["kind"]["S"] for item in audit} == {"erased"}
    # Marks of writes the stream may still deliver stay until they expire: they hold their key and expiry.
    assert all(set(json.loads(item)) == {"key", "expires_at"} for item in marks)
    assert not [path for path in loop.outbox.rglob("*") if path.is_file() and lead_id in path.read_text()]
    assert not (loop.outbox / f"{send_id}.eml").exists()

    feed = loop.client.http.get("/activity", headers=ADMIN).json_body["entries"]
    (erased,) = [entry for entry in feed if entry["kind"] == "erased"]
    assert erased["lead_id"] == lead_id and erased["actor"]
    assert not any(value in json.dumps(erased) for value in PERSONAL)

    # The address comes back: a fresh profile, suppressed, never emailed.
    loop.track("/v1/batch", {"batch": [_identify("e-i3", "anon-erin-new")]})
    loop.drain()
    fresh = loop.sales("GET", f"/leads/{EMAIL}").json_body
    assert fresh["id"] not in (lead_id, phone_lead)
    assert fresh["contactable"] is False and fresh["suppression"]["reason"] == "erased"
    loop.make_due(fresh["id"])
    assert loop.sweep()["sent"] == 0
    # A new visit with an old anonymous id starts a fresh anonymous profile.
    loop.track("/v1/batch", {"batch": [_page("e-p4", "/blog", ANON)]})
    loop.drain()
    visitor = loop.sales("GET", f"/leads/{ANON}").json_body
    assert visitor["id"] not in (lead_id, phone_lead, fresh["id"])
    assert visitor["state"] == "anonymous"


def test_an_import_does_not_make_an_erased_address_contactable(loop: Loop) -> None:
    lead_id, _ = _person(loop)
    assert loop.client.http.delete(f"/leads/{lead_id}", headers=ADMIN).status_code == 200
    csv = f"email,first_name\n{EMAIL},Erin\n".encode()
    answer = loop.client.http.post("/leads/import", headers={**ADMIN, "Content-Type": "text/csv"}, body=csv)
    assert answer.status_code == 200 and answer.json_body["imported"] == 1
    imported = loop.sales("GET", f"/leads/{EMAIL}").json_body
    assert imported["contactable"] is False and imported["suppression"]["reason"] == "erased"
