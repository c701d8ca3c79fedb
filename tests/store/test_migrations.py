"""Upgrade to head produces the declared schema on DuckDB and PostgreSQL; downgrade works."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collector.store.engine import current_revision, downgrade, head_revision, make_engine, migrate
from collector.store.schema import metadata
from tests.conftest import PG_URL


def _pg_available() -> str | None:
    try:
        with make_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}"


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[sa.Engine]:
    if request.param == "duckdb":
        eng = make_engine(f"duckdb:///{tmp_path / 'm.duckdb'}")
        yield eng
        eng.dispose()
        return
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    eng = sa.create_engine(admin.url, connect_args={"options": f"-csearch_path={schema}"})
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _columns(conn: sa.Connection, table: str) -> dict[str, tuple[str, bool]]:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = :t AND table_schema = current_schema()"
        ),
        {"t": table},
    )
    return {name: (kind.lower(), nullable == "YES") for name, kind, nullable in rows}


def _family(kind: str) -> str:
    for word, family in (
        ("timestamp", "time"),
        ("bigint", "int8"),
        ("integer", "int4"),
        ("int", "int"),
        ("char", "text"),
        ("text", "text"),
        ("double", "float"),
        ("float", "float"),
        ("bool", "bool"),
        ("numeric", "numeric"),
        ("decimal", "numeric"),
    ):
        if word in kind:
            return family
    return kind


def test_upgrade_to_head_is_the_declared_schema_and_downgrade_empties(engine: sa.Engine) -> None:
    migrate(engine)
    assert current_revision(engine) == head_revision(engine)
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            actual = _columns(conn, table.name)
            declared = {
                c.name: (_family(c.type.compile(dialect=engine.dialect).lower()), c.nullable) for c in table.columns
            }
            assert {n: (_family(k), nullable) for n, (k, nullable) in actual.items()} == declared, table.name
    downgrade(engine, "base")
    assert current_revision(engine) is None
    with engine.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    migrate(engine)  # and back up again
    assert current_revision(engine) == head_revision(engine)
