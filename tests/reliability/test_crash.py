"""SIGKILL in the middle of sustained load: every acknowledged span is in the ledger, once.

Several real OTel SDK pipelines (BatchSpanProcessor + OTLP exporters over HTTP and gRPC,
each on its own thread) send LLM spans without pause. A wrapper around each exporter
records the spans of every export the collector answered with success. The collector is
killed with SIGKILL mid-load and restarted on the same ports and DuckDB file; the SDKs
retry what failed. At the end every acknowledged span must be stored exactly once, and
every stored span must be one that was sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from breakeven.collector.store.engine import make_engine
from tests.otel import chat_attributes
from tests.reliability.server import ServerProcess

pytestmark = pytest.mark.slow


def stored_counts(db: Path) -> tuple[dict[tuple[str, str], int], int]:
    """Each span stored in the DuckDB ledger with how many times it is stored, and how many
    calls are stored twice."""
    engine = make_engine(f"duckdb:///{db}")
    with engine.connect() as conn:
        spans = conn.execute(sa.text("SELECT trace_id, span_id, count(*) FROM llm_spans GROUP BY 1, 2")).all()
        twice_calls = conn.execute(
            sa.text("SELECT count(*) FROM (SELECT trace_id, span_id FROM calls GROUP BY 1, 2 HAVING count(*) > 1)")
        ).scalar()
    engine.dispose()
    return {(t, s): n for t, s, n in spans}, int(twice_calls or 0)


class RecordingExporter(SpanExporter):
    """Delegates to a real exporter; remembers the spans of acknowledged exports."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.acked: set[tuple[str, str]] = set()
        self.sent: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        keys = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}") for s in spans}
        with self._lock:
            self.sent |= keys
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            with self._lock:
                self.acked |= keys
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _load(provider: TracerProvider, stop: threading.Event, service: str) -> None:
    tracer = provider.get_tracer("tests.crash")
    i = 0
    while not stop.is_set():
        i += 1
        usage = {"gen_ai.usage.input_tokens": 100 + i % 50, "gen_ai.usage.output_tokens": 7}
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=chat_attributes(**usage)):
            if i % 5 == 0:  # some calls with the SDK's own span beneath: merged into one call
                with tracer.start_as_current_span("chat", kind=SpanKind.CLIENT, attributes=chat_attributes(**usage)):
                    pass
        if i % 50 == 0:
            time.sleep(0.01)


def test_sigkill_under_load_loses_no_acknowledged_span_and_stores_none_twice(tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    server = ServerProcess(f"duckdb:///{db}", tmp_path)
    server.start()
    recorders: list[RecordingExporter] = []
    providers: list[TracerProvider] = []
    for n, protocol in enumerate(("http", "grpc", "http", "grpc")):
        inner = (
            HttpSpanExporter(endpoint=f"{server.otlp_http}/v1/traces", timeout=5)
            if protocol == "http"
            else GrpcSpanExporter(endpoint=server.otlp_grpc, insecure=True, timeout=5)
        )
        recorder = RecordingExporter(inner)
        provider = TracerProvider(resource=Resource.create({"service.name": f"load-{n}"}))
        provider.add_span_processor(
            BatchSpanProcessor(recorder, max_queue_size=100_000, schedule_delay_millis=50, max_export_batch_size=256)
        )
        recorders.append(recorder)
        providers.append(provider)
    stop = threading.Event()
    threads = [threading.Thread(target=_load, args=(p, stop, f"load-{n}")) for n, p in enumerate(providers)]
    for t in threads:
        t.start()
    try:
        time.sleep(3)
        acked_before_kill = sum(len(r.acked) for r in recorders)
        server.kill()
        time.sleep(1)
        server.start()
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    for provider in providers:
        provider.force_flush(60_000)
        provider.shutdown()
    assert server.stop() == 0

    acked = set().union(*(r.acked for r in recorders))
    sent = set().union(*(r.sent for r in recorders))
    assert acked_before_kill > 500, "the load did not get going before the kill"
    stored, twice_calls = stored_counts(db)
    stored_keys = set(stored)
    assert not [k for k, n in stored.items() if n > 1], "a span was stored twice"
    assert twice_calls == 0, "a call was stored twice"
    assert acked - stored_keys == set(), f"{len(acked - stored_keys)} acknowledged spans lost"
    assert stored_keys <= sent
