"""The pipeline forgets traces (bounded cache) but not what it stored: evicted traces still
de-duplicate, merge late spans and take log-borne prompt hashes, from the database, on
both dialects (DuckDB has no keys since migration 0002, so this is the only guard there)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from breakeven.collector.calls.merge import calls_of_trace
from breakeven.collector.calls.pipeline import TRACES_PER_LOCKED_COMMIT, Pipeline, _parts
from breakeven.collector.calls.tracecache import SeenTraces
from breakeven.collector.records import LlmSpan, PromptHashHint, Work, WriteBatch
from breakeven.collector.store.engine import migrate
from breakeven.collector.store.writer import TRACE_LOOKUP_WINDOW_NS, LedgerWriter
from tests.spans import T0, llm

T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32


@pytest.fixture
def writer(engine: sa.Engine) -> LedgerWriter:
    migrate(engine)
    return LedgerWriter(engine)


@pytest.fixture
def pipeline(writer: LedgerWriter) -> Iterator[Pipeline]:
    running = _start(writer)
    yield running
    running.stop()


def _start(writer: LedgerWriter) -> Pipeline:
    running = Pipeline(writer, queue_max_spans=1000, batch_max_spans=100, cache_traces=1)
    running.start()
    return running


def _send(pipeline: Pipeline, *spans: LlmSpan, hints: tuple[PromptHashHint, ...] = ()) -> None:
    pipeline.submit(Work(spans=list(spans), hints=list(hints))).result(timeout=10)


def _span(trace_id: str, span_id: str, parent: str | None = None, **fields: object) -> LlmSpan:
    return dataclasses.replace(llm(span_id, parent, **fields), trace_id=trace_id)  # type: ignore[arg-type]


def _evict(pipeline: Pipeline, trace_id: str = T3) -> None:
    """The cache holds one trace: sending another pushes the previous one out."""
    _send(pipeline, _span(trace_id, f"e{trace_id[:15]}"))


def _rows(engine: sa.Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def _counter(engine: sa.Engine, name: str) -> int:
    rows = _rows(engine, f"SELECT sum(value) FROM ingest_counters WHERE name = '{name}'")
    return int(rows[0][0] or 0)


def test_resent_span_of_an_evicted_trace_is_ignored(pipeline: Pipeline, engine: sa.Engine) -> None:
    span = _span(T1, "a" * 16)
    _send(pipeline, span)
    _evict(pipeline)
    assert pipeline.cache.get(T1) is None
    _send(pipeline, dataclasses.replace(span, attributes={}))
    assert _rows(engine, f"SELECT count(*) FROM llm_spans WHERE trace_id = '{T1}'") == [(1,)]
    assert _rows(engine, f"SELECT count(*) FROM calls WHERE trace_id = '{T1}'") == [(1,)]
    assert _counter(engine, "duplicates_ignored") == 1


def test_late_nested_span_of_an_evicted_trace_merges_into_its_call(pipeline: Pipeline, engine: sa.Engine) -> None:
    _send(pipeline, _span(T1, "a" * 16, service="checkout"))
    _evict(pipeline)
    _send(pipeline, _span(T1, "b" * 16, "a" * 16, start=5, end=990, service="sdk", response_model="gpt-4o-2024-08-06"))
    calls = _rows(engine, f"SELECT span_id, service, response_model, span_count FROM calls WHERE trace_id = '{T1}'")
    assert calls == [("a" * 16, "checkout", "gpt-4o-2024-08-06", 2)]
    assert _counter(engine, "calls_stored") == 2  # T1's call and the evicting trace's, T1 counted once


def test_log_hint_for_an_evicted_trace_updates_the_stored_span_and_call(pipeline: Pipeline, engine: sa.Engine) -> None:
    _send(pipeline, _span(T1, "a" * 16))
    _evict(pipeline)
    _send(pipeline, hints=(PromptHashHint(T1, "a" * 16, "h" * 64, T0 + 200_000_000),))
    assert _rows(engine, f"SELECT prompt_hash FROM calls WHERE trace_id = '{T1}'") == [("h" * 64,)]
    assert _rows(engine, f"SELECT prompt_hash FROM llm_spans WHERE trace_id = '{T1}'") == [("h" * 64,)]


def test_hint_before_its_span_waits_for_it(pipeline: Pipeline, engine: sa.Engine) -> None:
    _send(pipeline, hints=(PromptHashHint(T2, "c" * 16, "p" * 64, T0),))
    _send(pipeline, _span(T2, "c" * 16))
    assert _rows(engine, f"SELECT prompt_hash FROM calls WHERE trace_id = '{T2}'") == [("p" * 64,)]


def test_after_a_restart_resent_spans_are_still_ignored(writer: LedgerWriter, engine: sa.Engine) -> None:
    first = _start(writer)
    _send(first, _span(T1, "a" * 16), _span(T1, "b" * 16, "a" * 16, start=5, end=990))
    first.stop()
    second = _start(writer)  # an empty cache, the seen-filter warmed from the database
    try:
        _send(second, _span(T1, "b" * 16, "a" * 16, start=5, end=990))
    finally:
        second.stop()
    assert _rows(engine, f"SELECT count(*) FROM llm_spans WHERE trace_id = '{T1}'") == [(2,)]
    assert _rows(engine, f"SELECT span_count FROM calls WHERE trace_id = '{T1}'") == [(2,)]


def _store_aged(writer: LedgerWriter, *spans: LlmSpan, days: int) -> None:
    """Spans and their calls stored `days` ago, as by a collector that ran then."""
    batch = WriteBatch(new_spans=list(spans), calls=calls_of_trace(list(spans)))
    writer.write(batch, int(time.time() * 1e6) - days * 86_400 * 10**6)


@pytest.mark.parametrize("days", [1, 30, 400])
def test_a_span_resent_after_a_restart_is_ignored_whatever_its_age(
    writer: LedgerWriter, engine: sa.Engine, days: int
) -> None:
    """Stored long before the warm-up's window (6 h): the filter never held the trace."""
    ago_ms = (time.time_ns() - T0) // 1_000_000 - days * 86_400_000 - 60_000  # a minute before it was stored
    spans = [
        _span(T1, "a" * 16, start=ago_ms, end=ago_ms + 1000),
        _span(T1, "b" * 16, "a" * 16, start=ago_ms + 5, end=ago_ms + 990),
    ]
    _store_aged(writer, *spans, days=days)
    running = _start(writer)
    try:
        _send(running, *spans)  # an exporter's retry after a long outage, a replay from a file
        _send(running, spans[1])
    finally:
        running.stop()
    assert _rows(engine, f"SELECT count(*) FROM llm_spans WHERE trace_id = '{T1}'") == [(2,)]
    assert _rows(engine, f"SELECT span_count FROM calls WHERE trace_id = '{T1}'") == [(2,)]
    assert _counter(engine, "duplicates_ignored") == 3


