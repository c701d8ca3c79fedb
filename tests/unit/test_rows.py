"""The audit attributes' JSON text (collector/store/rows.py: attributes_json)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from breakeven.collector.store.rows import attributes_json


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param({}, {}, id="empty"),
        pytest.param(
            {"gen_ai.request.model": "gpt-4o", "server.port": 443, "gen_ai.request.temperature": 0.7, "stream": True},
            {"gen_ai.request.model": "gpt-4o", "server.port": 443, "gen_ai.request.temperature": 0.7, "stream": True},
            id="scalars",
        ),
        pytest.param({"app.ünïcode": "日本語 ✓"}, {"app.ünïcode": "日本語 ✓"}, id="non-ASCII kept as it is"),
        pytest.param({"a": [1, "x", None], "b": {"k": [2.5]}}, {"a": [1, "x", None], "b": {"k": [2.5]}}, id="nested"),
        pytest.param({"nan": math.nan, "inf": math.inf, "-inf": -math.inf}, {"nan": None, "inf": None, "-inf": None},
                     id="no number JSON cannot hold"),
    ],
)  # fmt: skip
def test_attributes_become_json_text(attributes: dict[str, Any], expected: dict[str, Any]) -> None:
    text = attributes_json(attributes)
    assert json.loads(text) == expected
    assert list(json.loads(text)) == list(attributes)  # key order kept
    assert "\\u" not in text  # UTF-8 as it is, not escaped


def test_what_orjson_refuses_is_written_by_json() -> None:
    attributes = {"broken": "half a pair \ud800", "port": 443}
    assert attributes_json(attributes) == json.dumps(attributes, ensure_ascii=False)


def test_span_rows_are_the_same_with_attributes_made_json_in_a_decode_process() -> None:
    from dataclasses import replace

    from breakeven.collector.store.rows import span_columns
    from tests.spans import llm

    attributes = {"gen_ai.request.model": "gpt-4o", "server.port": 443}
    here = [llm("a1", attributes=attributes), llm("b2", "a1", attributes={})]
    handed_over = [replace(s, attributes={}, attributes_json=attributes_json(s.attributes)) for s in here]
    assert span_columns(handed_over, 7) == span_columns(here, 7)
    assert span_columns([], 7) == {name: [] for name in span_columns(here, 7)}


def test_llm_spans_survive_the_hand_off_between_processes() -> None:
    import pickle

    from tests.spans import llm

    span = llm("a1", attributes={"k": [1, "x"]}, conventions=("otel-genai",), response_id="r-1", process="host:1")
    span.attributes_json = '{"k":[1,"x"]}'
    back = pickle.loads(pickle.dumps(span, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == span
    assert back is not span
