"""The plans report: per traffic class, how many boxes of which candidate to run, the rest bought.

GET /api/v1/plans's body (and the Plans page's). For the range's whole hours (whole UTC hours
from `since` to `until`), read each class's arrival profile from the ledger (tokens in and out,
and what they cost, per hour: store/spend.py `hourly`) and cost every box count of every
candidate that may take it (price/substitutes.py) with collector/price/plans.py:

- a class bought per token (service x provider x model): the hours' stored per-token cost is
  what its overflow pays; the share a substitute declares may move, the rest stays bought;
  calls left unpriced are left out, and counted;
- a configured pool's own traffic: its overflow is bought from its alternative, each hour
  priced as the hour's average call times its calls (context tiers then apply as to that
  call), and today's cost is the pool's fixed cost plus its variable cost.

What-if parameters recompute the same answers, nothing stored: growth (every hour's tokens
and cost x growth), max_utilization (every box planned to that load), discounts (a provider's
bought price less a percent), prices (a candidate's rent), deferrable services (bought at the
Batch APIs' half price) and a quantization (only candidates running it). Amounts are USD
inside, converted at the rate in force on the range's last day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.breakeven import Candidate, pool_candidates
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import HUNDRED, MILLION, ONE, ZERO
from breakeven.collector.price.periods import MICROSECOND
from breakeven.collector.price.plans import Box, Curve, HourLoad, PlanPoint, cost_curve
from breakeven.collector.price.pools import Pool, fixed_cost
from breakeven.collector.price.pricer import Pricer, Unpriced
from breakeven.collector.price.substitutes import Move, move
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import POOL, PRICED
from breakeven.collector.reports.currency import Converter, header
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.fields import money, number
from breakeven.collector.store.spend import HourRow, hourly

BATCH_PRICE = Decimal("0.5")  # the providers' batch APIs: half the price, answers within a day


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The plan's assumptions, changed: each default leaves today's figures as they are."""

    growth: Decimal = ONE
    max_utilization: Decimal | None = None
    discounts: Mapping[str, Decimal] = field(default_factory=dict)  # provider -> percent off the bought price
    prices: Mapping[str, Decimal] = field(default_factory=dict)  # candidate -> rent (its own unit: month or hour)
    deferrable: frozenset[str] = frozenset()  # services whose bought traffic goes to a batch API
    quantization: str | None = None  # only candidates running this quantization

    def as_json(self) -> dict[str, Any]:
        return {
            "growth": number(self.growth),
            "max_utilization": number(self.max_utilization),
            "discounts": {k: number(v) for k, v in sorted(self.discounts.items())},
            "prices": {k: money(v) for k, v in sorted(self.prices.items())},
            "deferrable": sorted(self.deferrable),
            "quantization": self.quantization,
        }


def what_if(
    growth: str | None = None,
    max_utilization: str | None = None,
    discount: str | None = None,
    price: str | None = None,
    deferrable: str | None = None,
    quantization: str | None = None,
) -> WhatIf:
    """WhatIf from query parameters: `discount=anthropic:10,openai:5`, `price=h100-fp8:1200`,
    `deferrable=doc-pipeline,batch`; ReportError naming a bad one."""
    return WhatIf(
        growth=_decimal("growth", growth, ONE, positive=True),
        max_utilization=None if max_utilization is None else _share("max_utilization", max_utilization),
        discounts={k: _percent(f"discount {k}", v) for k, v in _pairs("discount", discount)},
        prices={k: _decimal(f"price {k}", v, ZERO) for k, v in _pairs("price", price)},
        deferrable=frozenset(s.strip() for s in (deferrable or "").split(",") if s.strip()),
        quantization=quantization.strip().lower() if quantization and quantization.strip() else None,
    )


@dataclass(frozen=True, slots=True)
class ClassPlan:
    """One class's plan with one candidate: its curve, what stays bought, and today's cost (USD)."""

    kind: str  # "bought" or "pool"
    service: str | None
    provider: str | None
    model: str | None
    candidate: str
    move: Move
    curve: Curve
    stays_bought_usd: Decimal  # the share no substitute lets move
    today_usd: Decimal
    current_boxes: int | None = None  # a pool's boxes today

    def total(self, point: PlanPoint) -> Decimal:
        return point.total_usd + self.stays_bought_usd

    @property
    def savings_usd(self) -> Decimal:
        return self.today_usd - self.total(self.curve.best)


