"""The ledger set beside the bill: coverage, the cost delta and its likely causes (pure: no I/O).

Both sides come in at their finest grain, amounts already in one currency:
- the ledger as LedgerCell records, one per UTC day, provider, model, service and team (the
  per-token calls; a self-hosted pool's calls are reconciled against its invoice apart,
  pools.py);
- the bill as BilledLine records of the configured sources.

They meet on a key of the names in group_by (provider, model, day, service, team, source).
A bill line's service and team are its account's owner in the source's `map`; a ledger
cell's source is the source that bills its provider. Models meet on model_key(), which
drops what only spells a model differently (a date or version suffix, a Bedrock vendor
prefix, case and punctuation), so "gpt-4o-2024-08-06" and "gpt-4o" are one row, as are
Bedrock's "anthropic.claude-3-5-sonnet-20240620-v1:0" and its bill's "Claude3.5Sonnet".

Each row gets its coverage (ledger tokens / billed tokens), its delta (billed cost - ledger
cost: positive when the bill is higher) and the causes found, in the order `causes` tries
them; the first is the row's cause in words. Agreement is within `tolerance` (a fraction)
of the billed figure, and money within one cent besides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from breakeven.collector.config.reconcile import ReconcileSource
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.records import BilledLine

GROUP_KEYS = ("provider", "model", "day", "service", "team", "source")
# Clouds' AI services under the ledger's names (focus.py reads them so); any other FOCUS line
# (an instance, storage, a support fee) is no per-token charge and stays out of these rows.
AI_PROVIDERS = frozenset({"aws.bedrock", "azure.ai.openai", "azure.ai.inference", "gcp.vertex_ai", "gcp.gemini"})
API_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}
TIERS = {"batch": "the Batch API", "flex": "the flex tier", "priority": "the priority tier", "scale": "the scale tier"}
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
EVIDENCE = 5  # bill cells named as evidence, largest first

Key = tuple[Any, ...]


class GroupError(ValueError):
    """A group_by naming something reconciliation cannot group by."""


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


def group_keys(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """The group_by names, validated, in order, without repeats (default: provider, day)."""
    names = text.split(",") if isinstance(text, str) else list(text or ())
    out: list[str] = []
    if "pool" in [n.strip() for n in names]:
        if [n.strip() for n in names if n.strip()] != ["pool"]:
            raise GroupError("group_by: pool stands alone (a pool is reconciled per month, against its invoice)")
        return ("pool",)
    for raw in names:
        name = raw.strip()
        if name and name not in GROUP_KEYS:
            raise GroupError(f"group_by: cannot group by {name!r} (one of {', '.join(GROUP_KEYS)}, pool)")
        if name and name not in out:
            out.append(name)
    return tuple(out) or ("provider", "day")


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


def billed_providers(sources: Sequence[ReconcileSource], lines: Iterable[BilledLine]) -> dict[str, str]:
    """provider -> the source that bills it: an API source its provider, a FOCUS source the AI
    services its lines name. Where two sources bill one provider, the first configured."""
    out: dict[str, str] = {}
    for source in sources:
        if source.kind in API_PROVIDERS:
            out.setdefault(API_PROVIDERS[source.kind], source.name)
    by_name = {s.name: i for i, s in enumerate(sources)}
    for line in sorted(lines, key=lambda ln: by_name.get(ln.source, len(by_name))):
        if line.source in by_name and is_token_line(line, sources[by_name[line.source]]):
            out.setdefault(line.provider, line.source)
    return out


def is_token_line(line: BilledLine, source: ReconcileSource) -> bool:
    """Whether a line is a per-token service's charge: every line of an API source; a FOCUS
    line of a cloud's AI service, or one counting tokens."""
    if source.kind in API_PROVIDERS:
        return True
    return line.provider in AI_PROVIDERS or bool(
        line.input_tokens or line.cache_read_tokens or line.cache_write_tokens or line.output_tokens
    )


