"""Three collectors on one PostgreSQL make the ledger one collector makes, whatever the routing.

Three real `breakeven serve` processes share a PostgreSQL schema (migrated once, served
with --no-migrate, as docs/operations.md says); a fourth, alone on DuckDB, is the
reference. Every call's spans are sent to the three by every assignment of span to
collector and in every arrival order:
- a self-hosted call's two spans (the app's client span, the engine's server span) and
  its three (the app's, the router's, the engine's), one after another and at the same
  moment;
- one call traced in two traces (a client's own tracing beside the instrumentation's),
  one after another: linked by the provider's response id; a failed call, and a Mistral
  client's own span, that no response id links (collector/calls/halves.py).
Then a stress run: many calls, spans spread over the collectors at random, sent at once
from several threads. Each time the shared ledger must hold, call for call, what the
reference holds: the same calls, members, fields and prices, and each span once.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.demo.spans import key_value
from breakeven.collector.records import PromptHashHint, Work
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import LedgerWriter
from tests.conftest import postgres_schema
from tests.reliability.server import ServerProcess
from tests.spans import llm

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SERVE_ARGS = ("--decode-processes", "1")
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass(frozen=True)
class SpanPlan:
    """One span of a call: who sends it and what it says (times in ms from the call's start)."""

    name: str
    service: str
    scope: str
    kind: int
    begin_ms: int
    end_ms: int
    attributes: dict[str, Any]
    trace: int = 0  # which of the call's traces (a response traced twice has two)
    parent: str | None = None  # the name of its parent span in the same trace
    failed: bool = False


USAGE = {"gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 100}
APP = SpanPlan(
    "app", "web", "opentelemetry.instrumentation.openai", Span.SPAN_KIND_CLIENT, 0, 1000,
    {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "llama-70b",
     "server.address": "router.internal", "breakeven.team": "growth", **USAGE},
)  # fmt: skip
ROUTER = SpanPlan(
    "router", "router", "litellm", Span.SPAN_KIND_CLIENT, 10, 980,
    {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "llama-70b",
     "server.address": "10.0.0.7", "server.port": 8000, **USAGE},
    parent="app",
)  # fmt: skip
ENGINE = SpanPlan(
    "engine", "vllm-70b", "vllm", Span.SPAN_KIND_SERVER, 20, 970,
    {"gen_ai.response.model": "meta-llama/Llama-3.3-70B-Instruct-FP8", "gen_ai.usage.prompt_tokens": 900,
     "gen_ai.usage.completion_tokens": 100, "gen_ai.latency.time_to_first_token": 0.040625,
     "gen_ai.latency.e2e": 0.95},
    parent="router",
)  # fmt: skip
INSTRUMENTED = SpanPlan(
    "instrumented", "support", "opentelemetry.instrumentation.anthropic", Span.SPAN_KIND_CLIENT, 0, 1000,
    {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
     "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_{call}", **USAGE},
)  # fmt: skip
SELF_TRACED = SpanPlan(
    "self-traced", "support", "com.anthropic.sdk.python", Span.SPAN_KIND_CLIENT, 5, 990,
    {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
     "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.model": "claude-sonnet-4-5-20250929",
     "gen_ai.response.id": "msg_{call}", "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 100,
     "gen_ai.usage.cache_read_input_tokens": 0},
    trace=1,
)  # fmt: skip


def _shape(*plans: SpanPlan) -> tuple[SpanPlan, ...]:
    return plans


FAILED = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
}
FAILED_OUTER = SpanPlan(
    "instrumented", "checkout", "opentelemetry.instrumentation.anthropic", Span.SPAN_KIND_CLIENT, 0, 1000,
    {**FAILED, "error.type": "InternalServerError"}, failed=True,
)  # fmt: skip
FAILED_INNER = SpanPlan(
    "self-traced", "checkout", "com.anthropic.sdk.python", Span.SPAN_KIND_CLIENT, 5, 990,
    {**FAILED, "error.type": "api_error", "server.address": "127.0.0.1"}, trace=1, failed=True,
)  # fmt: skip
MISTRAL = {"gen_ai.provider.name": "mistral_ai", "gen_ai.request.model": "mistral-large-latest",
           "gen_ai.usage.input_tokens": 61, "gen_ai.usage.output_tokens": 27}  # fmt: skip
MISTRAL_OUTER = SpanPlan(
    "instrumented", "checkout", "opentelemetry.instrumentation.mistralai", Span.SPAN_KIND_CLIENT, 0, 1000,
    {**MISTRAL, "gen_ai.operation.name": "chat", "gen_ai.response.id": "{call}"},
)  # fmt: skip
MISTRAL_SDK = SpanPlan(
    "self-traced", "checkout", "mistralai_sdk_tracer", Span.SPAN_KIND_CLIENT, 5, 990,
    {**MISTRAL, "server.address": "127.0.0.1:32899"}, trace=1,
)  # fmt: skip

# A self-hosted call of two spans: the app's span straight to the engine.
TWO_SPANS = _shape(APP, SpanPlan(**{**ENGINE.__dict__, "parent": "app"}))
THREE_SPANS = _shape(APP, ROUTER, ENGINE)
TWO_TRACES = _shape(INSTRUMENTED, SELF_TRACED)
FAILED_TWICE = _shape(FAILED_OUTER, FAILED_INNER)
MISTRAL_TWICE = _shape(MISTRAL_OUTER, MISTRAL_SDK)


@dataclass
class Call:
    """One call to send: its spans with their ids, and which collector each goes to, in order."""

    spans: list[tuple[SpanPlan, bytes, bytes, bytes | None]]  # plan, trace id, span id, parent id
    to: list[int]  # collector index per span, in arrival order
    order: list[int]  # span indexes in arrival order
    process: str  # the sending process (service.instance.id) of all its spans: one app process per call


def _make_call(shape: Sequence[SpanPlan], order: Sequence[int], to: Sequence[int]) -> Call:
    tag = uuid.uuid4().hex[:12]
    traces = {n: os.urandom(16) for n in {p.trace for p in shape}}
    ids = {p.name: os.urandom(8) for p in shape}
    spans = []
    for plan in shape:
        attrs = {k: v.format(call=tag) if isinstance(v, str) else v for k, v in plan.attributes.items()}
        plan = SpanPlan(**{**plan.__dict__, "attributes": attrs})
        spans.append((plan, traces[plan.trace], ids[plan.name], ids[plan.parent] if plan.parent else None))
    return Call(spans, list(to), list(order), tag)


def _export(call: Call, index: int, start_ns: int) -> bytes:
    """One span of a call as an OTLP export of its own."""
    return ExportTraceServiceRequest(resource_spans=[_resource_spans(call, index, start_ns)]).SerializeToString()


def _export_many(spans: Sequence[tuple[Call, int]], start_ns: int) -> bytes:
    """Spans of several calls (each its own resource: its own process) as one OTLP export."""
    return ExportTraceServiceRequest(
        resource_spans=[_resource_spans(c, i, start_ns) for c, i in spans]
    ).SerializeToString()


def _send_to_reference(fleet: Fleet, spans: Sequence[tuple[Call, int]], start_ns: int) -> None:
    """The reference gets the spans in this order, 200 to an export. Grouping changes nothing it
    makes of them: the spans of one trace merge alike in any grouping, and the rounds of
    _send_in_rounds hold one span of each call, so a call traced in two traces still comes
    as two exports, one after another."""
    for lo in range(0, len(spans), 200):
        fleet.send(fleet.reference, _export_many(spans[lo : lo + 200], start_ns))


def _resource_spans(call: Call, index: int, start_ns: int) -> ResourceSpans:
    plan, trace_id, span_id, parent = call.spans[index]
    span = Span(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent or b"", name=f"{plan.name} chat", kind=plan.kind,
        start_time_unix_nano=start_ns + plan.begin_ms * 1_000_000, end_time_unix_nano=start_ns + plan.end_ms * 1_000_000,
        attributes=[key_value(k, v) for k, v in plan.attributes.items()],
    )  # fmt: skip
    if plan.failed:
        span.status.code = span.status.STATUS_CODE_ERROR
    resource = Resource(
        attributes=[key_value("service.name", plan.service), key_value("service.instance.id", call.process)]
    )
    scope = ScopeSpans(spans=[span])
    scope.scope.name = plan.scope
    return ResourceSpans(resource=resource, scope_spans=[scope])


def _calls_of(shape: Sequence[SpanPlan]) -> list[tuple[list[int], list[int]]]:
    """Every (arrival order, assignment of each arriving span to one of three collectors)."""
    n = len(shape)
    return [
        (list(order), list(to))
        for order in itertools.permutations(range(n))
        for to in itertools.product(range(3), repeat=n)
    ]


@dataclass
class Fleet:
    shared: list[ServerProcess]
    reference: ServerProcess
    clients: dict[str, httpx.Client]

    def send(self, server: ServerProcess, body: bytes) -> None:
        answer = self.clients[server.otlp_http].post(f"{server.otlp_http}/v1/traces", content=body, headers=PROTOBUF)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    logs = tmp_path_factory.mktemp("shared-postgresql")
    with postgres_schema("shared") as url:
        engine = make_engine(url)
        migrate(engine)  # once, as the docs say; the collectors serve with --no-migrate
        engine.dispose()
        shared = [ServerProcess(url, logs / f"c{i}", (*SERVE_ARGS, "--no-migrate")) for i in range(3)]
        reference = ServerProcess(f"duckdb:///{logs / 'reference.duckdb'}", logs / "reference", SERVE_ARGS)
        servers = [*shared, reference]
        for server in servers:
            server.log_dir.mkdir()
            server.start(ready_within=60)
        clients = {s.otlp_http: httpx.Client(timeout=30) for s in servers}
        try:
            yield Fleet(shared, reference, clients)
        finally:
            for client in clients.values():
                client.close()
            for server in servers:
                server.stop()


def _send_in_rounds(fleet: Fleet, calls: list[Call], start_ns: int) -> None:
    """One after another: the k-th span of every call, each to its collector, all answered
    before any call's next span is sent; the reference gets each in the same order."""
    for k in range(max(len(c.order) for c in calls)):
        sends = [(fleet.shared[c.to[k]], _export(c, c.order[k], start_ns)) for c in calls if k < len(c.order)]
        with ThreadPoolExecutor(3) as pool:
            for server_index in range(3):
                mine = [body for server, body in sends if server is fleet.shared[server_index]]
                pool.submit(lambda bodies, s=fleet.shared[server_index]: [fleet.send(s, b) for b in bodies], mine)
        _send_to_reference(fleet, [(c, c.order[k]) for c in calls if k < len(c.order)], start_ns)


def _send_at_once(fleet: Fleet, calls: list[Call], start_ns: int) -> None:
    """At the same moment: each collector's thread sends its spans of every call, call by call,
    the three threads released together; the reference gets them all after."""
    barrier = threading.Barrier(3)

    def run(server_index: int) -> None:
        server = fleet.shared[server_index]
        bodies = [
            _export(c, c.order[k], start_ns) for c in calls for k in range(len(c.order)) if c.to[k] == server_index
        ]
        barrier.wait()
        for body in bodies:
            fleet.send(server, body)

    with ThreadPoolExecutor(3) as pool:
        for failure in [pool.submit(run, i) for i in range(3)]:
            failure.result()
    _send_to_reference(fleet, [(c, k) for c in calls for k in c.order], start_ns)


def _ledger(server: ServerProcess, trace_ids: set[str]) -> list[dict[str, Any]]:
    """The calls of these traces as the API shows them, received_at aside, in key order."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"http://127.0.0.1:{server.api_port}/api/v1/calls", params=params, timeout=30).json()
        out.extend(page["calls"])
        cursor = page["next"]
        if cursor is None:
            break
    return sorted(
        ({k: v for k, v in call.items() if k != "received_at"} for call in out if call["trace_id"] in trace_ids),
        key=lambda c: (c["trace_id"], c["span_id"]),
    )


def _span_rows(url: str, trace_ids: set[str]) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT trace_id, span_id FROM llm_spans")).all()
    finally:
        engine.dispose()
    return sorted((t, s) for t, s in rows if t in trace_ids)


def _trace_ids(calls: list[Call]) -> set[str]:
    return {trace_id.hex() for call in calls for _, trace_id, _, _ in call.spans}


def _assert_same_ledger(fleet: Fleet, calls: list[Call]) -> None:
    trace_ids = _trace_ids(calls)
    shared = _ledger(fleet.shared[0], trace_ids)
    reference = _ledger(fleet.reference, trace_ids)
    assert len(shared) == len(reference)
    for mine, theirs in zip(shared, reference, strict=True):
        assert mine == theirs
    for other in fleet.shared[1:]:  # every collector reads the one ledger
        assert _ledger(other, trace_ids) == shared
    sent = sorted((trace_id.hex(), span_id.hex()) for c in calls for _, trace_id, span_id, _ in c.spans)
    assert _span_rows(fleet.shared[0].db_url, trace_ids) == sent  # each span once


def _start_ns() -> int:
    return time.time_ns() - 600 * 10**9


@pytest.mark.parametrize(
    "shape",
    [TWO_SPANS, THREE_SPANS, TWO_TRACES, FAILED_TWICE, MISTRAL_TWICE],
    ids=["two-spans", "three-spans", "one-response-two-traces", "failed-two-traces", "mistral-two-traces"],
)
def test_one_after_another_every_order_and_assignment(fleet: Fleet, shape: tuple[SpanPlan, ...]) -> None:
    calls = [_make_call(shape, order, to) for order, to in _calls_of(shape)]
    _send_in_rounds(fleet, calls, _start_ns())
    _assert_same_ledger(fleet, calls)
    assert len(_ledger(fleet.reference, _trace_ids(calls))) == len(calls)  # one call each


@pytest.mark.parametrize("shape", [TWO_SPANS, THREE_SPANS], ids=["two-spans", "three-spans"])
def test_at_the_same_moment_every_order_and_assignment(fleet: Fleet, shape: tuple[SpanPlan, ...]) -> None:
    calls = [_make_call(shape, order, to) for order, to in _calls_of(shape) if len(set(to)) > 1]
    _send_at_once(fleet, calls, _start_ns())
    _assert_same_ledger(fleet, calls)
    assert len(_ledger(fleet.reference, _trace_ids(calls))) == len(calls)


def test_a_stress_run_of_calls_spread_at_random(fleet: Fleet) -> None:
    rng = random.Random(23)
    calls = []
    for _ in range(400):
        shape = rng.choice([TWO_SPANS, THREE_SPANS])
        order = rng.sample(range(len(shape)), len(shape))
        calls.append(_make_call(shape, order, [rng.randrange(3) for _ in shape]))
    start_ns = _start_ns()
    work = [(c.to[k], _export(c, c.order[k], start_ns)) for c in calls for k in range(len(c.order))]
    rng.shuffle(work)

    def run(part: list[tuple[int, bytes]]) -> None:
        for server_index, body in part:
            fleet.send(fleet.shared[server_index], body)

    with ThreadPoolExecutor(6) as pool:
        for done in [pool.submit(run, work[i::6]) for i in range(6)]:
            done.result()
    _send_to_reference(fleet, [(c, k) for c in calls for k in c.order], start_ns)
    _assert_same_ledger(fleet, calls)
    assert len(_ledger(fleet.reference, _trace_ids(calls))) == len(calls)


def test_a_prompt_hash_parked_at_one_collector_reaches_the_span_another_stores() -> None:
    """A log record's prompt hash that comes before its span, to another collector: parked in
    the database (prompt_hash_hints), not in the first collector's memory, and used once."""
    with postgres_schema("hints") as url:
        engine = make_engine(url)
        migrate(engine)
        one, two = (Pipeline(LedgerWriter(engine), 1000, 100, 10) for _ in range(2))
        for pipeline in (one, two):
            pipeline.start()
        try:
            span = dataclasses.replace(llm("a" * 16), trace_id="7" * 32)
            one.submit(Work(hints=[PromptHashHint(span.trace_id, span.span_id, "p" * 64, span.start_ns)])).result(10)
            two.submit(Work(spans=[span])).result(10)
        finally:
            for pipeline in (one, two):
                pipeline.stop()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT prompt_hash FROM calls")).all() == [("p" * 64,)]
            assert conn.execute(sa.text("SELECT prompt_hash FROM llm_spans")).all() == [("p" * 64,)]
            assert conn.execute(sa.text("SELECT count(*) FROM prompt_hash_hints")).scalar() == 0
        engine.dispose()
