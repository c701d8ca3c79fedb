"""Emitter scenarios, and what the stored call must say about each: one definition for all.

Three users: scripts/capture_driver.py makes the scenario calls inside each emitter's own
virtualenv and records them (tests/fixtures/emitters/); tests/api/test_emitter_captures.py
replays those captures; tests/api/test_live_emitters.py runs the emitters that install with
the test dependencies live. So a difference between a capture and a live run can only come
from the emitter, never from the calls or the expectations.

Standard library only at import time (the capture venvs import it as ``emitters``, with
tests/ on sys.path); the provider clients are imported by the calls that use them.
"""

from __future__ import annotations

import json
from typing import Any

OPENAI_SCENARIOS = [
    "chat",
    "chat-stream",
    "chat-cached",
    "chat-reasoning",
    "chat-cache-write",
    "chat-error",
    "embeddings",
    "responses",
]
ANTHROPIC_SCENARIOS = [
    "chat",
    "chat-stream",
    "chat-stream-helper",
    "chat-stream-legacy",
    "chat-cached",
    "chat-reasoning",
    "chat-error",
]
GEMINI_SCENARIOS = [
    "chat",
    "chat-stream",
    "chat-cached",
    "chat-reasoning",
    "chat-tools",
    "chat-async",
    "chat-error",
    "chat-error-429",
    "embeddings",
]
BEDROCK_SCENARIOS = [
    "converse",
    "converse-cached",
    "converse-stream",
    "converse-tools",
    "converse-llama",
    "invoke",
    "chat-error",
    "chat-error-429",
]
# Bedrock model ids: a foundation model (vendor prefix), a cross-region inference profile
# (`us.` prefix) and an open-weight model.
BEDROCK_CLAUDE = "anthropic.claude-3-5-sonnet-20241022-v2:0"
BEDROCK_CLAUDE_PROFILE = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
BEDROCK_LLAMA = "meta.llama3-1-70b-instruct-v1:0"
BEDROCK_MODELS = {
    **{s: BEDROCK_CLAUDE for s in BEDROCK_SCENARIOS},
    "converse-cached": BEDROCK_CLAUDE_PROFILE,
    "converse-stream": BEDROCK_CLAUDE_PROFILE,
    "converse-llama": BEDROCK_LLAMA,
}
# Mistral, Groq and Cohere (each SDK against the fake's copy of its API)
CHAT_API_SCENARIOS = [
    "chat",
    "chat-stream",
    "chat-tools",
    "chat-async",
    "embeddings",
    "chat-error",
    "chat-error-429",
]
MISTRAL_SCENARIOS = GROQ_SCENARIOS = COHERE_SCENARIOS = CHAT_API_SCENARIOS
# LangChain (langchain-openai against the fake's OpenAI surface, through a prompt | model chain)
LANGCHAIN_SCENARIOS = [
    "chat",
    "chat-stream",
    "chat-cached",
    "chat-reasoning",
    "chat-tools",
    "chat-async",
    "embeddings",
    "chat-error-400",
    "chat-error-429",
]
# pydantic-ai agents (OpenAIChatModel against the fake's OpenAI surface): one model request,
# an agent whose tool round makes two (two calls under one agent span), run_stream, two failures.
PYDANTIC_AI_SCENARIOS = ["chat", "agent-tools", "chat-stream", "chat-error-400", "chat-error-429"]
# An OpenAI client calling through a LiteLLM proxy that traces itself (the proxy routes to the fake).
GATEWAY_SCENARIOS = ["chat", "chat-stream", "chat-error-400", "chat-error-429"]
# The Vercel AI SDK (npm `ai`, @ai-sdk/openai against the fake's OpenAI surface; the calls are
# scripts/capture-node/capture.mjs): generateText, streamText, a cache write then a cache read,
# reasoning, a tool call, a tool loop (two calls), generateObject, embed, embedMany, a 400 and a 429.
VERCEL_AI_SCENARIOS = [
    "chat",
    "chat-stream",
    "chat-cache-write",
    "chat-cached",
    "chat-reasoning",
    "chat-tools",
    "agent-tools",
    "chat-object",
    "embeddings",
    "embeddings-many",
    "chat-error-400",
    "chat-error-429",
]
SCENARIOS = {
    "openai": OPENAI_SCENARIOS,
    "anthropic": ANTHROPIC_SCENARIOS,
    "gemini": GEMINI_SCENARIOS,
    "bedrock": BEDROCK_SCENARIOS,
    "mistral": MISTRAL_SCENARIOS,
    "groq": GROQ_SCENARIOS,
    "cohere": COHERE_SCENARIOS,
    "pydantic-ai": PYDANTIC_AI_SCENARIOS,
    "litellm-proxy": GATEWAY_SCENARIOS,
    "langchain": LANGCHAIN_SCENARIOS,
    "vercel-ai": VERCEL_AI_SCENARIOS,
}
TOKEN_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
SPLIT = frozenset({"cache_read_tokens", "cache_write_tokens", "reasoning_tokens"})

