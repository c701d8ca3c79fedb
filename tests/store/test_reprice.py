"""`breakeven reprice` on both dialects: calls stored with one price book, the book changed
(a price change mid-range, a new entry for an unpriced model, an entry removed, a discount,
a new pool), a date range repriced. Figures are worked by hand from the two books below."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from breakeven.collector.api.routes import build_api
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.ledger import ledger_pricer
from breakeven.collector.records import Call, SpanKey, WriteBatch
from breakeven.collector.store import reprice as rp
from breakeven.collector.store.engine import make_engine, migrate
from breakeven.collector.store.rows import call_from_row
from breakeven.collector.store.schema import calls, reprice_runs
from breakeven.collector.store.writer import LedgerWriter
from tests.pricecalls import at, call

CHAT_V1 = {
    "provider": "openai",
    "model": "acme-chat",
    "effective_from": "2025-01-01",
    "input": "1.00",
    "output": "2.00",
}
OLD_ONLY = {"provider": "openai", "model": "acme-old", "effective_from": "2025-01-01", "input": "4", "output": "4"}
CLAUDE = {"provider": "anthropic", "model": "acme-claude", "effective_from": "2025-01-01", "input": "2", "output": "10"}
# The new book: acme-chat cheaper from 2025-06-10, acme-new priced, acme-old gone,
# 10% off Anthropic, and the vllm-a boxes declared as a pool.
CHAT_V2 = {**CHAT_V1, "effective_from": "2025-06-10", "input": "0.50", "output": "1.50"}
NEW_MODEL = {"provider": "openai", "model": "acme-new", "effective_from": "2025-01-01", "input": "3", "output": "6"}
POOL = {
    "name": "vllm-a",
    "match": {"backend": "vllm-a"},
    "boxes": 1,
    "rent_per_month": "900",
    "capacity": {"input_tps": "1000", "output_tps": "100"},
    "alternative": {"provider": "together", "model": "x"},
}
OLD_BOOK = parse_pricing({"prices": [CHAT_V1, OLD_ONLY, CLAUDE]})
NEW_BOOK = parse_pricing(
    {
        "prices": [CHAT_V1, CHAT_V2, NEW_MODEL, CLAUDE],
        "discounts": [{"provider": "anthropic", "percent": "10", "effective_from": "2025-01-01"}],
        "pools": [POOL],
    }
)
JUNE = (at("2025-06-01"), at("2025-07-01"))
NOON_15TH = "2025-06-15T12:00:00"  # three calls start at once: the keyset order breaks the tie

CALLS = [
    # in June: service names the case
    call(service="chat-before-change", model="acme-chat", start="2025-06-05T08:00:00", input=1_000_000, output=500_000),
    call(service="chat-after-change", model="acme-chat", start=NOON_15TH, input=2_000_000, output=1_000_000),
    call(service="entry-removed", model="acme-old", start=NOON_15TH, input=1_000_000),
    call(
        service="pool",
        provider="vllm",
        model="llama",
        start=NOON_15TH,
        backend="vllm-a",
        backend_class="self_hosted",
        input=10,
    ),
    call(service="new-entry", model="acme-new", start="2025-06-20T00:00:00", input=123_457, output=9_876),
    call(
        service="discount",
        provider="anthropic",
        model="acme-claude",
        start="2025-06-25T00:00:00",
        input=1_234_567,
        output=7_654,
    ),
    call(service="no-usage", model="acme-chat", start="2025-06-28T00:00:00", usage_reported=False),
    # outside: the first instant after the range, the last second before it
    call(service="july", model="acme-chat", start="2025-07-01T00:00:00", input=1_000_000),
    call(service="may", model="acme-new", start="2025-05-31T23:59:59", input=1_000),
]
E = "book:openai/acme-chat@2025-01-01"
# service -> (price_status, cost_usd, list_cost_usd, price_entry, unpriced_reason, pool)
BEFORE = {
    "chat-before-change": ("priced", "2.00", "2.00", E, None, None),  # 1.0 x 1 + 0.5 x 2
    "chat-after-change": ("priced", "4.00", "4.00", E, None, None),  # 2 x 1 + 1 x 2
    "entry-removed": ("priced", "4.00", "4.00", "book:openai/acme-old@2025-01-01", None, None),
    "pool": ("unpriced", None, None, None, "no_price", None),
    "new-entry": ("unpriced", None, None, None, "no_price", None),
    "discount": ("priced", "2.545674", "2.545674", "book:anthropic/acme-claude@2025-01-01", None, None),
    "no-usage": ("unpriced", None, None, None, "no_usage", None),
    "july": ("priced", "1.00", "1.00", E, None, None),
    "may": ("unpriced", None, None, None, "no_price", None),
}
AFTER = {
    **BEFORE,
    "chat-after-change": (
        "priced",
        "2.50",
        "2.50",
        "book:openai/acme-chat@2025-06-10",
        None,
        None,
    ),  # 2 x 0.5 + 1 x 1.5
    "entry-removed": ("unpriced", None, None, None, "no_price", None),
    "pool": ("pool", None, None, None, None, "vllm-a"),
    "new-entry": (
        "priced",
        "0.429627",
        "0.429627",
        "book:openai/acme-new@2025-01-01",
        None,
        None,
    ),  # 0.123457 x 3 + 0.009876 x 6
    "discount": (
        "priced",
        "2.2911066",
        "2.545674",
        "book:anthropic/acme-claude@2025-01-01",
        None,
        None,
    ),  # 2.469134 + 0.07654, less 10%
}
TOTAL_BEFORE = Decimal("12.545674")  # 2 + 4 + 4 + 2.545674: June's per-token calls
TOTAL_AFTER = Decimal("7.2207336")  # 2 + 2.5 + 0.429627 + 2.2911066


@pytest.fixture
def ledger(engine: sa.Engine) -> sa.Engine:
    """The calls above, stored as ingest priced them under the old book."""
    migrate(engine)
    price = ledger_pricer(OLD_BOOK)
    LedgerWriter(engine).write(WriteBatch(calls=list(CALLS), prices=[price(c) for c in CALLS]), 1_750_000_000_000_000)
    return engine


def _prices(engine: sa.Engine) -> dict[str, tuple[Any, ...]]:
    cols = ("price_status", "cost_usd", "list_cost_usd", "price_entry", "unpriced_reason", "pool")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(calls.c.service, *(calls.c[c] for c in cols))).all()
    return {r[0]: tuple(Decimal(v) if isinstance(v, Decimal) else v for v in r[1:]) for r in rows}


def _expected(table: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {k: (s, _dec(c), _dec(lc), e, r, p) for k, (s, c, lc, e, r, p) in table.items()}


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _run(engine: sa.Engine, config: PricingConfig = NEW_BOOK, **kwargs: Any) -> rp.RepriceRun:
    dry_run = kwargs.pop("dry_run", False)
    run = rp.plan_run(config, *JUNE, actor="finance-bot", dry_run=dry_run)
    return rp.reprice(engine, config, run, batch_size=2, **kwargs)


def _audit(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(reprice_runs).order_by(reprice_runs.c.started_at)).mappings()]


def test_ingest_stored_the_old_books_prices(ledger: sa.Engine) -> None:
    assert _prices(ledger) == _expected(BEFORE)


def test_reprice_rewrites_changed_prices_in_the_range_and_nothing_outside(ledger: sa.Engine) -> None:
    run = _run(ledger)
    assert _prices(ledger) == _expected(AFTER)
    assert (run.examined, run.repriced, run.newly_priced, run.newly_unpriced, run.skipped) == (7, 5, 1, 1, 0)
    assert (run.total_before_usd, run.total_after_usd) == (TOTAL_BEFORE, TOTAL_AFTER)


def test_the_audit_row_names_the_run_and_its_totals(ledger: sa.Engine) -> None:
    run = _run(ledger)
    [row] = _audit(ledger)
    assert row["run_id"] == run.run_id
    assert len(run.run_id) == 32
    assert row["actor"] == "finance-bot"
    assert (row["since"], row["until"]) == JUNE
    assert row["started_at"] <= row["finished_at"]
    assert row["price_version"] == rp.price_version(NEW_BOOK)
    assert (row["calls_repriced"], row["total_before_usd"], row["total_after_usd"]) == (5, TOTAL_BEFORE, TOTAL_AFTER)


def test_a_second_run_reprices_nothing(ledger: sa.Engine) -> None:
    _run(ledger)
    again = _run(ledger)
    assert (again.examined, again.repriced, again.newly_priced, again.newly_unpriced) == (7, 0, 0, 0)
    assert again.total_before_usd == again.total_after_usd == TOTAL_AFTER
    assert _prices(ledger) == _expected(AFTER)
    assert [r["calls_repriced"] for r in _audit(ledger)] == [5, 0]


def test_a_dry_run_counts_and_totals_but_writes_nothing(ledger: sa.Engine) -> None:
    run = _run(ledger, dry_run=True)
    assert (run.examined, run.repriced, run.newly_priced, run.newly_unpriced) == (7, 5, 1, 1)
    assert (run.total_before_usd, run.total_after_usd) == (TOTAL_BEFORE, TOTAL_AFTER)
    assert _prices(ledger) == _expected(BEFORE)
    assert _audit(ledger) == []


def test_an_interrupted_run_keeps_its_committed_batches_and_an_unfinished_audit_row(ledger: sa.Engine) -> None:
    def interrupt(done: int, total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt  # Ctrl-C once chat-after-change (4.00 -> 2.50) is committed

    run = rp.plan_run(NEW_BOOK, *JUNE, actor="finance-bot")
    with pytest.raises(KeyboardInterrupt):
        rp.reprice(ledger, NEW_BOOK, run, batch_size=2, progress=interrupt)
    [row] = _audit(ledger)
    assert row["finished_at"] is None
    assert 1 <= run.repriced < 5
    assert run.examined < 7
    assert (row["calls_repriced"], row["total_before_usd"], row["total_after_usd"]) == (
        run.repriced,
        run.total_before_usd,
        run.total_after_usd,
    )
    rest = _run(ledger)
    assert rest.repriced == 5 - run.repriced
    assert _prices(ledger) == _expected(AFTER)


def test_progress_reaches_the_whole_range_batch_by_batch(ledger: sa.Engine) -> None:
    seen: list[tuple[int, int]] = []
    _run(ledger, progress=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert done == sorted(set(done))
    assert done[-1] == 7
    assert {t for _, t in seen} == {7}
    assert all(0 < b - a <= 2 for a, b in zip([0, *done], done, strict=False))  # batches of at most 2


def test_reprice_runs_api_lists_runs_newest_first_with_money_as_decimal_strings(ledger: sa.Engine) -> None:
    first, second = _run(ledger), _run(ledger)
    body = TestClient(build_api(ledger, None)).get("/api/v1/reprice-runs").json()
    assert [r["run_id"] for r in body["runs"]] == [second.run_id, first.run_id]
    older = body["runs"][1]
    assert older["total_before_usd"] == "12.545674"
    assert older["total_after_usd"] == "7.2207336"
    assert older["since"] == "2025-06-01T00:00:00Z"
    assert older["until"] == "2025-07-01T00:00:00Z"
    assert older["calls_repriced"] == 5
    assert older["actor"] == "finance-bot"
    assert older["finished_at"].endswith("Z")


def test_a_call_read_back_from_its_row_is_the_call_that_was_stored(ledger: sa.Engine) -> None:
    stored = dataclasses.replace(CALLS[1], member_span_ids=("a" * 16, "b" * 16), conventions="otel,openinference")
    with ledger.begin() as conn:
        conn.execute(calls.delete())
    LedgerWriter(ledger).write(WriteBatch(calls=[stored]), 1)
    with ledger.connect() as conn:
        [row] = conn.execute(sa.select(calls)).all()
    assert call_from_row(row) == stored


@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])], indirect=True
)
def test_a_call_replaced_by_a_collector_mid_run_keeps_the_collectors_price(
    ledger: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a serving collector re-merges a call (delete, insert) between reprice's read and update."""
    target = CALLS[1]  # chat-after-change
    merged = dataclasses.replace(target, output_tokens=target.output_tokens + 1)  # a late span added a token

    def racing(row: Any, read: Callable[[Any], Call] = call_from_row) -> Call:
        if row.trace_id == target.trace_id and row.span_id == target.span_id:
            # The collector still runs with the old book: it prices the merge as ingest does.
            batch = WriteBatch(
                replaced_calls=[SpanKey(target.trace_id, target.span_id, target.start_ns)],
                calls=[merged],
                prices=[ledger_pricer(OLD_BOOK)(merged)],
            )
            LedgerWriter(ledger).write(batch, 1_760_000_000_000_000)
        return read(row)

    monkeypatch.setattr(rp, "call_from_row", racing)
    run = _run(ledger)
    assert (run.repriced, run.skipped) == (4, 1)
    # 2 x 1 + 1.000001 x 2 at the old book's price: not overwritten with a price of the row it replaced.
    assert _prices(ledger)["chat-after-change"] == ("priced", Decimal("4.000002"), Decimal("4.000002"), E, None, None)
    assert run.total_after_usd == TOTAL_AFTER - Decimal("2.50") + Decimal("4.00")  # the skipped row keeps what was read


