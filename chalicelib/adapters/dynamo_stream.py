"""The prospects table's stream, read as the writes it records: which lead, which version, the profile as
written and the effects that write decided (its outbox).

Lambda hands stream records over as JSON (binary attributes base64-encoded); boto3's `dynamodbstreams`
client, which the local stack polls, hands them over decoded. Both shapes are accepted.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
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
    writes = []
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        change = record.get("dynamodb") or {}
        image = change.get("NewImage") or {}
        if "outbox" not in image:
            continue
        writes.append(
            StreamedWrite(
                lead_id=image["lead_id"]["S"],
                version=int(image["version"]["N"]),
                doc=unpack_doc(_binary(image["doc"]["B"])),
                outbox=_binary(image["outbox"]["B"]),
                sequence_number=str(change.get("SequenceNumber", "")),
            )
        )
    return writes


def _binary(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)


class StreamReader:
    """Reads a DynamoDB stream shard by shard, as Lambda's trigger does, for the local stack and tests.

    `positions` (shard id -> last sequence number handed out) can be saved and given back to resume after a
    restart; a shard never read starts at its oldest record (TRIM_HORIZON), so nothing written is skipped.
    """

    def __init__(self, client: Any, stream_arn: str, positions: Mapping[str, str] | None = None) -> None:
        self._client = client
        self._arn = stream_arn
        self.positions: dict[str, str] = dict(positions or {})
        self._iterators: dict[str, str | None] = {}
        self._pending: dict[str, str | None] = {}  # the iterator after a batch handed out, until done()

    def read(self, limit: int = 100) -> list[tuple[str, list[dict[str, Any]]]]:
        """The next records of every shard that has some, as (shard id, records). Positions move only
        when `done(shard, records)` is called, so a batch whose handling failed is read again."""
        batches = []
        for shard in self._shards():
            iterator = self._iterators.get(shard)
            if iterator is None and shard in self._iterators:
                continue  # a closed shard read to its end
            if iterator is None:
                iterator = self._iterator(shard)
            answer = self._client.get_records(ShardIterator=iterator, Limit=limit)
            records = answer.get("Records", [])
            if records:
                batches.append((shard, records))
                self._iterators[shard] = iterator  # read again until done() moves past them
                self._pending[shard] = answer.get("NextShardIterator")
            else:
                self._iterators[shard] = answer.get("NextShardIterator")
        return batches

    def done(self, shard: str, records: list[dict[str, Any]]) -> None:
        self.positions[shard] = str(records[-1]["dynamodb"]["SequenceNumber"])
        self._iterators[shard] = self._pending.pop(shard, None)

    def retry(self, shard: str) -> None:
        """Read the shard's last batch again (after its handling failed)."""
        self._pending.pop(shard, None)
        self._iterators.pop(shard, None)

    def _shards(self) -> list[str]:
        description = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def _iterator(self, shard: str) -> str:
        if shard in self.positions:
            answer = self._client.get_shard_iterator(
                StreamArn=self._arn,
                ShardId=shard,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=self.positions[shard],
            )
        else:
            answer = self._client.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )
        return str(answer["ShardIterator"])
