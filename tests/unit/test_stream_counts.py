"""Counting once per stream batch (chalicelib/effects/stream_counts.py, README "Counting once per stream
batch"): a writer that hands its counts to the stream does not move them, nor does the dispatcher; the count
consumer moves each write's counts exactly once, whatever the stream redelivers or bisects; writes stored
before the change are still counted once, by the dispatcher."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.adapters.memory import as_stream_record
from chalicelib.effects.outbox import CountOnScoreboard, LearnFromOutcomes
from chalicelib.effects.stream_counts import NoStreamShard, count_stream_batch
from tests.unit.test_lead_service import Store, event, hand_raise

SHARD = "shardId-00000001700000000000-0123abcd"


def _stream(store: Store, first: int = 1) -> list[dict[str, Any]]:
    """Every stored write as a stream record of one shard, sequence numbers rising from `first`."""
    records = []
    for offset, write in enumerate(store.prospects.writes):
        record = as_stream_record(write)
        record["dynamodb"]["SequenceNumber"] = str(10**20 + first + offset)  # as long as DynamoDB's
        records.append(record)
    return records


def _batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records, "shardId": SHARD, "window": {}, "state": {}}


def _routed(store: Store) -> float:
    return store.counters.read("all").get("entered:sales_ready", 0.0)


def test_the_writer_and_the_dispatcher_leave_stream_counts_to_the_count_consumer() -> None:
    store = Store(count_in_stream=True)
    store.leads.apply_events(hand_raise("ada@bigco.example"))
    counts = [e for w in store.prospects.writes for e in w.effects if isinstance(e, CountOnScoreboard)]
    assert counts and all(e.by_stream for e in counts)
    assert store.notifier.sent  # everything else is done at once, as before

    store.replay_stream()
    assert _routed(store) == 0  # neither the writer nor the dispatcher counted

    answer = count_stream_batch(store.counters, _batch(_stream(store)))

    assert answer == {"writes": len(counts), "counted": len(counts), "unreadable": 0}
    assert _routed(store) == 1
    assert store.counters.read("all")["routed:hand_raise"] == 1


def test_a_redelivered_or_bisected_batch_counts_each_write_once() -> None:
    store = Store(count_in_stream=True)
    for n, email in enumerate(("ada@bigco.example", "bo@bigco.example", "cy@bigco.example")):
        store.leads.apply_events([event(1, email), event(2, email, "Demo Requested"), event(3 + n, email)])
    records = _stream(store)
    half = len(records) // 2

    first = count_stream_batch(store.counters, _batch(records[:half]))  # the first half, then all again
    again = count_stream_batch(store.counters, _batch(records))
    assert first["counted"] > 0 and again["counted"] == again["writes"] - first["writes"]
    count_stream_batch(store.counters, _batch(records))  # and once more, as a timed-out invocation would
    count_stream_batch(store.counters, _batch(records[half:]))  # a bisected retry's second half

    assert _routed(store) == 3
    assert store.counters.read("all")["routed:hand_raise"] == 3


def test_writes_stored_before_counting_moved_to_the_stream_are_counted_once_by_the_dispatcher() -> None:
    before = Store()  # the writer counted, its counts unmarked
    before.leads.apply_events(hand_raise("ada@bigco.example"))
    assert _routed(before) == 1

    count_stream_batch(before.counters, _batch(_stream(before)))  # the count consumer leaves them alone
    before.replay_stream()  # and the dispatcher's marker says they were moved

    assert _routed(before) == 1


def test_learning_counts_move_through_the_stream_as_well() -> None:
    store = Store(count_in_stream=True)
    store.leads.apply_events(hand_raise("ada@bigco.example"))
    learned = {"tpl-a|pricing/decision|clicked": 1.0}
    write = store.prospects.writes[-1]
    store.prospects.writes[-1] = type(write)(
        write.lead_id, write.version, write.prospect, (*write.effects, LearnFromOutcomes(
            write.effects[0].at, learned, by_stream=True))
    )  # fmt: skip

    count_stream_batch(store.counters, _batch(_stream(store)))

    assert store.counters.read("learning") == learned


def test_an_event_that_names_no_shard_is_refused_before_anything_moves() -> None:
    store = Store(count_in_stream=True)
    store.leads.apply_events(hand_raise("ada@bigco.example"))

    with pytest.raises(NoStreamShard, match="tumbling window"):
        count_stream_batch(store.counters, {"Records": _stream(store)})
    assert _routed(store) == 0


def test_an_unreadable_outbox_is_skipped_and_the_rest_of_the_batch_is_counted() -> None:
    store = Store(count_in_stream=True)
    store.leads.apply_events(hand_raise("ada@bigco.example"))
    records = _stream(store)
    broken = {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": str(10**20), "NewImage": {
        "lead_id": {"S": "L999"}, "version": {"N": "1"}, "outbox": {"B": b"not zlib"}}}}  # fmt: skip

    answer = count_stream_batch(store.counters, _batch([broken, *records]))

    assert answer["unreadable"] == 1
    assert _routed(store) == 1  # a bug in one record does not hold back the shard's counts


def test_a_batch_redelivered_out_of_order_still_counts_each_write_once() -> None:
    # Lambda's tumbling windows: records processed more than once "might be processed out of order".
    store = Store(count_in_stream=True)
    for email in ("ada@bigco.example", "bo@bigco.example", "cy@bigco.example"):
        store.leads.apply_events(hand_raise(email))
    records = _stream(store)
    assert len(records) >= 3

    count_stream_batch(store.counters, _batch(records[:1]))
    count_stream_batch(store.counters, _batch([*reversed(records[1:]), records[0]]))  # a retry, reordered
    count_stream_batch(store.counters, _batch(records[-1:]))  # the next batch starts at the newest

    assert _routed(store) == 3


def test_a_record_that_cannot_even_be_parsed_is_skipped_too() -> None:
    store = Store(count_in_stream=True)
    store.leads.apply_events(hand_raise("ada@bigco.example"))
    garbled = {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "not a number", "NewImage": {
        "lead_id": {"S": "L998"}, "outbox": {"B": "%%% not base64 %%%"}}}}  # fmt: skip

    answer = count_stream_batch(store.counters, _batch([garbled, *_stream(store)]))

    assert answer["unreadable"] == 1
    assert _routed(store) == 1
