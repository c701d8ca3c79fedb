"""Prompt and completion text -> a prompt hash; the text is dropped before anything is queued.

Every GenAI dialect puts content somewhere else: OTel GenAI (`gen_ai.input.messages`,
older `gen_ai.prompt` events and log records), OpenLLMetry (`gen_ai.prompt.N.content`),
OpenInference (`llm.input_messages.N.message.content`, embeddings'
`embedding.embeddings.N.embedding.text`, `input.value`), OpenLIT (`gen_ai.prompt` /
`gen_ai.content.prompt`). We read the prompt into one canonical form, a list of
[role, text] pairs, hash that, and drop every content-bearing attribute. An embeddings
call's prompt is its inputs, one user message each (never the rest of its request).

The hash is sha256 over `breakeven-prompt-v1\n` + the canonical JSON, so the same
prompt sent through two emitters that both keep messages hashes the same.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from breakeven.collector.records import Attributes, SpanEvent

HASH_PREFIX = b"breakeven-prompt-v1\n"
# What emitters send in place of content they were told to hide: not a prompt, no hash.
REDACTION_PLACEHOLDERS = frozenset({"__REDACTED__"})

# Attributes whose value is prompt or completion text (or carries it), by exact name.
CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.content.reasoning",
        "gen_ai.event.content",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.tool.definitions",
        "gen_ai.request.messages",
        "gen_ai.response.text",
        "input.value",
        "output.value",
        "llm.prompts",
        "llm.completions",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "content",
        "body",
        "message",
        # The Vercel AI SDK (npm `ai`, experimental_telemetry).
        "ai.prompt",
        "ai.prompt.messages",
        "ai.prompt.tools",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.response.object",
        "ai.response.reasoning",
        "ai.result.text",
        "ai.result.toolCalls",
        "ai.result.object",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "ai.value",
        "ai.values",
        "ai.embedding",
        "ai.embeddings",
        # pydantic-ai: a model request's events (before 1.0), an agent run's messages and
        # answer, a tool's arguments and result (before 1.0).
        "events",
        "all_messages_events",
        "pydantic_ai.all_messages",
        "final_result",
        "tool_arguments",
        "tool_response",
    }
)
# ... and by prefix: flattened message lists and template variables.
CONTENT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.input.messages.",
    "gen_ai.output.messages.",
    "gen_ai.content.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.prompt_template.",
    "llm.completions.",
    "llm.tools.",
    "embedding.embeddings.",
    "retrieval.documents.",
    "reranker.input_documents.",
    "reranker.output_documents.",
    "reranker.query",
    "input.",
    "output.",
)
# Span events (and log record event names) that exist only to carry content.
CONTENT_EVENTS = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.content.reasoning",
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.client.inference.operation.details",
        "llm.content.completion.chunk",
    }
)
_PROMPT_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
# Attributes whose value is a whole prompt, tried in this order (after the flattened lists and events).
_PROMPT_VALUES = ("gen_ai.prompt", "gen_ai.content.prompt", "llm.prompts", "input.value", "traceloop.entity.input")
# The Vercel AI SDK's: the messages sent (its inner doGenerate/doStream span), the call's
# prompt (its outer span: {"system", "prompt"} or {"system", "messages"}), an embedding's inputs.
_VERCEL_PROMPTS = ("ai.prompt.messages", "ai.prompt", "ai.values", "ai.value")
# Every attribute prompt_messages reads a prompt from by its exact name.
# pydantic-ai before 1.0: a model request's OTel GenAI events, as one JSON list attribute.
_EVENT_LIST = "events"
_PROMPT_ATTRIBUTES = frozenset({"gen_ai.input.messages", _EVENT_LIST, *_PROMPT_VALUES, *_VERCEL_PROMPTS})
# At most 9 digits of index: int() refuses numbers past 4300 digits, and no prompt has a billion messages.
_FLAT_OPENLLMETRY = re.compile(r"^gen_ai\.prompt\.(\d{1,9})\.(role|content)$")
_FLAT_OPENINFERENCE = re.compile(
    r"^llm\.input_messages\.(\d{1,9})\.message\.(role|content|contents\.\d+\.message_content\.text)$"
)
# OpenInference's embeddings input: one text per input string (token-id inputs have none).
_FLAT_EMBEDDING_TEXTS = re.compile(r"^embedding\.embeddings\.(\d{1,9})\.embedding\.(text)$")


def is_content_key(key: str) -> bool:
    """Whether an attribute name carries prompt or completion text."""
    return (
        key in CONTENT_KEYS
        or key.startswith(CONTENT_PREFIXES)
        or key.endswith((".content", ".text", ".message_content", ".arguments"))
    )


# What an attribute name is, as bits; worked out once per distinct name (spans repeat a
# few hundred names millions of times), so a span costs one dict lookup per attribute.
CONTENT = 1  # carries prompt or completion text
FLAT_PROMPT = 2  # one part of a flattened prompt message list
BREAKEVEN_KEY = 4  # breakeven.*
LITELLM_KEY = 8  # litellm.*
TRACELOOP_KEY = 16  # traceloop.*
LONG_KEY = 32  # longer than LONG_KEY_CHARS: never memoized; the normalizer checks it against the limit
LONG_KEY_CHARS = 256
_FLAGS_OF: dict[str, int] = {}
_FLAGS_MEMO_MAX = 50_000  # bounded against senders that invent names (and LONG_KEY bounds their size)


def _flags_of_key(key: str) -> int:
    flags = CONTENT if is_content_key(key) else 0
    if _FLAT_OPENLLMETRY.match(key) or _FLAT_OPENINFERENCE.match(key) or _FLAT_EMBEDDING_TEXTS.match(key):
        flags |= FLAT_PROMPT
    for prefix, flag in (("breakeven.", BREAKEVEN_KEY), ("litellm.", LITELLM_KEY), ("traceloop.", TRACELOOP_KEY)):
        if key.startswith(prefix):
            flags |= flag
    if len(key) > LONG_KEY_CHARS:
        return flags | LONG_KEY
    if len(_FLAGS_OF) >= _FLAGS_MEMO_MAX:
        _FLAGS_OF.clear()
    _FLAGS_OF[key] = flags
    return flags


def is_content(key: str) -> bool:
    """is_content_key, memoized with the other flags of the name."""
    flags = _FLAGS_OF.get(key)
    return bool((_flags_of_key(key) if flags is None else flags) & CONTENT)


def key_flags(attrs: Mapping[str, Any]) -> int:
    """The union of the flags of every attribute name."""
    known = _FLAGS_OF
    flags = 0
    for key in attrs:
        found = known.get(key)
        flags |= _flags_of_key(key) if found is None else found
    return flags


def strip_content(attrs: Attributes, flags: int | None = None) -> Attributes:
    """The attributes without any content-bearing key (the same dict when there is none)."""
    if not (key_flags(attrs) if flags is None else flags) & CONTENT:
        return attrs
    return {k: v for k, v in attrs.items() if not is_content(k)}


def redact(
    attrs: Attributes, events: Iterable[SpanEvent], flags: int | None = None
) -> tuple[Attributes, list[SpanEvent], str | None]:
    """Span attributes and events without content, plus the prompt's hash if content was sent.

    flags: key_flags(attrs), when the caller has it already.
    """
    if flags is None:
        flags = key_flags(attrs)
    events = list(events)
    prompt_hash = content_hash(attrs, events, flags)
    clean_events = [
        SpanEvent(ev.name, ev.time_ns, {} if ev.name in CONTENT_EVENTS else strip_content(ev.attributes))
        for ev in events
    ]
    return strip_content(attrs, flags), clean_events, prompt_hash


def content_hash(attrs: Mapping[str, Any], events: list[SpanEvent], flags: int) -> str | None:
    """The prompt hash of a span's content (flags: key_flags(attrs)); None when it sent no prompt."""
    messages = _messages_or_none(prompt_messages, attrs, events, flags) if flags & CONTENT or events else []
    return hash_messages(messages) if messages else None


