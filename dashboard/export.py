"""The Spend explorer's current view as a file: CSV (escaped against formula injection) or Parquet.

One row per table row, then one per idle pool line, with the view's currency in its own
column. Money is exact, as the page's JSON twin has it (Parquet: decimal128(38, 10)); tokens int64.

Formula injection: a spreadsheet runs a cell that starts with = + - @ (or tab, carriage
return) as a formula, and dimension values are span attributes anyone can send. Text cells
that start so are prefixed with a single quote (OWASP's advice); numbers are written as
numbers (a negative amount stays -12.50, which no spreadsheet evaluates).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TOKEN_KINDS = ("input", "cache_read", "cache_write", "output", "reasoning", "total")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not evaluate: text starting = + - @ tab CR gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _columns(group_by: Sequence[str]) -> list[str]:
    return [
        *group_by, "calls", "priced_calls", "unpriced_calls", *(f"{kind}_tokens" for kind in TOKEN_KINDS),
        "cost", "currency",
    ]  # fmt: skip


def records(context: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The explorer's rows as (columns, records); money as Decimal, None when unpriced."""
    group_by = context["group_by"]
    currency = context["view"]["currency"]
    out: list[list[Any]] = []
    for row in context["rows"]:
        keys = [row["key"][name] for name in group_by]
        counts = [row["calls"], row["priced_calls"], row["unpriced_calls"]]
        tokens = [row["tokens"][kind] for kind in TOKEN_KINDS]
        cost = Decimal(row["cost"]) if row["cost"] is not None else None
        out.append([*keys, *counts, *tokens, cost, currency])
    for pool, amount in context["idle_pool_cost"].items():
        keys = [f"idle pool cost: {pool}", *([None] * (len(group_by) - 1))]
        out.append([*keys, 0, 0, 0, *([0] * len(TOKEN_KINDS)), Decimal(amount), currency])
    return _columns(group_by), out


def to_csv(context: dict[str, Any]) -> bytes:
    """The current view as CSV (UTF-8 with a BOM, so spreadsheets read the currency signs right)."""
    columns, rows = records(context)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if cell is None else safe_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_parquet(context: dict[str, Any]) -> bytes:
    """The current view as Parquet: dimension strings, int64 counts and tokens, decimal money."""
    columns, rows = records(context)
    group_by = context["group_by"]
    fields = [pa.field(name, pa.string()) for name in group_by]
    fields += [pa.field(name, pa.int64()) for name in columns[len(group_by) : -2]]
    fields += [pa.field("cost", pa.decimal128(38, 10)), pa.field("currency", pa.string())]
    schema = pa.schema(fields)
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    table = pa.table(data, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
