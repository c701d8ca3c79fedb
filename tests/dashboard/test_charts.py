"""Server-side SVG charts: real bars and lines, values written on them, units on the axes, hostile names escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from breakeven.dashboard import charts
from breakeven.dashboard.fmt import compact, money

D = Decimal

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&'


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_stacked_bars_draw_a_bar_per_nonzero_value_and_label_each_day_total() -> None:
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    series = [
        charts.Series("frontier", [D("12.50"), D("3"), None]),
        charts.Series("self_hosted idle", [D("1"), D(0), D("2.25")]),
    ]
    root = _parse(charts.stacked_bars(days, series, "GBP", "Spend"))
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(bars) == 4  # zero and missing values draw nothing
    texts = _texts(root)
    assert {"£13.50", "£3.00", "£2.25"} <= set(texts)  # each day's total, on its bar
    assert "Spend (GBP per day)" in texts
    assert "GBP per day" in texts
    assert any(t.startswith("frontier £15.50") for t in texts)  # the legend carries each series' total
    assert "11-01" in texts
    assert "UTC day (month-day)" in texts


def test_lines_draw_a_polyline_with_labelled_points_and_a_dashed_break_even_line() -> None:
    labels = [f"2026-11-{d:02d}" for d in range(1, 8)]
    values = [D("0.04"), D("0.05"), None, D("0.03"), D("0.06"), D("0.04"), D("0.05")]
    root = _parse(
        charts.lines(labels, [charts.Series("utilization", values)], "Pool p", "% of capacity", charts.percent_fmt,
                     [("break-even", D("0.045"), "#d55e00")])
    )  # fmt: skip
    (line,) = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "line"]
    assert len(line.get("points", "").split()) == 6  # the missing day is skipped, not drawn as zero
    (ref,) = [r for r in root.iter(f"{SVG}line") if r.get("class") == "reference"]
    assert ref.get("stroke-dasharray")
    texts = _texts(root)
    assert "break-even 4.5%" in texts
    assert "6.0%" in texts
    assert "Pool p (% of capacity)" in texts


def test_horizontal_bars_put_negative_values_left_of_zero_with_their_label() -> None:
    root = _parse(
        charts.hbars(["saves", "loses"], [charts.Series("savings", [D("94.2"), D("-357.68")])], "Pools",
                     charts.money_fmt("EUR"), "EUR per month")
    )  # fmt: skip
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert float(bars[1].get("x", 0)) < float(bars[0].get("x", 0))
    assert {"€94.20", "-€358"} <= set(_texts(root))


@pytest.mark.parametrize("kind", ["stacked", "lines", "hbars"])
def test_hostile_series_names_and_labels_are_escaped(kind: str) -> None:
    s = [charts.Series(HOSTILE, [D(1), D(2)])]
    if kind == "stacked":
        svg = charts.stacked_bars(["2026-11-01", "2026-11-02"], s, "USD", HOSTILE)
    elif kind == "lines":
        svg = charts.lines(["2026-11-01", "2026-11-02"], s, HOSTILE, "u", str)
    else:
        svg = charts.hbars([HOSTILE, HOSTILE], [charts.Series(HOSTILE, [D(1), D(2)]), s[0]], HOSTILE, str, "u")
    assert "<script>" not in svg
    root = _parse(svg)  # still well-formed
    assert any(HOSTILE in t or "alert" in t for t in _texts(root))


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        pytest.param("0.42", "GBP", "£0.42", id="pence"),
        pytest.param("1234.5", "USD", "$1.2k", id="thousands"),
        pytest.param("2500000", None, "2.5M", id="millions without currency"),
        pytest.param("-357.68", "EUR", "-€358", id="negative hundreds"),
        pytest.param("120000", "JPY", "¥120k", id="three digits before k"),
    ],
)
def test_compact_labels(value: str, currency: str | None, expected: str) -> None:
    assert compact(D(value), currency) == expected


def test_money_never_shows_unpriced_as_zero() -> None:
    assert money(None, "GBP") == "—"
    assert money("1234.565", "GBP") == "£1,234.56"  # banker's rounding, as the ledger presents
    assert money("-3.1", "CHF") == "-CHF 3.10"
