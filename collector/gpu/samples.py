"""GPU samples of a pool -> per-minute buckets; Prometheus expositions -> samples.

Pure: no I/O. OTLP metric exports become samples at the receivers (ingest/gpu_metrics.py).
A sample is one point of a known metric (breakeven.collector.gpu.names) that a pool claims,
as a ratio. Only gauges are read (a DCGM or hw.gpu.utilization point is a gauge;
a sum or histogram under such a name is not a utilization and is skipped). Samples are
stored as buckets, one per (UTC minute, pool, source, metric, host): how many samples,
their sum and maximum, how many distinct GPUs (or engines) the host reported, the last
sample's time. So storage grows with boxes x minutes, never with samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from breakeven.collector.gpu.names import counts, device_of, known_metric, ratio_of

OTLP, SCRAPE = "otlp", "scrape"
SOURCES = (OTLP, SCRAPE)
MINUTE_NS = 60 * 1_000_000_000
FUTURE_SLACK_NS = 10 * MINUTE_NS  # a box's clock may run ahead; a point further ahead is refused
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_READ = frozenset({"gauge", "unknown"})  # Prometheus types read: gauges, and untyped samples


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one GPU (or engine) that a pool claims, as a ratio 0-1."""

    pool: str
    source: str  # otlp | scrape
    metric: str  # the name it arrived under
    kind: str  # gpu_utilization | kv_cache_usage
    host: str  # the box ("" when nothing says)
    device: str  # the GPU or engine on it ("" when nothing says)
    at_ns: int
    value: Decimal


@dataclass(slots=True)
class Extracted:
    """What an export or a scrape held for the pools, and what was left out and why."""

    samples: list[Sample] = field(default_factory=list)
    unmatched: int = 0  # points of a known metric that no pool claims
    invalid: int = 0  # points of a known metric that are not a share, or whose time is off

    def counters(self, source: str) -> dict[tuple[str, str], int]:
        """The ingest counters this adds: (name, reason) -> count."""
        found = {
            ("gpu_points_stored", source): len(self.samples),
            ("gpu_points_unmatched", source): self.unmatched,
            ("gpu_points_invalid", source): self.invalid,
        }
        return {key: n for key, n in found.items() if n}


@dataclass(frozen=True, slots=True)
class Bucket:
    """The samples of one (minute, pool, source, metric, host)."""

    minute: datetime
    pool: str
    source: str
    metric: str
    host: str
    kind: str
    samples: int
    value_sum: Decimal
    value_max: Decimal
    gpus: int  # distinct devices the host reported in the minute
    last_sample_at: datetime


def from_exposition(text: str, pool: str, url: str, now_ns: int) -> Extracted:
    """The GPU samples of a Prometheus text exposition scraped from a pool's endpoint.

    Raises ValueError when the text is not an exposition. The host is the sample's
    Hostname label (DCGM's), else the endpoint's host:port (Prometheus's `instance`).
    """
    out = Extracted()
    target = urlsplit(url).netloc
    for family in text_string_to_metric_families(text):
        if family.type not in _READ:
            continue
        for sample in family.samples:
            known = known_metric(sample.name)
            if known is None or not counts(known, sample.labels):
                continue
            value = ratio_of(known, sample.value)
            at_ns = int(float(sample.timestamp) * 1_000_000_000) if sample.timestamp else now_ns
            if value is None or at_ns > now_ns + FUTURE_SLACK_NS:
                out.invalid += 1
                continue
            host = sample.labels.get("Hostname") or sample.labels.get("hostname") or target
            out.samples.append(
                Sample(pool, SCRAPE, known.name, known.kind, host, device_of(known, sample.labels), at_ns, value)
            )
    return out


def minute_of(at_ns: int) -> datetime:
    """The start of the UTC minute that holds an instant (ns since the epoch)."""
    return EPOCH + timedelta(minutes=at_ns // MINUTE_NS)


def buckets(samples: Iterable[Sample]) -> list[Bucket]:
    """Samples summed per (minute, pool, source, metric, host), in key order."""
    groups: dict[tuple[datetime, str, str, str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((minute_of(s.at_ns), s.pool, s.source, s.metric, s.host), []).append(s)
    out = []
    for key in sorted(groups):
        group = groups[key]
        minute, pool, source, metric, host = key
        last_ns = max(s.at_ns for s in group)
        out.append(
            Bucket(
                minute=minute,
                pool=pool,
                source=source,
                metric=metric,
                host=host,
                kind=group[0].kind,
                samples=len(group),
                value_sum=sum((s.value for s in group), Decimal(0)),
                value_max=max(s.value for s in group),
                gpus=len({s.device for s in group}),
                last_sample_at=EPOCH + timedelta(microseconds=last_ns // 1000),
            )
        )
    return out
