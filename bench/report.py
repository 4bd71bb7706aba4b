"""The benchmark table: `render(results)` for `python -m bench`, and `python -m bench.report` (`make report`)
to print the last bench/results.json again without re-running anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import projection, scale, targets

RESULTS = Path(__file__).with_name("results.json")
# bench/cost.py's `front_as_deployed` -> how the report names it, and its own line among the parts.
FRONTS = {
    "function_url": ("tracking URL", "function_url"),
    "http_api": ("ingest HTTP API", "api_gateway_http"),
}


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("  ok" if ok else "  MISSES TARGET")


def _table(title: str, rows: list[tuple[str, str, str]]) -> list[str]:
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {name:<{width}}  {value:>{value_width}}  {note}".rstrip() for name, value, note in rows]
    return lines + [""]


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Leadloop benchmarks — {results.get('at')} commit {results.get('commit')} "
        f"({results.get('machine')}, Python {results.get('python')})",
        f"command: {results.get('command')}",
        *(
            [
                "load average (1, 5, 15 min) as each section started: "
                + "; ".join(f"{name} {' '.join(f'{x:g}' for x in load)}" for name, load in loads.items())
            ]
            if (loads := results.get("load_average"))
            else []
        ),
        "",
    ]
    d = results.get("domain")
    if d:
        lines += _table(
            f"Domain core, one core ({d['events']:,} events, best of {d['repeats']})",
            [
                (
                    "events per second",
                    f"{d['events_per_second']:,}",
                    f"target ≥ {d['target_events_per_second']:,}{_mark(d['meets_target'])}",
                ),
                (
                    "µs per event",
                    f"{d['microseconds_per_event']}",
                    f"target ≤ {d['target_microseconds_per_event']:g} (apply + reassess + choose)",
                ),
                *(
                    [
                        (
                            "µs per event, batched like the worker",
                            f"{d['batched_like_the_worker']['microseconds_per_event']}",
                            f"{d['batched_like_the_worker']['events_per_second']:,} events/s "
                            "(reassess + choose once per prospect per 10-event batch)",
                        )
                    ]
                    if "batched_like_the_worker" in d
                    else []
                ),
                *(
                    [
                        (
                            "events per second beside a busy neighbour",
                            f"{d['beside_a_busy_neighbour']['events_per_second']:,}",
                            f"median {d['beside_a_busy_neighbour']['events_per_second_median']:,}; "
                            "another process doing the same work, busy "
                            f"{d['beside_a_busy_neighbour']['neighbour_cpu_share']:.0%} of the time"
                            f"{_mark(d['beside_a_busy_neighbour']['meets_target'])}",
                        )
                    ]
                    if "beside_a_busy_neighbour" in d
                    else []
                ),
                (
                    "CPU seconds, median run",
                    f"{d['cpu_seconds_median']}",
                    f"best {d['cpu_seconds_best']}, wall best {d['wall_seconds_best']}",
                ),
            ],
        )
        lines += _table(
            "Domain hot spots (own time share, cProfile)",
            [
                (h["function"][-60:], f"{h['own_share']:.1%}", f"{h['calls']:,} calls")
                for h in d["hot_spots"][:8]
            ],
        )
    s = results.get("storage")
    if s:
        rows = []
        for label, key in (
            ("batched (10/batch)", "batched_per_prospect"),
            ("one event/batch", "one_event_per_batch"),
        ):
            m = s[key]
            rows += [
                (
                    f"{label}: write units/event",
                    f"{m['write_units_per_event']}",
                    f"target ≤ {s['target_write_units_per_event']}" if key.startswith("batched") else "",
                ),
                (
                    f"{label}: read units/event",
                    f"{m['read_units_per_event']}",
                    f"target ≤ {s['target_read_units_per_event']}" if key.startswith("batched") else "",
                ),
                (
                    f"{label}: requests/event",
                    f"{m['requests_per_event']}",
                    f"prospect writes/event {m['prospect_writes_per_event']}",
                ),
                (
                    f"{label}: worker CPU ms/event",
                    f"{m['worker_cpu_ms_per_event']}",
                    "outside DynamoDB calls",
                ),
            ]
        batched = s["batched_per_prospect"]
        rows.append(
            (
                "mean profile item bytes",
                f"{batched['mean_prospect_item_bytes']:,}",
                "largest fields: "
                + ", ".join(f"{k} {v}" for k, v in list(batched["mean_doc_bytes_by_field"].items())[:4]),
            )
        )
        model = batched.get("counting_per_stream_batch")
        if model:  # results before the model have none
            rows.append(
                (
                    f"model: counting once per {model['stream_batch_prospect_writes']}-write stream batch",
                    f"{model['modelled_write_units_per_event']}",
                    f"write units/event (counting {model['counting_write_units_per_event_now']} → "
                    f"{model['modelled_counting_write_units_per_event']}); not built, docs/benchmarks.md",
                )
            )
        check = s.get("crosscheck_dynamodb_local")
        if check and "skipped" in check:
            rows.append(("units cross-check on DynamoDB Local", "skipped", check["skipped"]))
        elif check:
            local = (
                check["dynamodb_local_write_units_per_event"],
                check["dynamodb_local_read_units_per_event"],
            )
            ours = (check["size_meter_write_units_per_event"], check["size_meter_read_units_per_event"])
            rows.append(
                (
                    "cross-check, DynamoDB Local's own units",
                    f"{local[0]} W / {local[1]} R",
                    f"size meter on the same {check['events']} events: {ours[0]} W / {ours[1]} R",
                )
            )
        lines += _table(
            f"Storage per event ({batched['events']:,} events on moto, units from item sizes)"
            f"{_mark(s['meets_target'])}",
            rows,
        )
        lines += _table(
            "Write units per event by table and index (batched)",
            [(table, f"{units}", "") for table, units in batched["write_units_by_table"].items()],
        )
        growth = s.get("per_save_by_history")
        for key, how in (("histories", "as they happened"), ("at_once", "all sent now")):
            if not growth or not growth.get(key):
                continue
            lines += _table(
                f"Write units per save by history ({growth['spread_days']} days of page views {how}, then "
                f"50 more a minute apart){_mark(growth['meets_target'])}",
                [
                    (
                        f"{int(n):,} events of history",
                        f"next save {row['write_units']:g} (DDB Local "
                        f"{row.get('dynamodb_local_write_units', '-')}); item at most "
                        f"{row.get('item_write_units_max', '-')}; mean with chunks "
                        f"{row.get('mean_write_units', '-')}",
                        f"item {row['item_bytes']:,} B; "
                        + ", ".join(f"{k} {v:g}" for k, v in row["by_table"].items())
                        + "; fields "
                        + ", ".join(f"{k} {v}" for k, v in row["largest_fields"].items()),
                    )
                    for n, row in growth[key].items()
                ],
            )
    c = results.get("cost")
    if c:
        rows = []
        for label, key in (
            ("server-side, 100/request", "server_side_batched_100"),
            ("browser, 1/request", "browser_1_per_request"),
        ):
            dollars = c[key]["dollars_per_million_events"]
            target = (
                c["target_dollars_per_million"]
                if "100" in label
                else c.get("browser_target_dollars_per_million")
            )
            deployed = dollars.get("total_as_deployed")
            deployed_front = FRONTS.get(c[key].get("front_as_deployed", ""), ("REST API", "api_gateway_rest"))
            if deployed is not None:  # results before the ingest HTTP API have no such line
                rows.append(
                    (
                        f"{label}: as deployed ({deployed_front[0]})",
                        f"${deployed:.3f}",
                        f"target ≤ ${target:g}",
                    )
                )
            rows.append((f"{label}: total (REST API)", f"${dollars['total_with_rest_api']:.3f}", ""))
            rows.append((f"{label}: total (HTTP API)", f"${dollars['total_with_http_api']:.3f}", ""))
            # The parts of the as-deployed total (the other fronts' prices are the lines above's difference).
            for part in (
                deployed_front[1],
                "ingest_lambda",
                "worker_lambda",
                "sqs",
                "dynamodb_writes",
                "dynamodb_reads",
                "dispatcher_lambda",
                "dispatcher_reads",
                "counter_lambda",
                "archive_sqs",
                "archive_s3_puts",
                "archive_lambda",
                "archive_erased_reads",
                "lambda_logs",
            ):
                if part in dollars:  # results written before the effects dispatcher have no such lines
                    rows.append((f"  {part}", f"${dollars[part]:.4f}", ""))
            by_worker = c[key].get("archive_written_by_the_worker")
            if by_worker:  # what the archive cost before the archive queue, for comparison
                rows.append(
                    (
                        "  (archive written by the worker instead)",
                        f"${by_worker['dollars_per_million_events']:.4f}",
                        f"{by_worker['s3_puts_per_event']} S3 PUTs/event",
                    )
                )
        lines += _table(
            f"Cost per million events (prices {c['prices']['as_of']}){_mark(c['meets_target'])}", rows
        )
    sc = results.get("scale")
    if sc:
        lines += _table(
            "Scheduler sweep (ProspectStore.due)" + _mark(sc["reads_grow_with_due_only"]),
            [
                (
                    f"{run['prospects']:,} prospects, {run['due']} due",
                    f"{run['items_read']:,} items read",
                    f"{run['queries']} queries, found {run['found_due']}",
                )
                for run in sc["runs"]
            ],
        )
        if "fanout" in sc:  # results written before the fan-out have none
            lines += [scale.render_fanout(sc["fanout"]), ""]
    pr = results.get("projection")
    if pr:
        lines += [
            f"Scale projection: skipped, {pr['skipped']}" if "skipped" in pr else projection.render(pr),
            "",
        ]
    return "\n".join(lines).rstrip()


def main() -> int:
    if not RESULTS.exists():
        print("no benchmark results yet: run make bench", file=sys.stderr)
        return 1
    results = json.loads(RESULTS.read_text())
    print(render(results))
    summary = targets.render(results)
    if summary:
        print("\n" + summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
