"""Charts as inline SVG, drawn on the server so they show without scripts (and in e-mail/print).

Each function returns `Markup` ready for the template; every piece of text
that comes from data (host names, dates) goes through `escape`. Sizes are in
a viewBox, so the charts scale to the page width on a phone or a laptop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

from linkkeeper.report.data import HostView, RunPoint, YearRot
from linkkeeper.report.iri import display_host

# Status groups of the history chart, bottom to top, with their colours.
HISTORY_GROUPS: list[tuple[str, tuple[str, ...], str]] = [
    ("ok / redirected", ("ok", "redirected"), "#2e7d32"),
    ("blocked / rate-limited", ("blocked", "rate-limited"), "#c9a227"),
    ("timeout / 5xx / TLS / network", ("timeout", "server-error", "tls-error", "network-error"),
     "#e67e22"),
    ("soft-404", ("soft-404",), "#8e44ad"),
    ("broken", ("broken",), "#c0392b"),
]
ROT_SERIES: list[tuple[str, str, str]] = [
    ("dead", "dead", "#7b1c1c"),
    ("soft_404", "soft-404", "#8e44ad"),
    ("broken", "broken, not yet confirmed dead", "#e8a39b"),
]

FONT = 'font-family="system-ui, sans-serif" font-size="12" fill="currentColor"'
WIDTH = 560


def nice_ticks(top: float, most: int = 5, *, whole: bool = True) -> list[float]:
    """Axis ticks from 0 to just above `top` in round steps (1, 2, 2.5 or 5 × 10^k), at most
    `most` intervals: the scale follows the data instead of jumping to the next power of ten.
    `whole` keeps steps integral (counts of links)."""
    if not top > 0 or not math.isfinite(top):
        return [0.0, 1.0]
    power = 10.0 ** math.floor(math.log10(top / most))
    step = 10 * power
    for factor in (1, 2, 2.5, 5, 10):
        candidate = factor * power
        if whole and (candidate < 1 or candidate != int(candidate)):
            continue
        if candidate * most >= top:
            step = candidate
            break
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def _y_axis(left: float, top: float, width: float, plot_h: float, ticks: Sequence[float],
            label: Callable[[float], str]) -> list[str]:
    """Gridlines and value labels at each tick; the baseline stronger than the rest."""
    out = []
    for value in ticks:
        y = top + plot_h - plot_h * value / ticks[-1]
        opacity = "0.4" if value == 0 else "0.12"
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" '
                   f'stroke="currentColor" stroke-opacity="{opacity}"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>'
                   f"{label(value)}</text>")
    return out


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _legend(items: Sequence[tuple[str, str]], x0: float, y: float,
            right: float = WIDTH - 10) -> tuple[list[str], float]:
    """Colour keys, wrapped onto as many lines as needed; returns the elements and the next y."""
    out, x = [], x0
    for label, color in items:
        width = 22 + 6.6 * len(label)
        if x > x0 and x + width > right:
            x, y = x0, y + 16
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{y:.1f}" {FONT}>{escape(label)}</text>')
        x += width
    return out, y + 18


def _compact(n: float) -> str:
    """Axis numbers that fit the margin: 950, 12k, 1.5M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 10_000:
        return f"{n / 1000:g}k"
    return f"{n:,.0f}"


def _every(slot: float, label_width: float) -> int:
    """Label every n-th bar so that labels of `label_width` never overlap."""
    return max(1, math.ceil(label_width / slot))


_DEGRADED = " (degraded run: failures not counted)"


