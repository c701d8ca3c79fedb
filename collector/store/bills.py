"""billed_lines: the providers' and clouds' own bills, stored and read back (issue 24).

A source's report is restated by the provider for recent days, so storing is replacing: a
fetch or an import of a source deletes that source's lines of the days it covers and inserts
the lines it read, in one transaction. Reading a range gives BilledLine records back, money
as Decimal, exactly as stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from breakeven.collector.records import BilledLine
from breakeven.collector.store.schema import MONEY, billed_lines

_FIELDS = tuple(f.name for f in fields(BilledLine))
# DuckDB takes the rows through Arrow, money as decimal128: its executemany binds a
# Decimal by the first row's type and rounded 1234567890.1234567891 (as reprice.py found).
_ARROW = pa.schema(
    [
        pa.field(
            c.name,
            pa.decimal128(MONEY.precision or 20, MONEY.scale or 10)
            if c.type is MONEY
            else pa.date32()
            if c.name == "day"
            else pa.int64()
            if isinstance(c.type, sa.BigInteger)
            else pa.timestamp("us", tz="UTC")
            if c.name == "imported_at"
            else pa.string(),
        )
        for c in billed_lines.columns
    ]
)


def replace_lines(engine: sa.Engine, source: str, days: Iterable[date], lines: Sequence[BilledLine]) -> int:
    """Replace the source's lines of these days (and of every day a line falls in) with `lines`;
    returns how many were stored. A line of another source is refused (ValueError)."""
    if any(line.source != source for line in lines):
        raise ValueError(f"a line of another source than {source!r}")
    covered = sorted(set(days) | {line.day for line in lines})
    if not covered:
        return 0
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(billed_lines.delete().where(billed_lines.c.source == source, billed_lines.c.day.in_(covered)))
        if lines:
            rows = [{**asdict(line), "imported_at": now} for line in lines]
            if conn.dialect.name == "duckdb":
                _insert_duckdb(conn, rows)
            else:
                conn.execute(billed_lines.insert(), rows)
    return len(lines)


def _insert_duckdb(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    incoming = pa.Table.from_pylist(rows, schema=_ARROW)  # noqa: F841  (read by DuckDB's replacement scan)
    raw.execute("INSERT INTO billed_lines SELECT * FROM incoming")


def lines_between(engine: sa.Engine, since: date, until: date, source: str | None = None) -> list[BilledLine]:
    """The stored lines of days since <= day < until (of one source, when named), in day order."""
    query = sa.select(*(billed_lines.c[name] for name in _FIELDS)).where(
        billed_lines.c.day >= since, billed_lines.c.day < until
    )
    if source is not None:
        query = query.where(billed_lines.c.source == source)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(billed_lines.c.day, billed_lines.c.source, billed_lines.c.provider))
        return [BilledLine(**row._mapping) for row in rows]
