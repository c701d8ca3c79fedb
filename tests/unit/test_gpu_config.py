"""`[pricing.pools.gpu_metrics]` and gpu_scrape_interval_seconds: the worked example loads, mistakes name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import load_settings
from breakeven.collector.price.gpu_match import GpuMetricsConfig

EXAMPLE = Path(__file__).parents[2] / "examples" / "hybrid-fleet.toml"
POOL = """
[[pricing.pools]]
name = "p"
boxes = 1
rent_per_month = 100
capacity = { input_tps = 1000, output_tps = 100 }
match = { backend = "b" }
alternative = { provider = "together", model = "m" }
"""


def load(tmp_path: Path, text: str, **flags: object) -> object:
    config = tmp_path / "breakeven.toml"
    config.write_text(text)
    return load_settings({"config": str(config), **flags}, environ={})


def test_worked_example_names_each_pools_series() -> None:
    pools = load_settings({"config": str(EXAMPLE)}, environ={}).pricing.pools
    seventy, eight = pools
    assert seventy.gpu_metrics == GpuMetricsConfig(
        match=(("host.name", ("gpu-70b-*",)),),
        scrape=("http://gpu-70b-1:9400/metrics", "http://gpu-70b-2:9400/metrics", "http://gpu-70b-1:8000/metrics"),
    )
    assert eight.gpu_metrics == GpuMetricsConfig(match=(("Hostname", ("l40s-1",)),))


def test_a_pool_without_gpu_metrics_has_none(tmp_path: Path) -> None:
    settings = load(tmp_path, POOL)
    assert settings.pricing.pools[0].gpu_metrics is None  # type: ignore[attr-defined]
    assert settings.gpu_scrape_interval_seconds == 15  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param("", "pricing.pools[0].gpu_metrics: give match", id="an empty section"),
        pytest.param('scrape = []', "pricing.pools[0].gpu_metrics: give match", id="nothing to scrape and no match"),
        pytest.param("match = {}", "pricing.pools[0].gpu_metrics.match: name at least one attribute", id="empty match"),
        pytest.param('match = "gpu-*"', "pricing.pools[0].gpu_metrics.match: expected a table", id="match not a table"),
        pytest.param('match = { "host.name" = "" }', "pricing.pools[0].gpu_metrics.match.host.name: expected a non-empty string", id="empty pattern"),
        pytest.param('match = { "host.name" = [] }', "pricing.pools[0].gpu_metrics.match.host.name: expected a glob pattern or a list", id="no patterns"),
        pytest.param('match = { "host.name" = ["a", 3] }', "pricing.pools[0].gpu_metrics.match.host.name[1]: expected a non-empty string", id="a pattern not a string"),
        pytest.param('scrape = "http://box:9400/metrics"', "pricing.pools[0].gpu_metrics.scrape: expected a list of URLs", id="one URL, not a list"),
        pytest.param('scrape = ["box:9400/metrics"]', "pricing.pools[0].gpu_metrics.scrape[0]: expected an http(s) URL", id="no scheme"),
        pytest.param('scrape = ["ftp://box/metrics"]', "pricing.pools[0].gpu_metrics.scrape[0]: expected an http(s) URL", id="not http"),
        pytest.param('scrape = ["http://box:port/metrics"]', "pricing.pools[0].gpu_metrics.scrape[0]: not a valid port", id="bad port"),
        pytest.param('scrap = ["http://box:9400/metrics"]', "pricing.pools[0].gpu_metrics.scrap: unknown key (known: match, scrape)", id="typo"),
    ],
)  # fmt: skip
def test_bad_gpu_metrics_names_the_key(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load(tmp_path, f"{POOL}\n[pricing.pools.gpu_metrics]\n{section}\n")
    assert message in str(err.value)


def test_one_endpoint_belongs_to_one_pool(tmp_path: Path) -> None:
    url = 'scrape = ["http://box:9400/metrics"]'
    second = POOL.replace('name = "p"', 'name = "q"')
    with pytest.raises(SettingsError) as err:
        load(tmp_path, f"{POOL}[pricing.pools.gpu_metrics]\n{url}\n{second}[pricing.pools.gpu_metrics]\n{url}\n")
    assert "pricing.pools[1].gpu_metrics.scrape[0]: http://box:9400/metrics already belongs to pool 'p'" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("0", "gpu_scrape_interval_seconds: must be positive", id="zero"),
        pytest.param("often", "gpu_scrape_interval_seconds: expected an integer", id="not a number"),
    ],
)
def test_bad_scrape_interval(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({}, environ={"BREAKEVEN_GPU_SCRAPE_INTERVAL_SECONDS": value})