def may_carry_prompt(names: Iterable[str], flags: int) -> bool:
    """Whether attributes with these names (flags: their key_flags) can hold a prompt.

    When they cannot, prompt_messages finds one in the span's events or nowhere, whatever
    the values: so a span with such names and no events has no prompt hash.
    """
    return bool(flags & FLAT_PROMPT) or any(name in _PROMPT_ATTRIBUTES for name in names)


# Roles that name the same thing: OpenAI's o-series take the system prompt as `developer`,
# and langchain-openai sends it so to them, while the client's instrumentation may say system.
_SAME_ROLE = {"developer": "system"}


def hash_messages(messages: list[list[str]]) -> str:
    """The prompt hash of canonical [role, text] messages."""
    if any(role in _SAME_ROLE for role, _text in messages):
        messages = [[_SAME_ROLE.get(role, role), text] for role, text in messages]
    canonical = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(HASH_PREFIX + canonical.encode("utf-8")).hexdigest()


def prompt_messages(
    attrs: Mapping[str, Any], events: Iterable[SpanEvent] = (), flags: int | None = None
) -> list[list[str]]:
    """The prompt as [role, text] pairs, from whichever dialect carried it; [] if none did."""
    structured = attrs.get("gen_ai.input.messages")
    if structured is not None:
        system = _messages_from_value(attrs.get("gen_ai.system_instructions"), "system")
        return system + _messages_from_value(structured, "user")
    if (key_flags(attrs) if flags is None else flags) & FLAT_PROMPT:
        for pattern in (_FLAT_OPENLLMETRY, _FLAT_OPENINFERENCE, _FLAT_EMBEDDING_TEXTS):
            flat = _flattened(attrs, pattern)
            if flat and not any(text in REDACTION_PLACEHOLDERS for _role, text in flat):
                return flat
    from_events = _messages_from_events(events) or _messages_from_event_list(attrs.get(_EVENT_LIST))
    if from_events:
        return from_events
    for key in _PROMPT_VALUES:
        value = attrs.get(key)
        if value is None or (isinstance(value, str) and value in REDACTION_PLACEHOLDERS):
            continue
        if key == "input.value" and attrs.get("openinference.span.kind") == "EMBEDDING":
            return _embedding_request_inputs(value)
        return _messages_from_value(value, "user")
    return _vercel_messages(attrs)


