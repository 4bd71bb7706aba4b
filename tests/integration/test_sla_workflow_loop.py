"""The sales SLA end to end: the worker starts infra/sla_workflow.asl.json on moto's Step Functions
interpreter, the state machine talks back through the events queue, and sales acting releases it.

moto 5.2.1 executes the callback pattern but cannot start a second execution in one mock, so every test
gets a fresh mock and routes exactly one lead. The SLA comes from the rules in seconds, so a test waits
seconds, not hours.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chalice.test import Client
from moto import mock_aws

from chalicelib import wiring
from chalicelib.adapters.bootstrap import ensure_local_resources, seed_dev_keys
from chalicelib.config import load_settings
from tests.e2e.conftest import Loop

WAIT_LIMIT_SECONDS = 30
RULES_KEY = "rules#default"


def journey(country: str = "US") -> dict[str, Any]:
    return {
        "batch": [
            {"type": "page", "messageId": "p1", "anonymousId": "a1", "properties": {"path": "/pricing"}},
            {
                "type": "identify",
                "messageId": "i1",
                "anonymousId": "a1",
                "userId": "u1",
                "traits": {"email": "ada@bigco.example", "title": "VP Sales", "country": country},
            },
            {
                "type": "track",
                "messageId": "t1",
                "anonymousId": "a1",
                "userId": "u1",
                "event": "Demo Requested",
            },
        ]
    }


class SlaLoop:
    def __init__(self, loop: Loop, state_machine_arn: str) -> None:
        self.loop = loop
        self.sfn = wiring.aws("stepfunctions")
        self.state_machine_arn = state_machine_arn

    def use_sla(self, accept_seconds: int, escalate_seconds: int) -> None:
        doc = yaml.safe_load(wiring.DEFAULT_RULES.read_text())
        doc["sla"] = {**doc["sla"], "accept_seconds": accept_seconds, "escalate_seconds": escalate_seconds}
        wiring.content().save(RULES_KEY, yaml.safe_dump(doc), "test", wiring.utc_now())
        wiring.rules().forget()

    def route(self) -> str:
        assert self.loop.track("/v1/batch", journey()).status_code == 200
        self.loop.drain()
        return str(wiring.lead_service().find("ada@bigco.example").lead_id)

    def summary(self, lead_id: str) -> dict[str, Any]:
        answer = self.loop.sales("GET", f"/leads/{lead_id}")
        assert answer.status_code == 200, answer.json_body
        return dict(answer.json_body)

    def drain_until(self, lead_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Feed what the workflow sends to the worker until the lead's summary satisfies `done`."""
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while time.monotonic() < deadline:
            self.loop.drain()
            summary = self.summary(lead_id)
            if done(summary):
                return summary
            time.sleep(0.05)
        raise AssertionError(f"the lead never got there: {json.dumps(self.summary(lead_id))[:2000]}")

    def token_of(self, lead_id: str) -> str | None:
        p = wiring.lead_service().prospect(lead_id)
        return p.sla.task_token if p.sla else None

    def execution(self) -> dict[str, Any]:
        (execution,) = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=execution["executionArn"])
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(0.05)
        raise AssertionError("the SLA workflow is still running")


@pytest.fixture
def sla_loop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SlaLoop]:
    env = {
        "LEADLOOP_STAGE": "test",
        "LEADLOOP_TABLE_PREFIX": f"t{uuid.uuid4().hex[:8]}-",
        "LEADLOOP_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LEADLOOP_PUBLIC_URL": "https://leads.example.test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("LEADLOOP_DYNAMODB_ENDPOINT", "LEADLOOP_AWS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        settings = load_settings()
        resources = ensure_local_resources(settings)
        monkeypatch.setenv("LEADLOOP_QUEUE_URL", resources["queue_url"])
        monkeypatch.setenv("LEADLOOP_DLQ_URL", resources["dead_letter_queue_url"])
        monkeypatch.setenv("LEADLOOP_SLA_STATE_MACHINE_ARN", resources["sla_state_machine_arn"])
        seed_dev_keys(settings)
        wiring.reset()
        import app

        with Client(app.app) as client:
            loop = Loop(client, wiring.aws("sqs"), resources["queue_url"], tmp_path / "outbox")
            yield SlaLoop(loop, resources["sla_state_machine_arn"])
        wiring.reset()


def test_an_unworked_lead_escalates_to_the_team_lead_then_returns_to_nurture_as_a_miss(
    sla_loop: SlaLoop,
) -> None:
    sla_loop.use_sla(accept_seconds=2, escalate_seconds=1)
    lead_id = sla_loop.route()
    assert sla_loop.summary(lead_id)["owner"] == "sam@example.com"

    escalated = sla_loop.drain_until(lead_id, lambda s: s["sla"]["status"] == "escalated")
    assert escalated["state"] == "sales_ready"
    notes = [
        json.loads(p.read_text()) for p in sorted((sla_loop.loop.outbox / "notifications").glob("*.json"))
    ]
    assert "hand-raise: Demo Requested" in notes[0]["why"]  # flagged low-fit: a VP, company unknown
    assert "alex@example.com" in notes[-1]["why"] and "sam@example.com" in notes[-1]["why"]

    returned = sla_loop.drain_until(lead_id, lambda s: s["state"] == "nurturing")
    assert returned["sla"]["status"] == "missed" and returned["owner"] is None
    last = returned["history"][-1]
    assert (last["trigger"], last["actor"]) == ("sla_expired", "sla")
    kinds = [entry["kind"] for entry in reversed(returned["activity"])]
    assert {"sla_started", "sla_escalated"} <= set(kinds)
    assert sla_loop.execution()["status"] == "SUCCEEDED"

    board = sla_loop.loop.sales("GET", "/metrics").json_body
    assert board["sla"] == {"met": 0, "escalated": 1, "missed": 1}
    assert board["follow_up"]["rate"] == 0


def test_accepting_within_the_sla_releases_the_workflow(sla_loop: SlaLoop) -> None:
    sla_loop.use_sla(accept_seconds=60, escalate_seconds=60)
    lead_id = sla_loop.route()
    sla_loop.drain_until(lead_id, lambda s: sla_loop.token_of(lead_id) is not None)

    accepted = sla_loop.loop.sales("POST", f"/leads/{lead_id}/accept", {})
    assert accepted.status_code == 200

    finished = sla_loop.execution()
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"])["resolution"] == {"outcome": "accept"}
    sla_loop.loop.drain()
    summary = sla_loop.summary(lead_id)
    assert summary["state"] == "accepted" and summary["sla"]["status"] == "met"
    assert any(e["kind"] == "sla_resolved" and e["released"] for e in summary["activity"])
    assert sla_loop.loop.sales("GET", "/metrics").json_body["follow_up"]["rate"] == 1


def test_accepting_after_escalation_releases_the_workflow_with_the_new_token(sla_loop: SlaLoop) -> None:
    sla_loop.use_sla(accept_seconds=1, escalate_seconds=60)
    lead_id = sla_loop.route()
    sla_loop.drain_until(lead_id, lambda s: s["sla"]["status"] == "escalated")

    assert sla_loop.loop.sales("POST", f"/leads/{lead_id}/accept", {}).status_code == 200

    finished = sla_loop.execution()
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"])["resolution"] == {"outcome": "accept"}
    assert sla_loop.summary(lead_id)["sla"]["status"] == "late"
