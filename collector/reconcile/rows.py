"""What a reconciliation row holds, and how a bill's names meet the ledger's (pure: no I/O).

A row sets the ledger's side (LedgerCell records summed) beside the bill's (BilledLine records
summed) for one key of compare.py's group_by; causes.py says why the two differ. Models meet on
model_key(), which drops what only spells a model differently (a date or version suffix, a
Bedrock vendor prefix, case and punctuation), so "gpt-4o-2024-08-06" and "gpt-4o" are one row,
as are Bedrock's "anthropic.claude-3-5-sonnet-20240620-v1:0" and its bill's "Claude3.5Sonnet".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import BilledLine

TIERS = {"batch": "the Batch API", "flex": "the flex tier", "priority": "the priority tier", "scale": "the scale tier"}
CENT = Decimal("0.01")
HUNDRED = Decimal(100)

Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class LedgerCell:
    """The ledger's per-token calls of one UTC day, provider, model, service and team."""

    day: date
    provider: str
    model: str | None
    service: str | None
    team: str | None
    calls: int
    unpriced_calls: int
    usage: TokenUsage
    cost: Decimal | None  # in the report's currency; None when no call of it was priced


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a row differs: a kind, the words, the figures behind them, a config that would close it."""

    kind: str
    words: str
    amount: Decimal | None = None  # the share of the delta it explains, where it can be told
    evidence: tuple[Mapping[str, Any], ...] = ()
    suggestion: str | None = None  # TOML for the config file


@dataclass(slots=True)
class Side:
    """One side's figures of a row: calls (requests on the bill), tokens, cost."""

    calls: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: Decimal | None = None

    def add(self, calls: int, usage: TokenUsage, cost: Decimal | None) -> None:
        self.calls += calls
        self.usage += usage
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost


@dataclass(slots=True)
class Row:
    """One group's ledger and bill, and what was found."""

    key: Key
    ledger: Side = field(default_factory=Side)
    billed: Side = field(default_factory=Side)
    unpriced_calls: int = 0
    tiers: dict[str, int] = field(default_factory=dict)  # billed tokens by non-standard tier
    other_charges: dict[str, Decimal] = field(default_factory=dict)  # billed cost without tokens, by line item
    cells: list[tuple[BilledLine, str | None]] = field(default_factory=list)  # bill lines and their owner service
    ledger_services: dict[tuple[date, str | None, str | None], int] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)

    @property
    def coverage(self) -> Decimal | None:
        """Ledger tokens over billed tokens; None when the bill has no tokens here."""
        billed = self.billed.usage.total
        return Decimal(self.ledger.usage.total) / Decimal(billed) if billed else None

    @property
    def delta(self) -> Decimal | None:
        """Billed cost less ledger cost (a missing side counts as nothing); None when the bill has no cost."""
        if self.billed.cost is None:
            return None
        return self.billed.cost - (self.ledger.cost or Decimal(0))

    @property
    def delta_percent(self) -> Decimal | None:
        delta = self.delta
        if delta is None or not self.billed.cost:
            return None
        return delta / self.billed.cost * HUNDRED

    @property
    def status(self) -> str:
        """agrees, differs, ledger_only (nothing billed) or bill_only (nothing in the ledger)."""
        billed_any = self.billed.usage.total or self.billed.cost or self.billed.calls
        if not billed_any:
            return "ledger_only"
        if not (self.ledger.usage.total or self.ledger.calls):
            return "bill_only"
        return "differs" if self.causes else "agrees"


_VENDOR = re.compile(
    r"^(?:(?:us|eu|apac|global|jp|au)\.)?(?:anthropic|meta|amazon|mistral|cohere|ai21|deepseek|openai|qwen|writer)\."
)
_GOOGLE = re.compile(r"^(?:publishers/google/)?models/")
_SUFFIX = re.compile(r"(?:-v\d+(?::\d+)?|@\d{8}|@latest|-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest)$")


def model_key(model: str | None) -> str | None:
    """A model's name with only what names it: lower case, no vendor prefix, no date or version
    suffix (-2024-08-06, -20240620, Azure's -0806, -v1:0; Vertex's @001 is kept), letters and
    digits only ("anthropic.claude-3-5-sonnet-20240620-v1:0" and "Claude3.5Sonnet" are both
    "claude35sonnet")."""
    if not model:
        return None
    name = _GOOGLE.sub("", _VENDOR.sub("", model.strip().lower()))
    while (stripped := _SUFFIX.sub("", name)) != name:
        name = stripped
    return re.sub(r"[^a-z0-9]", "", name) or None


def bill_model(line: BilledLine) -> str | None:
    """The model a bill line charges: its own, else the one OpenAI's cost line item names
    ("gpt-4o-2024-08-06, input")."""
    if line.model:
        return line.model
    if line.provider == "openai" and line.line_item and ", " in line.line_item:
        return line.line_item.rsplit(", ", 1)[0]
    return None
