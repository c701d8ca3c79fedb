"""Server-side SVG charts: stacked bars over days, lines against a break-even line, horizontal bars.

Readable without hovering: every bar and point carries its value as text, axes name their
unit and currency, legends carry each series' total. No JavaScript and nothing fetched:
the SVG is inline in the page. Every string that reaches the SVG (series names are span
values: hostile input) goes through markupsafe.escape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

from breakeven.dashboard.fmt import compact

# Okabe-Ito and friends: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#7f7f7f", "#332288")
CLASS_COLORS = {
    "frontier": "#6a3d9a",
    "managed": "#0072b2",
    "self_hosted": "#009e73",
    "self_hosted idle": "#b8b8b8",
    "unknown": "#999999",
}
WIDTH = 960
FONT = "font-family:system-ui,sans-serif"


@dataclass(frozen=True, slots=True)
class Series:
    """One named series of values (None: no value at that point)."""

    name: str
    values: Sequence[Decimal | None]
    color: str | None = None


def color_for(name: str, index: int) -> str:
    """A series' colour: the backend class's own, else the palette's."""
    return CLASS_COLORS.get(name, PALETTE[index % len(PALETTE)])


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _axis(top: float) -> tuple[float, list[float]]:
    """The axis maximum and its ticks for values up to top (at least one step)."""
    step = _nice_step(top)
    count = max(1, math.ceil(top / step - 1e-9))
    return step * count, [step * i for i in range(count + 1)]


def _text(x: float, y: float, text: str, size: int = 11, anchor: str = "middle", **extra: str) -> str:
    attrs = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in extra.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{attrs}>{escape(text)}</text>'


def _day_labels(count: int, slot: float) -> list[int]:
    """Which of `count` points get an x label: every so many to keep ~44 px apart, and the last if it fits."""
    every = max(1, math.ceil(44 / slot))
    shown = list(range(0, count, every))
    if shown and count - 1 - shown[-1] >= max(2, every * 0.75):
        shown.append(count - 1)
    return shown


