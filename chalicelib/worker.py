"""The queue worker: turns an SQS batch into events and applies them, failing only the records that failed.

Events of the whole batch are applied together, grouped by prospect, so a burst from one prospect costs one
conditional write instead of one per event. If that fails, each record is retried alone (applying is
idempotent: an event already folded in is recognised and skipped), so one poison record fails by itself and
the rest of the batch lands. A record that can never be read is set aside on the dead-letter queue with its
reason instead of being retried.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.queue import DeadLetters
from chalicelib.domain.events import Event, EventKind, event_from_wire
from chalicelib.services import LeadService

log = logging.getLogger("leadloop.worker")

SLA_MESSAGES = ("sla_started", "sla_escalated", "sla_expired")


class Unreadable(ValueError):
    """A queue message that no retry can make sense of."""


def events_from_body(body: str) -> list[Event]:
    try:
        message = json.loads(body)
    except ValueError as error:
        raise Unreadable(f"not JSON: {error}") from None
    if not isinstance(message, Mapping):
        raise Unreadable("not a JSON object")
    if message.get("type") in SLA_MESSAGES:
        return [_sla_event(message)]
    wires = message.get("events")
    if not isinstance(wires, list):
        raise Unreadable("no 'events' list")
    try:
        return [event_from_wire(wire) for wire in wires]
    except (KeyError, TypeError, ValueError) as error:
        raise Unreadable(f"an event is malformed: {error!r}") from None


def _sla_event(message: Mapping[str, Any]) -> Event:
    """A message from the SLA state machine (infra/sla_workflow.asl.json)."""
    lead_id = message.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id:
        raise Unreadable("SLA message without lead_id")
    token = str(message.get("task_token") or "")
    digest = hashlib.blake2b(f"{message['type']}:{lead_id}:{token}".encode(), digest_size=8).hexdigest()
    return Event(
        message_id=f"sla:{digest}",
        kind=EventKind.SALES,
        at=datetime.now(UTC),
        source="sla-workflow",
        name=str(message["type"]),
        lead_id=lead_id,
        properties={"task_token": token, "actor": "sla"} if token else {"actor": "sla"},
    )


def handle_sqs_batch(raw: Mapping[str, Any], leads: LeadService, dead_letters: DeadLetters) -> dict[str, Any]:
    readable: list[tuple[str, list[Event]]] = []
    for record in raw.get("Records", []):
        message_id, body = record["messageId"], record.get("body", "")
        try:
            readable.append((message_id, events_from_body(body)))
        except Unreadable as error:
            log.error("setting aside unreadable message %s: %s", message_id, error)
            if not dead_letters.set_aside(body, str(error)):
                log.error("no dead-letter queue configured; message %s dropped after logging", message_id)
    failures: list[str] = []
    try:
        leads.apply_events([event for _, events in readable for event in events])
    except Exception:  # noqa: BLE001 - isolate the failing record(s) below, one at a time
        log.warning("batch of %d records failed together; retrying them one by one", len(readable))
        for message_id, events in readable:
            try:
                leads.apply_events(events)
            except Exception:
                log.exception("record %s failed; SQS will redeliver it", message_id)
                failures.append(message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
