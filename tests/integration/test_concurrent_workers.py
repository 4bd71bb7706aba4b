"""Several workers applying events to one prospect at once, over a real DynamoDB Local connection, the way
SQS and Lambda run them: every event lands exactly once (DynamoDB Local, unlike moto, really interleaves the
conditional writes).

A worker that loses its races too often fails its record (batchItemFailures) and the queue hands it out
again after the visibility timeout, until its maxReceiveCount, as in AWS. That bound holds whatever the
machine's speed: a versioned write fails only when another one succeeded since its read, and each attempt
reads after the previous one failed, so every failed attempt of a message is paid for by a different
message's success. With one message per event, a message fails at most (messages - 1) attempts in all: with
the service's write attempts per delivery and the queue's 5 receives, a burst of this size on one prospect
always lands. The second case takes away the luck a busy machine takes away (one write attempt per
delivery, so any collision fails the delivery) and gives the queue the receives that bound asks for.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamo import ActivityLog, Counters, IdentityStore, ProspectStore, Tables
from chalicelib.adapters.dynamo_repository import DynamoProspects
from chalicelib.adapters.notify import Delivery
from chalicelib.adapters.queue import DeadLetters, pack
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect_document import prospect_from_doc
from chalicelib.effects.dispatch import Dispatcher
from chalicelib.entrypoints.worker import handle_sqs_batch
from chalicelib.usecases import leads as services_module
from chalicelib.usecases.leads import LeadService
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WORKERS, EVENTS_EACH = 4, 6
MESSAGES = WORKERS * EVENTS_EACH
# The events queue's maxReceiveCount (infra/resources.yaml, chalicelib/adapters/bootstrap.py).
QUEUE_MAX_RECEIVES = 5
VISIBILITY_TIMEOUT_S = 0.05  # scaled down from the queue's; only the order of events matters here


class _Quiet:
    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        return []


def _service(tables: Tables) -> LeadService:
    rules = load_default_rules()
    return LeadService(
        prospects=DynamoProspects(ProspectStore(tables)), identities=IdentityStore(tables),
        activity=ActivityLog(tables),
        counters=Counters(tables), rules=lambda: rules, clock=lambda: NOW,
        public_url="https://leads.example.test",
        effects=Dispatcher.on_tables(
            tables, notifier=_Quiet(), workflow=SlaWorkflow(None, None), rules=lambda: rules,  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def _page(worker: int, n: int) -> Event:
    return Event(
        message_id=f"w{worker}-{n}", kind=EventKind.PAGE, at=NOW - timedelta(minutes=worker * 10 + n),
        source="test", user_id="u-1", properties={"path": f"/docs/w{worker}/{n}", "title": "doc"},
    )  # fmt: skip


@dataclass
class Message:
    message_id: str
    body: str
    receives: int = 0
    visible_at: float = 0.0


class RedeliveringQueue:
    """SQS as workers see it: a received message is out of sight until its worker is done; a failed one is
    visible again after the visibility timeout, until it was received max_receives times (then the DLQ)."""

    def __init__(self, bodies: list[str], max_receives: int) -> None:
        self._max_receives = max_receives
        self._waiting = deque(Message(f"m-{n}", body) for n, body in enumerate(bodies))
        self._in_flight = 0
        self._lock = threading.Lock()
        self.dead: list[Message] = []

    def receive(self) -> Message | None:
        with self._lock:
            for _ in range(len(self._waiting)):
                message = self._waiting.popleft()
                if message.visible_at <= time.monotonic():
                    message.receives += 1
                    self._in_flight += 1
                    return message
                self._waiting.append(message)
            return None

    def done(self, message: Message, failed: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if not failed:
                return
            if message.receives >= self._max_receives:
                self.dead.append(message)
            else:
                message.visible_at = time.monotonic() + VISIBILITY_TIMEOUT_S
                self._waiting.append(message)

    def empty(self) -> bool:
        with self._lock:
            return not self._waiting and not self._in_flight


def _sqs_event(message: Message) -> dict[str, Any]:
    return {"Records": [{"messageId": message.message_id, "body": message.body, "eventSource": "aws:sqs"}]}


@pytest.mark.dynamodb_local
@pytest.mark.parametrize(
    ("write_attempts", "max_receives"),
    [(None, QUEUE_MAX_RECEIVES), (1, MESSAGES)],
    ids=["as-configured", "one-write-attempt-per-delivery"],
)
def test_concurrent_workers_on_one_prospect_apply_every_event_exactly_once(
    dynamodb_local_tables: Tables,
    monkeypatch: pytest.MonkeyPatch,
    write_attempts: int | None,
    max_receives: int,
) -> None:
    services = [_service(dynamodb_local_tables) for _ in range(WORKERS)]
    services[0].apply_events([_page(99, 0)])  # the prospect exists before the race
    if write_attempts is not None:
        monkeypatch.setattr(services_module, "MAX_WRITE_ATTEMPTS", write_attempts)
    # One event per message, so every delivery is a write racing the others on the one prospect.
    # The bound from the module docstring: failed deliveries of one message <= (messages - 1) / attempts.
    attempts = write_attempts or services_module.MAX_WRITE_ATTEMPTS
    assert (MESSAGES - 1) // attempts < max_receives, "this burst may outlast the queue's redeliveries"
    queue = RedeliveringQueue(
        [body for w in range(WORKERS) for n in range(EVENTS_EACH) for body in pack([_page(w, n)])],
        max_receives,
    )
    nowhere = DeadLetters(None, None)
    start = threading.Barrier(WORKERS)
    crashes: list[BaseException] = []

    def work(worker: int) -> None:
        start.wait()
        while not queue.empty():
            message = queue.receive()
            if message is None:
                time.sleep(0.005)
                continue
            try:
                answer = handle_sqs_batch(_sqs_event(message), services[worker], nowhere)
                failed = bool(answer["batchItemFailures"])
            except Exception as error:  # noqa: BLE001 - Lambda fails the whole batch; SQS redelivers it
                crashes.append(error)
                failed = True
            queue.done(message, failed)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert queue.empty(), "the workers did not finish"
    assert queue.dead == [], f"{len(queue.dead)} message(s) reached the DLQ; handler crashes: {crashes}"

    lead_id = IdentityStore(dynamodb_local_tables).resolve(["user:u-1"])["user:u-1"]
    stored = ProspectStore(dynamodb_local_tables).get(lead_id)
    assert stored is not None
    profile = prospect_from_doc(stored.doc)
    assert len(profile.pages) == 1 + WORKERS * EVENTS_EACH  # every page exactly once
    assert len(set(profile.seen)) == len(profile.seen) == 1 + WORKERS * EVENTS_EACH
    assert stored.version == 1 + WORKERS * EVENTS_EACH  # one write per event, none lost or doubled
