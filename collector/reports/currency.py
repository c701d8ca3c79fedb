"""Reports in any currency: USD amounts dated by UTC day, each converted at its own day's rate.

Each amount is converted at the rate in force on its own UTC day (a call's day; for idle
pool cost, each stretch between rate changes at its first day's rate) and the converted
amounts are summed. A day without a rate is a ReportError (the API answers 400).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.fx import USD, FxTable
from breakeven.collector.price.money import ZERO
from breakeven.collector.price.periods import MICROSECOND, iso_z
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.fields import number

FX_RULE = (
    "each amount is converted at the rate in force on its own UTC day (the latest [[pricing.fx]] rate dated on "
    "or before it), and converted amounts are summed"
)


class Converter:
    """USD amounts dated by UTC day into one currency; remembers which rates it used."""

    def __init__(self, fx: FxTable, currency: str | None, default: str = USD) -> None:
        code = (currency or default).strip().upper()
        if code != USD and code not in fx.currencies():
            known = ", ".join(fx.currencies())
            raise ReportError(f"currency: no [[pricing.fx]] rate converts USD to {code!r} (known: {known})")
        self.fx = fx
        self.currency = code
        self.used: dict[date, Decimal] = {}

    def breaks(self) -> list[datetime]:
        """Instants where this currency's rate changes (none for USD)."""
        return [datetime.combine(r.day, datetime.min.time(), UTC) for r in self.fx.rates if r.currency == self.currency]

    def at(self, amount: Decimal, day: date) -> Decimal:
        """The amount converted at the rate in force on `day`; ReportError when there is none."""
        if self.currency == USD:
            return amount
        converted = self.fx.convert(amount, self.currency, datetime.combine(day, datetime.min.time(), UTC))
        if converted is None or converted.rate_date is None:
            raise ReportError(f"currency: no {self.currency} rate on or before {day.isoformat()}")
        self.used[converted.rate_date] = converted.rate
        return converted.amount

    def total(self, by_day: Mapping[date, Decimal]) -> Decimal:
        """Each day's amount converted at its own rate, summed."""
        return sum((self.at(amount, day) for day, amount in by_day.items()), ZERO)

    def described(self, until: datetime) -> dict[str, Any] | None:
        """The response's fx object: None for USD, else the rates used (latest first) and the rule."""
        if self.currency == USD:
            return None
        if not self.used:  # nothing converted: name the rate that would have been
            rate = self.fx.rate_at(self.currency, until - MICROSECOND)
            if rate is not None:
                self.used[rate.day] = rate.per_usd
        rates = [{"rate": number(rate), "rate_date": day.isoformat()} for day, rate in sorted(self.used.items())]
        latest = rates[-1] if rates else {"rate": None, "rate_date": None}
        return {**latest, "rates": rates, "rule": FX_RULE}


def header(conv: Converter, pricing: PricingConfig, since: datetime, until: datetime) -> dict[str, Any]:
    return {
        "since": iso_z(since),
        "until": iso_z(until),
        "currency": conv.currency,
        "fx": conv.described(until),
        "allocation_period": pricing.allocation_period,
    }
