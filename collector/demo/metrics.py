"""The GPU utilization the demo's boxes report, as OTLP metric bodies.

The 70B box reports hw.gpu.utilization (and vLLM's KV cache usage); the 8B box reports
DCGM_FI_DEV_GPU_UTIL with DCGM's labels, as an OpenTelemetry Collector scraping a DCGM
exporter forwards it.
"""

from __future__ import annotations

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from breakeven.collector.demo.spans import key_value


def gpu_body(day_points: dict[str, list[tuple[int, float, float]]]) -> bytes:
    """One ExportMetricsServiceRequest: the 70B box's hw.gpu.utilization and KV cache, the 8B box's DCGM gauge."""

    def gauge(name: str, unit: str, points: list[NumberDataPoint]) -> Metric:
        return Metric(name=name, unit=unit, gauge=Gauge(data_points=points))

    def point(at_ns: int, value: float | int, **attrs: str) -> NumberDataPoint:
        kvs = [key_value(k, v) for k, v in attrs.items()]
        if isinstance(value, int):
            return NumberDataPoint(time_unix_nano=at_ns, as_int=value, attributes=kvs)
        return NumberDataPoint(time_unix_nano=at_ns, as_double=round(value, 4), attributes=kvs)

    big, small = day_points["llama-70b-fp8"], day_points["llama-8b-owned"]
    dcgm = {"gpu": "0", "UUID": "GPU-5e2b7c1a-8d3f-4b6e-9a10-2c4d6e8f0a1b", "device": "nvidia0",
            "modelName": "NVIDIA L40S", "Hostname": "gpu-8b-1"}  # fmt: skip
    boxes = [
        (
            {"host.name": "gpu-70b-1", "service.name": "gpu-agent"},
            [
                gauge("hw.gpu.utilization", "1", [point(t, gpu, **{"hw.id": "gpu-0"}) for t, gpu, _ in big]),
                gauge("vllm:kv_cache_usage_perc", "", [point(t, kv, engine="0") for t, _, kv in big]),
            ],
        ),
        (
            {"service.name": "dcgm-exporter", "server.address": "gpu-8b-1"},
            [gauge("DCGM_FI_DEV_GPU_UTIL", "", [point(t, round(gpu * 100), **dcgm) for t, gpu, _ in small])],
        ),
    ]
    scope = InstrumentationScope(name="breakeven.demo")
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=[key_value(k, v) for k, v in resource.items()]),
                scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics)],
            )
            for resource, metrics in boxes
        ]
    )
    return request.SerializeToString()
