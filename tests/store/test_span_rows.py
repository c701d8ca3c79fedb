"""Rows made by the decode processes store exactly what the writer would have made.

A decode process sends each export's llm_spans rows beside its spans (Work.span_rows),
and the priced rows of the calls they make were their traces new (Work.call_rows). The
writer inserts span rows as they are only when they are exactly the new spans, and call
rows only when every trace of the group is new and whole in one export and cross-trace
linking changed no call; it makes the rows itself otherwise. Each case stores the same
exports twice on DuckDB, with and without those rows, and compares every column of both
tables (but received_at, the commit's time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from breakeven.collector.auth import ANYONE
from breakeven.collector.calls.pipeline import Pipeline
from breakeven.collector.config.settings import validate
from breakeven.collector.ingest import offload
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import LlmSpan, PromptHashHint, Work
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.writer import LedgerWriter
from tests.otel import chat_export
from tests.spans import llm

T1, T2, T3, T9 = "1" * 32, "2" * 32, "3" * 32, "9" * 32
PRICE = ledger_pricer(validate({}).pricing)
RECEIVED_US = 1_700_000_000_000_000


def _span(trace_id: str, span_id: str, parent: str | None = None, **fields: object) -> LlmSpan:
    span = dataclasses.replace(llm(span_id, parent, **fields), trace_id=trace_id)  # type: ignore[arg-type]
    span.attributes_json = f'{{"gen_ai.response.id": "resp-{span_id}", "note": "ünïcode"}}'
    return span


def _exports() -> list[list[LlmSpan]]:
    return [
        [_span(T1, "a" * 16), _span(T1, "b" * 16, "a" * 16, prompt_hash="p1")],
        [_span(T2, "c" * 16, team="search", ttft_ms=12.5, streaming=True, response_model="gpt-4o-2024-08-06")],
    ]


def _two_calls_and_an_unpriced_one() -> list[list[LlmSpan]]:
    """Two parallel calls in one trace (siblings), a span of no usage and one of an unknown model."""
    return [
        [_span(T1, "a" * 16), _span(T1, "b" * 16, "a" * 16), _span(T1, "c" * 16, "a" * 16, start=5, end=900)],
        [_span(T2, "d" * 16, input_tokens=None, output_tokens=None), _span(T3, "e" * 16, request_model="no-such")],
    ]


def _interleaved() -> list[list[LlmSpan]]:
    """Traces mixed within and across exports: the writer groups spans by trace, the rows
    keep the order they came in, and each row must get its own span's attributes."""
    return [
        [_span(T1, "a" * 16), _span(T2, "c" * 16), _span(T1, "b" * 16, "a" * 16), _span(T3, "e" * 16)],
        [_span(T2, "d" * 16, "c" * 16), _span(T3, "f" * 16, "e" * 16), _span(T1, "9" * 16)],
    ]


def _committed(exports: Callable[[], list[list[LlmSpan]]]) -> Callable[[Pipeline], None]:
    """A `before` that commits these exports first (writer-made rows)."""

    def commit(pipeline: Pipeline) -> None:
        batch, states = pipeline._build([Work(spans=spans) for spans in exports()])
        pipeline.writer.write(batch, RECEIVED_US)
        pipeline._remember(batch, states)

    return commit


def _nothing(pipeline: Pipeline) -> None:
    pass


# name -> (exports, what the pipeline met before, whether the decode processes' span rows
# are used, whether their call rows are)
Case = tuple[Callable[[], list[list[LlmSpan]]], Callable[[Pipeline], None], bool, bool]
CASES: dict[str, Case] = {
    "every trace new: both as sent": (_exports, _nothing, True, True),
    "sibling calls, no usage, an unknown model: both as sent": (_two_calls_and_an_unpriced_one, _nothing, True, True),
    "a trace in two exports of the group: span rows as sent, calls made here": (_interleaved, _nothing, True, False),
    "a span sent twice in one group: both made here": (
        lambda: [*_exports(), [_span(T1, "a" * 16)]],
        _nothing,
        False,
        False,
    ),
    "a span sent twice in one export: both made here": (
        lambda: [[_span(T2, "c" * 16), _span(T2, "c" * 16)], _exports()[0]],
        _nothing,
        False,
        False,
    ),
    "a log record's prompt hash given to a span: both made here": (
        _exports,
        lambda p: p._park(PromptHashHint(T2, "c" * 16, "from-log")),
        False,
        False,
    ),
    "a trace stored before: span rows as sent, calls made here": (
        _exports,
        _committed(lambda: [[_span(T2, "0" * 16, start=-10, end=2000)]]),
        True,
        False,
    ),
    "a call another trace answered before: span rows as sent, calls made here": (
        lambda: [[_span(T2, "c" * 16, response_id="resp-1")], [_span(T3, "e" * 16)]],
        _committed(lambda: [[_span(T9, "f" * 16, start=-10, end=2000, response_id="resp-1")]]),
        True,
        False,
    ),
}


