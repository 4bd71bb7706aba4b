"""The events queue (SQS): ingest puts verified, normalised events on it; the worker takes them off.

Events travel as JSON `{"events": [...]}` in messages kept well under SQS's 256 KB limit, sent ten to a
SendMessageBatch call. A message that can never be applied is set aside on the dead-letter queue with its
reason, instead of being retried until redrive.

The touches queue (`TouchQueue`) carries the nurture sweep's due lead ids to the send workers:
`{"leads": [...]}`, LEADS_PER_MESSAGE to a message, ten messages to a SendMessageBatch call. Nothing else
has to be durable here: the due index is the record of what is due, so a lost message is found again by the
next sweep.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.events import Event, event_to_wire
from chalicelib.errors import StorageUnavailable

MAX_MESSAGE_BYTES = 200_000  # headroom under SQS's 262,144 for attributes and JSON overhead
BATCH = 10


def pack(events: Sequence[Event]) -> list[str]:
    """Group events into as few message bodies as fit the size limit, keeping their order."""
    bodies: list[str] = []
    current: list[str] = []
    size = 0
    for event in events:
        encoded = json.dumps(event_to_wire(event), separators=(",", ":"), default=str)
        if current and size + len(encoded) + 1 > MAX_MESSAGE_BYTES:
            bodies.append('{"events":[' + ",".join(current) + "]}")
            current, size = [], 0
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        bodies.append('{"events":[' + ",".join(current) + "]}")
    return bodies


class EventQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, events: Sequence[Event]) -> None:
        """Enqueue; raises StorageUnavailable if SQS did not take every message (the caller answers 5xx)."""
        self.send_bodies(pack(events))

    def send_bodies(self, bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), BATCH):
            entries = [
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + BATCH])
            ]
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                raise StorageUnavailable("the events queue did not accept the events; retry") from error
            if answer.get("Failed"):
                raise StorageUnavailable(
                    f"the events queue refused {len(answer['Failed'])} message(s); retry"
                )


class DeadLetters:
    """Sets aside messages that can never succeed, with the reason, on the dead-letter queue."""

    def __init__(self, client: Any, queue_url: str | None) -> None:
        self._client = client
        self._url = queue_url

    def set_aside(self, body: str, reason: str) -> bool:
        if not self._url:
            return False
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )
        return True


JOURNAL_FILE = "accepted.jsonl"  # under the journal folder; scripts/local_journal.py reads and compacts it


def journal_id(body: str) -> str:
    """A message's name in the journal: its body's digest, so the runner can name what it received
    without anything added to the message (identical bodies carry identical, idempotent events)."""
    return hashlib.sha256(body.encode()).hexdigest()


class JournaledQueue(EventQueue):
    """The local stack's events queue: every body is appended to a journal file and fsynced before SQS is
    asked to take it, so an event answered 2xx survives `kill -9` of every process (moto keeps its queue in
    memory only). The local runner records what it applied and replays the rest on start
    (scripts/local_journal.py). Never used on AWS, where SQS itself is durable.
    """

    def __init__(self, client: Any, queue_url: str, journal_dir: Path) -> None:
        super().__init__(client, queue_url)
        journal_dir.mkdir(parents=True, exist_ok=True)
        self.path = journal_dir / JOURNAL_FILE
        self._lock = threading.Lock()  # chalice local serves requests on threads
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            _fsync_dir(journal_dir)  # the file's name must survive a crash too, not only its contents

    def send_bodies(self, bodies: Sequence[str]) -> None:
        entries = [json.dumps({"id": journal_id(b), "body": b}, separators=(",", ":")) for b in bodies]
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, ("\n".join(entries) + "\n").encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as error:
            raise StorageUnavailable("the local events journal could not be written; retry") from error
        super().send_bodies(bodies)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


LEADS_PER_MESSAGE = 10  # one send worker's message: a few seconds of sends at its share of the SES rate


def pack_leads(lead_ids: Sequence[str]) -> list[str]:
    return [
        json.dumps({"leads": list(lead_ids[start : start + LEADS_PER_MESSAGE])}, separators=(",", ":"))
        for start in range(0, len(lead_ids), LEADS_PER_MESSAGE)
    ]


def leads_from_body(body: str) -> list[str]:
    """The lead ids of a touches message; ValueError when it is not one (set aside, never retried)."""
    message = json.loads(body)
    leads = message.get("leads") if isinstance(message, dict) else None
    if not isinstance(leads, list) or not all(isinstance(lead, str) and lead for lead in leads):
        raise ValueError("not a touches message: no 'leads' list of lead ids")
    return leads


class TouchQueue:
    """The sweep's side of the touches queue: due lead ids in, as few SendMessageBatch calls as fit."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def enqueue(self, lead_ids: Sequence[str]) -> int:
        """Put `lead_ids` on the queue; returns the SendMessageBatch calls made. Raises StorageUnavailable
        when SQS did not take them all (the next sweep finds the rest still due)."""
        bodies = pack_leads(lead_ids)
        calls = 0
        for start in range(0, len(bodies), BATCH):
            entries = [
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + BATCH])
            ]
            calls += 1
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                raise StorageUnavailable("the touches queue did not accept the due leads") from error
            if answer.get("Failed"):
                raise StorageUnavailable(f"the touches queue refused {len(answer['Failed'])} message(s)")
        return calls
