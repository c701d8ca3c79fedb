"""Alembic environment: one engine handed over by collector.store.engine, both dialects."""

from __future__ import annotations

from alembic import context
from alembic.ddl.impl import DefaultImpl

from collector.store.schema import metadata


class DuckDBImpl(DefaultImpl):
    """Alembic has no DuckDB dialect of its own; DuckDB speaks PostgreSQL-style DDL."""

    __dialect__ = "duckdb"
    transactional_ddl = True


engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
