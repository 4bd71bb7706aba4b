"""Scale projection: what the deployed design sustains at 10 million prospects and 1,000 events/s, and which
limit it meets first, computed from the figures the measuring benches wrote (never from numbers typed here).

Inputs (read from bench/results.json at run time, each named by its key in `inputs.sources`): write and read
units per event by table and index, profile writes, DynamoDB requests and worker CPU per event, the mean
stored profile size (storage bench); per traffic shape the ingest CPU per request, the dispatcher's time per
stream record and the dollars per million events as deployed, with the cost model's round trips and Lambda
memory (cost bench); whether the sweep's reads grow with the number due only (scale bench, when run). One
input is measured here: the share of profile saves that land under the busiest lifecycle state (the
`by_state` index's partition key), on the standard stream through the domain.

The design's own numbers come from the code: counter shards (dynamo_counters.DEFAULT_SHARDS), due index
shards (dynamo_tables.DUE_SHARDS), the in-process sweep's per-tick limit (NurtureService.send_due). Published
AWS limits are in PUBLISHED, each with its source in SOURCES. `project` is pure arithmetic on `Inputs`
(tests/unit/test_projection.py checks it on a hand-computed input); `measure` assembles the inputs.

The model, per traffic shape (browsers: 1 event per request; server-side clients: 100): every limit is turned
into the events/s at which it is reached; the lowest is the first limit met, and headroom is that ceiling over
the target rate. A partition key takes at most 1,000 write / 3,000 read units a second however DynamoDB
splits for heat; a keyspace of N evenly hashed keys puts 1/N of its units on each, one key (the state, the
day) all of them times the busiest value's share. Lambda concurrency is the sum over functions of calls/s x
duration, CPU scaled to the share of a vCPU the configured memory buys. The dispatcher reads the table's
stream `ParallelizationFactor` batches at a time per shard (read from infra/resources.yaml; Lambda's default
1);
DynamoDB does not publish its shard count, so it is taken as the table's partition count by size and by write
throughput, a lower bound.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

PROSPECTS = 10_000_000
EVENTS_PER_SECOND = 1_000.0
RESULTS = Path(__file__).with_name("results.json")

PUBLISHED: dict[str, float] = {
    "dynamodb_partition_write_units_per_second": 1_000,
    "dynamodb_partition_read_units_per_second": 3_000,
    "dynamodb_partition_gb": 10,
    "dynamodb_table_units_per_second": 40_000,  # on-demand, per table and per index, reads and writes each
    "lambda_concurrency": 1_000,  # per account and Region, shared by every function
    "lambda_mb_per_vcpu": 1_769,
    "api_gateway_requests_per_second": 10_000,  # per account and Region, REST and HTTP APIs together
    "stream_parallelization_max": 10,
    "ses_sandbox_per_second": 1,
    "ses_sandbox_per_day": 200,
    "dynamodb_storage_dollars_per_gb_month": 0.25,  # Standard table class, us-east-1
    "hours_per_month": 730,
}
SOURCES: dict[str, str] = {
    "dynamodb_partition": "docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
    "bp-partition-key-design.html",
    "dynamodb_quotas": "docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html",
    "lambda_concurrency": "docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html",
    "lambda_memory_vcpu": "docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html",
    "api_gateway": "docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
    "stream_parallelization": "docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html",
    "ses": "docs.aws.amazon.com/ses/latest/dg/quotas.html (out of the sandbox: per account, not published)",
    "dynamodb_storage_price": "aws.amazon.com/dynamodb/pricing/on-demand/",
}


@dataclass(frozen=True)
class TrafficShape:
    events_per_request: int
    # Durations as bench/cost.py bills them: CPU measured here, slowed by the function's share of a vCPU (its
    # memory in .chalice/config.json), plus the round trips it waits on. Not scaled again here.
    ingest_ms_per_request: float
    dispatcher_ms_per_record: float
    dollars_per_million_events: float  # bench/cost.py, as deployed
    # The stream's second reader (app.count_effects), one full batch a shard at a time (no parallelization:
    # its checkpoint is per shard). 0: not measured, no limit.
    count_consumer_ms_per_record: float = 0.0


@dataclass(frozen=True)
class Inputs:
    write_units: dict[str, float]  # per event, by table and index (storage bench, batched)
    read_units: dict[str, float]
    prospect_item_bytes: float
    prospect_writes_per_event: float
    dynamodb_requests_per_event: float
    worker_cpu_ms_per_event: float
    shapes: dict[str, TrafficShape]
    dynamodb_round_trip_ms: float  # bench/cost.py PRICES (assumed there, not measured)
    sqs_round_trip_ms: float
    lambda_memory_mb: float
    busiest_state: str
    busiest_state_write_share: float  # of profile saves, so of by_state index writes
    busiest_state_population_share: float
    counter_shards: int
    due_shards: int
    sweep_per_tick: int | None  # None: no per-tick cap known (a fanned-out sweep)
    sweep_reads_grow_with_due_only: bool | None = None  # scale bench; None when not run
    stream_parallelization: int = 1  # infra/resources.yaml's ParallelizationFactor (Lambda's default 1)
    # infra/resources.yaml's IngestReservedConcurrency default: what bounds the tracking URL (no throttle of
    # its own); None or 0: nothing reserved, and the front's limit is API Gateway's account throttle.
    ingest_reserved_concurrency: int | None = None
    sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Limit:
    name: str
    ceiling_events_per_second: float
    load_at_target: str  # what the target rate uses of it, in the limit's own unit
    source: str


def busiest_key_share(table: str, inputs: Inputs) -> float | None:
    """Share of a table's (or index's) units on its busiest partition key; None for keys with one value per
    lead, identity or marker, which spread over as many partitions as DynamoDB needs."""
    shares = {
        "counters": 1 / inputs.counter_shards,  # sha256 of the write's key (dynamo_counters.counter_shard)
        "prospects index due": 1 / inputs.due_shards,
        "prospects index by_state": inputs.busiest_state_write_share,  # hash key = the lifecycle state
        "prospects index inbox": 1.0,  # hash key = sales_ready or accepted; share not measured: all of it
        "activity index by_day": 1.0,  # hash key = the day: every write of a day on one key
    }
    return shares.get(table)


def write_loads(inputs: Inputs) -> dict[str, float]:
    """Write units per event where they land: a transaction bills each item twice, and every counter write
    is one (Counters.add_once), so the counters' second half goes to the counter shards and the rest of the
    transactions' second half (their markers) to the nonces table."""
    loads = dict(inputs.write_units)
    second = loads.pop("transactions (the second half)", 0.0)
    counters = min(second, loads.get("counters", 0.0))
    if counters:
        loads["counters"] += counters
    if second - counters > 0:
        loads["nonces"] = loads.get("nonces", 0.0) + second - counters
    return loads


