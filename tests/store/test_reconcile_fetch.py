"""`breakeven reconcile fetch` against a fake of both admin APIs on a real port, both dialects:
pages followed, 429 waited out, a restated day replaced, the admin keys never kept or shown."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from breakeven.collector.cli import main
from breakeven.collector.records import BilledLine
from breakeven.collector.store.bills import lines_between
from breakeven.collector.store.engine import migrate
from breakeven.collector.store.schema import metadata
from tests.fakeadmin import ANTHROPIC_KEY, OPENAI_KEY, AdminApi, running_admin_api

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
COMPLETIONS = {
    "object": "organization.usage.completions.result", "input_tokens": 1000, "input_cached_tokens": 200,
    "output_tokens": 50, "num_model_requests": 3, "model": "gpt-4o-2024-08-06", "project_id": "proj_1", "batch": False,
}  # fmt: skip
MESSAGES = {
    "uncached_input_tokens": 500, "cache_creation": {"ephemeral_1h_input_tokens": 10, "ephemeral_5m_input_tokens": 20},
    "cache_read_input_tokens": 30, "output_tokens": 40, "model": "claude-sonnet-4-5-20250929",
    "workspace_id": "wrk_1", "service_tier": "standard",
}  # fmt: skip


@pytest.fixture
def api() -> Iterator[AdminApi]:
    with running_admin_api() as running:
        running.results = {
            ("openai-usage", D1): [COMPLETIONS],
            ("openai-usage", D2): [{**COMPLETIONS, "batch": True, "input_tokens": 10, "input_cached_tokens": 0}],
            ("openai-cost", D1): [
                {
                    "object": "organization.costs.result",
                    "amount": {"value": 0.06, "currency": "usd"},
                    "line_item": "gpt-4o, input",
                    "project_id": "proj_1",
                }
            ],
            ("anthropic-usage", D1): [MESSAGES],
            ("anthropic-cost", D1): [
                {
                    "currency": "USD",
                    "amount": "123.45",
                    "workspace_id": "wrk_1",
                    "description": "Claude Sonnet 4.5 Usage - Input Tokens",
                }
            ],
        }
        yield running


@pytest.fixture
def fetch(engine: sa.Engine, api: AdminApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    migrate(engine)
    config = tmp_path / "breakeven.toml"
    config.write_text(
        f'[[reconcile.sources]]\nname = "oa"\nkind = "openai"\nadmin_key_env = "TEST_OPENAI_ADMIN_KEY"\n'
        f'base_url = "{api.url}"\n\n'
        f'[[reconcile.sources]]\nname = "an"\nkind = "anthropic"\nadmin_key_env = "TEST_ANTHROPIC_ADMIN_KEY"\n'
        f'base_url = "{api.url}"\n'
    )
    for name in list(os.environ):
        if name.startswith("BREAKEVEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEST_OPENAI_ADMIN_KEY", OPENAI_KEY)
    monkeypatch.setenv("TEST_ANTHROPIC_ADMIN_KEY", ANTHROPIC_KEY)
    url = engine.url.render_as_string(hide_password=False)

    def run(*args: str) -> int:
        engine.dispose()  # DuckDB: one configuration per file at a time; the command opens its own
        return main(["reconcile", "fetch", "--config", str(config), "--db", url, "--since", "2026-11-01",
                     "--until", "2026-11-03", *args])  # fmt: skip

    return run


def test_both_apis_fetched_day_by_day_through_pages_and_a_429(fetch, api: AdminApi, engine: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    assert fetch() == 0
    lines = set(lines_between(engine, D1, D3))
    assert lines == {
        BilledLine("oa", D1, "openai", model="gpt-4o-2024-08-06", account="proj_1", input_tokens=800,
                   cache_read_tokens=200, output_tokens=50, requests=3),
        BilledLine("oa", D2, "openai", model="gpt-4o-2024-08-06", account="proj_1", tier="batch", input_tokens=10,
                   output_tokens=50, requests=3),
        BilledLine("oa", D1, "openai", account="proj_1", line_item="gpt-4o, input", cost=Decimal("0.06"),
                   currency="USD", report="cost"),
        BilledLine("an", D1, "anthropic", model="claude-sonnet-4-5-20250929", account="wrk_1", tier="standard",
                   input_tokens=500, cache_read_tokens=30, cache_write_tokens=30, output_tokens=40),
        BilledLine("an", D1, "anthropic", account="wrk_1", line_item="Claude Sonnet 4.5 Usage - Input Tokens",
                   cost=Decimal("1.2345"), currency="USD", report="cost"),
    }  # fmt: skip
    pages = [(path, query.get("page", ["0"])[0]) for path, query, _ in api.requests]
    assert pages.count(("/v1/organization/usage/completions", "0")) == 2  # the 429, then the first page
    assert ("/v1/organization/usage/completions", "1") in pages  # the second day's page, by next_page
    completions = next(q for p, q, _ in api.requests if p == "/v1/organization/usage/completions")
    assert completions["bucket_width"] == ["1d"]
    assert completions["group_by"] == ["model", "project_id", "batch"]
    messages = next(q for p, q, _ in api.requests if p == "/v1/organizations/usage_report/messages")
    assert messages["group_by[]"] == ["model", "workspace_id", "service_tier"]


def test_a_restated_day_replaces_what_was_fetched_of_it(fetch, api: AdminApi, engine: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    assert fetch() == 0
    api.results[("openai-usage", D1)] = [{**COMPLETIONS, "input_tokens": 2000}]
    del api.results[("openai-usage", D2)]  # restated to nothing
    assert fetch("--source", "oa") == 0
    usage = [x for x in lines_between(engine, D1, D3, source="oa") if x.report == "usage"]
    assert [(x.day, x.input_tokens) for x in usage] == [(D1, 1800)]
    assert len(lines_between(engine, D1, D3, source="an")) == 2  # the other source kept


def test_the_admin_keys_are_never_kept_logged_or_shown(
    fetch, api: AdminApi, engine: sa.Engine, capsys, caplog, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    assert fetch() == 0
    monkeypatch.setenv("TEST_OPENAI_ADMIN_KEY", OPENAI_KEY + "-revoked")
    assert fetch("--source", "oa") == 1  # 401: the source fails, said on stderr
    out, err = capsys.readouterr()
    assert "oa: " in err
    assert "HTTP 401" in err
    with engine.connect() as conn:
        stored = "\n".join(repr(tuple(r)) for t in metadata.sorted_tables for r in conn.execute(sa.select(t)))
    for key in (OPENAI_KEY, ANTHROPIC_KEY, "FAKE"):
        assert key not in out + err + caplog.text + stored
    assert all(
        headers.get("authorization", "").startswith("Bearer ") or "x-api-key" in headers
        for _, _, headers in api.requests
    )
    assert not any(OPENAI_KEY in str(query) or ANTHROPIC_KEY in str(query) for _, query, _ in api.requests)
