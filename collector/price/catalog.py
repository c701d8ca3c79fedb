"""Public list prices from the installed `genai-prices` package (pydantic), matched strictly.

The package's bundled data is read in process; nothing is fetched at run time (its
auto-update helper is never started). Updating list prices means upgrading the package.

Matching is stricter than the package's own: it may match by loose prefix or substring
(`claude-3-5-sonnet-anything` would price as Claude 3.5 Sonnet). A model reference is
accepted for a model only when the package's own matcher picks that model AND the
reference is one the data declares:

- a name the data lists with `equals`, exactly;
- a full match of an anchored (`^...$`) regex the data lists;
- the model's id, or a name the data lists as a `starts_with` prefix or `contains`
  fragment, alone or followed only by snapshot suffixes: a date (`-20250514`,
  `@20250514`, `-2025-05-14`), `-latest`, a build number (`-001`, `@002`) or a Bedrock
  version tag (`-v1:0`, `:0`); a `contains` fragment or `ends_with` tail may also be
  preceded by up to two Bedrock-style dotted namespaces (`us.`, `anthropic.`).

Preview and experimental names (`-preview-06-05`, `-exp`) are not snapshot suffixes:
providers price some previews differently, so they price only when the data lists them.
Vertex and Gemini resource paths (`models/...`, `publishers/.../models/...`) are reduced
to the model name first.

So `gpt-4o-2024-08-06` prices (a declared alias of gpt-4o), `claude-sonnet-4-5-20250929`
prices (declared prefix plus a date), but `gpt-4o-2024-05-13` prices only because the data
has it as its own model, and `claude-sonnet-4-5-my-finetune` never prices.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, lru_cache
from importlib.metadata import version
from typing import Any

from breakeven.collector.price.entries import PriceEntry, Rate, Tier

# breakeven's provider names (collector/providers.py) -> genai-prices provider
# ids. Providers we emit that the package does not price (deepinfra, replicate, sambanova,
# nebius, huggingface's router, which resells many backends) are absent: their calls are
# unpriced unless the price book prices them.
LIBRARY_PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "mistral_ai": "mistral",
    "cohere": "cohere",
    "x_ai": "x-ai",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "groq": "groq",
    "together": "together",
    "fireworks": "fireworks",
    "cerebras": "cerebras",
    "moonshotai": "moonshotai",
}

# The vendor namespaces of Bedrock's model ids (`meta.llama3-1-70b-instruct-v1:0`).
BEDROCK_VENDORS = ("anthropic", "meta", "mistral", "cohere", "amazon", "ai21", "deepseek", "qwen", "openai", "writer")
_SNAPSHOT = r"(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-latest|[-@]0\d{2}|-v\d+:\d+|:\d+)"
_NAMESPACES = r"(?:[a-z][a-z0-9-]*\.){0,2}"
_SEPARATORS = "-@.:"
_COMPACT_DATE = re.compile(r"-(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


@cache
def library_version() -> str:
    """The installed genai-prices version, as named in price sources."""
    return version("genai-prices")


def library_source() -> str:
    """The source string of every library price: `genai-prices <version>`."""
    return f"genai-prices {library_version()}"


def library_entry(provider: str | None, model: str | None, at: datetime) -> PriceEntry | None:
    """The list price in force at `at` for a breakeven provider and model, or None."""
    if not provider or not model:
        return None
    found = _find_model(provider, model)
    if found is None:
        return None
    provider_id, info = found
    return _entry_at(provider_id, info, at)


@lru_cache(maxsize=4096)  # the installed data never changes in a process; names in use are few
def _find_model(provider: str, model: str) -> tuple[str, Any] | None:
    provider_id = LIBRARY_PROVIDERS.get(provider)
    if provider_id is None:
        return None
    ref = _model_ref(model)
    found = _match(provider_id, ref)
    if found is None and provider == "aws.bedrock" and "." not in ref:
        found = _bedrock_vendor_match(provider_id, ref)
    return found


def _match(provider_id: str, ref: str) -> tuple[str, Any] | None:
    for owner_id, info in _candidate_models(provider_id):
        if _library_matches(info, ref) and _declares(info.match, info.id, ref):
            return owner_id, info
    return None


def _bedrock_vendor_match(provider_id: str, ref: str) -> tuple[str, Any] | None:
    """A Bedrock model id that lost its vendor prefix (OpenLLMetry strips `meta.`, `us.anthropic.`),
    priced as the one vendor's model it can be; None when no vendor, or more than one, has it."""
    hits = [found for vendor in BEDROCK_VENDORS if (found := _match(provider_id, f"{vendor}.{ref}")) is not None]
    models = {(owner_id, info.id) for owner_id, info in hits}
    return hits[0] if len(models) == 1 else None