# --------------------------------------------------------------------------
# Each emitter's habits, keyed (emitter, scenario). Evidence for every entry:
# tests/fixtures/emitters/README.md, "Observed habits".
# --------------------------------------------------------------------------

# What an emitter does not carry cannot be stored. For these the provider's split is not
# in the spans at all; the check then asserts what must still hold: total input (input +
# cache read + cache write) and output, with the missing kinds at 0.
NOT_REPORTED: dict[tuple[str, str], frozenset[str]] = {
    **{("otel-openai-v2", s): SPLIT for s in ("chat-cached", "chat-cache-write", "chat-reasoning", "chat-stream")},
    **{
        ("otel-openai-v2-latest", s): SPLIT
        for s in ("chat-cached", "chat-cache-write", "chat-reasoning", "chat-stream")
    },
    ("openllmetry-openai", "chat-cache-write"): frozenset({"cache_write_tokens"}),
    ("openllmetry-openai", "chat-stream"): frozenset({"reasoning_tokens"}),
    ("openlit-openai", "chat-reasoning"): frozenset({"reasoning_tokens"}),
    ("openlit-openai", "chat-stream"): frozenset({"reasoning_tokens"}),
    # Anthropic's thinking count (the fake server's output_tokens_details) reaches no span.
    ("openlit-anthropic", "chat-reasoning"): frozenset({"reasoning_tokens"}),
    ("openllmetry-anthropic", "chat-reasoning"): frozenset({"reasoning_tokens"}),
    # OpenLLMetry's Groq stream span takes x_groq.usage's input, output and cached counts only.
    ("openllmetry-groq", "chat-stream"): frozenset({"reasoning_tokens"}),
    # OpenLLMetry's LangChain LLM span reads LangChain's usage_metadata without its
    # output_token_details (reasoning); with OpenLLMetry's OpenAI instrumentation too, the
    # client's span is suppressed, so nothing else carries it.
    **{
        (e, s): frozenset({"reasoning_tokens"})
        for e in ("openllmetry-langchain", "openllmetry-langchain-openai")
        for s in ("chat-stream", "chat-reasoning")
    },
    # @ai-sdk/otel's OpenTelemetry integration writes no reasoning count (its legacy one does).
    **{("vercel-ai", s): frozenset({"reasoning_tokens"}) for s in ("chat-reasoning", "chat-stream")},
    # Through the LiteLLM proxy: OpenLLMetry's client span drops a stream's reasoning count (as
    # openllmetry-openai), and the proxy's litellm_request span carries neither it nor the cache read.
    ("litellm-proxy-openllmetry", "chat-stream"): frozenset({"reasoning_tokens"}),
    # pydantic-ai before 1.0 reads OpenAI's cached_tokens but never writes its cache_read_tokens
    # to a span (usage.py, opentelemetry_attributes: input, output and `details` only).
    ("pydantic-ai-0x", "chat-stream"): frozenset({"cache_read_tokens"}),
}
# On Anthropic's older stream format (usage only in message_start) OpenLIT keeps the
# uncached input and drops both cache counts: the cached part of the prompt is lost.
DROPS_CACHE = {
    ("openlit-anthropic", "chat-stream-legacy"),
    # The OTel botocore extension reads only input_tokens/output_tokens from an Anthropic
    # InvokeModel body (uncached input kept; cache read and write counts lost).
    ("otel-botocore", "invoke"),
}
# OpenLLMetry adds message_start's output count (1) to message_delta's cumulative count
# on Anthropic streams, so its output is one too many; we store what it says.
OVERCOUNTS_OUTPUT_BY = {
    ("openllmetry-anthropic", s): 1 for s in ("chat-stream", "chat-stream-helper", "chat-stream-legacy")
}
# Where the call went. These spans carry no server address (no `server.address`, no
# `gen_ai.openai.api_base`), so the collector cannot see the endpoint and classes the call
# by its provider attribute (frontier), even though it went to 127.0.0.1: an OpenAI or
# Anthropic client aimed at a self-hosted server through these emitters is billed as frontier.
NO_SERVER_ADDRESS = {
    *(
        (e, s)
        for e in ("openinference-openai", "openinference-anthropic")
        for s in OPENAI_SCENARIOS + ANTHROPIC_SCENARIOS
    ),
    *(("openllmetry-anthropic", s) for s in ANTHROPIC_SCENARIOS),
    ("openllmetry-openai", "responses"),  # its chat and embeddings spans have gen_ai.openai.api_base
    ("openlit-anthropic", "chat-error"),  # a bare span: no attributes at all
    *((e, s) for e in ("openinference-google-genai", "openllmetry-google-genai") for s in GEMINI_SCENARIOS),
    *(("openllmetry-bedrock", s) for s in BEDROCK_SCENARIOS),
    *((e, s) for e in ("openllmetry-groq", "openllmetry-cohere") for s in CHAT_API_SCENARIOS),
    # OpenLLMetry's Mistral span has no address; mistralai's own span, one call with it, has
    # (but not on a stream or a failure, where the SDK's span is no call: no provider)
    *(("openllmetry-mistral", s) for s in ("chat-stream", "chat-error", "chat-error-429")),
}
# server.address without server.port: the backend is the host alone.
NO_SERVER_PORT = {
    *(("otel-google-genai", s) for s in GEMINI_SCENARIOS),
}
# Streams whose spans say nothing of the first token (no TTFT attribute, no first-chunk event).
NO_TTFT = {
    *((e, s) for e in ("openllmetry-anthropic", "openinference-anthropic") for s in ANTHROPIC_SCENARIOS),
    ("otel-anthropic", "chat-stream-helper"),  # messages.stream(): TTFT only on create(stream=True)
    *((e, "chat-stream") for e in ("openllmetry-google-genai", "openinference-google-genai")),
    *((e, "chat-stream") for e in ("openllmetry-mistral", "openllmetry-groq")),
    *((e, "converse-stream") for e in ("openllmetry-bedrock", "otel-botocore")),
}
# TTFT measured from before the span starts: anthropic's _base_client.py takes its start
# time, then builds the span, so the first chunk can come "later" than the span's whole
# duration (10 ms against 6 ms seen live); it still falls within the client call.
TTFT_FROM_BEFORE_SPAN = {"anthropic-sdk"}
# error.type is the API error envelope's type (`api_error`), not the exception's class
# (anthropic/_tracing.py error_type()); everyone else names the class the client raised.
ERROR_TYPE_FROM_BODY = {"anthropic-sdk"}
# error.type is the HTTP status code ("400", "429"), not the class google-genai raised
# (ClientError for both): the OTel google-genai instrumentation.
ERROR_TYPE_IS_STATUS = {"otel-google-genai"}
# The anthropic SDK's own tracing starts a new trace instead of joining the
# instrumentation's: the two spans of one call arrive in two traces. The collector links
# them by the provider's response id (gen_ai.response.id on both); a failed call has none,
# and is linked as the only failure of its process, provider and model whose SDK span lies
# inside the instrumentation's (collector/calls/halves.py, halves_of_one_call).
TWO_TRACES = "openllmetry-anthropic-with-sdk-tracing"
# Gemini (google-genai). OpenLLMetry names the provider gcp.gen_ai (any Google generative AI
# endpoint), not the Gemini API: the collector stores what it says.
PROVIDER_SENT = {("openllmetry-google-genai", s): "gcp.gen_ai" for s in GEMINI_SCENARIOS}
# OpenInference says no operation: the collector takes an LLM span for a chat.
OPERATION_GUESSED = {("openinference-google-genai", s): "chat" for s in GEMINI_SCENARIOS if s != "embeddings"}
# OpenInference carries only llm.model_name, the version that answered: it stands for the
# request model too (a failed call's is the model asked for).
REQUEST_MODEL_FROM_RESPONSE = {("openinference-google-genai", s) for s in GEMINI_SCENARIOS}
# OpenLLMetry echoes the request's model as the response's: the version that answered is lost.
RESPONSE_MODEL_FROM_REQUEST = {
    *(("openllmetry-google-genai", s) for s in GEMINI_SCENARIOS),
    # LangChain's instrumentations on a chain's .stream(): LangChain keeps no llm_output for a
    # stream, so OpenInference's llm.model_name falls back to ls_model_name (the request's) and
    # OpenLLMetry's gen_ai.response.model is the request's too.
    *((e, "chat-stream") for e in ("openinference-langchain", "openllmetry-langchain", "openllmetry-langchain-openai")),
    # The LiteLLM proxy answers with the model the client asked for (proxy/common_request_processing.py,
    # _override_openai_response_model) and its own span says the same (gen_ai.response.model):
    # the version that answered stays only in its raw_gen_ai_request span's llm.openai.model.
    *(("litellm-proxy-openllmetry", s) for s in GATEWAY_SCENARIOS),
    # pydantic-ai before 1.0 names a streamed response by the request's model.
    ("pydantic-ai-0x", "chat-stream"),
}
# Embeddings spans without a response model, or without any token count.
NO_RESPONSE_MODEL = {
    ("otel-google-genai", "embeddings"),
    ("otel-botocore", "invoke"),  # the Anthropic body's `model` never reaches the span
    ("openllmetry-groq", "chat-stream"),  # its stream span has no gen_ai.response.model
    # neither OpenLLMetry's embeddings span nor mistralai's own carries the answer's `model`
    ("openllmetry-mistral", "embeddings"),
    # the Vercel AI SDK's embedding model result carries no model
    *((e, s) for e in ("vercel-ai", "vercel-ai-legacy") for s in ("embeddings", "embeddings-many")),
}
NO_USAGE = {
    ("openinference-google-genai", "embeddings"),
    ("openllmetry-cohere", "embeddings"),  # /v2/embed's meta.billed_units never reaches the span
}
# AWS Bedrock (boto3 bedrock-runtime). OpenLLMetry reports the model id without its
# inference-profile and vendor prefixes (us.anthropic.claude-...-v2:0 -> claude-...-v2:0,
# meta.llama3-... -> llama3-...): the collector stores what it says.
REQUEST_MODEL_SENT = {("openllmetry-bedrock", s): m.rsplit(".", 1)[-1] for s, m in BEDROCK_MODELS.items()}

