"""The `[pricing]` section of the config file, parsed and validated into PricingConfig.

Every error names the exact key, e.g. `pricing.prices[2].effective_from: not a date`
(array indexes count from 0). Unknown keys are errors, as everywhere in the config.
Money and rates are read as Decimal: the settings loader parses TOML floats as Decimal,
and strings such as "0.15" are accepted too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from breakeven.collector.price.book import Discount, PriceBook
from breakeven.collector.price.breakeven import Candidate
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.entries import TOKEN_KINDS, PriceEntry, Rate, Tier
from breakeven.collector.price.fx import USD, FxRate, FxTable
from breakeven.collector.price.gpu_match import GpuMetricsConfig
from breakeven.collector.price.money import HUNDRED, ONE, ZERO
from breakeven.collector.price.periods import ALLOCATION_PERIODS
from breakeven.collector.price.pools import Alternative, BoxCost, Capacity, Pool, PoolMatch, Power

T = TypeVar("T")

_TOP_KEYS = ("currency", "allocation_period", "price_book", "prices", "discounts", "fx", "pools", "candidates")
_ENTRY_KEYS = ("provider", "model", "effective_from", *TOKEN_KINDS, "tiers", "net")
_TIER_KEYS = ("above", *TOKEN_KINDS)
_DISCOUNT_KEYS = ("provider", "percent", "effective_from")
_FX_KEYS = ("currency", "date", "per_usd")
_COST_KEYS = (
    "rent_per_month",
    "rent_per_hour",
    "purchase_price",
    "amortization_months",
    "purchased_on",
    "power",
    "ops_per_month",
    "variable_per_million",
    "capacity",
)
_POOL_KEYS = ("name", "match", "boxes", "alternative", "gpu_metrics", *_COST_KEYS)
_CANDIDATE_KEYS = ("name", "max_utilization", "models", *_COST_KEYS)
_MATCH_KEYS = ("backend", "server_address", "model", "quantization")


def _fail(message: str) -> NoReturn:
    # Imported here: breakeven.collector.config.settings imports this module to build Settings.
    from breakeven.collector.config.settings import SettingsError

    raise SettingsError(message)


def parse_pricing(raw: Any, config_path: str | None = None) -> PricingConfig:
    """PricingConfig from the raw `[pricing]` table; SettingsError naming the first bad key."""
    if isinstance(raw, PricingConfig):
        return raw
    table = _table(raw, "pricing", _TOP_KEYS)
    # Absolute, so serve and reprice name one book alike however the path was typed.
    where = f"price book {Path(config_path).resolve() if config_path else 'config'}"
    entries = _keyed(_list(table, "prices", "pricing", lambda item, key: _entry(item, key, where)), "pricing")
    discounts = _list(table, "discounts", "pricing", _discount)
    if "price_book" in table:
        more_entries, more_discounts = _book_file(table["price_book"], config_path)
        entries += more_entries
        discounts += more_discounts
    _check_unique_entries(entries)
    _check_unique(
        [f"the {d.provider} discount from {d.effective_from}" for d in discounts], "pricing.discounts", "effective_from"
    )
    fx = FxTable(tuple(_list(table, "fx", "pricing", _fx_rate)))
    _check_unique([f"the {r.currency} rate for {r.day}" for r in fx.rates], "pricing.fx", "date")
    currency = _currency(table.get("currency", USD), "pricing.currency")
    if currency != USD and currency not in fx.currencies():
        _fail(f"pricing.currency: no [[pricing.fx]] rate converts USD to {currency}")
    period = table.get("allocation_period", "day")
    if period not in ALLOCATION_PERIODS:
        _fail(f"pricing.allocation_period: one of {', '.join(ALLOCATION_PERIODS)}, got {period!r}")
    pools = _list(table, "pools", "pricing", _pool)
    _check_unique([repr(p.name) for p in pools], "pricing.pools", "name")
    _check_scrape_targets(pools)
    candidates = _list(table, "candidates", "pricing", _candidate)
    _check_unique([repr(c.name) for c in candidates], "pricing.candidates", "name")
    return PricingConfig(
        currency=currency,
        allocation_period=period,
        book=PriceBook(tuple(entry for _, entry in entries), tuple(discounts)),
        fx=fx,
        pools=tuple(pools),
        candidates=tuple(candidates),
    )


def _keyed(entries: list[PriceEntry], prefix: str) -> list[tuple[str, PriceEntry]]:
    return [(f"{prefix}.prices[{i}]", entry) for i, entry in enumerate(entries)]


def _book_file(raw: Any, config_path: str | None) -> tuple[list[tuple[str, PriceEntry]], list[Discount]]:
    if not isinstance(raw, str) or not raw:
        _fail("pricing.price_book: expected the path of a TOML file")
    path = Path(raw)
    if not path.is_absolute() and config_path:
        path = Path(config_path).parent / path  # relative to the config file that names it
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        _fail(f"pricing.price_book: file not found: {path}")
    except tomllib.TOMLDecodeError as exc:
        _fail(f"pricing.price_book: {path} is not valid TOML: {exc}")
    prefix = f"pricing.price_book({path})"
    table = _table(data, prefix, ("prices", "discounts"))
    entries = _list(table, "prices", prefix, lambda item, key: _entry(item, key, f"price book {path.resolve()}"))
    return _keyed(entries, prefix), _list(table, "discounts", prefix, _discount)


def _entry(raw: Any, key: str, source: str) -> PriceEntry:
    table = _table(raw, key, _ENTRY_KEYS)
    provider = _provider(_required(table, "provider", key), f"{key}.provider")
    model = _text(_required(table, "model", key), f"{key}.model")
    effective_from = _date(_required(table, "effective_from", key), f"{key}.effective_from")
    tiers = _list(table, "tiers", key, lambda item, k: _table(item, k, _TIER_KEYS))
    thresholds = [_int(t.get("above"), f"{key}.tiers[{i}].above", minimum=1) for i, t in enumerate(tiers)]
    _check_unique([f"threshold {t}" for t in thresholds], f"{key}.tiers", "above")
    rates: dict[str, Rate | None] = {}
    for kind in TOKEN_KINDS:
        if kind in ("input", "output"):
            _required(table, kind, key)
        base = None if kind not in table else _amount(table[kind], f"{key}.{kind}")
        kind_tiers = tuple(
            Tier(above, _amount(t[kind], f"{key}.tiers[{i}].{kind}"))
            for i, (t, above) in enumerate(zip(tiers, thresholds, strict=True))
            if kind in t
        )
        if base is None and kind_tiers:
            _fail(f"{key}.{kind}: a tier prices {kind}, so the entry needs a base {kind} rate")
        rates[kind] = None if base is None else Rate(base, kind_tiers)
    input_rate, output_rate = rates["input"], rates["output"]
    assert input_rate is not None and output_rate is not None  # required above
    return PriceEntry(
        entry_id=f"book:{provider}/{model}@{effective_from.isoformat()}",
        source=source,
        provider=provider,
        model=model,
        effective_from=effective_from,
        input=input_rate,
        output=output_rate,
        cache_read=rates["cache_read"],
        cache_write=rates["cache_write"],
        reasoning=rates["reasoning"],
        net=_bool(table.get("net", False), f"{key}.net"),
    )


def _discount(raw: Any, key: str) -> Discount:
    table = _table(raw, key, _DISCOUNT_KEYS)
    percent = _amount(_required(table, "percent", key), f"{key}.percent")
    if percent > HUNDRED:
        _fail(f"{key}.percent: a percentage from 0 to 100, got {percent}")
    return Discount(
        provider=_provider(_required(table, "provider", key), f"{key}.provider"),
        percent=percent,
        effective_from=_date(_required(table, "effective_from", key), f"{key}.effective_from"),
    )


def _fx_rate(raw: Any, key: str) -> FxRate:
    table = _table(raw, key, _FX_KEYS)
    currency = _currency(_required(table, "currency", key), f"{key}.currency")
    if currency == USD:
        _fail(f"{key}.currency: USD is the internal currency and needs no rate")
    return FxRate(
        currency=currency,
        day=_date(_required(table, "date", key), f"{key}.date"),
        per_usd=_amount(_required(table, "per_usd", key), f"{key}.per_usd", positive=True),
    )


def _pool(raw: Any, key: str) -> Pool:
    table = _table(raw, key, _POOL_KEYS)
    match_table = _table(_required(table, "match", key), f"{key}.match", _MATCH_KEYS)
    match = PoolMatch(**{k: _text(v, f"{key}.match.{k}") for k, v in match_table.items()})
    if not match_table:
        _fail(f"{key}.match: name at least one of {', '.join(_MATCH_KEYS)} (an empty match takes every call)")
    alt = _table(_required(table, "alternative", key), f"{key}.alternative", ("provider", "model"))
    return Pool(
        name=_text(_required(table, "name", key), f"{key}.name"),
        match=match,
        boxes=_int(_required(table, "boxes", key), f"{key}.boxes", minimum=1),
        cost=_box_cost(table, key),
        capacity=_capacity(_required(table, "capacity", key), f"{key}.capacity"),
        alternative=Alternative(
            provider=_provider(_required(alt, "provider", f"{key}.alternative"), f"{key}.alternative.provider"),
            model=_text(_required(alt, "model", f"{key}.alternative"), f"{key}.alternative.model"),
        ),
        gpu_metrics=_gpu_metrics(table["gpu_metrics"], f"{key}.gpu_metrics") if "gpu_metrics" in table else None,
    )


def _gpu_metrics(raw: Any, key: str) -> GpuMetricsConfig:
    """`[pricing.pools.gpu_metrics]`: match (pushed OTLP series, attribute = glob or globs), scrape (URLs)."""
    table = _table(raw, key, ("match", "scrape"))
    match: list[tuple[str, tuple[str, ...]]] = []
    if "match" in table:
        match_table = table["match"]
        if not isinstance(match_table, Mapping):
            _fail(f'{key}.match: expected a table of attribute = glob pattern(s), such as {{ "host.name" = "gpu-*" }}')
        if not match_table:
            _fail(f"{key}.match: name at least one attribute, such as host.name (an empty match takes every GPU)")
        for name, patterns in match_table.items():
            where = f"{key}.match.{name}"
            if isinstance(patterns, str):
                match.append((name, (_text(patterns, where),)))
                continue
            if not isinstance(patterns, list) or not patterns:
                _fail(f"{where}: expected a glob pattern or a list of them, got {patterns!r}")
            match.append((name, tuple(_text(p, f"{where}[{i}]") for i, p in enumerate(patterns))))
    scrape = table.get("scrape", [])
    if isinstance(scrape, str) or not isinstance(scrape, list):
        _fail(f'{key}.scrape: expected a list of URLs, such as ["http://gpu-box-1:9400/metrics"]')
    if not match and not scrape:
        _fail(f"{key}: give match (attributes of pushed OTLP metrics) or scrape (Prometheus endpoints), or both")
    return GpuMetricsConfig(
        match=tuple(match), scrape=tuple(_scrape_url(url, f"{key}.scrape[{i}]") for i, url in enumerate(scrape))
    )


def _scrape_url(raw: Any, key: str) -> str:
    url = _text(raw, key)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        _fail(f"{key}: not a valid port in {url!r}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(f"{key}: expected an http(s) URL with a host, such as http://gpu-box-1:9400/metrics; got {url!r}")
    return url


def _check_scrape_targets(pools: list[Pool]) -> None:
    owner: dict[str, str] = {}
    for i, pool in enumerate(pools):
        for j, url in enumerate(pool.gpu_metrics.scrape if pool.gpu_metrics else ()):
            if url in owner:
                _fail(f"pricing.pools[{i}].gpu_metrics.scrape[{j}]: {url} already belongs to pool {owner[url]!r}")
            owner[url] = pool.name


def _candidate(raw: Any, key: str) -> Candidate:
    table = _table(raw, key, _CANDIDATE_KEYS)
    models = table.get("models", [])
    if not isinstance(models, list):
        _fail(f"{key}.models: expected a list of model names")
    utilization = _amount(table.get("max_utilization", ONE), f"{key}.max_utilization", positive=True)
    if utilization > ONE:
        _fail(f"{key}.max_utilization: a share of capacity above 0 and at most 1, got {utilization}")
    return Candidate(
        name=_text(_required(table, "name", key), f"{key}.name"),
        cost=_box_cost(table, key),
        capacity=_capacity(_required(table, "capacity", key), f"{key}.capacity"),
        max_utilization=utilization,
        models=tuple(_text(m, f"{key}.models[{i}]") for i, m in enumerate(models)),
    )


def _box_cost(table: Mapping[str, Any], key: str) -> BoxCost:
    paid = [k for k in ("rent_per_month", "rent_per_hour", "purchase_price") if k in table]
    if len(paid) != 1:
        _fail(f"{key}: give exactly one of rent_per_month, rent_per_hour or purchase_price, got {paid or 'none'}")
    months = None
    if "purchase_price" in table:
        months = _int(_required(table, "amortization_months", key), f"{key}.amortization_months", minimum=1)
    elif "amortization_months" in table or "purchased_on" in table:
        _fail(f"{key}.amortization_months: only with purchase_price")
    power = None
    if "power" in table:
        p = _table(table["power"], f"{key}.power", ("kw", "price_per_kwh", "pue"))
        power = Power(
            kw=_amount(_required(p, "kw", f"{key}.power"), f"{key}.power.kw"),
            price_per_kwh=_amount(_required(p, "price_per_kwh", f"{key}.power"), f"{key}.power.price_per_kwh"),
            pue=_amount(p.get("pue", ONE), f"{key}.power.pue"),
        )
        if power.pue < ONE:
            _fail(f"{key}.power.pue: power usage effectiveness is 1 or more, got {power.pue}")

    def optional(name: str) -> Decimal | None:
        return _amount(table[name], f"{key}.{name}") if name in table else None

    return BoxCost(
        rent_per_month=optional("rent_per_month"),
        rent_per_hour=optional("rent_per_hour"),
        purchase_price=optional("purchase_price"),
        amortization_months=months,
        purchased_on=_date(table["purchased_on"], f"{key}.purchased_on") if "purchased_on" in table else None,
        power=power,
        ops_per_month=optional("ops_per_month") or ZERO,
        variable_per_million=optional("variable_per_million") or ZERO,
    )


def _capacity(raw: Any, key: str) -> Capacity:
    table = _table(raw, key, ("input_tps", "output_tps"))
    return Capacity(
        input_tps=_amount(_required(table, "input_tps", key), f"{key}.input_tps", positive=True),
        output_tps=_amount(_required(table, "output_tps", key), f"{key}.output_tps", positive=True),
    )


# Scalars and tables.


def _table(raw: Any, key: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        _fail(f"{key}: expected a table")
    for name in raw:
        if name not in known:
            _fail(f"{key}.{name}: unknown key (known: {', '.join(known)})")
    return raw


def _list(table: Mapping[str, Any], name: str, key: str, parse: Callable[[Any, str], T]) -> list[T]:
    raw = table.get(name, [])
    if not isinstance(raw, list):
        _fail(f"{key}.{name}: expected an array of tables ([[{key}.{name}]])")
    return [parse(item, f"{key}.{name}[{i}]") for i, item in enumerate(raw)]


def _required(table: Mapping[str, Any], name: str, key: str) -> Any:
    if name not in table:
        _fail(f"{key}.{name}: required")
    return table[name]


def _text(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        _fail(f"{key}: expected a non-empty string, got {raw!r}")
    return raw.strip()


def _provider(raw: Any, key: str) -> str:
    # The names calls carry: "gcp.gemini" -> "google". Imported here because the normalize
    # package imports breakeven.collector.config.settings, which imports this module.
    from breakeven.collector.providers import canonical_provider

    return canonical_provider(_text(raw, key)) or _fail(f"{key}: expected a provider name")


def _currency(raw: Any, key: str) -> str:
    text = _text(raw, key).upper()
    if len(text) != 3 or not text.isalpha():
        _fail(f"{key}: expected a three-letter currency code such as EUR, got {raw!r}")
    return text


def _amount(raw: Any, key: str, *, positive: bool = False) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        _fail(f"{key}: not a number: {raw!r}")
    try:
        # A float only reaches here from Python callers; str() keeps its shortest decimal form.
        value = Decimal(str(raw).strip()) if isinstance(raw, float | str) else Decimal(raw)
    except InvalidOperation:
        _fail(f"{key}: not a number: {raw!r}")
    if not value.is_finite() or value < 0 or (positive and value == 0):
        _fail(f"{key}: expected a {'positive' if positive else 'non-negative'} number, got {raw!r}")
    return value


def _int(raw: Any, key: str, *, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        _fail(f"{key}: expected a whole number, got {raw!r}")
    if raw < minimum:
        _fail(f"{key}: expected at least {minimum}, got {raw}")
    return raw


def _bool(raw: Any, key: str) -> bool:
    if not isinstance(raw, bool):
        _fail(f"{key}: expected true or false, got {raw!r}")
    return raw


def _date(raw: Any, key: str) -> date:
    if isinstance(raw, datetime):
        _fail(f"{key}: not a date (a day such as 2025-06-01, without a time): {raw!r}")
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    _fail(f"{key}: not a date (expected YYYY-MM-DD): {raw!r}")


def _check_unique(values: list[str], key: str, name: str) -> None:
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            _fail(f"{key}[{i}].{name}: {value} appears twice")
        seen.add(value)


def _check_unique_entries(entries: list[tuple[str, PriceEntry]]) -> None:
    seen: dict[tuple[str, str, date | None], str] = {}
    for key, entry in entries:
        ident = (entry.provider, entry.model.lower(), entry.effective_from)
        if ident in seen:
            _fail(
                f"{key}.effective_from: {seen[ident]} already prices {entry.provider}/{entry.model} "
                f"from {entry.effective_from}; give each price change its own date"
            )
        seen[ident] = key
