"""GET /api/v1/plans/litellm: a class's plan as a LiteLLM router, loaded by LiteLLM's own Router.

The collector of tests/plansfixture.py (four hours of chat's claude-e2e traffic a box may take,
worked out in tests/api/test_plans_api.py): 2 boxes, the rest bought from anthropic. Its
moving traffic is 1,170,000 prompt and 900 output tokens, 11,790 box-seconds, so two boxes
serve 2 x 60 x 1,170,900 / 11,790 = 11,917.4 tokens a minute: tpm 11,917.

No model is called: LITELLM_LOCAL_MODEL_COST_MAP keeps LiteLLM's import from fetching its cost
map, a guard fails any name lookup, and the one completion test answers from mock_response.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml

from breakeven.collector.price.pools import Capacity
from breakeven.collector.reports.router import RouterPlan, litellm_config, litellm_yaml, tokens_per_minute
from tests.api.test_plans_api import fleet  # noqa: F401  (the module's collector, shared)
from tests.conftest import RunningCollector
from tests.plansfixture import RANGE

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    """A lookup of any host but this one fails the test: LiteLLM must build and pick offline."""
    asked: list[tuple[Any, ...]] = []
    lookup = socket.getaddrinfo

    def refuse(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("127.0.0.1", "localhost", "::1"):  # the collector under test
            return lookup(host, *args, **kwargs)
        asked.append((host, *args[:1]))
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("BREAKEVEN_POOL_BOX_API_BASE", "http://pool.invalid:8000/v1")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    yield asked
    assert asked == [], f"LiteLLM looked up {asked}"


def _router(config: dict[str, Any]) -> Any:
    import litellm

    return litellm.Router(model_list=config["model_list"], **config["router_settings"])


def _yaml(collector: RunningCollector, **params: str) -> httpx.Response:
    return httpx.get(f"{collector.api}/api/v1/plans/litellm", params={**RANGE, **params}, timeout=30)


def _picked(router: Any, model: str) -> str:
    deployment = router.get_available_deployment(model=model, messages=[{"role": "user", "content": "hi"}])
    return str(deployment["litellm_params"]["model"])


@pytest.mark.slow  # LiteLLM's own Router: some 5 s to import, per process
def test_the_plan_loads_as_a_router_with_the_pool_first(fleet: RunningCollector, offline: list[Any]) -> None:  # noqa: F811
    answer = _yaml(fleet, service="chat", provider="anthropic", model="claude-e2e")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/yaml")
    assert answer.text.startswith("# LiteLLM router for chat-claude-e2e: breakeven's plan over 2025-06-10T00:00:00")
    assert "2 x box serving llama-e2e first (order 1, tpm 11917)" in answer.text
    config = yaml.safe_load(answer.text)
    assert [(d["model_name"], d["litellm_params"]) for d in config["model_list"]] == [
        (
            "chat-claude-e2e",
            {
                "model": "hosted_vllm/llama-e2e",
                "api_base": "os.environ/BREAKEVEN_POOL_BOX_API_BASE",
                "tpm": 11917,
                "order": 1,
            },
        ),
        ("chat-claude-e2e", {"model": "anthropic/claude-e2e", "api_key": "os.environ/ANTHROPIC_API_KEY", "order": 2}),
        ("chat-claude-e2e-bought", {"model": "anthropic/claude-e2e", "api_key": "os.environ/ANTHROPIC_API_KEY"}),
    ]
    assert config["model_list"][0]["model_info"] == {
        "breakeven_plan": "plan: 2 x box running llama-e2e; all of the class; overflow 0%"
    }

    router = _router(config)
    group = [d for d in router.get_model_list() if d["model_name"] == "chat-claude-e2e"]
    ordered = sorted(group, key=lambda d: d["litellm_params"]["order"])
    assert [d["litellm_params"]["model"] for d in ordered] == ["hosted_vllm/llama-e2e", "anthropic/claude-e2e"]
    assert ordered[0]["litellm_params"]["api_base"] == "http://pool.invalid:8000/v1"  # os.environ/ read by LiteLLM
    assert ordered[0]["litellm_params"]["tpm"] == 11917
    assert router.settings().fallbacks == [{"chat-claude-e2e": ["chat-claude-e2e-bought"]}]
    assert _picked(router, "chat-claude-e2e") == "hosted_vllm/llama-e2e"  # LiteLLM's own pick: order 1


@pytest.mark.slow  # LiteLLM's own Router: some 5 s to import, per process
def test_a_plan_of_no_box_exports_the_provider_alone(fleet: RunningCollector, offline: list[Any]) -> None:  # noqa: F811
    answer = _yaml(fleet, model="claude-e2e", price="box:1", discount="anthropic:50")  # 0 boxes: test_plans_api
    assert answer.status_code == 200, answer.text
    assert "# The plan runs no box box: everything stays bought from anthropic." in answer.text
    config = yaml.safe_load(answer.text)
    assert config["model_list"] == [
        {
            "model_name": "chat-claude-e2e",
            "litellm_params": {"model": "anthropic/claude-e2e", "api_key": "os.environ/ANTHROPIC_API_KEY"},
            "model_info": {"breakeven_plan": "plan: 0 boxes of box; all bought"},
        }
    ]
    assert "fallbacks" not in config["router_settings"]
    router = _router(config)
    assert _picked(router, "chat-claude-e2e") == "anthropic/claude-e2e"


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        pytest.param({"model": "gpt-e2e"}, 404, "search's gpt-e2e (openai) has no plan: no candidate box runs",
                     id="a class without a plan"),
        pytest.param({"model": "claude-e2e", "service": "search"}, 404, "no traffic class service=search model=claude-e2e",
                     id="no such class"),
        pytest.param({"model": "claude-e2e", "growth": "0"}, 400, "growth: expected a positive number",
                     id="a bad what-if, as /api/v1/plans"),
    ],
)  # fmt: skip
def test_no_plan_is_a_404_that_says_why(
    fleet: RunningCollector,  # noqa: F811
    params: dict[str, str],
    status: int,
    detail: str,
) -> None:
    answer = _yaml(fleet, **params)
    assert answer.status_code == status
    assert detail in answer.json()["detail"]


def _hand_made(**changes: Any) -> RouterPlan:
    plan = {
        "name": "support-gpt-4o", "provider": "openai", "model": "gpt-4o", "box": "h100 fp8", "runs": "llama-3.3-70b",
        "quantization": "fp8", "boxes": 3, "tokens_per_minute": 90, "share": Decimal("0.6"),
        "overflow_share": Decimal("0.125"), "evidence": "support eval 2025-05",
    }  # fmt: skip
    return RouterPlan(**{**plan, **changes})


@pytest.mark.parametrize(
    ("boxes", "capacity", "utilization", "tokens", "tpm"),
    [
        pytest.param(2, Capacity(Decimal(100), Decimal(10)), Decimal(1), (1_170_000, 900), 11_917,
                     id="the fixture's chat: 11,790 box-seconds for 1,170,900 tokens"),
        pytest.param(3, Capacity(Decimal(1000), Decimal(100)), Decimal("0.6"), (1000, 0), 108_000,
                     id="prompt tokens only: boxes x utilization x 60 x input_tps"),
        pytest.param(1, Capacity(Decimal(1000), Decimal(100)), Decimal(1), (1000, 1000), 10_909,
                     id="an even mix: 2,000 tokens in 11 box-seconds"),
        pytest.param(1, Capacity(Decimal(1000), Decimal(100)), Decimal(1), (0, 0), None, id="no tokens, no limit"),
    ],
)  # fmt: skip
def test_tokens_per_minute_is_the_boxes_throughput_in_the_class_mix(
    boxes: int, capacity: Capacity, utilization: Decimal, tokens: tuple[int, int], tpm: int | None
) -> None:
    assert tokens_per_minute(boxes, capacity, utilization, *tokens) == tpm


def test_a_hand_made_plan_with_a_share_says_which_traffic_may_move() -> None:
    plan = _hand_made()
    text = litellm_yaml(plan, datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    assert text.splitlines()[:4] == [
        "# LiteLLM router for support-gpt-4o: breakeven's plan over 2025-06-01T00:00:00+00:00 .. 2025-07-01T00:00:00+00:00.",
        "# 3 x h100 fp8 serving llama-3.3-70b (fp8) first (order 1, tpm 90); openai takes the overflow (order 2),"
        " planned at 12.5% of the tokens.",
        "# Fill BREAKEVEN_POOL_H100_FP8_API_BASE with the boxes' OpenAI-compatible URL (.../v1).",
        "# Only 60% of this traffic may move (support eval 2025-05): send the calls your evals cleared to"
        " support-gpt-4o, the rest to support-gpt-4o-bought.",
    ]
    assert yaml.safe_load(text) == litellm_config(plan)  # the hand-written YAML reads back as the dict
    assert litellm_config(plan)["model_list"][0]["model_info"]["breakeven_plan"] == (
        "plan: 3 x h100 fp8 running llama-3.3-70b; 60% of the class may move (support eval 2025-05); overflow 12.5%"
    )


@pytest.mark.parametrize(
    "provider",
    [pytest.param("aws.bedrock", id="cloud credentials: no api_key"), pytest.param("x_ai", id="LiteLLM's own prefix")],
)
def test_providers_take_litellm_names(provider: str) -> None:
    bought = litellm_config(_hand_made(provider=provider))["model_list"][1]["litellm_params"]
    assert (
        bought
        == {
            "aws.bedrock": {"model": "bedrock/gpt-4o", "order": 2},
            "x_ai": {"model": "xai/gpt-4o", "api_key": "os.environ/XAI_API_KEY", "order": 2},
        }[provider]
    )


@pytest.mark.parametrize("name", ["yes", "Off", "NULL", "~", "1.0", "0x1f", "a: b", "#c", "- d", "ünï", 'e "f"\ng'])
def test_strings_yaml_would_misread_stay_strings(name: str) -> None:
    plan = _hand_made(name=name, model=f"{name}/x", runs=name, tokens_per_minute=None)
    config = yaml.safe_load(litellm_yaml(plan, datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)))
    assert config == litellm_config(plan)
    assert config["router_settings"]["fallbacks"] == [{name: [f"{name}-bought"]}]
    assert "tpm" not in config["model_list"][0]["litellm_params"]


@pytest.mark.slow  # LiteLLM's own Router: some 5 s to import, per process
def test_the_pool_takes_a_minutes_tokens_up_to_its_limit_then_the_provider_the_rest(offline: list[Any]) -> None:
    # The exported router as LiteLLM runs it, answering from mock_response instead of calling a
    # model: a limit of 1 token a minute lets one call through to the pool, then the minute is
    # full and the provider (order 2) answers. LiteLLM counts a call's tokens in a success
    # callback that may land after the next call is routed (seen under CI's load), and a minute
    # may turn between two calls: so the calls go on, a tenth of a second apart, until the
    # provider answers, never more than 20.
    config = litellm_config(_hand_made(provider="anthropic", box="box", tokens_per_minute=1))
    for deployment, answer in zip(config["model_list"], ["pool", "bought", "bought"], strict=True):
        deployment["litellm_params"]["mock_response"] = answer
    router = _router(config)
    said: list[str] = []
    while "bought" not in said and len(said) < 20:
        reply = router.completion(model="support-gpt-4o", messages=[{"role": "user", "content": "hi"}])
        said.append(reply.choices[0].message.content)
        time.sleep(0.1)
    assert said[0] == "pool"
    assert said[-1] == "bought"
