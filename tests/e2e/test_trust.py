"""The public write key cannot choose who owns a lead nor who reads its sales summary (issue 11, defect 1):
the attack end to end through /v1/batch, the worker and the notifier, and the owner's email refused for an
address that is not on a team."""

from __future__ import annotations

import json
from email import message_from_bytes
from typing import Any

from chalicelib import wiring
from tests.e2e.conftest import Loop

ATTACKER = "attacker@evil.example"


def owner_emails(loop: Loop) -> list[str]:
    """The addressees of every email the local mailer wrote (owner notifications included)."""
    return sorted(str(message_from_bytes(path.read_bytes())["To"]) for path in loop.outbox.glob("*.eml"))


def activity(loop: Loop, lead_id: str, kind: str) -> list[dict[str, Any]]:
    answer = loop.sales("GET", f"/activity?lead={lead_id}")
    assert answer.status_code == 200, answer.json_body
    return [entry for entry in answer.json_body["entries"] if entry["kind"] == kind]


def test_an_identify_naming_a_crm_owner_does_not_choose_the_owner_nor_get_the_summary(loop: Loop) -> None:
    calls = [
        {
            "type": "identify",
            "messageId": "evil-i1",
            "anonymousId": "evil",
            "userId": "user-evil",
            "traits": {"email": "ada@bigco.example", "country": "GB", "crm_owner": ATTACKER},
        },
        {
            "type": "track",
            "messageId": "evil-t1",
            "anonymousId": "evil",
            "userId": "user-evil",
            "event": "Demo Requested",
            "context": {"traits": {"crm_owner": ATTACKER, "owner": ATTACKER}},
        },
    ]
    assert loop.track("/v1/batch", {"batch": calls}).status_code == 200
    loop.drain()
    lead_id = wiring.lead_service().find("ada@bigco.example").lead_id

    summary = loop.sales("GET", f"/leads/{lead_id}").json_body
    assert summary["state"] == "sales_ready"
    assert summary["owner"] == "pierre@example.com"  # the GB territory's team, not the attacker
    assert ATTACKER not in json.dumps(summary)
    (note,) = (loop.outbox / "notifications").glob("*.json")
    assert json.loads(note.read_text())["lead"]["owner"] == "pierre@example.com"
    assert owner_emails(loop) == ["pierre@example.com"]
    (assigned,) = activity(loop, lead_id, "assigned")
    assert assigned["team"] == "emea" and "CRM" not in assigned["why"]


def test_an_owner_outside_the_teams_is_not_mailed_and_the_refusal_is_on_the_lead(loop: Loop) -> None:
    calls = [
        {
            "type": "identify",
            "messageId": "b-i1",
            "anonymousId": "b",
            "traits": {"email": "bob@other.example", "country": "US"},
        },
        {"type": "track", "messageId": "b-t1", "anonymousId": "b", "event": "Demo Requested"},
    ]
    assert loop.track("/v1/batch", {"batch": calls}).status_code == 200
    loop.drain()
    lead_id = wiring.lead_service().find("bob@other.example").lead_id
    moved = loop.sales("POST", f"/leads/{lead_id}/reassign", {"owner": "zoe@elsewhere.example"})
    assert moved.status_code == 200 and moved.json_body["owner"] == "zoe@elsewhere.example"

    # The SLA passes unaccepted: the escalation notifies sales, but zoe is on no team.
    loop.sqs.send_message(
        QueueUrl=loop.queue_url, MessageBody=json.dumps({"type": "sla_escalated", "lead_id": lead_id})
    )
    loop.drain()

    assert owner_emails(loop) == ["sam@example.com"]  # the routing mail; nothing to zoe
    escalation = activity(loop, lead_id, "notified")[0]  # newest first
    assert "SLA escalation" in escalation["why"]
    (refused,) = [d for d in escalation["deliveries"] if d["channel"] == "owner_email"]
    assert refused["ok"] is False and "not a team member" in refused["detail"]