# Known open bugs, replayed as strict expected failures (an XPASS fails the run, so a fix
# must remove its entry). None open.
KNOWN_OPEN: dict[tuple[str, str], str] = {}


def check_call(call: dict[str, Any], expected: dict[str, Any], emitter: str, scenario: str, content_sent: bool) -> None:
    """Every field of one stored call against the provider's record (``expected``).

    ``expected`` is ``fakeprovider.expected_record()``: computed from what the fake provider
    returned, never from spans. ``content_sent``: the emitter sent the prompt text.
    """
    key = (emitter, scenario)
    assert call["provider"] == PROVIDER_SENT.get(key, expected["provider"])
    assert call["operation"] == OPERATION_GUESSED.get(key, expected["operation"])
    if key in REQUEST_MODEL_FROM_RESPONSE and expected["status"] == "ok":
        want_request = expected["response_model"]
    else:
        want_request = REQUEST_MODEL_SENT.get(key, expected["request_model"])
    assert call["request_model"] == want_request
    assert call["status"] == expected["status"]
    if expected["status"] == "error":
        assert call["error_type"]
        return
    if key in NO_RESPONSE_MODEL:
        assert call["response_model"] is None
    else:
        want_response = expected["request_model"] if key in RESPONSE_MODEL_FROM_REQUEST else expected["response_model"]
        assert call["response_model"] == want_response
    missing = NOT_REPORTED.get(key, frozenset())
    want = {f: 0 if key in NO_USAGE else expected[f] for f in TOKEN_FIELDS}
    if missing:
        total = want["input_tokens"] + want["cache_read_tokens"] + want["cache_write_tokens"]
        assert call["input_tokens"] + call["cache_read_tokens"] + call["cache_write_tokens"] == total
        for name in missing:
            assert call[name] == 0, name
            want[name] = 0
        want["input_tokens"] = total - want["cache_read_tokens"] - want["cache_write_tokens"]
    if key in DROPS_CACHE:
        want["cache_read_tokens"] = want["cache_write_tokens"] = 0
    want["output_tokens"] += OVERCOUNTS_OUTPUT_BY.get(key, 0)
    assert {f: call[f] for f in TOKEN_FIELDS} == want
    if call["streaming"] is not None:
        assert call["streaming"] == expected["streaming"]
    text = json.dumps(call)
    assert "SECRET-PROMPT" not in text
    assert "SECRET-COMPLETION" not in text
    if content_sent:
        assert call["prompt_hash"], "content was sent, so a prompt hash must be computed"


