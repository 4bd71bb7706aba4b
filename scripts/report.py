"""`make report`: the shared scoreboard as readable tables in the terminal.

Reads `GET /metrics` from the local stack (port $PORT when given, else the running one, found through its
.local/data/stack.json, with its dev marketing key), or,
with `--store`, straight from the counters of the stack configured in the environment (LEADLOOP_* settings).

    python scripts/report.py [--from 2026-11-01] [--to 2026-11-30] [--url URL] [--key KEY] [--store]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_stack import client_environment, local_url, running_stack  # noqa: E402


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.4g}"
    return str(value)


def _percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.ljust(width) if i == 0 else value.rjust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [title, line(headers), line(["-" * width for width in widths])]
    out += [line(row) for row in cells] if cells else ["(none)"]
    return "\n".join(out)


def render(board: dict[str, Any]) -> str:
    """The scoreboard as text tables: what `make report` prints."""
    span = f"{board.get('from') or 'all time'} .. {board.get('to') or 'now'}"
    follow, timing, sla = board["follow_up"], board["time_to_accept_minutes"], board["sla"]
    stages = board["stages"]
    funnel = [
        [row["stage"], row["leads"], row["reentries"], _percent(row["conversion_from_previous"])]
        for row in stages["funnel"]
    ]
    funnel += [[stage, stages[stage], stages["reentries"][stage], ""] for stage in ("lost", "disqualified")]
    handoff = [
        ["routed to sales", follow["routed"]],
        ["accepted", follow["accepted"]],
        ["accepted within SLA", follow["accepted_within_sla"]],
        ["follow-up rate", _percent(follow["rate"])],
        ["median time to accept (min, at most)", timing["median_at_most"]],
        ["p90 time to accept (min, at most)", timing["p90_at_most"]],
        ["SLA escalations", sla["escalated"]],
        ["SLA misses", sla["missed"]],
    ]
    reasons = sorted({reason for by in board["recycle_reasons"]["by_source"].values() for reason in by})
    recycles = [
        [source, *(by.get(reason, 0) for reason in reasons)]
        for source, by in board["recycle_reasons"]["by_source"].items()
    ]
    messages = [
        [
            m["template"],
            m.get("sent", 0),
            m.get("delivered", 0),
            m.get("opened", 0),
            m.get("clicked", 0),
            _percent(m["open_rate"]),
            _percent(m["click_rate"]),
        ]
        for m in board["messages"]
    ]
    measures = ("leads", "routed", "accepted", "won", "revenue")
    by_touch = {
        what: [[name, *(row[m] for m in measures)] for name, row in board["attribution"][what].items()]
        for what in ("by_source", "by_campaign")
    }
    revenue = board["revenue"]
    money = [[r["source"], r["month"], r["won"], r["cost"], r["return"]] for r in revenue["by_source_month"]]
    money.append(["total", "", revenue["won"], revenue["cost"], revenue["return"]])
    return "\n\n".join(
        [
            f"Leadloop scoreboard, {span}",
            table("Funnel (leads; re-entries apart)", ["stage", "leads", "re-entries", "conversion"], funnel),
            table("Handoff", ["measure", "value"], handoff),
            table("Recycle reasons by lead source", ["source", *reasons], recycles),
            table(
                "Messages by template",
                ["template", "sent", "delivered", "opened", "clicked", "open", "click"],
                messages,
            ),
            table("Revenue won against cost", ["source", "month", "won", "cost", "return"], money),
            table("Leads by first-touch source", ["source", *measures], by_touch["by_source"]),
            table("Leads by first-touch campaign", ["campaign", *measures], by_touch["by_campaign"]),
        ]
    )


def from_api(url: str, key: str, start: str | None, end: str | None) -> dict[str, Any]:
    query = urllib.parse.urlencode({k: v for k, v in (("from", start), ("to", end)) if v})
    request = urllib.request.Request(
        f"{url.rstrip('/')}/metrics" + (f"?{query}" if query else ""),
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a URL the operator gave
        return dict(json.loads(answer.read()))


def from_store(start: str | None, end: str | None) -> dict[str, Any]:
    from chalicelib import wiring
    from chalicelib.usecases.scoreboard import Scoreboard, parse_day

    board = Scoreboard(wiring.counters(), wiring.content(), wiring.utc_now)
    return board.report(parse_day(start, "from"), parse_day(end, "to"))


def _marketing_key(stack: dict[str, Any] | None) -> str:
    name = "LEADLOOP_DEV_MARKETING_KEY"
    return os.environ.get(name) or (stack or {}).get("env", {}).get(name) or "dev-marketing-key"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (default: all time)")
    parser.add_argument("--to", dest="end", help="last day, YYYY-MM-DD")
    # PORT when given, else the running local stack on whatever port it was started (its stack file).
    stack = running_stack(os.environ)
    parser.add_argument("--url", default=local_url(os.environ))
    parser.add_argument("--key", default=_marketing_key(stack))
    parser.add_argument(
        "--store", action="store_true", help="read the counters directly, not through the API"
    )
    parser.add_argument("--json", action="store_true", help="print the raw scoreboard JSON")
    args = parser.parse_args(argv)
    try:
        if args.store and stack:
            os.environ.update(client_environment(os.environ))
        board = (
            from_store(args.start, args.end)
            if args.store
            else from_api(args.url, args.key, args.start, args.end)
        )
    except urllib.error.HTTPError as error:
        print(f"GET /metrics answered {error.code}: {error.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(
            f"no Leadloop API at {args.url} ({error.reason}); start it with `make run`, or use --store",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(board, indent=2) if args.json else render(board))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
