"""The only place that reads the environment and the config file; validated at start.

Precedence, lowest to highest: built-in defaults, the TOML config file, BREAKEVEN_*
environment variables, command-line flags. A bad value raises SettingsError naming the
setting, so `breakeven serve` stops before it listens.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from breakeven.collector.auth import AuthConfig
from breakeven.collector.config.alerts import AlertsConfig, check_reconcile, parse_alerts
from breakeven.collector.config.auth import parse_auth
from breakeven.collector.config.checks import SettingsError, read_toml
from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.config.privacy import PrivacyConfig, parse_privacy
from breakeven.collector.config.reconcile import ReconcileConfig, parse_reconcile
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.providers import canonical_provider
from breakeven.collector.records import BACKEND_CLASSES

ENV_PREFIX = "BREAKEVEN_"
SUPPORTED_DIALECTS = ("duckdb", "postgresql")
MAX_DECODE_PROCESSES = 16
# BREAKEVEN_SERVICE_HOST, BREAKEVEN_PORT_4317_TCP_ADDR ...: Kubernetes service links.
_KUBERNETES_SERVICE_LINK = re.compile(
    r"^BREAKEVEN_(SERVICE_(HOST|PORT)(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_[A-Z]+)?)?)$"
)
# Canonical fields whose source attribute a user may name in [attributes].
MAPPABLE_FIELDS = ("service", "environment", "team", "feature", "prompt_hash", "backend", "quantization")


@dataclass(frozen=True)
class Settings:
    """Every setting of the collector, validated."""

    db: str = "duckdb:///breakeven.duckdb"
    host: str = "127.0.0.1"
    otlp_http_port: int = 4318
    otlp_grpc_port: int = 4317
    http_port: int = 8000
    config: str | None = None
    migrate: bool = True
    log_level: str = "info"
    # Ingest limits.
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_spans_per_request: int = 100_000
    max_tokens_per_call: int = 100_000_000
    # Per span (docs/operations.md, hostile input): past these a span is rejected, or an audit-only value cut.
    max_attributes_per_span: int = 256
    max_attribute_value_bytes: int = 16 * 1024
    max_events_per_span: int = 128
    max_array_items: int = 256
    # Trace bodies in protobuf go through the native decoder when it is built (collector/ingest/_otlp.c).
    native_decode: bool = True
    # Processes that decode, redact and normalize trace exports beside the writer's (0: threads
    # of the server's own process); see docs/performance.md.
    decode_processes: int = 2
    # The longest an export waits for its decode process; past it the export is refused (503,
    # retry) and the process pool replaced: a hung or half-written decode never wedges ingest.
    decode_timeout_seconds: int = 5
    # Pipeline.
    queue_max_spans: int = 200_000
    batch_max_spans: int = 20_000
    trace_cache_traces: int = 20_000
    duckdb_memory_limit: str = "1GB"
    # WAL size past which DuckDB checkpoints (rewrites row groups into the file); see docs/performance.md.
    duckdb_checkpoint_threshold: str = "256MB"
    # DuckDB's threads: 1 runs each statement on the thread that issues it (docs/performance.md).
    duckdb_threads: int = 1
    # Mapping: canonical field -> span/resource attribute names tried first, in order.
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # server address, address:port or provider -> backend class.
    backend_classes: Mapping[str, str] = field(default_factory=dict)
    # The [pricing] section: price book, discounts, FX rates, self-hosted pools, candidates.
    pricing: PricingConfig = field(default_factory=PricingConfig)
    # The [alerts] section: rules, schedule and notifiers (collector/config/alerts.py).
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    # How often each pool's GPU metric endpoints ([pricing.pools.gpu_metrics] scrape) are scraped.
    gpu_scrape_interval_seconds: int = 15
    # GET /metrics: the trailing window of the per-pool and per-traffic-class gauges.
    metrics_window_seconds: int = 3600
    # Raw calls and LLM spans older than this many days are deleted (hourly rollups kept); 0 keeps them.
    retention_days: int = 0
    # The [auth] section: ingest tokens (bound to services), dashboard/API users and roles.
    auth: AuthConfig = field(default_factory=AuthConfig)
    # The [privacy] section: attributes the audit copy keeps verbatim besides the known ones.
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # The [reconcile] section: the providers' and clouds' own bills (collector/config/reconcile.py).
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    # TLS for all three listeners when both are given (PEM files).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @functools.cached_property
    def db_dialect(self) -> str:
        """The database dialect named by the URL (duckdb or postgresql); parsed once, as a
        decode process asks it of every export."""
        return make_url(self.db).get_backend_name()


_INT_SETTINGS = {f.name for f in dataclasses.fields(Settings) if f.type in ("int", int)}
_BOOL_SETTINGS = {"migrate", "native_decode"}
_PORT_SETTINGS = ("otlp_http_port", "otlp_grpc_port", "http_port")  # the three listeners, in this order
_TABLE_SETTINGS = ("attributes", "backend_classes", "pricing", "alerts", "auth", "privacy", "reconcile")
_SCALAR_SETTINGS = {f.name for f in dataclasses.fields(Settings) if f.name not in _TABLE_SETTINGS}


def load_settings(flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, config file, environment and flags; validate them."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    values: dict[str, Any] = {}
    env_values = _from_environment(environ)
    config_path = flags.get("config") or env_values.get("config")
    if config_path:
        values.update(_from_config_file(Path(config_path)))
        values["config"] = str(config_path)
    values.update(env_values)
    values.update(flags)
    return validate(values)


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if _KUBERNETES_SERVICE_LINK.match(key):
            continue  # Kubernetes injects these for a Service named "breakeven"; not ours
        if name not in _SCALAR_SETTINGS:
            # Unknown BREAKEVEN_* variables are probably typos of ours; say so.
            raise SettingsError(f"{key}: unknown setting (known: {', '.join(sorted(_SCALAR_SETTINGS))})")
        found[name] = raw
    return found


def _from_config_file(path: Path) -> dict[str, Any]:
    data = read_toml(path, "config")  # floats as Decimal: the [pricing] section holds money and rates
    known = _SCALAR_SETTINGS | set(_TABLE_SETTINGS)
    for key in data:
        if key not in known:
            raise SettingsError(f"config: unknown key {key!r} in {path}")
    return data


def validate(values: Mapping[str, Any]) -> Settings:
    """Coerce and check raw values; raise SettingsError naming the first bad one."""
    clean: dict[str, Any] = {}
    for name, raw in values.items():
        if name in _INT_SETTINGS:
            clean[name] = _as_int(name, raw)
        elif name in _BOOL_SETTINGS:
            clean[name] = _as_bool(name, raw)
        elif name == "attributes":
            clean[name] = _as_attribute_map(raw)
        elif name == "backend_classes":
            clean[name] = _as_backend_classes(raw)
        elif name == "pricing":
            clean[name] = parse_pricing(raw, values.get("config"))
        elif name == "alerts":
            clean[name] = parse_alerts(raw)
        elif name == "auth":
            clean[name] = parse_auth(raw, values.get("config"))
        elif name == "privacy":
            clean[name] = parse_privacy(raw)
        elif name == "reconcile":
            clean[name] = parse_reconcile(raw)
        else:
            clean[name] = str(raw)
    settings = Settings(**clean)
    _check(settings)
    return settings


def _as_int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise SettingsError(f"{name}: expected an integer, got {raw!r}")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None


def _as_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _as_attribute_map(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise SettingsError("attributes: expected a table of field = [attribute names]")
    result: dict[str, tuple[str, ...]] = {}
    for name, sources in raw.items():
        if name not in MAPPABLE_FIELDS:
            raise SettingsError(f"attributes.{name}: not a mappable field (one of {', '.join(MAPPABLE_FIELDS)})")
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
            raise SettingsError(f"attributes.{name}: expected a list of attribute names")
        result[name] = tuple(sources)
    return result


def _as_backend_classes(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise SettingsError("backend_classes: expected a table of address-or-provider = class")
    result: dict[str, str] = {}
    for key, value in raw.items():
        if value not in BACKEND_CLASSES:
            raise SettingsError(f"backend_classes.{key}: {value!r} is not one of {', '.join(BACKEND_CLASSES)}")
        name = str(key).lower()
        # A provider may be named by any alias ("aws_bedrock", "google"): calls carry the canonical one.
        result[canonical_provider(name) or name] = str(value)
    return result


def _check(s: Settings) -> None:
    """Check the settings together, in a fixed order; SettingsError naming the first bad one."""
    _check_db(s.db)
    _check_listeners(s)
    _check_limits(s)
    _check_tls(s)
    check_reconcile(s.alerts, s.reconcile)  # a ledger_drift rule needs bills to read
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"log_level: one of debug, info, warning, error; got {s.log_level!r}")


def _check_db(db: str) -> None:
    """The database URL parses and names a supported dialect."""
    try:
        url = make_url(db)
    except ArgumentError:
        raise SettingsError(f"db: not a database URL: {db!r} (try duckdb:///breakeven.duckdb)") from None
    if url.get_backend_name() not in SUPPORTED_DIALECTS:
        raise SettingsError(
            f"db: unsupported database {url.get_backend_name()!r} (one of {', '.join(SUPPORTED_DIALECTS)})"
        )


def _check_listeners(s: Settings) -> None:
    """The host is an IP address or localhost; the three ports are TCP ports, distinct unless 0."""
    if s.host not in ("localhost",):
        try:
            ipaddress.ip_address(s.host)
        except ValueError:
            raise SettingsError(f"host: not an IP address or 'localhost': {s.host!r}") from None
    ports = {name: getattr(s, name) for name in _PORT_SETTINGS}
    for name, port in ports.items():
        if not 0 <= port <= 65535:
            raise SettingsError(f"{name}: {port} is not a TCP port (0-65535)")
    busy = [p for p in ports.values() if p != 0]
    if len(busy) != len(set(busy)):
        raise SettingsError(f"otlp_http_port, otlp_grpc_port, http_port: must differ, got {ports}")


def _check_limits(s: Settings) -> None:
    """The counts and sizes are in range: positive, or within their own bounds."""
    for name in sorted(_INT_SETTINGS - set(_PORT_SETTINGS) - {"retention_days", "decode_processes"}):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{name}: must be positive, got {getattr(s, name)}")
    if s.retention_days < 0:
        raise SettingsError(f"retention_days: must be 0 (keep raw calls) or a number of days, got {s.retention_days}")
    if not 0 <= s.decode_processes <= MAX_DECODE_PROCESSES:
        raise SettingsError(
            f"decode_processes: 0 (decode on threads of the server) to {MAX_DECODE_PROCESSES}, got {s.decode_processes}"
        )
    if s.batch_max_spans > s.queue_max_spans:
        raise SettingsError("batch_max_spans: must not exceed queue_max_spans")
    for name in ("duckdb_memory_limit", "duckdb_checkpoint_threshold"):
        if not re.fullmatch(r"\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)", getattr(s, name).strip().lower()):
            raise SettingsError(f"{name}: expected a size such as 512MB or 2GB, got {getattr(s, name)!r}")


def _check_tls(s: Settings) -> None:
    """The TLS certificate and key are given both or neither, and name files that exist."""
    if (s.tls_cert_file is None) != (s.tls_key_file is None):
        raise SettingsError("tls_cert_file, tls_key_file: give both (PEM certificate and its key) or neither")
    for name in ("tls_cert_file", "tls_key_file"):
        value = getattr(s, name)
        if value is not None and not Path(value).is_file():
            raise SettingsError(f"{name}: file not found: {value}")
