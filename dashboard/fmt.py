"""How figures read on a page: money with its currency, compact axis labels, percentages, tokens.

The page contexts (and so the JSON twins) carry money as decimal strings, exact; these
functions only decide how a human reads them. Nothing here rounds what is stored.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "JPY": "¥", "INR": "₹", "CHF": "CHF ", "CAD": "C$", "AUD": "A$"}


def dec(value: Any) -> Decimal | None:
    """A Decimal from a decimal string, int or Decimal; None for None or anything unparsable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def symbol(currency: str) -> str:
    """The sign a currency is written with, or its code and a space."""
    return SYMBOLS.get(currency, f"{currency} ")


def money(value: Any, currency: str, places: int = 2) -> str:
    """£1,234.56; -£3.10; an em dash when there is no amount (unpriced is never zero)."""
    amount = dec(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{symbol(currency)}{abs(rounded):,.{places}f}"


def compact(value: Any, currency: str | None = None) -> str:
    """A short label for charts: £1.2k, 3.4M, 950, £0.42."""
    amount = dec(value)
    if amount is None:
        return "—"
    sign = "-" if amount < 0 else ""
    prefix = symbol(currency) if currency else ""
    size = abs(amount)
    for limit, suffix in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if size >= limit:
            scaled = size / limit
            text = f"{scaled:.1f}" if scaled < 100 else f"{scaled:.0f}"
            return f"{sign}{prefix}{text.removesuffix('.0')}{suffix}"
    if currency:
        text = f"{size:.2f}" if size < 100 else f"{size:.0f}"
    else:
        text = f"{size:.1f}".removesuffix(".0") if size < 10 else f"{size:.0f}"
    return f"{sign}{prefix}{text}"


def percent(value: Any, places: int = 1) -> str:
    """A ratio as a percentage: 0.0534 -> 5.3%."""
    ratio = dec(value)
    if ratio is None:
        return "—"
    return f"{ratio * 100:.{places}f}%"


def points(value: Any, places: int = 1) -> str:
    """A figure already in percent (the reports' `*_percent`): 56.73 -> 56.7%."""
    amount = dec(value)
    if amount is None:
        return "—"
    return f"{amount:.{places}f}%"


def count(value: Any) -> str:
    """An integer with thousands separators."""
    number = dec(value)
    return "—" if number is None else f"{int(number):,}"


def tokens(value: Any) -> str:
    """Tokens, compact for big numbers: 1.2M tokens stays readable in a table."""
    number = dec(value)
    if number is None:
        return "—"
    return compact(number) if abs(number) >= 100_000 else f"{int(number):,}"