# --------------------------------------------------------------------------
# The scenario calls: the real clients against tests/fakeprovider.py
# --------------------------------------------------------------------------


def prompt(scenario: str) -> str:
    return f"Please answer briefly. SECRET-PROMPT-{scenario}-7f3a"


def system(scenario: str) -> str:
    return f"You are a terse assistant. SECRET-SYSTEM-{scenario}-7f3a"


def anthropic_system(scenario: str) -> str:
    """The Anthropic (and Bedrock) scenarios' system prompt (the cached one is long, as caching needs)."""
    if scenario in ("chat-cached", "converse-cached"):
        return system(scenario) + " " + "Long cached context. " * 40
    return system(scenario)


def sent_prompt(provider: str, scenario: str) -> list[list[str]]:
    """The prompt a scenario sends, as [role, text] pairs (what breakeven's prompt hash covers)."""
    if scenario == "embeddings":
        return [["user", prompt(scenario)]]
    if scenario == "embeddings-many":  # embedMany's two inputs
        return [["user", prompt(scenario)], ["user", f"Second input. SECRET-PROMPT-{scenario}-7f3a"]]
    text = anthropic_system(scenario) if provider in ("anthropic", "bedrock") else system(scenario)
    return [["system", text], ["user", prompt(scenario)]]


