"""GPU metric names and units: each known metric's point becomes a ratio 0-1, or is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from breakeven.collector.gpu.names import (
    GPU_UTILIZATION,
    KNOWN_METRICS,
    KV_CACHE_USAGE,
    counts,
    device_of,
    known_metric,
    ratio_of,
)


@pytest.mark.parametrize(
    ("name", "value", "unit", "expected"),
    [
        pytest.param("hw.gpu.utilization", 0.42, "1", "0.42", id="OTel semconv: a ratio, unit 1"),
        pytest.param("hw.gpu.utilization", 0.42, "", "0.42", id="OTel semconv without a unit: still a ratio"),
        pytest.param("hw.gpu.utilization", 42, "%", "0.42", id="a point that says percent is read as percent"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL", 87, "", "0.87", id="DCGM: integer percent"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL", 100, "", "1", id="DCGM at 100%"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL", 0, "", "0", id="DCGM idle"),
        pytest.param(
            "DCGM_FI_DEV_GPU_UTIL", 0.87, "1", "0.87", id="DCGM forwarded with unit 1 by a pipeline that scaled it"
        ),
        pytest.param("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.731, "", "0.731", id="DCGM profiling: a ratio"),
        pytest.param("gpu.utilization", 55.5, "", "0.555", id="OpenLIT SDK: percent"),
        pytest.param("gpu.utilization", 0.555, "1", "0.555", id="gpu.utilization that says ratio"),
        pytest.param("nvidia_smi_utilization_gpu_ratio", 0.3, "", "0.3", id="nvidia_gpu_exporter: ratio"),
        pytest.param("nvidia_gpu_duty_cycle", 30, "", "0.3", id="nvidia_gpu_prometheus_exporter: percent"),
        pytest.param("hw_gpu_utilization_ratio", 0.25, "", "0.25", id="semconv through a Prometheus exporter"),
        pytest.param("vllm:kv_cache_usage_perc", 0.4219, "", "0.4219", id="vLLM KV cache: 1 means 100% despite _perc"),
        pytest.param("vllm:gpu_cache_usage_perc", 0.5, "", "0.5", id="vLLM V0 KV cache"),
        pytest.param("sglang:token_usage", 0.28, "", "0.28", id="SGLang token pool"),
        pytest.param("hw.gpu.utilization", 1.0000001, "1", "1", id="float noise past 100% is 100%"),
        pytest.param("hw.gpu.utilization", 1 / 3, "1", "0.3333333333", id="kept to 10 places, as NUMERIC(20,10)"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL", 101, "", None, id="past 100%: not a share"),
        pytest.param("hw.gpu.utilization", 1.5, "1", None, id="a ratio past 1: not a share"),
        pytest.param("hw.gpu.utilization", 42.0, "", None, id="a percent sent as a bare ratio is refused, not guessed"),
        pytest.param("hw.gpu.utilization", -0.1, "1", None, id="negative"),
        pytest.param("hw.gpu.utilization", float("nan"), "1", None, id="NaN"),
        pytest.param("hw.gpu.utilization", float("inf"), "1", None, id="infinity"),
        pytest.param("hw.gpu.utilization", 0.5, "By", None, id="a unit that is not a share"),
    ],
)
def test_values_become_ratios(name: str, value: float, unit: str, expected: str | None) -> None:
    metric = known_metric(name)
    assert metric is not None
    got = ratio_of(metric, value, unit)
    assert got == (None if expected is None else Decimal(expected))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("hw.gpu.utilization", GPU_UTILIZATION, id="semconv"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL", GPU_UTILIZATION, id="DCGM"),
        pytest.param("vllm:kv_cache_usage_perc", KV_CACHE_USAGE, id="vLLM's KV cache is not GPU utilization"),
        pytest.param("vllm:gpu_cache_usage_perc", KV_CACHE_USAGE, id="despite 'gpu' in its name"),
        pytest.param("DCGM_FI_DEV_FB_USED", None, id="memory used: not read"),
        pytest.param("hw.gpu.memory.utilization", None, id="memory utilization: not read"),
        pytest.param(
            "dcgm_fi_dev_gpu_util", GPU_UTILIZATION, id="any case: OTel's Python SDK lowercases instrument names"
        ),
        pytest.param("vllm:num_requests_running", None, id="other engine metrics: only counted"),
    ],
)
def test_which_names_are_read(name: str, kind: str | None) -> None:
    metric = known_metric(name)
    assert (metric.kind if metric else None) == kind


def test_every_known_metric_is_documented_on_the_pricing_page() -> None:
    from pathlib import Path

    pricing_page = (Path(__file__).parents[2] / "docs" / "pricing.md").read_text()
    for metric in KNOWN_METRICS:
        assert f"`{metric.name}`" in pricing_page, metric.name


@pytest.mark.parametrize(
    ("attributes", "counted"),
    [
        pytest.param({}, True, id="no task: the GPU's utilization"),
        pytest.param({"hw.gpu.task": "general"}, True, id="general task"),
        pytest.param({"hw.gpu.task": "encoder"}, False, id="the encoder's utilization is not the GPU's"),
        pytest.param({"hw.gpu.task": "decoder"}, False, id="nor the decoder's"),
    ],
)
def test_only_the_general_task_counts(attributes: dict[str, object], counted: bool) -> None:
    metric = known_metric("hw.gpu.utilization")
    assert metric is not None
    assert counts(metric, attributes) is counted


@pytest.mark.parametrize(
    ("name", "attributes", "device"),
    [
        pytest.param("DCGM_FI_DEV_GPU_UTIL", {"gpu": "3", "UUID": "GPU-abc"}, "GPU-abc", id="DCGM: UUID first"),
        pytest.param("DCGM_FI_DEV_GPU_UTIL", {"gpu": "3"}, "3", id="DCGM: the index without a UUID"),
        pytest.param("hw.gpu.utilization", {"hw.id": "nvidia-0"}, "nvidia-0", id="semconv: hw.id"),
        pytest.param("vllm:kv_cache_usage_perc", {"engine": "1", "model_name": "m"}, "1", id="vLLM: the engine"),
        pytest.param("hw.gpu.utilization", {}, "", id="nothing says: one device"),
    ],
)
def test_device_of(name: str, attributes: dict[str, object], device: str) -> None:
    metric = known_metric(name)
    assert metric is not None
    assert device_of(metric, attributes) == device
