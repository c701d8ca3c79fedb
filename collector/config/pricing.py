"""The `[pricing]` section of the config file, parsed and validated into PricingConfig.

Every error names the exact key, e.g. `pricing.prices[2].effective_from: not a date`
(array indexes count from 0). Unknown keys are errors, as everywhere in the config.
Money and rates are read as Decimal: the settings loader parses TOML floats as Decimal,
and strings such as "0.15" are accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from breakeven.collector.config import checks
from breakeven.collector.price.book import Discount, PriceBook
from breakeven.collector.price.breakeven import Candidate
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.entries import TOKEN_KINDS, PriceEntry, Rate, Tier
from breakeven.collector.price.fx import USD, FxRate, FxTable
from breakeven.collector.price.gpu_match import GpuMetricsConfig
from breakeven.collector.price.money import HUNDRED, ONE, ZERO
from breakeven.collector.price.periods import ALLOCATION_PERIODS
from breakeven.collector.price.pools import Alternative, BoxCost, Capacity, InvoiceMatch, Pool, PoolMatch, Power
from breakeven.collector.price.substitutes import Substitute
from breakeven.collector.providers import canonical_provider

_TOP_KEYS = (
    "currency", "allocation_period", "price_book", "prices", "discounts", "fx", "pools", "candidates", "substitutes",
)  # fmt: skip
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
_POOL_KEYS = ("name", "match", "boxes", "alternative", "gpu_metrics", "invoice_match", *_COST_KEYS)
_CANDIDATE_KEYS = ("name", "max_utilization", "models", "model", "quantization", *_COST_KEYS)
_SUBSTITUTE_KEYS = ("from", "to", "share", "evidence")
_MATCH_KEYS = ("backend", "server_address", "model", "quantization")


def parse_pricing(raw: Any, config_path: str | None = None) -> PricingConfig:
    """PricingConfig from the raw `[pricing]` table; SettingsError naming the first bad key."""
    if isinstance(raw, PricingConfig):
        return raw
    table = checks.table(raw, "pricing", _TOP_KEYS)
    # Absolute, so serve and reprice name one book alike however the path was typed.
    where = f"price book {Path(config_path).resolve() if config_path else 'config'}"
    entries = _keyed(checks.tables(table, "prices", "pricing", lambda item, key: _entry(item, key, where)), "pricing")
    discounts = checks.tables(table, "discounts", "pricing", _discount)
    if "price_book" in table:
        more_entries, more_discounts = _book_file(table["price_book"], config_path)
        entries += more_entries
        discounts += more_discounts
    _check_unique_entries(entries)
    checks.unique(
        [f"the {d.provider} discount from {d.effective_from}" for d in discounts], "pricing.discounts", "effective_from"
    )
    fx = FxTable(tuple(checks.tables(table, "fx", "pricing", _fx_rate)))
    checks.unique([f"the {r.currency} rate for {r.day}" for r in fx.rates], "pricing.fx", "date")
    currency = _currency(table.get("currency", USD), "pricing.currency")
    if currency != USD and currency not in fx.currencies():
        checks.fail(f"pricing.currency: no [[pricing.fx]] rate converts USD to {currency}")
    period = table.get("allocation_period", "day")
    if period not in ALLOCATION_PERIODS:
        checks.fail(f"pricing.allocation_period: one of {', '.join(ALLOCATION_PERIODS)}, got {period!r}")
    pools = checks.tables(table, "pools", "pricing", _pool)
    checks.unique([repr(p.name) for p in pools], "pricing.pools", "name")
    _check_scrape_targets(pools)
    candidates = checks.tables(table, "candidates", "pricing", _candidate)
    checks.unique([repr(c.name) for c in candidates], "pricing.candidates", "name")
    substitutes = checks.tables(table, "substitutes", "pricing", _substitute)
    return PricingConfig(
        currency=currency,
        allocation_period=period,
        book=PriceBook(tuple(entry for _, entry in entries), tuple(discounts)),
        fx=fx,
        pools=tuple(pools),
        candidates=tuple(candidates),
        substitutes=tuple(substitutes),
    )


def _keyed(entries: list[PriceEntry], prefix: str) -> list[tuple[str, PriceEntry]]:
    return [(f"{prefix}.prices[{i}]", entry) for i, entry in enumerate(entries)]


def _book_file(raw: Any, config_path: str | None) -> tuple[list[tuple[str, PriceEntry]], list[Discount]]:
    if not isinstance(raw, str) or not raw:
        checks.fail("pricing.price_book: expected the path of a TOML file")
    path = checks.beside_config(raw, config_path)
    data = checks.read_toml(path, "pricing.price_book")
    prefix = f"pricing.price_book({path})"
    table = checks.table(data, prefix, ("prices", "discounts"))
    entries = checks.tables(
        table, "prices", prefix, lambda item, key: _entry(item, key, f"price book {path.resolve()}")
    )
    return _keyed(entries, prefix), checks.tables(table, "discounts", prefix, _discount)


def _entry(raw: Any, key: str, source: str) -> PriceEntry:
    table = checks.table(raw, key, _ENTRY_KEYS)
    provider = _provider(checks.required(table, "provider", key), f"{key}.provider")
    model = checks.text(checks.required(table, "model", key), f"{key}.model")
    effective_from = checks.iso_date(checks.required(table, "effective_from", key), f"{key}.effective_from")
    tiers = checks.tables(table, "tiers", key, lambda item, k: checks.table(item, k, _TIER_KEYS))
    thresholds = [checks.integer(t.get("above"), f"{key}.tiers[{i}].above", minimum=1) for i, t in enumerate(tiers)]
    checks.unique([f"threshold {t}" for t in thresholds], f"{key}.tiers", "above")
    rates: dict[str, Rate | None] = {}
    for kind in TOKEN_KINDS:
        if kind in ("input", "output"):
            checks.required(table, kind, key)
        base = None if kind not in table else checks.amount(table[kind], f"{key}.{kind}")
        kind_tiers = tuple(
            Tier(above, checks.amount(t[kind], f"{key}.tiers[{i}].{kind}"))
            for i, (t, above) in enumerate(zip(tiers, thresholds, strict=True))
            if kind in t
        )
        if base is None and kind_tiers:
            checks.fail(f"{key}.{kind}: a tier prices {kind}, so the entry needs a base {kind} rate")
        rates[kind] = None if base is None else Rate(base, kind_tiers)
    input_rate, output_rate = rates["input"], rates["output"]
    assert input_rate is not None
    assert output_rate is not None
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
        net=checks.boolean(table.get("net", False), f"{key}.net"),
    )


def _discount(raw: Any, key: str) -> Discount:
    table = checks.table(raw, key, _DISCOUNT_KEYS)
    percent = checks.amount(checks.required(table, "percent", key), f"{key}.percent")
    if percent > HUNDRED:
        checks.fail(f"{key}.percent: a percentage from 0 to 100, got {percent}")
    return Discount(
        provider=_provider(checks.required(table, "provider", key), f"{key}.provider"),
        percent=percent,
        effective_from=checks.iso_date(checks.required(table, "effective_from", key), f"{key}.effective_from"),
    )


def _fx_rate(raw: Any, key: str) -> FxRate:
    table = checks.table(raw, key, _FX_KEYS)
    currency = _currency(checks.required(table, "currency", key), f"{key}.currency")
    if currency == USD:
        checks.fail(f"{key}.currency: USD is the internal currency and needs no rate")
    return FxRate(
        currency=currency,
        day=checks.iso_date(checks.required(table, "date", key), f"{key}.date"),
        per_usd=checks.amount(checks.required(table, "per_usd", key), f"{key}.per_usd", positive=True),
    )


def _pool(raw: Any, key: str) -> Pool:
    table = checks.table(raw, key, _POOL_KEYS)
    match_table = checks.table(checks.required(table, "match", key), f"{key}.match", _MATCH_KEYS)
    match = PoolMatch(**{k: checks.text(v, f"{key}.match.{k}") for k, v in match_table.items()})
    if not match_table:
        checks.fail(f"{key}.match: name at least one of {', '.join(_MATCH_KEYS)} (an empty match takes every call)")
    alt = checks.table(checks.required(table, "alternative", key), f"{key}.alternative", ("provider", "model"))
    return Pool(
        name=checks.text(checks.required(table, "name", key), f"{key}.name"),
        match=match,
        boxes=checks.integer(checks.required(table, "boxes", key), f"{key}.boxes", minimum=1),
        cost=_box_cost(table, key),
        capacity=_capacity(checks.required(table, "capacity", key), f"{key}.capacity"),
        alternative=Alternative(
            provider=_provider(checks.required(alt, "provider", f"{key}.alternative"), f"{key}.alternative.provider"),
            model=checks.text(checks.required(alt, "model", f"{key}.alternative"), f"{key}.alternative.model"),
        ),
        gpu_metrics=_gpu_metrics(table["gpu_metrics"], f"{key}.gpu_metrics") if "gpu_metrics" in table else None,
        invoice_match=_invoice_match(table["invoice_match"], f"{key}.invoice_match")
        if "invoice_match" in table
        else None,
    )


def _invoice_match(raw: Any, key: str) -> InvoiceMatch:
    """`invoice_match = { ResourceId = "i-0abc*" }` or `{ Tags = { pool = "llama-70b" } }` (or both)."""
    table = checks.table(raw, key, ("ResourceId", "Tags"))
    if not table:
        checks.fail(f'{key}: name a ResourceId glob or Tags, such as {{ ResourceId = "i-0abc*" }}')
    resource = checks.text(table["ResourceId"], f"{key}.ResourceId") if "ResourceId" in table else None
    tags = checks.table(table.get("Tags", {}), f"{key}.Tags", None)
    if "Tags" in table and not tags:
        checks.fail(f"{key}.Tags: name at least one tag")
    pairs = tuple(sorted((str(name), checks.text(value, f"{key}.Tags.{name}")) for name, value in tags.items()))
    return InvoiceMatch(resource, pairs)


def _gpu_metrics(raw: Any, key: str) -> GpuMetricsConfig:
    """`[pricing.pools.gpu_metrics]`: match (pushed OTLP series, attribute = glob or globs), scrape (URLs)."""
    table = checks.table(raw, key, ("match", "scrape"))
    match: list[tuple[str, tuple[str, ...]]] = []
    if "match" in table:
        match_table = table["match"]
        if not isinstance(match_table, Mapping):
            checks.fail(
                f'{key}.match: expected a table of attribute = glob pattern(s), such as {{ "host.name" = "gpu-*" }}'
            )
        if not match_table:
            checks.fail(f"{key}.match: name at least one attribute, such as host.name (an empty match takes every GPU)")
        for name, patterns in match_table.items():
            where = f"{key}.match.{name}"
            if isinstance(patterns, str):
                match.append((name, (checks.text(patterns, where),)))
                continue
            if not isinstance(patterns, list) or not patterns:
                checks.fail(f"{where}: expected a glob pattern or a list of them, got {patterns!r}")
            match.append((name, tuple(checks.text(p, f"{where}[{i}]") for i, p in enumerate(patterns))))
    scrape = table.get("scrape", [])
    if isinstance(scrape, str) or not isinstance(scrape, list):
        checks.fail(f'{key}.scrape: expected a list of URLs, such as ["http://gpu-box-1:9400/metrics"]')
    if not match and not scrape:
        checks.fail(f"{key}: give match (attributes of pushed OTLP metrics) or scrape (Prometheus endpoints), or both")
    return GpuMetricsConfig(
        match=tuple(match), scrape=tuple(_scrape_url(url, f"{key}.scrape[{i}]") for i, url in enumerate(scrape))
    )


def _scrape_url(raw: Any, key: str) -> str:
    url = checks.text(raw, key)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        checks.fail(f"{key}: not a valid port in {url!r}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        checks.fail(f"{key}: expected an http(s) URL with a host, such as http://gpu-box-1:9400/metrics; got {url!r}")
    return url


def _check_scrape_targets(pools: list[Pool]) -> None:
    owner: dict[str, str] = {}
    for i, pool in enumerate(pools):
        for j, url in enumerate(pool.gpu_metrics.scrape if pool.gpu_metrics else ()):
            if url in owner:
                checks.fail(f"pricing.pools[{i}].gpu_metrics.scrape[{j}]: {url} already belongs to pool {owner[url]!r}")
            owner[url] = pool.name


def _candidate(raw: Any, key: str) -> Candidate:
    table = checks.table(raw, key, _CANDIDATE_KEYS)
    models = table.get("models", [])
    if not isinstance(models, list):
        checks.fail(f"{key}.models: expected a list of model names")
    utilization = checks.amount(table.get("max_utilization", ONE), f"{key}.max_utilization", positive=True)
    if utilization > ONE:
        checks.fail(f"{key}.max_utilization: a share of capacity above 0 and at most 1, got {utilization}")
    return Candidate(
        name=checks.text(checks.required(table, "name", key), f"{key}.name"),
        cost=_box_cost(table, key),
        capacity=_capacity(checks.required(table, "capacity", key), f"{key}.capacity"),
        max_utilization=utilization,
        models=tuple(checks.text(m, f"{key}.models[{i}]") for i, m in enumerate(models)),
        model=checks.text(table["model"], f"{key}.model") if "model" in table else None,
        quantization=checks.text(table["quantization"], f"{key}.quantization") if "quantization" in table else None,
    )


def _substitute(raw: Any, key: str) -> Substitute:
    """`from = { provider, model (glob), service }`, `to = { model, quantization }`, share, evidence."""
    table = checks.table(raw, key, _SUBSTITUTE_KEYS)
    source = checks.table(checks.required(table, "from", key), f"{key}.from", ("provider", "model", "service"))
    target = checks.table(checks.required(table, "to", key), f"{key}.to", ("model", "quantization"))
    share = checks.amount(table.get("share", ONE), f"{key}.share", positive=True)
    if share > ONE:
        checks.fail(f"{key}.share: the share of the traffic eligible, above 0 and at most 1, got {share}")

    def text(part: Mapping[str, Any], name: str, where: str) -> str | None:
        return checks.text(part[name], f"{where}.{name}") if name in part else None

    return Substitute(
        model=checks.text(checks.required(source, "model", f"{key}.from"), f"{key}.from.model"),
        to_model=checks.text(checks.required(target, "model", f"{key}.to"), f"{key}.to.model"),
        provider=_provider(source["provider"], f"{key}.from.provider") if "provider" in source else None,
        service=text(source, "service", f"{key}.from"),
        to_quantization=text(target, "quantization", f"{key}.to"),
        share=share,
        evidence=text(table, "evidence", key),
    )


def _box_cost(table: Mapping[str, Any], key: str) -> BoxCost:
    paid = [k for k in ("rent_per_month", "rent_per_hour", "purchase_price") if k in table]
    if len(paid) != 1:
        checks.fail(f"{key}: give exactly one of rent_per_month, rent_per_hour or purchase_price, got {paid or 'none'}")
    months = None
    if "purchase_price" in table:
        months = checks.integer(
            checks.required(table, "amortization_months", key), f"{key}.amortization_months", minimum=1
        )
    elif "amortization_months" in table or "purchased_on" in table:
        checks.fail(f"{key}.amortization_months: only with purchase_price")
    power = None
    if "power" in table:
        p = checks.table(table["power"], f"{key}.power", ("kw", "price_per_kwh", "pue"))
        power = Power(
            kw=checks.amount(checks.required(p, "kw", f"{key}.power"), f"{key}.power.kw"),
            price_per_kwh=checks.amount(
                checks.required(p, "price_per_kwh", f"{key}.power"), f"{key}.power.price_per_kwh"
            ),
            pue=checks.amount(p.get("pue", ONE), f"{key}.power.pue"),
        )
        if power.pue < ONE:
            checks.fail(f"{key}.power.pue: power usage effectiveness is 1 or more, got {power.pue}")

    def optional(name: str) -> Decimal | None:
        return checks.amount(table[name], f"{key}.{name}") if name in table else None

    return BoxCost(
        rent_per_month=optional("rent_per_month"),
        rent_per_hour=optional("rent_per_hour"),
        purchase_price=optional("purchase_price"),
        amortization_months=months,
        purchased_on=checks.iso_date(table["purchased_on"], f"{key}.purchased_on") if "purchased_on" in table else None,
        power=power,
        ops_per_month=optional("ops_per_month") or ZERO,
        variable_per_million=optional("variable_per_million") or ZERO,
    )


def _capacity(raw: Any, key: str) -> Capacity:
    table = checks.table(raw, key, ("input_tps", "output_tps"))
    return Capacity(
        input_tps=checks.amount(checks.required(table, "input_tps", key), f"{key}.input_tps", positive=True),
        output_tps=checks.amount(checks.required(table, "output_tps", key), f"{key}.output_tps", positive=True),
    )


# Scalars only the pricing section reads; the shared ones are in checks.


def _provider(raw: Any, key: str) -> str:
    # The names calls carry, whatever alias the config uses: "google" -> "gcp.gemini".
    return canonical_provider(checks.text(raw, key)) or checks.fail(f"{key}: expected a provider name")


def _currency(raw: Any, key: str) -> str:
    text = checks.text(raw, key).upper()
    if len(text) != 3 or not text.isalpha():
        checks.fail(f"{key}: expected a three-letter currency code such as EUR, got {raw!r}")
    return text


def _check_unique_entries(entries: list[tuple[str, PriceEntry]]) -> None:
    seen: dict[tuple[str, str, date | None], str] = {}
    for key, entry in entries:
        ident = (entry.provider, entry.model.lower(), entry.effective_from)
        if ident in seen:
            checks.fail(
                f"{key}.effective_from: {seen[ident]} already prices {entry.provider}/{entry.model} "
                f"from {entry.effective_from}; give each price change its own date"
            )
        seen[ident] = key
