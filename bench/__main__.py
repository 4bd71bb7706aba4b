"""`python -m bench [--only domain,storage,cost,scale,latency] [--quick]`: run the benchmarks, print a table
and write bench/results.json (the figures README and docs/benchmarks.md quote, with the command that made
them).

Sections: domain core speed (one core), storage units and requests per event (moto, metered per call),
cost per million events (list prices in bench/cost.py), scheduler sweep scale, hand-raise → sales
notification latency on the local stack (bench/latency.py), a console lead page's render there
(bench/console.py), the rules lab's replay speed per core and a 100-million-event backtest's projected wall
time and cost on AWS (bench/lab.py), and last the scale projection at 10 million prospects and 1,000 events/s
from the figures measured before it (bench/projection.py; alone, it reads the stored results). `--quick`
shrinks the domain stream, skips the 100,000-prospect sweep (and ticks the fanned-out sweep with 5,000 due,
not 100,000) and sends 20 hand-raises instead of 100 (for a smoke run, not for publishing).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import console, cost, crosscheck, domain, lab, latency, per_save, projection, scale, storage
from bench.report import render
from bench.stream import Shape, generate, mix
from bench.targets import note_load
from bench.targets import render as render_targets

RESULTS = Path(__file__).with_name("results.json")
SECTIONS = ("domain", "storage", "cost", "scale", "latency", "console", "lab", "projection")


def _commit() -> str | None:
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parents[1],
        )
    except OSError:
        return None
    return answer.stdout.strip() or None


def run(sections: tuple[str, ...], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": "python -m bench"
        + (" --quick" if quick else "")
        + ("" if sections == SECTIONS else f" --only {','.join(sections)}"),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
    }
    shape = Shape(prospects=500, sessions=1_500) if quick else Shape()
    if "domain" in sections:
        note_load(results, "domain")
        stream = generate(shape)
        print(f"domain: {len(stream)} events ...", file=sys.stderr)
        results["domain"] = {
            "stream": {
                "prospects": shape.prospects,
                "sessions": shape.sessions,
                "seed": shape.seed,
                "mix": mix(stream),
            },
            **domain.measure(stream, repeats=3 if quick else 5),
            "hot_spots": domain.profile(stream),
        }
    if "storage" in sections or "cost" in sections:
        note_load(results, "storage")
        print("storage: two deliveries of the stream on moto ...", file=sys.stderr)
        results["storage"] = storage.measure()
        print("storage: cross-check of the units on DynamoDB Local ...", file=sys.stderr)
        results["storage"]["crosscheck_dynamodb_local"] = crosscheck.measure()
        print("storage: write units per save by history (moto and DynamoDB Local) ...", file=sys.stderr)
        results["storage"]["per_save_by_history"] = per_save.measure()
    if "cost" in sections:
        results["cost"] = cost.measure(results["storage"]["batched_per_prospect"])
    if "scale" in sections:
        note_load(results, "scale")
        sizes = scale.SIZES[:1] if quick else scale.SIZES
        print(f"scale: sweeps over {', '.join(f'{s:,}' for s in sizes)} prospects ...", file=sys.stderr)
        results["scale"] = scale.measure(sizes)
        dues = scale.QUICK_TICKS if quick else scale.TICKS
        print(f"scale: fanned-out sweep ticks, {', '.join(f'{d:,}' for d in dues)} due ...", file=sys.stderr)
        results["scale"]["fanout"] = scale.measure_fanout(dues)
    if "latency" in sections:
        note_load(results, "latency")
        hand_raises = 20 if quick else latency.HAND_RAISES
        print(
            f"latency: {hand_raises} hand-raises on the local stack under a background stream ...",
            file=sys.stderr,
        )
        results["latency"] = latency.measure(hand_raises=hand_raises)
    if "console" in sections:
        note_load(results, "console")
        print("console: a lead page rendered on the local stack ...", file=sys.stderr)
        results["console"] = console.measure(renders=10 if quick else console.RENDERS)
    if "lab" in sections:
        note_load(results, "lab")
        print("lab: archive encoding and the backtest replay, one core ...", file=sys.stderr)
        results["lab"] = lab.measure()
    if "projection" in sections:  # last: it reads what the sections above measured
        print("projection: 10 M prospects at 1,000 events/s from the measured figures ...", file=sys.stderr)
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else None
        try:
            results["projection"] = projection.measure(results, stored)
        except KeyError as missing:
            results["projection"] = {"skipped": missing.args[0]}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run; do not publish its figures")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sections = tuple(s for s in SECTIONS if s in args.only.split(","))
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    logging.getLogger("leadloop").setLevel(logging.ERROR)
    started = time.perf_counter()
    results = run(sections, args.quick)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    # Written aside and renamed, so an interrupted run never leaves a half-written results file.
    partial = args.output.with_name(args.output.name + ".tmp")
    partial.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    os.replace(partial, args.output)
    print(render(results))
    if "latency" in results:  # bench/report.py has no latency table yet
        print("\n" + latency.render(results["latency"]).rstrip())
    if "console" in results:
        print(console.render(results["console"]))
    if "lab" in results:
        print("\n" + lab.render(results["lab"]))
    summary = render_targets(results)
    if summary:
        print("\n" + summary)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
