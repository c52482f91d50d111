"""Small hand-written SVG charts of benchmark curves (no plotting library needed).

    from charts import Series, line_chart, bar_chart
    line_chart("Peak RSS against URLs", "URLs", "MB",
               [Series("linkkeeper", [(100_000, 190), (300_000, 205)])],
               CHARTS_DIR / "check_rss.svg", aim=300)

Every chart is a standalone SVG 1.1 document (XML, no scripts, no external references), so
GitHub shows it inline from BENCHMARKS.md. Axes start at zero; an optional horizontal
``aim`` line marks the target. Values are drawn as they are: no smoothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

CHARTS_DIR = Path(__file__).resolve().parent / "charts"
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 160, 40, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]


def nice_max(value: float) -> float:
    """The smallest 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k at or above ``value`` (an axis end)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    if value >= 1_000_000 and value % 100_000 == 0:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000 and value % 1_000 == 0:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _frame(title: str, x_label: str, y_label: str, x_max: float, y_max: float) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>',
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle" '
        f'font-size="12">{escape(x_label)}</text>',
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">{escape(y_label)}</text>',
    ]
    for i in range(6):
        y_value = y_max * i / 5
        y = TOP + plot_h - plot_h * i / 5
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{_number(round(y_value, 3))}</text>"
        )
    if x_max:
        for i in range(6):
            x = LEFT + plot_w * i / 5
            parts.append(
                f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                f'font-size="11">{_number(round(x_max * i / 5, 3))}</text>'
            )
    return parts


def _document(parts: list[str]) -> str:
    body = "\n".join(parts)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">\n'
        f"{body}\n</svg>\n"
    )


def _aim(parts: list[str], aim: float | None, y_max: float, label: str) -> None:
    if aim is None:
        return
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y = TOP + plot_h - plot_h * aim / y_max
    parts.append(
        f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#555" '
        'stroke-dasharray="6 4"/>'
    )
    parts.append(
        f'<text x="{LEFT + plot_w + 6}" y="{y + 4:.1f}" font-size="11">'
        f"{escape(label)} {_number(aim)}</text>"
    )


def line_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    path: Path,
    *,
    aim: float | None = None,
    aim_label: str = "aim",
) -> Path:
    """Write a line chart (one polyline with dots per series, legend on the right)."""
    xs = [x for s in series for x, _ in s.points] or [1.0]
    ys = [y for s in series for _, y in s.points] or [1.0]
    x_max = nice_max(max(xs))
    y_max = nice_max(max([*ys, aim or 0]) * 1.05)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, x_label, y_label, x_max, y_max)
    _aim(parts, aim, y_max, aim_label)
    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        points = [
            (LEFT + plot_w * x / x_max, TOP + plot_h - plot_h * y / y_max)
            for x, y in sorted(one.points)
        ]
        if len(points) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
        legend_y = TOP + 14 + 18 * index
        parts.append(
            f'<rect x="{WIDTH - RIGHT + 12}" y="{legend_y - 9}" width="12" height="12" '
            f'fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT + 30}" y="{legend_y + 1}" font-size="11">'
            f"{escape(one.name)}</text>"
        )
    return _write(path, parts)


def bar_chart(
    title: str,
    y_label: str,
    bars: Sequence[tuple[str, float]],
    path: Path,
    *,
    aim: float | None = None,
    aim_label: str = "aim",
) -> Path:
    """Write a bar chart: one labelled bar per (label, value), values printed on top."""
    y_max = nice_max(max([v for _, v in bars] + [aim or 0, 0.0]) * 1.1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, "", y_label, 0, y_max)
    _aim(parts, aim, y_max, aim_label)
    slot = plot_w / max(len(bars), 1)
    for index, (label, value) in enumerate(bars):
        height = plot_h * value / y_max
        x = LEFT + slot * index + slot * 0.15
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{height:.1f}" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h - height - 4:.1f}" '
            f'text-anchor="middle" font-size="11">{value:g}</text>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
            f'font-size="11">{escape(label)}</text>'
        )
    return _write(path, parts)


def _write(path: Path, parts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_document(parts), encoding="utf-8")
    return path


POINTS = CHARTS_DIR / "points.json"


def remember(chart: str, series: str, x: float, y: float, path: Path = POINTS) -> list[Series]:
    """Keep one measured point of a curve (runs at different sizes happen at different
    times) in ``charts/points.json``; returns the chart's series as they now stand."""
    import json

    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    curve = data.setdefault(chart, {}).setdefault(series, {})
    curve[f"{x:g}"] = y
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return [
        Series(name, [(float(px), py) for px, py in points.items()])
        for name, points in data[chart].items()
    ]
