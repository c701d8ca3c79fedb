"""Decoded span -> LlmSpan (an LLM call, normalized), None (not an LLM call) or Rejection."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from breakeven.collector.config.settings import Settings
from breakeven.collector.memo import remember
from breakeven.collector.normalize import conventions as c
from breakeven.collector.normalize.keep import summary
from breakeven.collector.normalize.plan import Plan, mapped_names, plan_of
from breakeven.collector.normalize.redact import LONG_KEY, LONG_KEY_CHARS, content_hash
from breakeven.collector.normalize.tokens import TokenError, usage_from_values
from breakeven.collector.providers import canonical_provider, provider_for_host, remembered_backend_class
from breakeven.collector.records import DecodedSpan, LlmSpan, Rejection

SPAN_KIND_SERVER = 2
_QUANTIZATION = re.compile(
    r"(?:^|[-_/.:@])(fp8|fp4|nvfp4|mxfp4|int8|int4|w8a8|w4a16|w8a16|awq|gptq|gguf|exl2|bnb-4bit|"
    r"4bit|8bit|q[2-8]_k(?:_[msl])?|q[4-8]_[01])(?:$|[-_/.:])",
    re.IGNORECASE,
)


_QUANTIZATION_OF: dict[str, str | None] = {}


def quantization_from_model(model: str | None) -> str | None:
    """The quantization a model name advertises (Llama-3.1-8B-Instruct-FP8 -> fp8), if any."""
    if not model:
        return None
    try:
        return _QUANTIZATION_OF[model]
    except KeyError:
        match = _QUANTIZATION.search(model)
        return remember(_QUANTIZATION_OF, model, match.group(1).lower() if match else None, len(model))


def mapped(span: DecodedSpan, field: str, settings: Settings) -> Any:
    """A who/what field: breakeven.<field>, then the user's mapping, then the defaults.

    Each name is looked up on the span first, then on its resource.
    """
    for name in mapped_names(field, settings):
        for attrs in (span.attributes, span.resource):
            value = attrs.get(name)
            if value is not None and value != "":
                return value
    return None


def _mapped_texts(span: DecodedSpan, plan: Plan) -> list[str | None]:
    """mapped() of every mappable field, as text, reading only where the plan says the names are."""
    attrs, resource = span.attributes, span.resource
    texts: list[str | None] = []
    for sources in plan.mapped:
        text = None
        for on_resource, name in sources:
            value = resource[name] if on_resource else attrs[name]
            if value is not None and value != "":
                text = str(value)
                break
        texts.append(text)
    return texts


_PARAMETERS_OF: dict[str, Mapping[str, Any]] = {}


def _invocation_parameters(raw: Any) -> Mapping[str, Any]:
    """The request's parameters (model, stream ...), {} when none were sent. Shared: read only."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            return _PARAMETERS_OF[raw]
        except KeyError:
            return remember(_PARAMETERS_OF, raw, _parameters_from_json(raw), len(raw))
    return raw if isinstance(raw, Mapping) else {}


def _parameters_from_json(text: str) -> Mapping[str, Any]:
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested thousands deep
        return {}
    return raw if isinstance(raw, Mapping) else {}


def _host_and_port(address: Any, port: Any) -> tuple[str | None, int | None]:
    if address is None:
        return None, None
    text = str(address)
    if "://" in text:  # api_base style: https://api.openai.com/v1/
        try:
            found = _URL_ADDRESSES[text]
        except KeyError:
            found = remember(_URL_ADDRESSES, text, _url_address(text), len(text))
        if found is None:
            return None, None
        url_host, url_port = found
        return url_host, _port(port) if port is not None else url_port
    host, colon, tail = text.rpartition(":")
    if colon and tail.isdecimal() and host and (":" not in host or host[0] == "["):
        # host:port or [IPv6]:port (mistralai 1.x's own spans put the port in the address)
        return host.strip("[]").lower(), _port(port) if port is not None else _port(tail)
    return text.lower(), _port(port)


