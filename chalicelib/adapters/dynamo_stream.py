"""The prospects table's stream, read as the writes it records: which lead, which version, the profile as
written and the effects that write decided (its outbox).

Lambda hands stream records over as JSON (binary attributes base64-encoded); boto3's `dynamodbstreams`
client, which the local stack polls, hands them over decoded. Both shapes are accepted.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.dynamo_prospects import unpack_doc


@dataclass(frozen=True)
class StreamedWrite:
    lead_id: str
    version: int
    doc: dict[str, Any]
    outbox: bytes
    sequence_number: str


def writes_with_effects(records: Iterable[Mapping[str, Any]]) -> list[StreamedWrite]:
    """The inserts and modifications that carry an outbox; every other record needs nothing done."""
    return [
        StreamedWrite(
            lead_id=image["lead_id"]["S"],
            version=int(image["version"]["N"]),
            doc=unpack_doc(_binary(image["doc"]["B"])),
            outbox=_binary(image["outbox"]["B"]),
            sequence_number=sequence,
        )
        for sequence, image in _with_outbox(records)
    ]


def outboxes(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, bytes]]:
    """(sequence number, outbox) of every insert and modification that carries one: what the count consumer
    reads (the profile itself is not unpacked)."""
    return [(sequence, _binary(image["outbox"]["B"])) for sequence, image in _with_outbox(records)]


def _with_outbox(records: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        change = record.get("dynamodb") or {}
        image = change.get("NewImage") or {}
        if "outbox" in image:
            yield str(change.get("SequenceNumber", "")), image


def _binary(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)
