"""The [pricing] config section: the worked example loads, and every mistake names its key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import Settings, load_settings
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.fx import Converted
from breakeven.collector.price.pools import InvoiceMatch
from breakeven.collector.price.pricer import Priced
from tests.pricecalls import at, call

EXAMPLE = Path(__file__).parents[2] / "examples" / "hybrid-fleet.toml"
PRICING_PAGE = (Path(__file__).parents[2] / "docs" / "pricing.md").read_text()

# A minimal valid pool, for error cases to break one key of.
POOL = """
[[pricing.pools]]
name = "p"
boxes = 1
rent_per_month = 100
capacity = { input_tps = 1000, output_tps = 100 }
match = { backend = "b" }
alternative = { provider = "together", model = "m" }
"""


def load(tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "breakeven.toml"
    config.write_text(text)
    return load_settings({"config": str(config)}, environ={})


def test_default_prices_from_the_library_alone() -> None:
    pricing = load_settings({}, environ={}).pricing
    assert pricing == PricingConfig()
    assert (pricing.currency, pricing.allocation_period, pricing.pools) == ("USD", "day", ())
    result = pricing.pricer().price_call(call(provider="openai", model="gpt-4o", input=1_000_000))
    assert isinstance(result, Priced)
    assert result.cost_usd == Decimal("2.5")


def test_worked_example_loads_and_prices() -> None:
    pricing = load_settings({"config": str(EXAMPLE)}, environ={}).pricing
    assert pricing.currency == "GBP"
    assert [p.name for p in pricing.pools] == ["llama-70b-fp8", "llama-8b-owned"]
    assert [c.name for c in pricing.candidates] == ["h100-rented"]
    assert {d.provider for d in pricing.book.discounts} == {"anthropic"}
    # TOML floats arrive as exact decimals, never binary floats.
    fine_tune = pricing.book.entries[0]
    assert (fine_tune.input.base, fine_tune.output.base) == (Decimal("0.30"), Decimal("1.20"))
    assert fine_tune.source == f"price book {EXAMPLE}"
    pricer = pricing.pricer()
    # Together's list price until the book's committed-use price, then the renewal.
    llama = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    costs = [
        pricer.price_call(call(provider="together", model=llama, start=day, input=1_000_000, output=1_000_000))
        for day in ("2025-08-31", "2025-09-01", "2026-01-01")
    ]
    assert [c.cost_usd for c in costs if isinstance(c, Priced)] == [Decimal("1.76"), Decimal("1.40"), Decimal("1.30")]
    # 8% off Anthropic's list: claude-sonnet-4 1M in = 3.00 - 0.24.
    claude = pricer.price_call(call(provider="anthropic", model="claude-sonnet-4", input=1_000_000))
    assert isinstance(claude, Priced)
    assert claude.cost_usd == Decimal("2.76")
    # Reported in pounds at the rate of the day: 100 USD on 2025-07-01 at 0.74.
    assert pricing.fx.convert(Decimal("100"), "GBP", at("2025-07-01")) == Converted(
        Decimal("74.00"), "GBP", Decimal("0.74"), date(2025, 7, 1)
    )


def test_the_pricing_page_shows_the_worked_example_verbatim() -> None:
    assert EXAMPLE.read_text().strip() in PRICING_PAGE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = "2025-13-01"\ninput = 1\noutput = 1\n',
            "pricing.prices[0].effective_from: not a date",
            id="not a date",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = 2025-06-01T10:00:00Z\ninput = 1\noutput = 1\n',
            "pricing.prices[0].effective_from: not a date",
            id="a datetime is not a date",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "a"\neffective_from = 2025-01-01\ninput = 1\noutput = 1\n'
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "b"\neffective_from = 2025-01-01\noutput = 1\n',
            "pricing.prices[1].input: required",
            id="missing rate, second entry",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = 2025-01-01\ninput = 1\noutput = 1\ninptu = 2\n',
            "pricing.prices[0].inptu: unknown key",
            id="typo in an entry",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = 2025-01-01\ninput = -1\noutput = 1\n',
            "pricing.prices[0].input: expected a non-negative number",
            id="negative rate",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = 2025-01-01\ninput = "cheap"\noutput = 1\n',
            "pricing.prices[0].input: not a number",
            id="rate not a number",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = 2025-01-01\ninput = 1\noutput = 1\n'
            "tiers = [{ above = 1000, reasoning = 3 }]\n",
            "pricing.prices[0].reasoning: a tier prices reasoning",
            id="tier for a kind with no base rate",
        ),
        pytest.param(
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "m"\neffective_from = 2025-01-01\ninput = 1\noutput = 1\n'
            '[[pricing.prices]]\nprovider = "openai"\nmodel = "M"\neffective_from = 2025-01-01\ninput = 2\noutput = 2\n',
            "pricing.prices[1].effective_from: pricing.prices[0] already prices openai/M",
            id="two entries for one model and date",
        ),
        pytest.param(
            '[[pricing.discounts]]\nprovider = "anthropic"\npercent = 150\neffective_from = 2025-01-01\n',
            "pricing.discounts[0].percent: a percentage from 0 to 100",
            id="discount over 100%",
        ),
        pytest.param(
            '[[pricing.fx]]\ncurrency = "EUR"\ndate = 2025-01-01\nper_usd = 0.9\n' * 2,
            "pricing.fx[1].date: the EUR rate for 2025-01-01 appears twice",
            id="two rates for one day",
        ),
        pytest.param(
            '[[pricing.discounts]]\nprovider = "anthropic"\npercent = 5\neffective_from = 2025-01-01\n' * 2,
            "pricing.discounts[1].effective_from: the anthropic discount from 2025-01-01 appears twice",
            id="two discounts for one day",
        ),
        pytest.param(
            '[pricing]\ncurrency = "EUR"\n', "pricing.currency: no [[pricing.fx]] rate", id="currency without a rate"
        ),
        pytest.param(
            '[pricing]\ncurrency = "euro"\n', "pricing.currency: expected a three-letter", id="not a currency code"
        ),
        pytest.param(
            '[[pricing.fx]]\ncurrency = "EUR"\ndate = 2025-01-01\nper_usd = 0\n',
            "pricing.fx[0].per_usd: expected a positive number",
            id="zero exchange rate",
        ),
        pytest.param(
            '[pricing]\nallocation_period = "week"\n',
            "pricing.allocation_period: one of hour, day, month",
            id="allocation period",
        ),
        pytest.param(
            '[pricing]\npools = "many"\n', "pricing.pools: expected an array of tables", id="pools not an array"
        ),
        pytest.param('[pricing]\nprice_list = "x"\n', "pricing.price_list: unknown key", id="unknown pricing key"),
        pytest.param(
            '[pricing]\nprice_book = "nowhere.toml"\n', "pricing.price_book: file not found", id="price book missing"
        ),
        pytest.param(
            POOL.replace('match = { backend = "b" }', "match = {}"),
            "pricing.pools[0].match: name at least one",
            id="empty match",
        ),
        pytest.param(
            POOL.replace('match = { backend = "b" }', 'match = { host = "b" }'),
            "pricing.pools[0].match.host: unknown key",
            id="match on an unknown field",
        ),
        pytest.param(
            POOL.replace(
                "rent_per_month = 100", "rent_per_month = 100\npurchase_price = 9000\namortization_months = 36"
            ),
            "pricing.pools[0]: give exactly one of",
            id="rent and purchase",
        ),
        pytest.param(
            POOL.replace("rent_per_month = 100", "purchase_price = 9000"),
            "pricing.pools[0].amortization_months: required",
            id="purchase without amortization",
        ),
        pytest.param(
            POOL.replace("output_tps = 100", "output_tps = 0"),
            "pricing.pools[0].capacity.output_tps: expected a positive number",
            id="zero capacity",
        ),
        pytest.param(
            POOL.replace("boxes = 1", "boxes = 0"), "pricing.pools[0].boxes: expected at least 1", id="no boxes"
        ),
        pytest.param(
            POOL.replace("boxes = 1", "boxes = 1.5"),
            "pricing.pools[0].boxes: expected a whole number",
            id="fractional boxes",
        ),
        pytest.param(
            POOL + "power = { kw = 0.7, price_per_kwh = 0.2, pue = 0.9 }\n",
            "pricing.pools[0].power.pue: power usage effectiveness",
            id="PUE below 1",
        ),
        pytest.param(
            POOL.replace('alternative = { provider = "together", model = "m" }\n', ""),
            "pricing.pools[0].alternative: required",
            id="pool without alternative",
        ),
        pytest.param(POOL + POOL, "pricing.pools[1].name: 'p' appears twice", id="two pools, one name"),
        pytest.param(
            POOL + "invoice_match = {}\n",
            "pricing.pools[0].invoice_match: name a ResourceId glob or Tags",
            id="empty invoice_match",
        ),
        pytest.param(
            POOL + 'invoice_match = { InstanceId = "i-1" }\n',
            "pricing.pools[0].invoice_match.InstanceId: unknown key (known: ResourceId, Tags)",
            id="invoice_match by an unknown column",
        ),
        pytest.param(
            POOL + "invoice_match = { Tags = {} }\n",
            "pricing.pools[0].invoice_match.Tags: name at least one tag",
            id="invoice_match with no tags",
        ),
        pytest.param(
            POOL + "invoice_match = { Tags = { pool = 1 } }\n",
            "pricing.pools[0].invoice_match.Tags.pool",
            id="a tag that is not text",
        ),
    ],
)
def test_bad_pricing_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load(tmp_path, text)
    assert message in str(err.value)


def test_price_book_file_named_in_the_config(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text(
        '[[prices]]\nprovider = "together_ai"\nmodel = "our-finetune"\neffective_from = 2025-01-01\ninput = 0.5\noutput = 1.5\n'
        '[[discounts]]\nprovider = "together"\npercent = 5\neffective_from = 2025-01-01\n'
    )
    pricing = load(tmp_path, '[pricing]\nprice_book = "prices.toml"\n').pricing
    (entry,) = pricing.book.entries
    assert (entry.provider, entry.source) == ("together", f"price book {tmp_path / 'prices.toml'}")
    result = pricing.pricer().price_call(
        call(provider="together", model="our-finetune", input=1_000_000, output=1_000_000)
    )
    assert isinstance(result, Priced)
    assert result.cost_usd == Decimal("1.90")


def test_price_book_file_errors_name_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text(
        '[[prices]]\nprovider = "x"\nmodel = "m"\neffective_from = "soon"\ninput = 1\noutput = 1\n'
    )
    with pytest.raises(
        SettingsError, match=r"pricing\.price_book\(.*prices\.toml\)\.prices\[0\]\.effective_from: not a date"
    ):
        load(tmp_path, '[pricing]\nprice_book = "prices.toml"\n')


def test_pricing_is_not_an_environment_variable() -> None:
    with pytest.raises(SettingsError, match="BREAKEVEN_PRICING: unknown setting"):
        load_settings({}, environ={"BREAKEVEN_PRICING": "x"})


def test_invoice_match_by_resource_and_tags(tmp_path: Path) -> None:
    text = POOL + 'invoice_match = { ResourceId = "i-0abc*", Tags = { team = "ml", pool = "p*" } }\n'
    (pool,) = load(tmp_path, text).pricing.pools
    assert pool.invoice_match == InvoiceMatch("i-0abc*", (("pool", "p*"), ("team", "ml")))
