"""The GPU metric names breakeven reads, and their units: one point's value -> a ratio from 0 to 1.

Two kinds, never mixed:
- gpu_utilization: how busy the GPU was (NVML's "utilization.gpu", the share of time a kernel
  ran; DCGM's profiling engine-active ratio). The figure a pool's break-even cares about.
- kv_cache_usage: how full an inference engine's KV cache is (vLLM, SGLang). It says how much
  memory the batch holds, not how busy the GPU is: a nearly idle vLLM with one long context
  can sit at 90%. It is reported beside GPU utilization, never as it.

A point that names its unit is read in that unit (OTLP `1` or `%`); one that does not (every
Prometheus exposition) in the unit its metric is documented to use. A value that is not a
share once scaled (negative, NaN, past 100%, or a unit such as `By`) is invalid and counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

GPU_UTILIZATION = "gpu_utilization"
KV_CACHE_USAGE = "kv_cache_usage"
KINDS = (GPU_UTILIZATION, KV_CACHE_USAGE)
PLACES = Decimal("1e-10")  # NUMERIC(20,10), as money is stored
_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_RATIO_UNITS = frozenset({"1", "ratio", "{ratio}", "percentunit"})
_PERCENT_UNITS = frozenset({"%", "percent", "{percent}"})
_SLACK = 1e-6  # float noise past exactly 100% is 100%


@dataclass(frozen=True, slots=True)
class KnownMetric:
    """A metric breakeven reads: its kind, its unit when the point does not say, what names a device."""

    name: str
    kind: str
    percent: bool  # 0-100 when the point names no unit; else a ratio 0-1
    device: tuple[str, ...]  # labels or attributes that tell one GPU (or engine) from another, tried in order
    emitter: str  # who sends it under this name (docs)
    # An attribute that, when present, must hold one of these values (hw.gpu.task: only "general";
    # the encoder's and decoder's utilization are not the GPU's).
    only: tuple[str, tuple[str, ...]] | None = None


KNOWN_METRICS: tuple[KnownMetric, ...] = (
    KnownMetric("hw.gpu.utilization", GPU_UTILIZATION, False, ("hw.id",),
                "OpenTelemetry hardware semantic conventions (OpenLIT GPU collector, OTel agents)",
                only=("hw.gpu.task", ("general",))),
    KnownMetric("hw_gpu_utilization_ratio", GPU_UTILIZATION, False, ("hw_id",),
                "hw.gpu.utilization through an OpenTelemetry Collector's Prometheus exporter",
                only=("hw_gpu_task", ("general",))),
    KnownMetric("hw_gpu_utilization", GPU_UTILIZATION, False, ("hw_id",),
                "hw.gpu.utilization through a Prometheus exporter without unit suffixes",
                only=("hw_gpu_task", ("general",))),
    KnownMetric("gpu.utilization", GPU_UTILIZATION, True, ("gpu.uuid", "gpu.index", "gpu_uuid", "gpu_index"),
                "OpenLIT's SDK GPU instrumentation (nvidia-smi, percent)"),
    KnownMetric("DCGM_FI_DEV_GPU_UTIL", GPU_UTILIZATION, True, ("UUID", "uuid", "gpu", "device"),
                "NVIDIA DCGM exporter (percent; also pushed by an OTel Collector that scrapes it)"),
    KnownMetric("DCGM_FI_PROF_GR_ENGINE_ACTIVE", GPU_UTILIZATION, False, ("UUID", "uuid", "gpu", "device"),
                "NVIDIA DCGM exporter, profiling: share of time the graphics engine was active"),
    KnownMetric("dcgm_gpu_utilization", GPU_UTILIZATION, True, ("uuid", "UUID", "gpu"),
                "NVIDIA DCGM exporter 1.x (percent)"),
    KnownMetric("nvidia_smi_utilization_gpu_ratio", GPU_UTILIZATION, False, ("uuid", "UUID", "index"),
                "nvidia_gpu_exporter (nvidia-smi)"),
    KnownMetric("nvidia_gpu_duty_cycle", GPU_UTILIZATION, True, ("uuid", "minor_number"),
                "nvidia_gpu_prometheus_exporter (NVML, percent)"),
    KnownMetric("vllm:kv_cache_usage_perc", KV_CACHE_USAGE, False, ("engine",),
                "vLLM /metrics (V1 engine; 1 means 100%)"),
    KnownMetric("vllm:gpu_cache_usage_perc", KV_CACHE_USAGE, False, ("engine",),
                "vLLM /metrics (V0 engine; 1 means 100%)"),
    KnownMetric("sglang:token_usage", KV_CACHE_USAGE, False, ("dp_rank", "tp_rank", "engine"),
                "SGLang /metrics: share of the KV token pool in use"),
)  # fmt: skip
# OpenTelemetry instrument names are case-insensitive (the Python SDK lowercases them:
# DCGM_FI_DEV_GPU_UTIL arrives as dcgm_fi_dev_gpu_util), so names are matched regardless of case.
BY_NAME = {metric.name.lower(): metric for metric in KNOWN_METRICS}


def known_metric(name: str) -> KnownMetric | None:
    """The metric breakeven reads under this name (any case), or None (every other metric is only counted)."""
    return BY_NAME.get(name.lower())


def ratio_of(metric: KnownMetric, value: float | int, unit: str = "") -> Decimal | None:
    """The point's value as a ratio 0-1 (10 places), or None when it is not a share.

    `unit` is the OTLP point's metric unit ("" for none, as in every Prometheus exposition).
    """
    unit = unit.strip()
    if unit in _PERCENT_UNITS:
        percent = True
    elif unit in _RATIO_UNITS:
        percent = False
    elif unit == "":
        percent = metric.percent
    else:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    ratio = number / 100 if percent else number
    if ratio < 0 or ratio > 1 + _SLACK:
        return None
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    scaled = exact / _HUNDRED if percent else exact
    return min(scaled, _ONE).quantize(PLACES)


def counts(metric: KnownMetric, attributes: Mapping[str, object]) -> bool:
    """Whether a point with these attributes is the metric's own figure (not an encoder's share, say)."""
    if metric.only is None:
        return True
    key, allowed = metric.only
    value = attributes.get(key)
    return value is None or str(value) in allowed


def device_of(metric: KnownMetric, attributes: Mapping[str, object]) -> str:
    """The GPU (or engine) a point is about, "" when it does not say (one per host, then)."""
    for key in metric.device:
        value = attributes.get(key)
        if value is not None and str(value) != "":
            return str(value)
    return ""
