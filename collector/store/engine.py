"""Database engines and migrations for DuckDB (embedded) and PostgreSQL."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from breakeven.collector.config.settings import Settings


class DuckDBImpl(DefaultImpl):
    """Alembic has no DuckDB dialect of its own; DuckDB speaks PostgreSQL-style DDL.

    Defining the class registers it with Alembic, so it lives here, imported by every
    process that asks Alembic anything (current_revision in `serve --no-migrate` too).
    """

    __dialect__ = "duckdb"
    transactional_ddl = True


# DuckDB's checkpoints merge a table's row groups whenever neighbours fit in one
# (max_vacuum_tasks, 100 by default): under ingest that rewrote rows already written,
# more of them as the ledger grew, and a checkpoint holds every commit (the figures are in
# CHANGELOG.md and docs/performance.md). Without it, a row group whose rows were all deleted
# (retention's purge, the roller's rewrites) is still dropped whole; only rows deleted
# here and there (a call re-merged by a late span) keep their space.
NO_VACUUM: dict[str, str | int] = {"max_vacuum_tasks": 0}


def make_engine(
    url: str,
    duckdb_memory_limit: str | None = None,
    duckdb_checkpoint_threshold: str | None = None,
    duckdb_threads: int | None = None,
) -> sa.Engine:
    """An engine for the database URL; DuckDB files get their folder created.

    duckdb_checkpoint_threshold: the WAL size past which DuckDB checkpoints. Its own default
    (16 MB) checkpoints often under ingest, and each checkpoint rewrites the table's last,
    partly filled row group (up to 122,880 rows) again; at 256 MB a row group is written
    about once.

    duckdb_threads: DuckDB's worker threads (its own default: one per core). `serve` gives 1
    (Settings.duckdb_threads): the writer's inserts then run on the writer's own thread
    instead of being handed to a DuckDB worker that waits for a core the decode processes
    keep busy (docs/performance.md).

    DuckDB runs without its checkpoint vacuum (NO_VACUUM, which says why), and its NUMERIC
    columns read back as the Decimal DuckDB gives, not through a float.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "duckdb" and parsed.database and parsed.database != ":memory:":
        from pathlib import Path

        Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args = {}
    if parsed.get_backend_name() == "duckdb":
        # DuckDB's default memory limit is 80% of RAM: a sidecar must not take that.
        config: dict[str, str | int | None] = {
            "memory_limit": duckdb_memory_limit,
            "checkpoint_threshold": duckdb_checkpoint_threshold,
            "threads": duckdb_threads,
        }
        connect_args["config"] = {name: value for name, value in config.items() if value is not None} | NO_VACUUM
    engine = sa.create_engine(
        parsed, pool_pre_ping=parsed.get_backend_name() == "postgresql", connect_args=connect_args
    )
    if parsed.get_backend_name() == "duckdb":
        # DuckDB hands DECIMAL back as Decimal, but duckdb_engine says it does not, so SQLAlchemy
        # turned every NUMERIC it read into a float first: 1234567890.1234567891 read back as
        # ...567165. Money must read back exactly, as on PostgreSQL.
        engine.dialect.supports_native_decimal = True
    return engine


def settings_engine(settings: Settings) -> sa.Engine:
    """The engine of the configured database, with the configured DuckDB limits."""
    return make_engine(
        settings.db, settings.duckdb_memory_limit, settings.duckdb_checkpoint_threshold, settings.duckdb_threads
    )


def alembic_config(engine: sa.Engine) -> Config:
    """Alembic configured for the migrations that ship inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("breakeven.migrations")))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the database to a revision (head by default)."""
    command.upgrade(alembic_config(engine), revision)
    _checkpoint(engine)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Downgrade the database to a revision ("base" empties it)."""
    command.downgrade(alembic_config(engine), revision)
    _checkpoint(engine)


def _checkpoint(engine: sa.Engine) -> None:
    """DuckDB: write schema changes into the database file, out of the WAL.

    DuckDB 2.0 cannot replay a WAL holding migration 0002's table rebuild (rename,
    create, copy, drop): after a crash the file would not open. A checkpoint right after
    migrating leaves no DDL in the WAL (found by tests/reliability/test_crash.py).
    """
    if engine.dialect.name == "duckdb":
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: sa.Engine) -> str | None:
    """The newest revision the package ships."""
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
