"""billed_lines: the providers' and clouds' own bills, stored and read back (issue 24).

A source's report is restated by the provider for recent days, so storing is replacing: a
fetch or an import of a source's report (usage, cost or focus) deletes that report's lines
of the days it covers and inserts the lines it read, in one transaction. Reading a range
gives BilledLine records back, money as Decimal, exactly as stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from breakeven.collector.records import BilledLine
from breakeven.collector.store.schema import BILL_MONEY, billed_lines, reconcile_fetches

_FIELDS = tuple(f.name for f in fields(BilledLine))
# DuckDB takes the rows through Arrow, money as decimal128: its executemany binds a
# Decimal by the first row's type and rounded 1234567890.1234567891 (as reprice.py found).
_ARROW = pa.schema(
    [
        pa.field(
            c.name,
            pa.decimal128(BILL_MONEY.precision or 38, BILL_MONEY.scale or 18)
            if c.type is BILL_MONEY
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


def replace_lines(
    engine: sa.Engine, source: str, report: str, days: Iterable[date], lines: Sequence[BilledLine]
) -> int:
    """Replace the source's lines of this report of these days (and of every day a line falls in)
    with `lines`; returns how many were stored. A line of another source or report is refused
    (ValueError)."""
    if any(line.source != source or line.report != report for line in lines):
        raise ValueError(f"a line of another source or report than {source!r} {report!r}")
    covered = sorted(set(days) | {line.day for line in lines})
    if not covered:
        return 0
    now = datetime.now(UTC)
    with engine.begin() as conn:
        mine = (billed_lines.c.source == source, billed_lines.c.report == report)
        conn.execute(billed_lines.delete().where(*mine, billed_lines.c.day.in_(covered)))
        if lines:
            rows = [{**asdict(line), "imported_at": now, **_stored_money(line)} for line in lines]
            if conn.dialect.name == "duckdb":
                _insert_duckdb(conn, rows)
            else:
                conn.execute(billed_lines.insert(), rows)
    return len(lines)


def _stored_money(line: BilledLine) -> dict[str, Decimal | None]:
    """The line's amounts as stored: to BILL_MONEY's 18 decimals (half-even), past any bill's."""
    step = Decimal(1).scaleb(-(BILL_MONEY.scale or 18))
    return {
        name: None if value is None else value.quantize(step, ROUND_HALF_EVEN)
        for name, value in (("cost", line.cost), ("list_cost", line.list_cost))
    }


def _insert_duckdb(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    incoming = pa.Table.from_pylist(rows, schema=_ARROW)  # noqa: F841  (read by DuckDB's replacement scan)
    raw.execute("INSERT INTO billed_lines SELECT * FROM incoming")


def _reading(bind: sa.Engine | sa.Connection) -> contextlib.AbstractContextManager[sa.Connection]:
    """A connection to read on: a new one of an engine, or the caller's own."""
    return bind.connect() if isinstance(bind, sa.Engine) else contextlib.nullcontext(bind)


def lines_between(
    bind: sa.Engine | sa.Connection, since: date, until: date, source: str | None = None
) -> list[BilledLine]:
    """The stored lines of days since <= day < until (of one source, when named), in day order."""
    query = sa.select(*(billed_lines.c[name] for name in _FIELDS)).where(
        billed_lines.c.day >= since, billed_lines.c.day < until
    )
    if source is not None:
        query = query.where(billed_lines.c.source == source)
    with _reading(bind) as conn:
        rows = conn.execute(query.order_by(billed_lines.c.day, billed_lines.c.source, billed_lines.c.provider))
        return [BilledLine(**row._mapping) for row in rows]


@dataclass(frozen=True, slots=True)
class FetchStatus:
    """A source's last fetch: when it was tried, when one last succeeded, why the last failed."""

    source: str
    attempted_at: datetime
    succeeded_at: datetime | None
    error: str | None  # None when the last try succeeded


def record_fetch(engine: sa.Engine, source: str, attempted_at: datetime, error: str | None) -> None:
    """Note a fetch of `source` tried at `attempted_at`: succeeded (error None) or failed, and why.
    A failure keeps the last success's time. Never the key: `error` is the fetch's own words."""
    table = reconcile_fetches
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # collectors sharing it may note one source at once: upsert
            from sqlalchemy.dialects.postgresql import insert

            row = insert(table).values(source=source, attempted_at=attempted_at, succeeded_at=None, error=error)
            if error is None:
                row = row.values(succeeded_at=attempted_at)
            kept = row.excluded.succeeded_at if error is None else table.c.succeeded_at
            conn.execute(
                row.on_conflict_do_update(
                    index_elements=[table.c.source],
                    set_={"attempted_at": attempted_at, "succeeded_at": kept, "error": error},
                )
            )
            return
        before = conn.execute(sa.select(table.c.succeeded_at).where(table.c.source == source)).first()
        succeeded = attempted_at if error is None else (before.succeeded_at if before else None)
        conn.execute(table.delete().where(table.c.source == source))
        conn.execute(
            table.insert().values(source=source, attempted_at=attempted_at, succeeded_at=succeeded, error=error)
        )


def fetch_statuses(bind: sa.Engine | sa.Connection) -> dict[str, FetchStatus]:
    """Every source's last fetch, by source name."""
    with _reading(bind) as conn:
        rows = conn.execute(sa.select(reconcile_fetches)).all()
    return {row.source: FetchStatus(row.source, row.attempted_at, row.succeeded_at, row.error) for row in rows}
