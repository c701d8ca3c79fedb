"""How the reports show figures in JSON: money and other decimals as strings, tokens as integers.

Money and every other decimal (ratios, seconds, projected tokens) is a JSON string exact to
10 decimal places, never a float: a float cannot carry a ledger's cents exactly.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.store.rows import decimal_text


def money(amount: Decimal | None) -> str | None:
    """Money as JSON shows it: a decimal string, at least two places."""
    return decimal_text(amount, 2)


def number(value: Decimal | None) -> str | None:
    """A ratio, seconds or fractional tokens as JSON shows it: a decimal string."""
    return decimal_text(value, 0)


def tokens(usage: TokenUsage) -> dict[str, int]:
    """Tokens by kind, and their total."""
    return {
        "input": usage.input, "cache_read": usage.cache_read, "cache_write": usage.cache_write,
        "output": usage.output, "reasoning": usage.reasoning, "total": usage.total,
    }  # fmt: skip


def key_json(name: str, value: Any) -> Any:
    if name == "month" and value is not None:
        return value.strftime("%Y-%m")
    if isinstance(value, date):
        return value.isoformat()
    return value
