"""The ledger set beside the bill: coverage, the cost delta and its likely causes (pure: no I/O).

Both sides come in at their finest grain, amounts already in one currency:
- the ledger as LedgerCell records, one per UTC day, provider, model, service and team (the
  per-token calls; a self-hosted pool's calls are reconciled against its invoice apart,
  pools.py);
- the bill as BilledLine records of the configured sources.

They meet on a key of the names in group_by (provider, model, day, service, team, source).
A bill line's service and team are its account's owner in the source's `map`; a ledger
cell's source is the source that bills its provider. Models meet on rows.model_key(), so
"gpt-4o-2024-08-06" and "gpt-4o" are one row.

Each row (rows.py) gets its coverage (ledger tokens / billed tokens), its delta (billed cost -
ledger cost: positive when the bill is higher) and the causes found (causes.py), most telling
first; the first is the row's cause in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from breakeven.collector.config.reconcile import ReconcileSource
from breakeven.collector.price.usage import TokenUsage
from breakeven.collector.reconcile.causes import causes
from breakeven.collector.reconcile.rows import TIERS, Key, LedgerCell, Row, bill_model, model_key
from breakeven.collector.records import BilledLine

GROUP_KEYS = ("provider", "model", "day", "service", "team", "source")
# Clouds' AI services under the ledger's names (focus.py reads them so); any other FOCUS line
# (an instance, storage, a support fee) is no per-token charge and stays out of these rows.
AI_PROVIDERS = frozenset({"aws.bedrock", "azure.ai.openai", "azure.ai.inference", "gcp.vertex_ai", "gcp.gemini"})
API_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}


class GroupError(ValueError):
    """A group_by naming something reconciliation cannot group by."""


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
