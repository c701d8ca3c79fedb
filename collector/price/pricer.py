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

from collector.price.book import PriceBook
from collector.price.catalog import library_entry
from collector.price.entries import TOKEN_KINDS, PriceEntry, tokens_of_kind
from collector.price.money import HUNDRED, ZERO, per_million
from collector.price.periods import from_ns, utc
from collector.price.usage import TokenUsage
from collector.records import Call

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

    def price(
        self, provider: str | None, model: str | tuple[str | None, ...] | None, at: datetime, usage: TokenUsage
    ) -> PriceResult:
        """Price usage of a model (or response-then-request model names) at a provider at `at`."""
        models = _names(model)
        if not provider:
            return Unpriced(NO_PROVIDER, "the call names no provider")
        if not models:
            return Unpriced(NO_MODEL, "the call names no model")
        at = utc(at)
        found = self.entry(provider, models, at)
        if found is None:
            return Unpriced(NO_PRICE, f"no price for {provider}/{models[0]} on {at.date().isoformat()}")
        entry, priced_model = found
        return self._apply(entry, priced_model, provider, at, usage)

    def price_call(self, call: Call) -> PriceResult:
        """Price a stored call by its response model (else request model) at its start time."""
        if not call.usage_reported:
            return Unpriced(NO_USAGE, "no span of the call reported usage")
        models = _names((call.response_model, call.request_model))
        return self.price(call.provider, models, from_ns(call.start_ns), TokenUsage.of_call(call))

    def _apply(self, entry: PriceEntry, model: str, provider: str, at: datetime, usage: TokenUsage) -> Priced:
        lines = []
        for kind in TOKEN_KINDS:
            tokens = tokens_of_kind(usage, kind)
            rate, tier = entry.rate_for(kind).at(usage.total_input)
            lines.append(LineItem(kind, tokens, rate, per_million(tokens, rate), tier))
        if entry.per_request is not None:
            lines.append(LineItem("request", 1, entry.per_request, entry.per_request))
        list_cost = sum((line.amount for line in lines), ZERO)
        discount = None if entry.net else self.book.discount_for(provider, at)
        percent = discount.percent if discount is not None and discount.percent else None
        discount_usd = list_cost * percent / HUNDRED if percent is not None else ZERO
        return Priced(
            cost_usd=list_cost - discount_usd,
            list_cost_usd=list_cost,
            discount_usd=discount_usd,
            discount_percent=percent,
            lines=tuple(lines),
            entry_id=entry.entry_id,
            effective_from=entry.effective_from,
            source=entry.source,
            provider=provider,
            model=model,
        )


def _names(model: str | tuple[str | None, ...] | None) -> tuple[str, ...]:
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