def _svg(height: float, title: str, body: list[str], kind: str, width: int = WIDTH) -> Markup:
    head = (
        f'<svg class="chart chart-{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
        f'width="100%" role="img" aria-label="{escape(title)}" style="{FONT}">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _legend(items: list[tuple[str, str, str]], y: float, width: int = WIDTH) -> tuple[list[str], float]:
    """Legend swatches laid out in rows from the left; returns the parts and the next free y."""
    parts, x = [], 70.0
    for name, color, total in items:
        label = f"{name} {total}".strip()
        size = 22 + 6.6 * len(label)
        if x + size > width - 10:
            x, y = 70.0, y + 18
        parts.append(f'<rect class="swatch" x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 16, y, label, anchor="start"))
        x += size + 12
    return parts, y + 14


def stacked_bars(
    days: Sequence[str], series: Sequence[Series], currency: str, title: str, unit: str = "per day"
) -> Markup:
    """Bars over days, stacked by series, each bar labelled with its total; y axis in the currency."""
    n = max(1, len(days))
    totals = [sum((s.values[i] or Decimal(0) for s in series), Decimal(0)) for i in range(len(days))]
    top, ticks = _axis(float(max(totals, default=Decimal(0))) or 1.0)
    left, right, plot_top, plot_h = 72.0, 16.0, 34.0, 220.0
    slot = (WIDTH - left - right) / n
    bar = max(2.0, slot * 0.72)
    base = plot_top + plot_h
    body = [_text(left, 16, f"{title} ({currency} {unit})", size=13, anchor="start", font_weight="600")]
    for tick in ticks:
        y = base - plot_h * tick / top
        body.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        body.append(_text(left - 6, y + 4, compact(Decimal(str(tick)), currency), size=10, anchor="end"))
    body.append(
        _text(
            14,
            plot_top + plot_h / 2,
            f"{currency} {unit}",
            size=10,
            transform=f"rotate(-90 14 {plot_top + plot_h / 2:.0f})",
        )
    )
    rotate = slot < 34
    labelled = set(_day_labels(n, slot))
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        y = base
        for s_index, s in enumerate(series):
            value = s.values[i] or Decimal(0)
            if value <= 0:
                continue
            h = plot_h * float(value) / top
            y -= h
            color = s.color or color_for(s.name, s_index)
            tip = f"{day} {s.name}: {compact(value, currency)}"
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{color}"><title>{escape(tip)}</title></rect>'
            )
        if totals[i] > 0:
            label, cx = compact(totals[i], currency), x + bar / 2
            if rotate:
                body.append(
                    _text(
                        cx + 3,
                        y - 4,
                        label,
                        size=9,
                        anchor="start",
                        transform=f"rotate(-90 {cx + 3:.1f} {y - 4:.1f})",
                        class_="value",
                    )
                )
            else:
                body.append(_text(cx, y - 4, label, size=10, class_="value"))
        if i in labelled:
            body.append(_text(left + slot * i + slot / 2, base + 16, day[5:], size=10))
    body.append(f'<line class="axis" x1="{left}" x2="{WIDTH - right}" y1="{base}" y2="{base}" stroke="#555"/>')
    body.append(_text(left + (WIDTH - left - right) / 2, base + 32, "UTC day (month-day)", size=10))
    legend = [
        (
            s.name,
            s.color or color_for(s.name, i),
            compact(sum((v or Decimal(0) for v in s.values), Decimal(0)), currency),
        )
        for i, s in enumerate(series)
    ]
    parts, height = _legend(legend, base + 54)
    return _svg(height + 4, title, body + parts, "stacked")


def lines(
    labels: Sequence[str],
    series: Sequence[Series],
    title: str,
    unit: str,
    fmt: Callable[[Decimal], str],
    hlines: Sequence[tuple[str, Decimal, str]] = (),
    x_title: str = "UTC day (month-day)",
) -> Markup:
    """Lines over labelled points (days, unless x_title names other points), with horizontal reference lines
    (break-even), every point labelled."""
    n = max(1, len(labels))
    values = [v for s in series for v in s.values if v is not None] + [v for _, v, _ in hlines]
    top, ticks = _axis(float(max(values, default=Decimal(0))) * 1.12 or 1.0)
    left, right, plot_top, plot_h = 72.0, 150.0, 34.0, 200.0
    slot = (WIDTH - left - right) / n
    base = plot_top + plot_h
    body = [_text(left, 16, f"{title} ({unit})", size=13, anchor="start", font_weight="600")]
    for tick in ticks:
        y = base - plot_h * tick / top
        body.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        body.append(_text(left - 6, y + 4, fmt(Decimal(str(tick))), size=10, anchor="end"))
    body.append(
        _text(14, plot_top + plot_h / 2, unit, size=10, transform=f"rotate(-90 14 {plot_top + plot_h / 2:.0f})")
    )
    every_label = max(1, math.ceil(34 / slot))
    for s_index, s in enumerate(series):
        color = s.color or color_for(s.name, s_index)
        points = [
            (left + slot * i + slot / 2, base - plot_h * float(v) / top, v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            body.append(f'<polyline class="line" points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, (x, y, v) in enumerate(points):
            tip = f"<title>{escape(fmt(v))}</title>"
            body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">{tip}</circle>')
            if i % every_label == 0 or i == len(points) - 1:
                body.append(_text(x, y - 6, fmt(v), size=9, class_="value"))
    for name, value, color in hlines:
        y = base - plot_h * float(value) / top
        body.append(
            f'<line class="reference" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="2" stroke-dasharray="6 4"/>'
        )
        body.append(_text(WIDTH - right + 6, y + 4, f"{name} {fmt(value)}", size=10, anchor="start", fill=color))
    for i in _day_labels(len(labels), slot):
        label = labels[i][5:] if len(labels[i]) == 10 else labels[i]
        body.append(_text(left + slot * i + slot / 2, base + 16, label, size=10))
    body.append(f'<line class="axis" x1="{left}" x2="{WIDTH - right}" y1="{base}" y2="{base}" stroke="#555"/>')
    body.append(_text(left + (WIDTH - left - right) / 2, base + 32, x_title, size=10))
    legend = [(s.name, s.color or color_for(s.name, i), "") for i, s in enumerate(series)]
    parts, height = _legend(legend, base + 54)
    return _svg(height + 4, title, body + parts, "lines")


def hbars(
    labels: Sequence[str],
    series: Sequence[Series],
    title: str,
    fmt: Callable[[Decimal], str],
    unit: str,
    width: int = WIDTH,
    negative: str | None = None,
) -> Markup:
    """Horizontal bars, one group per label (one bar per series), each bar labelled with its value.

    width: the drawing's own width (a chart for half a page is drawn narrower, so its text
    stays as large as a full-width chart's once scaled to the page). negative: the colour of
    bars below zero (a loss), when they should read differently from gains."""
    groups = max(1, len(labels))
    per = len(series) or 1
    bar_h, gap = 14.0, 10.0
    left = min(260.0, width * 0.32)
    right = 70.0
    plot_top = 34.0
    values = [v for s in series for v in s.values if v is not None]
    low = min(min(values, default=Decimal(0)), Decimal(0))
    high = max(max(values, default=Decimal(0)), Decimal(0))
    span = float(high - low) or 1.0
    plot_w = width - left - right
    chars = int(left / 6.2)

    def xpos(value: Decimal) -> float:
        return left + plot_w * float(value - low) / span

    zero = xpos(Decimal(0))
    body = [_text(12, 16, f"{title} ({unit})", size=13, anchor="start", font_weight="600")]
    y = plot_top
    for g, label in enumerate(labels[:groups]):
        short = label if len(label) <= chars else label[: chars - 1] + "…"
        body.append(f'<g class="group"><title>{escape(label)}</title>')
        body.append(_text(left - 8, y + bar_h * per / 2 + 4, short, size=11, anchor="end"))
        for s_index, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else None
            by = y + bar_h * s_index
            if value is None:
                body.append(_text(zero + 4, by + bar_h - 3, "n/a", size=10, anchor="start", fill="#777"))
                continue
            x0, x1 = sorted((zero, xpos(value)))
            color = negative if negative and value < 0 else s.color or color_for(s.name, s_index)
            body.append(
                f'<rect class="bar" x="{x0:.1f}" y="{by:.1f}" width="{max(x1 - x0, 0.5):.1f}" '
                f'height="{bar_h - 2:.1f}" fill="{color}"/>'
            )
            text = fmt(value)
            if value >= 0:
                body.append(_text(x1 + 4, by + bar_h - 4, text, size=10, anchor="start", class_="value"))
            elif x1 - x0 > 7 * len(text):  # a negative bar: its value inside it, clear of the labels
                body.append(_text(x0 + 4, by + bar_h - 4, text, size=10, anchor="start", fill="#fff", class_="value"))
            else:
                body.append(_text(x1 + 4, by + bar_h - 4, text, size=10, anchor="start", class_="value"))
        body.append("</g>")
        y += bar_h * per + gap
    body.append(
        f'<line class="axis" x1="{zero:.1f}" x2="{zero:.1f}" y1="{plot_top - 4}" y2="{y - gap + 4:.1f}" stroke="#555"/>'
    )
    if len(series) > 1:
        legend = [(s.name, s.color or color_for(s.name, i), "") for i, s in enumerate(series)]
        parts, height = _legend(legend, y + 18, width)
    else:
        parts, height = [], y + 4
    return _svg(height + 4, title, body + parts, "hbars", width)


def money_fmt(currency: str) -> Callable[[Decimal], str]:
    """Compact money labels in a currency (for charts)."""
    return lambda value: compact(value, currency)


def percent_fmt(value: Decimal) -> str:
    """A ratio as a short percentage label."""
    pct = value * 100
    return f"{pct:.1f}%" if abs(pct) < 10 else f"{pct:.0f}%"


def currency_unit(currency: str, per: str) -> str:
    """A chart's unit, such as "GBP per month"."""
    return f"{currency} {per}"
