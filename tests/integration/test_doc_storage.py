"""The profile document as stored: a typical profile's item fits one write unit, and old items still load."""

from __future__ import annotations

import json
import zlib
from typing import Any

from bench.units import KB, item_size
from chalicelib.adapters.dynamo import ProspectRow, ProspectStore, Tables
from chalicelib.adapters.dynamo_tables import models_for


def _page(at: str, path: str, title: str) -> dict[str, str]:
    return {"at": at, "path": path, "title": title}


# A profile as the domain stores it after a first afternoon: identified, a dozen pages, a download. Its
# values are this test's own (not the bench population's), its shape the one most saves write.
TYPICAL: dict[str, Any] = {
    "id": "Lq81c0ff3e2a1",
    "created": "2026-03-10T14:02:36.253043+00:00",
    "src": "partner-site",
    "anon": ["5f0c2b9e-71a4-4c1e-9d33-0b7c62a1f4de"],
    "uid": "u-88213",
    "email": "marta.kowalska@northwind-logistics.example",
    "traits": {
        "company": "Northwind Logistics",
        "company_size": 1200,
        "country": "DE",
        "first_name": "Marta",
        "industry": "logistics",
        "last_name": "Kowalska",
        "title": "Head of Data Platform",
    },
    "eng": {
        "case_study_page": {"739710": 4.0},
        "content_download": {"739710": 10.0},
        "integrations_page": {"739710": 5.0},
        "page_view": {"739710": 10.0},
        "pricing_page": {"739710": 8.0},
        "security_page": {"739710": 5.0},
    },
    "int": {"case_studies": {"739710": 1.0}, "integrations": {"739710": 1.0}, "pricing": {"739710": 1.0}},
    "state": "nurturing",
    "hist": [
        {
            "at": "2026-03-10T14:05:31.396947+00:00",
            "from": "anonymous",
            "to": "nurturing",
            "trigger": "identified",
            "actor": "leadloop",
        }
    ],
    "km": [
        {"at": "2026-03-10T14:06:28.960257+00:00", "kind": "event", "text": "Content Downloaded (whitepaper)"}
    ],
    "pages": [
        _page("2026-03-10T14:02:36.253043+00:00", "/", "Northwind's data, moved"),
        _page("2026-03-10T14:03:13.021462+00:00", "/product/pipelines", "Pipelines"),
        _page("2026-03-10T14:03:29.792335+00:00", "/customers/harbor-freight", "How a port runs on it"),
        _page("2026-03-10T14:03:46.211395+00:00", "/blog/streaming-etl", "Streaming ETL without tears"),
        _page("2026-03-10T14:04:23.235155+00:00", "/company", "About us"),
        _page("2026-03-10T14:04:57.212941+00:00", "/security/iso-27001", "ISO 27001"),
        _page("2026-03-10T14:10:09.392911+00:00", "/blog/streaming-etl", "Streaming ETL without tears"),
        _page("2026-03-10T14:10:18.892990+00:00", "/integrations", "Integrations"),
        _page("2026-03-10T14:10:41.063218+00:00", "/product/warehouse-sync", "Warehouse sync"),
        _page("2026-03-10T14:10:59.729492+00:00", "/webinars/spring", "Spring webinar series"),
        _page("2026-03-10T14:11:22.821916+00:00", "/pricing", "Pricing"),
    ],
    "next": "2026-03-10T14:15:35.950012+00:00",
    "sw": {
        "h": 491133,
        "w": "qL0Tt3mNfE0Aa6p1y0lq1kQAxO9cB3P2hO8AXc4e2m1QfZcAd3b2a1S0pUoA9y7Qk2JqR1EAvM3c8pNq0WAA",
    },
    "last": "2026-03-10T14:11:22.821916+00:00",
}


def _row(lead_id: str) -> ProspectRow:
    return ProspectRow(
        lead_id=lead_id,
        state="nurturing",
        owner=None,
        score=37.5,
        email="marta.kowalska@northwind-logistics.example",
        name="Marta Kowalska",
        company="Northwind Logistics",
        updated_at="2026-03-10T14:11:22.821916+00:00",
    )


def _raw_item(tables: Tables, lead_id: str) -> dict[str, Any]:
    model = models_for(tables).prospects
    client = model._get_connection().connection.client
    return dict(client.get_item(TableName=model.Meta.table_name, Key={"lead_id": {"S": lead_id}})["Item"])


def test_a_typical_profile_costs_one_write_unit(moto_tables: Tables) -> None:
    """DynamoDB bills a write per started KB: this profile's item was ~1.06 KB (2 units a save) before the
    document was compressed with a dictionary of its own vocabulary."""
    store = ProspectStore(moto_tables)
    store.save(TYPICAL["id"], TYPICAL, _row(TYPICAL["id"]), next_touch_at=None, expected_version=None)
    item = _raw_item(moto_tables, TYPICAL["id"])
    assert item_size(item) <= KB
    stored = store.get(TYPICAL["id"])
    assert stored is not None and stored.doc == TYPICAL


def test_a_profile_stored_before_dictionaries_still_loads(moto_tables: Tables) -> None:
    store = ProspectStore(moto_tables)
    store.save(TYPICAL["id"], TYPICAL, _row(TYPICAL["id"]), next_touch_at=None, expected_version=None)
    old_blob = zlib.compress(json.dumps(TYPICAL, separators=(",", ":"), sort_keys=True).encode(), 6)
    model = models_for(moto_tables).prospects
    item = model.get(TYPICAL["id"])
    item.doc = old_blob
    item.save()
    stored = store.get(TYPICAL["id"])
    assert stored is not None and stored.doc == TYPICAL
    # and the next save writes it in the current form, which loads the same
    store.save(
        TYPICAL["id"], stored.doc, _row(TYPICAL["id"]), next_touch_at=None, expected_version=stored.version
    )
    again = store.get(TYPICAL["id"])
    assert again is not None and again.doc == TYPICAL
