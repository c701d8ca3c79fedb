"""`breakeven demo`: its config loads as it is written, and it never writes into a database with data."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collector import demo
from collector.cli import main
from collector.settings import load_settings


def test_the_written_config_loads_with_both_pools_a_candidate_and_fx(tmp_path: Path) -> None:
    path = tmp_path / demo.CONFIG_NAME
    path.write_text(demo.config_text(f"duckdb:///{tmp_path / 'x.duckdb'}", 8123, date(2026, 10, 25)))
    settings = load_settings({"config": str(path)}, environ={})
    pricing = settings.pricing
    assert [p.name for p in pricing.pools] == ["llama-70b-fp8", "llama-8b-owned"]
    assert [c.name for c in pricing.candidates] == ["h100-rented"]
    assert (pricing.currency, set(pricing.fx.currencies())) == ("GBP", {"USD", "EUR", "GBP"})
    assert settings.http_port == 8123
    assert settings.attributes["team"] == ("app.team",)


def test_the_month_plan_covers_every_day_and_stream() -> None:
    now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    plan = demo.plan_month(3, now, seed=1)
    assert plan.bodies and plan.spans > plan.calls > 1000
    again = demo.plan_month(3, now, seed=1)
    assert again.bodies == plan.bodies  # the same seed, the same month


def test_refuses_to_overwrite_an_existing_demo_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / demo.DB_NAME).write_bytes(b"not empty")
    assert main(["demo", "--out", str(tmp_path), "--days", "1"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / demo.DB_NAME).read_bytes() == b"not empty"


def test_bad_days_are_refused() -> None:
    args = argparse.Namespace(days=0, out=".", db=None, port=8000, seed=7, force=False)
    assert demo.run(args) == 2
