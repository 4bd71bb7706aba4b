"""The events queue (SQS): ingest puts verified, normalised events on it; the worker takes them off.

Events travel as JSON `{"events": [...]}` in messages kept well under SQS's 256 KB limit, sent ten to a
SendMessageBatch call. A message that can never be applied is set aside on the dead-letter queue with its
reason, instead of being retried until redrive.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
