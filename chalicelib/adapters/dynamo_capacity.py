"""Counts the DynamoDB capacity Leadloop's stores consume, for the benchmark's units-per-event figures.

PynamoDB asks for `ReturnConsumedCapacity=TOTAL` on every data call; a `CapacityMeter` watching a `Tables`
reads the answer off each response (a botocore after-call hook on the stores' client) and sorts it
into read and write units. It also counts the items queries and scans examined, which is what shows a
sweep reading only what is due. Watching costs nothing extra on the wire.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.dynamo_tables import Tables, models_for

_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass(frozen=True)
class CapacityReading:
    read_units: float
    write_units: float
    items_examined: int  # ScannedCount summed over queries and scans
    calls: dict[str, int]


class CapacityMeter:
    """Thread-safe running totals for the tables it watches; `reading()` it, `reset()` between runs and
    `close()` it when done. Stores on one endpoint share a client, so the meter keeps only the answers
    whose ConsumedCapacity names a table it watches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table_names: set[str] = set()
        self._clients: list[Any] = []
        self._read = 0.0
        self._write = 0.0
        self._examined = 0
        self._calls: Counter[str] = Counter()
        self._hook_id = f"leadloop-capacity-{id(self)}"

    def watch(self, tables: Tables) -> None:
        """Record every call made through the stores of `tables` from now on (idempotent)."""
        for model in models_for(tables).all():
            self._table_names.add(model.Meta.table_name)
            client = model._get_connection().connection.client
            if client not in self._clients:
                client.meta.events.register("after-call.dynamodb", self._record, unique_id=self._hook_id)
                self._clients.append(client)

    def close(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("after-call.dynamodb", unique_id=self._hook_id)
        self._clients.clear()

    def reading(self) -> CapacityReading:
        with self._lock:
            return CapacityReading(self._read, self._write, self._examined, dict(self._calls))

    def reset(self) -> None:
        with self._lock:
            self._read, self._write, self._examined = 0.0, 0.0, 0
            self._calls.clear()

    def _record(self, *, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        operation = model.name
        consumed = parsed.get("ConsumedCapacity")
        # Single-table calls answer with one dict; batch and transaction calls with one dict per table.
        parts = [consumed] if isinstance(consumed, dict) else consumed if isinstance(consumed, list) else []
        mine = [part for part in parts if part.get("TableName") in self._table_names]
        if not mine:
            return
        units = sum(float(part.get("CapacityUnits", 0.0)) for part in mine)
        with self._lock:
            self._calls[operation] += 1
            self._examined += int(parsed.get("ScannedCount", 0))
            if operation in _READS:
                self._read += units
            elif operation in _WRITES:
                self._write += units
