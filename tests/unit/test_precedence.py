"""The precedence between conventions is explicit: the first present name wins."""

from __future__ import annotations

import pytest

from breakeven.collector.config.settings import load_settings
from breakeven.collector.normalize import conventions as c
from breakeven.collector.normalize import normalize_span
from breakeven.collector.records import LlmSpan
from tests.spans import decoded

SETTINGS = load_settings({}, environ={})


def test_precedence_lists_are_pinned() -> None:
    assert c.PROVIDER == (
        "breakeven.provider",
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "ai.model.provider",
    )
    assert c.INPUT_TOKENS[:2] == ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    assert c.REQUEST_MODEL[:2] == ("breakeven.request_model", "gen_ai.request.model")


@pytest.mark.parametrize(
    ("attrs", "field", "expected"),
    [
        pytest.param(
            {"gen_ai.provider.name": "anthropic", "gen_ai.system": "openai", "gen_ai.request.model": "m"},
            "provider",
            "anthropic",
            id="current provider name beats legacy system",
        ),
        pytest.param(
            {"gen_ai.system": "openai", "llm.provider": "azure", "gen_ai.request.model": "m"},
            "provider",
            "openai",
            id="otel legacy beats openinference",
        ),
        pytest.param(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.prompt_tokens": 99,
                "llm.token_count.prompt": 98,
                "gen_ai.request.model": "m",
            },
            "input_tokens",
            10,
            id="current token names beat legacy and openinference",
        ),
        pytest.param(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "asked",
                "llm.model_name": "served",
                "gen_ai.usage.input_tokens": 1,
            },
            "request_model",
            "asked",
            id="request model from otel",
        ),
        pytest.param(
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "m",
                "breakeven.team": "mine",
                "gen_ai.usage.input_tokens": 1,
            },
            "team",
            "mine",
            id="breakeven attribute beats resource",
        ),
        pytest.param(
            {
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.model.id": "asked-by-ai-sdk",
                "gen_ai.request.model": "asked",
                "ai.usage.inputTokens": 99,
                "gen_ai.usage.input_tokens": 10,
            },
            "input_tokens",
            10,
            id="otel names beat the Vercel AI SDK's own",
        ),
    ],
)
def test_first_present_name_wins(attrs: dict, field: str, expected: object) -> None:
    span = normalize_span(decoded(attrs, resource={"team": "resource-team"}), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert getattr(span, field) == expected
