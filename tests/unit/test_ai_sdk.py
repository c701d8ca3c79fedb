"""The Vercel AI SDK's spans -> calls (table-driven; shapes from tests/fixtures/emitters/vercel-ai*/).

Its legacy telemetry (ai 4-6, and @ai-sdk/otel's LegacyOpenTelemetry) writes `ai.*`
attributes: an outer span per function call (ai.generateText, ai.embedMany ...) around one
inner span per model call (ai.generateText.doGenerate, ai.streamText.doStream,
ai.embed.doEmbed ...), ai.toolCall spans for tools. @ai-sdk/otel's OpenTelemetry
integration writes OTel GenAI spans under invoke_agent and agent_step spans.
"""

from __future__ import annotations

from typing import Any

import pytest

from breakeven.collector.calls.merge import calls_of_trace
from breakeven.collector.config.settings import load_settings
from breakeven.collector.normalize import conventions as c
from breakeven.collector.normalize import normalize_span
from breakeven.collector.records import LlmSpan, SpanEvent
from tests.spans import T0, decoded

SETTINGS = load_settings({}, environ={})
OPENAI_CHAT = {"ai.model.provider": "openai.chat", "ai.model.id": "gpt-4o"}


def norm(attrs: dict[str, Any], **kw: Any) -> LlmSpan | None:
    result = normalize_span(decoded(attrs, **kw), SETTINGS)
    assert result is None or isinstance(result, LlmSpan), result
    return result


@pytest.mark.parametrize(
    ("operation_id", "expected"),
    [
        pytest.param("ai.generatetext.dogenerate", "chat", id="generateText's model call"),
        pytest.param("ai.streamtext.dostream", "chat", id="streamText's model call"),
        pytest.param("ai.generateobject.dogenerate", "chat", id="generateObject's model call"),
        pytest.param("ai.streamobject.dostream", "chat", id="streamObject's model call"),
        pytest.param("ai.embed.doembed", "embeddings", id="embed's model call"),
        pytest.param("ai.embedmany.doembed", "embeddings", id="embedMany's model call"),
        pytest.param("ai.rerank.dorerank", "rerank", id="rerank's model call"),
        pytest.param("ai.generatetext", c.AI_SDK_FUNCTION, id="the outer generateText span is no call"),
        pytest.param("ai.streamtext", c.AI_SDK_FUNCTION, id="the outer streamText span is no call"),
        pytest.param("ai.embedmany", c.AI_SDK_FUNCTION, id="the outer embedMany span is no call"),
        pytest.param("ai.toolcall", c.AI_SDK_FUNCTION, id="a tool call is no call"),
    ],
)
def test_operation_from_the_operation_id(operation_id: str, expected: str) -> None:
    assert c.ai_sdk_operation(operation_id) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("openai.chat", "openai", id="chat completions"),
        pytest.param("openai.responses", "openai", id="responses"),
        pytest.param("openai.embedding", "openai", id="embeddings"),
        pytest.param("anthropic.messages", "anthropic", id="anthropic"),
        pytest.param("google.generative-ai", "gcp.gemini", id="the Gemini API"),
        pytest.param("google.vertex.chat", "gcp.vertex_ai", id="Vertex AI is not the Gemini API"),
        pytest.param("amazon-bedrock", "aws.bedrock", id="bedrock has no dot"),
        pytest.param("mistral.chat", "mistral_ai", id="an alias after the split"),
        pytest.param("vllm.chat", "vllm", id="an openai-compatible provider named by the user"),
        pytest.param("gcp.gemini", "gcp.gemini", id="a known dotted name is kept"),
        pytest.param("azure.ai.openai", "azure.ai.openai", id="another known dotted name"),
    ],
)
def test_provider_from_the_provider_id(raw: str, expected: str) -> None:
    span = norm({"ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": raw, "ai.model.id": "m"})
    assert span is not None
    assert span.provider == expected