@dataclass(frozen=True, slots=True)
class ClassOutcome:
    """A class and its best plan, or why it has none."""

    kind: str
    service: str | None
    provider: str | None
    model: str | None
    tokens: int
    unpriced_calls: int
    plan: ClassPlan | None
    reason: str | None = None


def plan_classes(
    rows: Iterable[HourRow], pricing: PricingConfig, since: datetime, until: datetime, assume: WhatIf
) -> list[ClassOutcome]:
    """Every class's best plan (largest savings first; classes without one last)."""
    bought: dict[tuple[str | None, str | None, str | None], list[HourRow]] = {}
    pooled: dict[str, list[HourRow]] = {}
    unpriced: dict[tuple[str | None, str | None, str | None], int] = {}
    for row in rows:
        key = (row.service, row.provider, row.model)
        if row.price_status == PRICED and row.cost_usd is not None:
            bought.setdefault(key, []).append(row)
        elif row.price_status == POOL and row.pool is not None:
            pooled.setdefault(row.pool, []).append(row)
        elif row.price_status != POOL:
            unpriced[key] = unpriced.get(key, 0) + row.calls
            bought.setdefault(key, [])
    candidates = _candidates(pricing, assume)
    out = [
        _bought_outcome(key, hours, unpriced.get(key, 0), candidates, pricing, since, until, assume)
        for key, hours in bought.items()
    ]
    pools = {p.name: p for p in pricing.pools}
    out += [
        _pool_outcome(pools[name], hours, pricing.pricer(), since, until, assume)
        for name, hours in pooled.items()
        if name in pools
    ]
    out.sort(key=lambda o: (o.plan is None, -(o.plan.savings_usd if o.plan else ZERO), o.service or "", o.model or ""))
    return out


def _candidates(pricing: PricingConfig, assume: WhatIf) -> list[Candidate]:
    boxes = [*pricing.candidates, *pool_candidates(pricing.pools)]
    out = []
    for c in boxes:
        if assume.quantization and (c.quantization or "").lower() != assume.quantization:
            continue
        if c.name in assume.prices:
            rent = assume.prices[c.name]
            cost = (
                replace(c.cost, rent_per_hour=rent)
                if c.cost.rent_per_hour is not None
                else replace(c.cost, rent_per_month=rent, purchase_price=None, amortization_months=None)
            )
            c = replace(c, cost=cost)
        if assume.max_utilization is not None:
            c = replace(c, max_utilization=assume.max_utilization)
        out.append(c)
    return out


def _bought_outcome(
    key: tuple[str | None, str | None, str | None],
    hours: Sequence[HourRow],
    unpriced_calls: int,
    candidates: Sequence[Candidate],
    pricing: PricingConfig,
    since: datetime,
    until: datetime,
    assume: WhatIf,
) -> ClassOutcome:
    service, provider, model = key
    factor = assume.growth * (ONE - assume.discounts.get(provider or "", ZERO) / HUNDRED)
    if service in assume.deferrable:
        factor *= BATCH_PRICE
    loads = [_load(h.usage, (h.cost_usd or ZERO) * factor, assume.growth) for h in hours]
    today = sum((h.bought_usd for h in loads), ZERO)
    tokens = sum(h.usage.total for h in hours)
    best: ClassPlan | None = None
    for c in candidates:
        found = move(provider or "", model or "", service, c.model, c.quantization, c.models, pricing.substitutes)
        if found is None:
            continue
        moving = [_scaled(h, found.share) for h in loads]
        curve = cost_curve(moving, Box(c.cost, c.capacity, c.max_utilization), since, until)
        plan = ClassPlan("bought", service, provider, model, c.name, found, curve, today * (ONE - found.share), today)
        if best is None or _better(plan, best):
            best = plan
    reason = None if best else f"no candidate box runs {model} or a substitute declared for it"
    if not hours:
        reason = "none of its calls could be priced"
    return ClassOutcome("bought", service, provider, model, tokens, unpriced_calls, best if hours else None, reason)


