"""One dataset, two databases: DuckDB and PostgreSQL answer the money API with the same JSON.

The same calls go in through the real write path (ledger_pricer + LedgerWriter) on both,
with a config of two pools (one allocated by the hour's busy seconds, one by the month's),
a discount, an unpriced model and a pound rate that changes mid-range; the calls' times to
first token are doubles in full precision, which /api/v1/calls shows alike on both. DuckDB's hours are
only partly rolled up and PostgreSQL's all of them, so the comparison also covers reading
rollups against reading calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.store import rollup
from breakeven.collector.store.engine import make_engine, migrate
from tests.conftest import postgres_schema
from tests.store.test_rollup import dataset, pricing, write

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # seconds per test: not the fast part

LEDGER = dataset(500, seed=3)
REQUESTS = [
    ("/api/v1/spend", {"since": "2025-06-01", "until": "2025-07-01"}),
    ("/api/v1/spend", {"group_by": "service,day", "since": "2025-06-09", "until": "2025-06-13"}),
    ("/api/v1/spend", {"group_by": "backend_class,provider,model", "currency": "GBP", "until": "2025-07-01"}),
    ("/api/v1/spend", {"group_by": "pool,team", "since": "2025-06-10T03:30:00Z", "until": "2025-06-11T20:15:00Z"}),
    ("/api/v1/spend", {"group_by": "model_version,quantization,feature", "since": "2025-06-10", "until": "2025-06-12"}),
    ("/api/v1/spend", {"group_by": "month,pool", "currency": "GBP", "since": "2025-06-10T05:10:00Z", "until": "2025-06-10T05:50:00Z"}),
    ("/api/v1/pools", {"since": "2025-06-01", "until": "2025-07-01"}),
    ("/api/v1/pools", {"currency": "GBP", "since": "2025-06-10T07:45:00Z", "until": "2025-06-12T01:00:00Z"}),
    ("/api/v1/breakeven", {"until": "2025-07-01"}),
    ("/api/v1/breakeven", {"currency": "GBP", "until": "2025-06-11T12:34:56Z"}),
    ("/api/v1/calls", {"service": "search", "limit": "40", "currency": "GBP", "since": "2025-06-10", "until": "2025-06-12"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, sa.Engine]]:
    with postgres_schema("parity") as pg_url:
        found = {"duckdb": make_engine(f"duckdb:///{tmp_path_factory.mktemp('parity') / 'p.duckdb'}")}
        found["postgresql"] = make_engine(pg_url)
        for engine in found.values():
            migrate(engine)
            write(engine, LEDGER, pricing())
        rollup.roll_pass(found["duckdb"], max_hours=25)
        rollup.roll_all(found["postgresql"])
        yield found
        for engine in found.values():
            engine.dispose()


@pytest.mark.parametrize("period", ["hour", "day", "month"])
def test_duckdb_and_postgresql_give_the_same_money_api(engines: dict[str, sa.Engine], period: str) -> None:
    bodies: dict[str, list[Any]] = {}
    for name, engine in engines.items():
        client = TestClient(build_api(engine, None, pricing(period)))
        bodies[name] = []
        for path, params in REQUESTS:
            reply = client.get(path, params=params)
            assert reply.status_code == 200, (name, path, reply.text)
            bodies[name].append(reply.json())
    for (path, params), duck, pg in zip(REQUESTS, bodies["duckdb"], bodies["postgresql"], strict=True):
        assert duck == pg, (path, params)
    spend = bodies["duckdb"][0]
    assert spend["rows"][0]["calls"] == len(LEDGER)
    assert spend["unpriced"]["calls"] > 0
    pools = bodies["duckdb"][6]["pools"]
    assert [p["name"] for p in pools] == ["p", "q"]
    assert all(p["calls"] > 0 for p in pools)
    assert bodies["duckdb"][8]["classes"]
    assert bodies["duckdb"][10]["calls"]
