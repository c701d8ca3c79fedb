"""Decoded span -> LlmSpan (an LLM call, normalized), None (not an LLM call) or Rejection."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from collector.normalize import conventions as c
from collector.normalize.providers import backend_class, canonical_provider, provider_for_host
from collector.normalize.tokens import TokenError, canonical_usage
from collector.records import DecodedSpan, LlmSpan, Rejection
from collector.redact import LONG_KEY, LONG_KEY_CHARS, key_flags, redact
from collector.settings import Settings

SPAN_KIND_SERVER = 2
_QUANTIZATION = re.compile(
    r"(?:^|[-_/.:@])(fp8|fp4|nvfp4|mxfp4|int8|int4|w8a8|w4a16|w8a16|awq|gptq|gguf|exl2|bnb-4bit|"
    r"4bit|8bit|q[2-8]_k(?:_[msl])?|q[4-8]_[01])(?:$|[-_/.:])",
    re.IGNORECASE,
)


def quantization_from_model(model: str | None) -> str | None:
    """The quantization a model name advertises (Llama-3.1-8B-Instruct-FP8 -> fp8), if any."""
    if not model:
        return None
    match = _QUANTIZATION.search(model)
    return match.group(1).lower() if match else None


_MAPPED_NAMES: dict[tuple[str, int], tuple[str, ...]] = {}


def read_attribute_names(settings: Settings) -> frozenset[str]:
    """Every attribute name the ledger reads a value from, the user's mapping included."""
    mapped_names = {name for names in settings.attributes.values() for name in names}
    return c.READ | mapped_names if mapped_names else c.READ


def mapped(span: DecodedSpan, field: str, settings: Settings) -> Any:
    """A who/what field: breakeven.<field>, then the user's mapping, then the defaults.

    Each name is looked up on the span first, then on its resource.
    """
    names = _MAPPED_NAMES.get((field, id(settings)))
    if names is None:
        names = (f"breakeven.{field}", *settings.attributes.get(field, ()), *c.FIELD_DEFAULTS[field])
        if len(_MAPPED_NAMES) > 1000:  # tests make many Settings; a server makes one
            _MAPPED_NAMES.clear()
        _MAPPED_NAMES[(field, id(settings))] = names
    for name in names:
        for attrs in (span.attributes, span.resource):
            value = attrs.get(name)
            if value is not None and value != "":
                return value
    return None


