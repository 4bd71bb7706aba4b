"""DynamoDB capacity units computed from item sizes, on every call, by DynamoDB's published arithmetic.

moto answers `ReturnConsumedCapacity` with a fixed number per call (1 write, 0.5 read), whatever the item
size, so units per event measured on moto alone would only restate the request count. `SizeMeter` watches
the same botocore client as `CapacityMeter`, sees each request's parameters and its parsed answer, and
charges what DynamoDB on-demand bills:

- item size: attribute names plus values (strings and binary by length, numbers ~1 byte per 2 digits + 1,
  maps and lists 3 bytes + 1 per element), as documented in "Item sizes and formats";
- writes: 1 unit per KB of the larger of the old and new item (a failed condition still pays); each global
  secondary index the write touches pays 1 unit per KB of its projected entry (+100 bytes), twice when the
  index key changes (delete + put), nothing when no projected attribute changed;
- reads: 1 unit per 4 KB for a strongly consistent read (half for eventually consistent); a query or scan
  rounds the total it examined once; a GetItem for a missing item still pays the minimum.

Old images come from a shadow of every item this meter has seen written or read; UpdateItem (only the
counters use it, on tiny items without indexes) is charged at the size of the shadow item, at least 1 KB.
A TransactWriteItems call bills every item it writes twice.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.dynamo_tables import Tables, models_for

KB = 1024
READ_BLOCK = 4 * KB
INDEX_OVERHEAD = 100

Item = dict[str, dict[str, Any]]  # DynamoDB's typed JSON: {"name": {"S": "..."}}


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "B"):
        return len(inner.encode()) if isinstance(inner, str) else len(inner)
    if kind == "N":
        digits = inner.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "BS"):
        return sum(len(v.encode()) if isinstance(v, str) else len(v) for v in inner)
    if kind == "NS":
        return sum(value_size({"N": v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Item) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


@dataclass(frozen=True)
class _Index:
    name: str
    keys: tuple[str, ...]
    projected: frozenset[str] | None  # None: ALL


@dataclass(frozen=True)
class _Table:
    keys: tuple[str, ...]
    indexes: tuple[_Index, ...]


def _schema(tables: Tables) -> dict[str, _Table]:
    found: dict[str, _Table] = {}
    for model in models_for(tables).all():
        hash_key = model._hash_key_attribute().attr_name
        range_attr = model._range_key_attribute()
        keys = (hash_key,) + ((range_attr.attr_name,) if range_attr is not None else ())
        indexes = []
        for name, index in model._indexes.items():
            attributes = list(index.Meta.attributes.values())
            index_keys = tuple(a.attr_name for a in sorted(attributes, key=lambda a: not a.is_hash_key))
            projection = index.Meta.projection
            if projection.projection_type == "ALL":
                projected = None
            else:
                extra = getattr(projection, "non_key_attributes", None) or []
                projected = frozenset((*keys, *index_keys, *extra))
            indexes.append(_Index(name, index_keys, projected))
        found[model.Meta.table_name] = _Table(keys, tuple(indexes))
    return found


class SizeMeter:
    """Size-based read/write units for the tables of one `Tables`; `watch()`, run, `reading()`, `close()`."""

    def __init__(self, tables: Tables) -> None:
        self._schema = _schema(tables)
        self._shadow: dict[tuple[str, tuple[Any, ...]], Item] = {}
        self._pending: list[tuple[str, dict[str, Any], float]] = []
        self.seconds_in_calls = 0.0  # CPU spent inside DynamoDB calls (client + moto), to subtract
        self._clients: list[Any] = []
        self._hook = f"leadloop-size-meter-{id(self)}"
        self.read_units: defaultdict[str, float] = defaultdict(float)  # by table suffix
        self.write_units: defaultdict[str, float] = defaultdict(
            float
        )  # by table suffix, and "<table> index <name>"
        self.requests: Counter[str] = Counter()  # "Operation table"
        self.bytes_written: defaultdict[str, int] = defaultdict(int)
        self._tables = tables
        for model in models_for(tables).all():
            client = model._get_connection().connection.client
            if client not in self._clients:
                client.meta.events.register(
                    "provide-client-params.dynamodb", self._before, unique_id=self._hook
                )
                client.meta.events.register(
                    "after-call.dynamodb", self._after, unique_id=self._hook + "-after"
                )
                self._clients.append(client)

    def close(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("provide-client-params.dynamodb", unique_id=self._hook)
            client.meta.events.unregister("after-call.dynamodb", unique_id=self._hook + "-after")
        self._clients.clear()

    def reset(self) -> None:
        self.read_units.clear()
        self.write_units.clear()
        self.requests.clear()
        self.bytes_written.clear()
        self.seconds_in_calls = 0.0

    def totals(self) -> tuple[float, float, int]:
        return sum(self.read_units.values()), sum(self.write_units.values()), sum(self.requests.values())

    # --- hooks ---

    def _before(self, *, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._pending.append((model.name, params, time.process_time()))

    def _after(self, *, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not self._pending:
            return
        operation, params, started = self._pending.pop()
        self.seconds_in_calls += time.process_time() - started
        failed = bool(parsed.get("Error"))
        handler = getattr(self, f"_on_{operation}", None)
        table = params.get("TableName")
        if table is not None and table not in self._schema:
            return
        if handler is not None:
            handler(params, parsed, failed)

    def _short(self, table: str) -> str:
        return table[len(self._tables.prefix) :]

    def _count(self, operation: str, table: str) -> None:
        self.requests[f"{operation} {self._short(table)}"] += 1

    def _key(self, table: str, item: Item) -> tuple[Any, ...]:
        return tuple(str(item.get(k)) for k in self._schema[table].keys)

    # --- writes ---

    def _write(self, table: str, old: Item | None, new: Item | None) -> None:
        size = max(item_size(old) if old else 0, item_size(new) if new else 0)
        short = self._short(table)
        self.write_units[short] += max(1, math.ceil(size / KB))
        for index in self._schema[table].indexes:
            units = self._index_units(index, old, new)
            if units:
                self.write_units[f"{short} index {index.name}"] += units
        self.bytes_written[short] += item_size(new) if new else 0

    @staticmethod
    def _index_units(index: _Index, old: Item | None, new: Item | None) -> int:
        def entry(item: Item | None) -> Item | None:
            if item is None or any(k not in item for k in index.keys):
                return None
            return (
                dict(item)
                if index.projected is None
                else {k: v for k, v in item.items() if k in index.projected}
            )

        before, after = entry(old), entry(new)

        def units(e: Item) -> int:
            return max(1, math.ceil((item_size(e) + INDEX_OVERHEAD) / KB))

        if before is None and after is None:
            return 0
        if before is None:
            return units(after)  # type: ignore[arg-type]
        if after is None:
            return units(before)
        if any(before.get(k) != after.get(k) for k in index.keys):
            return units(before) + units(after)
        return units(after) if before != after else 0

    def _on_PutItem(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        table, item = params["TableName"], params["Item"]
        self._count("PutItem", table)
        key = (table, self._key(table, item))
        old = self._shadow.get(key)
        if failed:
            self.write_units[self._short(table)] += max(1, math.ceil(item_size(item) / KB))
            return
        self._write(table, old, item)
        self._shadow[key] = item

    def _on_UpdateItem(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        table = params["TableName"]
        self._count("UpdateItem", table)
        old = self._shadow.get((table, self._key(table, params["Key"])))
        self.write_units[self._short(table)] += max(1, math.ceil((item_size(old) if old else 0) / KB))

    def _on_DeleteItem(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        table = params["TableName"]
        self._count("DeleteItem", table)
        key = (table, self._key(table, params["Key"]))
        old = self._shadow.pop(key, None)
        self._write(table, old, None)

    def _on_BatchWriteItem(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        for table, requests in params["RequestItems"].items():
            if table not in self._schema:
                continue
            self._count("BatchWriteItem", table)
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    key = (table, self._key(table, item))
                    self._write(table, self._shadow.get(key), item)
                    self._shadow[key] = item
                else:
                    key = (table, self._key(table, request["DeleteRequest"]["Key"]))
                    self._write(table, self._shadow.pop(key, None), None)

    def _on_TransactWriteItems(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        """A transaction bills each item it writes twice (prepare and commit). The counters' exactly-once
        ADDs are a transaction: a marker Put and one Update per counter."""
        before = sum(self.write_units.values())
        requests = self.requests.copy()  # one request, however many items
        for entry in params["TransactItems"]:
            ((operation, request),) = entry.items()
            table = request["TableName"]
            if operation == "Put":
                self._on_PutItem({"TableName": table, "Item": request["Item"]}, {}, failed)
            elif operation == "Update":
                self._on_UpdateItem({"TableName": table, "Key": request["Key"]}, {}, failed)
            elif operation == "Delete":
                self._on_DeleteItem({"TableName": table, "Key": request["Key"]}, {}, failed)
            if failed:
                break  # cancelled on the first item (the marker): only that one was charged
        added = sum(self.write_units.values()) - before
        self.write_units["transactions (the second half)"] += added
        self.requests = requests
        self.requests["TransactWriteItems"] += 1

    # --- reads ---

    @staticmethod
    def _read_units(size: int, consistent: bool) -> float:
        units = max(1, math.ceil(size / READ_BLOCK))
        return float(units) if consistent else units / 2

    def _remember(self, table: str, item: Item) -> None:
        if all(k in item for k in self._schema[table].keys):
            key = (table, self._key(table, item))
            if key not in self._shadow or len(item) >= len(self._shadow[key]):
                self._shadow[key] = item

    def _on_GetItem(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        table = params["TableName"]
        self._count("GetItem", table)
        item = parsed.get("Item")
        if item:
            self._remember(table, item)
        size = item_size(item) if item else 0
        self.read_units[self._short(table)] += self._read_units(size, bool(params.get("ConsistentRead")))

    def _on_BatchGetItem(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        responses = parsed.get("Responses", {})
        for table, request in params["RequestItems"].items():
            if table not in self._schema:
                continue
            self._count("BatchGetItem", table)
            found = {self._key(table, item): item for item in responses.get(table, [])}
            for item in found.values():
                self._remember(table, item)
            consistent = bool(request.get("ConsistentRead"))
            for key in request["Keys"]:
                item = found.get(self._key(table, key))
                size = item_size(item) if item else 0
                self.read_units[self._short(table)] += self._read_units(size, consistent)

    def _on_Query(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        self._query("Query", params, parsed)

    def _on_Scan(self, params: dict[str, Any], parsed: dict[str, Any], failed: bool) -> None:
        self._query("Scan", params, parsed)

    def _query(self, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        table = params["TableName"]
        self._count(operation, table)
        items = parsed.get("Items", [])
        returned = sum(item_size(item) for item in items)
        examined = int(parsed.get("ScannedCount", len(items)))
        # Filtered-out items were read too: charge them at the average size of those returned.
        size = returned + (examined - len(items)) * (returned // len(items) if items else 0)
        if "IndexName" not in params:
            for item in items:
                self._remember(table, item)
        self.read_units[self._short(table)] += self._read_units(size, bool(params.get("ConsistentRead")))
