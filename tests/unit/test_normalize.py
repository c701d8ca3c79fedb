"""Each dialect's attributes -> the canonical record (table-driven, hand-computed)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from breakeven.collector.config.settings import load_settings
from breakeven.collector.normalize import normalize_span, quantization_from_model
from breakeven.collector.records import LlmSpan, Rejection, SpanEvent
from tests.spans import T0, decoded

SETTINGS = load_settings({}, environ={})


def norm(attrs: dict[str, Any], **kw: Any) -> LlmSpan:
    result = normalize_span(decoded(attrs, **kw), kw.pop("settings", SETTINGS) if "settings" in kw else SETTINGS)
    assert isinstance(result, LlmSpan), result
    return result


DIALECTS = [
    pytest.param(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1234,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 567,
            "gen_ai.usage.reasoning.output_tokens": 300,
            "server.address": "api.openai.com",
        },
        {},
        dict(
            provider="openai",
            operation="chat",
            request_model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            input_tokens=234,
            cache_read_tokens=1000,
            cache_write_tokens=None,
            output_tokens=567,
            reasoning_tokens=300,
            backend_class="frontier",
            backend="api.openai.com",
        ),
        id="otel genai current: openai input includes cached, reasoning inside output",
    ),
    pytest.param(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.prompt_tokens": 100,
            "gen_ai.usage.completion_tokens": 20,
        },
        {},
        dict(
            provider="openai",
            input_tokens=100,
            output_tokens=20,
            cache_read_tokens=None,
            backend_class="frontier",
            conventions=("otel_genai_legacy",),
        ),
        id="otel genai legacy names",
    ),
    pytest.param(
        {
            "gen_ai.provider.name": "anthropic",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 2234,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.cache_creation.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 50,
        },
        {},
        dict(provider="anthropic", input_tokens=234, cache_read_tokens=1000, cache_write_tokens=1000, output_tokens=50),
        id="otel genai anthropic: spec says input includes cache read and creation",
    ),
    pytest.param(
        {
            "gen_ai.system": "Anthropic",
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-3-5-sonnet",
            "gen_ai.usage.prompt_tokens": 2234,
            "gen_ai.usage.cache_read_input_tokens": 1000,
            "gen_ai.usage.cache_creation_input_tokens": 1000,
            "gen_ai.usage.completion_tokens": 50,
            "llm.usage.total_tokens": 2284,
            "llm.is_streaming": True,
        },
        {},
        dict(
            provider="anthropic",
            input_tokens=234,
            cache_read_tokens=1000,
            cache_write_tokens=1000,
            output_tokens=50,
            streaming=True,
        ),
        id="openllmetry anthropic: prompt tokens summed with cache, capitalised system",
    ),
    pytest.param(
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o-2024-08-06",
            "llm.invocation_parameters": '{"model": "gpt-4o", "stream": false}',
            "llm.token_count.prompt": 1234,
            "llm.token_count.prompt_details.cache_read": 1000,
            "llm.token_count.completion": 567,
            "llm.token_count.completion_details.reasoning": 300,
            "llm.token_count.total": 1801,
        },
        {},
        dict(
            provider="openai",
            request_model="gpt-4o",
            response_model="gpt-4o-2024-08-06",
            input_tokens=234,
            cache_read_tokens=1000,
            output_tokens=567,
            reasoning_tokens=300,
            streaming=False,
            operation="chat",
        ),
        id="openinference: model from the parameter blob, response model from llm.model_name",
    ),
    pytest.param(
        {
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "llm.token_count.prompt": 8,
            "llm.token_count.total": 8,
        },
        {},
        dict(operation="embeddings", request_model="text-embedding-3-small", input_tokens=8, output_tokens=None),
        id="openinference embedding span",
    ),
    pytest.param(
        {
            "gen_ai.system": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.server.ttft": 0.25,
            "gen_ai.request.is_stream": True,
            "gen_ai.sdk.version": "1.45.0",
        },
        {"telemetry.sdk.name": "openlit"},
        dict(ttft_ms=250.0, streaming=True, conventions=("openlit", "otel_genai_legacy")),
        id="openlit: ttft in seconds and stream flag",
    ),
    pytest.param(
        {
            "gen_ai.response.model": "meta-llama/Llama-3.1-8B-Instruct-FP8",
            "gen_ai.usage.prompt_tokens": 900,
            "gen_ai.usage.completion_tokens": 100,
            "gen_ai.latency.time_to_first_token": 0.05,
            "gen_ai.latency.e2e": 1.2,
            "gen_ai.latency.time_in_queue": 0.01,
            "gen_ai.request.id": "cmpl-1",
        },
        {"service.name": "vllm-llama8b"},
        dict(
            provider="vllm",
            backend_class="self_hosted",
            backend="vllm-llama8b",
            is_engine=True,
            ttft_ms=50.0,
            quantization="fp8",
            input_tokens=900,
            output_tokens=100,
            operation="chat",
            request_model="meta-llama/Llama-3.1-8B-Instruct-FP8",
        ),
        id="vllm request span: no provider, model only as response, quantization from the name",
    ),
    pytest.param(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "server.address": "api.together.xyz",
        },
        {},
        dict(provider="together", backend_class="managed", backend="api.together.xyz"),
        id="an openai client aimed at together is together's bill",
    ),
    pytest.param(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "llama-8b",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "server.address": "10.0.0.7",
            "server.port": 8000,
        },
        {},
        dict(provider="openai", backend_class="unknown", backend="10.0.0.7:8000"),
        id="an openai client aimed at an unknown address is not frontier",
    ),
    pytest.param(
        {
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.operation.name": "generate_content",
            "gen_ai.request.model": "gemini-2.5-pro",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.cache_read.input_tokens": 400,
            "gen_ai.usage.output_tokens": 150,
            "gen_ai.usage.reasoning.output_tokens": 50,
        },
        {},
        dict(
            provider="gcp.gemini",
            operation="generate_content",
            input_tokens=600,
            cache_read_tokens=400,
            output_tokens=150,
            reasoning_tokens=50,
        ),
        id="gemini in OTel GenAI: the output count already holds the thoughts (the contrib instrumentation)",
    ),
    pytest.param(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "error.type": "RateLimitError",
        },
        {},
        dict(status="error", error_type="RateLimitError", input_tokens=None, output_tokens=None),
        id="an error call with no usage is still a call",
    ),
    pytest.param(
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 5,
            "breakeven.team": "search",
            "breakeven.feature": "autocomplete",
            "breakeven.backend": "openai-eu",
            "breakeven.quantization": "none",
            "breakeven.prompt_hash": "abc123",
        },
        {"deployment.environment.name": "prod"},
        dict(
            team="search",
            feature="autocomplete",
            backend="openai-eu",
            quantization="none",
            prompt_hash="abc123",
            environment="prod",
            conventions=("breakeven", "otel_genai"),
        ),
        id="breakeven's own attributes and the resource environment",
    ),
]


@pytest.mark.parametrize(("attrs", "resource", "expected"), DIALECTS)
def test_dialect_maps_to_canonical_record(
    attrs: dict[str, Any], resource: dict[str, Any], expected: dict[str, Any]
) -> None:
    span = norm(attrs, resource=resource)
    for name, value in expected.items():
        assert getattr(span, name) == value, name


NOT_CALLS = [
    pytest.param({"http.method": "GET", "http.route": "/"}, id="an HTTP span"),
    pytest.param({"db.system": "postgresql", "db.statement": "select 1"}, id="a DB span"),
    pytest.param(
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "x", "gen_ai.usage.input_tokens": 500},
        id="an agent span summing its children's usage",
    ),
    pytest.param({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}, id="a tool span"),
    pytest.param(
        {"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 10, "llm.model_name": "gpt-4o"},
        id="an openinference chain span",
    ),
    pytest.param(
        {"traceloop.span.kind": "workflow", "gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai"},
        id="a traceloop workflow span",
    ),
]


@pytest.mark.parametrize("attrs", NOT_CALLS)
def test_non_llm_spans_are_not_calls(attrs: dict[str, Any]) -> None:
    assert normalize_span(decoded(attrs), SETTINGS) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(-1, id="negative"),
        pytest.param(10**12, id="absurdly large"),
        pytest.param(1.5, id="fractional"),
        pytest.param("many", id="not a number"),
        pytest.param("--5", id="two minus signs (int() raised, found by fuzzing)"),
        pytest.param("²", id="a superscript two, a digit to isdigit() but not to int() (found by fuzzing)"),
        pytest.param("1" * 5000, id="5000 digits, past int()'s limit (found by fuzzing)"),
        pytest.param(math.inf, id="infinity"),
    ],
)
def test_bad_token_counts_are_rejected_with_a_reason(value: Any) -> None:
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": value}
    result = normalize_span(decoded(attrs), SETTINGS)
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_tokens"


HOSTILE_BASE = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1}


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        pytest.param(
            {"server.address": "http://[::1"},
            dict(server_address=None),
            id="URL with a broken IPv6 host (urlsplit raised)",
        ),
        pytest.param(
            {"server.address": "http://h:99999/"},
            dict(server_address="h", backend="h"),
            id="URL with a port past 65535 (.port raised)",
        ),
        pytest.param(
            {"server.address": "10.0.0.7:8000", "server.port": "8000"},
            dict(server_address="10.0.0.7", backend="10.0.0.7:8000"),
            id="host:port in server.address (mistralai 1.x's own spans)",
        ),
        pytest.param(
            {"server.address": "10.0.0.7:8000"},
            dict(server_address="10.0.0.7", backend="10.0.0.7:8000"),
            id="host:port in server.address, no server.port",
        ),
        pytest.param(
            {"server.address": "[fd00::7]:8000"},
            dict(server_address="fd00::7", backend="fd00::7:8000"),
            id="[IPv6]:port in server.address",
        ),
        pytest.param(
            {"server.address": "fd00::7"},
            dict(server_address="fd00::7", backend="fd00::7"),
            id="a bare IPv6 address is no host:port",
        ),
        pytest.param(
            {"server.address": "10.0.0.7", "server.port": math.inf},
            dict(server_address="10.0.0.7", backend="10.0.0.7"),
            id="infinite port (int() raised OverflowError)",
        ),
        pytest.param(
            {"server.address": "10.0.0.7", "server.port": math.nan},
            dict(server_address="10.0.0.7", backend="10.0.0.7"),
            id="NaN port",
        ),
        pytest.param(
            {"gen_ai.server.time_to_first_token": math.inf},
            dict(ttft_ms=None),
            id="infinite ttft (no JSON can carry it)",
        ),
        pytest.param(
            {"gen_ai.server.time_to_first_token": 1.7e308},
            dict(ttft_ms=None),
            id="ttft that overflows to infinity in ms",
        ),
        pytest.param(
            {"llm.invocation_parameters": "[" * 5000},
            dict(request_model="gpt-4o"),
            id="invocation parameters nested 5000 deep (json.loads raised RecursionError)",
        ),
    ],
)
def test_hostile_values_give_a_call_not_an_exception(attrs: dict[str, Any], expected: dict[str, Any]) -> None:
    span = norm({**HOSTILE_BASE, **attrs})
    assert {name: getattr(span, name) for name in expected} == expected


def test_an_attribute_name_past_the_value_limit_rejects_the_span() -> None:
    limit = SETTINGS.max_attribute_value_bytes
    fine = norm({**HOSTILE_BASE, "x" * 300: 1})  # long, but within the limit: kept
    assert "x" * 300 in fine.attributes
    result = normalize_span(decoded({**HOSTILE_BASE, "k" * (limit + 1): 1}), SETTINGS)
    assert isinstance(result, Rejection)
    assert result.reason == "attribute_too_long"
    assert len(result.detail) < 200


def test_user_mapping_names_where_team_lives() -> None:
    settings = load_settings({"config": None}, environ={})
    settings = type(settings)(
        **{**settings.__dict__, "attributes": {"team": ("app.team",), "feature": ("app.feature",)}}
    )
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1}
    span = normalize_span(decoded(attrs, resource={"app.team": "growth", "app.feature": "chatbot"}), settings)
    assert isinstance(span, LlmSpan)
    assert (span.team, span.feature) == ("growth", "chatbot")


def test_configured_address_is_self_hosted() -> None:
    settings = load_settings({}, environ={})
    settings = type(settings)(**{**settings.__dict__, "backend_classes": {"10.0.0.7:8000": "self_hosted"}})
    attrs = {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "llama",
        "gen_ai.usage.input_tokens": 1,
        "server.address": "10.0.0.7",
        "server.port": 8000,
    }
    span = normalize_span(decoded(attrs), settings)
    assert isinstance(span, LlmSpan)
    assert span.backend_class == "self_hosted"


def test_ttft_from_first_token_event_and_errors_from_exception_events() -> None:
    events = [
        SpanEvent("First Token Stream Event", T0 + 120_000_000, {}),
        SpanEvent("exception", T0 + 500_000_000, {"exception.type": "openai.APIError", "exception.message": "x"}),
    ]
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai"}
    span = norm(attrs, events=events, status_code=2)
    assert span.ttft_ms == pytest.approx(120.0)
    assert span.streaming is True
    assert (span.status, span.error_type) == ("error", "openai.APIError")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct-FP8", "fp8"),
        ("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", "awq"),
        ("Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4", "gptq"),
        ("llama3.1:8b-instruct-q4_K_M", "q4_k_m"),
        ("gpt-4o", None),
        ("openai/gpt-oss-120b", None),
    ],
)
def test_quantization_from_model_name(model: str, expected: str | None) -> None:
    assert quantization_from_model(model) == expected


@pytest.mark.parametrize(
    ("scope", "attrs", "output", "reasoning"),
    [
        pytest.param(
            "opentelemetry.instrumentation.google_generativeai",
            {"gen_ai.usage.input_tokens": 222, "gen_ai.usage.output_tokens": 77, "gen_ai.usage.total_tokens": 811},
            589,
            512,
            id="OpenLLMetry passes Gemini's candidates count on: the thoughts are the rest of its total",
        ),
        pytest.param(
            "opentelemetry.instrumentation.google_genai",
            {"gen_ai.usage.input_tokens": 222, "gen_ai.usage.output_tokens": 589,
             "gen_ai.usage.reasoning.output_tokens": 512},
            589,
            512,
            id="the OTel contrib instrumentation adds the thoughts in: not again",
        ),
        pytest.param(
            "opentelemetry.instrumentation.google_generativeai",
            {"gen_ai.usage.input_tokens": 222, "gen_ai.usage.output_tokens": 77, "gen_ai.usage.total_tokens": 299},
            77,
            None,
            id="a total that is prompt plus output: no thoughts",
        ),
    ],
)  # fmt: skip
def test_gemini_thoughts_are_counted_once(
    scope: str, attrs: dict[str, Any], output: int, reasoning: int | None
) -> None:
    gemini = {"gen_ai.provider.name": "gcp.gen_ai", "gen_ai.operation.name": "generate_content",
              "gen_ai.request.model": "gemini-2.5-pro"}  # fmt: skip
    span = normalize_span(decoded({**gemini, **attrs}, scope=scope), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert (span.output_tokens, span.reasoning_tokens) == (output, reasoning)


@pytest.mark.parametrize(
    ("method", "streaming"),
    [
        pytest.param("ConverseStream", True, id="Bedrock's ConverseStream"),
        pytest.param("InvokeModelWithResponseStream", True, id="Bedrock's InvokeModelWithResponseStream"),
        pytest.param("Converse", None, id="a call that says nothing of streaming"),
    ],
)
def test_a_bedrock_rpc_method_says_the_call_streamed(method: str, streaming: bool | None) -> None:
    attrs = {"gen_ai.system": "aws.bedrock", "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
             "rpc.system": "aws-api", "rpc.method": method}  # fmt: skip
    span = normalize_span(decoded(attrs), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert span.streaming is streaming


@pytest.mark.parametrize(
    ("scope", "params", "streaming"),
    [
        pytest.param("openinference.instrumentation.langchain", '{"stream": false}', None,
                     id="OpenInference LangChain: stream false is the model's setting, not the call"),
        pytest.param("openinference.instrumentation.langchain", '{"stream": true}', True,
                     id="OpenInference LangChain: stream true is a streamed call"),
        pytest.param("openinference.instrumentation.openai", '{"stream": false}', False,
                     id="OpenInference OpenAI: the request's own stream false"),
    ],
)  # fmt: skip
def test_a_stream_parameter_that_is_a_setting_says_only_true(scope: str, params: str, streaming: bool | None) -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o-mini",
             "llm.invocation_parameters": params, "llm.token_count.prompt": 10, "llm.token_count.completion": 2}  # fmt: skip
    span = normalize_span(decoded(attrs, scope=scope), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert span.streaming is streaming


_OI_LLM = {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o-mini",
           "llm.token_count.prompt": 10, "llm.token_count.completion": 2}  # fmt: skip


@pytest.mark.parametrize(
    ("attrs", "response_id"),
    [
        pytest.param({"output.value": '{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}'},
                     "chatcmpl-1", id="OpenInference OpenAI: the answer's id"),
        pytest.param({"output.value": '{"id": "msg_1", "type": "message", "content": []}'},
                     "msg_1", id="OpenInference Anthropic: the message's id"),
        pytest.param({"output.value": '{"generations": [[]], "llm_output": {"id": "chatcmpl-2"}, "type": "LLMResult"}'},
                     "chatcmpl-2", id="OpenInference LangChain: llm_output's id"),
        pytest.param({"output.value": '{"generations": [[]], "llm_output": null, "type": "LLMResult"}'},
                     None, id="OpenInference LangChain on a stream: no llm_output, no id"),
        pytest.param({"output.value": '{"id": "lc_run--1", "text": "an answer"}'},
                     None, id="an id of an answer we do not know is no response id"),
        pytest.param({"output.value": "Here is the answer"}, None, id="plain text"),
        pytest.param({"output.value": '{"id": "chatcmpl-1", "obj'}, None, id="cut JSON"),
        pytest.param({"output.value": '{"id": "chatcmpl-1", "object": "chat.completion"}', "llm.response.id": "r-9"},
                     "r-9", id="an id attribute comes first"),
    ],
)  # fmt: skip
def test_openinference_response_id_is_read_from_the_answer(attrs: dict[str, Any], response_id: str | None) -> None:
    span = normalize_span(decoded({**_OI_LLM, **attrs}), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert span.response_id == response_id
    assert "output.value" not in span.attributes  # read, then dropped with the content


def test_a_response_id_in_output_value_is_read_only_from_openinference() -> None:
    attrs = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 3,
             "output.value": '{"id": "chatcmpl-1", "object": "chat.completion"}'}  # fmt: skip
    span = normalize_span(decoded(attrs), SETTINGS)
    assert isinstance(span, LlmSpan)
    assert span.response_id is None
