"""SIGKILL again and again under load: no acknowledged span lost, none stored twice, one call each.

test_crash.py kills the collector once. Here four real OTel SDK pipelines (BatchSpanProcessor
with OTLP exporters, two over HTTP and two over gRPC) send LLM spans without pause while the
collector is killed with SIGKILL at a random moment, CYCLES times, and restarted each time on
the same ports and database. The exporters' timeout outlasts a restart, so an export that was
committed but never answered (the kill came between the two) is sent again to the next
process, which must not store it a second time. Each restart is timed from process start to
/readyz 200 and must stay under RESTART_BOUND_SECONDS: a bound, not a benchmark
(scripts/bench_restart.py measures restarts).

At the end every acknowledged span is stored exactly once, every stored span is one that was
sent, and every trace (one LLM call, sometimes with the SDK's own span beneath it) is
exactly one call.

On DuckDB the WAL is checkpointed past 1MB instead of 256MB, so kills land before, during
and after checkpoints, not only into a growing WAL; test_crash.py kills at the default.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from breakeven.collector.store.engine import make_engine
from tests.conftest import postgres_schema
from tests.reliability.server import ServerProcess
from tests.reliability.test_crash import RecordingExporter, _load

pytestmark = pytest.mark.slow

RESTART_BOUND_SECONDS = 30.0
EXPORT_TIMEOUT_SECONDS = 20  # the exporters retry for this long: across a restart
CHECKPOINT_THRESHOLD = "1MB"  # DuckDB: a checkpoint every second or so of this load
# Each SDK drops spans past this many queued (never sent, so never expected): while the
# collector is down the load outruns the exports, and the backlog is flushed at the end.
QUEUE_SPANS = 4096


@contextlib.contextmanager
def _database(dialect: str, tmp_path: Path) -> Iterator[str]:
    if dialect == "postgresql":
        with postgres_schema("soak") as url:
            yield url
    else:
        yield f"duckdb:///{tmp_path / 'ledger.duckdb'}"


class SdkLoad:
    """Four SDK pipelines, each fed by its own thread until stop(); remembers what was acknowledged."""

    def __init__(self, server: ServerProcess) -> None:
        self.recorders: list[RecordingExporter] = []
        self.providers: list[TracerProvider] = []
        for n, protocol in enumerate(("http", "grpc", "http", "grpc")):
            inner = (
                HttpSpanExporter(endpoint=f"{server.otlp_http}/v1/traces", timeout=EXPORT_TIMEOUT_SECONDS)
                if protocol == "http"
                else GrpcSpanExporter(endpoint=server.otlp_grpc, insecure=True, timeout=EXPORT_TIMEOUT_SECONDS)
            )
            recorder = RecordingExporter(inner)
            provider = TracerProvider(resource=Resource.create({"service.name": f"soak-{n}"}))
            provider.add_span_processor(
                BatchSpanProcessor(
                    recorder, max_queue_size=QUEUE_SPANS, schedule_delay_millis=50, max_export_batch_size=256
                )
            )
            self.recorders.append(recorder)
            self.providers.append(provider)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=_load, args=(p, self._stop, f"soak-{n}")) for n, p in enumerate(self.providers)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def acked_count(self) -> int:
        return sum(len(r.acked) for r in self.recorders)

    def wait_for_acks_above(self, count: int, within: float) -> None:
        """Poll until more than count spans were acknowledged: the load runs against this process."""
        deadline = time.monotonic() + within
        while self.acked_count() <= count:
            assert time.monotonic() < deadline, f"no export acknowledged within {within:.0f} s of a restart"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the threads, then export what the SDKs still hold and shut them down."""
        self._stop.set()
        for t in self._threads:
            t.join()
        for provider in self.providers:
            provider.force_flush(60_000)
            provider.shutdown()

    def acked(self) -> set[tuple[str, str]]:
        return set().union(*(r.acked for r in self.recorders))

    def sent(self) -> set[tuple[str, str]]:
        return set().union(*(r.sent for r in self.recorders))


def _wal_bytes(db_url: str) -> int | None:
    if not db_url.startswith("duckdb:///"):
        return None
    wal = Path(db_url.removeprefix("duckdb:///") + ".wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.parametrize(
    ("dialect", "cycles"),
    [
        pytest.param("duckdb", 6, id="duckdb"),
        pytest.param("postgresql", 3, id="postgresql", marks=pytest.mark.postgres),
    ],
)
def test_repeated_sigkill_under_load_loses_no_acknowledged_span_and_stores_none_twice(
    dialect: str, cycles: int, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    with _database(dialect, tmp_path) as db_url:
        config = tmp_path / "breakeven.toml"
        config.write_text(f'duckdb_checkpoint_threshold = "{CHECKPOINT_THRESHOLD}"\n')
        server = ServerProcess(db_url, tmp_path, extra_args=("--config", str(config), "--log-level", "warning"))
        server.start()
        load = SdkLoad(server)
        load.start()
        restarts: list[float] = []
        kills: list[tuple[int, int | None]] = []  # (spans acknowledged, WAL bytes) at each kill
        try:
            for _ in range(cycles):
                load.wait_for_acks_above(kills[-1][0] if kills else 0, within=60)
                time.sleep(rng.uniform(0.0, 2.5))  # the moment of the kill: anywhere in the load
                kills.append((load.acked_count(), _wal_bytes(db_url)))
                server.kill()
                started = time.monotonic()
                server.start(ready_within=RESTART_BOUND_SECONDS)
                restarts.append(time.monotonic() - started)
            load.wait_for_acks_above(kills[-1][0], within=60)
        finally:
            load.stop()
        assert server.stop() == 0

        engine = make_engine(db_url)
        with engine.connect() as conn:
            spans = conn.execute(sa.text("SELECT trace_id, span_id, count(*) FROM llm_spans GROUP BY 1, 2")).all()
            call_rows = conn.execute(sa.text("SELECT trace_id, span_id FROM calls")).all()
        engine.dispose()

    acked, sent = load.acked(), load.sent()
    stored = {(t, s) for t, s, _ in spans}
    print(
        f"\n{dialect} (seed {seed}): {cycles} kills at {[n for n, _ in kills]} spans acknowledged"
        f" (WAL bytes {[w for _, w in kills]}); restarts to /readyz 200 in"
        f" {', '.join(f'{s:.2f}' for s in restarts)} s; {len(acked)} spans acknowledged,"
        f" {len(sent)} sent, {len(stored)} stored, {len(call_rows)} calls"
    )
    assert max(restarts) < RESTART_BOUND_SECONDS
    assert [row for row in spans if row[2] > 1] == [], f"spans stored twice (seed {seed})"
    assert acked - stored == set(), f"{len(acked - stored)} acknowledged spans lost (seed {seed})"
    assert stored <= sent, f"{len(stored - sent)} stored spans were never sent (seed {seed})"

    calls_per_trace = Counter(t for t, _ in call_rows)
    spans_per_trace = Counter(t for t, _ in stored)
    assert [t for t, n in calls_per_trace.items() if n > 1] == [], f"a call stored twice (seed {seed})"
    assert set(calls_per_trace) == set(spans_per_trace), (
        f"a trace without its call, or a call without spans (seed {seed})"
    )
    single = {(t, s) for t, s in stored if spans_per_trace[t] == 1}
    assert single <= set(call_rows), f"a single-span trace whose call is not its span (seed {seed})"