def _messages_from_event_list(value: Any) -> list[list[str]]:
    """The prompt in a JSON list of OTel GenAI events (each with its `event.name`), as pydantic-ai
    before 1.0 sends a model request's messages: the message events, not the answer's."""
    found = _json_or_text(value)
    if not isinstance(found, list):
        return []
    messages: list[list[str]] = []
    for event in found:
        name = event.get("event.name") if isinstance(event, Mapping) else None
        role = _PROMPT_EVENT_ROLES.get(name) if isinstance(name, str) else None
        if role is not None:
            messages.extend(_messages_from_value(event.get("content"), role))
    return messages


def _vercel_messages(attrs: Mapping[str, Any]) -> list[list[str]]:
    """The prompt of a Vercel AI SDK span: its messages, its prompt, or an embedding's inputs."""
    for key in _VERCEL_PROMPTS:
        value = attrs.get(key)
        if value is None:
            continue
        if key in ("ai.values", "ai.value"):  # each input JSON-encoded: one user message each
            inputs = value if isinstance(value, list) else [value]
            return [["user", _text(_json_or_text(item))] for item in inputs]
        prompt = _json_or_text(value)
        if isinstance(prompt, Mapping) and "prompt" in prompt and "messages" not in prompt:
            system = _messages_from_value(prompt.get("system"), "system")
            return system + _messages_from_value(prompt["prompt"], "user")
        if isinstance(prompt, Mapping) and "system" in prompt and isinstance(prompt.get("messages"), list):
            return _messages_from_value(prompt["system"], "system") + _messages_from_value(prompt["messages"], "user")
        return _messages_from_value(prompt, "user")
    return []


