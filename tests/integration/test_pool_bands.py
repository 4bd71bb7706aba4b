"""The pool index sorted by score band (chalicelib.adapters.dynamo_pool): a save that moves the score a little
keeps the item's index key (so DynamoDB writes no index row); GET /leads?state=... lists best band first,
each page by exact score, every lead once across pages, with min_score exact; a page costs what it reads
however crowded a band is; items stored before bands list too."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.dynamo import ProspectRow, ProspectStore, Tables
from chalicelib.adapters.dynamo_pool import PoolReader
from chalicelib.adapters.dynamo_prospects import pack_doc
from chalicelib.adapters.dynamo_tables import models_for
from tests.integration.test_storage import row as storage_row


def row(lead_id: str, score: float, *, state: str = "nurturing", owner: str | None = None) -> ProspectRow:
    return storage_row(lead_id, state=state, owner=owner, score=score)


def index_key(tables: Tables, lead_id: str) -> str:
    """The item's stored pool-index sort key, as DynamoDB holds it (attribute `score`)."""
    item = models_for(tables).prospects._get_connection().get_item(lead_id, consistent_read=True)
    return str(item["Item"]["score"]["N"])


def rescore(store: ProspectStore, lead_id: str, score: float) -> None:
    """What a save after an event does: read the lead, write it back with its new score."""
    stored = store.get(lead_id)
    assert stored is not None
    store.save(lead_id, stored.doc, row(lead_id, score), next_touch_at=None, expected_version=stored.version)


def pages(store: ProspectStore, limit: int, **query: Any) -> list[list[tuple[str, float]]]:
    out: list[list[tuple[str, float]]] = []
    cursor = None
    query = {"state": "nurturing", "owner": None, "min_score": None, **query}
    while True:
        rows, cursor = store.list(limit=limit, cursor=cursor, **query)
        assert len(rows) <= limit
        out.append([(r.lead_id, r.score) for r in rows])
        if cursor is None:
            return out


def listed(store: ProspectStore, limit: int, **query: Any) -> list[tuple[str, float]]:
    return [pair for page in pages(store, limit, **query) for pair in page]


def assert_best_band_first(tables: Tables, listing: list[list[tuple[str, float]]]) -> None:
    """Each page by exact score (ties by id); no lead on a later page is in a better band than one before."""
    for page in listing:
        assert page == sorted(page, key=lambda pair: (-pair[1], pair[0]))
    keys = [[float(index_key(tables, lead_id)) for lead_id, _ in page] for page in listing if page]
    for earlier, later in zip(keys, keys[1:], strict=False):
        assert min(earlier) >= max(later)


def test_a_small_score_change_keeps_the_pool_index_key_and_a_large_one_moves_it(tables: Tables) -> None:
    store = ProspectStore(tables)
    store.save("lead-1", {}, row("lead-1", 42.0), next_touch_at=None, expected_version=None)
    key = index_key(tables, "lead-1")

    rescore(store, "lead-1", 45.0)  # a page view's few points
    rescore(store, "lead-1", 51.5)  # a pricing page's 8 and a page view's 1 more, and a bit

    assert index_key(tables, "lead-1") == key
    assert listed(store, 10) == [("lead-1", 51.5)]
    rescore(store, "lead-1", 90.0)
    assert index_key(tables, "lead-1") != key
    assert listed(store, 10) == [("lead-1", 90.0)]


SCORES = {
    "a": 95.0, "b": 91.5, "c": 88.0, "d": 84.0, "e": 80.0, "f": 80.0, "g": 79.9, "h": 71.0,
    "i": 60.2, "j": 45.0, "k": 44.9, "l": 12.0, "m": -3.0, "n": -20.0, "o": 0.0,
}  # fmt: skip
# Saved first at one score, then moved within reach of their stored key: they sit in a band they left.
DRIFTED = {"d1": (38.0, 47.0), "d2": (61.0, 52.0), "d3": (80.0, 88.0)}


