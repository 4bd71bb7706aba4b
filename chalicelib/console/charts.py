"""The console's charts: small inline SVG drawn on the server (horizontal bars, a histogram, paired bars and
a line), so a page needs no chart library and no script, and the Content-Security-Policy stays strict (no
inline style: colours come from classes in console.css, sizes from SVG attributes).

Every text that reaches a chart is escaped here (labels can be template names or lead sources, which
people outside the team choose). Each chart is an `img` with a title; the page shows the same numbers as a
table beside it, which is what a screen reader reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 560
ROW = 26
LABEL_WIDTH = 170
VALUE_WIDTH = 70


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str = ""  # the value as read beside the bar ("42", "61%"); the value itself when empty


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _open(title: str, height: float, width: float = WIDTH, css: str = "chart") -> str:
    return (
        f'<svg class="{css}" role="img" viewBox="0 0 {width:g} {height:g}" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    )


def _clip(label: str, chars: int = 24) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


def bars(title: str, rows: Sequence[Bar], *, css: str = "bar") -> Markup:
    """Horizontal bars, one per row, scaled to the largest value (negative values draw as zero)."""
    if not rows:
        return Markup("")
    top = max((max(row.value, 0.0) for row in rows), default=0.0) or 1.0
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = [_open(title, ROW * len(rows) + 4)]
    for index, row in enumerate(rows):
        y = index * ROW + 2
        length = span * max(row.value, 0.0) / top
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(_clip(row.label))}</text>"
            f'<rect class="{css}" x="{LABEL_WIDTH}" y="{y + 3}" width="{max(length, 1.0):.1f}" '
            f'height="{ROW - 8}"/>'
            f'<text class="chart-value" x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 17}">'
            f"{escape(row.shown or _number(row.value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def paired_bars(title: str, rows: Sequence[tuple[str, float, float]], names: tuple[str, str]) -> Markup:
    """Two bars per row (revenue against cost), on one scale, with a legend."""
    if not rows:
        return Markup("")
    top = max((max(a, b, 0.0) for _, a, b in rows), default=0.0) or 1.0
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    pair = 2 * ROW - 8
    parts = [_open(title, pair * len(rows) + 30)]
    for index, name in enumerate(names):
        x = LABEL_WIDTH + index * 130
        parts.append(
            f'<rect class="bar-{index}" x="{x}" y="4" width="12" height="12"/>'
            f'<text class="chart-label" x="{x + 18}" y="15">{escape(name)}</text>'
        )
    for index, (label, first, second) in enumerate(rows):
        y = 26 + index * pair
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 8}" y="{y + 20}" text-anchor="end">'
            f"{escape(_clip(label))}</text>"
        )
        for offset, value in enumerate((first, second)):
            length = span * max(value, 0.0) / top
            top_y = y + 2 + offset * (ROW - 8)
            parts.append(
                f'<rect class="bar-{offset}" x="{LABEL_WIDTH}" y="{top_y}" width="{max(length, 1.0):.1f}" '
                f'height="{ROW - 10}"/><text class="chart-value" x="{LABEL_WIDTH + length + 6:.1f}" '
                f'y="{top_y + 13}">{escape(_number(value))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(title: str, columns: Sequence[Bar]) -> Markup:
    """Vertical columns side by side (a distribution), each labelled underneath."""
    if not columns:
        return Markup("")
    height, base = 180, 150
    top = max((max(c.value, 0.0) for c in columns), default=0.0) or 1.0
    step = (WIDTH - 20) / len(columns)
    parts = [_open(title, height)]
    parts.append(f'<line class="axis" x1="10" y1="{base}" x2="{WIDTH - 10}" y2="{base}"/>')
    for index, column in enumerate(columns):
        x = 10 + index * step
        tall = (base - 20) * max(column.value, 0.0) / top
        parts.append(
            f'<rect class="bar" x="{x + 4:.1f}" y="{base - tall:.1f}" width="{max(step - 8, 2):.1f}" '
            f'height="{tall:.1f}"/>'
            f'<text class="chart-value" x="{x + step / 2:.1f}" y="{base - tall - 4:.1f}" '
            f'text-anchor="middle">'
            f"{escape(column.shown or _number(column.value))}</text>"
            f'<text class="chart-label" x="{x + step / 2:.1f}" y="{base + 18}" text-anchor="middle">'
            f"{escape(_clip(column.label, 12))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line(
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    mark_x: float | None = None,
    x_labels: Sequence[tuple[float, str]] = (),
    css: str = "chart",
) -> Markup:
    """A line through (x, y) points, with an optional vertical mark (today) and labels on the x axis."""
    if len(points) < 2:
        return Markup("")
    width, height, base, left = 360, 150, 120, 34
    xs = [x for x, _ in points]
    low, high = min(xs), max(xs)
    top = max((y for _, y in points), default=0.0) or 1.0

    def at(x: float, y: float) -> str:
        across = left + (width - left - 10) * (x - low) / ((high - low) or 1)
        return f"{across:.1f},{base - (base - 14) * max(y, 0) / top:.1f}"

    parts = [_open(title, height, width, css)]
    parts.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}"/>')
    parts.append(
        f'<text class="chart-label" x="{left - 4}" y="18" text-anchor="end">'
        f"{escape(_number(round(top, 1)))}</text>"
    )
    parts.append(f'<text class="chart-label" x="{left - 4}" y="{base}" text-anchor="end">0</text>')
    if mark_x is not None and low <= mark_x <= high:
        x, _ = at(mark_x, 0).split(",")
        parts.append(f'<line class="mark" x1="{x}" y1="10" x2="{x}" y2="{base}"/>')
    parts.append(f'<polyline class="curve" points="{" ".join(at(x, y) for x, y in points)}"/>')
    for value, label in x_labels:
        x, _ = at(value, 0).split(",")
        parts.append(
            f'<text class="chart-label" x="{x}" y="{base + 18}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