def dispatcher_shards(events_per_second: float, inputs: Inputs, prospects: int) -> int:
    """Stream shards, taken as the prospects table's partitions by size and by write throughput."""
    by_size = math.ceil(prospects * inputs.prospect_item_bytes / 1024**3 / PUBLISHED["dynamodb_partition_gb"])
    per_second = events_per_second * inputs.write_units.get("prospects", 0.0)
    by_writes = math.ceil(per_second / PUBLISHED["dynamodb_partition_write_units_per_second"])
    return max(by_size, by_writes, 1)


def _dispatcher_ceiling(shape: TrafficShape, inputs: Inputs, prospects: int) -> float:
    """The dispatcher's: `stream_parallelization` batches a shard at a time."""
    return _stream_reader_ceiling(
        shape.dispatcher_ms_per_record, inputs.stream_parallelization, inputs, prospects
    )


def _stream_reader_ceiling(ms: float, parallelization: int, inputs: Inputs, prospects: int) -> float:
    """The rate whose stream records a reader taking `ms` a record keeps up with, `parallelization` batches
    a shard at a time. The shard count grows with the write rate, so the ceiling is found as a fixed point
    (or is unbounded when each added shard serves more than the writes that add it)."""
    if ms <= 0 or inputs.prospect_writes_per_event <= 0:
        return math.inf
    # events/s whose records one shard serves, with `parallelization` batches of it at a time
    per_shard = parallelization * 1_000 / ms / inputs.prospect_writes_per_event
    if (
        per_shard * inputs.write_units.get("prospects", 0.0)
        >= PUBLISHED["dynamodb_partition_write_units_per_second"]
    ):
        return math.inf
    rate = 0.0
    for _ in range(1_000):
        nxt = dispatcher_shards(rate, inputs, prospects) * per_shard
        if nxt <= rate:
            break
        rate = nxt
    return rate


