"""The scale projection's arithmetic (bench/projection.py) on a tiny input whose answer was worked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import projection
from bench.projection import Inputs, TrafficShape, project

MB = 1024**2


def tiny() -> Inputs:
    return Inputs(
        write_units={
            "prospects": 1.0,
            "prospects index by_state": 0.5,
            "counters": 0.2,
            "transactions (the second half)": 0.3,
        },
        read_units={"prospects": 0.5},
        prospect_item_bytes=1024,
        prospect_writes_per_event=0.5,
        dynamodb_requests_per_event=2,
        worker_cpu_ms_per_event=1.0,
        shapes={"one": TrafficShape(1, 20.0, 10.0, 2.0)},
        dynamodb_round_trip_ms=5.0,
        sqs_round_trip_ms=10.0,
        lambda_memory_mb=1_769,  # one vCPU: CPU milliseconds count as they are
        busiest_state="anonymous",
        busiest_state_write_share=0.5,
        busiest_state_population_share=0.8,
        counter_shards=4,
        due_shards=4,
        sweep_per_tick=500,
    )


def test_each_limit_is_the_rate_at_which_it_is_reached_and_the_lowest_is_named_first() -> None:
    shape = project(tiny(), prospects=20 * MB, events_per_second=1_000)["shapes"]["one"]
    ceilings = {lim["name"]: lim["ceiling_events_per_second"] for lim in shape["limits"]}
    # by_state: 0.5 units x 0.5 of saves under one state = 0.25 per event on one key: 1,000 / 0.25
    assert ceilings["DynamoDB partition, prospects index by_state: busiest key, writes"] == 4_000
    # counters: 0.2 + their transaction's second half 0.2 = 0.4, over 4 shards: 1,000 / 0.1
    assert ceilings["DynamoDB partition, counters: busiest key, writes"] == 10_000
    # the rest of the second half (0.1) is the markers', on the nonces table: 40,000 / 0.1
    assert ceilings["DynamoDB table quota, nonces: writes"] == 400_000
    assert ceilings["DynamoDB table quota, prospects: writes"] == 40_000
    assert ceilings["DynamoDB table quota, prospects: reads"] == 80_000
    # Lambda ms per event: ingest 20 (as billed), worker 1 + 2 x 5, dispatcher 10 x 0.5 = 36: 1,000 / 0.036
    assert ceilings["Lambda concurrency (ingest + worker + dispatcher)"] == pytest.approx(27_777.8)
    assert ceilings["API Gateway account throttle"] == 10_000  # nothing reserved: API Gateway is the front
    # dispatcher: 10 ms a record, 0.5 records per event: 200 events/s a shard; 20 GB = 2 partitions by size,
    # and at 400 events/s the 1 write unit per event needs only 1 by throughput: 400
    dispatcher = "dispatcher on the table's stream (1 batch(es) a shard at a time)"
    assert ceilings[dispatcher] == 400
    assert shape["first_limit"] == dispatcher
    assert shape["sustained_events_per_second"] == 400
    assert shape["headroom"] == 0.4
    # ten batches a shard at once: 2,000 events/s a shard, more than the 1,000 its partition's writes carry
    assert shape["dispatcher_ceiling_with_parallelization_10"] is None
    # 1,000 events/s x 730 h x 3,600 s = 2,628 M events at $2/M, plus 20 GB at $0.25
    assert shape["dollars_per_month"] == {"events": 5_256, "profile_storage": 5, "total": 5_261}


def test_the_by_state_key_sizes_and_sends_are_reported_from_the_inputs() -> None:
    p = project(tiny(), prospects=20 * MB, events_per_second=1_000)
    hot = p["by_state_hot_key"]
    assert hot["write_units_per_second_at_target"] == 250
    assert hot["of_partition_limit"] == 0.25
    assert hot["ceiling_events_per_second_if_every_save_were_under_it"] == 2_000
    assert hot["index_entries_under_it"] == 16 * MB
    assert p["sizes"]["profiles_gb"] == 20
    assert p["sizes"]["partitions_by_size"] == 2
    assert p["sends_per_minute"]["sweep_cap"] == 500


def test_the_dispatchers_parallelization_is_read_from_the_deployed_template() -> None:
    """The dispatcher ceiling follows infra/resources.yaml, so a change there shows in make bench."""
    text = (Path(__file__).resolve().parents[2] / "infra" / "resources.yaml").read_text()
    assert "ParallelizationFactor: 10" in text
    assert projection._stream_parallelization() == 10


def test_the_count_consumer_reads_one_full_batch_a_shard_at_a_time() -> None:
    """app.count_effects keeps a checkpoint per shard, so no ParallelizationFactor: its time per record bounds
    the stream it keeps up with, as the dispatcher's does with its factor."""
    inputs = tiny()
    inputs = Inputs(**{**inputs.__dict__, "shapes": {"one": TrafficShape(1, 20.0, 10.0, 2.0, 20.0)}})
    shape = project(inputs, prospects=20 * MB, events_per_second=1_000)["shapes"]["one"]
    ceilings = {lim["name"]: lim["ceiling_events_per_second"] for lim in shape["limits"]}
    # 20 ms a record, 0.5 records per event, one batch at a time: 100 events/s a shard, on 2 shards (by size)
    counter = "count consumer on the table's stream (1 full batch a shard at a time)"
    assert ceilings[counter] == 200
    assert shape["first_limit"] == counter
    without = project(tiny(), prospects=20 * MB, events_per_second=1_000)["shapes"]["one"]
    assert counter not in {lim["name"] for lim in without["limits"]}  # not measured: no limit invented


def test_the_tracking_url_is_bounded_by_the_ingest_functions_reserved_concurrency() -> None:
    """A function URL has no throttle of its own: the ingest function's reserved concurrency (read from
    infra/resources.yaml) is the tracking front's limit, in place of API Gateway's account throttle."""
    assert projection._ingest_reserved_concurrency() == 100
    inputs = Inputs(**{**tiny().__dict__, "ingest_reserved_concurrency": 50})
    shape = project(inputs, prospects=20 * MB, events_per_second=1_000)["shapes"]["one"]
    ceilings = {lim["name"]: lim["ceiling_events_per_second"] for lim in shape["limits"]}
    # 20 ms a request, one event a request: 50 concurrent carry 50 / 0.020 = 2,500 events/s
    assert ceilings["tracking URL: the ingest function's reserved concurrency"] == pytest.approx(2_500)
    assert "API Gateway account throttle" not in ceilings