def history_chart(points: Sequence[RunPoint]) -> Markup:
    """Stacked bars of check statuses per run, oldest run on the left."""
    width, left, bottom, plot_h = WIDTH, 48, 36, 170
    legend, top = _legend([(label, color) for label, _, color in HISTORY_GROUPS], left, 14)
    height = top + plot_h + bottom
    if not points:
        return _svg(WIDTH, 60, "No runs yet", [f'<text x="10" y="30" {FONT}>No runs yet.</text>'])
    totals = [sum(p.counts.get(s, 0) for _, ss, _ in HISTORY_GROUPS for s in ss) for p in points]
    ticks = nice_ticks(max(totals))
    ymax = ticks[-1]
    slot = (width - left - 10) / len(points)
    bar = max(2.0, min(28.0, slot * 0.7))
    body = _y_axis(left, top, width, plot_h, ticks, _compact)
    label_every = _every(slot, 8 + 7 * len(str(points[-1].id)))
    for i, point in enumerate(points):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        tip = [f"run {point.id} ({point.started_at[:16].replace('T', ' ')})"]
        note = _DEGRADED if point.degraded else ""
        for label, statuses, color in HISTORY_GROUPS:
            n = sum(point.counts.get(s, 0) for s in statuses)
            if not n:
                continue
            h = plot_h * n / ymax
            y -= h
            tip.append(f"{label}: {n}")
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(f'run {point.id}: {label}: {n}{note}')}</title></rect>"
            )
        if (len(points) - 1 - i) % label_every == 0:
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f"{FONT}>{point.id}</text>"
            )
    body.append(f'<text x="{left}" y="{height - 4}" {FONT}>run</text>')
    body += legend
    return _svg(width, height, "Check statuses per run", body)


def rot_chart(years: Sequence[YearRot]) -> Markup:
    """The rot curve: share of each year's links that are dead or soft-404 (plus unconfirmed)."""
    width, left, bottom, plot_h = WIDTH, 48, 36, 170
    legend, top = _legend([(label, color) for _, label, color in ROT_SERIES], left, 14)
    top += 8  # room for the labels over the bars
    height = top + plot_h + bottom
    if not years:
        return _svg(WIDTH, 60, "No dated posts with checked links",
                    [f'<text x="10" y="30" {FONT}>No dated posts with checked links yet.</text>'])
    shares = [(y.dead + y.soft_404 + y.broken) / y.links if y.links else 0 for y in years]
    ticks = nice_ticks(max(0.05, max(shares)), 4, whole=False)
    ymax = ticks[-1]
    slot = (width - left - 10) / len(years)
    bar = max(3.0, min(40.0, slot * 0.7))
    body = _y_axis(left, top, width, plot_h, ticks, lambda v: f"{v * 100:.3g}%")
    label_every = _every(slot, 36)
    for i, year in enumerate(years):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for attr, label, color in ROT_SERIES:
            n = getattr(year, attr)
            if not n or not year.links:
                continue
            h = plot_h * (n / year.links) / ymax
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(f'{year.year}: {label}: {n} of {year.links} links')}</title></rect>"
            )
        if (year.dead or year.soft_404) and ((len(years) - 1 - i) % label_every == 0):
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{max(top - 2, y - 3):.1f}" text-anchor="middle" '
                f'{FONT}>{year.rot_share:.0%}</text>'
            )
        if (len(years) - 1 - i) % label_every == 0:
            body.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f"{FONT}>{escape(year.year)}</text>"
            )
    body.append(f'<text x="{left}" y="{height - 4}" {FONT}>year of post · figures: dead + '
                "soft-404 share</text>")
    body += legend
    return _svg(width, height, "Share of links dead or soft-404 by year of post", body)


def host_chart(hosts: Sequence[HostView], limit: int = 12) -> Markup:
    """Horizontal bars: failure rate of the hosts with the most failures."""
    worst = [h for h in hosts if h.failures][:limit]
    if not worst:
        return _svg(WIDTH, 40, "No host has failing links",
                    [f'<text x="10" y="24" {FONT}>No host has failing links.</text>'])
    row, label_w, width = 22, 200, WIDTH
    height = row * len(worst) + 10
    bar_w = width - label_w - 120
    body = []
    for i, host in enumerate(worst):
        y = 5 + i * row
        shown = display_host(host.host)
        name = shown if len(shown) <= 30 else shown[:29] + "…"
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" {FONT}>'
                    f"{escape(name)}</text>")
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="14" '
                    'fill="currentColor" fill-opacity="0.08"/>')
        w = max(1.0, bar_w * host.failure_rate)
        body.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="#c0392b">'
            f"<title>{escape(f'{host.host}: {host.failures} of {host.links} links failing')}"
            "</title></rect>"
        )
        body.append(f'<text x="{label_w + bar_w + 6}" y="{y + 14}" {FONT}>'
                    f"{host.failures}/{host.links} ({host.failure_rate:.0%})</text>")
    return _svg(width, height, "Failure rate of the hosts with the most failing links", body)
