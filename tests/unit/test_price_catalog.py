"""Real genai-prices data: list prices at the library's rates, matched strictly."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

from breakeven.collector.price.catalog import LIBRARY_PROVIDERS, library_entry, library_source
from breakeven.collector.price.pricer import Priced, Pricer, Unpriced
from breakeven.collector.price.usage import TokenUsage
from tests.pricecalls import at

PRICER = Pricer()
WHEN = at("2025-08-01")


@pytest.mark.parametrize(
    ("provider", "model", "usage", "cost"),
    [
        pytest.param(
            "openai",
            "gpt-4o",
            TokenUsage(input=1_000_000, cache_read=1_000_000, output=1_000_000),
            Decimal("13.75"),  # 2.50 input + 1.25 cached input + 10.00 output
            id="gpt-4o",
        ),
        pytest.param(
            "openai",
            "gpt-4o-2024-08-06",
            TokenUsage(input=1_000_000, output=1_000_000),
            Decimal("12.50"),  # a dated snapshot the data declares as gpt-4o: 2.50 + 10.00
            id="gpt-4o dated snapshot",
        ),
        pytest.param(
            "anthropic",
            "claude-sonnet-4-20250514",
            TokenUsage(input=1_000_000, cache_read=1_000_000, cache_write=1_000_000, output=1_000_000),
            Decimal("22.05"),  # 3.00 + 0.30 + 3.75 + 15.00
            id="claude-sonnet-4",
        ),
        pytest.param(
            "gcp.gemini",
            "gemini-2.5-pro",
            TokenUsage(input=250_000, output=100_000),
            Decimal("2.125"),  # past 200k: 250,000 x 2.50 = 0.625 + 100,000 x 15 = 1.50 (/1e6)
            id="gemini-2.5-pro past its context tier",
        ),
        pytest.param(
            "together",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            TokenUsage(input=1_000_000, output=1_000_000),
            Decimal("1.76"),  # 0.88 + 0.88
            id="together managed open-weight model",
        ),
    ],
)
def test_library_prices_at_its_own_rates(provider: str, model: str, usage: TokenUsage, cost: Decimal) -> None:
    result = PRICER.price(provider, model, WHEN, usage)
    assert isinstance(result, Priced), result
    assert result.cost_usd == cost
    assert result.source == f"genai-prices {genai_prices.__version__}" == library_source()
    # The library's own arithmetic agrees (its input_tokens is the whole prompt, cached included).
    theirs = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.total_input,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
            output_tokens=usage.output,
        ),
        model,
        provider_id=LIBRARY_PROVIDERS[provider],
        genai_request_timestamp=WHEN,
    )
    assert theirs.total_price == cost


@pytest.mark.parametrize(
    ("day", "cost", "effective_from"),
    [
        pytest.param("2025-06-09", Decimal("50"), None, id="o3 before its price cut: 10 + 40"),
        pytest.param("2025-06-10", Decimal("10"), "2025-06-10", id="o3 from its price cut: 2 + 8"),
    ],
)
def test_library_price_history(day: str, cost: Decimal, effective_from: str | None) -> None:
    result = PRICER.price("openai", "o3", at(day), TokenUsage(input=1_000_000, output=1_000_000))
    assert isinstance(result, Priced)
    assert result.cost_usd == cost
    assert (result.effective_from and result.effective_from.isoformat()) == effective_from


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        pytest.param("anthropic", "claude-3-5-sonnet-custom-finetune", id="declared prefix plus a non-snapshot suffix"),
        pytest.param("anthropic", "claude-sonnet-4-5-thinking-xl", id="newer family, made-up variant"),
        pytest.param("gcp.gemini", "gemini-2.5-pro-preview-99-99", id="a preview the data does not list"),
        pytest.param(
            "gcp.gemini", "gemini-1.5-flash-8b", id="a smaller sibling (the library would price it as gemini-1.5-flash)"
        ),
    ],
)
def test_look_alike_is_not_priced(provider: str, model: str) -> None:
    # The library itself would price these by a loose prefix match...
    loose = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=1000), model, provider_id=LIBRARY_PROVIDERS[provider]
    )
    assert loose.total_price > 0
    # ...breakeven does not.
    assert library_entry(provider, model, WHEN) is None
    result = PRICER.price(provider, model, WHEN, TokenUsage(input=1000, output=1000))
    assert isinstance(result, Unpriced)


@pytest.mark.parametrize(
    ("provider", "model", "entry_id"),
    [
        pytest.param(
            "openai", "gpt-4o-20240806", "genai-prices:openai/gpt-4o#0", id="compact date of a declared alias"
        ),
        pytest.param(
            "openai", "gpt-4o-2024-05-13", "genai-prices:openai/gpt-4o-2024-05-13#0", id="a snapshot with its own price"
        ),
        pytest.param(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "genai-prices:anthropic/claude-sonnet-4-5#0",
            id="declared prefix plus a date",
        ),
        pytest.param(
            "anthropic",
            "claude-3-5-sonnet-latest",
            "genai-prices:anthropic/claude-3-5-sonnet#0",
            id="declared prefix plus -latest",
        ),
        pytest.param(
            "gcp.gemini", "models/gemini-2.5-flash", "genai-prices:google/gemini-2.5-flash#0", id="Gemini resource name"
        ),
        pytest.param("gcp.gemini", "gemini-2.0-flash-001", "genai-prices:google/gemini-2.0-flash#0", id="build number"),
        pytest.param(
            "gcp.gemini", "claude-sonnet-4@20250514", "genai-prices:google/claude-4-sonnet#0", id="Claude on Vertex"
        ),
        pytest.param(
            "azure.ai.openai",
            "gpt-4o",
            "genai-prices:openai/gpt-4o#0",
            id="Azure falls back to OpenAI's list, as declared",
        ),
        pytest.param(
            "aws.bedrock",
            "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
            "genai-prices:aws/regional.anthropic.claude-3-5-sonnet-20240620-v1:0#0",
            id="Bedrock region and vendor namespaces plus a version tag",
        ),
        pytest.param(
            "aws.bedrock",
            "llama3-1-70b-instruct-v1:0",
            "genai-prices:aws/meta.llama3-1-70b-instruct-v1:0#0",
            id="a Bedrock id without its vendor (OpenLLMetry strips it): the one vendor's model it can be",
        ),
    ],
)
def test_declared_names_are_priced(provider: str, model: str, entry_id: str) -> None:
    entry = library_entry(provider, model, WHEN)
    assert entry is not None
    assert entry.entry_id == entry_id


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        pytest.param("openai", "gpt-4o-2099-01-01", id="an undeclared snapshot of an exactly-named model"),
        pytest.param("deepinfra", "meta-llama/Llama-3.3-70B-Instruct", id="a provider the library does not price"),
        pytest.param("openai", "claude-sonnet-4", id="a model of another provider"),
    ],
)
def test_unknown_is_none(provider: str, model: str) -> None:
    assert library_entry(provider, model, WHEN) is None


def test_every_mapped_provider_exists_in_the_library() -> None:
    from genai_prices.data_snapshot import get_snapshot

    ids = {p.id for p in get_snapshot().providers}
    assert set(LIBRARY_PROVIDERS.values()) <= ids


def test_a_bedrock_id_without_a_vendor_that_no_vendor_has_is_not_priced() -> None:
    assert library_entry("aws.bedrock", "llama9-9-70b-instruct-v1:0", WHEN) is None