def reconcile_rows(
    ledger: Iterable[LedgerCell],
    bills: Iterable[BilledLine],
    sources: Sequence[ReconcileSource],
    group_by: Sequence[str],
    tolerance: Decimal,
    discounts: Mapping[str, Decimal] | None = None,
) -> list[Row]:
    """The rows of ledger against bill per group, with their causes, in key order.

    `discounts` is each provider's discount in force in the ledger (percent), to word the
    discount that would close a price difference as the whole discount to configure."""
    by_name = {s.name: s for s in sources}
    bills = [line for line in bills if line.source in by_name and is_token_line(line, by_name[line.source])]
    billers = billed_providers(sources, bills)
    names: dict[str | None, str] = {}
    table: dict[Key, Row] = {}

    def row_for(values: Mapping[str, Any]) -> Row:
        key = tuple(values[name] for name in group_by)
        row = table.get(key)
        if row is None:
            row = table[key] = Row(key)
        return row

    for cell in sorted(ledger, key=lambda c: (c.day, c.provider, c.model or "", c.service or "")):
        source = billers.get(cell.provider)
        if source is None:
            continue  # no configured source bills this provider
        model = model_key(cell.model)
        names.setdefault(model, cell.model or "")
        values = {"provider": cell.provider, "model": model, "day": cell.day, "service": cell.service,
                  "team": cell.team, "source": source}  # fmt: skip
        row = row_for(values)
        row.ledger.add(cell.calls, cell.usage, cell.cost)
        row.unpriced_calls += cell.unpriced_calls
        slot = (cell.day, model, cell.service)
        row.ledger_services[slot] = row.ledger_services.get(slot, 0) + cell.usage.total
    for line in sorted(bills, key=lambda ln: (ln.day, ln.source, ln.provider, ln.model or "", ln.account or "")):
        owner = by_name[line.source].owners.get(line.account or "")
        model = model_key(bill_model(line))
        names.setdefault(model, bill_model(line) or "")
        values = {"provider": line.provider, "model": model, "day": line.day,
                  "service": owner.service if owner else None, "team": owner.team if owner else None,
                  "source": line.source}  # fmt: skip
        row = row_for(values)
        usage = TokenUsage(line.input_tokens, line.cache_read_tokens, line.cache_write_tokens, line.output_tokens)
        row.billed.add(line.requests, usage, line.cost)
        if line.tier and line.tier.lower() in TIERS and usage.total:
            row.tiers[line.tier.lower()] = row.tiers.get(line.tier.lower(), 0) + usage.total
        if line.cost is not None and not usage.total and model is None:
            item = line.line_item or "(no line item)"
            row.other_charges[item] = row.other_charges.get(item, Decimal(0)) + line.cost
        if usage.total:
            row.cells.append((line, owner.service if owner else None))
    rows = sorted(table.values(), key=lambda r: tuple((v is None, str(v or "")) for v in r.key))
    for row in rows:
        if "model" in group_by:  # the name shown: the ledger's where it has one
            at = group_by.index("model")
            row.key = (*row.key[:at], names.get(row.key[at]) or row.key[at], *row.key[at + 1 :])
        row.causes = causes(row, tolerance, (discounts or {}))
    return rows