def test_a_span_resent_after_its_trace_left_the_seen_filter_is_ignored(writer: LedgerWriter, engine: sa.Engine) -> None:
    """The filter holds its newest traces in two generations; the oldest are dropped as it
    fills. A span of a dropped trace, sent again minutes later, is looked up, not taken as new."""
    running = Pipeline(writer, queue_max_spans=1000, batch_max_spans=100, cache_traces=1)
    running.seen = SeenTraces(bits_per_generation=1 << 12, capacity=4)
    running.start()
    recent_ms = (time.time_ns() - T0) // 1_000_000 - 60_000
    first = _span(T1, "a" * 16, start=recent_ms, end=recent_ms + 1000)
    try:
        _send(running, first)
        for n in range(20):  # five generations' worth of other traces
            _send(running, _span(f"{n + 10:032x}", "c" * 16, start=recent_ms, end=recent_ms + 1000))
        assert not running.seen.maybe_seen(T1)
        _send(running, first)
    finally:
        running.stop()
    assert _rows(engine, f"SELECT count(*) FROM llm_spans WHERE trace_id = '{T1}'") == [(1,)]
    assert _rows(engine, f"SELECT count(*) FROM calls WHERE trace_id = '{T1}'") == [(1,)]


def test_a_cached_trace_loads_spans_outside_the_stretch_it_covers(pipeline: Pipeline, engine: sa.Engine) -> None:
    """A long trace: its early call was evicted, its late call loaded back; then the early
    call's span is re-sent. The cached state never saw that stretch, so it asks again."""
    hours = 3 * TRACE_LOOKUP_WINDOW_NS // 1_000_000  # ms
    early = _span(T1, "a" * 16)
    _send(pipeline, early)
    _evict(pipeline)
    _send(pipeline, _span(T1, "b" * 16, start=hours, end=hours + 1000))  # loads T1 around `hours`
    _send(pipeline, dataclasses.replace(early, attributes={}))
    assert _rows(engine, f"SELECT count(*) FROM llm_spans WHERE trace_id = '{T1}'") == [(2,)]
    assert _rows(engine, f"SELECT count(*) FROM calls WHERE trace_id = '{T1}'") == [(2,)]


