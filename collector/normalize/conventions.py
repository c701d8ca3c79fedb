"""Attribute names per GenAI dialect, pinned, and the precedence between them.

Precedence for every field (first present wins): breakeven's own attributes, then the
user's [attributes] mapping, then the current OTel GenAI names, the older OTel GenAI
names, OpenInference, OpenLLMetry/Traceloop, OpenLIT, engine-specific names (vLLM) and
the Vercel AI SDK's own `ai.*` names.
The lists below ARE that rule; tests/unit/test_precedence.py pins it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from breakeven.collector.memo import remember
from breakeven.collector.normalize.redact import BREAKEVEN_KEY, LITELLM_KEY, TRACELOOP_KEY, key_flags
from breakeven.collector.providers import PROVIDER_ALIASES
from breakeven.collector.records import DecodedSpan

OTEL_GENAI = "otel_genai"  # gen_ai.provider.name era (semconv >= 1.37)
OTEL_GENAI_LEGACY = "otel_genai_legacy"  # gen_ai.system era (semconv <= 1.36)
OPENLLMETRY = "openllmetry"
OPENINFERENCE = "openinference"
OPENLIT = "openlit"
VLLM = "vllm"
SGLANG = "sglang"
TGI = "tgi"
LITELLM = "litellm"
VERCEL_AI = "vercel_ai"  # the Vercel AI SDK's own ai.* attributes (npm `ai`, experimental_telemetry)
BREAKEVEN = "breakeven"

PROVIDER = (
    "breakeven.provider",
    "gen_ai.provider.name",
    "gen_ai.system",
    "llm.provider",
    "llm.system",
    "ai.model.provider",  # the Vercel AI SDK's provider id: openai.chat, anthropic.messages, ...
)
REQUEST_MODEL = (
    "breakeven.request_model",
    "gen_ai.request.model",
    "llm.request.model",
    "llm.request.model_name",  # OpenInference anthropic
    "ai.model.id",
)
RESPONSE_MODEL = (
    "breakeven.response_model",
    "gen_ai.response.model",
    "llm.response.model",
    "llm.response.model_name",
    "llm.model_name",
    "embedding.model_name",
    "ai.response.model",
)
RESPONSE_ID = ("gen_ai.response.id", "llm.response.id", "ai.response.id")
OPERATION = ("gen_ai.operation.name", "llm.request.type", "ai.operationId")
SERVER_ADDRESS = ("server.address", "net.peer.name", "gen_ai.openai.api_base", "llm.openai.api_base")
SERVER_PORT = ("server.port", "net.peer.port")

INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
    "ai.usage.inputTokens",  # the Vercel AI SDK 5+ (the whole prompt, cached part included)
    "ai.usage.promptTokens",  # ... 4
    "ai.usage.tokens",  # ... an embedding's
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
    "llm.token_count.prompt_details.cache_read",
    "llm.usage.cache_read_input_tokens",
    "gen_ai.usage.cached_tokens",
    "ai.usage.inputTokenDetails.cacheReadTokens",
    "ai.usage.cachedInputTokens",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_write.input_tokens",  # the anthropic SDK's own spans
    "gen_ai.usage.input_tokens.cache_write",
    "llm.token_count.prompt_details.cache_write",
    "llm.usage.cache_creation_input_tokens",
    "ai.usage.inputTokenDetails.cacheWriteTokens",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.usage.output_tokens.reasoning",
    "llm.token_count.completion_details.reasoning",
    "llm.usage.reasoning_tokens",
    "gen_ai.usage.completion_tokens_details.reasoning_tokens",
    "gen_ai.usage.details.reasoning_tokens",  # pydantic-ai: its usage details, OpenAI's names
    "ai.usage.outputTokenDetails.reasoningTokens",
    "ai.usage.reasoningTokens",
)
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total", "ai.usage.totalTokens")

# Seconds from request to first token.
TTFT_SECONDS = (
    "gen_ai.latency.time_to_first_token",  # vLLM
    "gen_ai.server.time_to_first_token",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.server.ttft",  # OpenLIT
    "gen_ai.client.operation.time_to_first_chunk",  # the Vercel AI SDK's @ai-sdk/otel
)
# Span events that mark the first streamed token.
FIRST_TOKEN_EVENTS = (
    "First Token Stream Event",  # OpenInference
    "gen_ai.content.completion.chunk",
    "llm.content.completion.chunk",  # OpenLLMetry
    "ai.stream.firstChunk",  # the Vercel AI SDK
)
STREAMING = (
    "breakeven.streaming",
    "gen_ai.request.stream",
    "llm.is_streaming",
    "gen_ai.is_streaming",  # OpenLLMetry (0.4x+)
    "gen_ai.request.is_stream",
    "llm.stream",
)
# Bedrock Runtime's streaming operations, as rpc.method names them.
STREAMING_RPC_METHODS = frozenset({"ConverseStream", "InvokeModelWithResponseStream"})
INVOCATION_PARAMETERS = ("llm.invocation_parameters", "embedding.invocation_parameters", "gen_ai.request.parameters")
# Scopes whose invocation parameters' `stream` is the model's setting, not how it was called:
# OpenInference's LangChain spans say "stream": false for a chain's .stream() of a
# ChatOpenAI(streaming=False) (tests/fixtures/emitters/README.md, LangChain). Only true counts.
STREAM_PARAMETER_IS_SETTING = frozenset({"openinference.instrumentation.langchain"})
# Instrumentation scopes that only ever make LLM-call spans, named "{operation} {model}"
# (the OTel GenAI span name); their error spans may carry no attribute at all.
GENAI_SCOPE_PREFIXES = {"openlit.instrumentation.": OPENLIT}
# OpenLLMetry instrumentations whose spans speak plain OTel GenAI, told apart by their scope
# (its Gemini one: the OTel contrib's is opentelemetry.instrumentation.google_genai).
OPENLLMETRY_SCOPES = frozenset({"opentelemetry.instrumentation.google_generativeai"})

# Defaults behind breakeven.* and the user's mapping; span attributes, then resource.
FIELD_DEFAULTS: Mapping[str, Sequence[str]] = {
    "service": ("service.name",),
    "environment": ("deployment.environment.name", "deployment.environment", "gen_ai.environment"),
    "team": ("team",),
    "feature": ("feature",),
    "prompt_hash": ("gen_ai.prompt.hash", "llm.prompt.hash"),
    "backend": (),
    "quantization": ("gen_ai.request.quantization", "vllm.quantization", "quantization"),
}

# Every attribute name a value is read from (breakeven.* aside: read by prefix). The decoder
# never cuts their values, as a cut model name would misprice: past max_attribute_value_bytes
# the span is rejected instead. Invocation parameters are left out on purpose: a long one
# (a big response schema) is cut like any audit value, and only the request model's last
# fallback is lost with it.
READ: frozenset[str] = frozenset(
    {
        *PROVIDER, *REQUEST_MODEL, *RESPONSE_MODEL, *RESPONSE_ID, *OPERATION, *SERVER_ADDRESS, *SERVER_PORT,
        *INPUT_TOKENS, *OUTPUT_TOKENS, *CACHE_READ_TOKENS, *CACHE_WRITE_TOKENS, *REASONING_TOKENS, *TOTAL_TOKENS,
        *TTFT_SECONDS, *STREAMING, *(name for names in FIELD_DEFAULTS.values() for name in names),
        "openinference.span.kind", "traceloop.span.kind", "error.type", "exception.type", "telemetry.sdk.name",
    }
)  # fmt: skip

# gen_ai.operation.name values (and dialect equivalents) -> breakeven operation.
OPERATIONS: Mapping[str, str] = {
    "chat": "chat",
    "text_completion": "text_completion",
    "completion": "text_completion",
    "completions": "text_completion",
    "generate_content": "generate_content",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "rerank": "rerank",
    "responses": "chat",
    "response": "chat",
}
# Spans that carry gen_ai.* attributes but are not one inference call.
# The Vercel AI SDK's wrapper spans (ai.generateText, ai.embedMany, ai.toolCall, ...) read as this.
AI_SDK_FUNCTION = "ai_sdk_function"
NOT_CALL_OPERATIONS = frozenset(
    {
        "execute_tool", "invoke_agent", "create_agent", "invoke_workflow", "workflow", "task", "agent", "tool",
        "agent_step", AI_SDK_FUNCTION,
    }
)  # fmt: skip
OPENINFERENCE_CALL_KINDS = {"LLM": None, "EMBEDDING": "embeddings"}
# LiteLLM's call types (its spans' gen_ai.operation.name and llm.request.type): its
# `completion` is a chat completion, unlike OpenLLMetry's, so they are read before OPERATIONS.
LITELLM_CALL_TYPES: Mapping[str, str] = {
    "completion": "chat", "acompletion": "chat", "anthropic_messages": "chat",
    "responses": "chat", "aresponses": "chat",
    "text_completion": "text_completion", "atext_completion": "text_completion",
    "embedding": "embeddings", "aembedding": "embeddings", "rerank": "rerank", "arerank": "rerank",
    "generate_content": "generate_content", "agenerate_content": "generate_content",
}  # fmt: skip
# Scopes whose agent run span names its agent under this key: pydantic-ai's ("agent run",
# "invoke_agent <name>") carries the run's summed usage, and before 1.0 no operation at all.
AGENT_RUN_KEYS: Mapping[str, str] = {"pydantic-ai": "agent_name"}
# The Vercel AI SDK's ai.operationId: the model call is the inner span, `<function>.doGenerate`,
# `.doStream`, `.doEmbed`. The outer one (ai.generateText, ai.streamObject, ai.embedMany ...)
# spans every step of one function call, its usage summed over them, and ai.toolCall runs a
# tool: neither is a call.
AI_SDK_CALL_STEPS = {"dogenerate": "chat", "dostream": "chat", "doembed": "embeddings", "dorerank": "rerank"}
# Vercel provider ids (@ai-sdk/google-vertex's, @ai-sdk/amazon-bedrock's) whose first part does
# not name the provider.
AI_SDK_PROVIDERS = {"google.vertex": "gcp.vertex_ai", "amazon-bedrock": "aws.bedrock"}


def ai_sdk_operation(operation_id: str) -> str:
    """The operation of a Vercel AI SDK span by its lower-cased ai.operationId (AI_SDK_FUNCTION: no call)."""
    return AI_SDK_CALL_STEPS.get(operation_id.rsplit(".", 1)[-1], AI_SDK_FUNCTION)


def ai_sdk_provider(raw: str) -> str:
    """The provider a Vercel AI SDK provider id names (openai.chat -> openai); a known name as it is."""
    text = raw.strip().lower()
    if text in PROVIDER_ALIASES:
        return text
    for prefix, provider in AI_SDK_PROVIDERS.items():
        if text == prefix or text.startswith(prefix + "."):
            return provider
    return text.split(".", 1)[0]


def first(attrs: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The first present, non-empty value among keys, or None."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def firsts(attrs: Mapping[str, Any], fields: Iterable[Sequence[str]]) -> list[Any]:
    """first(attrs, keys) for each keys list, in one pass."""
    get = attrs.get
    found: list[Any] = []
    keep = found.append
    for keys in fields:
        for key in keys:
            value = get(key)
            if value is not None and value != "":
                keep(value)
                break
        else:
            keep(None)
    return found


def detect(span: DecodedSpan, flags: int | None = None) -> tuple[str, ...]:
    """The GenAI dialects a span speaks, most specific first. flags: key_flags(attributes)."""
    attrs = span.attributes
    if flags is None:
        flags = key_flags(attrs)
    scope = span.scope_name.lower()
    openlit_sdk, sglang_service, tgi_service = resource_signals(span.resource)
    found: list[str] = []
    if flags & BREAKEVEN_KEY:
        found.append(BREAKEVEN)
    if scope.startswith("vllm") or "gen_ai.latency.e2e" in attrs or "gen_ai.latency.time_in_queue" in attrs:
        found.append(VLLM)
    if scope.startswith("sglang") or sglang_service:
        found.append(SGLANG)
    if scope.startswith("text_generation") or tgi_service:
        found.append(TGI)
    if scope.startswith("litellm") or flags & LITELLM_KEY:
        found.append(LITELLM)
    if "openinference.span.kind" in attrs:
        found.append(OPENINFERENCE)
    if "ai.operationId" in attrs:
        found.append(VERCEL_AI)
    if openlit_sdk or scope.startswith("openlit") or "gen_ai.sdk.version" in attrs:
        found.append(OPENLIT)
    if (
        "llm.request.type" in attrs
        or "llm.usage.total_tokens" in attrs
        or "llm.is_streaming" in attrs
        or flags & TRACELOOP_KEY
        or scope in OPENLLMETRY_SCOPES
    ):
        found.append(OPENLLMETRY)
    if "gen_ai.provider.name" in attrs:
        found.append(OTEL_GENAI)
    elif "gen_ai.system" in attrs or "gen_ai.operation.name" in attrs:
        found.append(OTEL_GENAI_LEGACY)
    return tuple(found)


_SIGNALS: dict[tuple[str, str], tuple[bool, bool, bool]] = {}


def resource_signals(resource: Mapping[str, Any]) -> tuple[bool, bool, bool]:
    """All detect() reads from a resource: (OpenLIT's SDK, an SGLang service, a TGI service)."""
    sdk = resource.get("telemetry.sdk.name", "")
    service = resource.get("service.name", "")
    if type(sdk) is not str or type(service) is not str:
        return _signals(str(sdk), str(service))
    try:
        return _SIGNALS[sdk, service]
    except KeyError:
        return remember(_SIGNALS, (sdk, service), _signals(sdk, service), len(sdk) + len(service))


def _signals(sdk: str, service: str) -> tuple[bool, bool, bool]:
    sdk, service = sdk.lower(), service.lower()
    return sdk == "openlit", service.startswith("sglang"), service.startswith("text-generation-inference")
