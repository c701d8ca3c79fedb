"""A tiny fake LLM provider (OpenAI- and Anthropic-compatible) for tests.

Standard library only (http.server + threading), so it can be imported from
any virtualenv, including the per-emitter capture venvs used by
``scripts/capture_emitters.py``.

Usage::

    from fakeprovider import FakeProvider

    with FakeProvider() as fp:
        client = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="x")
        anthropic.Anthropic(base_url=fp.base_url, api_key="x")
        ...
        fp.returned   # list of dicts, one per request answered

Endpoints
---------
* ``POST /v1/chat/completions``  OpenAI chat; ``"stream": true`` answers SSE
  chunks, and with ``"stream_options": {"include_usage": true}`` a final
  chunk with ``choices: []`` and the usage.
* ``POST /v1/embeddings``        OpenAI embeddings.
* ``POST /v1/responses``         OpenAI Responses API (non-streaming only).
* ``POST /v1/messages``          Anthropic Messages; ``"stream": true`` answers
  SSE (message_start / content_block_start / ping / content_block_delta /
  content_block_stop / message_delta / message_stop).
* ``POST /v1beta/models/{model}:generateContent``  Gemini API (the
  generativelanguage.googleapis.com surface google-genai calls);
  ``:streamGenerateContent?alt=sse`` answers ``data: {json}`` SSE chunks, the
  last one carrying finishReason and ``usageMetadata``;
  ``:batchEmbedContents`` (what google-genai's ``models.embed_content`` calls
  on the Gemini API) and ``:embedContent`` answer embeddings.  Responses carry
  ``modelVersion`` and ``responseId``; ``usageMetadata`` is Gemini's shape:
  promptTokenCount INCLUDES cachedContentTokenCount, candidatesTokenCount
  EXCLUDES thoughtsTokenCount, totalTokenCount = prompt + candidates +
  thoughts, and zero counts are left out (proto3 JSON) as the live API does.
  A request whose generationConfig.thinkingConfig.includeThoughts is true gets
  a ``{"text": ..., "thought": true}`` part first; ``chat-tools`` answers a
  ``functionCall`` part.  Errors are Google's ``{"error": {"code", "message",
  "status"}}`` JSON.

* ``POST /model/{modelId}/converse``, ``/converse-stream``, ``/invoke``  AWS
  Bedrock Runtime (what boto3's ``bedrock-runtime`` client calls; request
  signatures are ignored).  Converse answers ``output.message``,
  ``stopReason``, ``usage`` {inputTokens, outputTokens, totalTokens,
  cacheReadInputTokens, cacheWriteInputTokens} and ``metrics.latencyMs``;
  inputTokens EXCLUDES the cache reads and writes and totalTokens is their sum
  with the output.  ConverseStream answers ``application/vnd.amazon.eventstream``
  binary frames (prelude: total length, headers length, prelude CRC32;
  headers ``:event-type`` / ``:content-type`` / ``:message-type``; JSON
  payload; message CRC32): messageStart, contentBlockDelta x3 (or a
  contentBlockStart/toolUse delta), contentBlockStop, messageStop and
  metadata (usage + metrics).  InvokeModel takes an Anthropic-on-Bedrock body
  (``anthropic_version: bedrock-2023-05-31``) and answers Anthropic's message
  shape (``model`` is the bare Anthropic name) plus Bedrock's
  ``X-Amzn-Bedrock-*-Token-Count`` headers.  Converse and ConverseStream name
  no model in their answer, so their record's ``model`` is None (the expected
  record's response model too); InvokeModel's is the body's ``model``.
  Errors are
  ``{"message": ...}`` with ``x-amzn-errortype: <Exception>:<namespace>``.

* ``POST /v1/chat/completions`` and ``/v1/embeddings`` with ``X-Fake-Provider: mistral``:
  the Mistral API (``MISTRAL_USAGE``; echoes the model; a stream's last chunk carries
  ``usage``). ``POST /openai/v1/chat/completions`` (and ``/embeddings``): Groq
  (``GROQ_USAGE``; OpenAI's shape plus ``x_groq``; a stream's usage in the last chunk's
  ``x_groq.usage``). ``POST /v2/chat`` and ``/v2/embed``: Cohere v2 (``COHERE_USAGE``:
  ``billed_units`` and ``tokens``; streams as message-start / content-* / message-end
  SSE events; no model in the answer). Errors in each one's own JSON shape.

Scenario selection (first match wins)
-------------------------------------
1. Request header ``X-Fake-Scenario: <scenario>``.
2. Request model suffix ``<model>:<scenario>`` (e.g. ``gpt-4o-mini:chat-cached``);
   the suffix is stripped before the model is echoed back.
3. Otherwise ``chat`` (``chat-stream`` when the request streams,
   ``embeddings`` on /v1/embeddings, ``responses`` on /v1/responses).

Scenarios and the usage they return (numbers are deliberately distinct so a
mapping mistake shows up):

==================  =======================================================
scenario            OpenAI usage / Anthropic usage
==================  =======================================================
chat              OpenAI prompt 101 (cached 0), completion 23 (reasoning 0)
                  Anthropic input 17, cache_read 0, cache_creation 0, out 29
chat-stream       OpenAI prompt 2345 (cached 2048), completion 432
                  (reasoning 210) -- the stream carries cache+reasoning so
                  emitters that drop them on streams are exposed.
                  Anthropic input 23, cache_read 1500, cache_creation 700,
                  output 88, streamed the way the current API does it:
                  message_start carries input/cache counts and
                  output_tokens=1; message_delta carries the CUMULATIVE usage
                  (input_tokens, cache_*_input_tokens and output_tokens=88).
chat-stream-helper  same usage/format as chat-stream (Anthropic only; the
                  driver uses client.messages.stream()).
chat-stream-legacy  Anthropic only, same numbers, but message_delta carries
                  only {"output_tokens": 88} (the older wire format).
chat-cached       OpenAI prompt 1234 (cached 1000), completion 56
                  Anthropic input 12, cache_read 2000, cache_creation 345,
                  output 67
chat-reasoning    OpenAI prompt 321 (cached 0), completion 567 (reasoning 300)
                  Anthropic input 31, output 777 of which
                  output_tokens_details.thinking_tokens 512, plus a thinking
                  content block (SECRET-THINKING-<scenario>-9c1e)
chat-tools        OpenAI prompt 187, completion 19: a ``tool_calls`` answer (get_weather)
chat-async        OpenAI prompt 97, completion 31
chat-object       OpenAI prompt 143, completion 17; a request with a ``json_schema`` (or
                  ``json_object``) response_format is answered ``{"answer": <text>}``
agent-tools       OpenAI, two requests: without a ``tool`` message a ``tool_calls``
                  answer (get_weather), prompt 203, completion 15; with the tool's
                  result a text answer, prompt 248, completion 27
chat-cache-write  OpenAI prompt 3000 (cached 1200, cache_write 800), completion 44
                  (prompt_tokens_details.cache_write_tokens, reported by newer
                  OpenAI API versions; openai>=3 types have the field)
chat-error        OpenAI: HTTP 429 rate_limit_exceeded error body
                  Anthropic: HTTP 500 api_error error body
chat-error-400    HTTP 400 invalid_request_error in the provider's error shape (both providers)
chat-error-429    HTTP 429 in the provider's error shape (both providers)
chat-error-500    HTTP 500 in the provider's error shape (both providers)
chat-error-529    HTTP 529 overloaded_error (Anthropic shape) / 503 (OpenAI)
embeddings        prompt_tokens 42, total_tokens 42
responses         input 1500 (cached 1024, cache_write 0), output 250 (reasoning 128)
==================  =======================================================

Gemini (``GEMINI_USAGE``; prompt includes cached, candidates exclude thoughts):

==================  =======================================================
chat              prompt 111, candidates 33
chat-stream       prompt 2468 (cached 2048), candidates 135, thoughts 246
chat-cached       prompt 4321 (cached 4096), candidates 65
chat-reasoning    prompt 222, candidates 77, thoughts 512 (+ a thought part)
chat-tools        prompt 150, candidates 18 (a functionCall part)
chat-async        prompt 131, candidates 37
chat-error        HTTP 400 INVALID_ARGUMENT
chat-error-429    HTTP 429 RESOURCE_EXHAUSTED (with RetryInfo)
embeddings        prompt 42 (batchEmbedContents usageMetadata)
==================  =======================================================

Bedrock (``BEDROCK_USAGE``; inputTokens excludes cache reads/writes):

==================  =======================================================
converse          anthropic.claude-3-5-sonnet-20241022-v2:0: input 19,
                  output 41 (cache fields 0)
converse-cached   us.anthropic.claude-3-5-sonnet-20241022-v2:0: input 14,
                  cacheRead 1800, cacheWrite 256, output 52
converse-stream   us.anthropic...: input 27, cacheRead 1536, cacheWrite 128,
                  output 96 (in the metadata event)
converse-tools    anthropic.claude-...: input 380, output 47 (a toolUse block)
converse-llama    meta.llama3-1-70b-instruct-v1:0: input 58, output 73 (no
                  cache fields, as for models without prompt caching)
invoke            InvokeModel, anthropic.claude-...: Anthropic usage input 16,
                  cache_read 1200, cache_creation 300, output 61
chat-error        HTTP 400 ValidationException
chat-error-429    HTTP 429 ThrottlingException
==================  =======================================================

Error answers carry ``x-should-retry: false`` so clients do not retry.

The response model is taken from header ``X-Fake-Response-Model`` if given,
else from ``RESPONSE_MODELS`` (a dated snapshot name, different from the
request model so request/response model mix-ups show), else the request model
with ``-2025-01-01`` appended. Embeddings echo the request model (as OpenAI
does).

The completion text is ``"Here is the answer: SECRET-COMPLETION-<scenario>-9c1e."``
(``COMPLETION_TEXT`` below) so tests can prove content never leaks.

``server.returned`` (``FakeProvider.returned``) records for every request a
dict: ``path``, ``scenario``, ``request_model``, ``model`` (response model, None
on error), ``usage`` (exactly as returned, None on error), ``stream``,
``status``, and ``error`` (the error body on error, else None). The record is
appended before the answer's last bytes are written, so once a client call has
returned (or a stream has ended) its record is there.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = [
    "ANTHROPIC_USAGE",
    "BEDROCK_INVOKE_USAGE",
    "BEDROCK_USAGE",
    "COHERE_USAGE",
    "EMBEDDINGS_USAGE",
    "GEMINI_EMBEDDINGS_USAGE",
    "GEMINI_USAGE",
    "GROQ_USAGE",
    "MISTRAL_USAGE",
    "OPENAI_USAGE",
    "RESPONSES_USAGE",
    "RESPONSE_MODELS",
    "FakeProvider",
    "completion_text",
    "expected_canonical",
    "expected_record",
]

CREATED = 1735689600  # 2025-01-01T00:00:00Z, fixed so fixtures are stable


def completion_text(scenario: str) -> str:
    return f"Here is the answer: SECRET-COMPLETION-{scenario}-9c1e."


def _openai_usage(prompt, cached, completion, reasoning, cache_write=None):
    details = {"cached_tokens": cached, "audio_tokens": 0}
    if cache_write is not None:
        details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _anthropic_usage(inp, cache_read, cache_creation, out, thinking=None):
    usage = {
        "input_tokens": inp,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": out,
        "service_tier": "standard",
    }
    if thinking is not None:
        # output_tokens stays the inclusive total; thinking_tokens is a part of it
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    return usage


OPENAI_USAGE = {
    "chat": _openai_usage(101, 0, 23, 0),
    "chat-stream": _openai_usage(2345, 2048, 432, 210),
    "chat-cached": _openai_usage(1234, 1000, 56, 0),
    "chat-reasoning": _openai_usage(321, 0, 567, 300),
    # newer OpenAI API versions also report prompt_tokens_details.cache_write_tokens
    "chat-cache-write": _openai_usage(3000, 1200, 44, 0, cache_write=800),
    "chat-tools": _openai_usage(187, 0, 19, 0),  # a tool_calls answer
    "chat-async": _openai_usage(97, 0, 31, 0),
    "chat-object": _openai_usage(143, 0, 17, 0),  # a JSON-schema answer
    # an agent's two requests: the tool_calls answer, then the answer after the tool's result
    "agent-tools": _openai_usage(203, 0, 15, 0),
    "agent-tools-final": _openai_usage(248, 0, 27, 0),
}

ANTHROPIC_USAGE = {
    "chat": _anthropic_usage(17, 0, 0, 29),
    "chat-stream": _anthropic_usage(23, 1500, 700, 88),
    "chat-stream-helper": _anthropic_usage(23, 1500, 700, 88),
    "chat-stream-legacy": _anthropic_usage(23, 1500, 700, 88),
    "chat-cached": _anthropic_usage(12, 2000, 345, 67),
    "chat-reasoning": _anthropic_usage(31, 0, 0, 777, thinking=512),
}

EMBEDDINGS_USAGE = {"prompt_tokens": 42, "total_tokens": 42}


def _gemini_usage(prompt, cached, candidates, thoughts):
    """Gemini's usageMetadata: prompt includes cached; candidates exclude thoughts; zeros omitted."""
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