def test_one_response_in_two_traces_is_one_call_outer_kept_with_inner_counts(
    pipeline: Pipeline, engine: sa.Engine
) -> None:
    """OpenLLMetry's span and the anthropic SDK's own span: two roots, two traces, one response."""
    outer = _span(T1, "a" * 16, start=0, end=1000, response_id="msg_1", output_tokens=21, service="checkout")
    inner = _span(T2, "b" * 16, start=2, end=990, response_id="msg_1", output_tokens=20, reasoning_tokens=8)
    _send(pipeline, inner, outer)
    assert _rows(engine, "SELECT trace_id, service, output_tokens, reasoning_tokens FROM calls") == [
        (T1, "checkout", 20, 8)
    ]
    assert _rows(engine, "SELECT count(*) FROM llm_spans") == [(2,)]
    later = _span(T3, "c" * 16, start=1, end=995, response_id="msg_1")  # a third view, in a later export
    _send(pipeline, later)
    assert _rows(engine, "SELECT count(*) FROM calls") == [(1,)]
    assert _counter(engine, "calls_stored") == 1
    assert _counter(engine, "spans_merged") == 2


def test_a_reused_response_id_alone_merges_nothing(pipeline: Pipeline, engine: sa.Engine) -> None:
    """Fake servers and replayed fixtures reuse ids: without nesting in time, two calls stay two."""
    first = _span(T1, "a" * 16, start=0, end=1000, response_id="chatcmpl-fixed")
    second = _span(T2, "b" * 16, start=5000, end=6000, response_id="chatcmpl-fixed")
    _send(pipeline, first, second)
    _send(pipeline, _span(T3, "c" * 16, start=9000, end=9500, response_id="chatcmpl-fixed"))
    assert _rows(engine, "SELECT count(*) FROM calls") == [(3,)]


def _failed(trace_id: str, span_id: str, start: int, end: int, sdk: bool = False, **fields: object) -> LlmSpan:
    """One half of a failed anthropic call: the SDK's own span (sdk) or OpenLLMetry's around it."""
    half: dict[str, object] = dict(
        provider="anthropic",
        request_model="claude-sonnet-4-5",
        status="error",
        error_type="api_error" if sdk else "InternalServerError",
        emitter="com.anthropic.sdk.python@2.12.0" if sdk else "opentelemetry.instrumentation.anthropic@0.62.4",
        server_address="127.0.0.1" if sdk else None,
        input_tokens=None,
        output_tokens=None,
        service="checkout",
        process="instance-1",
    )
    return _span(trace_id, span_id, start=start, end=end, **{**half, **fields})