def _model_ref(model: str) -> str:
    ref = model.strip().lower()
    # Gemini and Vertex name models as resources: "models/gemini-2.5-pro",
    # "projects/p/locations/l/publishers/google/models/gemini-2.5-pro".
    if ref.startswith(("models/", "publishers/", "projects/")) and "models/" in ref:
        ref = ref.rsplit("models/", 1)[1]
    return ref


def _candidate_models(provider_id: str) -> Iterator[tuple[str, Any]]:
    """The provider's models, then (one step, as the package does) its declared fallbacks'."""
    providers = _providers()
    provider = providers.get(provider_id)
    if provider is None:
        return
    for info in provider.models:
        yield provider_id, info
    for fallback_id in provider.fallback_model_providers or ():
        fallback = providers.get(fallback_id)
        if fallback is not None:
            for info in fallback.models:
                yield fallback_id, info


def _library_matches(info: Any, ref: str) -> bool:
    return any(info.is_match(r) for r in _spellings(ref))


def _spellings(ref: str) -> set[str]:
    """The reference, and with compact dates dashed (gpt-4o-20240806 -> gpt-4o-2024-08-06).

    The package retries a compact date in its dashed form, as LiteLLM and OpenRouter spell
    dated snapshots compactly; the two spellings name the same snapshot.
    """
    return {ref, _COMPACT_DATE.sub(r"-\1-\2-\3", ref)}


def _declares(clause: Any, model_id: str, ref: str) -> bool:
    """Whether the match clause (or the model id) declares `ref` under the strict rule above."""
    refs = _spellings(ref)
    own_id = re.compile(re.escape(model_id.lower()) + _SNAPSHOT + "*")
    patterns = [own_id, *_declared_patterns(clause)]
    return any(pattern.fullmatch(r) for pattern in patterns for r in refs)


def _declared_patterns(clause: Any) -> Iterator[re.Pattern[str]]:
    for sub in list(getattr(clause, "or_", ())) + list(getattr(clause, "and_", ())):
        yield from _declared_patterns(sub)
    if (text := getattr(clause, "equals", None)) is not None:
        yield re.compile(re.escape(text.lower()))
    elif (text := getattr(clause, "starts_with", None)) is not None:
        yield re.compile(re.escape(text.lower().rstrip(_SEPARATORS)) + _SNAPSHOT + "*")
    elif (text := getattr(clause, "contains", None)) is not None:
        yield re.compile(_NAMESPACES + re.escape(text.lower().rstrip(_SEPARATORS)) + _SNAPSHOT + "*")
    elif (text := getattr(clause, "ends_with", None)) is not None:
        yield re.compile(_NAMESPACES + re.escape(text.lower().lstrip("/")))
    elif (text := getattr(clause, "regex", None)) is not None and text.startswith("^") and text.endswith("$"):
        yield re.compile(text)


def _entry_at(provider_id: str, info: Any, at: datetime) -> PriceEntry | None:
    from genai_prices.types import ModelPrice, StartDateConstraint

    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    # The package's own rule picks the price in force (last active conditional price, else
    # the first); we only read which one it was, to name it.
    prices = info.get_prices(at)
    effective_from = None
    index = 0
    if not isinstance(info.prices, ModelPrice):
        for index, conditional in enumerate(info.prices):  # noqa: B007 - index names the entry
            if conditional.prices is prices:
                break
        constraint = info.prices[index].constraint
        if isinstance(constraint, StartDateConstraint):
            effective_from = constraint.start_date
    input_rate = _rate(getattr(prices, "input_mtok", None))
    output_rate = _rate(getattr(prices, "output_mtok", None))
    if input_rate is None or output_rate is None:
        return None  # not a token-priced model (images, audio, embeddings by the page)
    requests = getattr(prices, "requests_kcount", None)
    return PriceEntry(
        entry_id=f"genai-prices:{provider_id}/{info.id}#{index}",
        source=library_source(),
        provider=provider_id,
        model=info.id,
        effective_from=effective_from,
        input=input_rate,
        output=output_rate,
        cache_read=_rate(getattr(prices, "cache_read_mtok", None)),
        cache_write=_rate(getattr(prices, "cache_write_mtok", None)),
        reasoning=_rate(getattr(prices, "output_reasoning_mtok", None)),
        per_request=None if requests is None else Decimal(requests) / 1000,
    )


def _rate(price: Any) -> Rate | None:
    if price is None:
        return None
    if isinstance(price, Decimal):
        return Rate(price)
    return Rate(Decimal(price.base), tuple(Tier(int(t.start), Decimal(t.price)) for t in price.tiers))


@cache
def _providers() -> dict[str, Any]:
    # The bundled snapshot only: genai_prices.UpdatePrices (which downloads) is never used.
    from genai_prices.data_snapshot import get_snapshot

    return {p.id: p for p in get_snapshot().providers}
