"""DuckDB: ingest_counters without a primary key; each commit appends its counts.

Every ingest commit added its counts with INSERT ... ON CONFLICT DO UPDATE, which on
DuckDB goes through the key's ART index and rewrites the rows, nearly twice the time
of appending the same rows to a table without a key (CHANGELOG.md has the figures).
Now the writer appends, readers sum by (name, reason), and the roller folds the rows
into one per (name, reason) now and then, in one transaction (collector/store/counters.py).
PostgreSQL keeps its key and its upsert: collectors sharing it add to one row each.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = "name VARCHAR NOT NULL, reason VARCHAR NOT NULL, value BIGINT NOT NULL"


def _rebuild(key: str) -> None:
    op.execute("ALTER TABLE ingest_counters RENAME TO ingest_counters_rebuild")
    op.execute(f"CREATE TABLE ingest_counters ({COLUMNS}{key})")
    op.execute(
        "INSERT INTO ingest_counters SELECT name, reason, sum(value) FROM ingest_counters_rebuild GROUP BY name, reason"
    )
    op.execute("DROP TABLE ingest_counters_rebuild")


def upgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        _rebuild("")


def downgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        _rebuild(", PRIMARY KEY (name, reason)")