def lambda_ms_per_event(shape: TrafficShape, inputs: Inputs, cpu_scale: float) -> dict[str, float]:
    """Lambda milliseconds per event by function: the concurrency one event/s keeps busy (x 1/1000)."""
    ingest = shape.ingest_ms_per_request / shape.events_per_request
    worker = (
        inputs.worker_cpu_ms_per_event * cpu_scale
        + inputs.dynamodb_requests_per_event * inputs.dynamodb_round_trip_ms
    )
    dispatcher = shape.dispatcher_ms_per_record * inputs.prospect_writes_per_event
    return {"ingest": ingest, "worker": worker, "dispatcher": dispatcher}


def limits_for(shape: TrafficShape, inputs: Inputs, rate: float, prospects: int) -> list[Limit]:
    cpu_scale = max(PUBLISHED["lambda_mb_per_vcpu"] / inputs.lambda_memory_mb, 1.0)
    found: list[Limit] = []
    partition = {"write": PUBLISHED["dynamodb_partition_write_units_per_second"]}
    partition["read"] = PUBLISHED["dynamodb_partition_read_units_per_second"]
    for kind, loads in (("write", write_loads(inputs)), ("read", inputs.read_units)):
        for table, units in loads.items():
            if units <= 0:
                continue
            share = busiest_key_share(table, inputs)
            if share is not None:
                hot = units * share
                found.append(
                    Limit(
                        f"DynamoDB partition, {table}: busiest key, {kind}s",
                        partition[kind] / hot,
                        f"{rate * hot:,.0f} of {partition[kind]:,.0f} {kind} units/s",
                        SOURCES["dynamodb_partition"],
                    )
                )
            quota = PUBLISHED["dynamodb_table_units_per_second"]
            found.append(
                Limit(
                    f"DynamoDB table quota, {table}: {kind}s",
                    quota / units,
                    f"{rate * units:,.0f} of {quota:,.0f} {kind} units/s",
                    SOURCES["dynamodb_quotas"],
                )
            )
    ms = lambda_ms_per_event(shape, inputs, cpu_scale)
    busy = sum(ms.values()) / 1_000
    found.append(
        Limit(
            "Lambda concurrency (ingest + worker + dispatcher)",
            PUBLISHED["lambda_concurrency"] / busy,
            f"{rate * busy:,.1f} of {PUBLISHED['lambda_concurrency']:,.0f} concurrent",
            SOURCES["lambda_concurrency"],
        )
    )
    reserved = inputs.ingest_reserved_concurrency
    if reserved:  # tracking calls at the tracking URL: the ingest function's reserved concurrency binds
        busy_ingest = shape.ingest_ms_per_request / 1_000 / shape.events_per_request
        found.append(
            Limit(
                "tracking URL: the ingest function's reserved concurrency",
                reserved / busy_ingest,
                f"{rate * busy_ingest:,.1f} of {reserved:,} concurrent",
                "infra/resources.yaml (IngestReservedConcurrency)",
            )
        )
    else:
        api = PUBLISHED["api_gateway_requests_per_second"]
        found.append(
            Limit(
                "API Gateway account throttle",
                api * shape.events_per_request,
                f"{rate / shape.events_per_request:,.0f} of {api:,.0f} requests/s",
                SOURCES["api_gateway"],
            )
        )
    shards = dispatcher_shards(rate, inputs, prospects)
    records = rate * inputs.prospect_writes_per_event
    found.append(
        Limit(
            f"dispatcher on the table's stream ({inputs.stream_parallelization} batch(es) a shard at a time)",
            _dispatcher_ceiling(shape, inputs, prospects),
            f"{records:,.0f} records/s on >= {shards} shard(s)",
            SOURCES["stream_parallelization"],
        )
    )
    if shape.count_consumer_ms_per_record > 0:
        found.append(
            Limit(
                "count consumer on the table's stream (1 full batch a shard at a time)",
                _stream_reader_ceiling(shape.count_consumer_ms_per_record, 1, inputs, prospects),
                f"{records:,.0f} records/s on >= {shards} shard(s), "
                f"{shape.count_consumer_ms_per_record:g} ms a record",
                SOURCES["stream_parallelization"],
            )
        )
    return found