def request_meta(provider: str, scenario: str) -> dict[str, Any]:
    """What a scenario's request asks for: request model, operation, streaming."""
    streaming = scenario.startswith("chat-stream")
    if provider == "vercel-ai":  # the models scripts/capture-node/capture.mjs asks for
        embeddings = scenario.startswith("embeddings")
        default = "text-embedding-3-small" if embeddings else "gpt-4o-mini"
        models = {"chat-cached": "gpt-4o", "chat-cache-write": "gpt-4o", "chat-reasoning": "o3-mini"}
        model = models.get(scenario, default)
        return dict(request_model=model, operation="embeddings" if embeddings else "chat", streaming=streaming)
    if provider == "bedrock":
        return dict(request_model=BEDROCK_MODELS[scenario], operation="chat", streaming=scenario == "converse-stream")
    if provider == "gemini":
        model = {
            "chat-cached": "gemini-2.0-flash",
            "chat-reasoning": "gemini-2.5-pro",
            "embeddings": "gemini-embedding-001",
        }.get(scenario, "gemini-2.5-flash")
        # generateContent is the OTel GenAI registry's `generate_content` operation
        operation = "embeddings" if scenario == "embeddings" else "generate_content"
        return dict(request_model=model, operation=operation, streaming=streaming)
    if provider == "anthropic":
        return dict(request_model="claude-sonnet-4-5", operation="chat", streaming=streaming)
    if provider in ("mistral", "groq", "cohere"):
        models = {
            "mistral": ("mistral-large-latest", {"chat-tools": "mistral-small-latest", "embeddings": "mistral-embed"}),
            # a reasoning model for the stream, whose usage carries cached and reasoning counts
            "groq": (
                "llama-3.3-70b-versatile",
                {"chat-stream": "openai/gpt-oss-120b", "embeddings": "nomic-embed-text-v1_5"},
            ),
            "cohere": ("command-a-03-2025", {"embeddings": "embed-v4.0"}),
        }
        default, other = models[provider]
        return dict(
            request_model=other.get(scenario, default),
            operation="embeddings" if scenario == "embeddings" else "chat",
            streaming=streaming,
        )
    model = {
        "chat-cached": "gpt-4o",
        "chat-cache-write": "gpt-4o",
        "chat-reasoning": "o3-mini",
        "embeddings": "text-embedding-3-small",
        "responses": "o4-mini",
    }.get(scenario, "gpt-4o-mini")
    return dict(
        request_model=model, operation="embeddings" if scenario == "embeddings" else "chat", streaming=streaming
    )


def call_scenario(provider: str, base_url: str, scenario: str, **client_options: Any) -> None:
    """Make the scenario's call with the real client (raises what the client raises).

    ``client_options`` go to the client's constructor (e.g. anthropic's ``open_telemetry``).
    """
    if provider == "openai":
        openai_call(base_url, scenario, **client_options)
    elif provider == "gemini":
        gemini_call(base_url, scenario, **client_options)
    elif provider == "bedrock":
        bedrock_call(base_url, scenario, **client_options)
    elif provider == "mistral":
        mistral_call(base_url, scenario, **client_options)
    elif provider == "groq":
        groq_call(base_url, scenario, **client_options)
    elif provider == "cohere":
        cohere_call(base_url, scenario, **client_options)
    elif provider == "pydantic-ai":
        pydantic_ai_call(base_url, scenario, **client_options)
    elif provider == "litellm-proxy":  # base_url: the proxy's
        openai_call(base_url, scenario, **client_options)
    elif provider == "langchain":
        langchain_call(base_url, scenario, **client_options)
    else:
        anthropic_call(base_url, scenario, **client_options)


def openai_call(base_url: str, scenario: str, **client_options: Any) -> None:
    import openai

    client = openai.OpenAI(
        base_url=base_url + "/v1", api_key="sk-fake-capture", max_retries=0, timeout=30, **client_options
    )
    hdr = {"X-Fake-Scenario": scenario}
    msgs: Any = [{"role": "system", "content": system(scenario)}, {"role": "user", "content": prompt(scenario)}]
    model = request_meta("openai", scenario)["request_model"]
    if scenario == "chat":
        client.chat.completions.create(model=model, messages=msgs, max_tokens=100, temperature=0.2, extra_headers=hdr)
    elif scenario == "chat-stream":
        stream = client.chat.completions.create(
            model=model,
            messages=msgs,
            max_tokens=100,
            temperature=0.2,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=hdr,
        )
        for _ in stream:
            pass
        if hasattr(stream, "close"):
            stream.close()
    elif scenario in ("chat-cached", "chat-cache-write", "chat-error", "chat-error-400", "chat-error-429"):
        client.chat.completions.create(model=model, messages=msgs, max_tokens=100, extra_headers=hdr)
    elif scenario == "chat-reasoning":
        client.chat.completions.create(
            model=model, messages=msgs, max_completion_tokens=2000, reasoning_effort="medium", extra_headers=hdr
        )
    elif scenario == "embeddings":
        client.embeddings.create(model=model, input=prompt(scenario), extra_headers=hdr)
    elif scenario == "responses":
        client.responses.create(
            model=model,
            instructions=system(scenario),
            input=prompt(scenario),
            max_output_tokens=2000,
            extra_headers=hdr,
        )
    else:
        raise ValueError(scenario)