def test_a_failed_call_in_two_traces_is_one_call(pipeline: Pipeline, engine: sa.Engine) -> None:
    """No response id to link them: the SDK's span inside OpenLLMetry's, one process, nothing else like it."""
    outer = _failed(T1, "a" * 16, 0, 27)
    inner = _failed(T2, "b" * 16, 5, 25, sdk=True)
    _send(pipeline, inner, outer)
    assert _rows(engine, "SELECT trace_id, span_id, status, error_type, server_address, span_count FROM calls") == [
        (T1, "a" * 16, "error", "InternalServerError", "127.0.0.1", 2)
    ]
    assert _rows(engine, "SELECT count(*) FROM llm_spans") == [(2,)]
    assert _counter(engine, "calls_stored") == 1
    assert _counter(engine, "spans_merged") == 1


def test_a_failed_call_split_across_exports_is_one_call(pipeline: Pipeline, engine: sa.Engine) -> None:
    _send(pipeline, _failed(T2, "b" * 16, 5, 25, sdk=True))
    _send(pipeline, _failed(T1, "a" * 16, 0, 27))
    assert _rows(engine, "SELECT trace_id FROM calls") == [(T2,)]  # the one stored first keeps its place
    # OpenLLMetry's call is recomputed (a late prompt hash from a log record): it stays merged
    _send(pipeline, hints=(PromptHashHint(T1, "a" * 16, "h" * 64, T0 + 10_000_000),))
    assert _rows(engine, "SELECT trace_id FROM calls") == [(T2,)]


@pytest.mark.parametrize(
    ("spans", "calls", "unlinked"),
    [
        pytest.param(
            [_failed(T1, "a" * 16, 0, 27), _failed(T2, "b" * 16, 20, 50, sdk=True)],
            2,
            0,
            id="two concurrent failures of one model and service, not nested",
        ),
        pytest.param(
            [_failed(T1, "a" * 16, 0, 27), _failed(T2, "b" * 16, 5, 25, sdk=True, request_model="claude-opus-4")],
            2,
            0,
            id="nested, another model",
        ),
        pytest.param(
            [_failed(T1, "a" * 16, 0, 27), _failed(T2, "b" * 16, 5, 25, sdk=True, process="instance-2")],
            2,
            0,
            id="nested, another process of the service",
        ),
        pytest.param(
            [
                _failed(T1, "a" * 16, 0, 27),
                _failed(T2, "b" * 16, 5, 25, sdk=True),
                _failed(T3, "c" * 16, 2, 29),
                _failed("4" * 32, "d" * 16, 6, 26, sdk=True),
            ],
            4,
            4,
            id="a burst: two failures in flight at once, nothing merged, counted",
        ),
    ],
)
def test_failed_calls_that_are_not_one_call_stay_apart(
    pipeline: Pipeline, engine: sa.Engine, spans: list[LlmSpan], calls: int, unlinked: int
) -> None:
    _send(pipeline, *spans)
    assert _rows(engine, "SELECT count(*) FROM calls") == [(calls,)]
    assert _counter(engine, "failed_calls_unlinked") == unlinked


def _mistral(trace_id: str, span_id: str, start: int, end: int, sdk: bool = False, **fields: object) -> LlmSpan:
    """One half of a successful Mistral call (openllmetry-mistral/chat): mistralai 1.x's own span
    (sdk: no operation, no response id, its server address) or OpenLLMetry's around it."""
    half: dict[str, object] = dict(
        provider="mistral_ai",
        request_model="mistral-large-latest",
        operation=None if sdk else "chat",
        response_id=None if sdk else "166298ff6875429cb844269764ba48bc",
        emitter="mistralai_sdk_tracer" if sdk else "opentelemetry.instrumentation.mistralai@0.62.4",
        server_address="127.0.0.1:32899" if sdk else None,
        input_tokens=61,
        output_tokens=27,
        service="checkout",
        process="instance-1",
    )
    return _span(trace_id, span_id, start=start, end=end, **{**half, **fields})


