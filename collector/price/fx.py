"""Reporting currency: USD internally, converted with dated exchange rates from the config.

A figure dated `at` is converted with the most recent rate dated on or before `at`'s UTC
day; the conversion says which rate and which date it used. Before a currency's first
rate there is no rate, and convert says so (None) rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from breakeven.collector.price.money import ONE
from breakeven.collector.price.periods import utc_date

USD = "USD"


@dataclass(frozen=True, slots=True)
class FxRate:
    """Units of `currency` one US dollar buys, from `day` (00:00 UTC)."""

    currency: str
    day: date
    per_usd: Decimal


@dataclass(frozen=True, slots=True)
class Converted:
    """An amount in a currency, and the rate (per USD) and its date that produced it."""

    amount: Decimal
    currency: str
    rate: Decimal
    rate_date: date | None  # None for USD itself


@dataclass(frozen=True, slots=True)
class FxTable:
    """Dated exchange rates, USD to other currencies."""

    rates: tuple[FxRate, ...] = ()

    def currencies(self) -> tuple[str, ...]:
        """Every currency the table can convert to, USD first."""
        return (USD, *sorted({r.currency for r in self.rates}))

    def rate_at(self, currency: str, at: datetime) -> FxRate | None:
        """The rate in force for `currency` at `at`, or None before its first rate."""
        day = utc_date(at)
        in_force = [r for r in self.rates if r.currency == currency.upper() and r.day <= day]
        return max(in_force, key=lambda r: r.day, default=None)

    def convert(self, amount_usd: Decimal, currency: str, at: datetime) -> Converted | None:
        """amount_usd x rate in force at `at`, unrounded; None when no rate is in force."""
        currency = currency.upper()
        if currency == USD:
            return Converted(amount_usd, USD, ONE, None)
        rate = self.rate_at(currency, at)
        if rate is None:
            return None
        return Converted(amount_usd * rate.per_usd, currency, rate.per_usd, rate.day)