def _better(plan: ClassPlan, than: ClassPlan) -> bool:
    """More savings; among equals (no box count beats buying), the box whose cheapest count
    comes nearest, so a "keep buying" names the box that would win first as traffic grows."""
    if plan.savings_usd != than.savings_usd:
        return plan.savings_usd > than.savings_usd

    def nearest(p: ClassPlan) -> Decimal | None:
        return min((p.total(x) for x in p.curve.points[1:]), default=None)

    mine, theirs = nearest(plan), nearest(than)
    return mine is not None and (theirs is None or mine < theirs)


def _pool_outcome(
    pool: Pool, hours: Sequence[HourRow], pricer: Pricer, since: datetime, until: datetime, assume: WhatIf
) -> ClassOutcome:
    """A pool's own traffic: its box count against buying the overflow from its alternative."""
    loads = []
    tokens = 0
    for h in hours:
        tokens += h.usage.total
        average = TokenUsage(*(round(Decimal(n) / h.calls) for n in _kinds(h.usage)))
        priced = pricer.price(pool.alternative.provider, pool.alternative.model, h.hour, average)
        if isinstance(priced, Unpriced):
            return ClassOutcome(
                "pool", None, pool.alternative.provider, pool.name, tokens, 0, None,
                f"its alternative ({pool.alternative.provider} {pool.alternative.model}) cannot price its traffic:"
                f" {priced.detail}",
            )  # fmt: skip
        loads.append(_load(h.usage, priced.cost_usd * h.calls * assume.growth, assume.growth))
    box = Box(pool.cost, pool.capacity, assume.max_utilization or ONE)
    curve = cost_curve(loads, box, since, until)
    served = sum((h.tokens for h in loads), 0)
    today = fixed_cost(pool.cost, pool.boxes, since, until).total + pool.cost.variable_per_million * served / MILLION
    if (assume.growth != ONE or assume.max_utilization is not None) and pool.boxes < len(curve.points):
        # Under a what-if, today's boxes may no longer hold every hour: what they cost is then
        # the curve at today's box count, the hours they cannot hold bought.
        today = curve.points[pool.boxes].total_usd
    found = Move(pool.match.model or pool.alternative.model, pool.match.quantization, ONE, "the pool's own traffic")
    plan = ClassPlan("pool", None, pool.alternative.provider, pool.name, f"pool {pool.name}", found, curve, ZERO,
                     today, pool.boxes)  # fmt: skip
    return ClassOutcome("pool", None, pool.alternative.provider, pool.name, tokens, 0, plan)


