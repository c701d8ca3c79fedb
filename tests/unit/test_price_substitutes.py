"""collector/price/substitutes.py: which traffic a box may take, table-driven."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import load_settings
from breakeven.collector.price.substitutes import Substitute, model_family, move, same_model

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
HAIKU_TO_LLAMA = Substitute("claude-haiku-*", LLAMA, provider="anthropic", service="support", share=Decimal("0.6"),
                            evidence="triage eval")  # fmt: skip
FP8_ONLY = Substitute("gpt-4o-mini*", LLAMA, to_quantization="FP8", evidence="fp8 eval")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", LLAMA, True),  # Together's serving of the same weights
        ("meta-llama/Llama-3.3-70B-Instruct-FP8", LLAMA, True),
        ("accounts/fireworks/models/llama-v3p3-70b-instruct", LLAMA, False),  # another spelling: declare it
        ("meta-llama/Llama-3.1-70B-Instruct", LLAMA, False),
        ("claude-haiku-4-5", LLAMA, False),
        (None, LLAMA, False),
    ],
)
def test_same_model(a: str | None, b: str, same: bool) -> None:
    assert same_model(a, b) is same


def test_model_family_drops_org_case_and_serving_suffixes() -> None:
    assert model_family("meta-llama/Llama-3.3-70B-Instruct-Turbo") == "llama3370binstruct"


# (provider, model, service, box model, box quantization, box models, substitutes) -> (model, share, evidence) | None
CASES = [
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "docs", LLAMA, "fp8", (), (), (LLAMA, "1", "the same model, self-hosted")),
    ("anthropic", "claude-haiku-4-5", "support", LLAMA, None, (), (HAIKU_TO_LLAMA,), (LLAMA, "0.6", "triage eval")),
    ("anthropic", "claude-haiku-4-5", "billing", LLAMA, None, (), (HAIKU_TO_LLAMA,), None),  # another service
    ("openai", "claude-haiku-4-5", "support", LLAMA, None, (), (HAIKU_TO_LLAMA,), None),  # another provider
    ("anthropic", "claude-sonnet-4-5", "support", LLAMA, None, (), (HAIKU_TO_LLAMA,), None),  # never declared
    ("openai", "gpt-4o-mini", None, LLAMA, "fp8", (), (FP8_ONLY,), (LLAMA, "1", "fp8 eval")),
    ("openai", "gpt-4o-mini", None, LLAMA, "bf16", (), (FP8_ONLY,), None),  # the eval was of FP8
    ("openai", "gpt-4o-mini", None, None, None, (), (FP8_ONLY,), None),  # a box that names no model
    ("openai", "gpt-4o-mini", None, None, None, ("GPT-4o-mini",), (), ("gpt-4o-mini", "1", "listed in the candidate's models")),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "service", "box", "quant", "models", "subs", "want"), CASES)
def test_move(provider, model, service, box, quant, models, subs, want) -> None:  # type: ignore[no-untyped-def]
    found = move(provider, model, service, box, quant, models, subs)
    got = None if found is None else (found.model, found.share, found.evidence)
    assert got == (None if want is None else (want[0], Decimal(want[1]), want[2]))


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "b.toml").write_text(text)
    return load_settings({"config": str(tmp_path / "b.toml")}, environ={})


def test_substitutes_config(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        '[[pricing.substitutes]]\nfrom = { provider = "Anthropic", model = "claude-haiku-*", service = "support" }\n'
        'to = { model = "llama", quantization = "fp8" }\nshare = 0.6\nevidence = "eval"\n',
    )
    (sub,) = settings.pricing.substitutes
    assert sub == Substitute("claude-haiku-*", "llama", "anthropic", "support", "fp8", Decimal("0.6"), "eval")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('from = { model = "x" }\n', "pricing.substitutes[0].to: required"),
        ('to = { model = "y" }\n', "pricing.substitutes[0].from: required"),
        ('from = { provider = "openai" }\nto = { model = "y" }\n', "pricing.substitutes[0].from.model: required"),
        ('from = { model = "x" }\nto = { model = "y" }\nshare = 1.5\n', "pricing.substitutes[0].share: the share"),
        ('from = { model = "x" }\nto = { model = "y" }\nshare = 0\n', "pricing.substitutes[0].share"),
        ('from = { model = "x", team = "a" }\nto = { model = "y" }\n', "pricing.substitutes[0].from.team: unknown key"),
    ],
)
def test_substitutes_config_errors(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(SettingsError, match=error.replace("[", r"\[").replace("]", r"\]")):
        _load(tmp_path, "[[pricing.substitutes]]\n" + text)
