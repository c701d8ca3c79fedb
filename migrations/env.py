"""Alembic environment: one engine handed over by breakeven.collector.store.engine, both dialects."""

from __future__ import annotations

from alembic import context

from breakeven.collector.store import engine as _registers_duckdb_with_alembic  # noqa: F401
from breakeven.collector.store.schema import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
