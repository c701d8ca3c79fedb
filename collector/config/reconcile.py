"""The `[reconcile]` section: where the providers' and clouds' own bills come from (issue 24).

    [[reconcile.sources]]
    name = "openai-org"
    kind = "openai"                      # openai | anthropic | focus
    admin_key_env = "OPENAI_ADMIN_KEY"   # the environment variable holding the admin key
    # base_url = "https://api.openai.com"  (the kind's own by default; a proxy or a test double)
    [reconcile.sources.map]              # a bill's project, workspace or API key -> who in the ledger
    "proj_abc" = { service = "support-bot", team = "cx" }

    [[reconcile.sources]]
    name = "aws"
    kind = "focus"
    path = "/var/lib/breakeven/focus/*.parquet"   # a glob of FOCUS 1.x exports (CSV or Parquet)

The admin key itself is never in the config, the database, a log or an answer: only the
name of the variable that holds it, read when a fetch runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from breakeven.collector.config import checks

KINDS = ("openai", "anthropic", "focus")
BASE_URLS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
_SECTION_KEYS = ("sources", "fetch_interval_hours", "refetch_days", "tolerance_percent")
_SOURCE_KEYS = ("name", "kind", "admin_key_env", "base_url", "path", "map")
_MAP_KEYS = ("service", "team")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who in the ledger a bill's project, workspace or API key stands for."""

    service: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class ReconcileSource:
    """One bill to read: a provider's admin API, or a glob of FOCUS files."""

    name: str
    kind: str  # one of KINDS
    admin_key_env: str | None = None  # openai, anthropic: the variable holding the admin key
    base_url: str | None = None  # openai, anthropic: the API's root (BASE_URLS by default)
    path: str | None = None  # focus: a glob of export files
    owners: Mapping[str, Owner] = field(default_factory=dict)  # bill account -> ledger service and team


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """The bills to reconcile the ledger with, and how often `serve` fetches them."""

    sources: tuple[ReconcileSource, ...] = ()
    fetch_interval_hours: int = 24
    refetch_days: int = 7  # each fetch reads the last days again: providers restate them
    # Ledger and bill agree when within this percent of the billed figure (tokens, money).
    tolerance_percent: Decimal = Decimal(1)

    def source(self, name: str) -> ReconcileSource | None:
        """The source of that name, if configured."""
        return next((s for s in self.sources if s.name == name), None)


def admin_key(source: ReconcileSource, environ: Mapping[str, str] | None = None) -> str | None:
    """The admin key in the variable the source names, read now (the config holds only the
    variable's name); None when it is unset or empty. The config package is the product's one
    reader of the environment."""
    if source.admin_key_env is None:
        return None
    return (os.environ if environ is None else environ).get(source.admin_key_env, "").strip() or None


def parse_reconcile(raw: Any) -> ReconcileConfig:
    """ReconcileConfig from the raw `[reconcile]` table; SettingsError naming the first bad key."""
    if isinstance(raw, ReconcileConfig):
        return raw
    section = checks.table(raw, "reconcile", _SECTION_KEYS)
    sources = checks.tables(section, "sources", "reconcile", _parse_source)
    checks.unique([s.name for s in sources], "reconcile.sources", "name")
    interval = checks.integer(section.get("fetch_interval_hours", 24), "reconcile.fetch_interval_hours", minimum=1)
    refetch = checks.integer(section.get("refetch_days", 7), "reconcile.refetch_days", minimum=1)
    tolerance = checks.amount(section.get("tolerance_percent", 1), "reconcile.tolerance_percent")
    if tolerance > 100:
        checks.fail(f"reconcile.tolerance_percent: a percentage from 0 to 100, got {tolerance}")
    return ReconcileConfig(tuple(sources), interval, refetch, tolerance)


def _parse_source(raw: Any, key: str) -> ReconcileSource:
    source = checks.table(raw, key, _SOURCE_KEYS)
    name = checks.text(checks.required(source, "name", key), f"{key}.name")
    kind = checks.text(checks.required(source, "kind", key), f"{key}.kind")
    if kind not in KINDS:
        checks.fail(f"{key}.kind: one of {', '.join(KINDS)}, got {kind!r}")
    owners = _parse_map(source.get("map", {}), f"{key}.map")
    if kind == "focus":
        for api_only in ("admin_key_env", "base_url"):
            if api_only in source:
                checks.fail(f"{key}.{api_only}: only for an API source (kind openai or anthropic)")
        path = checks.text(checks.required(source, "path", key), f"{key}.path")
        return ReconcileSource(name, kind, path=path, owners=owners)
    if "path" in source:
        checks.fail(f"{key}.path: only for kind focus (an API source is fetched, or imported from files)")
    env = checks.text(checks.required(source, "admin_key_env", key), f"{key}.admin_key_env")
    if not env.replace("_", "").isalnum() or env[0].isdigit():
        checks.fail(f"{key}.admin_key_env: the name of an environment variable (not the key itself), got {env!r}")
    base_url = checks.http_url(source.get("base_url", BASE_URLS[kind]), f"{key}.base_url", base=True)
    return ReconcileSource(name, kind, env, base_url, owners=owners)


def _parse_map(raw: Any, key: str) -> dict[str, Owner]:
    owners: dict[str, Owner] = {}
    for account, who in checks.table(raw, key, None).items():
        entry = checks.table(who, f"{key}.{account}", _MAP_KEYS)
        if not entry:
            checks.fail(f"{key}.{account}: give a service, a team or both")
        service, team = (
            checks.text(entry[k], f"{key}.{account}.{k}") if k in entry else None for k in ("service", "team")
        )
        owners[str(account)] = Owner(service, team)
    return owners
