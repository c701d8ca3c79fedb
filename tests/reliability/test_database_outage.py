"""PostgreSQL stops and comes back during load: nothing acknowledged is lost, ingest recovers.

While the database is gone the collector answers 503 (its commit failed, so nothing was
acknowledged) and the OTel SDK exporters retry; /readyz says not ready. No spool to local
disk: a 2xx means "in the database", the same promise with and without an outage, and
the exporters (and an OpenTelemetry Collector's retry queue in front) already hold what
was not acknowledged. When the database is back, the next commit reconnects by itself.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from breakeven.collector.store.engine import make_engine
from tests.conftest import PG_URL, postgres_schema, require_program
from tests.reliability.server import ServerProcess
from tests.reliability.test_crash import RecordingExporter, _load

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _cluster() -> list[str]:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        pytest.skip("no local PostgreSQL cluster to stop and start (/etc/postgresql)")
    return [require_program("pg_ctlcluster"), "--skip-systemctl-redirect", versions[-1], "main"]


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    with postgres_schema("outage") as url:
        yield url


def _wait_for_database(deadline_seconds: float = 60) -> None:
    engine = make_engine(PG_URL)
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            break
        except sa.exc.OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.2)
    engine.dispose()


def test_postgresql_outage_during_load_loses_nothing_acknowledged(pg_schema_url: str, tmp_path: Path) -> None:
    cluster = _cluster()
    server = ServerProcess(pg_schema_url, tmp_path)
    server.start()
    recorder = RecordingExporter(HttpSpanExporter(endpoint=f"{server.otlp_http}/v1/traces", timeout=5))
    provider = TracerProvider(resource=Resource.create({"service.name": "outage"}))
    provider.add_span_processor(
        BatchSpanProcessor(recorder, max_queue_size=100_000, schedule_delay_millis=50, max_export_batch_size=256)
    )
    stop = threading.Event()
    load = threading.Thread(target=_load, args=(provider, stop, "outage"))
    load.start()
    ready_during_outage = None
    back_at = 0.0
    try:
        time.sleep(2)
        subprocess.run([*cluster, "stop", "-m", "fast"], check=True, timeout=60)
        try:
            time.sleep(2)
            ready_during_outage = httpx.get(f"http://127.0.0.1:{server.api_port}/readyz", timeout=5).status_code
        finally:
            subprocess.run([*cluster, "start"], check=True, timeout=60)
            _wait_for_database()
        back_at = time.time()
        time.sleep(3)
    finally:
        stop.set()
        load.join()
    provider.force_flush(60_000)
    provider.shutdown()
    assert server.stop() == 0

    assert ready_during_outage == 503
    engine = make_engine(pg_schema_url)
    with engine.connect() as conn:
        stored = {tuple(r) for r in conn.execute(sa.text("SELECT trace_id, span_id FROM llm_spans"))}
        stored_after_outage = conn.execute(
            sa.text("SELECT count(*) FROM llm_spans WHERE received_at > to_timestamp(:t)"), {"t": back_at}
        ).scalar()
    engine.dispose()
    assert len(recorder.acked) > 500
    assert recorder.acked - stored == set(), f"{len(recorder.acked - stored)} acknowledged spans lost"
    assert stored_after_outage, "ingest did not recover after the database came back"
