"""The nurture sweep fanned out (issue 15): the sweep enqueues who is due, send workers send at SES's pace.

Each test runs the app's own handlers: `app.send_due_touches` (the sweep, with a touches queue configured)
and `app.send_touches` (the send workers' SQS handler), with records carrying unique messageIds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.mail import OutgoingEmail, SendThrottled
from chalicelib.adapters.queue import leads_from_body
from chalicelib.domain.messaging import CLAIMED, pending_claim
from tests.e2e.conftest import FakeContext, Loop
from tests.e2e.test_nurture_reliability import nurtured, prospect, recipients

ADDRESSES = ("ann@bigco.example", "ben@bigco.example", "cat@bigco.example")


@pytest.fixture
def touches(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A touches queue: the sweep fans out instead of sending in-process."""
    url = loop.sqs.create_queue(QueueName=f"touches-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    monkeypatch.setenv("LEADLOOP_TOUCHES_QUEUE_URL", url)
    wiring.reset()
    yield url
    wiring.reset()


def tick() -> dict[str, int]:
    import app

    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-30T09:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/send_due_touches"],
        "detail": {},
    }
    return app.send_due_touches(event, FakeContext())  # type: ignore[no-any-return]


def take(loop: Loop, url: str) -> list[dict[str, Any]]:
    """Every message on the touches queue, as SQS records with unique messageIds (and deleted from it)."""
    records = []
    while messages := loop.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            records.append({"messageId": str(uuid.uuid4()), "body": m["Body"], "eventSource": "aws:sqs"})
            loop.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return records


def work(records: list[dict[str, Any]]) -> list[str]:
    """Run the send workers' handler on `records`; returns the messageIds it failed (left for SQS)."""
    import app

    answer = app.send_touches({"Records": records}, FakeContext())
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def due_leads(loop: Loop) -> dict[str, str]:
    leads = nurtured(loop, *ADDRESSES)
    for lead_id in leads.values():
        loop.make_due(lead_id)
    return leads


def test_the_sweep_enqueues_each_due_lead_once_per_tick_and_sends_nothing_itself(
    loop: Loop, touches: str
) -> None:
    leads = due_leads(loop)
    counts = tick()
    assert counts["due"] == counts["enqueued"] == 3
    records = take(loop, touches)
    enqueued = Counter(lead for record in records for lead in leads_from_body(record["body"]))
    assert enqueued == Counter(leads.values())  # each due lead once
    assert recipients(loop) == []  # the sweep itself sends nothing


def test_a_worker_sends_each_enqueued_lead_and_a_redelivered_message_sends_nothing_twice(
    loop: Loop, touches: str
) -> None:
    due_leads(loop)
    tick()
    records = take(loop, touches)
    assert work(records) == []
    assert recipients(loop) == sorted(ADDRESSES)
    # SQS delivers at least once: the same message again, and a second tick's copy of a lead sent meanwhile.
    again = [{**record, "messageId": str(uuid.uuid4())} for record in records]
    assert work(again) == []
    assert tick()["due"] == 0  # sent leads are no longer due
    assert recipients(loop) == sorted(ADDRESSES)


def test_ses_throttling_leaves_the_message_for_redelivery_and_it_is_sent_once_then(
    loop: Loop, touches: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    leads = due_leads(loop)
    tick()
    records = take(loop, touches)
    real = wiring.mailer()
    throttling = True

    class Throttled:
        def send(self, email: OutgoingEmail, at: datetime) -> str:
            if throttling:
                raise SendThrottled("SES throttled the send (sending rate or daily quota)")
            return real.send(email, at)

    monkeypatch.setattr(wiring.touch_mailer(), "_mailer", Throttled())
    assert work(records) == [record["messageId"] for record in records]  # all left for redelivery
    assert recipients(loop) == []
    for lead_id in leads.values():  # the throttled try did not count, and the lead is due again at once
        claim = pending_claim(prospect(lead_id))
        assert claim is None or (claim.status == CLAIMED and claim.tries == 0)
    # Due "at once" is within a second: a next touch is stored rounded up to the whole second (never found
    # due before its time), so a tick in the same second as the release would not see it yet.
    time.sleep(1.05)
    assert tick()["due"] == 3  # nothing dropped: even a lost message is found again by the sweep
    throttling = False
    assert work(records) == []  # SQS's redelivery, after the visibility timeout
    assert work(take(loop, touches)) == []  # and the sweep's copies: already sent, skipped
    assert recipients(loop) == sorted(ADDRESSES)
    for lead_id in leads.values():
        sent = [m for m in prospect(lead_id).messages if m.status == "sent"]
        assert len(sent) == 1 and sent[0].tries == 1


def test_the_worker_drops_a_message_that_is_not_a_touches_message_and_sends_the_rest(
    loop: Loop, touches: str
) -> None:
    due_leads(loop)
    tick()
    records = take(loop, touches)
    garbage = {"messageId": str(uuid.uuid4()), "body": json.dumps({"events": []}), "eventSource": "aws:sqs"}
    assert work([garbage, *records]) == []
    assert recipients(loop) == sorted(ADDRESSES)
