"""OTLP exports and Prometheus expositions -> a pool's GPU samples -> per-minute buckets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.demo.spans import key_value
from breakeven.collector.gpu.samples import OTLP, SCRAPE, Sample, buckets, from_exposition
from breakeven.collector.ingest.gpu_metrics import from_otlp

FIXTURES = Path(__file__).parents[1] / "fixtures" / "gpu"
NOW = 1_749_556_800 * 10**9  # 2025-06-10T12:00:00Z
POOLS = parse_pricing(
    {
        "pools": [
            {"name": name, "boxes": 1, "rent_per_hour": "1", "capacity": {"input_tps": "1", "output_tps": "1"},
             "match": {"backend": name}, "alternative": {"provider": "together", "model": "m"},
             "gpu_metrics": {"match": {"host.name": pattern}}}
            for name, pattern in (("big", "gpu-70b-*"), ("small", "gpu-8b-*"))
        ]
    }
).pools  # fmt: skip


def point(value: float | int, at_ns: int = NOW, **attrs: Any) -> NumberDataPoint:
    kvs = [key_value(k, v) for k, v in attrs.items()]
    if isinstance(value, int):
        return NumberDataPoint(time_unix_nano=at_ns, as_int=value, attributes=kvs)
    return NumberDataPoint(time_unix_nano=at_ns, as_double=value, attributes=kvs)


def export(host: str | None, *metrics: Metric) -> ExportMetricsServiceRequest:
    resource = Resource(attributes=[key_value("host.name", host)] if host else [])
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[ScopeMetrics(metrics=list(metrics))])]
    )


def gauge(name: str, *points: NumberDataPoint, unit: str = "") -> Metric:
    return Metric(name=name, unit=unit, gauge=Gauge(data_points=list(points)))


def shown(samples: list[Sample]) -> list[tuple[str, str, str, str, str, str]]:
    return [(s.pool, s.source, s.metric, s.host, s.device, str(s.value)) for s in samples]


@pytest.mark.parametrize(
    ("request_", "samples", "unmatched", "invalid"),
    [
        pytest.param(
            export("gpu-70b-1", gauge("hw.gpu.utilization", point(0.42, **{"hw.id": "0"}), point(0.5, **{"hw.id": "1"}), unit="1")),
            [("big", OTLP, "hw.gpu.utilization", "gpu-70b-1", "0", "0.4200000000"),
             ("big", OTLP, "hw.gpu.utilization", "gpu-70b-1", "1", "0.5000000000")],
            0, 0, id="semconv gauge from a box of the pool",
        ),
        pytest.param(
            export(None, gauge("DCGM_FI_DEV_GPU_UTIL", point(87, gpu="0", UUID="GPU-a", **{"host.name": "gpu-8b-2"}))),
            [("small", OTLP, "DCGM_FI_DEV_GPU_UTIL", "gpu-8b-2", "GPU-a", "0.8700000000")],
            0, 0, id="DCGM forwarded by an OTel Collector: integer percent, host on the point",
        ),
        pytest.param(
            export("cpu-box", gauge("hw.gpu.utilization", point(0.3), unit="1")), [], 1, 0,
            id="a box no pool claims: counted, dropped",
        ),
        pytest.param(
            export("gpu-70b-1", gauge("hw.gpu.utilization", point(42.0), unit="1"), gauge("DCGM_FI_DEV_GPU_UTIL", point(140))),
            [], 0, 2, id="not a share: invalid, counted",
        ),
        pytest.param(
            export("gpu-70b-1", gauge("hw.gpu.utilization", point(0.3, at_ns=NOW + 3600 * 10**9), unit="1")), [], 0, 1,
            id="an hour in the future: invalid",
        ),
        pytest.param(
            export("gpu-70b-1", gauge("hw.gpu.utilization", point(0.3, at_ns=0), unit="1")),
            [("big", OTLP, "hw.gpu.utilization", "gpu-70b-1", "", "0.3000000000")], 0, 0,
            id="no time: received now",
        ),
        pytest.param(
            export("gpu-70b-1", gauge("hw.gpu.utilization", point(0.9, **{"hw.gpu.task": "encoder"}), unit="1")), [], 0, 0,
            id="the encoder's utilization is skipped, not counted",
        ),
        pytest.param(
            export("gpu-70b-1", Metric(name="hw.gpu.utilization", sum=Sum(data_points=[point(0.3)]))), [], 0, 0,
            id="a sum under the name is not a gauge: skipped",
        ),
        pytest.param(
            export("gpu-70b-1", Metric(name="DCGM_FI_DEV_GPU_UTIL", histogram=Histogram(data_points=[HistogramDataPoint(count=3)]))),
            [], 0, 0, id="a histogram: skipped",
        ),
        pytest.param(
            export("gpu-70b-1", gauge("DCGM_FI_DEV_FB_USED", point(76866)), gauge("system.cpu.utilization", point(0.5))), [], 0, 0,
            id="other metrics: only counted as received, elsewhere",
        ),
        pytest.param(
            export("gpu-70b-1", gauge("vllm:kv_cache_usage_perc", point(0.25, engine="0"))),
            [("big", OTLP, "vllm:kv_cache_usage_perc", "gpu-70b-1", "0", "0.2500000000")], 0, 0,
            id="vLLM KV cache usage: kept, as its own kind",
        ),
    ],
)  # fmt: skip
def test_from_otlp(
    request_: ExportMetricsServiceRequest, samples: list[tuple[str, ...]], unmatched: int, invalid: int
) -> None:
    got = from_otlp(request_, POOLS, NOW)
    assert (shown(got.samples), got.unmatched, got.invalid) == (samples, unmatched, invalid)


def test_counters_name_the_source() -> None:
    got = from_otlp(export("gpu-70b-1", gauge("hw.gpu.utilization", point(0.5), point(7.0), unit="1")), POOLS, NOW)
    assert got.counters(OTLP) == {("gpu_points_stored", "otlp"): 1, ("gpu_points_invalid", "otlp"): 1}


def test_dcgm_exposition() -> None:
    got = from_exposition((FIXTURES / "dcgm-exporter.txt").read_text(), "big", "http://10.0.0.8:9400/metrics", NOW)
    assert shown(got.samples) == [
        ("big", SCRAPE, "DCGM_FI_DEV_GPU_UTIL", "gpu-70b-1", "GPU-3c1e9a3f-7d44-2b1c-8e0a-5f6b7c8d9e01", "0.8700000000"),
        ("big", SCRAPE, "DCGM_FI_DEV_GPU_UTIL", "gpu-70b-1", "GPU-9b8a7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", "0.6400000000"),
        ("big", SCRAPE, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gpu-70b-1", "GPU-3c1e9a3f-7d44-2b1c-8e0a-5f6b7c8d9e01", "0.8123450000"),
        ("big", SCRAPE, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gpu-70b-1", "GPU-9b8a7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4", "0.5900010000"),
    ]  # fmt: skip
    assert {s.at_ns for s in got.samples} == {NOW}
    assert (got.unmatched, got.invalid) == (0, 0)


def test_vllm_exposition_gives_kv_cache_usage_with_the_endpoint_as_host() -> None:
    got = from_exposition((FIXTURES / "vllm-metrics.txt").read_text(), "big", "http://gpu-70b-1:8000/metrics", NOW)
    assert shown(got.samples) == [("big", SCRAPE, "vllm:kv_cache_usage_perc", "gpu-70b-1:8000", "0", "0.4219000000")]
    assert got.samples[0].kind == "kv_cache_usage"


@pytest.mark.parametrize(
    ("text", "samples", "invalid"),
    [
        pytest.param('DCGM_FI_DEV_GPU_UTIL{gpu="0"} 12\n', 1, 0, id="untyped samples are read"),
        pytest.param('# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{gpu="0"} NaN\n', 0, 1, id="NaN: invalid"),
        pytest.param(
            '# TYPE DCGM_FI_DEV_GPU_UTIL counter\nDCGM_FI_DEV_GPU_UTIL{gpu="0"} 12\n', 0, 0, id="a counter: skipped"
        ),
        pytest.param(
            'DCGM_FI_DEV_GPU_UTIL{gpu="0"} 12 1749556800000\n', 1, 0, id="a sample's own timestamp (ms) is used"
        ),
        pytest.param("", 0, 0, id="an empty exposition"),
    ],
)
def test_exposition_edge_cases(text: str, samples: int, invalid: int) -> None:
    got = from_exposition(text, "big", "http://b:9400/metrics", NOW + 5 * 10**9)
    assert (len(got.samples), got.invalid) == (samples, invalid)


# What prometheus_client's parser says about each text that is not an exposition.
NOT_AN_EXPOSITION = {
    "<html><body>Bad gateway</body></html>": r"(?i)^invalid metric name",
    "DCGM_FI_DEV_GPU_UTIL{gpu=0} 12\n": r"(?i)^invalid labels",
    "DCGM_FI_DEV_GPU_UTIL busy\n": r"^could not convert string to float: 'busy'",
}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<html><body>Bad gateway</body></html>", id="HTML"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL{gpu=0} 12\n", id="an unquoted label"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL busy\n", id="not a number"),
    ],
)
def test_not_an_exposition_raises(text: str) -> None:
    with pytest.raises(ValueError, match=NOT_AN_EXPOSITION[text]):
        from_exposition(text, "big", "http://b:9400/metrics", NOW)


def test_buckets_sum_per_minute_and_count_distinct_gpus() -> None:
    minute = 60 * 10**9

    def s(metric: str, host: str, device: str, at_ns: int, value: str) -> Sample:
        return Sample("big", SCRAPE, metric, "gpu_utilization", host, device, at_ns, Decimal(value))

    samples = [
        s("DCGM_FI_DEV_GPU_UTIL", "a", "0", NOW, "0.5"),
        s("DCGM_FI_DEV_GPU_UTIL", "a", "1", NOW, "0.7"),
        s("DCGM_FI_DEV_GPU_UTIL", "a", "0", NOW + 15 * 10**9, "0.9"),  # the same GPU again, same minute
        s("DCGM_FI_DEV_GPU_UTIL", "a", "0", NOW + minute, "0.1"),  # next minute
        s("DCGM_FI_DEV_GPU_UTIL", "b", "0", NOW, "0.2"),  # another host
    ]
    got = [(b.minute, b.host, b.samples, b.value_sum, b.value_max, b.gpus, b.last_sample_at) for b in buckets(samples)]
    noon = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    assert got == [
        (noon, "a", 3, Decimal("2.1"), Decimal("0.9"), 2, datetime(2025, 6, 10, 12, 0, 15, tzinfo=UTC)),
        (noon, "b", 1, Decimal("0.2"), Decimal("0.2"), 1, noon),
        (datetime(2025, 6, 10, 12, 1, tzinfo=UTC), "a", 1, Decimal("0.1"), Decimal("0.1"), 1, datetime(2025, 6, 10, 12, 1, tzinfo=UTC)),
    ]  # fmt: skip
