"""Money arithmetic: Decimal only, full precision inside, rounding only at presentation."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MILLION = Decimal(1_000_000)
ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

# Proposed storage column for amounts: NUMERIC(20, 10). Ten decimal places keep a single
# cached token at the cheapest listed rates exact (0.01 USD/MTok x 1 token = 1e-8 USD), and
# ten integer digits hold ten billion USD. Quantize with `stored` right before writing.
STORAGE_PRECISION = 20
STORAGE_SCALE = 10
STORAGE_QUANTUM = Decimal(1).scaleb(-STORAGE_SCALE)


def per_million(tokens: int | Decimal, rate_per_million: Decimal) -> Decimal:
    """tokens x rate / 1,000,000: the amount for tokens at a USD-per-million-tokens rate."""
    return Decimal(tokens) * rate_per_million / MILLION


def stored(amount: Decimal) -> Decimal:
    """The amount at the storage quantum (NUMERIC(20,10)), banker's rounding."""
    return amount.quantize(STORAGE_QUANTUM, rounding=ROUND_HALF_EVEN)


def presented(amount: Decimal, places: int = 2) -> Decimal:
    """The amount rounded for display (2 places unless told), banker's rounding."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
