"""The queue worker: turns an SQS batch into events and applies them, one prospect at a time.

Events of the whole batch are applied together, grouped by prospect, so a burst from one prospect costs one
conditional write instead of one per event. Failure is per prospect, not per message (one message may carry
many prospects' events):
- a prospect whose failure may pass (storage throttled, a race lost too often) fails the records that hold
  its events; SQS redelivers them after the visibility timeout, and the prospects already applied recognise
  their events and skip them (applying is idempotent);
- a prospect that can never be applied (its record would exceed what DynamoDB stores, a bug) is parked: its
  events alone are set aside on the dead-letter queue with the lead and the reason, and the records succeed.
A record that can never be read is set aside the same way instead of being retried.

The events applied are then archived (README "Rules lab"): one object per day and shard for the whole batch,
keyed by the lead each was applied to. An archive that cannot be written fails the records it would have
kept, so SQS redelivers them: applying them again changes nothing, and the archive gets them then.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.archive_queue import unpack_archived
from chalicelib.adapters.queue import DeadLetters, pack
from chalicelib.domain.events import Event, EventKind, event_from_wire, internal_id
from chalicelib.errors import StorageUnavailable
from chalicelib.lab.layout import ArchivedEvent
from chalicelib.usecases.leads import BatchOutcome, FailedProspect, LeadService

log = logging.getLogger("leadloop.worker")

SLA_MESSAGES = ("sla_started", "sla_escalated", "sla_expired")


class BatchArchive(Protocol):
    def write(self, events: list[ArchivedEvent]) -> int: ...


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
        message_id=internal_id("sla", digest),
        kind=EventKind.SALES,
        at=datetime.now(UTC),
        source="sla-workflow",
        name=str(message["type"]),
        lead_id=lead_id,
        properties={"task_token": token, "actor": "sla"} if token else {"actor": "sla"},
    )


def handle_sqs_batch(
    raw: Mapping[str, Any], leads: LeadService, dead_letters: DeadLetters, archive: BatchArchive | None = None
) -> dict[str, Any]:
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
        outcomes = [(readable, leads.apply_events([e for _, events in readable for e in events]))]
    except Exception:  # noqa: BLE001 - isolate the failing record(s) below, one at a time
        # The batch could not even be sorted into prospects (identity storage, a merge that failed): try
        # each record alone, so the records that can be applied are, and only the rest come back.
        log.warning("batch of %d records failed together; retrying them one by one", len(readable))
        outcomes = []
        for message_id, events in readable:
            try:
                outcomes.append(([(message_id, events)], leads.apply_events(events)))
            except Exception:  # noqa: BLE001 - this record fails alone; SQS redelivers it
                log.exception("record %s failed; SQS will redeliver it", message_id)
                failures.append(message_id)
    for records, outcome in outcomes:
        for failed in outcome.failed:
            if failed.retryable or not _park(failed, dead_letters):
                failures.extend(_records_holding(records, failed.events))
    if archive is not None:
        failures += _archive(archive, outcomes)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in dict.fromkeys(failures)]}


Outcomes = list[tuple[list[tuple[str, list[Event]]], BatchOutcome]]


def write_archive_batch(
    records: list[dict[str, Any]],
    archive: BatchArchive,
    erased: Callable[[Iterable[str]], set[str]] | None = None,
) -> dict[str, Any]:
    """The archiver (app.archive_events, AWS): the events of every readable message written as one batch,
    but those of leads erased since they were queued (`erased`: which of these lead ids were); a message
    that is not an archive message fails alone (the queue sets it aside after its retries), while a write
    that fails raises, so the whole batch comes back."""
    events: list[ArchivedEvent] = []
    unreadable: list[str] = []
    for record in records:
        try:
            events += unpack_archived(record["body"])
        except (ValueError, KeyError) as error:
            log.error("archive message %s unreadable: %s", record.get("messageId"), error)
            unreadable.append(str(record.get("messageId")))
    gone = erased({item.lead_id for item in events}) if erased is not None and events else set()
    kept = [item for item in events if item.lead_id not in gone]
    objects = archive.write(kept) if kept else 0
    return {
        "events": len(kept),
        "erased_dropped": len(events) - len(kept),
        "objects": objects,
        "batchItemFailures": [{"itemIdentifier": message_id} for message_id in unreadable],
    }


def _archive(archive: BatchArchive, outcomes: Outcomes) -> list[str]:
    """Archive what was applied; the records holding it fail (and come back) when the archive cannot."""
    kept = [
        ArchivedEvent(lead_id, e)
        for _, outcome in outcomes
        for lead_id, events in outcome.applied
        for e in events
    ]
    if not kept:
        return []
    try:
        archive.write(kept)
    except StorageUnavailable as error:
        log.warning("archive unavailable, the batch's records come back: %s", error)
        records = [record for records, _ in outcomes for record in records]
        return _records_holding(records, [item.event for item in kept])
    return []


def _park(failed: FailedProspect, dead_letters: DeadLetters) -> bool:
    """Set a prospect's events aside with the reason; False when there is nowhere to put them."""
    reason = f"lead {failed.lead_id} cannot be applied: {type(failed.error).__name__}: {failed.error}"
    log.error("parking %d event(s): %s", len(failed.events), reason)
    try:
        return all(dead_letters.set_aside(body, reason) for body in pack(failed.events))
    except (BotoCoreError, ClientError) as error:
        log.error("could not park the events of lead %s: %s", failed.lead_id, error)
        return False


def _records_holding(records: list[tuple[str, list[Event]]], events: list[Event]) -> list[str]:
    wanted = {id(event) for event in events}
    return [message_id for message_id, held in records if any(id(event) in wanted for event in held)]