_URL_ADDRESSES: dict[str, tuple[str | None, int | None] | None] = {}


def _url_address(url: str) -> tuple[str | None, int | None] | None:
    """(host, port) of an api_base style URL; None when it has no usable address."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1": no usable address
        return None
    try:
        url_port = parts.port
    except ValueError:  # past 65535, or not a number
        url_port = None
    return parts.hostname, url_port


def _port(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):  # "http", NaN, infinity
        return None


def _operation(raw: Any, attrs: Mapping[str, Any], plan: Plan) -> str | None:
    if raw is not None:
        text = str(raw).lower()
        if c.LITELLM in plan.dialects and text in c.LITELLM_CALL_TYPES:
            return c.LITELLM_CALL_TYPES[text]
        operation = c.OPERATIONS.get(text)
        if operation is not None:
            return operation
        # gen_ai.operation.name and llm.request.type come first: "ai." is a Vercel ai.operationId
        return c.ai_sdk_operation(text) if text.startswith("ai.") else text
    kind = attrs.get("openinference.span.kind")
    if kind is not None:
        return c.OPENINFERENCE_CALL_KINDS.get(str(kind).upper()) or "chat"
    if plan.engine is not None:
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


def _ttft_ms(span: DecodedSpan, seconds: Any) -> float | None:
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        ms = float(seconds) * 1000.0
        if math.isfinite(ms):  # infinity is no time, and no JSON answer could carry it
            return ms
    for event in span.events:
        if event.name in c.FIRST_TOKEN_EVENTS and event.time_ns >= span.start_ns:
            return (event.time_ns - span.start_ns) / 1e6
    return None


def _streaming(span: DecodedSpan, value: Any, params: Mapping[str, Any]) -> bool | None:
    if value is None:
        value = params.get("stream")
        if value is False and span.scope_name in c.STREAM_PARAMETER_IS_SETTING:
            value = None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if span.events and any(e.name in c.FIRST_TOKEN_EVENTS for e in span.events):
        return True
    if span.attributes.get("rpc.method") in c.STREAMING_RPC_METHODS:
        return True  # the OTel botocore instrumentation says a Bedrock call streamed only this way
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


def _from_span_name(span: DecodedSpan, plan: Plan) -> tuple[str | None, str | None, str | None]:
    """(provider, operation, model) of a bare span from a GenAI-only scope, named "{op} {model}"."""
    if not plan.genai_scope:
        return None, None, None
    operation, _, model = span.name.partition(" ")
    return plan.scope_provider, c.OPERATIONS.get(operation.lower()), model or None


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
    plan = plan_of(span, settings)
    # A name of at most LONG_KEY_CHARS characters is at most 4x as many bytes.
    if plan.flags & LONG_KEY or settings.max_attribute_value_bytes < 4 * LONG_KEY_CHARS:
        too_long = _long_key(span, settings.max_attribute_value_bytes)
        if too_long is not None:
            return too_long
    # The audit copy: known names verbatim, unknown ones as type and size, content dropped.
    attrs = span.attributes if plan.kept is None else {name: span.attributes[name] for name in plan.kept}
    if plan.summarized:
        values = span.attributes
        attrs.update({name: summary(values[name]) for name in plan.summarized})
    # The content's hash; the events themselves are not kept, so they need no redacting here.
    prompt_hash = (
        content_hash(span.attributes, span.events, plan.flags) if plan.may_carry_prompt or span.events else None
    )
    # One pass over the names the plan says the span has, in Reads order.
    (
        raw_operation,
        raw_params,
        raw_provider,
        address,
        raw_port,
        raw_request_model,
        raw_response_model,
        response_id,
        ttft_seconds,
        streaming,
        *counts,
    ) = c.firsts(span.attributes, plan.reads)
    params = _invocation_parameters(raw_params)
    operation = _operation(raw_operation, attrs, plan)
    agent_key = c.AGENT_RUN_KEYS.get(span.scope_name)
    if not _is_call_shape(attrs, operation) or (agent_key is not None and agent_key in span.attributes):
        return None

    if raw_provider is not None and c.VERCEL_AI in plan.dialects:
        raw_provider = c.ai_sdk_provider(str(raw_provider))  # openai.chat -> openai
    provider = canonical_provider(raw_provider)
    named_provider, named_operation, named_model = _from_span_name(span, plan)
    provider = provider or named_provider
    operation = operation or named_operation
    host, port = _host_and_port(address, raw_port)
    is_engine = plan.engine is not None or (provider in ("vllm", "sglang", "tgi") and span.kind == SPAN_KIND_SERVER)
    if is_engine and provider is None:
        provider = plan.engine
    host_provider = provider_for_host(host)
    if host_provider is not None:
        provider = host_provider

    try:
        usage = usage_from_values(counts, plan.dialects, provider, settings.max_tokens_per_call)
    except TokenError as exc:
        return Rejection("invalid_tokens", f"span {span.name!r}: {exc}")

    response_model = _text(raw_response_model)
    request_model = _text(raw_request_model or params.get("model") or response_model or named_model)
    has_usage = usage.input_tokens is not None or usage.output_tokens is not None
    if not (has_usage or is_engine or (request_model and (operation or provider))):
        return None

    service, environment, team, feature, mapped_prompt_hash, backend, quantization = _mapped_texts(span, plan)
    if backend is None:
        if host:
            backend = f"{host}:{port}" if port else host
        elif is_engine:
            backend = _text(span.resource.get("service.name"))
    model = response_model or request_model
    ttft_ms = _ttft_ms(span, ttft_seconds)
    status, error_type = _outcome(span)
    # Positional, in LlmSpan's field order (pinned by tests/unit/test_record_fields.py): cheaper than keywords.
    return LlmSpan(
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.start_ns,
        span.end_ns,
        ttft_ms,
        service,
        environment,
        team,
        feature,
        operation,
        provider,
        backend,
        remembered_backend_class(provider, host, port, backend, model, is_engine, settings.backend_classes),
        host,  # server_address
        request_model,
        response_model,
        quantization or quantization_from_model(model),
        mapped_prompt_hash or prompt_hash,
        usage.input_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.output_tokens,
        usage.reasoning_tokens,
        _streaming(span, streaming, params),
        status,
        error_type,
        plan.emitter,
        plan.dialects,  # conventions
        is_engine,
        attrs,  # attributes
        _text(response_id) if response_id is not None else _openinference_response_id(span, plan),
        _process(span.resource),
    )


def _openinference_response_id(span: DecodedSpan, plan: Plan) -> str | None:
    """The provider's response id inside OpenInference's output.value (it has no attribute for it).

    The provider's answer as JSON (OpenAI, Anthropic: its `id`), or LangChain's LLMResult (its
    llm_output's `id`): what links OpenInference's LangChain span to a client instrumentation's
    span of the same call, which lands in a trace of its own (tests/fixtures/emitters/README.md,
    LangChain). Only the id is read; the text is dropped with the rest of the content.
    """
    if c.OPENINFERENCE not in plan.dialects:
        return None
    value = span.attributes.get("output.value")
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    answer = _parameters_from_json(value)
    llm_output = answer.get("llm_output")
    if isinstance(llm_output, Mapping):
        answer = llm_output
    elif answer.get("object") is None and answer.get("type") != "message":
        return None  # not a provider's answer we know
    found = answer.get("id")
    return found if isinstance(found, str) and found else None


def _process(resource: Mapping[str, Any]) -> str | None:
    """The sending process: its service instance id, else host and pid; None when unknown."""
    instance = resource.get("service.instance.id")
    if instance is not None and instance != "":
        return str(instance)
    pid = resource.get("process.pid")
    return None if pid is None else f"{resource.get('host.name') or ''}:{pid}"