def test_price_version_digests_the_prices_not_their_spelling() -> None:
    version = rp.price_version(NEW_BOOK)
    assert version.startswith("genai-prices ")
    assert "; book sha256:" in version
    assert len(version.rsplit(":", 1)[1]) == 12
    respelled = parse_pricing(
        {
            "prices": [NEW_MODEL, CLAUDE, {**CHAT_V2, "input": "0.5"}, CHAT_V1],
            "discounts": [{"provider": "anthropic", "percent": 10, "effective_from": "2025-01-01"}],
            "pools": [POOL],
        },
        "/elsewhere/config.toml",
    )
    assert rp.price_version(respelled) == version
    assert rp.price_version(OLD_BOOK) != version
    assert rp.price_version(dataclasses.replace(NEW_BOOK, pools=())) != version


def test_reprice_refuses_a_ledger_it_cannot_use(tmp_path) -> None:
    with pytest.raises(rp.RepriceError, match="db: no DuckDB file"):
        rp.open_ledger(f"duckdb:///{tmp_path / 'missing.duckdb'}")
    never_migrated = make_engine(f"duckdb:///{tmp_path / 'old.duckdb'}")
    with never_migrated.connect():
        pass
    never_migrated.dispose()
    with pytest.raises(rp.RepriceError, match="run `breakeven migrate`"):
        rp.open_ledger(f"duckdb:///{tmp_path / 'old.duckdb'}")


def test_an_empty_range_is_refused_naming_until() -> None:
    with pytest.raises(rp.RepriceError, match=r"^--until: must be after --since"):
        rp.plan_run(NEW_BOOK, JUNE[1], JUNE[0], actor="x")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_on_a_terminal_and_writes_lines_elsewhere() -> None:
    log = io.StringIO()
    bar = rp.ProgressBar(log)
    for done in range(0, 101, 5):
        bar(done, 100)
    bar.close()
    assert log.getvalue().splitlines() == [f"reprice: {p}% ({p} of 100 calls)" for p in range(10, 101, 10)]
    term = _Terminal()
    bar = rp.ProgressBar(term, width=10)
    bar(25, 100)
    bar(100, 100)
    bar.close()
    frames = term.getvalue().split("\r")[1:]
    assert frames[0].startswith("reprice [##........]  25%  25/100 calls")
    assert frames[-1].startswith("reprice [##########] 100%  100/100 calls")
    assert frames[-1].endswith("\n")
