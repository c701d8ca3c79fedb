"""GET /api/v1/plans end to end: real OTel SDK spans in, a class's cost against the box count out.

Four hours (2025-06-10 00:00-04:00) of chat's claude-e2e traffic ($3 / $15 per million), on a
box rented at $0.10 an hour that reads 100 prompt tokens a second and writes 10, which a
declared substitute lets serve all of it. Each hour's need in box-seconds, and its price:

    hour 0: 2 calls x 180,000 in          = 3,600 s   $1.08
    hour 1: 1 call  x 720,000 in          = 7,200 s   $2.16
    hour 2: nothing
    hour 3: 1 call  x 90,000 in, 900 out  =   990 s   $0.27 + $0.0135 = $0.2835
                                             today:   $3.5235
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningCollector
from tests.plansfixture import RANGE, plans_collector


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """The collector of tests/plansfixture.py: the hours above, and one search call no box may take."""
    with plans_collector(tmp_path_factory.mktemp("plans")) as running:
        yield running


def _plans(fleet: RunningCollector, **params: str) -> dict[str, Any]:
    answer = httpx.get(f"{fleet.api}/api/v1/plans", params={**RANGE, **params}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in body["classes"] if c["service"] == "chat")["plan"]


def test_the_cost_curve_and_the_cheapest_plan(fleet: RunningCollector) -> None:
    plan = _chat(_plans(fleet))
    curve = [(p["boxes"], p["fixed"], p["overflow"], p["total"], p["overflow_share"]) for p in plan["curve"]]
    assert curve == [
        (0, "0.00", "3.5235", "3.5235", "1"),  # everything bought
        # 1 box holds 3,600 s an hour: hours 0 and 3 fit, hour 1 buys half of its $2.16; 4 h x $0.10
        (1, "0.40", "1.08", "1.48", "0.3074558032"),  # 360,000 of 1,170,900 tokens overflow
        (2, "0.80", "0.00", "0.80", "0"),  # every hour fits
    ]
    assert (plan["boxes"], plan["today"], plan["cost"], plan["savings"]) == (2, "3.5235", "0.80", "2.7235")
    assert plan["utilization"] == "0.409375"  # (3,600 + 7,200 + 990) / (2 x 14,400)
    assert plan["runs"] == {"model": "llama-e2e", "quantization": None}
    assert plan["evidence"] == "e2e eval"
    assert plan["sentence"] == (
        "Run 2 x box serving llama-e2e for chat's claude-e2e traffic (anthropic) (e2e eval):"
        " 0.80 USD over the range instead of 3.52 USD (save 2.72 USD)."
    )


def test_growth_recomputes_the_curve(fleet: RunningCollector) -> None:
    # x1.5: needs 5,400 / 10,800 / 1,485 s, bought $1.62 / $3.24 / $0.42525 = $5.28525.
    # 1 box: hour 0 buys 1/3 of $1.62, hour 1 2/3 of $3.24: $0.54 + $2.16 + $0.40 = $3.10;
    # 2 boxes: hour 1 buys 1/3 of $3.24: $1.08 + $0.80 = $1.88; 3 boxes: every hour fits, $1.20
    plan = _chat(_plans(fleet, growth="1.5"))
    assert [(p["boxes"], p["total"]) for p in plan["curve"]] == [(0, "5.28525"), (1, "3.10"), (2, "1.88"), (3, "1.20")]
    assert (plan["boxes"], plan["savings"]) == (3, "4.08525")


def test_deferrable_traffic_is_bought_at_batch_price(fleet: RunningCollector) -> None:
    plan = _chat(_plans(fleet, deferrable="chat"))
    assert (plan["today"], plan["boxes"], plan["savings"]) == ("1.76175", 2, "0.96175")  # half of $3.5235, less $0.80


def test_a_dearer_box_and_a_provider_discount_keep_the_traffic_bought(fleet: RunningCollector) -> None:
    plan = _chat(_plans(fleet, price="box:1", discount="anthropic:50"))
    # $1.76175 bought (half price) against 1 box: $4 + $0.54, or 2 boxes: $8
    assert (plan["boxes"], plan["today"], plan["cost"], plan["savings"]) == (0, "1.76175", "1.76175", "0.00")
    assert plan["sentence"].startswith("Keep buying chat's claude-e2e traffic (anthropic): no number of box boxes")


def test_a_class_no_box_may_take_says_why(fleet: RunningCollector) -> None:
    search = next(c for c in _plans(fleet)["classes"] if c["service"] == "search")
    assert search["plan"] is None
    assert search["reason"] == "no candidate box runs gpt-e2e or a substitute declared for it"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"growth": "0"}, "growth: expected a positive number"),
        ({"max_utilization": "1.5"}, "max_utilization: a share of capacity"),
        ({"discount": "anthropic"}, "discount: expected name:value pairs"),
        ({"discount": "anthropic:150"}, "discount anthropic: a percentage from 0 to 100"),
        ({"price": "box:cheap"}, "price box: not a number"),
    ],
)
def test_bad_what_ifs_are_400s_that_say_why(fleet: RunningCollector, params: dict[str, str], error: str) -> None:
    answer = httpx.get(f"{fleet.api}/api/v1/plans", params={**RANGE, **params}, timeout=10)
    assert answer.status_code == 400
    assert error in answer.json()["detail"]
