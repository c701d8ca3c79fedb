"""What the audit copy keeps of each attribute: verbatim, type and size, or nothing (fail closed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from breakeven.collector.config.settings import SettingsError, load_settings
from breakeven.collector.normalize import normalize_span
from breakeven.collector.normalize.keep import audit_names, summary
from breakeven.collector.normalize.plan import read_names
from breakeven.collector.normalize.redact import hash_messages
from breakeven.collector.records import LlmSpan
from tests.otel import chat_attributes
from tests.spans import decoded

DEFAULT = load_settings({}, environ={})
READ = read_names(DEFAULT)


@pytest.mark.parametrize(
    ("name", "where"),
    [
        pytest.param("gen_ai.request.model", "kept", id="a name the ledger reads"),
        pytest.param("gen_ai.usage.input_tokens", "kept", id="a usage count"),
        pytest.param("breakeven.team", "kept", id="the product's own key"),
        pytest.param("gen_ai.response.finish_reasons", "kept", id="an OTel GenAI metadata key"),
        pytest.param("llm.token_count.prompt", "kept", id="OpenInference's token count"),
        pytest.param("ai.model.id", "kept", id="the Vercel AI SDK's model"),
        pytest.param("http.response.status_code", "kept", id="an OTel general convention"),
        pytest.param("llm.invocation_parameters", "kept", id="the invocation parameters the ledger reads"),
        pytest.param("app.user_question", "summarized", id="an in-house key"),
        pytest.param("langchain.prompt", "summarized", id="a dialect breakeven does not know"),
        pytest.param("traceloop.association.properties.customer", "summarized", id="a user-set association"),
        pytest.param("llm.headers", "summarized", id="request headers"),
        pytest.param("gen_ai.tool.description", "summarized", id="a tool's description"),
        pytest.param("url.full", "summarized", id="a URL, which may carry a key in its query"),
        pytest.param("gen_ai.input.messages", "dropped", id="a prompt"),
        pytest.param("ai.prompt.messages", "dropped", id="the Vercel AI SDK's messages"),
        pytest.param("ai.response.text", "dropped", id="the Vercel AI SDK's answer"),
        pytest.param("ai.toolCall.args", "dropped", id="a tool call's arguments"),
        pytest.param("input.value", "dropped", id="OpenInference's input"),
    ],
)
def test_where_each_name_goes(name: str, where: str) -> None:
    kept, summarized = audit_names([name], READ, ())
    assert ("kept" if kept else "summarized" if summarized else "dropped") == where


@pytest.mark.parametrize(
    ("patterns", "name", "kept"),
    [
        pytest.param(("app.tenant",), "app.tenant", True, id="an exact name"),
        pytest.param(("myco.*",), "myco.region.zone", True, id="a glob"),
        pytest.param(("myco.*",), "mycompany.region", False, id="a glob's prefix is not a match"),
        pytest.param(("app.?d",), "app.id", True, id="one character"),
        pytest.param(("*",), "gen_ai.input.messages", False, id="content is never kept, whatever the list says"),
    ],
)
def test_keep_attributes(patterns: tuple[str, ...], name: str, kept: bool) -> None:
    assert bool(audit_names([name], READ, patterns)[0]) == kept


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("What is our refund policy?", {"redacted": "string", "size": 26}, id="text"),
        pytest.param("", {"redacted": "string", "size": 0}, id="empty text"),
        pytest.param(["a", "b"], {"redacted": "array", "size": 2}, id="an array"),
        pytest.param({"k": "v"}, {"redacted": "kvlist", "size": 1}, id="a key-value list"),
        pytest.param(3, {"redacted": "int"}, id="an integer"),
        pytest.param(0.5, {"redacted": "double"}, id="a double"),
        pytest.param(True, {"redacted": "bool"}, id="a boolean"),
    ],
)
def test_summary_is_type_and_size(value: Any, shown: dict[str, Any]) -> None:
    assert summary(value) == shown


def test_a_span_keeps_known_names_and_summarizes_the_rest() -> None:
    attrs = chat_attributes(**{"app.user_question": "refund policy?", "app.tenant": "acme", "gen_ai.prompt": "hi"})
    settings = load_settings({"privacy": {"keep_attributes": ["app.tenant"]}}, environ={})
    span = normalize_span(decoded(attrs), settings)
    assert isinstance(span, LlmSpan)
    assert span.attributes["app.tenant"] == "acme"
    assert span.attributes["app.user_question"] == {"redacted": "string", "size": 14}
    assert "gen_ai.prompt" not in span.attributes
    assert span.attributes["gen_ai.request.model"] == attrs["gen_ai.request.model"]
    assert "refund" not in json.dumps(span.attributes)


@pytest.mark.parametrize(
    ("attrs", "messages"),
    [
        pytest.param(
            {"ai.prompt": json.dumps({"system": "Be brief.", "prompt": "hi"})},
            [["system", "Be brief."], ["user", "hi"]],
            id="the outer span's prompt",
        ),
        pytest.param(
            {"ai.prompt.messages": json.dumps([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            ])},
            [["system", "Be brief."], ["user", "hi"]],
            id="the inner span's messages: the same hash as its outer span",
        ),
        pytest.param(
            {"ai.prompt": json.dumps({"system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]})},
            [["system", "Be brief."], ["user", "hi"]],
            id="the outer span's messages",
        ),
        pytest.param({"ai.values": [json.dumps("a"), json.dumps("b")]}, [["user", "a"], ["user", "b"]], id="embedMany"),
        pytest.param({"ai.value": json.dumps("a")}, [["user", "a"]], id="embed"),
    ],
)  # fmt: skip
def test_vercel_ai_sdk_prompts_are_hashed(attrs: dict[str, Any], messages: list[list[str]]) -> None:
    span = normalize_span(decoded(chat_attributes(**attrs)), DEFAULT)
    assert isinstance(span, LlmSpan)
    assert span.prompt_hash == hash_messages(messages)
    assert not set(attrs) & set(span.attributes)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param({"keep": ["a"]}, "privacy.keep: unknown key", id="an unknown key"),
        pytest.param({"keep_attributes": "app.*"}, "privacy.keep_attributes: expected a list", id="not a list"),
        pytest.param(
            {"keep_attributes": ["ok", ""]},
            "privacy.keep_attributes[1]: expected a non-empty string",
            id="an empty name",
        ),
        pytest.param([], "privacy: expected a table", id="not a table"),
    ],
)
def test_bad_privacy_config_names_the_key(raw: Any, error: str) -> None:
    with pytest.raises(SettingsError, match=error.replace("[", r"\[").replace("]", r"\]")):
        load_settings({"privacy": raw}, environ={})
