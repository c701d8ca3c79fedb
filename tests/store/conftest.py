"""Store tests run on both dialects: DuckDB, and the real PostgreSQL in a schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from collector.store.engine import make_engine
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