GEMINI_USAGE = {
    "chat": _gemini_usage(111, 0, 33, 0),
    "chat-stream": _gemini_usage(2468, 2048, 135, 246),
    "chat-cached": _gemini_usage(4321, 4096, 65, 0),
    "chat-reasoning": _gemini_usage(222, 0, 77, 512),
    "chat-tools": _gemini_usage(150, 0, 18, 0),
    "chat-async": _gemini_usage(131, 0, 37, 0),
}
GEMINI_EMBEDDINGS_USAGE = {
    "promptTokenCount": 42,
    "totalTokenCount": 42,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 42}],
}


def _bedrock_usage(inp, cache_read, cache_write, out, cache_fields=True):
    """Bedrock Converse's TokenUsage: inputTokens excludes cache reads and writes."""
    usage = {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + cache_read + cache_write + out}
    if cache_fields:
        usage["cacheReadInputTokens"] = cache_read
        usage["cacheWriteInputTokens"] = cache_write
    return usage


BEDROCK_USAGE = {
    "converse": _bedrock_usage(19, 0, 0, 41),
    "converse-cached": _bedrock_usage(14, 1800, 256, 52),
    "converse-stream": _bedrock_usage(27, 1536, 128, 96),
    "converse-tools": _bedrock_usage(380, 0, 0, 47),
    "converse-llama": _bedrock_usage(58, 0, 0, 73, cache_fields=False),
}
# InvokeModel with an Anthropic body answers Anthropic's own usage shape
BEDROCK_INVOKE_USAGE = {
    "input_tokens": 16,
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 1200,
    "output_tokens": 61,
}
# InvokeModel's Anthropic body names the model without Bedrock's vendor/profile/version tags
BEDROCK_INVOKE_MODELS = {
    "anthropic.claude-3-5-sonnet-20241022-v2:0": "claude-3-5-sonnet-20241022",
    "us.anthropic.claude-3-5-sonnet-20241022-v2:0": "claude-3-5-sonnet-20241022",
}
# scenario code -> (status, exception name, message)
_BEDROCK_ERRORS = {
    "400": (400, "ValidationException", "The model returned the following errors: max_tokens: range: 1..8192"),
    "429": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "500": (500, "InternalServerException", "The system encountered an unexpected error during processing."),
    "503": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
}


