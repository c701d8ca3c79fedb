"""Why a reconciliation row's ledger and bill differ, most telling first (pure: no I/O).

Agreement is within `tolerance` (a fraction) of the billed figure, and money within one cent
besides. The causes tell apart billed tokens the ledger never saw, output or cached tokens
counted differently, the ledger counting more, batch or priority tiers, unpriced calls,
charges without tokens, and a price the ledger does not know (with the TOML that closes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from breakeven.collector.reconcile.rows import CENT, HUNDRED, TIERS, Cause, Row, bill_model, model_key

EVIDENCE = 5  # bill cells named as evidence, largest first


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
    elif outputs_short and inputs_agree:
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
