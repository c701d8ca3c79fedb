"""The local price book: entries that add to or override list prices, and provider discounts.

Both keep history: several entries for one (provider, model), or several discounts for one
provider, each in force from its effective_from date (00:00 UTC) until the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from breakeven.collector.price.entries import PriceEntry
from breakeven.collector.price.periods import utc_date


@dataclass(frozen=True, slots=True)
class Discount:
    """A negotiated discount on a provider's per-token bill, in percent, from a date.

    A later discount replaces an earlier one; percent 0 ends a discount.
    """

    provider: str
    percent: Decimal
    effective_from: date


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Price entries and discounts from the config, in the order they were written."""

    entries: tuple[PriceEntry, ...] = ()
    discounts: tuple[Discount, ...] = ()

    def entry_for(self, provider: str | None, model: str | None, at: datetime) -> PriceEntry | None:
        """The book's entry in force at `at` for this provider and model (exact names), or None."""
        if not provider or not model:
            return None
        model = model.lower()
        matching = (e for e in self.entries if e.provider == provider and e.model.lower() == model)
        return _latest_in_force(matching, at)

    def discount_for(self, provider: str | None, at: datetime) -> Discount | None:
        """The discount in force at `at` for a provider, or None."""
        if not provider:
            return None
        in_force = [d for d in self.discounts if d.provider == provider and d.effective_from <= utc_date(at)]
        return max(in_force, key=lambda d: d.effective_from, default=None)


def _latest_in_force(entries: Iterable[PriceEntry], at: datetime) -> PriceEntry | None:
    day = utc_date(at)
    in_force = [e for e in entries if e.effective_from is None or e.effective_from <= day]
    return max(in_force, key=lambda e: e.effective_from or date.min, default=None)