def causes(row: Row, tolerance: Decimal, discounts: Mapping[str, Decimal]) -> list[Cause]:
    """What makes the row differ, most telling first; empty when ledger and bill agree."""
    led, bill = row.ledger.usage, row.billed.usage
    found: list[Cause] = []
    if row.status == "ledger_only":
        return [Cause("not_billed", _not_billed_words(row))]

    def near(a: int, b: int, whole: int) -> bool:
        return abs(a - b) <= tolerance * whole

    whole = max(bill.total, 1)
    inputs_agree = near(led.total_input, bill.total_input, whole)
    outputs_agree = near(led.output, bill.output, whole)
    cost_agrees = row.delta is None or abs(row.delta) <= max(tolerance * abs(row.billed.cost or Decimal(0)), CENT)
    share = _share(row)
    inputs_short = not inputs_agree and led.total_input < bill.total_input
    outputs_short = not outputs_agree and led.output < bill.output
    if inputs_short:
        missing = max(bill.total_input - led.total_input, 0) + max(bill.output - led.output, 0)
        found.append(
            Cause(
                "never_seen",
                f"the bill counts {missing:,} tokens the ledger never saw"
                f" ({_percent(Decimal(missing), Decimal(bill.total))} of the billed): likely a service that is not"
                " instrumented, or one exporting elsewhere",
                share(missing),
                _unseen(row),
            )
        )
    elif outputs_short:
        missing = bill.output - led.output
        found.append(
            Cause(
                "output_counted_differently",
                f"input agrees but the bill counts {missing:,} output tokens more: reasoning tokens an emitter"
                " leaves out of its output count, or calls whose usage was not reported",
                share(missing),
                ({"ledger_output": led.output, "ledger_reasoning": led.reasoning, "billed_output": bill.output},),
            )
        )
    elif bill.total and led.total > bill.total and not near(led.total, bill.total, whole):
        extra = led.total - bill.total
        found.append(
            Cause(
                "ledger_over",
                f"the ledger counts {extra:,} tokens more than the bill: traffic billed to an account or"
                " organisation this source does not read, or usage an emitter over-reports",
            )
        )
    if (
        bill.total
        and inputs_agree
        and not all(
            near(a, b, whole)
            for a, b in (
                (led.input, bill.input),
                (led.cache_read, bill.cache_read),
                (led.cache_write, bill.cache_write),
            )
        )
    ):
        found.append(
            Cause(
                "cache_counted_differently",
                "the prompt tokens agree but not how many were cached: the ledger prices"
                f" {led.cache_read:,} cache reads and {led.cache_write:,} cache writes, the bill"
                f" {bill.cache_read:,} and {bill.cache_write:,} (an emitter that does not report cached tokens"
                " has them priced as fresh input)",
                row.delta if not cost_agrees else None,
                (
                    {"kind": "input", "ledger": led.input, "billed": bill.input},
                    {"kind": "cache_read", "ledger": led.cache_read, "billed": bill.cache_read},
                    {"kind": "cache_write", "ledger": led.cache_write, "billed": bill.cache_write},
                ),
            )
        )
    if row.tiers and not cost_agrees:
        tiers = ", ".join(f"{n:,} tokens on {TIERS[t]}" for t, n in sorted(row.tiers.items()))
        found.append(
            Cause(
                "tier",
                f"the bill has {tiers}, priced apart from the standard tier the ledger prices at",
                None,
                tuple({"tier": t, "billed_tokens": n} for t, n in sorted(row.tiers.items())),
            )
        )
    if row.unpriced_calls:
        found.append(
            Cause(
                "unpriced_calls",
                f"the ledger left {row.unpriced_calls:,} of its {row.ledger.calls:,} calls unpriced (no price"
                " known for their model on their day): their cost is not in the ledger's figure",
            )
        )
    if row.other_charges and not cost_agrees:
        total = sum(row.other_charges.values(), Decimal(0))
        items = sorted(row.other_charges.items(), key=lambda kv: -kv[1])
        found.append(
            Cause(
                "other_charges",
                "the bill charges for more than tokens: " + ", ".join(item for item, _ in items[:EVIDENCE]),
                total,
                tuple({"line_item": item, "billed_cost": amount} for item, amount in items[:EVIDENCE]),
            )
        )
    split = any(c.kind == "cache_counted_differently" for c in found)
    tokens_agree = bool(bill.total) and inputs_agree and outputs_agree and not split
    other = sum(row.other_charges.values(), Decimal(0))
    residual = (row.delta or Decimal(0)) - other  # what the charges without tokens leave unexplained
    priced_apart = abs(residual) <= max(tolerance * abs(row.billed.cost or Decimal(0)), CENT)
    closed_apart = cost_agrees or priced_apart or row.tiers or row.unpriced_calls
    if tokens_agree and not closed_apart and row.ledger.cost:
        found.append(_price_cause(row, discounts, other))
    if not found and not cost_agrees:
        found.append(Cause("unexplained", "the money differs and no cause could be told from the figures"))
    return found