def project(
    inputs: Inputs, *, prospects: int = PROSPECTS, events_per_second: float = EVENTS_PER_SECOND
) -> dict[str, Any]:
    """The projection: per traffic shape every limit's ceiling, the first met and the headroom; the sends
    per minute; the profile table's size; the monthly cost at the target rate."""
    gb = prospects * inputs.prospect_item_bytes / 1024**3
    storage_dollars = gb * PUBLISHED["dynamodb_storage_dollars_per_gb_month"]
    seconds = PUBLISHED["hours_per_month"] * 3_600
    shapes: dict[str, Any] = {}
    for name, shape in inputs.shapes.items():
        limits = sorted(
            limits_for(shape, inputs, events_per_second, prospects),
            key=lambda lim: lim.ceiling_events_per_second,
        )
        first = limits[0]
        events_cost = events_per_second * seconds / 1e6 * shape.dollars_per_million_events
        shapes[name] = {
            "sustained_events_per_second": round(min(first.ceiling_events_per_second, events_per_second), 1),
            "first_limit": first.name,
            "first_limit_ceiling_events_per_second": round(first.ceiling_events_per_second, 1),
            "headroom": round(first.ceiling_events_per_second / events_per_second, 2),
            "limits": [
                {**asdict(lim), "ceiling_events_per_second": round(lim.ceiling_events_per_second, 1)}
                for lim in limits
                if math.isfinite(lim.ceiling_events_per_second)
            ],
            "dollars_per_month": {
                "events": round(events_cost),
                "profile_storage": round(storage_dollars),
                "total": round(events_cost + storage_dollars),
            },
        }
    parallel = replace(inputs, stream_parallelization=int(PUBLISHED["stream_parallelization_max"]))
    for name, shape in inputs.shapes.items():
        ceiling = _dispatcher_ceiling(shape, parallel, prospects)
        # None: unbounded (each shard the writes add serves more than those writes)
        shapes[name]["dispatcher_ceiling_with_parallelization_10"] = (
            round(ceiling, 1) if math.isfinite(ceiling) else None
        )
    by_state = inputs.write_units.get("prospects index by_state", 0.0)
    hot = by_state * inputs.busiest_state_write_share
    sandbox = PUBLISHED["ses_sandbox_per_second"] * 60
    return {
        "prospects": prospects,
        "target_events_per_second": events_per_second,
        "shapes": shapes,
        "by_state_hot_key": {
            "state": inputs.busiest_state,
            "share_of_saves": round(inputs.busiest_state_write_share, 3),
            "share_of_prospects": round(inputs.busiest_state_population_share, 3),
            "index_entries_under_it": round(prospects * inputs.busiest_state_population_share),
            "write_units_per_second_at_target": round(events_per_second * hot, 1),
            "ceiling_events_per_second_if_every_save_were_under_it": round(
                PUBLISHED["dynamodb_partition_write_units_per_second"] / by_state, 1
            )
            if by_state
            else None,
            "of_partition_limit": round(
                events_per_second * hot / PUBLISHED["dynamodb_partition_write_units_per_second"], 3
            ),
        },
        "sends_per_minute": {
            "sweep_cap": inputs.sweep_per_tick,  # one tick a minute (app.py)
            "ses_sandbox": sandbox,
            "sweep_reads_grow_with_due_only": inputs.sweep_reads_grow_with_due_only,
            "ses_sandbox_per_day": PUBLISHED["ses_sandbox_per_day"],
            "note": "out of the sandbox the account's SES MaxSendRate x 60 bounds it (per account, not "
            "published); the in-process sweep sends at most its per-tick limit a minute",
        },
        "sizes": {
            "profile_item_bytes": round(inputs.prospect_item_bytes),
            "profiles_gb": round(gb, 2),
            "partitions_by_size": math.ceil(gb / PUBLISHED["dynamodb_partition_gb"]),
            "counter_shards": inputs.counter_shards,
            "due_shards": inputs.due_shards,
        },
    }


# --- inputs: the benches' results, and the one share measured here ---


