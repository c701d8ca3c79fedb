"""Price entries: per-token-kind rates, optionally tiered, in force from a date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

# Token kinds priced separately, in breakdown order. Each is a field of TokenUsage except
# "output", which prices visible output only (reasoning has its own line).
TOKEN_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")


@dataclass(frozen=True, slots=True)
class Tier:
    """Above `above` total input tokens, `rate` applies (USD per million tokens)."""

    above: int
    rate: Decimal


@dataclass(frozen=True, slots=True)
class Rate:
    """A USD-per-million-tokens rate, with optional context tiers.

    Tiers are cliffs, as providers bill them: when a call's total input (uncached + cache
    read + cache write) exceeds a tier's threshold, that tier's rate applies to every token
    of the kind, not only to the tokens past the threshold. The highest threshold passed wins.
    """

    base: Decimal
    tiers: tuple[Tier, ...] = ()

    def at(self, total_input: int) -> tuple[Decimal, int | None]:
        """The rate for a call with this total input, and the tier threshold used (None: base)."""
        for tier in sorted(self.tiers, key=lambda t: t.above, reverse=True):
            if total_input > tier.above:
                return tier.rate, tier.above
        return self.base, None


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One price for one (provider, model), in force from effective_from until superseded.

    input and output are required. A kind left None is billed at the rate it falls back to,
    as providers do when they do not price it separately: cache_read and cache_write at the
    input rate, reasoning at the output rate. per_request is USD per request, when charged.
    """

    entry_id: str
    source: str
    provider: str
    model: str
    effective_from: date | None  # None: since the beginning of the data
    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    reasoning: Rate | None = None
    per_request: Decimal | None = None
    net: bool = False  # already a negotiated net price: no provider discount applies

    def rate_for(self, kind: str) -> Rate:
        """The rate that bills `kind`, after the fallbacks above."""
        if kind == "input":
            return self.input
        if kind == "output":
            return self.output
        if kind == "reasoning":
            return self.reasoning or self.output
        if kind == "cache_read":
            return self.cache_read or self.input
        if kind == "cache_write":
            return self.cache_write or self.input
        raise ValueError(f"unknown token kind {kind!r}")