def _stored(tmp_path: Path, name: str, exports: list[list[LlmSpan]], before: Callable[[Pipeline], None], rows: bool):
    engine = make_engine(f"duckdb:///{tmp_path / name}.duckdb")
    migrate(engine)
    pipeline = Pipeline(LedgerWriter(engine), queue_max_spans=1000, batch_max_spans=1000, cache_traces=100, price=PRICE)
    before(pipeline)
    works = [Work(spans=spans) for spans in exports]
    for work in works:
        offload.ready_for_the_writer(work, make_rows=rows, price=PRICE)  # as a decode process does
    batch, _ = pipeline._build(works)  # one group commit, as the writer's thread takes them
    used = (batch.span_rows is not None, batch.call_rows is not None)
    pipeline.writer.write(batch, RECEIVED_US + 1)
    tables = {}
    with engine.connect() as conn:
        for table in ("llm_spans", "calls"):
            query = f"SELECT * EXCLUDE (received_at) FROM {table} ORDER BY ALL"
            tables[table] = [tuple(r) for r in conn.execute(sa.text(query))]
            query = f"SELECT epoch_us(received_at) - {RECEIVED_US}, count(*) FROM {table} GROUP BY 1 ORDER BY 1"
            assert dict(conn.execute(sa.text(query)).all()).keys() - {0} == {1}  # the commit's time, set by it
        tables["priced"] = conn.execute(sa.text("SELECT price_status, count(*) FROM calls GROUP BY 1 ORDER BY 1")).all()
    engine.dispose()
    return tables, used


@pytest.mark.parametrize("case", list(CASES))
def test_rows_from_the_decode_processes_store_what_the_writer_makes(tmp_path: Path, case: str) -> None:
    exports, before, span_rows_used, call_rows_used = CASES[case]
    expected, used_without = _stored(tmp_path, "made-here", exports(), before, rows=False)
    stored, used_with = _stored(tmp_path, "sent", exports(), before, rows=True)
    assert (used_without, used_with) == ((False, False), (span_rows_used, call_rows_used))
    assert stored == expected
    assert len(stored["llm_spans"]) >= 3
    assert len(stored["calls"]) >= 2
    assert dict(stored["priced"])["priced"] >= 1


def test_a_group_where_one_export_brought_no_rows_makes_them_all_here(tmp_path: Path) -> None:
    first, second = _exports()
    engine = make_engine(f"duckdb:///{tmp_path / 'mixed.duckdb'}")
    migrate(engine)
    pipeline = Pipeline(LedgerWriter(engine), queue_max_spans=1000, batch_max_spans=1000, cache_traces=100, price=PRICE)
    with_rows = Work(spans=first)
    offload.ready_for_the_writer(with_rows, make_rows=True, price=PRICE)
    batch, _ = pipeline._build([with_rows, Work(spans=second)])
    assert (batch.span_rows, batch.call_rows) == (None, None)
    assert len(batch.new_spans) == 3
    engine.dispose()


@pytest.mark.parametrize(
    ("db", "rows_made"),
    [
        ("duckdb:///breakeven.duckdb", True),
        ("duckdb:///:memory:", True),
        ("postgresql://u@127.0.0.1:5432/ledger", False),
        ("postgresql+psycopg://u@127.0.0.1/ledger", False),
    ],
)
def test_decode_processes_make_rows_for_duckdb_only(db: str, rows_made: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's writer COPYs from the spans and calls, so no decode process spends time on rows for it."""
    monkeypatch.setattr(offload, "_settings", validate({"db": db}))
    monkeypatch.setattr(offload, "_price", PRICE)
    work = offload._decode_traces(chat_export().SerializeToString(), "application/x-protobuf", ANYONE).work
    assert len(work.spans) == 1
    assert work.spans[0].attributes == {}
    assert (work.span_rows is not None, work.call_rows is not None) == (rows_made, rows_made)
