"""Prompt and completion text becomes a hash and is dropped."""

from __future__ import annotations

import json

import pytest

from breakeven.collector.normalize.redact import hash_messages, messages_from_log, redact
from breakeven.collector.records import SpanEvent

PROMPT = "SECRET-PROMPT-unit"


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param(
            {
                "gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"{PROMPT}"}}]}}]',
                "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"out"}]}]',
            },
            id="otel genai structured messages",
        ),
        pytest.param(
            {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": PROMPT, "gen_ai.completion.0.content": "out"},
            id="openllmetry flattened",
        ),
        pytest.param(
            {
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": PROMPT,
                "llm.output_messages.0.message.content": "out",
                "input.value": "{}",
                "output.value": "out",
            },
            id="openinference flattened",
        ),
        pytest.param(
            {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": json.dumps([{"type": "text", "text": PROMPT}])},
            id="openllmetry flattened, content parts as JSON (cohere embed)",
        ),
        pytest.param(
            {
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "content": [{"text": PROMPT}, {"cachePoint": {"type": "default"}}]}]
                )
            },
            id="a Bedrock cache point among the parts is no text",
        ),
    ],
)
def test_same_prompt_same_hash_whatever_the_dialect_and_no_text_left(attrs: dict) -> None:
    clean, _events, prompt_hash = redact({**attrs, "gen_ai.request.model": "m"}, [])
    assert clean == {"gen_ai.request.model": "m"}
    reference = redact({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": PROMPT}, [])[2]
    assert prompt_hash == reference


def test_a_developer_message_hashes_as_the_system_prompt() -> None:
    """o-series models take the system prompt as `developer` (langchain-openai sends it so)."""
    assert hash_messages([["developer", "Be terse."], ["user", PROMPT]]) == hash_messages(
        [["system", "Be terse."], ["user", PROMPT]]
    )


def test_content_events_are_emptied_and_hashed() -> None:
    events = [
        SpanEvent("gen_ai.content.prompt", 1, {"gen_ai.prompt": PROMPT}),
        SpanEvent("gen_ai.content.completion", 2, {"gen_ai.completion": "out"}),
        SpanEvent("exception", 3, {"exception.type": "X"}),
    ]
    clean, clean_events, prompt_hash = redact({}, events)
    assert prompt_hash is not None
    assert [e.attributes for e in clean_events] == [{}, {}, {"exception.type": "X"}]
    assert PROMPT not in repr(clean_events) + repr(clean)


def test_no_content_no_hash() -> None:
    assert redact({"gen_ai.request.model": "m"}, [])[2] is None


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param(
            {"gen_ai.input.messages": "[" * 900 + "]" * 900}, id="JSON 900 deep (RecursionError, found by fuzzing)"
        ),
        pytest.param({"gen_ai.input.messages": "[" * 5000}, id="JSON opened 5000 deep"),
        pytest.param({"gen_ai.prompt": '{"a":' * 3000}, id="objects opened 3000 deep"),
        pytest.param(
            {"gen_ai.prompt." + "9" * 4400 + ".content": "x"},
            id="a 4400-digit message index, past int()'s limit (found by fuzzing)",
        ),
    ],
)
def test_hostile_content_is_dropped_without_an_exception(attrs: dict) -> None:
    clean, _events, _hash = redact({**attrs, "gen_ai.request.model": "m"}, [])
    assert clean == {"gen_ai.request.model": "m"}


def test_a_log_record_with_content_nested_too_deep_gives_no_messages() -> None:
    deep: object = "x"
    for _ in range(900):
        deep = [deep]
    assert messages_from_log("gen_ai.user.message", deep, {}) == []
    assert messages_from_log("gen_ai.user.message", "[" * 900 + "]" * 900, {}) == []


def test_a_redaction_placeholder_is_not_a_prompt() -> None:
    from breakeven.collector.normalize.redact import prompt_messages

    assert prompt_messages({"input.value": "__REDACTED__"}) == []
    assert prompt_messages({"input.value": ["not", "hashable", {"as": "a set member"}]}) != []


EMBEDDED = "SECRET-PROMPT-embed"
_REQUEST = {"model": "text-embedding-3-small", "encoding_format": "base64"}


