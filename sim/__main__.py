"""`python -m sim [--seeds 1,2,3,4,5] [--prospects 2000] [--days 90] [--jobs 1] [--json]`: simulate a
B2B prospect population with hidden truth through Leadloop's real product code and report how its routing
and nurture decisions compare with naive baselines (docs/simulation.md explains the model and the report).

Each seed runs two arms on the same population and the same site behaviour: `tailored` (the product's
chooser) and `drip` (templates in a fixed order in the same send slots). Routing is measured on the
tailored arm; the baselines route on the very events the tailored arm's people produced.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from chalicelib.adapters.templates import TemplateRenderer, load_shipped_templates
from chalicelib.domain.rules import parse_rules
from chalicelib.wiring import load_default_rules
from sim import diagnose, measure
from sim.baselines import NAMES, baseline_routes
from sim.drive import Simulation
from sim.population import POPULATIONS, make_population
from sim.site import site_map

ARMS = ("tailored", "drip")


def run_seed(
    seed: int, prospects: int, days: int, population: str = "base", rules_file: str | None = None
) -> dict[str, Any]:
    """Both arms of one seed and every measure of it (with the default rules, or a rules document's)."""
    started = time.perf_counter()
    rules = parse_rules(yaml.safe_load(Path(rules_file).read_text())) if rules_file else load_default_rules()
    templates = load_shipped_templates()
    renderer = TemplateRenderer()
    site = site_map(rules)
    people = make_population(seed, prospects, site.topics, days, POPULATIONS[population])
    logs = {}
    for arm in ARMS:
        arm_started = time.perf_counter()
        sim = Simulation(
            seed=seed, people=people, site=site, rules=rules, templates=templates, renderer=renderer,
            days=days, arm=arm,
        )  # fmt: skip
        logs[arm] = sim.run()
        logs[arm].seconds = time.perf_counter() - arm_started
    tailored = logs["tailored"]
    result: dict[str, Any] = {
        "seed": seed,
        "routing": {"leadloop": measure.routing(people, tailored.routes, days)},
        "diagnosis": diagnose.diagnosis(people, tailored.routes, tailored.events, rules, days),
        "nurture": {arm: measure.nurture(logs[arm].sends) for arm in ARMS},
        "sales_answers": tailored.sales_answers,
        "population": _population(people),
    }
    for name, routes in baseline_routes(rules, tailored.events, people, seed).items():
        result["routing"][name] = measure.routing(people, routes, days)
    drip = result["nurture"]["drip"]["click_rate"]
    result["nurture"]["lift"] = result["nurture"]["tailored"]["click_rate"] / drip if drip else None
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _population(people: list[Any]) -> dict[str, Any]:
    segments: dict[str, int] = {}
    for person in people:
        segments[person.segment] = segments.get(person.segment, 0) + 1
    return {
        "segments": dict(sorted(segments.items())),
        "with_window": sum(p.window is not None for p in people),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    routing = {
        method: {
            key: measure.spread([run["routing"][method][key] for run in runs])
            for key in ("precision", "recall", "median_days_to_route", "routes")
        }
        for method in ("leadloop", *NAMES)
    }
    nurture = {
        arm: {
            key: measure.spread([run["nurture"][arm][key] for run in runs])
            for key in ("click_rate", "open_rate", "topic_match", "repeats", "sends")
        }
        for arm in ARMS
    }
    nurture["lift"] = measure.spread([run["nurture"]["lift"] for run in runs])  # type: ignore[assignment]
    return {
        "routing": routing,
        "nurture": nurture,
        "diagnosis": diagnose.merge([run["diagnosis"] for run in runs]),
    }


def _commit() -> str | None:
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
    except OSError:
        return None
    return answer.stdout.strip() or None


def _fmt(s: dict[str, float | None], pct: bool = False, digits: int = 2) -> str:
    if s["mean"] is None:
        return "-"
    scale = 100 if pct else 1
    unit = "%" if pct else ""
    mean, low, high = (v * scale for v in (s["mean"], s["min"], s["max"]))  # type: ignore[operator]
    return f"{mean:.{digits}f}{unit} ({low:.{digits}f}-{high:.{digits}f})"


def render(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"Leadloop simulation at {report['commit']}: seeds {report['seeds']}, "
        f"{report['prospects']} prospects, {report['days']} days, population {report['population']}, "
        f"{report['seconds']:.0f} s",
        "",
        "routing                 precision             recall                median days to route   routes",
    ]
    for method in ("leadloop", *NAMES):
        r = s["routing"][method]
        lines.append(
            f"  {method:<21} {_fmt(r['precision']):<21} {_fmt(r['recall']):<21} "
            f"{_fmt(r['median_days_to_route'], digits=1):<22} {_fmt(r['routes'], digits=0)}"
        )
    lines += [
        "",
        "nurture                 click rate            human open rate       topic match           repeats",
    ]
    for arm in ARMS:
        n = s["nurture"][arm]
        lines.append(
            f"  {arm:<21} {_fmt(n['click_rate'], pct=True):<21} "
            f"{_fmt(n['open_rate'], pct=True, digits=1):<21} "
            f"{_fmt(n['topic_match'], pct=True, digits=1):<21} {_fmt(n['repeats'], digits=0)}"
        )
    lines.append(f"  tailored / drip clicks {_fmt(s['nurture']['lift'])}")
    lines += ["", *_diagnosis_lines(s["diagnosis"])]
    lines += ["", "per seed (leadloop routes by segment; sales answers):"]
    for run in report["runs"]:
        lines.append(
            f"  seed {run['seed']}: {run['routing']['leadloop']['routes_by_segment']}; "
            f"{run['sales_answers']}; {run['seconds']:.0f} s"
        )
    lines.append("(mean over seeds, min-max in brackets; definitions in docs/simulation.md)")
    return "\n".join(lines)


def _diagnosis_lines(d: dict[str, Any]) -> list[str]:
    """Leadloop's wrong routes and missed ready buyers, summed over the seeds."""

    def counts(title: str, found: dict[str, int], top: int = 8) -> str:
        shown = ", ".join(f"{name} {n}" for name, n in list(found.items())[:top])
        return f"  {title:<22}{shown or '-'}"

    wrong, missed = d["wrong_routes"], d["missed_buyers"]
    return [
        f"leadloop diagnosis (all seeds): {sum(wrong['path'].values())} wrong routes, "
        f"{sum(missed['cause'].values())} missed ready buyers",
        counts("wrong by path", wrong["path"]),
        counts("wrong by segment", wrong["segment"]),
        counts("wrong by timing", wrong["timing"]),
        counts("wrong, top causes", wrong["detail"], top=6),
        counts("right by path", d["right_routes_by_path"]),
        counts("missed by cause", missed["cause"]),
        counts("missed by segment", missed["segment"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds (default 1,2,3,4,5)")
    parser.add_argument("--prospects", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--jobs", type=int, default=2, help="seeds run in parallel processes (default 2)")
    parser.add_argument(
        "--population", choices=sorted(POPULATIONS), default="base",
        help="base (docs/simulation.md's model) or variant (other shares, timing, intent, traits, email)",
    )  # fmt: skip
    parser.add_argument("--rules", help="a rules document (YAML) to measure instead of the default rules")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    started = time.perf_counter()
    if args.jobs > 1 and len(seeds) > 1:
        with ProcessPoolExecutor(max_workers=min(args.jobs, len(seeds))) as pool:
            n = len(seeds)
            runs = list(
                pool.map(
                    run_seed,
                    seeds,
                    [args.prospects] * n,
                    [args.days] * n,
                    [args.population] * n,
                    [args.rules] * n,
                )  # fmt: skip
            )
    else:
        runs = []
        for seed in seeds:
            runs.append(run_seed(seed, args.prospects, args.days, args.population, args.rules))
            print(f"seed {seed}: {runs[-1]['seconds']:.0f} s", file=sys.stderr)
    report = {
        "command": "python -m sim " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": _commit(),
        "seeds": seeds,
        "prospects": args.prospects,
        "days": args.days,
        "population": args.population,
        "rules": args.rules or "default",
        "seconds": round(time.perf_counter() - started, 1),
        "summary": summarize(runs),
        "runs": runs,
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