@pytest.mark.parametrize("exports", [1, 2], ids=["one export", "the client's span first, in an export of its own"])
def test_a_self_traced_call_without_a_response_id_is_one_call(
    pipeline: Pipeline, engine: sa.Engine, exports: int
) -> None:
    sdk, outer = _mistral(T2, "b" * 16, 5, 25, sdk=True), _mistral(T1, "a" * 16, 0, 27)
    if exports == 1:
        _send(pipeline, sdk, outer)
    else:
        _send(pipeline, sdk)
        _send(pipeline, outer)
    assert _rows(engine, "SELECT count(*), sum(input_tokens), sum(output_tokens) FROM calls") == [(1, 61, 27)]
    assert _counter(engine, "sdk_calls_unlinked") == 0


def _langchain(trace_id: str, span_id: str, start: int, end: int, client: bool = False, **fields: object) -> LlmSpan:
    """One half of a LangChain stream (openinference-langchain-openllmetry-openai/chat-stream):
    OpenInference's LangChain span (no response id, under its chain span) or, in a trace of
    its own, OpenLLMetry's client span (with the response id)."""
    half: dict[str, object] = dict(
        provider="openai",
        request_model="gpt-4o-mini",
        operation="chat",
        response_id="chatcmpl-1" if client else None,
        emitter="opentelemetry.instrumentation.openai.v1@0.62.4"
        if client
        else "openinference.instrumentation.langchain@0.1.80",
        input_tokens=297,
        cache_read_tokens=2048,
        output_tokens=432,
        service="app",
        process="instance-1",
    )
    return _span(trace_id, span_id, None if client else "c" * 16, start=start, end=end, **{**half, **fields})


def test_a_framework_span_after_its_clients_export_is_one_call(pipeline: Pipeline, engine: sa.Engine) -> None:
    """The client's span ends first and is stored first; the framework's, in a later export and
    with no response id, finds it among the recent calls of a provider not watched before."""
    _send(pipeline, _langchain(T2, "b" * 16, 5, 25, client=True))
    _send(pipeline, _langchain(T1, "a" * 16, 0, 27))
    assert _rows(engine, "SELECT trace_id, input_tokens, output_tokens FROM calls") == [(T2, 297, 432)]


def test_self_traced_calls_in_a_burst_stay_apart_and_are_counted(pipeline: Pipeline, engine: sa.Engine) -> None:
    """Two calls of one model in flight at once with the same token counts: which is which is unknown."""
    _send(
        pipeline,
        _mistral(T1, "a" * 16, 0, 27),
        _mistral(T2, "b" * 16, 5, 25, sdk=True),
        _mistral(T3, "c" * 16, 2, 29, response_id="other"),
        _mistral("4" * 32, "d" * 16, 6, 26, sdk=True),
    )
    assert _rows(engine, "SELECT count(*) FROM calls") == [(4,)]
    assert _counter(engine, "sdk_calls_unlinked") == 4
    assert _counter(engine, "failed_calls_unlinked") == 0


def test_nul_in_a_string_is_stored_not_a_failed_commit(pipeline: Pipeline, engine: sa.Engine) -> None:
    """PostgreSQL text cannot hold NUL: it becomes U+FFFD there instead of failing the export."""
    _send(pipeline, _span(T1, "a" * 16, service="check\x00out"))
    (service,) = _rows(engine, f"SELECT service FROM calls WHERE trace_id = '{T1}'")[0]
    assert service in ("check\x00out", "check\ufffdout")


