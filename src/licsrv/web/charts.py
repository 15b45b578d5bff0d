"""Charts drawn on the server as inline SVG: series in, one escaped `<svg>` string out (no script, no style
attribute, so the Content-Security-Policy holds). Lines for peaks, bars for counts, on one shared y axis, with
axis labels, a legend and an accessible title and description."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

WIDTH, HEIGHT = 600, 270
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 58, 34
FONT = 13


@dataclass(frozen=True)
class Plot:
    """One series: its name in the legend, its values (one per x label), drawn as a line or as bars."""

    name: str
    values: Sequence[int]
    kind: Literal["line", "bar"]
    color: str


def nice_step(value: int) -> int:
    """The grid step: the smallest of 1, 2, 5 × 10^n covering `value` in four steps (whole numbers only)."""
    rough = max(value, 1) / 4
    magnitude = 10 ** max(0, math.floor(math.log10(rough))) if rough >= 1 else 1
    for step in (1, 2, 5, 10):
        if rough <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}" fill="#4a5263"{extra}>'
        f"{escape(text)}</text>"
    )


def _label_every(count: int, room: float) -> int:
    """Show every n-th x label so that labels about 44 units wide never overlap."""
    return max(1, math.ceil(count / max(1, room // 44)))


def chart(
    chart_id: str, title: str, description: str, x_labels: Sequence[str], plots: Sequence[Plot]
) -> Markup:
    """The SVG of `plots` over `x_labels`; each point and bar carries a `<title>` "label: value" tooltip."""
    n = len(x_labels)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    highest = max((v for p in plots for v in p.values), default=0)
    step = nice_step(highest)
    top = step * max(1, math.ceil(highest / step)) if highest else 4
    slot = plot_w / max(n, 1)

    def y_of(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="chart" id="{escape(chart_id)}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="0" y="16" font-size="{FONT + 2}" font-weight="600" fill="#1d2433">{escape(title)}</text>',
    ]
    for i in range(top // step + 1):  # horizontal grid with the y labels
        value = step * i
        y = y_of(value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e3e7ee"/>')
        parts.append(_text(LEFT - 6, y + 4, str(value), "end"))
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#8a93a3"/>'
    )
    every = _label_every(n, plot_w)
    for i, label in enumerate(x_labels):
        if i % every == 0:
            parts.append(_text(LEFT + slot * (i + 0.5), HEIGHT - BOTTOM + 16, label))
    bars = [p for p in plots if p.kind == "bar"]
    bar_w = slot * 0.8 / max(len(bars), 1)
    for b, plot in enumerate(bars):
        for i, value in enumerate(plot.values):
            x = LEFT + slot * i + slot * 0.1 + b * bar_w
            y = y_of(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{TOP + plot_h - y:.1f}" '
                f'fill="{escape(plot.color)}" data-value="{value}">'
                f"<title>{escape(plot.name)}, {escape(x_labels[i])}: {value}</title></rect>"
            )
    for plot in (p for p in plots if p.kind == "line"):
        points = [(LEFT + slot * (i + 0.5), y_of(v)) for i, v in enumerate(plot.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{escape(plot.color)}" stroke-width="2"/>'
        )
        for (x, y), value, label in zip(points, plot.values, x_labels, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{escape(plot.color)}" data-value="{value}">'
                f"<title>{escape(plot.name)}, {escape(label)}: {value}</title></circle>"
            )
    x = 0
    for plot in plots:  # the legend, under the title
        color = escape(plot.color)
        mark = (
            f'<rect x="{x}" y="30" width="14" height="10" fill="{color}"/>'
            if plot.kind == "bar"
            else f'<line x1="{x}" y1="35" x2="{x + 14}" y2="35" stroke="{color}" stroke-width="3"/>'
        )
        parts.append(mark + _text(x + 20, 40, plot.name, "start", ' class="legend"'))
        x += 34 + int(len(plot.name) * FONT * 0.56)
    parts.append("</svg>")
    return Markup("".join(parts))
