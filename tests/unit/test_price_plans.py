"""collector/price/plans.py: the cost against the box count, hand-worked.

Every case runs 4 hours (range 00:00-04:00) on a box rented at $0.50 an hour that serves one
token a second (input and output alike), so an hour's need in box-seconds is its token count,
and one box holds 3,600 a hour at max_utilization 1. Each sum is written out beside the case.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from breakeven.collector.price.plans import Box, HourLoad, cost_curve
from breakeven.collector.price.pools import BoxCost, Capacity

SINCE, UNTIL = datetime(2026, 11, 2, 0, tzinfo=UTC), datetime(2026, 11, 2, 4, tzinfo=UTC)
BOX = Box(BoxCost(rent_per_hour=Decimal("0.5")), Capacity(Decimal(1), Decimal(1)))
D = Decimal


def hours(*loads: tuple[int, str]) -> list[HourLoad]:
    return [HourLoad(tokens, 0, D(bought)) for tokens, bought in loads]


# (case, profile, box, [(boxes, fixed, variable, overflow, overflow_share, utilization)], best boxes)
CASES = [
    (
        "flat: half a box all day",
        hours((1800, "1"), (1800, "1"), (1800, "1"), (1800, "1")),
        BOX,
        [
            (0, "0", "0", "4", "1", None),  # everything bought: 4 x $1
            (1, "2", "0", "0", "0", "0.5"),  # 4 h x $0.50; 7,200 busy s of 14,400
        ],
        1,
    ),
    (
        "day and night: two peak hours need two boxes",
        hours((7200, "4"), (7200, "4"), (1800, "1"), (1800, "1")),
        BOX,
        [
            (0, "0", "0", "10", "1", None),
            # 1 box: the night hours fit; each peak hour serves 3,600 of 7,200 and buys the other
            # half: overflow 2 x $4 x 1/2 = $4; tokens overflowing 7,200 of 18,000 = 0.4
            (1, "2", "0", "4", "0.4", "0.75"),  # busy 1,800 x 2 + 3,600 x 2 = 10,800 of 14,400
            (2, "4", "0", "0", "0", "0.625"),  # 18,000 of 28,800
        ],
        2,
    ),
    (
        "a peak above one box: 2.5 boxes for one hour, then quiet",
        hours((9000, "5"), (0, "0"), (0, "0"), (360, "0.2")),
        BOX,
        [
            (0, "0", "0", "5.2", "1", None),
            # 1 box: 3,600 of 9,000 served (0.4): overflow $5 x 0.6 = $3; tokens 5,400 of 9,360
            # busy (360 + 3,600) / 14,400; total $2 + $3 = $5
            (1, "2", "0", "3", "0.5769230769230769230769230769", "0.275"),
            # 2 boxes: 7,200 of 9,000 served: overflow $5 x 0.2 = $1; 1,800 of 9,360 tokens; total $5
            (2, "4", "0", "1", "0.1923076923076923076923076923", "0.2625"),  # 7,560 / 28,800
            (3, "6", "0", "0", "0", "0.2166666666666666666666666667"),  # 9,360 / 43,200; total $6
        ],
        1,  # $5 with one box or two, against $5.20 bought: the fewest boxes among equals
    ),
    (
        "two hours of one need at other prices",
        hours((1800, "1"), (1800, "2"), (0, "0"), (0, "0")),
        BOX,
        [
            (0, "0", "0", "3", "1", None),  # $1 + $2 bought
            (1, "2", "0", "0", "0", "0.25"),  # both fit one box: 3,600 busy s of 14,400
        ],
        1,
    ),
    ("no traffic", [], BOX, [(0, "0", "0", "0", "0", None)], 0),
]  # fmt: skip


@pytest.mark.parametrize(("case", "profile", "box", "points", "best"), CASES, ids=[c[0] for c in CASES])
def test_cost_curve(case: str, profile: list[HourLoad], box: Box, points: list[tuple], best: int) -> None:  # type: ignore[type-arg]
    curve = cost_curve(profile, box, SINCE, UNTIL)
    got = [
        (p.boxes, p.fixed_usd, p.variable_usd, p.overflow_usd, p.overflow_share, p.utilization) for p in curve.points
    ]
    want = [(k, D(f), D(v), D(o), D(s), None if u is None else D(u)) for k, f, v, o, s, u in points]
    assert got == want
    assert curve.best.boxes == best


def test_ops_is_counted_once_per_pool_not_per_box() -> None:
    # ops $720 a month; the 4 hours of a 30-day June are 4/720 of it: $4, whatever the box count
    box = Box(BoxCost(rent_per_hour=D("0.5"), ops_per_month=D(720)), Capacity(D(1), D(1)))
    june = datetime(2025, 6, 10, tzinfo=UTC)
    curve = cost_curve(hours((9000, "5")), box, june, june.replace(hour=4))
    assert [p.fixed_usd for p in curve.points] == [D(0), D(6), D(8), D(10)]  # $4 ops + $2 per box


def reference_curve(profile: list[HourLoad], box: Box) -> list[tuple[int, Fraction, Fraction, Fraction, Fraction]]:
    """The module docstring's formula hour by hour in exact fractions: (boxes, variable, overflow,
    overflow share, busy box-seconds) for k = 0 up to the fewest boxes that hold every hour."""
    cap = box.capacity
    need = [Fraction(h.input_tokens) / Fraction(cap.input_tps) + Fraction(h.output_tokens) / Fraction(cap.output_tps)
            for h in profile]  # fmt: skip
    per_box = 3600 * Fraction(box.max_utilization)
    tokens = sum(h.tokens for h in profile)
    most = max(1, math.ceil(max(need) / per_box)) if tokens else 0
    out = []
    for k in range(most + 1):
        served = [min(Fraction(1), k * per_box / n) if n else Fraction(0) for n in need]
        variable = (
            Fraction(box.cost.variable_per_million)
            * sum(s * h.tokens for s, h in zip(served, profile, strict=True))
            / 10**6
        )
        overflow = sum((1 - s) * Fraction(h.bought_usd) for s, h in zip(served, profile, strict=True))
        share = 1 - sum(s * h.tokens for s, h in zip(served, profile, strict=True)) / tokens if tokens else Fraction(0)
        busy = sum(min(n, k * per_box) for n in need)
        out.append((k, variable, overflow, share, busy))
    return out


def random_profile(seed: int) -> tuple[list[HourLoad], Box]:
    """Up to 60 hours: quiet ones, repeated ones (ties in need), peaks of several boxes."""
    rng = random.Random(seed)
    size = rng.randrange(1, 60)
    pick = [(rng.randrange(0, 20_000), rng.randrange(0, 2_000)) for _ in range(rng.randrange(1, size + 1))]
    loads = []
    for _ in range(size):
        inp, out = rng.choice([(0, 0), *pick])
        loads.append(HourLoad(inp, out, D(rng.randrange(0, 10**8)) / D(10**6)))
    cost = BoxCost(rent_per_hour=D("0.5"), variable_per_million=D(rng.choice(["0", "0.01", "3"])))
    return loads, Box(
        cost, Capacity(D(rng.choice([1, 3, 7])), D(rng.choice([1, 2]))), D(rng.choice(["1", "0.8", "0.6"]))
    )


@pytest.mark.parametrize("seed", range(40))
def test_cost_curve_against_the_formula_hour_by_hour(seed: int) -> None:
    """Running sums and a binary search per box count give the formula's figures to 20 digits."""
    profile, box = random_profile(seed)
    curve = cost_curve(profile, box, SINCE, UNTIL)
    seconds = 4 * 3600
    want = reference_curve(profile, box)
    assert [p.boxes for p in curve.points] == [w[0] for w in want]
    for point, (k, variable, overflow, share, busy) in zip(curve.points, want, strict=True):
        utilization = None if k == 0 else (point.utilization, busy / (k * seconds))
        pairs = [(point.variable_usd, variable), (point.overflow_usd, overflow), (point.overflow_share, share)]
        for got, exact in [*pairs, *([utilization] if utilization else [])]:
            assert abs(Fraction(got) - exact) <= Fraction(1, 10**20) * max(1, abs(exact)), (k, got, float(exact))
