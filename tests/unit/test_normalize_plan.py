"""The plan memo and the value memos change nothing: they read what the plain lookups read.

The spans are the real emitters' captures (tests/fixtures/emitters/), as sent and with
their values emptied, set to None or their names reordered, so a plan made from one span
is reused for another whose values differ.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from breakeven.collector import memo
from breakeven.collector.config.settings import MAPPABLE_FIELDS, Settings, load_settings
from breakeven.collector.ingest.decode import PROTOBUF, decode_trace_body
from breakeven.collector.normalize import _mapped_texts, mapped, normalize_span, plan, quantization_from_model
from breakeven.collector.normalize import conventions as c
from breakeven.collector.normalize.keep import is_metadata_key
from breakeven.collector.normalize.redact import content_hash, redact
from breakeven.collector.providers import backend_class, remembered_backend_class
from breakeven.collector.records import DecodedSpan, LlmSpan
from tests.spans import decoded

SETTINGS = load_settings({}, environ={})
MAPPED = dataclasses.replace(
    SETTINGS,
    attributes={"team": ("app.team",), "service": ("app.name",), "quantization": ("app.quant",)},
    backend_classes={"api.openai.com": "managed", "anthropic": "self_hosted"},
)
CAPTURES = sorted((Path(__file__).parents[1] / "fixtures" / "emitters").glob("*/*.json"))


def _capture_spans() -> list[DecodedSpan]:
    spans = []
    for path in CAPTURES:
        for body in json.loads(path.read_text())["traces"]:
            spans.extend(decode_trace_body(base64.b64decode(body), PROTOBUF).spans)
    return spans


SPANS = _capture_spans()


def _with(span: DecodedSpan, attributes: dict[str, Any]) -> DecodedSpan:
    return dataclasses.replace(span, attributes=attributes)


def _first_candidates_emptied(span: DecodedSpan) -> DecodedSpan:
    """The first present name of every precedence list set to "": first() must move on."""
    attrs = dict(span.attributes)
    for names in plan.READS:
        present = [name for name in names if name in attrs]
        if present:
            attrs[present[0]] = ""
    return _with(span, attrs)


VARIANTS: dict[str, Callable[[DecodedSpan], DecodedSpan]] = {
    "as sent": lambda span: span,
    "first candidates empty": _first_candidates_emptied,
    "every value empty": lambda span: _with(span, dict.fromkeys(span.attributes, "")),
    "every value None": lambda span: _with(span, dict.fromkeys(span.attributes)),
    "names reversed": lambda span: _with(span, dict(reversed(span.attributes.items()))),
    "resource values empty": lambda span: dataclasses.replace(span, resource=dict.fromkeys(span.resource, "")),
}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@pytest.mark.parametrize("settings", [SETTINGS, MAPPED], ids=["default settings", "mapped settings"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_reused_plan_reads_what_the_plain_lookups_read(variant: str, settings: Settings) -> None:
    assert SPANS, "no emitter captures"
    for original in SPANS:
        plan.plan_of(original, settings)  # the memo holds the original's plan
        span = VARIANTS[variant](original)
        found = plan.plan_of(span, settings)
        assert found == plan.make_plan(span, settings)
        attrs, _events, prompt_hash = redact(span.attributes, span.events)
        assert found.dialects == c.detect(span)
        # The audit copy: what redaction keeps, less the names the fail-closed rule summarizes.
        verbatim = {k: v for k, v in attrs.items() if k not in found.summarized}
        assert (span.attributes if found.kept is None else {k: span.attributes[k] for k in found.kept}) == verbatim
        assert set(found.summarized) == {
            k for k in attrs if k not in plan.read_names(settings) and not is_metadata_key(k)
        }
        if found.may_carry_prompt or span.events:
            assert content_hash(span.attributes, span.events, found.flags) == prompt_hash
        else:
            assert prompt_hash is None
        expected = [
            c.first(span.attributes if field in ("ttft_seconds", "streaming") else attrs, names)
            for field, names in zip(plan.Reads._fields, plan.READS, strict=True)
        ]
        assert c.firsts(span.attributes, found.reads) == expected
        assert _mapped_texts(span, found) == [_text(mapped(span, field, settings)) for field in MAPPABLE_FIELDS]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_normalize_gives_the_same_answer_with_the_memo_warm_or_cold(variant: str) -> None:
    spans = [VARIANTS[variant](span) for span in SPANS]
    for span in SPANS:
        normalize_span(span, MAPPED)  # warm: the memo holds the originals' plans
    warm = [normalize_span(span, MAPPED) for span in spans]
    cold = []
    for span in spans:
        plan._PLANS.clear()
        cold.append(normalize_span(span, MAPPED))
    assert cold == warm


def test_the_plan_memo_is_bounded_in_plans_and_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan, "_PLANS_MAX", 8)
    monkeypatch.setattr(plan, "_PLAN_CHARS_MAX", 64 * 200)
    plan._PLANS.clear()
    plan._plan_chars[0] = 0
    for i in range(50):
        span = decoded({"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1, f"x{i}": 1})
        result = normalize_span(span, SETTINGS)
        assert isinstance(result, LlmSpan)
        assert result.input_tokens == 1
        assert len(plan._PLANS) <= 8
    for i in range(50):
        plan.plan_of(decoded({f"{i:03d}" + "n" * 150: 1}), SETTINGS)
        assert plan._plan_chars[0] <= 64 * 200
    before = dict(plan._PLANS)
    plan.plan_of(decoded({"n" * 220: 1}), SETTINGS)  # a key past 200 characters is never kept
    assert before == plan._PLANS


def test_a_span_with_a_name_past_long_key_chars_gets_a_plan_that_is_not_kept() -> None:
    attrs = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1, "k" * 300: 1}
    small = dataclasses.replace(SETTINGS, max_attribute_value_bytes=299)
    assert normalize_span(decoded(attrs), small).reason == "attribute_too_long"  # type: ignore[union-attr]
    assert isinstance(normalize_span(decoded(attrs), SETTINGS), LlmSpan)
    assert (tuple(attrs), ("service.name",)) not in {key[:2] for key in plan._PLANS}


def test_plans_differ_by_settings_and_by_the_resource_values_detect_reads() -> None:
    attrs = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 1, "app.team": "a", "team": "b"}
    assert normalize_span(decoded(attrs), SETTINGS).team == "b"  # type: ignore[union-attr]
    assert normalize_span(decoded(attrs), MAPPED).team == "a"  # type: ignore[union-attr]
    plain = normalize_span(decoded(attrs, resource={"service.name": "api"}), SETTINGS)
    engine = normalize_span(decoded(attrs, resource={"service.name": "sglang-router"}), SETTINGS)
    assert plain.conventions == ()
    assert not plain.is_engine
    assert engine.conventions == (c.SGLANG,)
    assert engine.is_engine


@pytest.mark.parametrize(
    "resource",
    [
        {},
        {"service.name": "SGLang-router", "telemetry.sdk.name": "OpenLIT"},
        {"service.name": "text-generation-inference"},
        {"service.name": ["sglang"], "telemetry.sdk.name": 7},
        {"service.name": None},
    ],
)
def test_resource_signals_memo_answers_as_the_plain_reading(resource: dict[str, Any]) -> None:
    sdk = str(resource.get("telemetry.sdk.name", "")).lower()
    service = str(resource.get("service.name", "")).lower()
    expected = (sdk == "openlit", service.startswith("sglang"), service.startswith("text-generation-inference"))
    assert c.resource_signals(resource) == expected
    assert c.resource_signals(resource) == expected  # from the memo, when the values are text


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([("a", "b"), ("c",), ()], ["x", None, None]),
        ([("empty", "a"), ("none", "c", "b")], ["x", "y"]),
        ([("empty", "none")], [None]),
        ([("zero", "a"), ("false", "a")], [0, False]),
    ],
)
def test_firsts_is_first_of_each(fields: list[tuple[str, ...]], expected: list[Any]) -> None:
    attrs = {"a": "x", "b": "y", "empty": "", "none": None, "zero": 0, "false": False}
    assert c.firsts(attrs, fields) == expected == [c.first(attrs, names) for names in fields]


@pytest.mark.parametrize(
    "args",
    [
        ("openai", "api.openai.com", 443, None, "gpt-4o", False),
        ("openai", "10.0.0.5", 8000, "10.0.0.5:8000", "llama", False),
        ("aws.bedrock", None, None, None, "anthropic.claude-3", False),
        ("aws.bedrock", None, None, None, "meta.llama3", False),
        ("anthropic", None, None, None, "claude", False),
        (None, None, None, "svc", None, True),
        ("together", "api.together.xyz", None, None, "m", False),
    ],
)
@pytest.mark.parametrize("configured", [{}, {"api.openai.com": "managed", "anthropic": "self_hosted"}])
def test_remembered_backend_class_is_backend_class(args: tuple[Any, ...], configured: dict[str, str]) -> None:
    assert remembered_backend_class(*args, configured) == backend_class(*args, configured)
    assert remembered_backend_class(*args, configured) == backend_class(*args, configured)


def test_value_memos_are_bounded_and_keep_no_long_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from breakeven.collector.normalize import _QUANTIZATION_OF

    monkeypatch.setattr(memo, "MEMO_ENTRIES", 10)
    for i in range(100):
        assert quantization_from_model(f"model-{i}-fp8") == "fp8"
        assert len(_QUANTIZATION_OF) <= 10
    long_name = "m" * (memo.MEMO_KEY_CHARS + 1) + "-awq"
    assert quantization_from_model(long_name) == "awq"
    assert long_name not in _QUANTIZATION_OF