def _invocation_parameters(attrs: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = c.first(attrs, c.INVOCATION_PARAMETERS)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested thousands deep
            return {}
    return raw if isinstance(raw, Mapping) else {}


def _host_and_port(attrs: Mapping[str, Any]) -> tuple[str | None, int | None]:
    address = c.first(attrs, c.SERVER_ADDRESS)
    port = c.first(attrs, c.SERVER_PORT)
    if address is None:
        return None, None
    text = str(address)
    if "://" in text:  # api_base style: https://api.openai.com/v1/
        try:
            parts = urlsplit(text)
        except ValueError:  # "http://[::1": no usable address
            return None, None
        try:
            url_port = parts.port
        except ValueError:  # past 65535, or not a number
            url_port = None
        return parts.hostname, _port(port) if port is not None else url_port
    return text.lower(), _port(port)


def _port(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):  # "http", NaN, infinity
        return None


def _operation(attrs: Mapping[str, Any], dialects: tuple[str, ...]) -> str | None:
    raw = c.first(attrs, c.OPERATION)
    if raw is not None:
        text = str(raw).lower()
        return c.OPERATIONS.get(text, text)
    kind = attrs.get("openinference.span.kind")
    if kind is not None:
        return c.OPENINFERENCE_CALL_KINDS.get(str(kind).upper()) or "chat"
    if c.VLLM in dialects or c.SGLANG in dialects or c.TGI in dialects:
        return "chat"
    return None


def _is_call_shape(attrs: Mapping[str, Any], operation: str | None) -> bool:
    """Rule out agent, tool and workflow spans that carry gen_ai.* or token totals."""
    if operation in c.NOT_CALL_OPERATIONS:
        return False
    kind = attrs.get("openinference.span.kind")
    if kind is not None and str(kind).upper() not in c.OPENINFERENCE_CALL_KINDS:
        return False
    traceloop_kind = attrs.get("traceloop.span.kind")
    return traceloop_kind is None or str(traceloop_kind).lower() in ("llm", "")


def _ttft_ms(span: DecodedSpan) -> float | None:
    seconds = c.first(span.attributes, c.TTFT_SECONDS)
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        ms = float(seconds) * 1000.0
        if math.isfinite(ms):  # infinity is no time, and no JSON answer could carry it
            return ms
    for event in span.events:
        if event.name in c.FIRST_TOKEN_EVENTS and event.time_ns >= span.start_ns:
            return (event.time_ns - span.start_ns) / 1e6
    return None


def _streaming(span: DecodedSpan, params: Mapping[str, Any], ttft_ms: float | None) -> bool | None:
    value = c.first(span.attributes, c.STREAMING)
    if value is None:
        value = params.get("stream")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if any(e.name in c.FIRST_TOKEN_EVENTS for e in span.events):
        return True
    return None


def _outcome(span: DecodedSpan) -> tuple[str, str | None]:
    error_type = span.attributes.get("error.type")
    if span.status_code != 2 and error_type is None:
        return "ok", None
    if error_type is None:
        for event in span.events:
            if event.name == "exception":
                error_type = event.attributes.get("exception.type")
                break
    if error_type is None:
        error_type = span.status_message.split(":", 1)[0][:120] or "error"
    return "error", str(error_type)


def _from_span_name(span: DecodedSpan) -> tuple[str | None, str | None, str | None]:
    """(provider, operation, model) of a bare span from a GenAI-only scope, named "{op} {model}"."""
    for prefix in c.GENAI_SCOPE_PREFIXES:
        if span.scope_name.startswith(prefix):
            provider = canonical_provider(span.scope_name[len(prefix) :].split(".", 1)[0])
            operation, _, model = span.name.partition(" ")
            return provider, c.OPERATIONS.get(operation.lower()), model or None
    return None, None, None


def _long_key(span: DecodedSpan, limit: int) -> Rejection | None:
    # Names are checked here, not in the decoder: the key-flag memo already sees each new
    # name once, so a normal span pays nothing for it.
    for key in span.attributes:
        size = len(key.encode("utf-8", "surrogatepass"))
        if size > limit:
            return Rejection(
                "attribute_too_long",
                f"span {span.name[:64]!r}: an attribute name is {size} bytes (max_attribute_value_bytes is {limit})",
            )
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def normalize_span(span: DecodedSpan, settings: Settings) -> LlmSpan | Rejection | None:
    """The span as an LLM call record, None when it is not an LLM call, or why it was refused."""
    flags = key_flags(span.attributes)
    # A name of at most LONG_KEY_CHARS characters is at most 4x as many bytes.
    if flags & LONG_KEY or settings.max_attribute_value_bytes < 4 * LONG_KEY_CHARS:
        too_long = _long_key(span, settings.max_attribute_value_bytes)
        if too_long is not None:
            return too_long
    dialects = c.detect(span, flags)
    attrs, _events, content_hash = redact(span.attributes, span.events, flags)
    params = _invocation_parameters(attrs)
    operation = _operation(attrs, dialects)
    if not _is_call_shape(attrs, operation):
        return None

    provider = canonical_provider(c.first(attrs, c.PROVIDER))
    named_provider, named_operation, named_model = _from_span_name(span)
    provider = provider or named_provider
    operation = operation or named_operation
    host, port = _host_and_port(attrs)
    is_engine = any(d in dialects for d in (c.VLLM, c.SGLANG, c.TGI)) or (
        provider in ("vllm", "sglang", "tgi") and span.kind == SPAN_KIND_SERVER
    )
    if is_engine and provider is None:
        provider = next(d for d in (c.VLLM, c.SGLANG, c.TGI) if d in dialects)
    host_provider = provider_for_host(host)
    if host_provider is not None:
        provider = host_provider

    try:
        usage = canonical_usage(attrs, dialects, provider, settings.max_tokens_per_call)
    except TokenError as exc:
        return Rejection("invalid_tokens", f"span {span.name!r}: {exc}")

    response_model = _text(c.first(attrs, c.RESPONSE_MODEL))
    request_model = _text(c.first(attrs, c.REQUEST_MODEL) or params.get("model") or response_model or named_model)
    has_usage = usage.input_tokens is not None or usage.output_tokens is not None
    if not (has_usage or is_engine or (request_model and (operation or provider))):
        return None

    backend = _text(mapped(span, "backend", settings))
    if backend is None:
        if host:
            backend = f"{host}:{port}" if port else host
        elif is_engine:
            backend = _text(span.resource.get("service.name"))
    quantization = _text(mapped(span, "quantization", settings)) or quantization_from_model(
        response_model or request_model
    )
    ttft_ms = _ttft_ms(span)
    status, error_type = _outcome(span)
    emitter = span.scope_name + (f"@{span.scope_version}" if span.scope_version else "")
    return LlmSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        kind=span.kind,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        ttft_ms=ttft_ms,
        service=_text(mapped(span, "service", settings)),
        environment=_text(mapped(span, "environment", settings)),
        team=_text(mapped(span, "team", settings)),
        feature=_text(mapped(span, "feature", settings)),
        operation=operation,
        provider=provider,
        backend=backend,
        backend_class=backend_class(
            provider, host, port, backend, response_model or request_model, is_engine, settings.backend_classes
        ),
        server_address=host,
        request_model=request_model,
        response_model=response_model,
        quantization=quantization,
        prompt_hash=_text(mapped(span, "prompt_hash", settings)) or content_hash,
        input_tokens=usage.input_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        streaming=_streaming(span, params, ttft_ms),
        status=status,
        error_type=error_type,
        emitter=emitter,
        conventions=dialects,
        is_engine=is_engine,
        attributes=attrs,
        response_id=_text(c.first(attrs, c.RESPONSE_ID)),
        process=_process(span.resource),
    )


def _process(resource: Mapping[str, Any]) -> str | None:
    """The sending process: its service instance id, else host and pid; None when unknown."""
    instance = resource.get("service.instance.id")
    if instance is not None and instance != "":
        return str(instance)
    pid = resource.get("process.pid")
    return None if pid is None else f"{resource.get('host.name') or ''}:{pid}"
