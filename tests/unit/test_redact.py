"""Prompt and completion text becomes a hash and is dropped."""

from __future__ import annotations

import pytest

from collector.records import SpanEvent
from collector.redact import redact

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
    ],
)
def test_same_prompt_same_hash_whatever_the_dialect_and_no_text_left(attrs: dict) -> None:
    clean, _events, prompt_hash = redact({**attrs, "gen_ai.request.model": "m"}, [])
    assert clean == {"gen_ai.request.model": "m"}
    reference = redact({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": PROMPT}, [])[2]
    assert prompt_hash == reference


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
