"""DuckDB: calls and llm_spans without primary keys or indexes.

DuckDB maintains ART indexes on every insert: with the (trace_id, span_id) keys and the
start_time indexes of 0001, an insert cost 4x more and grew with the table, and the
indexes held memory outside the buffer pool. DuckDB prunes by zone maps instead, so the
writer bounds every by-trace lookup, update and delete by the trace's start time, and the
pipeline does the de-duplication (see collector/calls/pipeline.py). PostgreSQL keeps both: its
B-trees are cheap, and several collectors share one database there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = {"calls": "ix_calls_start_time", "llm_spans": "ix_llm_spans_start_time"}


def _table_sql(table: str) -> str:
    sql = op.get_bind().execute(
        sa.text("SELECT sql FROM duckdb_tables() WHERE table_name = :t AND schema_name = current_schema()"),
        {"t": table},
    )
    return str(sql.scalar_one())


def _rebuild(table: str, sql: str, keyed: bool) -> None:
    """Recreate a DuckDB table from its DDL with the rows it held (one per key when keyed)."""
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_rebuild")
    op.execute(sql)
    op.execute(f"INSERT INTO {table} SELECT * FROM {table}_rebuild" + (" ON CONFLICT DO NOTHING" if keyed else ""))
    op.execute(f"DROP TABLE {table}_rebuild")


def upgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        return
    for table, index in TABLES.items():
        op.drop_index(index, table_name=table)
        sql = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", _table_sql(table), flags=re.IGNORECASE)
        for key in ("trace_id", "span_id"):  # the key made them NOT NULL; say so now it is gone
            sql = re.sub(rf"\b{key} VARCHAR(\(\d+\))?(?= *,)", rf"{key} VARCHAR\1 NOT NULL", sql, count=1)
        _rebuild(table, sql, keyed=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        return
    for table, index in TABLES.items():
        sql = _table_sql(table).rstrip().rstrip(";").rstrip()
        assert sql.endswith(")"), sql
        _rebuild(table, sql[:-1] + ", PRIMARY KEY(trace_id, span_id));", keyed=True)
        op.create_index(index, table, ["start_time"])
