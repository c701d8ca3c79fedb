"""What the audit copy of a span's attributes keeps: it fails closed.

An attribute's value is kept verbatim only when its name is known to carry no content:

- a name the ledger reads a value from (the dialects' model, provider, token and timing
  keys, the who/what fields and the user's [attributes] mapping);
- the product's own `breakeven.*` keys;
- each dialect's metadata keys, and OpenTelemetry's general conventions (below);
- a name or glob of the user's `[privacy] keep_attributes`.

A known content key (redact.py: prompts, answers, tool arguments and results) is dropped,
after its prompt was hashed. Every other attribute, an in-house key, a new dialect's key, a
short prompt under a name nobody told us about, is kept as its type and size only, never
its value: {"redacted": "string", "size": 57}. So a key we have never seen cannot put text
at rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from breakeven.collector.normalize.redact import is_content

# Exact names known to carry no content, beside the names the ledger reads.
METADATA_KEYS = frozenset(
    {
        # OpenTelemetry GenAI (registry attributes that hold ids, names, numbers and enums).
        "gen_ai.agent.id", "gen_ai.agent.name", "gen_ai.conversation.id", "gen_ai.data_source.id",
        "gen_ai.embeddings.dimension.count", "gen_ai.operation.name", "gen_ai.output.type",
        "gen_ai.provider.name", "gen_ai.system", "gen_ai.token.type", "gen_ai.tool.call.id", "gen_ai.tool.name",
        "gen_ai.tool.type", "gen_ai.request.choice.count", "gen_ai.request.encoding_formats",
        "gen_ai.request.frequency_penalty", "gen_ai.request.max_tokens", "gen_ai.request.model",
        "gen_ai.request.presence_penalty", "gen_ai.request.seed", "gen_ai.request.temperature",
        "gen_ai.request.top_k", "gen_ai.request.top_p", "gen_ai.request.is_stream", "gen_ai.request.id",
        "gen_ai.response.finish_reasons", "gen_ai.response.id", "gen_ai.response.model",
        "gen_ai.response.time_to_first_token", "gen_ai.server.time_to_first_token", "gen_ai.server.ttft",
        "gen_ai.server.time_per_output_token", "gen_ai.server.tbt", "gen_ai.environment",
        "gen_ai.application_name", "gen_ai.sdk.version", "gen_ai.endpoint", "gen_ai.prompt.hash",
        # OpenInference.
        "openinference.span.kind", "llm.model_name", "llm.provider", "llm.system", "embedding.model_name",
        "reranker.model_name", "reranker.top_k", "session.id", "user.id",
        # OpenLLMetry (Traceloop).
        "llm.request.type", "llm.is_streaming", "llm.user", "llm.frequency_penalty", "llm.presence_penalty",
        "llm.top_k", "llm.response.finish_reason", "llm.response.stop_reason", "llm.response.id",
        "traceloop.span.kind", "traceloop.workflow.name", "traceloop.entity.name", "traceloop.entity.path",
        "traceloop.entity.version",
        # The Vercel AI SDK.
        "ai.model.id", "ai.model.provider", "ai.operationId", "ai.response.finishReason", "ai.response.id",
        "ai.response.model", "ai.response.timestamp", "ai.response.msToFirstChunk", "ai.response.msToFinish",
        "ai.response.avgCompletionTokensPerSecond", "ai.response.avgOutputTokensPerSecond",
        "ai.stream.msToFirstChunk", "ai.telemetry.functionId", "ai.toolCall.id", "ai.toolCall.name",
        "ai.schema.name", "ai.settings.output", "ai.settings.mode", "operation.name", "resource.name",
        # OpenTelemetry general conventions: where a call went and how it ended.
        "server.address", "server.port", "client.address", "client.port", "network.peer.address",
        "network.peer.port", "network.protocol.name", "network.protocol.version", "network.transport",
        "http.request.method", "http.response.status_code", "http.route", "http.method", "http.status_code",
        "http.scheme", "http.host", "http.flavor", "http.user_agent", "url.scheme", "url.template",
        "user_agent.original",
        "net.peer.name", "net.peer.port", "rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code",
        "error.type", "exception.type", "exception.escaped", "otel.status_code", "otel.scope.name",
        "otel.scope.version", "otel.library.name", "otel.library.version", "code.function", "code.namespace",
        "code.filepath", "code.lineno", "code.function.name", "code.file.path", "code.line.number",
        "thread.id", "thread.name", "aws.region", "aws.request_id", "cloud.region",
        "cloud.provider",
        "peer.service", "span.kind",
    }
)  # fmt: skip
# ... and name prefixes whose every key is a number, an id or a setting.
METADATA_PREFIXES = (
    "breakeven.",
    "gen_ai.usage.",
    "gen_ai.aggregated_usage.",  # pydantic-ai's agent run: its requests' usage summed
    "gen_ai.latency.",
    "gen_ai.openai.request.",
    "gen_ai.openai.response.",
    "llm.token_count.",
    "llm.usage.",
    "ai.usage.",
    "ai.settings.",
)


def is_metadata_key(name: str) -> bool:
    """Whether a name is one of the keys known to carry no content (the ledger's reads aside)."""
    return name in METADATA_KEYS or name.startswith(METADATA_PREFIXES)


def audit_names(
    names: Iterable[str], read: frozenset[str], keep_patterns: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept verbatim, kept as type and size) of a span's attribute names, each in their order.

    read: the names the ledger reads a value from; keep_patterns: the user's keep_attributes.
    Content keys are in neither: they are dropped.
    """
    kept: list[str] = []
    summarized: list[str] = []
    for name in names:
        if is_content(name):
            continue
        if name in read or is_metadata_key(name) or any(fnmatchcase(name, p) for p in keep_patterns):
            kept.append(name)
        else:
            summarized.append(name)
    return tuple(kept), tuple(summarized)


def summary(value: Any) -> dict[str, Any]:
    """What the audit copy keeps of a value it may not keep: its OTLP type and its size.

    size: characters of a string (bytes arrive from the decoder as hex text, so they are a
    string here), items of an array or a key-value list; a number or a boolean has no size.
    """
    if isinstance(value, bool):
        return {"redacted": "bool"}
    if isinstance(value, int):
        return {"redacted": "int"}
    if isinstance(value, float):
        return {"redacted": "double"}
    if isinstance(value, str):
        return {"redacted": "string", "size": len(value)}
    if isinstance(value, list):
        return {"redacted": "array", "size": len(value)}
    if isinstance(value, dict):
        return {"redacted": "kvlist", "size": len(value)}
    return {"redacted": type(value).__name__}
