"""Three collector processes, one PostgreSQL: nothing lost, nothing stored twice.

Real `breakeven serve` processes, real OTel SDK exporters (BatchSpanProcessor over
OTLP/HTTP and gRPC), concurrently: every span of the "fan-out" service is exported to all
three collectors (the same spans three times, as a misrouted or retried fleet would), and
each of three other services sends its own spans to one collector.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from breakeven.collector.store.engine import make_engine
from tests.conftest import postgres_schema
from tests.otel import chat_attributes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CALLS_PER_SENDER = 150  # each a nested pair: instrumentation span + SDK span, one call


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    with postgres_schema("scale") as url:
        yield url


def _breakeven(*args: str) -> list[str]:
    return [sys.executable, "-m", "breakeven.collector.cli", *args]


@pytest.fixture
def three_collectors(pg_schema_url: str, tmp_path: Path) -> Iterator[list[dict[str, int]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKEVEN_")}
    subprocess.run(_breakeven("migrate", "--db", pg_schema_url), check=True, env=env, timeout=60)
    procs, ports = [], []
    for i in range(3):
        p = {"http": _free_port(), "grpc": _free_port(), "api": _free_port()}
        log = open(tmp_path / f"collector{i}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                _breakeven(
                    "serve",
                    "--db",
                    pg_schema_url,
                    "--no-migrate",
                    "--otlp-http-port",
                    str(p["http"]),
                    "--otlp-grpc-port",
                    str(p["grpc"]),
                    "--http-port",
                    str(p["api"]),
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        ports.append(p)
    try:
        for p in ports:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{p['api']}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "collector did not become ready"
                time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            assert proc.wait(timeout=30) == 0


def _exporter(port: dict[str, int], protocol: str) -> object:
    if protocol == "http":
        return HttpSpanExporter(endpoint=f"http://127.0.0.1:{port['http']}/v1/traces")
    return GrpcSpanExporter(endpoint=f"127.0.0.1:{port['grpc']}", insecure=True)


def _send_calls(provider: TracerProvider, tokens: int) -> None:
    tracer = provider.get_tracer("tests.scale", "1.0")
    for i in range(CALLS_PER_SENDER):
        usage = {"gen_ai.usage.input_tokens": tokens + i, "gen_ai.usage.output_tokens": 10}
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=chat_attributes(**usage)):
            with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=chat_attributes(**usage)):
                pass


def test_three_collectors_one_database_lose_nothing_and_store_nothing_twice(
    three_collectors: list[dict[str, int]], pg_schema_url: str
) -> None:
    providers: list[tuple[TracerProvider, int]] = []
    fan_out = TracerProvider(resource=Resource.create({"service.name": "fan-out"}))
    for port, protocol in zip(three_collectors, ("http", "grpc", "http"), strict=True):
        fan_out.add_span_processor(BatchSpanProcessor(_exporter(port, protocol), max_export_batch_size=64))
    providers.append((fan_out, 1000))
    for n, (port, protocol) in enumerate(zip(three_collectors, ("grpc", "http", "grpc"), strict=True)):
        own = TracerProvider(resource=Resource.create({"service.name": f"own-{n}"}))
        own.add_span_processor(BatchSpanProcessor(_exporter(port, protocol), max_export_batch_size=64))
        providers.append((own, 2000 + 1000 * n))
    threads = [threading.Thread(target=_send_calls, args=pair) for pair in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for provider, _ in providers:
        assert provider.force_flush(30_000)
        provider.shutdown()

    engine = make_engine(pg_schema_url)
    with engine.connect() as conn:
        spans = conn.execute(sa.text("SELECT service, count(*) FROM llm_spans GROUP BY service ORDER BY 1")).all()
        calls = conn.execute(
            sa.text(
                "SELECT service, count(*), sum(input_tokens), max(span_count) FROM calls GROUP BY service ORDER BY 1"
            )
        ).all()
        counters = dict(conn.execute(sa.text("SELECT name, sum(value) FROM ingest_counters GROUP BY name")).all())
    engine.dispose()
    services = ["fan-out", "own-0", "own-1", "own-2"]
    assert spans == [(s, 2 * CALLS_PER_SENDER) for s in services]
    n = CALLS_PER_SENDER
    expected_tokens = {
        s: n * base + n * (n - 1) // 2 for s, base in zip(services, (1000, 2000, 3000, 4000), strict=True)
    }
    assert [(s, c, int(t), m) for s, c, t, m in calls] == [(s, n, expected_tokens[s], 2) for s in services]
    # The counters add up across collectors: each span stored once, each re-sent copy ignored.
    assert counters["llm_spans_stored"] == 4 * 2 * n
    assert counters["calls_stored"] == 4 * n
    assert counters["duplicates_ignored"] == 2 * 2 * n  # fan-out's spans reached three collectors


def test_one_call_split_across_two_collectors_is_still_one_call(
    three_collectors: list[dict[str, int]], pg_schema_url: str
) -> None:
    """The instrumentation span reaches one collector, the SDK span beneath it another
    (a sidecar and a central deployment, say). The second looks the trace up in the shared
    database instead of trusting its own memory, and merges."""
    from opentelemetry import trace

    def provider(port: dict[str, int], service: str) -> TracerProvider:
        p = TracerProvider(resource=Resource.create({"service.name": service}))
        p.add_span_processor(BatchSpanProcessor(_exporter(port, "http"), schedule_delay_millis=60_000))
        return p

    app, sdk = provider(three_collectors[0], "app"), provider(three_collectors[1], "app")
    usage = {"gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 50}
    outer_tracer, inner_tracer = app.get_tracer("instrumentation"), sdk.get_tracer("sdk")
    for _ in range(20):
        with outer_tracer.start_as_current_span("chat", kind=SpanKind.CLIENT, attributes=chat_attributes(**usage)):
            context = trace.set_span_in_context(trace.get_current_span())
            inner = inner_tracer.start_span(
                "chat", context=context, kind=SpanKind.CLIENT, attributes=chat_attributes(**usage)
            )
            inner.end()
    assert app.force_flush(30_000)  # the outer spans are stored first ...
    assert sdk.force_flush(30_000)  # ... then their inner spans reach another collector
    app.shutdown()
    sdk.shutdown()
    engine = make_engine(pg_schema_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*), sum(input_tokens), min(span_count) FROM calls")).one()
    engine.dispose()
    assert tuple(rows) == (20, 20 * 500, 2)