def state_shares(stream: list[tuple[int, Any]]) -> tuple[str, float, float]:
    """The busiest lifecycle state on the standard stream through the domain (apply, reassess): its share of
    the profile saves (each applied event is one save under the state it leaves the prospect in, so one
    `by_state` index write under that key) and its share of the prospects at the end."""
    from chalicelib.domain.apply import apply_event
    from chalicelib.domain.prospect import Prospect
    from chalicelib.domain.reassess import reassess
    from chalicelib.wiring import load_default_rules

    rules = load_default_rules()
    profiles: dict[int, Prospect] = {}
    saves: Counter[str] = Counter()
    for index, event in stream:
        p = profiles.get(index)
        if p is None:
            p = profiles[index] = Prospect(lead_id=f"L{index:06d}", created_at=event.at, source=event.source)
        if apply_event(p, event, rules) is None:
            continue  # a duplicate: nothing written
        reassess(p, rules, event.at)
        saves[str(p.state)] += 1
    population = Counter(str(p.state) for p in profiles.values())
    busiest, count = saves.most_common(1)[0]
    return busiest, count / sum(saves.values()), population[busiest] / max(len(profiles), 1)


def _stream_parallelization() -> int:
    """The dispatcher's ParallelizationFactor as deployed (infra/resources.yaml); Lambda's default is 1."""
    text = (Path(__file__).resolve().parent.parent / "infra" / "resources.yaml").read_text()
    found = re.search(r"^\s*ParallelizationFactor:\s*(\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 1


def _ingest_reserved_concurrency() -> int | None:
    """IngestReservedConcurrency's default as deployed (infra/resources.yaml); None when absent."""
    from infra.stage_template import RESOURCES_TEMPLATE, load_template

    parameter = load_template(RESOURCES_TEMPLATE).get("Parameters", {}).get("IngestReservedConcurrency")
    return int(parameter["Default"]) if parameter else None


def _sweep_per_tick() -> int | None:
    """The sweep's per-tick limit: None when the sweep fans out to send workers (chalicelib.usecases.
    nurture_fanout: SES's rate binds, not one function); else NurtureService.send_due's default."""
    if importlib.util.find_spec("chalicelib.usecases.nurture_fanout") is not None:
        return None
    from chalicelib.usecases.nurture import NurtureService

    send_due = getattr(NurtureService, "send_due", None)
    if send_due is None:
        return None
    default = inspect.signature(send_due).parameters.get("limit")
    return default.default if default is not None and isinstance(default.default, int) else None


REQUIRED = ("storage", "cost")


def inputs_from(results: dict[str, Any], stored: dict[str, Any] | None = None) -> Inputs:
    """Inputs from this run's results, or for a section it did not run, from the stored results file."""
    from bench.stream import generate
    from chalicelib.adapters.dynamo_counters import DEFAULT_SHARDS
    from chalicelib.adapters.dynamo_tables import DUE_SHARDS

    def section(name: str) -> tuple[dict[str, Any], str]:
        for where in (results, stored or {}):
            if name in where:
                return where[name], f"{where.get('command')} at {where.get('commit')}"
        raise KeyError(f"the projection needs the {name} bench's results: run python -m bench --only {name}")

    storage, storage_from = section("storage")
    cost, cost_from = section("cost")
    scale = results.get("scale") or (stored or {}).get("scale") or {}
    batched = storage["batched_per_prospect"]
    prices = cost["prices"]
    shapes = {}
    for name, key in (
        ("browser, 1 event/request", "browser_1_per_request"),
        ("server-side, 100 events/request", "server_side_batched_100"),
    ):
        c = cost[key]
        dollars = c["dollars_per_million_events"]
        shapes[name] = TrafficShape(
            events_per_request=int(c["events_per_request"]),
            ingest_ms_per_request=float(c["ingest_billed_ms_per_request"]),
            dispatcher_ms_per_record=c["dispatcher_billed_ms_per_invocation"]
            / c["dispatcher_records_per_invocation"],
            count_consumer_ms_per_record=float(c.get("count_consumer_ms_per_record_full_batch", 0.0)),
            dollars_per_million_events=float(
                dollars.get("total_as_deployed", dollars["total_with_http_api"])
            ),
        )
    busiest, write_share, population_share = state_shares(generate())
    return Inputs(
        write_units=dict(batched["write_units_by_table"]),
        read_units=dict(batched["read_units_by_table"]),
        prospect_item_bytes=float(batched["mean_prospect_item_bytes"]),
        prospect_writes_per_event=float(batched["prospect_writes_per_event"]),
        dynamodb_requests_per_event=float(batched["requests_per_event"]),
        worker_cpu_ms_per_event=float(batched["worker_cpu_ms_per_event"]),
        shapes=shapes,
        dynamodb_round_trip_ms=float(prices["dynamodb_round_trip_ms"]),
        sqs_round_trip_ms=float(prices["sqs_round_trip_ms"]),
        lambda_memory_mb=float(prices["lambda_memory_gb"]) * 1024,
        busiest_state=busiest,
        busiest_state_write_share=write_share,
        busiest_state_population_share=population_share,
        counter_shards=DEFAULT_SHARDS,
        due_shards=DUE_SHARDS,
        sweep_per_tick=_sweep_per_tick(),
        stream_parallelization=_stream_parallelization(),
        ingest_reserved_concurrency=_ingest_reserved_concurrency(),
        sweep_reads_grow_with_due_only=scale.get("reads_grow_with_due_only"),
        sources={
            "storage.batched_per_prospect (units, requests, CPU, item bytes)": storage_from,
            "cost (ingest CPU, dispatcher ms/record, $/M as deployed, round trips, memory)": cost_from,
            "busiest state's share of saves and prospects": "measured here (standard stream, domain)",
            "counter and due shards, sweep per tick": "chalicelib (DEFAULT_SHARDS, DUE_SHARDS, send_due)",
            "dispatcher ParallelizationFactor, ingest reserved concurrency": "infra/resources.yaml",
        },
    )


def measure(results: dict[str, Any], stored: dict[str, Any] | None = None) -> dict[str, Any]:
    inputs = inputs_from(results, stored)
    return {"inputs": asdict(inputs), "published_limits": PUBLISHED, "sources": SOURCES, **project(inputs)}


def _events(rate: float | None) -> str:
    return "unbounded" if rate is None else f"{rate:,.0f} events/s"


def render(p: dict[str, Any]) -> str:
    lines = [
        f"Scale projection: {p['prospects']:,} prospects at {p['target_events_per_second']:,.0f} events/s"
        " (bench/projection.py, from the measured figures)",
    ]
    for name, shape in p["shapes"].items():
        lines.append(
            f"  {name}: sustains {shape['sustained_events_per_second']:,.0f} events/s; first limit: "
            f"{shape['first_limit']} at {shape['first_limit_ceiling_events_per_second']:,.0f} events/s "
            f"(headroom {shape['headroom']}x); ${shape['dollars_per_month']['total']:,}/month; dispatcher"
            f" with ParallelizationFactor 10: {_events(shape['dispatcher_ceiling_with_parallelization_10'])}"
        )
        for lim in shape["limits"][:5]:
            lines.append(
                f"    {lim['ceiling_events_per_second']:>12,.0f} events/s  {lim['name']}"
                f" ({lim['load_at_target']})"
            )
    hot, sends, sizes = p["by_state_hot_key"], p["sends_per_minute"], p["sizes"]
    lines.append(
        f"  by_state index: '{hot['state']}' takes {hot['share_of_saves']:.0%} of saves and "
        f"{hot['share_of_prospects']:.0%} of prospects "
        f"({hot['index_entries_under_it']:,} entries under one key): "
        f"{hot['write_units_per_second_at_target']:,} write units/s at the target, "
        f"{hot['of_partition_limit']:.0%} of one partition's 1,000"
    )
    cap = "none (fanned out to send workers)" if sends["sweep_cap"] is None else f"{sends['sweep_cap']:,}"
    lines.append(
        f"  sends/min: sweep cap {cap}; SES sandbox {sends['ses_sandbox']}/min and "
        f"{sends['ses_sandbox_per_day']}/day; out of the sandbox the account's SES rate x 60"
    )
    lines.append(
        f"  profiles: {sizes['profile_item_bytes']:,} bytes x {p['prospects']:,} = {sizes['profiles_gb']} GB "
        f"({sizes['partitions_by_size']} partition(s) by size); counter shards {sizes['counter_shards']}, "
        f"due shards {sizes['due_shards']}"
    )
    return "\n".join(lines)


def main() -> int:
    """`python -m bench.projection`: project from the stored bench/results.json without re-measuring."""
    if not RESULTS.exists():
        print("no benchmark results yet: run make bench", file=sys.stderr)
        return 1
    try:
        projection = measure(json.loads(RESULTS.read_text()))
    except KeyError as missing:
        print(missing.args[0], file=sys.stderr)
        return 1
    print(render(projection))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