def anthropic_call(base_url: str, scenario: str, **client_options: Any) -> None:
    import inspect

    import anthropic

    client = anthropic.Anthropic(
        base_url=base_url, api_key="sk-ant-fake-capture", max_retries=0, timeout=30, **client_options
    )
    hdr = {"X-Fake-Scenario": scenario}
    msgs: Any = [{"role": "user", "content": prompt(scenario)}]
    model = request_meta("anthropic", scenario)["request_model"]
    # anthropic 2.x dropped `temperature` from Messages.create; pass it only
    # where the installed client still takes it.
    params = inspect.signature(anthropic.resources.messages.Messages.create).parameters
    extra: Any = {"temperature": 0.2} if "temperature" in params else {}
    if scenario == "chat":
        client.messages.create(
            model=model, system=system(scenario), messages=msgs, max_tokens=100, extra_headers=hdr, **extra
        )
    elif scenario in ("chat-stream", "chat-stream-legacy"):
        stream = client.messages.create(
            model=model, system=system(scenario), messages=msgs, max_tokens=100, stream=True, extra_headers=hdr, **extra
        )
        for _ in stream:
            pass
        if hasattr(stream, "close"):
            stream.close()
    elif scenario == "chat-stream-helper":
        with client.messages.stream(
            model=model, system=system(scenario), messages=msgs, max_tokens=100, extra_headers=hdr
        ) as helper:
            for _ in helper.text_stream:
                pass
            helper.get_final_message()
    elif scenario == "chat-cached":
        client.messages.create(
            model=model,
            max_tokens=100,
            extra_headers=hdr,
            messages=msgs,
            system=[{"type": "text", "text": anthropic_system(scenario), "cache_control": {"type": "ephemeral"}}],
        )
    elif scenario == "chat-reasoning":
        kw: Any = {"thinking": {"type": "enabled", "budget_tokens": 1024}} if "thinking" in params else {}
        client.messages.create(
            model=model, system=system(scenario), messages=msgs, max_tokens=2000, extra_headers=hdr, **kw
        )
    elif scenario == "chat-error":
        client.messages.create(model=model, system=system(scenario), messages=msgs, max_tokens=100, extra_headers=hdr)
    else:
        raise ValueError(scenario)


