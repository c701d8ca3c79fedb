"""`breakeven reconcile import`: a source's bill files into billed_lines, on both dialects.

The files are the reconcile readers' own fixtures (tests/fixtures/reconcile/): OpenAI usage
and costs pages, Anthropic usage and cost reports, the FinOps Foundation's FOCUS sample.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from breakeven.collector.cli import main
from breakeven.collector.store.bills import lines_between
from breakeven.collector.store.engine import migrate

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reconcile"
CONFIG = """
[[reconcile.sources]]
name = "oa"
kind = "openai"
admin_key_env = "OPENAI_ADMIN_KEY"

[[reconcile.sources]]
name = "an"
kind = "anthropic"
admin_key_env = "ANTHROPIC_ADMIN_KEY"

[[reconcile.sources]]
name = "aws"
kind = "focus"
path = "/nowhere/*.csv"
"""
EVER = (date(2000, 1, 1), date(2100, 1, 1))


@pytest.fixture
def run(engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    migrate(engine)
    config = tmp_path / "breakeven.toml"
    config.write_text(CONFIG)
    for name in list(__import__("os").environ):
        if name.startswith("BREAKEVEN_"):
            monkeypatch.delenv(name)
    url = engine.url.render_as_string(hide_password=False)

    def command(*args: str) -> int:
        engine.dispose()  # DuckDB: one configuration per file at a time; the command opens its own
        return main(["reconcile", "import", "--config", str(config), "--db", url, *args])

    return command


def test_usage_and_cost_pages_of_both_providers_and_a_focus_export(run, engine: sa.Engine, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run("--source", "oa", *map(str, sorted((FIXTURES / "openai").glob("*.json")))) == 0
    assert run("--source", "an", *map(str, sorted((FIXTURES / "anthropic").glob("*.json")))) == 0
    assert run("--source", "aws", str(FIXTURES / "focus" / "focus-1.0-sample.csv")) == 0
    out = capsys.readouterr().out
    assert "oa: cost: 3 lines stored for 2 days, 2024-11-01 to 2024-11-02" in out
    lines = lines_between(engine, *EVER)
    assert {(x.source, x.report) for x in lines} == {
        ("oa", "usage"), ("oa", "cost"), ("an", "usage"), ("an", "cost"), ("aws", "focus")
    }  # fmt: skip
    focus_total = sum((x.cost for x in lines if x.source == "aws" and x.cost is not None), Decimal(0))
    assert focus_total == Decimal("19.27746522503")  # the sample's BilledCost column, summed as text
    before = Counter(lines_between(engine, *EVER))
    assert run("--source", "oa", *map(str, sorted((FIXTURES / "openai").glob("*.json")))) == 0  # idempotent
    assert Counter(lines_between(engine, *EVER)) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source", "nope", "x.json"), "no [[reconcile.sources]] named 'nope' (oa, an, aws)"),
        (("--source", "aws", str(FIXTURES / "openai" / "costs.json")), "must end in .csv, .csv.gz or .parquet"),
        (("--source", "oa", str(FIXTURES / "focus" / "focus-1.0-sample.csv")), "the page is not JSON"),
        (("--source", "an", str(FIXTURES / "openai" / "missing.json")), "cannot read it"),
        (
            ("--source", "aws", str(FIXTURES / "focus" / "spec-virtual-currency-a2.csv")),
            "spec-virtual-currency-a2.csv: row 2 ChargePeriodStart is not an ISO 8601 date/time",
        ),
    ],
)
def test_a_file_that_is_not_the_sources_is_refused_and_nothing_stored(run, engine, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    assert run(*args) == 2
    assert message in capsys.readouterr().err
    assert lines_between(engine, *EVER) == []