def test_one_export_that_cannot_commit_does_not_fail_the_others_in_its_group(
    writer: LedgerWriter, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    # PostgreSQL writes in the transaction that locked the batch's traces (write_in)
    name = "write" if writer.is_duckdb else "write_in"
    real_write = getattr(writer, name)
    release = threading.Event()

    def write(*args):  # type: ignore[no-untyped-def]
        services = {s.service for s in args[-2].new_spans}  # (conn,) batch, received_at_us
        if "first" in services:
            release.wait(10)  # hold the writer so the next two exports queue into one group
        if "poison" in services:
            raise RuntimeError("this export cannot be stored")
        return real_write(*args)

    monkeypatch.setattr(writer, name, write)
    running = _start(writer)
    try:
        first = running.submit(Work(spans=[_span(T3, "c" * 16, service="first")]))
        good = running.submit(Work(spans=[_span(T1, "a" * 16)]))
        bad = running.submit(Work(spans=[_span(T2, "b" * 16, service="poison")]))
        release.set()
        first.result(timeout=10)
        good.result(timeout=10)
        with pytest.raises(RuntimeError, match="cannot be stored"):
            bad.result(timeout=10)
    finally:
        running.stop()
    assert sorted(_rows(engine, "SELECT trace_id FROM calls")) == [(T1,), (T3,)]


def test_the_warm_up_says_since_when_it_holds_every_trace(writer: LedgerWriter) -> None:
    """More traces in the warm-up's window than the filter takes: the newest by their last
    span, and the time since which every stored trace is among them."""
    now_us = int(time.time() * 1e6)
    assert writer.trace_ids_received_since(now_us - 3600_000_000, 5) == ([], 0)  # nothing stored: all held
    writer.write(WriteBatch(new_spans=[_span("f" * 32, "a" * 16)]), now_us - 7200_000_000)
    for n in range(5):  # trace n stored n minutes ago
        writer.write(WriteBatch(new_spans=[_span(f"{n + 1:032x}", "a" * 16)]), now_us - n * 60_000_000)
    every, since_us = writer.trace_ids_received_since(now_us - 3600_000_000, 5)
    assert (sorted(every), since_us) == ([f"{n + 1:032x}" for n in range(5)], now_us - 3600_000_000)
    newest, since_us = writer.trace_ids_received_since(now_us - 3600_000_000, 3)
    assert sorted(newest) == [f"{n + 1:032x}" for n in range(3)]
    assert since_us == now_us - 2 * 60_000_000 + 1


def test_a_group_of_more_traces_than_one_locked_commit_takes_is_stored_whole(
    writer: LedgerWriter, engine: sa.Engine
) -> None:
    """On PostgreSQL a commit locks at most TRACES_PER_LOCKED_COMMIT traces; more are committed
    in parts, the export answered once all are in (on DuckDB: one commit)."""
    running = Pipeline(writer, queue_max_spans=10_000, batch_max_spans=10_000, cache_traces=10)
    running.start()
    spans = [_span(f"{n + 1:032x}", "a" * 16) for n in range(2 * TRACES_PER_LOCKED_COMMIT + 7)]
    nested = [_span(f"{n + 1:032x}", "b" * 16, "a" * 16, start=5, end=990) for n in range(0, len(spans), 97)]
    try:
        running.submit(Work(spans=spans + nested, counters={("spans_received", ""): len(spans) + len(nested)})).result(
            30
        )
    finally:
        running.stop()
    assert _rows(engine, "SELECT count(*), sum(span_count) FROM calls") == [(len(spans), len(spans) + len(nested))]
    assert _counter(engine, "spans_received") == len(spans) + len(nested)
    assert _counter(engine, "calls_stored") == len(spans)


@pytest.mark.parametrize(
    ("traces", "most", "parts"),
    [(0, 3, [0]), (3, 3, [3]), (4, 3, [3, 1]), (7, 3, [3, 3, 1])],
)
def test_parts_split_by_trace_with_the_counters_in_the_first(traces: int, most: int, parts: list[int]) -> None:
    works = [Work(spans=[_span(f"{n + 1:032x}", "a" * 16)], counters={("c", ""): 1}) for n in range(traces)]
    works.append(Work(counters={("c", ""): 1}))
    split = _parts(works, most)
    assert [len(ids) for ids, _ in split] == parts
    assert sum(w.counters.get(("c", ""), 0) for _, part in split for w in part) == traces + 1
    assert [s.trace_id for _, part in split for w in part for s in w.spans] == [f"{n + 1:032x}" for n in range(traces)]
