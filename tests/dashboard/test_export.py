"""Exports of the Spend explorer's view: CSV cells a spreadsheet will not run, Parquet with exact money."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pyarrow.parquet as pq
import pytest

from breakeven.dashboard.export import safe_cell, to_csv, to_parquet


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        pytest.param('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")', id="formula"),
        pytest.param("+1+1", "'+1+1", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("\t=1", "'\t=1", id="tab"),
        pytest.param("\r=1", "'\r=1", id="carriage return"),
        pytest.param("support-bot", "support-bot", id="plain text untouched"),
        pytest.param(Decimal("-12.50"), Decimal("-12.50"), id="a negative amount stays a number"),
        pytest.param(42, 42, id="counts stay numbers"),
    ],
)
def test_safe_cell(cell: Any, expected: Any) -> None:
    assert safe_cell(cell) == expected


def _context() -> dict[str, Any]:
    tokens = {"input": 10, "cache_read": 2, "cache_write": 0, "output": 5, "reasoning": 1, "total": 17}
    return {
        "view": {"currency": "GBP"},
        "group_by": ["service", "model"],
        "rows": [
            {"key": {"service": "=cmd|' /C calc'!A0", "model": "gpt-x"}, "calls": 3, "priced_calls": 3,
             "unpriced_calls": 0, "tokens": tokens, "cost": "1.2345678912"},
            {"key": {"service": None, "model": "unknown"}, "calls": 1, "priced_calls": 0, "unpriced_calls": 1,
             "tokens": tokens, "cost": None},
        ],
        "idle_pool_cost": {"llama": "250.00"},
    }  # fmt: skip


def test_csv_escapes_text_cells_and_keeps_money_exact() -> None:
    body = to_csv(_context()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["service", "model", "calls"]
    assert rows[0][-2:] == ["cost", "currency"]
    assert rows[1][0] == "'=cmd|' /C calc'!A0"
    assert rows[1][-2:] == ["1.2345678912", "GBP"]
    assert rows[2][0] == ""
    assert rows[2][-2] == ""
    assert rows[3][0] == "idle pool cost: llama"
    assert rows[3][-2] == "250.00"


def test_parquet_round_trips_with_decimal_money_and_integer_tokens() -> None:
    table = pq.read_table(io.BytesIO(to_parquet(_context())))
    assert table.column_names[:2] == ["service", "model"]
    assert str(table.schema.field("cost").type) == "decimal128(38, 10)"
    assert str(table.schema.field("input_tokens").type) == "int64"
    data = table.to_pylist()
    assert data[0]["cost"] == Decimal("1.2345678912")
    assert data[1]["cost"] is None
    assert data[0]["service"] == "=cmd|' /C calc'!A0"  # Parquet is data, not a spreadsheet: kept as sent
    assert sum(r["cost"] or 0 for r in data) == Decimal("251.2345678912")
