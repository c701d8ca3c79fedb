"""`serve`'s reconcile thread against the fake of both admin APIs on a real port: fetched at
start, a failing source noted without stopping the others or ingest, a source another
collector just fetched skipped, FOCUS files imported, the admin keys never logged."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from breakeven.collector.app import bill_ledger
from breakeven.collector.config.reconcile import ReconcileConfig, ReconcileSource
from breakeven.collector.reconcile.schedule import RETRY_FAILED, FetchScheduler, is_due
from breakeven.collector.store.bills import fetch_statuses, lines_between, record_fetch
from breakeven.collector.store.engine import make_engine, migrate
from tests.conftest import wait_for
from tests.fakeadmin import ANTHROPIC_KEY, OPENAI_KEY, AdminApi, running_admin_api
from tests.otel import chat_attributes, tracer
from tests.reliability.server import ServerProcess
from tests.store.test_reconcile_fetch import COMPLETIONS, MESSAGES

FOCUS = Path(__file__).parent.parent / "fixtures" / "reconcile" / "focus"
TODAY = datetime.now(UTC).date()
DAY = timedelta(days=1)
NOW = datetime(2026, 12, 8, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Last:
    attempted_at: datetime
    error: str | None = None


@pytest.mark.parametrize(
    ("last", "due"),
    [
        pytest.param(None, True, id="never tried: due"),
        pytest.param(Last(NOW - timedelta(hours=23)), False, id="succeeded within the interval: skipped"),
        pytest.param(Last(NOW - timedelta(hours=24)), True, id="succeeded an interval ago: due"),
        pytest.param(Last(NOW - timedelta(minutes=59), "HTTP 503"), False, id="failed within the hour: skipped"),
        pytest.param(Last(NOW - RETRY_FAILED, "HTTP 401"), True, id="failed an hour ago: tried again"),
    ],
)
def test_a_source_is_due_after_the_interval_or_an_hour_after_a_failure(last: Last | None, due: bool) -> None:
    assert is_due(last, NOW, timedelta(hours=24)) is due


@pytest.fixture
def api() -> Iterator[AdminApi]:
    with running_admin_api() as running:
        running.results = {
            ("openai-usage", TODAY): [COMPLETIONS],
            ("anthropic-usage", TODAY - 7 * DAY): [MESSAGES],
            ("anthropic-usage", TODAY - 8 * DAY): [MESSAGES],  # outside the window: never asked for
        }
        yield running


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("TEST_ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)


def api_sources(api: AdminApi, openai_url: str | None = None) -> tuple[ReconcileSource, ...]:
    return (
        ReconcileSource("oa", "openai", "TEST_OPENAI_ADMIN_KEY", openai_url or api.url),
        ReconcileSource("an", "anthropic", "TEST_ANTHROPIC_ADMIN_KEY", api.url),
    )


def scheduler(engine: sa.Engine, *sources: ReconcileSource) -> FetchScheduler:
    return FetchScheduler(bill_ledger(engine), ReconcileConfig(sources))


def test_every_source_fetched_over_the_refetch_days_and_today_then_skipped_until_due(
    engine: sa.Engine, api: AdminApi, keys: None
) -> None:
    migrate(engine)
    first = scheduler(engine, *api_sources(api))
    assert [(s.source, s.stored, s.error) for s in first.look()] == [
        ("oa", {"cost": 0, "usage": 1}, None),
        ("an", {"cost": 0, "usage": 1}, None),
    ]
    lines = lines_between(engine, TODAY - 30 * DAY, TODAY + DAY)
    assert sorted((x.source, x.day) for x in lines) == [("an", TODAY - 7 * DAY), ("oa", TODAY)]
    statuses = fetch_statuses(engine)
    assert {name: s.error for name, s in statuses.items()} == {"oa": None, "an": None}
    assert all(s.succeeded_at == s.attempted_at for s in statuses.values())
    asked = len(api.requests)

    # Another collector on the same database, and this one's next look: both skip what was just fetched.
    assert scheduler(engine, *api_sources(api)).look() == []
    assert first.look() == []
    assert len(api.requests) == asked
    # Once a source's last attempt is an interval old it is due again, and only it.
    record_fetch(engine, "an", datetime.now(UTC) - timedelta(hours=24), None)
    assert [s.source for s in first.look()] == ["an"]


def test_a_failing_source_is_noted_and_the_others_still_fetched_and_the_key_never_logged(
    engine: sa.Engine, api: AdminApi, keys: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    migrate(engine)
    monkeypatch.setenv("TEST_OPENAI_ADMIN_KEY", OPENAI_KEY + "-revoked")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"  # closed: connection refused
    sources = (*api_sources(api), ReconcileSource("down", "openai", "TEST_OPENAI_ADMIN_KEY", nowhere))
    sched = scheduler(engine, *sources)
    monkeypatch.setattr(sched, "_sleep", lambda seconds: None)  # the unreachable one's retries at once
    synced = {s.source: s for s in sched.look()}
    assert synced["an"].stored == {"cost": 0, "usage": 1}
    assert synced["an"].error is None
    errors = {name: s.error or "" for name, s in fetch_statuses(engine).items()}
    assert errors["an"] == ""
    assert errors["oa"].startswith("oa: ")
    assert "HTTP 401" in errors["oa"]
    assert errors["down"].startswith("down: ")
    assert "ConnectError, 6 tries" in errors["down"]
    assert fetch_statuses(engine)["oa"].succeeded_at is None
    assert "reconcile: oa: " in caplog.text
    assert "HTTP 401" in caplog.text
    for key in (OPENAI_KEY, ANTHROPIC_KEY, "FAKE"):
        assert key not in caplog.text + repr(errors)


def test_any_other_failure_of_a_source_is_noted_with_the_key_blanked_and_the_next_fetched(
    engine: sa.Engine, api: AdminApi, keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(engine)
    real = bill_ledger(engine)

    def replace_lines(source: str, *args: Any) -> int:
        if source == "oa":  # a bug whose message, of all things, holds the key
            raise RuntimeError(f"boom {OPENAI_KEY}\nsecond line")
        return real.replace_lines(source, *args)

    sched = FetchScheduler(replace(real, replace_lines=replace_lines), ReconcileConfig(api_sources(api)))
    assert [(s.source, s.error) for s in sched.look()] == [
        ("oa", "oa: RuntimeError: boom [admin key]"),
        ("an", None),
    ]
    assert fetch_statuses(engine)["oa"].error == "oa: RuntimeError: boom [admin key]"
    assert len(lines_between(engine, TODAY - 30 * DAY, TODAY + DAY, source="an")) == 1
    assert OPENAI_KEY not in caplog.text


def test_focus_files_are_imported_each_round_a_broken_one_noted(
    engine: sa.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(engine)
    shutil.copy(FOCUS / "focus-1.0-sample.csv", tmp_path / "a.csv")
    shutil.copy(FOCUS / "hand-ai-gpu-1.2.csv", tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("not,a,focus,export\n1,2,3,4\n")
    aws = ReconcileSource("aws", "focus", path=str(tmp_path / "*.csv"))
    empty = ReconcileSource("gcp", "focus", path=str(tmp_path / "none" / "*.parquet"))
    synced = {s.source: s for s in scheduler(engine, aws, empty).look()}
    stored = synced["aws"].stored["focus"]
    assert stored == len(lines_between(engine, date(2000, 1, 1), date(2100, 1, 1), source="aws")) > 0
    errors = {name: s.error or "" for name, s in fetch_statuses(engine).items()}
    assert errors["aws"].startswith("aws: ")
    assert "c.csv" in errors["aws"]
    assert "BilledCost" in errors["aws"]
    assert errors["gcp"] == f"gcp: no file matches {empty.path}"
    assert "reconcile: aws: " in caplog.text


def test_stop_never_waits_for_a_fetch_and_nothing_is_written_after(engine: sa.Engine, keys: None) -> None:
    migrate(engine)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"  # refused: retried after 1, 2, 4 ... s
    sched = FetchScheduler(
        bill_ledger(engine),
        ReconcileConfig((ReconcileSource("down", "openai", "TEST_OPENAI_ADMIN_KEY", nowhere),)),
        first_look_seconds=(0.0, 0.0),
    )
    sched.start()
    wait_for(lambda: sched.looks)
    stopping = threading.Thread(target=sched.stop)
    stopping.start()
    stopping.join(2)
    assert not stopping.is_alive()
    assert sched._thread is not None
    sched._thread.join(2)
    assert not sched._thread.is_alive()
    assert fetch_statuses(engine) == {}


@pytest.mark.slow
def test_serve_fetches_at_start_notes_a_failure_keeps_ingesting_and_never_logs_a_key(
    tmp_path: Path, api: AdminApi
) -> None:
    db = tmp_path / "ledger.duckdb"
    config = tmp_path / "breakeven.toml"
    config.write_text(
        f'[[reconcile.sources]]\nname = "oa"\nkind = "openai"\nadmin_key_env = "TEST_OPENAI_ADMIN_KEY"\n'
        f'base_url = "{api.url}"\n\n'
        f'[[reconcile.sources]]\nname = "an"\nkind = "anthropic"\nadmin_key_env = "TEST_ANTHROPIC_ADMIN_KEY"\n'
        f'base_url = "{api.url}"\n'
    )
    env = {"TEST_OPENAI_ADMIN_KEY": OPENAI_KEY + "-revoked", "TEST_ANTHROPIC_ADMIN_KEY": ANTHROPIC_KEY}
    server = ServerProcess(f"duckdb:///{db}", tmp_path, extra_args=("--config", str(config)), env=env)
    server.start()
    log = tmp_path / "collector-1.log"
    try:
        wait_for(lambda: "reconcile: an: " in log.read_text() and "reconcile: oa: " in log.read_text(), timeout=30)
        with tracer(server.otlp_http, "reconcile-test") as t:
            with t.start_as_current_span("chat", attributes=chat_attributes()):
                pass
        calls = httpx.get(f"http://127.0.0.1:{server.api_port}/api/v1/calls", timeout=10).json()["calls"]
        assert len(calls) == 1
    finally:
        assert server.stop() == 0
    text = log.read_text()
    for key in (OPENAI_KEY, ANTHROPIC_KEY, "FAKE"):
        assert key not in text
    assert "reconcile: an: lines stored: cost 0, usage 1" in text
    engine = make_engine(f"duckdb:///{db}")
    try:
        assert [x.source for x in lines_between(engine, TODAY - 30 * DAY, TODAY + DAY)] == ["an"]
        errors = {name: s.error for name, s in fetch_statuses(engine).items()}
        assert errors["an"] is None
        assert errors["oa"] is not None
        assert "HTTP 401" in errors["oa"]
    finally:
        engine.dispose()