def gemini_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """google-genai against the fake's Gemini API (v1beta) surface.

    Retries are off (attempts=1) so the 429 scenario makes exactly one request.
    """
    import asyncio

    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="fake-gemini-capture-key",
        http_options=types.HttpOptions(
            base_url=base_url,
            api_version="v1beta",
            headers={"X-Fake-Scenario": scenario},
            timeout=30_000,
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
        **client_options,
    )
    model = request_meta("gemini", scenario)["request_model"]
    contents = prompt(scenario)
    config: dict[str, Any] = {"system_instruction": system(scenario), "max_output_tokens": 100, "temperature": 0.2}
    if scenario in ("chat", "chat-error", "chat-error-429"):
        client.models.generate_content(model=model, contents=contents, config=types.GenerateContentConfig(**config))
    elif scenario == "chat-stream":
        for _ in client.models.generate_content_stream(
            model=model, contents=contents, config=types.GenerateContentConfig(**config)
        ):
            pass
    elif scenario == "chat-cached":
        # explicit context cache (the fake does not check the name)
        config["cached_content"] = "cachedContents/fake-capture-cache-0001"
        client.models.generate_content(model=model, contents=contents, config=types.GenerateContentConfig(**config))
    elif scenario == "chat-reasoning":
        config["max_output_tokens"] = 2000
        config["thinking_config"] = types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
        client.models.generate_content(model=model, contents=contents, config=types.GenerateContentConfig(**config))
    elif scenario == "chat-tools":
        config["tools"] = [
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather",
                        description="Current weather for a city",
                        parameters=types.Schema(
                            type=types.Type.OBJECT,
                            properties={"city": types.Schema(type=types.Type.STRING)},
                            required=["city"],
                        ),
                    )
                ]
            )
        ]
        config["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
        client.models.generate_content(model=model, contents=contents, config=types.GenerateContentConfig(**config))
    elif scenario == "chat-async":

        async def run() -> None:
            await client.aio.models.generate_content(
                model=model, contents=contents, config=types.GenerateContentConfig(**config)
            )

        asyncio.run(run())
    elif scenario == "embeddings":
        client.models.embed_content(model=model, contents=contents)
    else:
        raise ValueError(scenario)


def bedrock_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """boto3's bedrock-runtime client against the fake's Bedrock Runtime surface.

    Dummy credentials (botocore signs, the fake ignores signatures); retries are off
    (total_max_attempts=1) so the 429 scenario makes exactly one request. The scenario goes in
    an X-Fake-Scenario header added before signing.
    """
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=base_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30, connect_timeout=10),
        **client_options,
    )

    def add_scenario(request: Any, **_: Any) -> None:
        request.headers["X-Fake-Scenario"] = scenario

    client.meta.events.register("before-sign.bedrock-runtime.*", add_scenario)
    model = request_meta("bedrock", scenario)["request_model"]
    messages: Any = [{"role": "user", "content": [{"text": prompt(scenario)}]}]
    kw: dict[str, Any] = dict(
        modelId=model,
        messages=messages,
        system=[{"text": system(scenario)}],
        inferenceConfig={"maxTokens": 100, "temperature": 0.2},
    )
    if scenario in ("converse", "converse-llama", "chat-error", "chat-error-429"):
        client.converse(**kw)
    elif scenario == "converse-cached":
        # a cache point after the system prompt (Bedrock's prompt caching)
        kw["system"] = [{"text": anthropic_system(scenario)}, {"cachePoint": {"type": "default"}}]
        client.converse(**kw)
    elif scenario == "converse-stream":
        response = client.converse_stream(**kw)
        for _ in response["stream"]:
            pass
    elif scenario == "converse-tools":
        spec = {
            "name": "get_weather",
            "description": "Current weather for a city",
            "inputSchema": {
                "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            },
        }
        kw["toolConfig"] = {"tools": [{"toolSpec": spec}]}
        client.converse(**kw)
    elif scenario == "invoke":
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "temperature": 0.2,
            "system": system(scenario),
            "messages": [{"role": "user", "content": prompt(scenario)}],
        }
        response = client.invoke_model(
            modelId=model, body=json.dumps(body), contentType="application/json", accept="application/json"
        )
        json.loads(response["body"].read())
    else:
        raise ValueError(scenario)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def mistral_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """mistralai 1.x against the fake's Mistral API (/v1/chat/completions, /v1/embeddings).

    The SDK retries nothing unless a RetryConfig is set (retry_config=None says so), so the
    429 scenario makes exactly one request. The fake serves OpenAI on the same paths, so an
    X-Fake-Provider header picks Mistral.
    """
    import asyncio

    from mistralai import Mistral
    from mistralai.models import SystemMessage, UserMessage

    client = Mistral(api_key="fake-mistral-capture-key", server_url=base_url, retry_config=None, timeout_ms=30_000)
    hdr = {"X-Fake-Scenario": scenario, "X-Fake-Provider": "mistral"}
    model = request_meta("mistral", scenario)["request_model"]
    # the SDK's message classes, not dicts: OpenLLMetry reads `message.content`, and for the
    # dict form (which the SDK takes as well) it records no prompt at all
    msgs: Any = [SystemMessage(content=system(scenario)), UserMessage(content=prompt(scenario))]
    kw: dict[str, Any] = dict(model=model, messages=msgs, max_tokens=100, temperature=0.2, http_headers=hdr)
    if scenario in ("chat", "chat-error", "chat-error-429"):
        client.chat.complete(**kw)
    elif scenario == "chat-stream":
        for _ in client.chat.stream(**kw):
            pass
    elif scenario == "chat-tools":
        client.chat.complete(**kw, tools=[WEATHER_TOOL], tool_choice="auto")
    elif scenario == "chat-async":

        async def run() -> None:
            await client.chat.complete_async(**kw)

        asyncio.run(run())
    elif scenario == "embeddings":
        client.embeddings.create(model=model, inputs=[prompt(scenario)], http_headers=hdr)
    else:
        raise ValueError(scenario)


def groq_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """groq against the fake's Groq API (/openai/v1/chat/completions); max_retries=0."""
    import asyncio

    import groq

    client = groq.Groq(base_url=base_url, api_key="gsk_fake_capture", max_retries=0, timeout=30, **client_options)
    hdr = {"X-Fake-Scenario": scenario}
    model = request_meta("groq", scenario)["request_model"]
    msgs: Any = [{"role": "system", "content": system(scenario)}, {"role": "user", "content": prompt(scenario)}]
    kw: dict[str, Any] = dict(model=model, messages=msgs, max_tokens=100, temperature=0.2, extra_headers=hdr)
    if scenario in ("chat", "chat-error", "chat-error-429"):
        client.chat.completions.create(**kw)
    elif scenario == "chat-stream":
        # Groq reports a stream's usage in the last chunk's x_groq.usage, asked or not
        for _ in client.chat.completions.create(**kw, stream=True):
            pass
    elif scenario == "chat-tools":
        client.chat.completions.create(**kw, tools=[WEATHER_TOOL], tool_choice="auto")
    elif scenario == "chat-async":

        async def run() -> None:
            aclient = groq.AsyncGroq(base_url=base_url, api_key="gsk_fake_capture", max_retries=0, timeout=30)
            await aclient.chat.completions.create(**kw)

        asyncio.run(run())
    elif scenario == "embeddings":
        client.embeddings.create(model=model, input=prompt(scenario), extra_headers=hdr)
    else:
        raise ValueError(scenario)