def _json_or_text(value: Any) -> Any:
    """A JSON-encoded value decoded; anything else (plain text, a list) as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _embedding_request_inputs(value: Any) -> list[list[str]]:
    """An embeddings request's inputs (OpenInference's input.value), one user message each.

    Only the request's `input` is the prompt: the model, encoding format and the rest of
    the request stay out of the hash, so the same input hashes as OpenLLMetry's
    `gen_ai.input.messages` (one user message per input) and OpenInference's
    `embedding.embeddings.N.embedding.text` do. Token-id inputs carry no text: their
    canonical JSON stands in for it, one message per input.
    """
    request = value
    if isinstance(value, str):
        try:
            request = json.loads(value)
        except ValueError:
            return [["user", value]]  # plain text: the input itself
    inputs = request.get("input") if isinstance(request, Mapping) else request
    if inputs is None:  # not a request we know: read it as any other content
        return _messages_from_value(value, "user")
    if not isinstance(inputs, list) or (inputs and all(isinstance(i, int) for i in inputs)):
        inputs = [inputs]  # one input: a text, or one token-id list
    return [["user", i if isinstance(i, str) else json.dumps(i, separators=(",", ":"), default=str)] for i in inputs]


def messages_from_log(event_name: str, body: Any, attrs: Mapping[str, Any]) -> list[list[str]]:
    """Prompt messages carried by one log record (OTel GenAI events as logs)."""
    return _messages_or_none(_messages_from_log, event_name, body, attrs)


def _messages_or_none(read: Callable[..., list[list[str]]], *args: Any) -> list[list[str]]:
    try:
        return read(*args)
    except RecursionError:
        # Content nested thousands deep (JSON in a string can be) is not a prompt we can
        # read: it gets no hash, and is dropped like any content.
        return []


def _messages_from_log(event_name: str, body: Any, attrs: Mapping[str, Any]) -> list[list[str]]:
    role = _PROMPT_EVENT_ROLES.get(event_name)
    if role is not None:
        return _messages_from_value(body, role)
    if event_name == "gen_ai.client.inference.operation.details":
        merged = dict(attrs)
        if isinstance(body, Mapping):
            merged.update(body)
        return prompt_messages(merged)
    return []


def _flattened(attrs: Mapping[str, Any], pattern: re.Pattern[str]) -> list[list[str]]:
    found: dict[int, dict[str, str]] = {}
    for key, value in attrs.items():
        match = pattern.match(key)
        if match:
            field = "role" if match.group(2) == "role" else "content"
            slot = found.setdefault(int(match.group(1)), {})
            slot[field] = slot.get(field, "") + (_text(value) if field == "role" else _content_text(value))
    return [[found[i].get("role", "user"), found[i].get("content", "")] for i in sorted(found)]


def _messages_from_events(events: Iterable[SpanEvent]) -> list[list[str]]:
    messages: list[list[str]] = []
    for ev in events:
        role = _PROMPT_EVENT_ROLES.get(ev.name)
        if role is not None:
            content = ev.attributes.get("gen_ai.event.content", ev.attributes.get("content"))
            messages.extend(_messages_from_value(content, role))
        elif ev.name == "gen_ai.content.prompt":
            for key in ("gen_ai.prompt", "gen_ai.content.prompt"):
                if key in ev.attributes:
                    messages.extend(_messages_from_value(ev.attributes[key], "user"))
    return messages


def _messages_from_value(value: Any, default_role: str) -> list[list[str]]:
    """Messages from a JSON string, a list of message objects, one message, or plain text."""
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("[", "{"):
            try:
                return _messages_from_value(json.loads(stripped), default_role)
            except ValueError:
                pass
        return [[default_role, value]]
    if isinstance(value, Mapping):
        if isinstance(value.get("messages"), list):
            return _messages_from_value(value["messages"], default_role)
        role = str(value.get("role") or default_role)
        for key in ("parts", "content", "text"):
            if key in value:
                return [[role, _text(value[key])]]
        return [[role, json.dumps(value, sort_keys=True, default=str)]]
    if isinstance(value, list):
        if all(isinstance(v, Mapping) and ("role" in v or "parts" in v) for v in value):
            out: list[list[str]] = []
            for item in value:
                out.extend(_messages_from_value(item, default_role))
            return out
        return [[default_role, _text(value)]]
    return [[default_role, str(value)]]


def _content_text(value: Any) -> str:
    """A flattened content attribute's text: itself, or the text of the content parts it holds
    as JSON (OpenLLMetry's cohere embed span: '[{"type": "text", "text": ...}]')."""
    if isinstance(value, str) and value.lstrip()[:1] == "[":
        parts = _json_or_text(value)
        if isinstance(parts, list) and parts and all(isinstance(p, Mapping) and "type" in p for p in parts):
            return _text(parts)
    return _text(value)


# Parts that mark a place in the prompt and carry no text: Bedrock Converse's cache point.
_MARKER_PARTS = frozenset({"cachePoint"})


def _text(value: Any) -> str:
    """The text of a content value: plain text, or the text parts of a parts list."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and value.keys() <= _MARKER_PARTS:
        return ""
    if isinstance(value, Mapping):
        for key in ("content", "text"):
            if key in value:
                return _text(value[key])
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, list):
        return "".join(_text(v) for v in value)
    return str(value)
