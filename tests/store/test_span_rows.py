"""Span rows made by the decode processes store exactly what the writer would have made.

A decode process sends each export's llm_spans rows beside its spans (Work.span_rows);
the writer inserts them as they are only when they are exactly the new spans, and makes
the rows itself otherwise. Each case stores the same exports twice on DuckDB, with and
without those rows, and compares every column (but received_at, the commit's time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.auth import ANYONE
from collector.pipeline import Pipeline, Work
from collector.receive import offload
from collector.records import LlmSpan, PromptHashHint
from collector.settings import validate
from collector.store.engine import make_engine, migrate
from collector.store.writer import LedgerWriter, span_rows_ipc
from tests.otel import chat_export
from tests.spans import llm

T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32


def _span(trace_id: str, span_id: str, parent: str | None = None, **fields: object) -> LlmSpan:
    span = dataclasses.replace(llm(span_id, parent, **fields), trace_id=trace_id)  # type: ignore[arg-type]
    span.attributes_json = f'{{"gen_ai.response.id": "resp-{span_id}", "note": "ünïcode"}}'
    return span


def _exports() -> list[list[LlmSpan]]:
    return [
        [_span(T1, "a" * 16), _span(T1, "b" * 16, "a" * 16, prompt_hash="p1")],
        [_span(T2, "c" * 16, team="search", ttft_ms=12.5, streaming=True)],
    ]


def _interleaved() -> list[list[LlmSpan]]:
    """Traces mixed within and across exports: the writer groups spans by trace, the rows
    keep the order they came in, and each row must get its own span's attributes."""
    return [
        [_span(T1, "a" * 16), _span(T2, "c" * 16), _span(T1, "b" * 16, "a" * 16), _span(T3, "e" * 16)],
        [_span(T2, "d" * 16, "c" * 16), _span(T3, "f" * 16, "e" * 16), _span(T1, "9" * 16)],
    ]


# name -> (exports, what else the pipeline is given, whether the decode processes' rows are used)
Case = tuple[Callable[[], list[list[LlmSpan]]], Callable[[Pipeline], None], bool]
CASES: dict[str, Case] = {
    "every span new and unchanged: the rows as sent": (_exports, lambda p: None, True),
    "traces interleaved within and across exports: the rows as sent": (_interleaved, lambda p: None, True),
    "a span sent twice in one group: made here": (
        lambda: [*_exports(), [_span(T1, "a" * 16)]],
        lambda p: None,
        False,
    ),
    "a log record's prompt hash given to a span: made here": (
        _exports,
        lambda p: p._park(PromptHashHint(T2, "c" * 16, "from-log")),
        False,
    ),
}


def _stored(tmp_path: Path, name: str, exports: list[list[LlmSpan]], before: Callable[[Pipeline], None], rows: bool):
    engine = make_engine(f"duckdb:///{tmp_path / name}.duckdb")
    migrate(engine)
    pipeline = Pipeline(LedgerWriter(engine), queue_max_spans=1000, batch_max_spans=1000, cache_traces=100)
    before(pipeline)
    works = [Work(spans=spans, span_rows=span_rows_ipc(spans) if rows else None) for spans in exports]
    batch, _ = pipeline._build(works)  # one group commit, as the writer's thread takes them
    used = batch.span_rows is not None
    pipeline.writer.write(batch, 1_700_000_000_000_000)
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text("SELECT * EXCLUDE (received_at) FROM llm_spans ORDER BY ALL"))]
        received = conn.execute(sa.text("SELECT DISTINCT epoch_us(received_at) FROM llm_spans")).scalars().all()
    engine.dispose()
    assert received == [1_700_000_000_000_000]
    return stored, used


@pytest.mark.parametrize("case", list(CASES))
def test_rows_from_the_decode_processes_store_what_the_writer_makes(tmp_path: Path, case: str) -> None:
    exports, before, rows_used = CASES[case]
    expected, used_without = _stored(tmp_path, "made-here", exports(), before, rows=False)
    stored, used_with = _stored(tmp_path, "sent", exports(), before, rows=True)
    assert (used_without, used_with) == (False, rows_used)
    assert stored == expected and len(stored) >= 3


def test_a_group_where_one_export_brought_no_rows_makes_them_all_here(tmp_path: Path) -> None:
    first, second = _exports()
    engine = make_engine(f"duckdb:///{tmp_path / 'mixed.duckdb'}")
    migrate(engine)
    pipeline = Pipeline(LedgerWriter(engine), queue_max_spans=1000, batch_max_spans=1000, cache_traces=100)
    batch, _ = pipeline._build([Work(spans=first, span_rows=span_rows_ipc(first)), Work(spans=second)])
    assert batch.span_rows is None and len(batch.new_spans) == 3
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
    """PostgreSQL's writer COPYs from the spans, so no decode process spends time on rows for it."""
    monkeypatch.setattr(offload, "_settings", validate({"db": db}))
    work = offload._decode_traces(chat_export().SerializeToString(), "application/x-protobuf", ANYONE).work
    assert len(work.spans) == 1 and work.spans[0].attributes == {}
    assert (work.span_rows is not None) is rows_made
