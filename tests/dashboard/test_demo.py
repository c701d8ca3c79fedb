"""`breakeven demo`: its config loads as it is written, and it never writes into a database with data."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from breakeven.collector import demo
from breakeven.collector.cli import main
from breakeven.collector.config.settings import load_settings
from breakeven.collector.demo.command import DB_NAME
from breakeven.collector.demo.config import CONFIG_NAME, config_text
from breakeven.collector.demo.plan import Plan, plan_month


def test_the_written_config_loads_with_both_pools_a_candidate_and_fx(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(config_text(f"duckdb:///{tmp_path / 'x.duckdb'}", 8123, date(2026, 10, 25)))
    settings = load_settings({"config": str(path)}, environ={})
    pricing = settings.pricing
    assert [p.name for p in pricing.pools] == ["llama-70b-fp8", "llama-8b-owned"]
    assert [(c.name, c.model, c.quantization) for c in pricing.candidates] == [
        ("h100-fp8", "meta-llama/Llama-3.3-70B-Instruct", "fp8"),
        ("h100-bf16", "meta-llama/Llama-3.3-70B-Instruct", "bf16"),
    ]
    assert [(s.model, s.to_model, s.share) for s in pricing.substitutes] == [
        ("claude-haiku-4-5*", "meta-llama/Llama-3.3-70B-Instruct", Decimal("0.6"))
    ]
    assert (pricing.currency, set(pricing.fx.currencies())) == ("GBP", {"USD", "EUR", "GBP"})
    assert settings.http_port == 8123
    assert settings.attributes["team"] == ("app.team",)
    gpu = {p.name: p.gpu_metrics for p in pricing.pools}
    assert gpu["llama-70b-fp8"] is not None
    assert gpu["llama-70b-fp8"].match == (("host.name", ("gpu-70b-*",)),)
    assert gpu["llama-8b-owned"] is not None
    assert gpu["llama-8b-owned"].scrape == ()


@pytest.mark.parametrize(
    ("db_url", "port", "first_day"),
    [
        ("duckdb:///{tmp}/breakeven-demo.duckdb", 8000, date(2026, 10, 25)),
        ("duckdb:///{tmp}/with spaces/demo.duckdb", 8123, date(2024, 2, 29)),  # a leap day: FX a year before it
        ("postgresql://demo:pa$$word@db.internal:5432/breakeven", 65535, date(2026, 1, 1)),  # `$` in a value
        ("duckdb:///{tmp}/d.duckdb", 1, date(2025, 12, 31)),
    ],
)
def test_the_rendered_template_loads_with_the_db_and_port_given(
    tmp_path: Path, db_url: str, port: int, first_day: date
) -> None:
    db_url = db_url.format(tmp=tmp_path)
    path = tmp_path / CONFIG_NAME
    path.write_text(config_text(db_url, port, first_day))
    assert "$" not in path.read_text().replace(db_url, "")  # every placeholder filled
    settings = load_settings({"config": str(path)}, environ={})
    assert (settings.db, settings.http_port) == (db_url, port)
    assert settings.pricing.pools[1].cost.purchased_on == first_day - timedelta(days=200)  # dates follow first_day


NOW = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_month(3, NOW, seed=1)


def test_the_month_plan_covers_every_day_and_stream(plan: Plan) -> None:
    assert plan.bodies
    assert plan.spans > plan.calls > 1000
    again = plan_month(3, NOW, seed=1)
    assert again.bodies == plan.bodies  # the same seed, the same month
    assert again.metric_bodies == plan.metric_bodies


def test_the_boxes_report_gpu_utilization_every_5_minutes_following_their_traffic(plan: Plan) -> None:
    assert len(plan.metric_bodies) == 3  # a day per export
    series: dict[str, list[float]] = {}
    for body in plan.metric_bodies:
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for metric in rm.scope_metrics[0].metrics:
                points = metric.gauge.data_points
                series.setdefault(metric.name, []).extend(p.as_double or p.as_int for p in points)
    slots = (48 + 13) * 12  # every 5 minutes: two whole days, and today from 00:00 to 12:55 (the demo ends at 12:58)
    assert {name: len(values) for name, values in series.items()} == {
        "hw.gpu.utilization": slots, "vllm:kv_cache_usage_perc": slots, "DCGM_FI_DEV_GPU_UTIL": slots,
    }  # fmt: skip
    assert plan.metric_points == 3 * slots
    assert all(0 < v < 1 for v in series["hw.gpu.utilization"])
    assert all(0 <= v <= 100 for v in series["DCGM_FI_DEV_GPU_UTIL"])
    assert max(series["hw.gpu.utilization"]) > 2 * min(series["hw.gpu.utilization"])  # busy nights, quiet days


def test_refuses_to_overwrite_an_existing_demo_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / DB_NAME).write_bytes(b"not empty")
    assert main(["demo", "--out", str(tmp_path), "--days", "1"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / DB_NAME).read_bytes() == b"not empty"


def test_bad_days_are_refused() -> None:
    args = argparse.Namespace(days=0, out=".", db=None, port=8000, seed=7, force=False)
    assert demo.run(args) == 2


def test_the_demo_recommends_only_declared_moves_and_the_same_model(tmp_path: Path) -> None:
    """Of the demo's classes bought per token, a candidate box may take only support-bot's Haiku
    triage (a declared substitute, 60%) and doc-pipeline's Together Llama 3.3 70B (the same
    model); never Claude Sonnet, GPT-4o or DeepSeek."""
    from breakeven.collector.demo.traffic import STREAMS, pool_of
    from breakeven.collector.price.substitutes import move

    path = tmp_path / CONFIG_NAME
    path.write_text(config_text(f"duckdb:///{tmp_path / 'x.duckdb'}", 8123, date(2026, 10, 25)))
    pricing = load_settings({"config": str(path)}, environ={}).pricing
    movable = {
        (s.service, s.request_model, found.share, found.evidence[:11])
        for s in STREAMS
        if pool_of(s) is None
        for c in pricing.candidates
        if (
            found := move(
                s.provider, s.request_model, s.service, c.model, c.quantization, c.models, pricing.substitutes
            )
        )
    }
    assert movable == {
        ("support-bot", "claude-haiku-4-5", Decimal("0.6"), "triage eval"),
        ("doc-pipeline", "meta-llama/Llama-3.3-70B-Instruct-Turbo", Decimal(1), "the same mo"),
    }
