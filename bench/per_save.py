"""`python -m bench.per_save`: the write units of one more save of a prospect with 100, 1,000 and 3,000 page
views of history over 90 days (moto, units from item sizes by `bench.units.SizeMeter`), by table and index.
Not yet part of `make bench`'s table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from moto import mock_aws

from bench.storage import SettableClock, fake_credentials, lead_service
from bench.units import SizeMeter
from chalicelib.adapters.dynamo import Tables, create_tables
from chalicelib.domain.events import Event, EventKind

START = datetime(2026, 9, 1, tzinfo=UTC)


def main() -> None:
    fake_credentials()
    for n in (100, 1000, 3000):
        with mock_aws():
            tables = Tables(prefix=f"h{uuid.uuid4().hex[:6]}-", region="us-east-1")
            create_tables(tables)
            clock = SettableClock(START)
            service = lead_service(tables, clock)
            meter = SizeMeter(tables)  # watches the history too, so it knows each item's old image
            step = timedelta(days=90) / n
            events = [
                Event(
                    message_id=f"seg:p{i}",
                    kind=EventKind.PAGE,
                    at=START + i * step,
                    source="web",
                    anonymous_id="a1",
                    email="ada@bigco.example" if i == 0 else None,
                    properties={"path": f"/docs/page-{i % 40}", "title": f"Docs {i % 40}"},
                )
                for i in range(n)
            ]
            for s in range(0, n, 10):
                clock.now = events[min(s + 9, n - 1)].at
                service.apply_events(events[s : s + 10])
            meter.reset()
            clock.now = START + timedelta(days=90, minutes=1)
            one = Event(
                message_id="seg:last",
                kind=EventKind.PAGE,
                at=clock.now,
                source="web",
                anonymous_id="a1",
                properties={"path": "/pricing", "title": "Pricing"},
            )
            service.apply_events([one])
            units = {name: round(value, 2) for name, value in meter.write_units.items() if value}
            print(f"history {n:>5}: one save {sum(units.values()):.2f} write units {units}")
            meter.close()


if __name__ == "__main__":
    main()
