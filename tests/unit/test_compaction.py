"""Archive compaction (chalicelib/lab/compaction.py, README "Rules lab"): a past day's batch objects of a
shard become one object holding the same events, so a backtest reads the same report from far fewer objects; a
re-run changes nothing; a run stopped between writing and deleting shows the replay no event twice and is
finished by the next run; an erase still removes the person from compacted objects; today is left alone."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.archive import EventArchive, FolderBlobs
from chalicelib.domain.events import Event, EventKind
from chalicelib.lab.compaction import compact_archive
from chalicelib.lab.layout import ArchivedEvent, decode_object, is_compact, shard_in_key, shard_of
from chalicelib.lab.replay import replay_shard
from chalicelib.usecases.rules_text import check_rules_text
from chalicelib.wiring import DEFAULT_RULES, load_default_rules

TODAY = date(2026, 11, 20)
YESTERDAY = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
LEADS = [f"lead-{n}" for n in range(12)]


def _batch(n: int, at: datetime) -> list[ArchivedEvent]:
    """One worker batch: a page and a track event for each of four leads."""
    items = []
    for lead in LEADS[(n * 4) % len(LEADS) : (n * 4) % len(LEADS) + 4]:
        items += [
            ArchivedEvent(lead, Event(f"seg:{lead}-{n}-p", EventKind.PAGE, at, "segment",
                                      email=f"{lead}@bigco.example", properties={"path": "/pricing"})),
            ArchivedEvent(lead, Event(f"seg:{lead}-{n}-t", EventKind.TRACK, at + timedelta(minutes=5),
                                      "segment", name="Demo Requested", email=f"{lead}@bigco.example")),
        ]  # fmt: skip
    return items


@pytest.fixture
def archive(tmp_path: Path) -> EventArchive:
    store = EventArchive(FolderBlobs(tmp_path), retention_days=4000)
    for n in range(9):  # nine batches over the day: several objects per shard
        store.write(_batch(n, YESTERDAY + timedelta(hours=n)))
    return store


def _blobs(archive: EventArchive) -> FolderBlobs:
    return archive._blobs  # type: ignore[return-value]


def _rows(archive: EventArchive, keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    draft, _ = check_rules_text(DEFAULT_RULES.read_text().replace("  engagement: 35", "  engagement: 45"))
    assert draft is not None
    day = YESTERDAY.date()
    listed = archive.shard_keys(day, day) if keys is None else keys
    return replay_shard(archive.read(listed), load_default_rules(), draft)


def _keys(archive: EventArchive) -> list[str]:
    return archive.shard_keys(YESTERDAY.date() - timedelta(days=1), TODAY)


def _events(archive: EventArchive) -> list[tuple[str, str]]:
    return sorted((item.lead_id, item.event.message_id) for item in archive.read(_keys(archive)))


def test_a_days_batch_objects_become_one_per_shard_with_the_same_report(archive: EventArchive) -> None:
    before_keys, before_rows, before_events = _keys(archive), _rows(archive), _events(archive)
    shards = {shard_of(lead) for lead in LEADS}
    assert len(before_keys) > len(shards)  # several batch objects per shard

    counts = compact_archive(_blobs(archive), TODAY)

    after = _keys(archive)
    assert len(after) == len(shards) and all(is_compact(key) for key in after)
    assert counts.objects_written == len(shards) and counts.objects_deleted == len(before_keys)
    assert _events(archive) == before_events
    assert _rows(archive) == before_rows
    assert any(row["published"]["routed_at"] for row in before_rows)  # the report says something


def test_a_second_run_changes_nothing(archive: EventArchive) -> None:
    compact_archive(_blobs(archive), TODAY)
    keys, bodies = _keys(archive), [_blobs(archive).get(key) for key in _keys(archive)]

    again = compact_archive(_blobs(archive), TODAY)

    assert (again.objects_read, again.objects_written, again.objects_deleted) == (0, 0, 0)
    assert _keys(archive) == keys and [_blobs(archive).get(key) for key in keys] == bodies


class StopsBeforeDeleting(FolderBlobs):
    def delete_many(self, keys: Sequence[str]) -> None:
        raise RuntimeError("the Lambda timed out")


def test_a_run_stopped_between_write_and_delete_shows_no_event_twice_and_is_finished_next_time(
    archive: EventArchive, tmp_path: Path
) -> None:
    before_rows, before_events = _rows(archive), _events(archive)
    with pytest.raises(RuntimeError):
        compact_archive(StopsBeforeDeleting(tmp_path), TODAY)
    halfway = _keys(archive)
    assert any(is_compact(key) for key in halfway) and not all(is_compact(key) for key in halfway)
    assert _rows(archive) == before_rows  # the replay reads each event once

    counts = compact_archive(_blobs(archive), TODAY)

    assert counts.objects_deleted > 0
    assert len(_keys(archive)) == len({shard_of(lead) for lead in LEADS})
    assert _events(archive) == before_events
    assert _rows(archive) == before_rows


def test_a_backtest_that_listed_the_batch_objects_before_compaction_still_reads_every_event(
    archive: EventArchive,
) -> None:
    listed, before_rows = _keys(archive), _rows(archive)
    compact_archive(_blobs(archive), TODAY)
    assert not set(listed) & set(_keys(archive))  # every listed object is gone
    assert _rows(archive, listed) == before_rows


def test_a_late_batch_of_a_compacted_day_is_merged_by_the_next_run(archive: EventArchive) -> None:
    compact_archive(_blobs(archive), TODAY)
    late = _batch(20, YESTERDAY + timedelta(hours=12))
    archive.write(late)
    expected = _events(archive)

    compact_archive(_blobs(archive), TODAY)

    assert len(_keys(archive)) == len({shard_of(lead) for lead in LEADS})
    assert _events(archive) == expected


def test_erase_after_compaction_removes_the_person_and_keeps_what_the_object_replaced(
    archive: EventArchive,
) -> None:
    compact_archive(_blobs(archive), TODAY)
    person = LEADS[0]
    others = [event for event in _events(archive) if event[0] != person]

    removed = archive.forget_leads([person], TODAY)

    assert removed == 2 * 3  # nine batches of four of twelve leads: three batches held the person
    assert _events(archive) == others
    key = next(k for k in _keys(archive) if shard_of(person) in k.split("/")[2])
    replaces, _ = decode_object(_blobs(archive).get(key))
    assert replaces  # an unfinished compaction of that folder would still be finished


class EraseMarks:
    """The erase marks (ErasedLeads in the nonces table), in memory: what the compaction looks at."""

    def __init__(self) -> None:
        self.marked: set[str] = set()
        self.looks = 0

    def among(self, lead_ids: Iterable[str]) -> set[str]:
        self.looks += 1
        return self.marked & set(lead_ids)


class ErasedDuringTheWrite(FolderBlobs):
    """A person's erase (mark, then rewrite their objects, as ForgettingLeadEvents does) runs at the moment
    the compaction writes its first compacted object: `before` the write lands, or just after it."""

    def __init__(self, root: Path, person: str, erase: Callable[[], None], *, before: bool) -> None:
        super().__init__(root)
        self._shard = shard_of(person)
        self._erase: Callable[[], None] | None = erase
        self._before = before

    def put(self, key: str, body: bytes) -> None:
        theirs = is_compact(key) and shard_in_key(key) == self._shard
        erase, self._erase = (self._erase, None) if theirs else (None, self._erase)
        if erase is not None and self._before:
            erase()
        super().put(key, body)
        if erase is not None and not self._before:
            erase()


@pytest.mark.parametrize("before", [True, False], ids=["erase-before-the-write", "erase-after-the-write"])
def test_an_erase_running_while_its_day_is_compacted_is_not_undone(
    archive: EventArchive, tmp_path: Path, before: bool
) -> None:
    person = LEADS[0]
    others = [event for event in _events(archive) if event[0] != person]
    marks = EraseMarks()

    def erase() -> None:
        marks.marked.add(person)
        archive.forget_leads([person], TODAY)

    blobs = ErasedDuringTheWrite(tmp_path, person, erase, before=before)
    compact_archive(blobs, TODAY, erased=marks.among)

    assert _events(archive) == others
    assert all(is_compact(key) for key in _keys(archive))


def test_events_an_archiver_wrote_after_an_erase_are_left_out_by_the_next_compaction(
    archive: EventArchive,
) -> None:
    person = LEADS[0]
    marks = EraseMarks()
    marks.marked.add(person)
    archive.forget_leads([person], TODAY)
    archive.write(_batch(0, YESTERDAY + timedelta(hours=12)))  # an archiver already writing: the person again
    assert any(lead == person for lead, _ in _events(archive))

    counts = compact_archive(_blobs(archive), TODAY, erased=marks.among)

    assert not any(lead == person for lead, _ in _events(archive))
    assert counts.erased_events == 2


def test_today_is_not_compacted(tmp_path: Path) -> None:
    store = EventArchive(FolderBlobs(tmp_path), retention_days=4000)
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for n in range(6):
        store.write(_batch(n, now + timedelta(minutes=n)))
    keys = store.shard_keys(TODAY, TODAY)

    counts = compact_archive(FolderBlobs(tmp_path), TODAY)

    assert counts.objects_written == 0
    assert store.shard_keys(TODAY, TODAY) == keys


def test_compaction_on_s3_deletes_the_batch_objects_it_merged() -> None:
    import boto3
    from moto import mock_aws

    from chalicelib.adapters.archive import S3Blobs

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="archive")
        store = EventArchive(S3Blobs(client, "archive"), retention_days=4000)
        for n in range(3):
            store.write(_batch(n, YESTERDAY + timedelta(hours=n)))
        before = sorted((i.lead_id, i.event.message_id) for i in store.read(_keys(store)))

        compact_archive(S3Blobs(client, "archive"), TODAY)

        listed = [item["Key"] for item in client.list_objects_v2(Bucket="archive")["Contents"]]
        assert listed and all(is_compact(key) for key in listed)
        assert sorted((i.lead_id, i.event.message_id) for i in store.read(_keys(store))) == before