def whole_hours(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The whole UTC hours covering [since, until): a plan reads hours."""
    start = since.replace(minute=0, second=0, microsecond=0)
    floor = until.replace(minute=0, second=0, microsecond=0)
    return start, until if until == floor else floor + timedelta(hours=1)


def plans_report(
    conn: sa.Connection, pricing: PricingConfig, conv: Converter, since: datetime, until: datetime, assume: WhatIf
) -> dict[str, Any]:
    """GET /api/v1/plans's body."""
    start, end = whole_hours(since, until)
    outcomes = plan_classes(hourly(conn, start, end), pricing, start, end, assume)
    day = (end - MICROSECOND).date()

    def cash(amount: Decimal | None) -> str | None:
        return None if amount is None else money(conv.at(amount, day))

    def words(amount: Decimal) -> str:  # a sentence's figure: to the cent, with its currency
        return f"{conv.at(amount, day).quantize(Decimal('0.01')):,.2f} {conv.currency}"

    classes = [_outcome_json(o, cash, words) for o in outcomes]
    return {**header(conv, pricing, start, end), "what_if": assume.as_json(), "classes": classes}


def _outcome_json(o: ClassOutcome, cash: Any, words: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": o.kind,
        "service": o.service,
        "provider": o.provider,
        "model": o.model,
        "tokens": o.tokens,
        "unpriced_calls": o.unpriced_calls,
        "reason": o.reason,
        "plan": None,
    }
    p = o.plan
    if p is None:
        return body
    best = p.curve.best
    body["plan"] = {
        "candidate": p.candidate,
        "runs": {"model": p.move.model, "quantization": p.move.quantization},
        "share": number(p.move.share),
        "evidence": p.move.evidence,
        "boxes": best.boxes,
        "current_boxes": p.current_boxes,
        "today": cash(p.today_usd),
        "cost": cash(p.total(best)),
        "savings": cash(p.savings_usd),
        "overflow_share": number(best.overflow_share),
        "utilization": number(best.utilization),
        "stays_bought": cash(p.stays_bought_usd),
        "sentence": _sentence(o, p, words),
        "curve": [
            {
                "boxes": point.boxes,
                "fixed": cash(point.fixed_usd),
                "variable": cash(point.variable_usd),
                "overflow": cash(point.overflow_usd),
                "total": cash(p.total(point)),
                "overflow_share": number(point.overflow_share),
                "utilization": number(point.utilization),
            }
            for point in p.curve.points
        ],
    }
    return body


def _sentence(o: ClassOutcome, p: ClassPlan, words: Any) -> str:
    """The plan in one sentence, as finance reads it."""
    best = p.curve.best
    runs = p.move.model + (f" ({p.move.quantization})" if p.move.quantization else "")
    box = p.candidate.removeprefix("pool ")
    share = "" if p.move.share == ONE else f"the {_pct(p.move.share)} of "
    if o.kind == "pool":
        who = f"Pool {o.model} ({p.current_boxes} box{'es' if p.current_boxes != 1 else ''} today)"
        if best.boxes == 0:
            return (
                f"{who}: buying all its traffic from {o.provider} would cost {words(p.total(best))} over the range"
                f" against {words(p.today_usd)} today."
            )
        burst = f", bursting {_pct(best.overflow_share)} of its tokens to {o.provider}" if best.overflow_share else ""
        return (
            f"{who}: {best.boxes} box{'es' if best.boxes != 1 else ''}{burst} would cost {words(p.total(best))}"
            f" over the range against {words(p.today_usd)} today."
        )
    who = f"{share}{o.service or '(no service)'}'s {o.model} traffic ({o.provider})"
    if best.boxes == 0:
        cheapest = min(p.curve.points[1:], key=lambda x: p.total(x), default=None)
        beyond = f"; the cheapest, {cheapest.boxes} x {box}, costs {words(p.total(cheapest))}" if cheapest else ""
        return f"Keep buying {who}: no number of {box} boxes beats today's {words(p.today_usd)}{beyond}."
    burst = ""
    if best.overflow_share:
        burst = f", sending {_pct(best.overflow_share)} of its tokens to {o.provider} at peaks"
    return (
        f"Run {best.boxes} x {box} serving {runs} for {who} ({p.move.evidence}){burst}:"
        f" {words(p.total(best))} over the range instead of {words(p.today_usd)} (save {words(p.savings_usd)})."
    )


def _load(usage: TokenUsage, bought: Decimal, growth: Decimal) -> HourLoad:
    if growth == ONE:
        return HourLoad(usage.total_input, usage.output, bought)
    return HourLoad(int(usage.total_input * growth), int(usage.output * growth), bought)


def _scaled(hour: HourLoad, share: Decimal) -> HourLoad:
    if share == ONE:
        return hour
    return HourLoad(int(hour.input_tokens * share), int(hour.output_tokens * share), hour.bought_usd * share)


def _kinds(usage: TokenUsage) -> tuple[int, ...]:
    return (usage.input, usage.cache_read, usage.cache_write, usage.output, usage.reasoning)


def _pct(share: Decimal) -> str:
    value = (share * HUNDRED).quantize(Decimal("0.1"))
    return f"{value.normalize():f}%"


def _decimal(name: str, raw: str | None, default: Decimal, positive: bool = False) -> Decimal:
    if raw is None or not raw.strip():
        return default
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ReportError(f"{name}: not a number: {raw!r}") from None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise ReportError(f"{name}: expected a {'positive' if positive else 'non-negative'} number, got {raw!r}")
    return value


def _share(name: str, raw: str) -> Decimal:
    value = _decimal(name, raw, ONE, positive=True)
    if value > ONE:
        raise ReportError(f"{name}: a share of capacity above 0 and at most 1, got {raw!r}")
    return value


def _percent(name: str, raw: str) -> Decimal:
    value = _decimal(name, raw, ZERO)
    if value > HUNDRED:
        raise ReportError(f"{name}: a percentage from 0 to 100, got {raw!r}")
    return value


def _pairs(name: str, raw: str | None) -> list[tuple[str, str]]:
    out = []
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.rpartition(":")
        if not sep or not key.strip():
            raise ReportError(f"{name}: expected name:value pairs separated by commas, got {part.strip()!r}")
        out.append((key.strip(), value.strip()))
    return out
