"""Write units per save by history (`make bench`, section `storage`; alone: `python -m bench.per_save`).

One prospect is sent 100, 1,000, 3,000 and 10,000 page views spread over 90 days (delivered as they happen:
one batch per hour with events, a new profile each time), then one more page view one minute later; that
last save is what is measured: on moto by table and index from item sizes (`bench.units.SizeMeter`), and in
total on DynamoDB Local's own consumed capacity (started as `bench.crosscheck` starts it; the column says
why when Java or DynamoDB Local is missing). Also the profile item's bytes as stored and its compressed
document's largest fields, which show what grows with history: the idempotency window holds only the ids
of its horizon (SEEN_HORIZON_HOURS), so it grows with the rate of events, not their number.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from moto import mock_aws

from bench.crosscheck import dynamodb_local
from bench.storage import REGION, SettableClock, fake_credentials, lead_service
from bench.units import SizeMeter, item_size
from chalicelib.adapters.doc_codec import pack_doc, unpack_doc
from chalicelib.adapters.dynamo import CapacityMeter, Tables, create_tables
from chalicelib.adapters.dynamo_tables import models_for
from chalicelib.domain.events import Event, EventKind

HISTORIES = (100, 1_000, 3_000, 10_000)
# In the future: DynamoDB Local deletes expired items by the real clock (TTL), and the idempotency chunks a
# history writes expire by the simulated one; a history in the past would find its chunks deleted.
START = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(0), UTC)
SPREAD = timedelta(days=90)
RECENT = timedelta(days=4)  # longer than the idempotency window's horizon (72 h)
OLD_BATCH = 200
TARGET_WRITE_UNITS = 2.0  # issue 15: per save of one prospect, at any history
NEXT_SAVES = 50  # saves measured after the history, one page view a minute apart


def _page(message_id: str, at: datetime, index: int, email: str | None = None) -> Event:
    return Event(
        message_id=message_id,
        kind=EventKind.PAGE,
        at=at,
        source="web",
        anonymous_id="a1",
        email=email,
        properties={"path": f"/docs/page-{index % 40}", "title": f"Docs {index % 40}"},
    )


def _with_history(tables: Tables, n: int, *, at_once: bool = False) -> Callable[[], None]:
    """Feed `n` page views over SPREAD into fresh tables; answers the one more save to measure.

    `at_once`: the same views, still dated over SPREAD, all sent now in 10-event batches (as a probe or a
    backfill sends them over HTTP): every id is applied within the last hour, the idempotency window's
    worst case."""
    clock = SettableClock(START)
    service = lead_service(tables, clock)
    step = SPREAD / n
    events = [
        _page(f"seg:p{i}", START + i * step, i, "ada@bigco.example" if i == 0 else None) for i in range(n)
    ]
    if at_once:
        batches = [events[i : i + 10] for i in range(0, n, 10)]
        for i, batch in enumerate(batches):
            clock.now = START + SPREAD - timedelta(seconds=len(batches) - i)
            service.apply_events(batch)
    else:
        # One batch per hour, applied at its last event's time: the idempotency window stamps ids with when
        # they were applied. Before the last RECENT the ids have left the window by the measured save
        # anyway: big batches there keep the run short.
        recent = START + SPREAD - RECENT
        hours: dict[int, list[Event]] = {}
        for i, event in enumerate(events):
            key = int(event.at.timestamp()) // 3600 if event.at >= recent else -1 - i // OLD_BATCH
            hours.setdefault(key, []).append(event)
        for batch in hours.values():
            clock.now = batch[-1].at
            service.apply_events(batch)
    saves = iter(range(1, 10**6))

    def one_more() -> None:
        k = next(saves)
        clock.now = START + SPREAD + timedelta(minutes=k)
        service.apply_events([_page(f"seg:last{k}", clock.now, k)])

    return one_more


def _profile(tables: Tables) -> dict[str, Any]:
    """The stored profile item's size and its document's largest fields (compressed bytes each adds)."""
    model = models_for(tables).prospects
    client = model._get_connection().connection.client
    items = client.scan(TableName=model.Meta.table_name)["Items"]
    item = next(i for i in items if "doc" in i)
    blob = item["doc"]["B"]
    doc = unpack_doc(blob)

    def packed(d: dict[str, Any]) -> int:
        return len(pack_doc(d))

    whole = packed(doc)
    fields = {key: whole - packed({k: v for k, v in doc.items() if k != key}) for key in doc}
    largest = dict(sorted(fields.items(), key=lambda kv: -kv[1])[:3])
    return {"item_bytes": item_size(item), "doc_compressed_bytes": len(blob), "largest_fields": largest}


def _on_moto(n: int, *, at_once: bool) -> dict[str, Any]:
    """The next save's units by table, then the mean over NEXT_SAVES saves one minute apart: a busy
    prospect's idempotency chunk (chalicelib.domain.seen) is written by one save in ~25, so the mean says
    what it adds; `item_write_units_max` is the most any of them paid for the profile item itself."""
    with mock_aws():
        tables = Tables(prefix=f"h{uuid.uuid4().hex[:6]}-", region=REGION)
        create_tables(tables)
        meter = SizeMeter(tables)  # watches the history too, so it knows each item's old image
        try:
            one_more = _with_history(tables, n, at_once=at_once)
            per_save: list[dict[str, float]] = []
            for _ in range(NEXT_SAVES):
                meter.reset()
                one_more()
                per_save.append({name: value for name, value in meter.write_units.items() if value})
            units = {name: round(value, 2) for name, value in per_save[0].items()}
            return {
                "write_units": round(sum(units.values()), 2),
                "by_table": units,
                "mean_write_units": round(sum(sum(save.values()) for save in per_save) / len(per_save), 3),
                "item_write_units_max": max(save.get("prospects", 0.0) for save in per_save),
                **_profile(tables),
            }
        finally:
            meter.close()


def _on_dynamodb_local(histories: tuple[int, ...], *, at_once: bool) -> dict[str, float] | str:
    """Write units of the next save by history, as DynamoDB Local counts them; or why not measured."""
    try:
        with dynamodb_local() as endpoint:
            found: dict[str, float] = {}
            for n in histories:
                tables = Tables(prefix=f"h{uuid.uuid4().hex[:6]}-", host=endpoint, region=REGION)
                create_tables(tables)
                one_more = _with_history(tables, n, at_once=at_once)
                meter = CapacityMeter()
                meter.watch(tables)
                try:
                    one_more()
                    found[str(n)] = round(meter.reading().write_units, 2)
                finally:
                    meter.close()
            return found
    except (FileNotFoundError, RuntimeError) as problem:
        return str(problem)


DELIVERIES = {"histories": False, "at_once": True}  # as they happened, hour by hour; all sent now


def measure(histories: tuple[int, ...] = HISTORIES) -> dict[str, Any]:
    fake_credentials()
    result: dict[str, Any] = {"spread_days": SPREAD.days, "target_write_units": TARGET_WRITE_UNITS}
    skipped: str | None = None
    for name, at_once in DELIVERIES.items():
        rows = {str(n): _on_moto(n, at_once=at_once) for n in histories}
        local = _on_dynamodb_local(histories, at_once=at_once)
        if isinstance(local, str):
            skipped = local
        else:
            for n, units in local.items():
                rows[n]["dynamodb_local_write_units"] = units
        result[name] = rows
    every = [row for name in DELIVERIES for row in result[name].values()]
    result["dynamodb_local_skipped"] = skipped
    # The profile item itself, on every save measured: what grows with history and rate (issue 15's "a save
    # writes at most 2 KB"). The pool index and the idempotency chunks are counted beside it, in the mean.
    result["prospect_item_meets_target"] = (
        max(row["item_write_units_max"] for row in every) <= TARGET_WRITE_UNITS
    )
    result["meets_target"] = result["prospect_item_meets_target"]
    result["mean_write_units_max"] = max(row["mean_write_units"] for row in every)
    return result


def render(result: dict[str, Any]) -> str:
    lines = []
    for name, title in (("histories", "delivered as they happened"), ("at_once", "all sent now")):
        lines.append(
            f"Write units per save by history ({result['spread_days']} days of page views {title}, "
            f"then {NEXT_SAVES} more a minute apart)"
        )
        lines.append(
            f"{'history':>8} {'next save':>9} {'DDB Local':>9} {'mean':>6} {'item max':>8} {'item B':>7}"
            "  by table; largest fields"
        )
        for n, row in result[name].items():
            local = row.get("dynamodb_local_write_units", "-")
            tables = ", ".join(
                f"{k.replace('prospects index ', '')} {v:g}" for k, v in row["by_table"].items()
            )
            fields = ", ".join(f"{k} {v}" for k, v in row["largest_fields"].items())
            lines.append(
                f"{int(n):>8,} {row['write_units']:>9g} {local!s:>9} {row['mean_write_units']:>6g}"
                f" {row['item_write_units_max']:>8g} {row['item_bytes']:>7,}  {tables}; {fields}"
            )
    if result["dynamodb_local_skipped"]:
        lines.append(f"DynamoDB Local column skipped: {result['dynamodb_local_skipped']}")
    return "\n".join(lines)


def main() -> None:
    print(render(measure()))


if __name__ == "__main__":
    main()
