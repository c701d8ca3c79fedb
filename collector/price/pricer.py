"""Price one call: Priced (cost, breakdown, entry, source, discount) or Unpriced (reason).

DOMAIN.md, Pricing per-token backends:

    price = sum over token kinds of tokens x rate for that kind

with the entry in force at the call's start time. The kinds are uncached input, cache
reads, cache writes, visible output and reasoning (reasoning is inside output_tokens, so
output is billed as output - reasoning, and reasoning at its own rate or, where the entry
has none, at the output rate: nothing is counted twice). Context tiers pick every kind's
rate from the call's total input. A provider discount in force then takes its percentage
off the total, unless the entry is a net price.

Where an entry comes from: the price book first (it overrides list prices from its
effective date), then genai-prices. A call with no entry is Unpriced, never zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from breakeven.collector.price.book import PriceBook
from breakeven.collector.price.catalog import library_entry
from breakeven.collector.price.entries import TOKEN_KINDS, PriceEntry, Rate
from breakeven.collector.price.money import HUNDRED, ZERO, per_million
from breakeven.collector.price.periods import from_ns, utc
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import Call

# (provider, model, at) -> the list price in force, or None. Tests pass a fake; the default
# reads genai-prices.
Catalog = Callable[[str | None, str | None, datetime], PriceEntry | None]

# Stable reasons an Unpriced carries (counted and shown; alerts may group on them).
NO_PROVIDER = "no_provider"
NO_MODEL = "no_model"
NO_USAGE = "no_usage"
NO_PRICE = "no_price"


@dataclass(frozen=True, slots=True)
class LineItem:
    """One token kind of a priced call: tokens x rate = amount (USD, full precision).

    rate is USD per million tokens; for kind "request" (a per-request fee) it is USD per
    request and tokens is 1. tier is the context-tier threshold the rate came from, if any.
    """

    kind: str
    tokens: int
    rate: Decimal
    amount: Decimal
    tier: int | None = None


@dataclass(frozen=True, slots=True)
class Priced:
    """A call's cost in USD, with everything finance needs to audit it."""

    cost_usd: Decimal  # list_cost_usd - discount_usd, unrounded
    list_cost_usd: Decimal
    discount_usd: Decimal
    discount_percent: Decimal | None
    lines: tuple[LineItem, ...]
    entry_id: str
    effective_from: date | None
    source: str  # "genai-prices 0.2.3" or "price book <path>"
    provider: str
    model: str  # the model name that was priced
    priced: Literal[True] = field(default=True, init=False)


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A call that could not be priced, and why; never a zero cost."""

    reason: str  # NO_PROVIDER, NO_MODEL, NO_USAGE or NO_PRICE
    detail: str
    priced: Literal[False] = field(default=False, init=False)


PriceResult = Priced | Unpriced


class Pricer:
    """Prices per-token calls from the price book, then the list-price catalog."""

    def __init__(self, book: PriceBook | None = None, catalog: Catalog | None = library_entry) -> None:
        self.book = book or PriceBook()
        self.catalog = catalog

    def entry(self, provider: str | None, models: tuple[str, ...], at: datetime) -> tuple[PriceEntry, str] | None:
        """The entry in force and the model name it priced, or None.

        The book is asked for each name in turn (the response model, then the request
        model: a book entry is a user's explicit declaration, so a deployment alias may
        name it). The catalog is asked for the first name only, the model that answered:
        a snapshot the catalog does not know is not priced as the alias that was requested.
        """
        for model in models:
            if (entry := self.book.entry_for(provider, model, at)) is not None:
                return entry, model
        if self.catalog is None or not models:
            return None
        entry = self.catalog(provider, models[0], at)
        return None if entry is None else (entry, models[0])

    def plan(self, provider: str | None, models: tuple[str, ...], at: datetime) -> PricePlan | Unpriced:
        """What pricing a usage of these models at `at` needs but the usage: the entry, its rates, the discount."""
        if not provider:
            return Unpriced(NO_PROVIDER, "the call names no provider")
        if not models:
            return Unpriced(NO_MODEL, "the call names no model")
        found = self.entry(provider, models, at)
        if found is None:
            return Unpriced(NO_PRICE, f"no price for {provider}/{models[0]} on {at.date().isoformat()}")
        entry, priced_model = found
        discount = None if entry.net else self.book.discount_for(provider, at)
        percent = discount.percent if discount is not None and discount.percent else None
        rates = tuple(entry.rate_for(kind) for kind in TOKEN_KINDS)
        return PricePlan(entry, priced_model, provider, rates, percent)

    def price(
        self, provider: str | None, model: str | tuple[str | None, ...] | None, at: datetime, usage: TokenUsage
    ) -> PriceResult:
        """Price usage of a model (or response-then-request model names) at a provider at `at`."""
        plan = self.plan(provider, names(model), utc(at))
        return plan if isinstance(plan, Unpriced) else plan.priced(usage)

    def price_call(self, call: Call) -> PriceResult:
        """Price a stored call by its response model (else request model) at its start time."""
        if not call.usage_reported:
            return Unpriced(NO_USAGE, "no span of the call reported usage")
        models = names((call.response_model, call.request_model))
        return self.price(call.provider, models, from_ns(call.start_ns), TokenUsage.of_call(call))


@dataclass(frozen=True, slots=True)
class PricePlan:
    """An entry's rates (after fallbacks, one per TOKEN_KINDS) and the discount in force.

    One plan prices every call of its (provider, models, UTC day): `priced` with the
    breakdown, `totals` with the two sums only (what ingest stores), by the same arithmetic.
    """

    entry: PriceEntry
    model: str
    provider: str
    rates: tuple[Rate, ...]
    percent: Decimal | None  # the provider discount, None when none applies (or a net entry)

    def amounts(self, usage: TokenUsage) -> list[tuple[str, int, Decimal, int | None, Decimal]]:
        """(kind, tokens, rate, tier, amount) per token kind, at its rate (its context tier's, if
        any), then a per-request fee: the one arithmetic behind `lines` and `totals`."""
        total_input = usage.total_input
        reasoning = min(usage.reasoning, usage.output)  # inside output: billed once, at its own rate
        tokens = (usage.input, usage.cache_read, usage.cache_write, usage.output - reasoning, reasoning)
        out = []
        for kind, count, rate in zip(TOKEN_KINDS, tokens, self.rates, strict=True):
            value, tier = rate.at(total_input) if rate.tiers else (rate.base, None)
            out.append((kind, count, value, tier, per_million(count, value)))
        if self.entry.per_request is not None:
            out.append(("request", 1, self.entry.per_request, None, self.entry.per_request))
        return out

    def lines(self, usage: TokenUsage) -> list[LineItem]:
        """The breakdown, one LineItem per amount."""
        return [LineItem(kind, count, rate, amount, tier) for kind, count, rate, tier, amount in self.amounts(usage)]

    def totals(self, usage: TokenUsage) -> tuple[Decimal, Decimal]:
        """(cost after discount, list cost) in USD, unrounded: the sums `priced` reports."""
        cost, list_cost, _ = self._sums([amount[4] for amount in self.amounts(usage)])
        return cost, list_cost

    def priced(self, usage: TokenUsage) -> Priced:
        """The usage priced, with its breakdown."""
        lines = self.lines(usage)
        cost, list_cost, discount_usd = self._sums([line.amount for line in lines])
        return Priced(
            cost_usd=cost,
            list_cost_usd=list_cost,
            discount_usd=discount_usd,
            discount_percent=self.percent,
            lines=tuple(lines),
            entry_id=self.entry.entry_id,
            effective_from=self.entry.effective_from,
            source=self.entry.source,
            provider=self.provider,
            model=self.model,
        )

    def _sums(self, amounts: list[Decimal]) -> tuple[Decimal, Decimal, Decimal]:
        list_cost = sum(amounts, ZERO)
        discount_usd = list_cost * self.percent / HUNDRED if self.percent is not None else ZERO
        return list_cost - discount_usd, list_cost, discount_usd


def names(model: str | tuple[str | None, ...] | None) -> tuple[str, ...]:
    raw = (model,) if isinstance(model, str) or model is None else model
    names: list[str] = []
    for name in raw:
        if name and name.strip() and name.strip() not in names:
            names.append(name.strip())
    return tuple(names)


class DayCachedPricer(Pricer):
    """A Pricer that looks each (provider, models, UTC day) up once: entries start on UTC days.

    Bounded: past max_entries the memo starts over (a day's distinct models are few).
    """

    def __init__(self, pricer: Pricer, max_entries: int = 4096) -> None:
        super().__init__(pricer.book, pricer.catalog)
        self._found: dict[tuple[str | None, tuple[str, ...], date], tuple[PriceEntry, str] | None] = {}
        self._max = max_entries

    def entry(self, provider: str | None, models: tuple[str, ...], at: datetime) -> tuple[PriceEntry, str] | None:
        key = (provider, models, utc(at).date())
        if key in self._found:
            return self._found[key]
        if len(self._found) >= self._max:
            self._found.clear()
        found = self._found[key] = super().entry(provider, models, at)
        return found
