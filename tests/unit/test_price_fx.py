"""Reporting currency: conversion at the rate in force, naming the rate and its date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from breakeven.collector.price.fx import Converted, FxRate, FxTable
from breakeven.collector.price.money import presented, stored
from tests.pricecalls import at

RATES = FxTable(
    (
        FxRate("EUR", date(2025, 1, 1), Decimal("0.92")),
        FxRate("EUR", date(2025, 6, 1), Decimal("0.8765")),
        FxRate("GBP", date(2025, 1, 1), Decimal("0.79")),
    )
)


@pytest.mark.parametrize(
    ("currency", "when", "expected"),
    [
        pytest.param(
            "EUR",
            "2025-05-31T23:59:59",
            Converted(Decimal("11.5000"), "EUR", Decimal("0.92"), date(2025, 1, 1)),
            id="12.50 x 0.92",
        ),
        pytest.param(
            "EUR",
            "2025-06-01T00:00:00",
            Converted(Decimal("10.956250"), "EUR", Decimal("0.8765"), date(2025, 6, 1)),
            id="new rate from its day: 12.50 x 0.8765",
        ),
        pytest.param(
            "gbp",
            "2026-03-01",
            Converted(Decimal("9.8750"), "GBP", Decimal("0.79"), date(2025, 1, 1)),
            id="latest rate holds until the next, any case: 12.50 x 0.79",
        ),
        pytest.param("USD", "2020-01-01", Converted(Decimal("12.50"), "USD", Decimal("1"), None), id="USD is USD"),
        pytest.param("EUR", "2024-12-31", None, id="before the first rate: no conversion, no guess"),
        pytest.param("JPY", "2025-06-01", None, id="a currency with no rate"),
    ],
)
def test_convert(currency: str, when: str, expected: Converted | None) -> None:
    assert RATES.convert(Decimal("12.50"), currency, at(when)) == expected


def test_rounding_happens_only_for_presentation_and_storage() -> None:
    converted = RATES.convert(Decimal("0.0000123456789"), "EUR", at("2025-06-02"))
    assert converted is not None
    assert converted.amount == Decimal("0.00001082098755585")  # 0.0000123456789 x 0.8765, exact
    assert stored(converted.amount) == Decimal("0.0000108210")  # NUMERIC(20,10)
    assert presented(Decimal("10.956250")) == Decimal("10.96")
    assert presented(Decimal("0.125")) == Decimal("0.12")  # banker's rounding: half to even
