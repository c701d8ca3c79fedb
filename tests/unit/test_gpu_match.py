"""Which pool a pushed GPU metric point belongs to, and which box it came from."""

from __future__ import annotations

from typing import Any

import pytest

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.price.gpu_match import GpuMetricsConfig, host_of
from breakeven.collector.price.pools import pool_of

HOST = (("host.name", ("gpu-70b-*",)),)


@pytest.mark.parametrize(
    ("match", "attributes", "resource", "matched"),
    [
        pytest.param(HOST, {}, {"host.name": "gpu-70b-1"}, True, id="resource host.name, glob"),
        pytest.param(HOST, {}, {"host.name": "GPU-70B-2"}, True, id="case-insensitive, as host names are"),
        pytest.param(HOST, {}, {"host.name": "gpu-8b-1"}, False, id="another box"),
        pytest.param(HOST, {}, {}, False, id="no host at all: not this pool's"),
        pytest.param(
            HOST, {"host.name": "gpu-8b-1"}, {"host.name": "gpu-70b-1"}, False, id="the point's own attribute first"
        ),
        pytest.param(
            (("Hostname", ("gpu-70b-1", "gpu-70b-2")),),
            {"Hostname": "gpu-70b-2"},
            {},
            True,
            id="DCGM label, a list of names",
        ),
        pytest.param(
            (("instance", ("10.0.0.[78]:9400",)),), {}, {"instance": "10.0.0.8:9400"}, True, id="character class"
        ),
        pytest.param(
            (("instance", ("10.0.0.[78]:9400",)),),
            {},
            {"instance": "10.0.0.9:9400"},
            False,
            id="character class, no match",
        ),
        pytest.param(
            (("host.name", ("gpu-*",)), ("gpu", ("0", "1", "2", "3"))),
            {"gpu": "2"},
            {"host.name": "gpu-a"},
            True,
            id="every attribute named must match: half a box's GPUs",
        ),
        pytest.param(
            (("host.name", ("gpu-*",)), ("gpu", ("0", "1", "2", "3"))),
            {"gpu": "5"},
            {"host.name": "gpu-a"},
            False,
            id="the other half belongs elsewhere",
        ),
        pytest.param((("hw.id", ("*",)),), {"hw.id": 7}, {}, True, id="non-string values are matched as text"),
        pytest.param((), {}, {"host.name": "x"}, False, id="no match: takes nothing pushed (scrape only)"),
    ],
)
def test_matches(
    match: tuple[tuple[str, tuple[str, ...]], ...], attributes: dict[str, Any], resource: dict[str, Any], matched: bool
) -> None:
    assert GpuMetricsConfig(match=match).matches(attributes, resource) is matched


def _pools(*matches: dict[str, Any] | None) -> Any:
    base = {"boxes": 1, "rent_per_hour": "1", "capacity": {"input_tps": "1", "output_tps": "1"},
            "match": {"backend": "x"}, "alternative": {"provider": "together", "model": "m"}}  # fmt: skip
    pools = [
        {**base, "name": f"p{i}", **({"gpu_metrics": {"match": m}} if m is not None else {})}
        for i, m in enumerate(matches)
    ]
    return parse_pricing({"pools": pools}).pools


@pytest.mark.parametrize(
    ("resource", "pool"),
    [
        pytest.param({"host.name": "gpu-a-1"}, "p1", id="the only pool that matches"),
        pytest.param({"host.name": "gpu-b-1"}, "p2", id="the first in config order wins"),
        pytest.param({"host.name": "cpu-1"}, None, id="no pool: counted as unmatched"),
    ],
)
def test_first_pool_in_config_order(resource: dict[str, Any], pool: str | None) -> None:
    pools = _pools(None, {"host.name": "gpu-a-*"}, {"host.name": "gpu-*"}, {"host.name": "gpu-b-*"})
    assert pool_of(pools, {}, resource) == pool


@pytest.mark.parametrize(
    ("attributes", "resource", "host"),
    [
        pytest.param({}, {"host.name": "box-1", "service.instance.id": "x"}, "box-1", id="host.name"),
        pytest.param(
            {"Hostname": "dgx-3"}, {"service.instance.id": "10.0.0.3:9400"}, "dgx-3", id="DCGM's Hostname label"
        ),
        pytest.param(
            {}, {"service.instance.id": "10.0.0.3:9400"}, "10.0.0.3:9400", id="an OTel Collector's scrape instance"
        ),
        pytest.param({}, {}, "", id="nothing says"),
    ],
)
def test_host_of(attributes: dict[str, Any], resource: dict[str, Any], host: str) -> None:
    assert host_of(attributes, resource) == host
