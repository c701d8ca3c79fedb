"""What the OTLP metrics receivers call: the export's GPU samples, committed before it is answered.

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
from breakeven.collector.gpu.samples import OTLP, buckets, from_otlp
from breakeven.collector.gpu.store import GpuStore
from breakeven.collector.price.pools import Pool
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

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
