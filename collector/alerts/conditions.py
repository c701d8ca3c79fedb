"""What a rule says holds, and how its figures read (pure).

A Condition is one alert instance a rule kind found holding now: its labels and the words and
figures it tells people. The text helpers write amounts and ratios the same way in every kind
(for people in summaries, for machines in annotations). rules.py's kinds and drift.py's
ledger_drift build on it; rules.py's state machine turns Conditions into alert states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Condition:
    """An alert instance that holds now: its own labels and what to tell people."""

    labels: Labels
    summary: str
    details: Labels = ()  # figures, as annotations


def usd(amount: Decimal) -> str:
    """An amount for people: 1234.5 -> '1,234.50 USD'."""
    return f"{amount:,.2f} USD"


def money(amount: Decimal) -> str:
    """An amount for machines (annotations): six decimal places, no grouping."""
    return f"{amount:.6f}"


def percent(value: Decimal) -> str:
    """A ratio for people: 0.1234 -> '12.3%'."""
    return f"{value * 100:.1f}%"


def ratio(value: Decimal) -> str:
    """A ratio for machines."""
    return f"{value:.6f}"


def duration_text(delta: timedelta) -> str:
    """A duration as config spells it: 90 minutes -> '1h30m'."""
    total = delta.total_seconds()
    if total < 1:
        return f"{round(total * 1000)}ms"
    parts = []
    seconds = round(total)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
