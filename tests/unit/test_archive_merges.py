"""A person the live worker merged (a visitor on a second device who then identified) is one lead in a
backtest however the archive is split: the worker archives the merge, and a Map child replaying the
survivor's shard reads the absorbed lead's events from its shard (README "Rules lab")."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chalicelib.domain.events import Event, EventKind
from chalicelib.lab.compaction import compact_archive
from chalicelib.lab.layout import DEFAULT_SHARDS, shard_of
from chalicelib.lab.replay import replay_shard
from tests.unit.test_backtest_equality import RULES, START, Live

EMAIL = "roamer@roam.example"
WINDOW = (date(2026, 11, 1), date(2026, 11, 30))


def _page(key: str, at_minutes: int, anonymous_id: str, path: str) -> Event:
    return Event(f"seg:{key}", EventKind.PAGE, START + timedelta(minutes=at_minutes), "segment",
                 anonymous_id=anonymous_id, properties={"path": path})  # fmt: skip


def _identify(key: str, at_minutes: int, anonymous_id: str) -> Event:
    return Event(f"seg:{key}", EventKind.IDENTIFY, START + timedelta(minutes=at_minutes), "segment",
                 anonymous_id=anonymous_id, email=EMAIL, traits={"title": "VP Engineering"})  # fmt: skip


def _two_devices(folder: Path) -> Live:
    """Laptop: a visit and an identify (lead L000). Phone, a day later: visits as a stranger (L001), then
    identifies: the worker merges L001 into L000. The two ids fall in different shards."""
    live = Live(folder)
    live.worker([[_page("laptop-1", 0, "laptop", "/pricing")], [_identify("laptop-i", 1, "laptop")]])
    day = 24 * 60
    live.worker([[_page(f"phone-{n}", day + n * 3, "phone", "/security")] for n in range(3)])
    live.worker([[_identify("phone-i", day + 20, "phone")]])
    live.worker([[_page("phone-after", day + 30, "phone", "/pricing")]])
    assert live.profile("L001") is None and live.profile("L000") is not None  # merged live
    assert shard_of("L000") != shard_of("L001")
    return live


def _rows_by_part(live: Live, slices: int) -> list[dict[str, Any]]:
    return [
        row
        for shard in range(DEFAULT_SHARDS)
        for index in range(slices)
        for row in replay_shard(live.archive.read_part(*WINDOW, f"{shard:02x}", index, slices), RULES, RULES)
    ]


def _one_replay(live: Live) -> list[dict[str, Any]]:
    return replay_shard(live.archive.read(live.archive.shard_keys(*WINDOW)), RULES, RULES)


def test_a_lead_merged_across_shards_is_replayed_once_with_both_halves(tmp_path: Path) -> None:
    live = _two_devices(tmp_path)
    whole = _one_replay(live)
    assert [row["lead"] for row in whole] == ["L000"]
    assert whole[0]["events"] == 7  # the laptop's 2; the phone's 3 visits, identify, a later visit
    for slices in (1, 3):
        assert sorted(_rows_by_part(live, slices), key=lambda row: row["lead"]) == whole


def test_compacted_days_still_replay_the_merged_lead_once(tmp_path: Path) -> None:
    live = _two_devices(tmp_path)
    whole = _one_replay(live)
    compact_archive(live.archive._blobs, START.date() + timedelta(days=3))  # type: ignore[arg-type]
    assert _one_replay(live) == whole
    assert _rows_by_part(live, 2) == whole
