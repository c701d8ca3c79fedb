"""DuckDB: llm_spans.attributes compressed with zstd.

The audit attributes (JSON text) are most of llm_spans on disk, and DuckDB's default
string compression (DICT_FSST) took half of every checkpoint compressing them: a
checkpoint holds all commits, so that was ingest time. zstd, which DuckDB never picks
for a column by itself, compresses them in a fraction of the time and into a fraction
of the space (CHANGELOG.md has the figures). They are read only for audit, where zstd's
slower scan does not matter. The other columns keep DuckDB's own choice: ids and
prompt hashes compressed worse with zstd and are read by every trace lookup.
PostgreSQL is unchanged (it TOASTs long text by itself).

DuckDB has no ALTER for a column's compression, so the table is rebuilt (as in 0002);
a ledger that already holds millions of spans takes a while to migrate once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ZSTD = " USING COMPRESSION ZSTD"
PLAIN = r"\battributes VARCHAR(?= NOT NULL)"


def _table_sql() -> str:
    sql = op.get_bind().execute(
        sa.text("SELECT sql FROM duckdb_tables() WHERE table_name = 'llm_spans' AND schema_name = current_schema()")
    )
    return str(sql.scalar_one())


def _rebuild(sql: str) -> None:
    op.execute("ALTER TABLE llm_spans RENAME TO llm_spans_rebuild")
    op.execute(sql)
    op.execute("INSERT INTO llm_spans SELECT * FROM llm_spans_rebuild")
    op.execute("DROP TABLE llm_spans_rebuild")


def upgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        return
    sql, found = re.subn(PLAIN, "attributes VARCHAR" + ZSTD, _table_sql(), count=1)
    assert found == 1, sql
    _rebuild(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        return
    sql = _table_sql()
    assert ZSTD in sql, sql
    _rebuild(sql.replace(ZSTD, "", 1))
