"""Hybrid plans: how many boxes of a candidate a traffic class should run, the rest bought.

For one traffic class and one candidate box, over a range of whole hours: with k boxes, each
hour h serves what fits and sends the rest to the per-token provider it is bought from today
(the seeds' hybrid: self-host the steady base, burst the peaks):

    need_h      = input_h / input_tps + output_h / output_tps          box-seconds the hour needs
    room_k      = k x 3600 x max_utilization                           box-seconds k boxes give
    served_h    = min(1, room_k / need_h)                              the share of the hour served
    cost(k)     = fixed(k boxes, range)                                rent, power; ops once per pool
                + variable_per_million x sum(served_h x tokens_h) / 1M
                + sum((1 - served_h) x bought_h)                       the overflow, at its own price

bought_h is what hour h's traffic costs per token (what it paid; for a pool's own traffic,
its alternative's price). The curve runs from k = 0 (everything bought) to the fewest boxes
that serve every hour; more boxes only add fixed cost. The plan is the cheapest k (the
fewest, on a tie). Exact Decimal throughout, to the context's 28 digits where a share divides.

Hours are sorted by need once, with running sums, so each k costs a binary search: a month of
hours for dozens of classes and candidates answers well inside a second.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from breakeven.collector.price.money import MILLION, ONE, ZERO
from breakeven.collector.price.periods import seconds_between
from breakeven.collector.price.pools import HOUR, BoxCost, Capacity, fixed_cost


@dataclass(frozen=True, slots=True)
class HourLoad:
    """One hour of a class's traffic: every prompt token, output tokens, and its bought price."""

    input_tokens: int  # cached or not: capacity is measured on whole prompts
    output_tokens: int
    bought_usd: Decimal  # what these tokens cost (or would) per token, in USD

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Box:
    """A box a plan may run: what it costs, what it serves, how full it may be planned."""

    cost: BoxCost
    capacity: Capacity
    max_utilization: Decimal = ONE


@dataclass(frozen=True, slots=True)
class PlanPoint:
    """The range's cost with `boxes` boxes, by line, and how the traffic fared."""

    boxes: int
    fixed_usd: Decimal
    variable_usd: Decimal
    overflow_usd: Decimal  # the overflow, bought per token
    overflow_share: Decimal  # of the tokens: 1 at k = 0, 0 once every hour fits
    utilization: Decimal | None  # the boxes' busy seconds / their seconds in the range; None at k = 0

    @property
    def total_usd(self) -> Decimal:
        return self.fixed_usd + self.variable_usd + self.overflow_usd


@dataclass(frozen=True, slots=True)
class Curve:
    """A class's cost against the box count, and the cheapest point."""

    points: tuple[PlanPoint, ...]

    @property
    def best(self) -> PlanPoint:
        """The cheapest point; the fewest boxes among equals."""
        return min(self.points, key=lambda p: (p.total_usd, p.boxes))


def cost_curve(profile: Sequence[HourLoad], box: Box, since: datetime, until: datetime) -> Curve:
    """The range's cost for k = 0 up to the fewest boxes that serve every hour of `profile`."""
    cap = box.capacity
    needs = sorted(
        (
            (Decimal(h.input_tokens) / cap.input_tps + Decimal(h.output_tokens) / cap.output_tps, h)
            for h in profile
            if h.tokens
        ),
        key=lambda pair: pair[0],  # by need alone: two hours of one need but other loads do not compare
    )
    per_box = HOUR * box.max_utilization
    tokens = sum((h.tokens for _, h in needs), 0)
    bought = sum((h.bought_usd for h in profile), ZERO)
    points = [PlanPoint(0, ZERO, ZERO, bought, ONE if tokens else ZERO, None)]
    if not needs or per_box <= 0:
        return Curve(tuple(points))
    keys = [need for need, _ in needs]
    # Running sums from the busiest hour down: what the hours a capacity cannot hold add up to.
    n = len(needs)
    tail_tokens_per_need = [ZERO] * (n + 1)
    tail_bought_per_need = [ZERO] * (n + 1)
    tail_bought = [ZERO] * (n + 1)
    head_tokens = [0] * (n + 1)
    head_need = [ZERO] * (n + 1)
    # Every k >= 1 splits at or above `lowest` (the hours one box holds whole), so the sums per
    # need (a division an hour) stop there; below it they are never read.
    lowest = bisect.bisect_right(keys, per_box)
    for i in range(n - 1, -1, -1):
        need, hour = needs[i]
        if i >= lowest:
            tail_tokens_per_need[i] = tail_tokens_per_need[i + 1] + hour.tokens / need
            tail_bought_per_need[i] = tail_bought_per_need[i + 1] + hour.bought_usd / need
        tail_bought[i] = tail_bought[i + 1] + hour.bought_usd
    for i, (need, hour) in enumerate(needs):
        head_tokens[i + 1] = head_tokens[i] + hour.tokens
        head_need[i + 1] = head_need[i] + need
    unbought = bought - tail_bought[0]  # hours without tokens cost what they cost, whatever k
    range_seconds = seconds_between(since, until)
    most = max(1, math.ceil(keys[-1] / per_box))
    for k in range(1, most + 1):
        room = per_box * k
        split = bisect.bisect_right(keys, room)  # hours [0, split) fit whole
        served_tokens = head_tokens[split] + room * tail_tokens_per_need[split]
        overflow = tail_bought[split] - room * tail_bought_per_need[split] + unbought
        busy = head_need[split] + room * (n - split)
        points.append(
            PlanPoint(
                boxes=k,
                fixed_usd=fixed_cost(box.cost, k, since, until).total,
                variable_usd=box.cost.variable_per_million * served_tokens / MILLION,
                overflow_usd=overflow,
                overflow_share=(tokens - served_tokens) / tokens,
                utilization=busy / (k * range_seconds) if range_seconds else None,
            )
        )
    return Curve(tuple(points))
