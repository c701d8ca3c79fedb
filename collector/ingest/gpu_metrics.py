"""What the OTLP metrics receivers call: the export's GPU samples, committed before it is answered.

from_otlp reads the samples a pool claims out of an export (only gauges of known metrics).

The receivers (HTTP and gRPC) call ingest_otlp after parsing, before handing the export's
counters to the pipeline: the samples go in a transaction of their own (GpuStore), so the
writer's hot path is untouched and a 2xx still means committed. A failed commit raises
GpuCommitFailed, which the receivers answer 503 (gRPC UNAVAILABLE), as a failed span commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import sqlalchemy as sa
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from breakeven.collector.gpu.names import counts, device_of, known_metric, ratio_of
from breakeven.collector.gpu.samples import FUTURE_SLACK_NS, OTLP, Extracted, Sample, buckets
from breakeven.collector.gpu.store import GpuStore
from breakeven.collector.ingest.decode import attributes
from breakeven.collector.price.gpu_match import host_of
from breakeven.collector.price.pools import Pool, pool_of

log = logging.getLogger("breakeven.gpu")


class GpuCommitFailed(Exception):
    """The export's GPU samples could not be committed; the client should retry."""


class GpuMetrics:
    """The GPU metric intake of one collector: the pools that claim series, and their store."""

    def __init__(self, engine: sa.Engine, pools: Sequence[Pool]) -> None:
        self.pools = tuple(pools)
        self.store = GpuStore(engine)

    def ingest_otlp(
        self, request: ExportMetricsServiceRequest, now_ns: int | None = None
    ) -> dict[tuple[str, str], int]:
        """Commit the export's GPU samples; the ingest counters to add. Raises GpuCommitFailed."""
        extracted = from_otlp(request, self.pools, time.time_ns() if now_ns is None else now_ns)
        try:
            self.store.write(buckets(extracted.samples))
        except Exception as exc:  # SQLAlchemy's errors, and DuckDB's own from its MERGE
            log.warning("GPU metrics commit failed: %s: %s", exc.__class__.__name__, exc)
            raise GpuCommitFailed(f"{exc.__class__.__name__}: {str(exc)[:200]}") from exc
        return extracted.counters(OTLP)


def from_otlp(request: ExportMetricsServiceRequest, pools: Sequence[Pool], now_ns: int) -> Extracted:
    """The GPU samples of an OTLP metrics export that the pools' gpu_metrics.match claim."""
    out = Extracted()
    claiming = [pool for pool in pools if pool.gpu_metrics is not None and pool.gpu_metrics.match]
    for rm in request.resource_metrics:
        resource: dict[str, object] | None = None  # decoded on the first known metric only
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                known = known_metric(metric.name)
                if known is None or metric.WhichOneof("data") != "gauge":
                    continue
                if resource is None:
                    resource = attributes(rm.resource.attributes)
                for point in metric.gauge.data_points:
                    attrs = attributes(point.attributes)
                    if not counts(known, attrs):
                        continue
                    pool = pool_of(claiming, attrs, resource)
                    if pool is None:
                        out.unmatched += 1
                        continue
                    kind = point.WhichOneof("value")
                    raw = point.as_double if kind == "as_double" else point.as_int if kind == "as_int" else None
                    value = None if raw is None else ratio_of(known, raw, metric.unit)
                    at_ns = point.time_unix_nano or now_ns
                    if value is None or at_ns > now_ns + FUTURE_SLACK_NS:
                        out.invalid += 1
                        continue
                    out.samples.append(
                        Sample(
                            pool, OTLP, known.name, known.kind, host_of(attrs, resource), device_of(known, attrs),
                            at_ns, value,
                        )
                    )  # fmt: skip
    return out