INNER = [
    pytest.param(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            **OPENAI_CHAT,
            "gen_ai.system": "openai.chat",
            "gen_ai.request.model": "gpt-4o",
            "ai.response.model": "gpt-4o-2024-08-06",
            "ai.response.id": "chatcmpl-1",
            "ai.usage.inputTokens": 3000,
            "ai.usage.outputTokens": 44,
            "ai.usage.cachedInputTokens": 1200,
            "ai.usage.inputTokenDetails.noCacheTokens": 1000,
            "ai.usage.inputTokenDetails.cacheReadTokens": 1200,
            "ai.usage.inputTokenDetails.cacheWriteTokens": 800,
            "ai.usage.reasoningTokens": 0,
            "ai.usage.outputTokenDetails.reasoningTokens": 0,
            "gen_ai.usage.input_tokens": 3000,
            "gen_ai.usage.output_tokens": 44,
        },
        dict(
            operation="chat",
            provider="openai",
            request_model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            response_id="chatcmpl-1",
            input_tokens=1000,
            cache_read_tokens=1200,
            cache_write_tokens=800,
            output_tokens=44,
            reasoning_tokens=0,
        ),
        id="ai 7 legacy: input holds cache reads and writes, both reported apart",
    ),
    pytest.param(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "openai.chat",
            "ai.model.id": "o3-mini",
            "ai.usage.inputTokens": 321,
            "ai.usage.outputTokens": 567,
            "ai.usage.cachedInputTokens": 0,
            "ai.usage.reasoningTokens": 300,
        },
        dict(input_tokens=321, cache_read_tokens=0, output_tokens=567, reasoning_tokens=300),
        id="ai 5: cachedInputTokens and reasoningTokens, output holds the reasoning",
    ),
    pytest.param(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            **OPENAI_CHAT,
            "ai.usage.promptTokens": 101,
            "ai.usage.completionTokens": 23,
        },
        dict(operation="chat", provider="openai", input_tokens=101, output_tokens=23),
        id="ai 4: promptTokens and completionTokens",
    ),
    pytest.param(
        {
            "ai.operationId": "ai.embedMany.doEmbed",
            "ai.model.provider": "openai.embedding",
            "ai.model.id": "text-embedding-3-small",
            "ai.usage.tokens": 42,
        },
        dict(
            operation="embeddings",
            provider="openai",
            request_model="text-embedding-3-small",
            response_model=None,
            input_tokens=42,
            output_tokens=None,
        ),
        id="an embedding call: ai.usage.tokens, no gen_ai attribute at all",
    ),
]


@pytest.mark.parametrize(("attrs", "expected"), INNER)
def test_the_inner_span_is_the_call(attrs: dict[str, Any], expected: dict[str, Any]) -> None:
    span = norm(attrs)
    assert span is not None
    assert {k: getattr(span, k) for k in expected} == expected
    assert c.VERCEL_AI in span.conventions


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param(
            {"ai.operationId": "ai.generateText", **OPENAI_CHAT, "ai.usage.inputTokens": 3, "ai.usage.outputTokens": 4},
            id="generateText's outer span, its usage summed over the steps",
        ),
        pytest.param(
            {"ai.operationId": "ai.embed", "ai.model.provider": "openai.embedding", "ai.usage.tokens": 42},
            id="embed's outer span",
        ),
        pytest.param(
            {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "get_weather", "ai.toolCall.id": "call_1"},
            id="a tool's run",
        ),
        pytest.param(
            {"gen_ai.operation.name": "agent_step", "http.response.status_code": 400},
            id="@ai-sdk/otel's step span",
        ),
        pytest.param(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 101,
            },
            id="@ai-sdk/otel's function span",
        ),
    ],
)
def test_wrapper_spans_are_not_calls(attrs: dict[str, Any]) -> None:
    assert norm(attrs) is None


def test_a_stream_says_when_its_first_chunk_came() -> None:
    attrs = {"ai.operationId": "ai.streamText.doStream", **OPENAI_CHAT, "ai.usage.inputTokens": 5}
    events = [SpanEvent("ai.stream.firstChunk", T0 + 380_000_000, {"ai.response.msToFirstChunk": 380.0})]
    span = norm(attrs, events=events)
    assert span is not None
    assert (span.streaming, span.ttft_ms) == (True, pytest.approx(380.0))
    otel = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.client.operation.time_to_first_chunk": 0.385,
    }
    span = norm(otel)
    assert span is not None
    assert span.ttft_ms == pytest.approx(385.0)


def test_each_step_of_a_tool_loop_is_a_call_and_the_function_span_none() -> None:
    """generateText with a tool: two model calls under one outer span that sums their usage."""
    outer = decoded(
        {"ai.operationId": "ai.generateText", **OPENAI_CHAT, "ai.usage.inputTokens": 451, "ai.usage.outputTokens": 42},
        span_id="0" * 15 + "1",
        end=T0 + 3_000_000_000,
    )
    steps = [
        decoded(
            {"ai.operationId": "ai.generateText.doGenerate", **OPENAI_CHAT, **usage},
            span_id="0" * 15 + str(n),
            parent=outer.span_id,
            start=T0 + n * 1_000_000_000,
            end=T0 + n * 1_000_000_000 + 500_000_000,
        )
        for n, usage in (
            (2, {"ai.usage.inputTokens": 203, "ai.usage.outputTokens": 15}),
            (3, {"ai.usage.inputTokens": 248, "ai.usage.outputTokens": 27}),
        )
    ]
    tool = decoded(
        {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "get_weather"},
        parent=outer.span_id,
        start=T0 + 2_600_000_000,
        end=T0 + 2_700_000_000,
    )
    spans = [normalize_span(s, SETTINGS) for s in (outer, *steps, tool)]
    calls = calls_of_trace([s for s in spans if isinstance(s, LlmSpan)])
    assert sorted((call.input_tokens, call.output_tokens) for call in calls) == [(203, 15), (248, 27)]