def _eventstream_frame(event_type: str, payload: dict) -> bytes:
    """One AWS event-stream message (botocore/eventstream.py's framing)."""
    import struct
    import zlib

    headers = b""
    for name, value in ((":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")):
        n, v = name.encode(), value.encode()
        headers += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    body = json.dumps(payload, separators=(",", ":")).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


RESPONSES_USAGE = {
    "input_tokens": 1500,
    "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
    "output_tokens": 250,
    "output_tokens_details": {"reasoning_tokens": 128},
    "total_tokens": 1750,
}

RESPONSE_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    # Gemini's modelVersion for an alias names the snapshot that answered
    "gemini-flash-latest": "gemini-2.5-flash-preview-09-2025",
    "gemini-2.5-flash": "gemini-2.5-flash-preview-09-2025",
    "gemini-2.5-pro": "gemini-2.5-pro-preview-06-05",
    "gemini-2.0-flash": "gemini-2.0-flash-001",
}

# scenario -> (status, OpenAI-shaped body, Anthropic-shaped body)
_ERRORS = {
    "400": (
        400,
        {
            "error": {
                "message": "Invalid value for 'max_tokens': must be a positive integer.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "invalid_value",
            }
        },
        {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: must be positive"}},
    ),
    "429": (
        429,
        {
            "error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
        {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your rate limit"},
        },
    ),
    "500": (
        500,
        {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
        {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}},
    ),
    "529": (
        529,
        {
            "error": {
                "message": "The engine is currently overloaded.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ),
}


# Google's error JSON (google.rpc.Status as the REST APIs render it)
_GEMINI_ERRORS = {
    "400": (
        400,
        {
            "error": {
                "code": 400,
                "message": "* GenerateContentRequest.generation_config.max_output_tokens: must be positive",
                "status": "INVALID_ARGUMENT",
            }
        },
    ),
    "429": (
        429,
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            }
                        ],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"},
                ],
            }
        },
    ),
    "500": (500, {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}),
    "503": (503, {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
}


# -- Mistral, Groq, Cohere ---------------------------------------------------
# Mistral (mistralai 1.x's UsageInfo: prompt_tokens, completion_tokens, total_tokens; the
# API echoes the model asked for). Embeddings report completion_tokens 0.
def _mistral_usage(prompt, completion):
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


MISTRAL_USAGE = {
    "chat": _mistral_usage(61, 27),
    "chat-stream": _mistral_usage(74, 39),
    "chat-tools": _mistral_usage(163, 21),
    "chat-async": _mistral_usage(58, 25),
}
MISTRAL_EMBEDDINGS_USAGE = _mistral_usage(42, 0)


# Groq (groq's CompletionUsage: OpenAI's counts plus queue/prompt/completion/total time;
# prompt_tokens includes prompt_tokens_details.cached_tokens, completion_tokens includes
# completion_tokens_details.reasoning_tokens). Groq echoes the model asked for.
def _groq_usage(prompt, completion, cached=None, reasoning=None):
    usage = {
        "queue_time": 0.017,
        "prompt_tokens": prompt,
        "prompt_time": 0.004,
        "completion_tokens": completion,
        "completion_time": 0.081,
        "total_tokens": prompt + completion,
        "total_time": 0.085,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


GROQ_USAGE = {
    "chat": _groq_usage(91, 19),
    "chat-stream": _groq_usage(1890, 212, cached=1536, reasoning=96),
    "chat-tools": _groq_usage(240, 18),
    "chat-async": _groq_usage(83, 21),
}
GROQ_EMBEDDINGS_USAGE = {"prompt_tokens": 42, "total_tokens": 42}


# Cohere v2 (cohere's Usage: billed_units {input_tokens, output_tokens} -- what is billed --
# and tokens {input_tokens, output_tokens} -- what the model saw, the prompt template
# included, so more input). The v2 chat answer names no model.
def _cohere_usage(billed_in, billed_out, tokens_in, tokens_out):
    return {
        "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
        "tokens": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


COHERE_USAGE = {
    "chat": _cohere_usage(47, 31, 212, 31),
    "chat-stream": _cohere_usage(53, 64, 218, 64),
    "chat-tools": _cohere_usage(128, 22, 1380, 43),
    "chat-async": _cohere_usage(44, 29, 209, 29),
}
# /v2/embed's meta: billed input only
COHERE_EMBEDDINGS_META = {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 42}}

# scenario code -> (status, body) in each provider's error shape
_MISTRAL_ERRORS = {
    "400": (
        400,
        {
            "object": "error",
            "message": "Invalid model: the requested model does not support max_tokens=-1",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
    ),
    "429": (
        429,
        {
            "object": "error",
            "message": "Requests rate limit exceeded",
            "type": "rate_limited",
            "param": None,
            "code": "1300",
        },
    ),
}
_GROQ_ERRORS = {
    "400": (
        400,
        {
            "error": {
                "message": "'messages.1' : for 'role:user' the following must be satisfied",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            }
        },
    ),
    "429": (
        429,
        {
            "error": {
                "message": "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_fake` "
                "service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5990, Requested 120. "
                "Please try again in 1.1s.",
                "type": "tokens",
                "code": "rate_limit_exceeded",
            }
        },
    ),
}
_COHERE_ERRORS = {
    "400": (
        400,
        {"id": "e0f8b1f4-fake-4b1e-9d1c-000000000400", "message": "invalid request: max_tokens must be positive"},
    ),
    "429": (
        429,
        {
            "id": "e0f8b1f4-fake-4b1e-9d1c-000000000429",
            "message": "You are using a Trial key, which is limited to 20 API calls / minute.",
        },
    ),
}
_OTHER_ERRORS = {"mistral": _MISTRAL_ERRORS, "groq": _GROQ_ERRORS, "cohere": _COHERE_ERRORS}


def _error_for(scenario: str, provider: str):
    """Return (status, body) if the scenario is an error scenario, else None."""
    if not scenario.startswith("chat-error") and not scenario.startswith("error"):
        return None
    code = scenario.rsplit("-", 1)[-1]
    if provider in _OTHER_ERRORS:
        status, body = _OTHER_ERRORS[provider].get(code, _OTHER_ERRORS[provider]["400"])
        return status, copy.deepcopy(body)
    if provider == "gemini":
        if code == "529":
            code = "503"
        status, body = _GEMINI_ERRORS.get(code, _GEMINI_ERRORS["400"])
        return status, copy.deepcopy(body)
    if code not in _ERRORS:
        code = "429" if provider == "openai" else "500"
    status, oa, an = _ERRORS[code]
    if provider == "openai" and status == 529:
        status = 503
    return status, copy.deepcopy(oa if provider == "openai" else an)


def expected_canonical(provider: str, path: str, usage):
    """breakeven's canonical token split computed from a returned raw usage."""
    if usage is None:
        return dict(
            input_tokens=None,
            cache_read_tokens=None,
            cache_write_tokens=None,
            output_tokens=None,
            reasoning_tokens=None,
        )
    if provider in ("gemini", "gcp.gemini"):
        # Gemini: promptTokenCount includes cachedContentTokenCount; candidatesTokenCount
        # leaves thoughtsTokenCount out (canonical output counts every generated token).
        cached = usage.get("cachedContentTokenCount") or 0
        thoughts = usage.get("thoughtsTokenCount") or 0
        return dict(
            input_tokens=(usage.get("promptTokenCount") or 0) - cached,
            cache_read_tokens=cached,
            cache_write_tokens=0,
            output_tokens=(usage.get("candidatesTokenCount") or 0) + thoughts,
            reasoning_tokens=thoughts,
        )
    if provider in ("bedrock", "aws.bedrock"):
        if path.endswith("/invoke"):  # InvokeModel: the model vendor's own body (Anthropic here)
            return expected_canonical("anthropic", path, usage)
        # Converse: inputTokens already excludes cache reads and writes.
        return dict(
            input_tokens=usage.get("inputTokens") or 0,
            cache_read_tokens=usage.get("cacheReadInputTokens") or 0,
            cache_write_tokens=usage.get("cacheWriteInputTokens") or 0,
            output_tokens=usage.get("outputTokens") or 0,
            reasoning_tokens=0,
        )
    if provider == "cohere":
        # Cohere bills billed_units; `tokens` (the prompt template included) is not what is billed.
        # An embed answer carries the same billed_units under `meta`.
        billed = usage.get("billed_units") or {}
        return dict(
            input_tokens=billed.get("input_tokens") or 0,
            cache_read_tokens=0,
            cache_write_tokens=0,
            output_tokens=billed.get("output_tokens") or 0,
            reasoning_tokens=0,
        )
    if provider == "anthropic":
        # Anthropic: input_tokens already excludes cache reads and writes.
        return dict(
            input_tokens=usage.get("input_tokens") or 0,
            cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
            cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
            reasoning_tokens=(usage.get("output_tokens_details") or {}).get("thinking_tokens") or 0,
        )
    # OpenAI (and Mistral, Groq): prompt/input tokens include cached (read) tokens; cache writes
    # (newer API field) are assumed to be included as well.
    if path.endswith("/responses"):
        details = usage.get("input_tokens_details") or {}
        cached = details.get("cached_tokens") or 0
        write = details.get("cache_write_tokens") or 0
        return dict(
            input_tokens=usage["input_tokens"] - cached - write,
            cache_read_tokens=cached,
            cache_write_tokens=write,
            output_tokens=usage.get("output_tokens") or 0,
            reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
        )
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    write = details.get("cache_write_tokens") or 0
    return dict(
        input_tokens=usage["prompt_tokens"] - cached - write,
        cache_read_tokens=cached,
        cache_write_tokens=write,
        output_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
    )


# the fake's provider names -> breakeven's (collector/providers.py)
# (LangChain's scenarios call OpenAI through langchain-openai, pydantic-ai's through its
# OpenAIChatModel, the gateway's through a LiteLLM proxy, the Vercel AI SDK's through @ai-sdk/openai.)
CANONICAL_PROVIDER = {
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "langchain": "openai",
    "pydantic-ai": "openai",
    "litellm-proxy": "openai",
    "vercel-ai": "openai",  # @ai-sdk/openai
}


def expected_record(provider: str, meta: dict, returned: list, raised: BaseException | None = None) -> dict:
    """The canonical record one scenario's call must be stored as, from what the server returned.

    ``meta`` is what the request asked for (``request_model``, ``operation``,
    ``streaming``); ``returned`` is ``FakeProvider.returned`` for that call; ``raised`` is
    the exception the client raised, if any. Token fields are None for errors.
    """
    last = returned[-1] if returned else {}
    status = "error" if (raised is not None or last.get("status", 200) >= 400) else "ok"
    expected = {
        "provider": CANONICAL_PROVIDER.get(provider, provider),
        "request_model": meta["request_model"],
        "response_model": last.get("model"),
        "operation": meta["operation"],
        "streaming": meta["streaming"],
        "status": status,
        "error_type": type(raised).__name__ if raised is not None else None,
        "http_status": last.get("status"),
    }
    expected.update(expected_canonical(provider, last.get("path", ""), last.get("usage")))
    if status == "error":
        for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
            expected[k] = None
    return expected


def _split_model(model, header_scenario):
    model = model or "unknown-model"
    scenario = header_scenario
    if ":" in model:
        base, suffix = model.rsplit(":", 1)
        if scenario is None:
            scenario = suffix
        model = base
    return model, scenario


def _response_model(request_model, header):
    if header:
        return header
    if request_model in RESPONSE_MODELS:
        return RESPONSE_MODELS[request_model]
    return request_model + "-2025-01-01"


def _chunks(text, n=3):
    """Split text into n roughly equal pieces (for streaming)."""
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeProvider/1.0"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    # -- helpers -----------------------------------------------------------
    def _read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def _record(self, **kw):
        self.server.fake.returned.append(kw)

    def _send_json(self, status, body, extra_headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_sse(self, extra_headers=None):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

    def _sse(self, data, event=None):
        out = ""
        if event:
            out += f"event: {event}\n"
        out += "data: " + (data if isinstance(data, str) else json.dumps(data)) + "\n\n"
        self.wfile.write(out.encode())
        self.wfile.flush()

    def _maybe_error(self, provider, path, scenario, request_model, stream):
        err = _error_for(scenario, provider)
        if err is None:
            return False
        status, body = err
        headers = {"x-should-retry": "false"}
        if provider == "anthropic":
            headers["request-id"] = "req_fake_error_0001"
        elif provider == "gemini":
            headers = {}
        else:
            headers["x-request-id"] = "req_fake_error_0001"
        self._record(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=None,
            usage=None,
            stream=stream,
            status=status,
            error=body,
        )
        self._send_json(status, body, headers)
        return True

    # -- routing -----------------------------------------------------------
    def do_GET(self):
        self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._read_json()
        try:
            if path.startswith("/model/"):
                self._bedrock(path, body)
            elif path.startswith("/openai/v1/"):  # Groq's OpenAI-compatible surface
                self._oai_compat("groq", path, body)
            elif path in ("/v2/chat", "/v2/embed"):  # Cohere v2
                self._cohere(path, body)
            elif self.headers.get("X-Fake-Provider") == "mistral":  # same paths as OpenAI's
                self._oai_compat("mistral", path, body)
            elif ":" in path.rsplit("/", 1)[-1]:
                self._gemini(path, body)
            elif path.endswith("/chat/completions"):
                self._openai_chat(path, body)
            elif path.endswith("/embeddings"):
                self._openai_embeddings(path, body)
            elif path.endswith("/responses"):
                self._openai_responses(path, body)
            elif path.endswith("/messages"):
                self._anthropic_messages(path, body)
            else:
                self._send_json(404, {"error": {"message": f"unknown path {path}"}})
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- OpenAI --------------------------------------------------------------
    def _openai_chat(self, path, body):
        stream = bool(body.get("stream"))
        request_model, scenario = _split_model(body.get("model"), self.headers.get("X-Fake-Scenario"))
        scenario = scenario or ("chat-stream" if stream else "chat")
        if self._maybe_error("openai", path, scenario, request_model, stream):
            return
        model = _response_model(request_model, self.headers.get("X-Fake-Response-Model"))
        # an agent's tool round: a tool_calls answer first, a text answer once the tool's result is sent
        answered = scenario == "agent-tools" and any(m.get("role") == "tool" for m in body.get("messages") or [])
        usage = copy.deepcopy(OPENAI_USAGE.get("agent-tools-final" if answered else scenario, OPENAI_USAGE["chat"]))
        text = completion_text(scenario)
        if (body.get("response_format") or {}).get("type") in ("json_schema", "json_object"):
            text = json.dumps({"answer": text})  # structured output: an object, as the schema asks
        cid = "chatcmpl-fake" + uuid.uuid4().hex[:12]
        fp = "fp_fake0001"
        if not stream:
            message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            finish = "stop"
            if scenario == "chat-tools" or (scenario == "agent-tools" and not answered):
                call = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
                message.update(content=None, tool_calls=[{"id": "call_fake0001", "type": "function", "function": call}])
                finish = "tool_calls"
            resp = {
                "id": cid,
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "system_fingerprint": fp,
                "service_tier": "default",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
            }
            self._record(
                path=path,
                scenario=scenario,
                request_model=request_model,
                model=model,
                usage=usage,
                stream=False,
                status=200,
                error=None,
            )
            self._send_json(200, resp, {"x-request-id": "req_" + cid[-12:]})
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._start_sse({"x-request-id": "req_" + cid[-12:]})

        def chunk(delta, finish=None):
            c = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "system_fingerprint": fp,
                "service_tier": "default",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                c["usage"] = None
            return c

        self._sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        for piece in _chunks(text):
            self._sse(chunk({"content": piece}))
        self._sse(chunk({}, "stop"))
        if include_usage:
            self._sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "system_fingerprint": fp,
                    "service_tier": "default",
                    "choices": [],
                    "usage": usage,
                }
            )
        self._record(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=model,
            usage=usage if include_usage else None,
            stream=True,
            status=200,
            error=None,
        )
        self._sse("[DONE]")

    def _openai_embeddings(self, path, body):
        request_model, scenario = _split_model(body.get("model"), self.headers.get("X-Fake-Scenario"))
        scenario = scenario or "embeddings"
        if self._maybe_error("openai", path, scenario, request_model, False):
            return
        model = self.headers.get("X-Fake-Response-Model") or request_model
        inp = body.get("input")
        n = len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
        usage = copy.deepcopy(EMBEDDINGS_USAGE)
        resp = {
            "object": "list",
            "model": model,
            "usage": usage,
            "data": [
                {"object": "embedding", "index": i, "embedding": [0.0125 * (i + 1), -0.25, 0.5, 0.125]}
                for i in range(n)
            ],
        }
        self._record(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=model,
            usage=usage,
            stream=False,
            status=200,
            error=None,
        )
        self._send_json(200, resp, {"x-request-id": "req_fake_emb_0001"})

    def _openai_responses(self, path, body):
        stream = bool(body.get("stream"))
        request_model, scenario = _split_model(body.get("model"), self.headers.get("X-Fake-Scenario"))
        scenario = scenario or "responses"
        if self._maybe_error("openai", path, scenario, request_model, stream):
            return
        if stream:
            self._record(
                path=path,
                scenario=scenario,
                request_model=request_model,
                model=None,
                usage=None,
                stream=True,
                status=400,
                error="streaming not supported",
            )
            self._send_json(
                400,
                {
                    "error": {
                        "message": "fake provider: streaming /v1/responses not supported",
                        "type": "invalid_request_error",
                        "param": "stream",
                        "code": None,
                    }
                },
            )
            return
        model = _response_model(request_model, self.headers.get("X-Fake-Response-Model"))
        usage = copy.deepcopy(RESPONSES_USAGE)
        text = completion_text(scenario)
        rid = "resp_fake" + uuid.uuid4().hex[:16]
        resp = {
            "id": rid,
            "object": "response",
            "created_at": CREATED,
            "status": "completed",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": model,
            "output": [
                {"id": "rs_fake0001", "type": "reasoning", "summary": []},
                {
                    "id": "msg_fake0001",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
                },
            ],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": "medium", "summary": None},
            "service_tier": "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }
        self._record(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=model,
            usage=usage,
            stream=False,
            status=200,
            error=None,
        )
        self._send_json(200, resp, {"x-request-id": "req_" + rid[-12:]})

    # -- Mistral and Groq (OpenAI-like chat completions) -----------------------
    def _oai_compat(self, provider, path, body):
        """Mistral's /v1/chat/completions and /v1/embeddings; Groq's /openai/v1/... ones.

        Both echo the request model. Mistral streams `data: {chunk}` SSE whose last chunk
        (finish_reason set) carries `usage`; Groq streams OpenAI chunks with an `x_groq`
        object whose last one carries the usage (`x_groq.usage`), and a top-level `usage`
        only when `stream_options.include_usage` is asked for. Both end with `data: [DONE]`.
        """
        stream = bool(body.get("stream"))
        request_model = body.get("model") or "unknown-model"
        embeddings = path.endswith("/embeddings")
        scenario = self.headers.get("X-Fake-Scenario") or (
            "embeddings" if embeddings else "chat-stream" if stream else "chat"
        )
        if self._maybe_error(provider, path, scenario, request_model, stream):
            return
        model = self.headers.get("X-Fake-Response-Model") or request_model
        record = dict(path=path, scenario=scenario, request_model=request_model, model=model, stream=stream)
        if embeddings:
            usage = copy.deepcopy(MISTRAL_EMBEDDINGS_USAGE if provider == "mistral" else GROQ_EMBEDDINGS_USAGE)
            inp = body.get("inputs") if provider == "mistral" else body.get("input")
            n = len(inp) if isinstance(inp, list) else 1
            resp = {
                "id": "emb-fake" + uuid.uuid4().hex[:12],
                "object": "list",
                "model": model,
                "usage": usage,
                "data": [
                    {"object": "embedding", "index": i, "embedding": [0.0125 * (i + 1), -0.25, 0.5, 0.125]}
                    for i in range(n)
                ],
            }
            if provider == "groq":
                del resp["id"]
            self._record(**record, usage=usage, status=200, error=None)
            self._send_json(200, resp)
            return
        usage = copy.deepcopy((MISTRAL_USAGE if provider == "mistral" else GROQ_USAGE).get(scenario) or {})
        usage = usage or copy.deepcopy((MISTRAL_USAGE if provider == "mistral" else GROQ_USAGE)["chat"])
        text = completion_text(scenario)
        cid = uuid.uuid4().hex if provider == "mistral" else "chatcmpl-" + str(uuid.uuid4())
        tools = scenario == "chat-tools"
        tool_call = {
            "id": "D681PevKs" if provider == "mistral" else "call_fake" + uuid.uuid4().hex[:12],
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        if provider == "mistral":
            tool_call["index"] = 0
        finish = "tool_calls" if tools else "stop"
        if not stream:
            message = {"role": "assistant", "content": "" if tools else text, "tool_calls": None}
            if tools:
                message["tool_calls"] = [tool_call]
            if provider == "mistral":
                message["prefix"] = False
            resp = {
                "id": cid,
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            if provider == "groq":
                resp["choices"][0]["logprobs"] = None
                resp["system_fingerprint"] = "fp_fake0001"
                resp["x_groq"] = {"id": "req_fake" + uuid.uuid4().hex[:20]}
            self._record(**record, usage=usage, status=200, error=None)
            self._send_json(200, resp, {"x-request-id": "req_" + cid[-12:]})
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._start_sse({"x-request-id": "req_" + cid[-12:]})
        xid = "req_fake" + uuid.uuid4().hex[:20]

        def chunk(delta, finish_reason=None, last=False):
            c = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            if provider == "mistral":
                if last:
                    c["usage"] = usage
            else:
                c["system_fingerprint"] = "fp_fake0001"
                c["choices"][0]["logprobs"] = None
                c["x_groq"] = {"id": xid, "usage": usage} if last else {"id": xid}
            return c

        self._sse(chunk({"role": "assistant", "content": ""}))
        if tools:
            self._sse(chunk({"tool_calls": [tool_call]}))
            pieces = []
        else:
            pieces = _chunks(text)
        for piece in pieces[:-1]:
            self._sse(chunk({"content": piece}))
        last_delta = {"content": pieces[-1]} if pieces else {}
        self._record(**record, usage=usage, status=200, error=None)
        self._sse(chunk(last_delta, finish, last=True))
        if provider == "groq" and include_usage:
            tail = chunk({}, None)
            tail["choices"], tail["usage"] = [], usage
            self._sse(tail)
        self._sse("[DONE]")

    # -- Cohere v2 --------------------------------------------------------------
    def _cohere(self, path, body):
        """Cohere's /v2/chat (JSON, or with `stream: true` SSE events message-start,
        content-start, content-delta x3, content-end, message-end with
        delta.finish_reason and delta.usage) and /v2/embed (embeddings by type, usage in
        meta.billed_units). The v2 chat answer names no model: the record's model is None.
        """
        stream = bool(body.get("stream"))
        request_model = body.get("model") or "unknown-model"
        embed = path == "/v2/embed"
        scenario = self.headers.get("X-Fake-Scenario") or (
            "embeddings" if embed else "chat-stream" if stream else "chat"
        )
        if self._maybe_error("cohere", path, scenario, request_model, stream):
            return
        rid = str(uuid.uuid4())
        if embed:
            meta = copy.deepcopy(COHERE_EMBEDDINGS_META)
            texts = body.get("texts") or []
            resp = {
                "id": rid,
                "embeddings": {"float": [[0.0125 * (i + 1), -0.25, 0.5, 0.125] for i in range(max(len(texts), 1))]},
                "texts": texts,
                "meta": meta,
                "response_type": "embeddings_by_type",
            }
            self._record(
                path=path,
                scenario=scenario,
                request_model=request_model,
                model=None,
                usage=meta,
                stream=False,
                status=200,
                error=None,
            )
            self._send_json(200, resp, {"x-trial-endpoint-call-remaining": "999"})
            return
        usage = copy.deepcopy(COHERE_USAGE.get(scenario, COHERE_USAGE["chat"]))
        text = completion_text(scenario)
        tools = scenario == "chat-tools"
        tool_call = {
            "id": "get_weather_fake" + uuid.uuid4().hex[:8],
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
        finish = "TOOL_CALL" if tools else "COMPLETE"
        record = dict(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=None,
            usage=usage,
            stream=stream,
            status=200,
            error=None,
        )
        if not stream:
            if tools:
                message = {
                    "role": "assistant",
                    "tool_plan": "I will look up the weather in Paris.",
                    "tool_calls": [tool_call],
                }
            else:
                message = {"role": "assistant", "content": [{"type": "text", "text": text}]}
            resp = {"id": rid, "message": message, "finish_reason": finish, "usage": usage}
            self._record(**record)
            self._send_json(200, resp, {"x-trial-endpoint-call-remaining": "999"})
            return
        self._start_sse()
        self._sse(
            {
                "id": rid,
                "type": "message-start",
                "delta": {
                    "message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
                },
            },
            "message-start",
        )
        if tools:
            self._sse(
                {
                    "type": "tool-call-start",
                    "index": 0,
                    "delta": {
                        "message": {"tool_calls": {**tool_call, "function": {"name": "get_weather", "arguments": ""}}}
                    },
                },
                "tool-call-start",
            )
            self._sse(
                {
                    "type": "tool-call-delta",
                    "index": 0,
                    "delta": {"message": {"tool_calls": {"function": {"arguments": '{"city":"Paris"}'}}}},
                },
                "tool-call-delta",
            )
            self._sse({"type": "tool-call-end", "index": 0}, "tool-call-end")
        else:
            self._sse(
                {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
                "content-start",
            )
            for piece in _chunks(text):
                self._sse(
                    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}},
                    "content-delta",
                )
            self._sse({"type": "content-end", "index": 0}, "content-end")
        self._record(**record)
        self._sse({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}, "message-end")
        self._sse("[DONE]")

    # -- Anthropic -----------------------------------------------------------
    def _anthropic_messages(self, path, body):
        stream = bool(body.get("stream"))
        request_model, scenario = _split_model(body.get("model"), self.headers.get("X-Fake-Scenario"))
        scenario = scenario or ("chat-stream" if stream else "chat")
        if self._maybe_error("anthropic", path, scenario, request_model, stream):
            return
        model = _response_model(request_model, self.headers.get("X-Fake-Response-Model"))
        usage = copy.deepcopy(ANTHROPIC_USAGE.get(scenario, ANTHROPIC_USAGE["chat"]))
        text = completion_text(scenario)
        mid = "msg_fake" + uuid.uuid4().hex[:16]
        headers = {"request-id": "req_" + mid[-12:]}
        content = [{"type": "text", "text": text}]
        if "output_tokens_details" in usage:
            content.insert(
                0,
                {
                    "type": "thinking",
                    "thinking": f"Let me think. SECRET-THINKING-{scenario}-9c1e",
                    "signature": "ZmFrZS1zaWduYXR1cmU=",
                },
            )
        if not stream:
            resp = {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
            self._record(
                path=path,
                scenario=scenario,
                request_model=request_model,
                model=model,
                usage=usage,
                stream=False,
                status=200,
                error=None,
            )
            self._send_json(200, resp, headers)
            return
        self._start_sse(headers)
        start_usage = dict(usage)
        start_usage["output_tokens"] = 1
        self._sse(
            {
                "type": "message_start",
                "message": {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            "message_start",
        )
        self._sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )
        self._sse({"type": "ping"}, "ping")
        for piece in _chunks(text):
            self._sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                "content_block_delta",
            )
        self._sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        if scenario.endswith("-legacy"):
            delta_usage = {"output_tokens": usage["output_tokens"]}
        else:  # current API: cumulative usage, including the input side
            delta_usage = {
                k: usage[k]
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
                if k in usage
            }
            if "output_tokens_details" in usage:
                delta_usage["output_tokens_details"] = usage["output_tokens_details"]
        self._sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": delta_usage,
            },
            "message_delta",
        )
        self._record(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=model,
            usage=usage,
            stream=True,
            status=200,
            error=None,
        )
        self._sse({"type": "message_stop"}, "message_stop")

    # -- Gemini (generativelanguage.googleapis.com v1beta) ---------------------
    def _gemini(self, path, body):
        target, method = path.rsplit("/", 1)[-1].split(":", 1)
        request_model, scenario = target, self.headers.get("X-Fake-Scenario")
        if method in ("batchEmbedContents", "embedContent"):
            self._gemini_embed(path, method, request_model, scenario or "embeddings", body)
        elif method in ("generateContent", "streamGenerateContent"):
            self._gemini_generate(path, method == "streamGenerateContent", request_model, scenario, body)
        else:
            self._send_json(404, {"error": {"code": 404, "message": f"unknown method {method}", "status": "NOT_FOUND"}})

    def _gemini_generate(self, path, stream, request_model, scenario, body):
        scenario = scenario or ("chat-stream" if stream else "chat")
        if self._maybe_error("gemini", path, scenario, request_model, stream):
            return
        model = _response_model(request_model, self.headers.get("X-Fake-Response-Model"))
        usage = copy.deepcopy(GEMINI_USAGE.get(scenario, GEMINI_USAGE["chat"]))
        text = completion_text(scenario)
        rid = uuid.uuid4().hex[:22]
        gen = body.get("generationConfig") or {}
        thinking = gen.get("thinkingConfig") or gen.get("thinking_config") or {}
        parts = []
        # google-genai sends thinkingConfig's own keys in snake_case (the API's proto
        # JSON parser takes both spellings)
        if thinking.get("includeThoughts") or thinking.get("include_thoughts"):
            parts.append({"text": f"Let me think. SECRET-THINKING-{scenario}-9c1e", "thought": True})
        if scenario == "chat-tools":
            parts.append(
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "ZmFrZS1zaWduYXR1cmU=",
                }
            )
        else:
            parts.append({"text": text})

        def response(chunk_parts, final):
            cand = {"content": {"parts": chunk_parts, "role": "model"}, "index": 0}
            out = {"candidates": [cand]}
            if final:
                cand["finishReason"] = "STOP"
                out["usageMetadata"] = usage
            out["modelVersion"] = model
            out["responseId"] = rid
            return out

        record = dict(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=model,
            usage=usage,
            stream=stream,
            status=200,
            error=None,
        )
        if not stream:
            self._record(**record)
            self._send_json(200, response(parts, True))
            return
        self._start_sse()
        # one chunk per thought/functionCall part; the answer text in three chunks
        pieces = [[p] for p in parts if "text" not in p or p.get("thought")]
        if "text" in parts[-1] and not parts[-1].get("thought"):
            pieces += [[{"text": t}] for t in _chunks(text)]
        for piece in pieces[:-1]:
            self._sse(response(piece, False))
        self._record(**record)
        self._sse(response(pieces[-1], True))

    def _gemini_embed(self, path, method, request_model, scenario, body):
        if self._maybe_error("gemini", path, scenario, request_model, False):
            return
        usage = copy.deepcopy(GEMINI_EMBEDDINGS_USAGE)
        n = len(body.get("requests") or []) if method == "batchEmbedContents" else 1
        vectors = [{"values": [0.0125 * (i + 1), -0.25, 0.5, 0.125]} for i in range(max(n, 1))]
        resp = {"embeddings": vectors} if method == "batchEmbedContents" else {"embedding": vectors[0]}
        resp["usageMetadata"] = usage
        # no modelVersion on embeddings: the model is the one asked for
        self._record(
            path=path,
            scenario=scenario,
            request_model=request_model,
            model=request_model,
            usage=usage,
            stream=False,
            status=200,
            error=None,
        )
        self._send_json(200, resp)

    # -- AWS Bedrock Runtime (boto3 bedrock-runtime) ----------------------------
    def _bedrock_send(self, status, body, content_type="application/json", extra_headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _bedrock(self, path, body):
        from urllib.parse import unquote

        parts = path.split("/")  # "", "model", "<modelId>", "<operation>"
        request_model, operation = unquote(parts[2]), parts[-1]
        stream = operation == "converse-stream"
        scenario = self.headers.get("X-Fake-Scenario") or {
            "converse": "converse",
            "converse-stream": "converse-stream",
            "invoke": "invoke",
        }.get(operation, "converse")
        record = dict(path=path, scenario=scenario, request_model=request_model, stream=stream)
        if scenario.startswith("chat-error") or scenario.startswith("error"):
            code = scenario.rsplit("-", 1)[-1]
            status, name, message = _BEDROCK_ERRORS.get(code, _BEDROCK_ERRORS["400"])
            error = {"message": message}
            self._record(**record, model=None, usage=None, status=status, error=error)
            errortype = f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"
            self._bedrock_send(status, error, extra_headers={"x-amzn-ErrorType": errortype})
            return
        if operation not in ("converse", "converse-stream", "invoke"):
            self._bedrock_send(404, {"message": f"unknown operation {operation}"})
            return
        text = completion_text(scenario)
        if operation == "invoke":
            usage = copy.deepcopy(BEDROCK_INVOKE_USAGE)
            model = BEDROCK_INVOKE_MODELS.get(request_model, request_model)
            resp = {
                "id": "msg_bdrk_" + uuid.uuid4().hex[:24],
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            }
            self._record(**record, model=model, usage=usage, status=200, error=None)
            self._bedrock_send(
                200,
                resp,
                extra_headers={
                    "X-Amzn-Bedrock-Invocation-Latency": "812",
                    "X-Amzn-Bedrock-Input-Token-Count": str(usage["input_tokens"]),
                    "X-Amzn-Bedrock-Output-Token-Count": str(usage["output_tokens"]),
                    "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": str(usage["cache_read_input_tokens"]),
                    "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": str(usage["cache_creation_input_tokens"]),
                },
            )
            return
        usage = copy.deepcopy(BEDROCK_USAGE.get(scenario, BEDROCK_USAGE["converse"]))
        # Converse names no model in its answer (nothing says which version an
        # inference profile routed to): the record has none either
        model = None
        tools = scenario == "converse-tools"
        tool_use = {
            "toolUseId": "tooluse_fake" + uuid.uuid4().hex[:12],
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        if not stream:
            content = [{"toolUse": tool_use}] if tools else [{"text": text}]
            resp = {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": "tool_use" if tools else "end_turn",
                "usage": usage,
                "metrics": {"latencyMs": 734},
            }
            self._record(**record, model=model, usage=usage, status=200, error=None)
            self._bedrock_send(200, resp)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"  # Bedrock's "p" padding field

        def event(kind, payload):
            self.wfile.write(_eventstream_frame(kind, {**payload, "p": pad[: 5 + len(kind)]}))
            self.wfile.flush()

        event("messageStart", {"role": "assistant"})
        if tools:
            start = {"toolUse": {"toolUseId": tool_use["toolUseId"], "name": tool_use["name"]}}
            event("contentBlockStart", {"start": start, "contentBlockIndex": 0})
            event("contentBlockDelta", {"delta": {"toolUse": {"input": '{"city": "Paris"}'}}, "contentBlockIndex": 0})
        else:
            for piece in _chunks(text):
                event("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0})
        event("contentBlockStop", {"contentBlockIndex": 0})
        event("messageStop", {"stopReason": "tool_use" if tools else "end_turn"})
        self._record(**record, model=model, usage=usage, status=200, error=None)
        event("metadata", {"usage": usage, "metrics": {"latencyMs": 655}})


class FakeProvider:
    """Run the fake provider on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.returned: list[dict] = []
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeProvider:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def clear(self) -> None:
        self.returned.clear()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # manual poking: python tests/fakeprovider.py
    with FakeProvider() as fp:
        print(fp.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
