"""Ingest counters on DuckDB: appended by every commit, folded now and then.

The writer appends each commit's counts as rows of ingest_counters (migration 0009:
no key on DuckDB), and readers sum them by (name, reason). fold() replaces the rows
with one per (name, reason), in one transaction, once there are more than a few:
the roller calls it every round. It runs on a snapshot, so rows a commit appends
meanwhile are neither summed nor deleted, and stay for the next fold. PostgreSQL keeps
one row per key (the writer upserts there), so there is nothing to fold.
"""

from __future__ import annotations

import sqlalchemy as sa

FOLD_PAST_ROWS = 1000


def fold(engine: sa.Engine, past_rows: int = FOLD_PAST_ROWS) -> int:
    """Fold ingest_counters into one row per (name, reason) once it holds more than past_rows; rows removed."""
    if engine.dialect.name != "duckdb":
        return 0
    with engine.begin() as conn:
        rows = int(conn.exec_driver_sql("SELECT count(*) FROM ingest_counters").scalar_one())
        if rows <= past_rows:
            return 0
        conn.exec_driver_sql(
            "CREATE TEMP TABLE _folded AS SELECT name, reason, sum(value) AS value FROM ingest_counters"
            " GROUP BY name, reason"
        )
        conn.exec_driver_sql("DELETE FROM ingest_counters")
        kept = int(conn.exec_driver_sql("INSERT INTO ingest_counters SELECT * FROM _folded").scalar_one())
        conn.exec_driver_sql("DROP TABLE _folded")
        return rows - kept