def cohere_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """cohere's ClientV2 against the fake's Cohere v2 API (/v2/chat, /v2/embed).

    request_options max_retries=0: one request, the 429 included.
    """
    import asyncio

    import cohere

    opts: Any = {"max_retries": 0, "additional_headers": {"X-Fake-Scenario": scenario}}
    client = cohere.ClientV2(api_key="fake-cohere-capture-key", base_url=base_url, timeout=30, **client_options)
    model = request_meta("cohere", scenario)["request_model"]
    msgs: Any = [{"role": "system", "content": system(scenario)}, {"role": "user", "content": prompt(scenario)}]
    kw: dict[str, Any] = dict(model=model, messages=msgs, max_tokens=100, temperature=0.2, request_options=opts)
    if scenario in ("chat", "chat-error", "chat-error-429"):
        client.chat(**kw)
    elif scenario == "chat-stream":
        for _ in client.chat_stream(**kw):
            pass
    elif scenario == "chat-tools":
        client.chat(**kw, tools=[WEATHER_TOOL])
    elif scenario == "chat-async":

        async def run() -> None:
            aclient = cohere.AsyncClientV2(api_key="fake-cohere-capture-key", base_url=base_url, timeout=30)
            await aclient.chat(**kw)

        asyncio.run(run())
    elif scenario == "embeddings":
        client.embed(
            model=model,
            texts=[prompt(scenario)],
            input_type="search_document",
            embedding_types=["float"],
            request_options=opts,
        )
    else:
        raise ValueError(scenario)


def langchain_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """langchain-openai against the fake's OpenAI surface, through a small chain (prompt | model).

    max_retries=0: one request, the 429 included. OpenAIEmbeddings is no runnable: it is
    called as it is, with check_embedding_ctx_length off (on, it tokenizes with tiktoken,
    which downloads its encoding).
    """
    import asyncio

    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    hdr = {"X-Fake-Scenario": scenario}
    common: dict[str, Any] = dict(
        base_url=base_url + "/v1", api_key="sk-fake-capture", max_retries=0, timeout=30, default_headers=hdr
    )
    model = request_meta("langchain", scenario)["request_model"]
    if scenario == "embeddings":
        embedder = OpenAIEmbeddings(model=model, check_embedding_ctx_length=False, **common, **client_options)
        embedder.embed_query(prompt(scenario))
        return
    template = ChatPromptTemplate.from_messages([("system", "{system}"), ("human", "{question}")])
    inputs = {"system": system(scenario), "question": prompt(scenario)}
    kw: dict[str, Any] = dict(model=model, max_tokens=100, temperature=0.2)
    if scenario == "chat-reasoning":
        kw = dict(model=model, max_tokens=2000, reasoning_effort="medium")  # sent as max_completion_tokens
    elif scenario == "chat-stream":
        kw["stream_usage"] = True  # stream_options.include_usage
    llm: Any = ChatOpenAI(**kw, **common, **client_options)
    if scenario == "chat-tools":
        llm = llm.bind_tools([WEATHER_TOOL], tool_choice="auto")
    chain = template | llm
    if scenario == "chat-stream":
        for _ in chain.stream(inputs):
            pass
    elif scenario == "chat-async":
        asyncio.run(chain.ainvoke(inputs))
    elif scenario in ("chat", "chat-cached", "chat-reasoning", "chat-tools", "chat-error-400", "chat-error-429"):
        chain.invoke(inputs)
    else:
        raise ValueError(scenario)


def pydantic_ai_call(base_url: str, scenario: str, **client_options: Any) -> None:
    """A pydantic-ai Agent (OpenAIChatModel, our AsyncOpenAI client) against the fake's OpenAI surface.

    max_retries=0 on the client: one request, the 429 included. ``agent-tools`` gives the
    agent a tool the fake's first answer calls, so the run makes two model requests.
    """
    import asyncio

    import openai
    from pydantic_ai import Agent
    from pydantic_ai.providers.openai import OpenAIProvider

    try:
        from pydantic_ai.models.openai import OpenAIChatModel
    except ImportError:  # pydantic-ai < 1.0
        from pydantic_ai.models.openai import OpenAIModel as OpenAIChatModel

    client = openai.AsyncOpenAI(
        base_url=base_url + "/v1",
        api_key="sk-fake-capture",
        max_retries=0,
        timeout=30,
        default_headers={"X-Fake-Scenario": scenario},
        **client_options,
    )
    model = OpenAIChatModel(
        request_meta("pydantic-ai", scenario)["request_model"], provider=OpenAIProvider(openai_client=client)
    )
    agent = Agent(model, system_prompt=system(scenario), model_settings={"max_tokens": 100, "temperature": 0.2})
    if scenario == "agent-tools":

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """Current weather for a city."""
            return f"Sunny in {city}"

    if scenario == "chat-stream":

        async def run() -> None:
            async with agent.run_stream(prompt(scenario)) as result:
                async for _ in result.stream_text():
                    pass

        asyncio.run(run())
    else:
        agent.run_sync(prompt(scenario))