def _openinference_embedding(**attrs: object) -> dict:
    return {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small", **attrs}


@pytest.mark.parametrize(
    ("attrs", "inputs"),
    [
        pytest.param(
            {"gen_ai.input.messages": f'[{{"role":"user","parts":[{{"type":"text","content":"{EMBEDDED}"}}]}}]'},
            [EMBEDDED],
            id="openllmetry: one user message per input (the reference)",
        ),
        pytest.param(
            {"gen_ai.prompt.0.content": EMBEDDED, "gen_ai.prompt.1.content": "two"},
            [EMBEDDED, "two"],
            id="older openllmetry: flattened inputs without roles",
        ),
        pytest.param(
            _openinference_embedding(
                **{
                    "embedding.embeddings.0.embedding.text": EMBEDDED,
                    "input.value": json.dumps({**_REQUEST, "input": EMBEDDED}),
                }
            ),
            [EMBEDDED],
            id="openinference: the embedding texts, not the request JSON",
        ),
        pytest.param(
            _openinference_embedding(
                **{
                    "embedding.embeddings.1.embedding.text": "two",
                    "embedding.embeddings.0.embedding.text": EMBEDDED,
                    "embedding.embeddings.0.embedding.vector": [0.5, 0.25],
                }
            ),
            [EMBEDDED, "two"],
            id="openinference: several texts, in index order",
        ),
        pytest.param(
            _openinference_embedding(**{"input.value": json.dumps({**_REQUEST, "input": EMBEDDED})}),
            [EMBEDDED],
            id="openinference input.value only: its input field, model and format left out",
        ),
        pytest.param(
            _openinference_embedding(**{"input.value": json.dumps({"input": [EMBEDDED, "two"], "model": "other"})}),
            [EMBEDDED, "two"],
            id="openinference input.value only: a list of inputs, whatever the model",
        ),
        pytest.param(
            _openinference_embedding(
                **{
                    "embedding.embeddings.0.embedding.text": "__REDACTED__",
                    "input.value": json.dumps({**_REQUEST, "input": EMBEDDED}),
                }
            ),
            [EMBEDDED],
            id="openinference texts hidden, request not: the request's input",
        ),
    ],
)
def test_embeddings_input_hashes_as_its_texts_whichever_dialect(attrs: dict, inputs: list[str]) -> None:
    clean, _events, prompt_hash = redact({**attrs, "gen_ai.request.model": "m"}, [])
    assert prompt_hash == hash_messages([["user", text] for text in inputs])
    assert EMBEDDED not in json.dumps(clean)
    assert not any(key.startswith(("embedding.embeddings.", "input.")) for key in clean)


@pytest.mark.parametrize(
    ("attrs", "messages"),
    [
        pytest.param(
            _openinference_embedding(**{"input.value": json.dumps({**_REQUEST, "input": [101, 7, 42]})}),
            [["user", "[101,7,42]"]],
            id="one token-id input: its ids stand in for the text",
        ),
        pytest.param(
            _openinference_embedding(**{"input.value": json.dumps({**_REQUEST, "input": [[1, 2], [3]]})}),
            [["user", "[1,2]"], ["user", "[3]"]],
            id="several token-id inputs: one message each",
        ),
        pytest.param(
            _openinference_embedding(**{"input.value": json.dumps({**_REQUEST, "input": []})}),
            [],
            id="no input: no prompt",
        ),
        pytest.param(
            _openinference_embedding(**{"input.value": "plain text"}), [["user", "plain text"]], id="plain text"
        ),
        pytest.param(
            _openinference_embedding(**{"input.value": "__REDACTED__"}), [], id="request hidden: the placeholder"
        ),
        pytest.param(
            _openinference_embedding(
                **{"embedding.embeddings.0.embedding.text": "__REDACTED__", "input.value": "__REDACTED__"}
            ),
            [],
            id="texts and request hidden: placeholders only",
        ),
        pytest.param(
            {"llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "__REDACTED__"},
            [],
            id="openinference message text hidden: a placeholder is no prompt",
        ),
        pytest.param(
            {"input.value": json.dumps({**_REQUEST, "input": EMBEDDED})},
            [["user", json.dumps({**_REQUEST, "input": EMBEDDED}, sort_keys=True)]],
            id="not an embeddings span: input.value read as any content",
        ),
    ],
)
def test_embeddings_request_inputs(attrs: dict, messages: list[list[str]]) -> None:
    from breakeven.collector.normalize.redact import prompt_messages

    assert prompt_messages(attrs) == messages
