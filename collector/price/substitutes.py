"""Which traffic a box may take over: the same model self-hosted, or a declared substitute.

A recommendation (break-even, plans) moves a traffic class (service x provider x model, bought
per token) to a candidate box only when:
- the box runs the same model: `same_model` (managed "meta-llama/Llama-3.3-70B-Instruct-Turbo"
  and a box's "meta-llama/Llama-3.3-70B-Instruct" are one model), all of the traffic; or
- the user declared a substitute (`[[pricing.substitutes]]`: they ran the evals) whose `from`
  takes the class and whose `to` is the box's model (and quantization, when it names one):
  `share` of the traffic, with its `evidence`; the first declared that fits is used; or
- the box lists the class's model in its `models` (kept from before substitutes: listing a
  model is a declaration too), all of the traffic.
A box that names no model and lists none takes nothing: a recommendation always names the
model it would run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase

from breakeven.collector.price.money import ONE

# Spellings that change how a model is served or sold, not which weights it is.
_SERVING_SUFFIX = re.compile(r"[-_.](?:turbo|fp8|fp16|bf16|int8|int4|awq|gptq|gguf|fast|free|lite)$")


@dataclass(frozen=True, slots=True)
class Substitute:
    """A model the user found may serve some traffic: from (provider, model glob, service) to (model, quantization)."""

    model: str  # glob over the class's model, case-insensitive
    to_model: str
    provider: str | None = None
    service: str | None = None
    to_quantization: str | None = None
    share: Decimal = ONE  # of the traffic, eligible
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """Why a box may take a class: the model it would run, the share eligible, the reason."""

    model: str
    quantization: str | None
    share: Decimal
    evidence: str  # the substitute's evidence, or what made the move implicit


def model_family(model: str) -> str:
    """The model's weights, whoever serves them: no org prefix, no serving suffix (-Turbo,
    -FP8 ...), lower case, letters and digits only."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    while (stripped := _SERVING_SUFFIX.sub("", name)) != name:
        name = stripped
    return re.sub(r"[^a-z0-9]", "", name)


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two names are one model's weights (model_family equal)."""
    return bool(a and b) and model_family(a or "") == model_family(b or "")


def move(
    provider: str,
    model: str,
    service: str | None,
    box_model: str | None,
    box_quantization: str | None,
    box_models: Sequence[str],
    substitutes: Sequence[Substitute],
) -> Move | None:
    """How a box running `box_model` may take this class's traffic, or None when it may not."""
    if box_model is not None:
        if same_model(model, box_model):
            return Move(box_model, box_quantization, ONE, "the same model, self-hosted")
        for sub in substitutes:
            if (
                fnmatchcase(model.lower(), sub.model.lower())
                and (sub.provider is None or sub.provider == provider)
                and (sub.service is None or sub.service == service)
                and same_model(sub.to_model, box_model)
                and (sub.to_quantization is None or (box_quantization or "").lower() == sub.to_quantization.lower())
            ):
                return Move(box_model, box_quantization, sub.share, sub.evidence or "a declared substitute")
    if any(model.lower() == listed.lower() for listed in box_models):
        return Move(box_model or model, box_quantization, ONE, "listed in the candidate's models")
    return None
