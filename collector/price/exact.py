"""PricePlan.totals at the storage quantum in integer arithmetic: ingest's fast path.

Every rate, fee and discount is a finite Decimal, so a plan's amounts are whole numbers
of some quantum 10**-scale USD. Decimal arithmetic is exact while each intermediate result
fits the context's 28 significant digits; then the Decimal path (PricePlan.totals, then
money.stored) and this one compute the same exact value and round it the same way
(half even, to money.STORAGE_QUANTUM), so they give the same Decimal, digit for digit.
Where that cannot be shown cheaply (a negative token count or rate, a discount outside
0..100 %, a value near 28 digits, a narrower Decimal context) `stored_totals` answers
None and the caller takes the Decimal path. Money leaves here as Decimal, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, getcontext

from breakeven.collector.price.entries import Rate
from breakeven.collector.price.money import HUNDRED, STORAGE_SCALE
from breakeven.collector.price.pricer import PricePlan

DIGITS = 28  # the default Decimal context's precision: every step below it is exact
LIMIT = 10**DIGITS
TOKENS_PER_RATE = 6  # rates are USD per million tokens


@dataclass(frozen=True, slots=True)
class IntegerRate:
    """A Rate in whole quanta per token: the base, and (threshold, rate) tiers, highest first."""

    base: int
    tiers: tuple[tuple[int, int], ...] = ()

    def at(self, total_input: int) -> int:
        """The rate for a call with this total input, as Rate.at picks it."""
        for above, rate in self.tiers:
            if total_input > above:
                return rate
        return self.base


@dataclass(frozen=True, slots=True)
class IntegerPlan:
    """A PricePlan's rates, fee and discount in whole quanta of 10**-scale USD."""

    scale: int  # at least STORAGE_SCALE
    rates: tuple[IntegerRate, ...]  # one per TOKEN_KINDS, per token
    bases: tuple[int, ...]  # the rates' base rates, what every call pays when no rate is tiered
    tiered: bool
    per_request: int
    discount_unit: int  # 10 ** (the discount's decimals + 2): 100 % in its quanta; 1 when none
    discount_kept: int | None  # the share of the list cost kept, in discount_unit; None: no discount
    discounted_scale: int  # the quantum of the cost after discount: scale + the discount's decimals + 2

    def stored_totals(
        self, input: int, cache_read: int, cache_write: int, output: int, reasoning: int
    ) -> tuple[Decimal, Decimal] | None:
        """(cost, list cost) at the storage quantum, equal to stored() of PricePlan.totals; None: not shown exact."""
        reasoning = min(reasoning, output)
        visible = output - reasoning
        if input < 0 or cache_read < 0 or cache_write < 0 or visible < 0 or reasoning < 0:
            return None
        r_input, r_read, r_write, r_output, r_reasoning = (
            [rate.at(input + cache_read + cache_write) for rate in self.rates] if self.tiered else self.bases
        )
        list_quanta = (
            input * r_input
            + cache_read * r_read
            + cache_write * r_write
            + visible * r_output
            + reasoning * r_reasoning
            + self.per_request
        )
        if list_quanta * self.discount_unit >= LIMIT or getcontext().prec < DIGITS:
            return None
        list_cost = _decimal_at_storage(list_quanta, self.scale)
        if self.discount_kept is None:
            return list_cost, list_cost
        cost_quanta = list_quanta * self.discount_kept
        return _decimal_at_storage(cost_quanta, self.discounted_scale), list_cost


def integer_plan(plan: PricePlan) -> IntegerPlan | None:
    """The plan in integer quanta, or None when it has a negative or non-finite rate or fee,
    or a discount outside 0..100 %."""
    rates = [(rate.base, *(tier.rate for tier in rate.tiers)) for rate in plan.rates]
    per_request = plan.entry.per_request
    values = [value for kind in rates for value in kind] + ([per_request] if per_request is not None else [])
    if any(not value.is_finite() or value < 0 for value in values):
        return None
    percent = plan.percent
    if percent is not None and (not percent.is_finite() or not 0 <= percent <= HUNDRED):
        return None
    scale = max([STORAGE_SCALE] + [TOKENS_PER_RATE - _exponent(v) for kind in rates for v in kind])
    if per_request is not None:
        scale = max(scale, -_exponent(per_request))
    per_token = 10 ** (scale - TOKENS_PER_RATE)
    decimals, discount_kept = -2, None
    if percent is not None:
        decimals = max(0, -_exponent(percent))
        discount_kept = 10 ** (decimals + 2) - _whole(percent, 10**decimals)
    integer_rates = tuple(_integer_rate(rate, per_token) for rate in plan.rates)
    return IntegerPlan(
        scale=scale,
        rates=integer_rates,
        bases=tuple(rate.base for rate in integer_rates),
        tiered=any(rate.tiers for rate in plan.rates),
        per_request=0 if per_request is None else _whole(per_request, 10**scale),
        discount_unit=10 ** (decimals + 2),
        discount_kept=discount_kept,
        discounted_scale=scale + decimals + 2,
    )


def _integer_rate(rate: Rate, per_token: int) -> IntegerRate:
    """A rate per million tokens as whole quanta per token (per_token: quanta per USD per million)."""
    ordered = sorted(rate.tiers, key=lambda t: t.above, reverse=True)  # Rate.at's order, ties included
    return IntegerRate(
        base=_whole(rate.base, per_token),
        tiers=tuple((tier.above, _whole(tier.rate, per_token)) for tier in ordered),
    )


def _whole(value: Decimal, per_unit: int) -> int:
    """value x per_unit, known to be a whole number."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = int("".join(map(str, digits))) * (-1 if sign else 1)
    scaled: int = coefficient * 10**exponent * per_unit if exponent >= 0 else coefficient * per_unit // 10**-exponent
    return scaled


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent


def _decimal_at_storage(quanta: int, scale: int) -> Decimal:
    """quanta x 10**-scale (scale >= STORAGE_SCALE, quanta >= 0) rounded half even to the storage quantum."""
    if scale > STORAGE_SCALE:
        unit = 10 ** (scale - STORAGE_SCALE)
        quanta, rest = divmod(quanta, unit)
        if 2 * rest > unit or (2 * rest == unit and quanta & 1):
            quanta += 1
    return Decimal(quanta).scaleb(-STORAGE_SCALE)