def _price_cause(row: Row, discounts: Mapping[str, Decimal], other: Decimal) -> Cause:
    """Tokens agree, money does not: the bill's effective discount against the ledger's prices,
    and the [[pricing.discounts]] entry (the whole discount, the ledger's own included) that closes it."""
    ledger, billed = row.ledger.cost or Decimal(0), (row.billed.cost or Decimal(0)) - other
    ratio = billed / ledger
    effective = (1 - ratio) * HUNDRED
    provider = _key_value(row, "provider")
    days = sorted({line.day for line, _ in row.cells})
    since = days[0].isoformat() if days else None
    words = (
        f"the tokens agree but the bill is {_signed_percent(-effective)} the ledger's price: "
        + ("a discount" if effective > 0 else "a surcharge or a price rise")
        + " the price book does not know"
    )
    suggestion = None
    if provider and since:
        prior = discounts.get(provider, Decimal(0))
        whole = (1 - ratio * (1 - prior / HUNDRED)) * HUNDRED
        if Decimal(0) < whole <= HUNDRED:
            suggestion = (
                f'[[pricing.discounts]]\nprovider = "{provider}"\npercent = {_round(whole)}\neffective_from = {since}\n'
            )
    evidence = ({"ledger_cost": ledger, "billed_cost": billed, "effective_discount_percent": effective},)
    return Cause("price", words, billed - ledger, evidence, suggestion)


def _not_billed_words(row: Row) -> str:
    return (
        f"the ledger has {row.ledger.calls:,} calls the bill does not show: the bill of these days may not be"
        " fetched yet, or the calls were billed to an account this source does not read"
    )


def _share(row: Row) -> Any:
    """The billed cost of `tokens` of this row's billed tokens, at the row's average billed rate."""

    def cost(tokens: int) -> Decimal | None:
        if row.billed.cost is None or not row.billed.usage.total:
            return None
        return row.billed.cost * Decimal(tokens) / Decimal(row.billed.usage.total)

    return cost


def _unseen(row: Row) -> tuple[Mapping[str, Any], ...]:
    """The bill's accounts with the most tokens the ledger did not see, by day and model.

    An account mapped to a service is set against that service's ledger tokens of the day and
    model; the unmapped accounts of a day and model share, in proportion to their tokens, the
    ledger tokens of the services no map names."""
    mapped_services = {service for _, service in row.cells if service is not None}
    unmapped_ledger: dict[tuple[date, str | None], int] = {}
    for (day, model, service), n in row.ledger_services.items():
        if service not in mapped_services:
            unmapped_ledger[(day, model)] = unmapped_ledger.get((day, model), 0) + n
    billed: dict[tuple[date, str | None, str | None, str | None], int] = {}
    unmapped_billed: dict[tuple[date, str | None], int] = {}
    shown: dict[str | None, str | None] = {}
    for line, service in row.cells:
        day, model = line.day, model_key(bill_model(line))
        shown.setdefault(model, bill_model(line))
        n = line.input_tokens + line.cache_read_tokens + line.cache_write_tokens + line.output_tokens
        billed[(day, model, line.account, service)] = billed.get((day, model, line.account, service), 0) + n
        if service is None:
            unmapped_billed[(day, model)] = unmapped_billed.get((day, model), 0) + n
    out: list[dict[str, Any]] = []
    for (day, model, account, service), n in billed.items():
        if service is not None:
            seen = row.ledger_services.get((day, model, service), 0)
        else:
            share = Decimal(unmapped_ledger.get((day, model), 0)) * n / unmapped_billed[(day, model)]
            seen = int(share)
        seen = min(seen, n)
        if n > seen:
            evidence = {"day": day, "model": shown[model], "account": account, "service": service}
            out.append({**evidence, "billed_tokens": n, "ledger_tokens": seen, "unseen_tokens": n - seen})
    out.sort(key=lambda e: (-e["unseen_tokens"], e["day"], e["account"] or ""))
    return tuple(out[:EVIDENCE])


def _key_value(row: Row, name: str) -> Any:
    for line, _ in row.cells:
        return getattr(line, name, None)
    return None


def _percent(part: Decimal, whole: Decimal) -> str:
    return f"{_round(part / whole * HUNDRED)}%" if whole else "all"


def _signed_percent(value: Decimal) -> str:
    return f"{_round(abs(value))}% {'below' if value < 0 else 'above'}"


def _round(value: Decimal) -> str:
    """A percentage as words and TOML show it: two places, trailing zeros dropped."""
    text = f"{value.quantize(CENT):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
