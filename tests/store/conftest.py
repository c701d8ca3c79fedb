"""Store tests run on both dialects: DuckDB, and the real PostgreSQL in a schema of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from breakeven.collector.store.engine import make_engine
from tests.conftest import postgres_schema


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[sa.Engine]:
    url = f"duckdb:///{tmp_path / 'm.duckdb'}"
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(postgres_schema("store"))
        eng = make_engine(url)
        yield eng
        eng.dispose()
