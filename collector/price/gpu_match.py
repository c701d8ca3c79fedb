"""Which pool a GPU metric series belongs to: a pool's `[pricing.pools.gpu_metrics]`, and matching.

Pushed (OTLP) points belong to the first pool, in config order, whose `match` takes them:
every attribute named must be present and match one of its glob patterns (`*`, `?`, `[ab]`;
case-insensitive, as host names are), looking at the point's attributes first, then its
resource's (so `host.name` from the resource detector, or `Hostname` from a DCGM label an
OpenTelemetry Collector forwarded, both work). Scraped series belong to the pool that lists
the endpoint under `scrape`; a URL belongs to one pool only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# The box a series comes from: the first of these a point (then its resource) carries.
HOST_KEYS = ("host.name", "Hostname", "hostname", "host.id", "k8s.node.name", "instance", "service.instance.id")


@dataclass(frozen=True, slots=True)
class GpuMetricsConfig:
    """A pool's own GPU metric series: pushed ones by attribute globs, pulled ones by endpoint."""

    match: tuple[tuple[str, tuple[str, ...]], ...] = ()  # attribute -> patterns, any of which may match
    scrape: tuple[str, ...] = ()  # Prometheus endpoint URLs (DCGM exporter, vLLM /metrics ...)

    def matches(self, attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> bool:
        """Whether a pushed point with these attributes (and resource attributes) is this pool's."""
        if not self.match:
            return False
        for key, patterns in self.match:
            value = lookup(key, attributes, resource)
            if value is None:
                return False
            text = value.lower()
            if not any(fnmatchcase(text, pattern.lower()) for pattern in patterns):
                return False
        return True


def lookup(key: str, attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> str | None:
    """An attribute of the point, else of its resource, as text; None when neither has it."""
    value = attributes.get(key)
    if value is None:
        value = resource.get(key)
    return None if value is None else str(value)


def host_of(attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    """The box a pushed point comes from (host.name, Hostname, ...), "" when nothing says."""
    for key in HOST_KEYS:
        value = lookup(key, attributes, resource)
        if value:
            return value
    return ""