@pytest.fixture
def pool(tables: Tables) -> ProspectStore:
    store = ProspectStore(tables)
    for lead_id, score in SCORES.items():
        store.save(lead_id, {}, row(lead_id, score), next_touch_at=None, expected_version=None)
    for lead_id, (first, then) in DRIFTED.items():
        store.save(lead_id, {}, row(lead_id, first), next_touch_at=None, expected_version=None)
        rescore(store, lead_id, then)
    store.save("won-1", {}, row("won-1", 99.0, state="won"), next_touch_at=None, expected_version=None)
    return store


def best_first(scores: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


ALL = {**SCORES, **{lead_id: then for lead_id, (_, then) in DRIFTED.items()}}


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_the_pool_lists_every_lead_once_best_band_first_with_exact_scores(
    tables: Tables, pool: ProspectStore, limit: int
) -> None:
    listing = pages(pool, limit)
    assert sorted(pair for page in listing for pair in page) == sorted(ALL.items())
    assert_best_band_first(tables, listing)
    if limit == 50:  # one page: the whole state, best exact score first
        assert listing == [best_first(ALL)]


@pytest.mark.parametrize("limit", [1, 4, 50])
def test_min_score_is_exact_and_pages_stop_at_it(pool: ProspectStore, limit: int) -> None:
    above = sorted(listed(pool, limit, min_score=45.0))
    assert above == sorted((k, v) for k, v in ALL.items() if v >= 45.0)
    assert sorted(listed(pool, limit, min_score=88.0)) == [
        ("a", 95.0),
        ("b", 91.5),
        ("c", 88.0),
        ("d3", 88.0),
    ]


def test_a_page_of_a_crowded_band_reads_a_page_not_the_band(
    tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every anonymous visitor scores between 0 and 10: ordering that band exactly would read all of it for
    every page (and an export paging through it, once per page). A page reads what it hands out."""
    store = ProspectStore(tables)
    for n in range(120):
        store.save(f"v{n:03d}", {}, row(f"v{n:03d}", n % 10 + 0.5), next_touch_at=None, expected_version=None)
    read: list[int] = []
    exact = PoolReader._exact

    def counted(self: Any, index_rows: Any, state: Any) -> Any:
        read.append(len(index_rows))
        return exact(self, index_rows, state)

    monkeypatch.setattr(PoolReader, "_exact", counted)
    rows, cursor = store.list(state="nurturing", owner=None, min_score=None, limit=10, cursor=None)
    assert len(rows) == 10 and cursor is not None
    assert sum(read) == 10
    assert len(listed(store, 25)) == 120  # and paging on lists each of them once


def test_without_a_state_rows_carry_exact_scores_and_min_score_is_exact(pool: ProspectStore) -> None:
    rows = listed(pool, 4, state=None, min_score=46.0)

    expected = {k: v for k, v in ALL.items() if v >= 46.0} | {"won-1": 99.0}
    assert sorted(rows) == sorted(expected.items())


def test_items_stored_before_score_bands_list_in_order_among_new_ones(
    tables: Tables, pool: ProspectStore
) -> None:
    model = models_for(tables).prospects
    for lead_id, score in {"old-1": 89.5, "old-2": 45.0, "old-3": 3.3}.items():
        # As the store wrote items before bands: the exact score as the index key, no `exact_score`.
        model(lead_id, doc=pack_doc({}), state="nurturing", score_band=score, updated_at="t").save()
    rescore(pool, "old-1", 93.0)  # an old item saved again keeps its key while the score stays near it

    expected = best_first({**ALL, "old-1": 93.0, "old-2": 45.0, "old-3": 3.3})
    assert sorted(listed(pool, 3)) == sorted(expected)
    assert_best_band_first(tables, pages(pool, 3))
    assert listed(pool, 50, min_score=45.0) == [pair for pair in expected if pair[1] >= 45.0]
