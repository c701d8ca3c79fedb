"""DuckDB: ttft_ms a double, as on PostgreSQL.

`sa.Float` is DuckDB's FLOAT, 32 bits: 102.621534 ms read back as 102.62153625488281, while
PostgreSQL's FLOAT is double precision and keeps what was sent. The ledger's figures must be
the same on both dialects (issue 23), so `calls.ttft_ms` and `llm_spans.ttft_ms` become
DOUBLE. DuckDB alters a column's type in place (the tables have no indexes there, and
llm_spans keeps its zstd attributes). Values stored before stay as the 32-bit float gave
them; there is nothing to recover them from. PostgreSQL is unchanged.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("calls", "llm_spans")


def _ttft_type(kind: str) -> None:
    if op.get_bind().dialect.name == "duckdb":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} ALTER ttft_ms TYPE {kind}")


def upgrade() -> None:
    _ttft_type("DOUBLE")


def downgrade() -> None:
    _ttft_type("FLOAT")
