"""A class's plan as a LiteLLM router: the pool first, the per-token provider taking the overflow.

GET /api/v1/plans/litellm's body: the config.yaml LiteLLM's proxy takes (`litellm --config`), and
whose `model_list` and `router_settings` `litellm.Router(model_list=..., **router_settings)` takes.
One model group, named for the class (`<service>-<model>`; a pool's own traffic: the pool's name):

- the plan's boxes, `hosted_vllm/<the model they run>` at `api_base: os.environ/BREAKEVEN_POOL_<BOX>_API_BASE`
  (the user fills it), `order: 1`, and a `tpm` limit: what the boxes serve in a minute at the
  plan's max_utilization, in this class's own mix of prompt and output tokens:

      tpm = boxes x max_utilization x 60 x (input + output) / (input / input_tps + output / output_tps)

  No `rpm`: a box's capacity is tokens, not requests.
- the per-token provider, `<provider>/<model>` with `api_key: os.environ/<PROVIDER>_API_KEY`, `order: 2`.

`router_settings.optional_pre_call_checks: [enforce_model_rate_limits]` makes `tpm` a limit: a
minute's tokens past it find the pool filtered out and go, in the same attempt, to the lowest
order left, the provider; a pool that fails goes there the same way. That is the overflow.
`fallbacks` sends the group to `<name>-bought` (the provider alone) only when the group itself
fails: LiteLLM retries a rate-limited group with back-off before it falls back, so fallbacks
alone would make every overflow call wait. `<name>-bought` is also the name for the traffic no
substitute lets move: a plan whose share is below 1 says so in the header and in `model_info`,
since which calls passed the evals is the caller's to route. A plan of 0 boxes exports the
per-token deployment alone, and says so.

The plan's overflow share was costed per hour; the limit works per minute, so the traffic a
router sends to the provider is at least that share. YAML is written here (block style; a string
plain when YAML reads it back unchanged, else double-quoted as JSON quotes it, which YAML reads
the same): no YAML library at run time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.breakeven import pool_candidates
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.price.money import ONE
from breakeven.collector.price.pools import Capacity
from breakeven.collector.records import POOL, PRICED
from breakeven.collector.reports.errors import ReportError
from breakeven.collector.reports.plans import ClassOutcome, WhatIf, plan_classes, whole_hours
from breakeven.collector.store.spend import HourRow, hourly

# breakeven's provider names (collector/providers.py) -> LiteLLM's model prefix and the
# environment variable LiteLLM reads its key from (None: the cloud's own credentials).
LITELLM_PROVIDERS: dict[str, tuple[str, str | None]] = {
    "openai": ("openai", "OPENAI_API_KEY"),
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY"),
    "gcp.gemini": ("gemini", "GEMINI_API_KEY"),
    "gcp.gen_ai": ("gemini", "GEMINI_API_KEY"),
    "gcp.vertex_ai": ("vertex_ai", None),
    "aws.bedrock": ("bedrock", None),
    "azure.ai.openai": ("azure", "AZURE_API_KEY"),
    "azure.ai.inference": ("azure_ai", "AZURE_AI_API_KEY"),
    "mistral_ai": ("mistral", "MISTRAL_API_KEY"),
    "cohere": ("cohere", "COHERE_API_KEY"),
    "x_ai": ("xai", "XAI_API_KEY"),
    "deepseek": ("deepseek", "DEEPSEEK_API_KEY"),
    "perplexity": ("perplexity", "PERPLEXITYAI_API_KEY"),
    "groq": ("groq", "GROQ_API_KEY"),
    "together": ("together_ai", "TOGETHERAI_API_KEY"),
    "fireworks": ("fireworks_ai", "FIREWORKS_AI_API_KEY"),
    "deepinfra": ("deepinfra", "DEEPINFRA_API_KEY"),
    "cerebras": ("cerebras", "CEREBRAS_API_KEY"),
}


# Strings YAML reads back as the same string unquoted: a letter first, no spaces, colons or #.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_RESERVED = frozenset({"yes", "no", "true", "false", "on", "off", "null", "y", "n"})


class NoPlan(ReportError):
    """No such class in the range, or it has no plan to export: the API answers 404."""


@dataclass(frozen=True, slots=True)
class RouterPlan:
    """What a router config needs of one class's plan."""

    name: str  # the model group callers ask for
    provider: str  # breakeven's name of the per-token provider
    model: str  # the per-token model
    box: str  # the candidate (a pool: its name)
    runs: str  # the model the boxes serve
    quantization: str | None
    boxes: int
    tokens_per_minute: int | None  # the boxes' limit; None when the class moved no tokens
    share: Decimal  # of the class's traffic, allowed to move
    overflow_share: Decimal  # of the moving tokens, over the boxes in the plan's hours
    evidence: str


def tokens_per_minute(
    boxes: int, capacity: Capacity, max_utilization: Decimal, input_tokens: int, output_tokens: int
) -> int | None:
    """What `boxes` serve in a minute at max_utilization, in this mix of prompt and output tokens."""
    seconds = Decimal(input_tokens) / capacity.input_tps + Decimal(output_tokens) / capacity.output_tps
    if not seconds:
        return None
    return math.floor(boxes * max_utilization * 60 * (input_tokens + output_tokens) / seconds)


def litellm_config(plan: RouterPlan) -> dict[str, Any]:
    """The proxy's config.yaml as a dict: model_list and router_settings."""
    prefix, key = LITELLM_PROVIDERS.get(plan.provider, (plan.provider, None))
    bought: dict[str, Any] = {"model": f"{prefix}/{plan.model}"}
    if key:
        bought["api_key"] = f"os.environ/{key}"
    note = {"breakeven_plan": _note(plan)}
    if plan.boxes == 0:
        return {
            "model_list": [{"model_name": plan.name, "litellm_params": bought, "model_info": note}],
            "router_settings": {"routing_strategy": "simple-shuffle"},
        }
    pool: dict[str, Any] = {
        "model": f"hosted_vllm/{plan.runs}",
        "api_base": f"os.environ/BREAKEVEN_POOL_{_env_name(plan.box)}_API_BASE",
    }
    if plan.tokens_per_minute is not None:
        pool["tpm"] = plan.tokens_per_minute
    pool["order"] = 1
    return {
        "model_list": [
            {"model_name": plan.name, "litellm_params": pool, "model_info": note},
            {"model_name": plan.name, "litellm_params": {**bought, "order": 2}, "model_info": note},
            {"model_name": f"{plan.name}-bought", "litellm_params": bought, "model_info": note},
        ],
        "router_settings": {
            "routing_strategy": "simple-shuffle",
            "optional_pre_call_checks": ["enforce_model_rate_limits"],
            "fallbacks": [{plan.name: [f"{plan.name}-bought"]}],
        },
    }


def litellm_yaml(plan: RouterPlan, since: datetime, until: datetime) -> str:
    """The config as YAML, headed by comments saying what the plan is and what to fill in."""
    header = [f"LiteLLM router for {plan.name}: breakeven's plan over {since.isoformat()} .. {until.isoformat()}."]
    if plan.boxes == 0:
        header.append(f"The plan runs no {plan.box} box: everything stays bought from {plan.provider}.")
    else:
        limit = "no tpm: no tokens moved" if plan.tokens_per_minute is None else f"tpm {plan.tokens_per_minute}"
        header += [
            f"{plan.boxes} x {plan.box} serving {plan.runs}{f' ({plan.quantization})' if plan.quantization else ''}"
            f" first (order 1, {limit}); {plan.provider} takes the overflow (order 2),"
            f" planned at {_pct(plan.overflow_share)} of the tokens.",
            f"Fill BREAKEVEN_POOL_{_env_name(plan.box)}_API_BASE with the boxes' OpenAI-compatible URL (.../v1).",
        ]
    if plan.share < ONE:
        header.append(
            f"Only {_pct(plan.share)} of this traffic may move ({plan.evidence}): send the calls your evals"
            f" cleared to {plan.name}, the rest to {plan.name}-bought."
        )
    comments = "".join(f"# {' '.join(line.splitlines())}\n" for line in header)  # names may hold newlines
    return f"{comments}{_yaml(litellm_config(plan))}"


def router_plan(outcome: ClassOutcome, pricing: PricingConfig, assume: WhatIf, rows: Iterable[HourRow]) -> RouterPlan:
    """The class's plan with what its router needs: the box's capacity and the class's token mix."""
    p = outcome.plan
    if p is None:
        raise NoPlan(f"{_label(outcome)} has no plan: {outcome.reason}")
    best = p.curve.best
    moving = [h for h in rows if _of_class(h, outcome)]
    model = outcome.model or ""
    name = f"{outcome.service}-{model}" if outcome.service else model
    if outcome.kind == "pool":
        pool = next(x for x in pricing.pools if x.name == outcome.model)
        model = pool.alternative.model
    box = next(c for c in [*pricing.candidates, *pool_candidates(pricing.pools)] if c.name == p.candidate)
    utilization = assume.max_utilization or box.max_utilization
    tpm = tokens_per_minute(
        best.boxes,
        box.capacity,
        utilization,
        sum(h.usage.total_input for h in moving),
        sum(h.usage.output for h in moving),
    )
    return RouterPlan(
        name, outcome.provider or "", model, p.candidate.removeprefix("pool "), p.move.model, p.move.quantization,
        best.boxes, tpm, p.move.share, best.overflow_share, p.move.evidence,
    )  # fmt: skip


def litellm_report(
    conn: sa.Connection,
    pricing: PricingConfig,
    since: datetime,
    until: datetime,
    assume: WhatIf,
    service: str | None,
    provider: str | None,
    model: str,
) -> str:
    """GET /api/v1/plans/litellm's body: one class's plan (as /api/v1/plans costs it) as router YAML."""
    # The plans report's whole hours, so the plan exported is the plan /api/v1/plans shows.
    start, end = whole_hours(since, until)
    rows = hourly(conn, start, end)
    outcome = _pick(plan_classes(rows, pricing, start, end, assume), service, provider, model)
    return litellm_yaml(router_plan(outcome, pricing, assume, rows), start, end)


def _pick(outcomes: Sequence[ClassOutcome], service: str | None, provider: str | None, model: str) -> ClassOutcome:
    found = [
        o
        for o in outcomes
        if o.model == model
        and (service is None or o.service == service)
        and (provider is None or o.provider == provider)
    ]
    if not found:
        who = " ".join(f"{k}={v}" for k, v in (("service", service), ("provider", provider), ("model", model)) if v)
        raise NoPlan(f"no traffic class {who} in the range")
    if len(found) > 1:
        raise ReportError(f"{len(found)} classes match: name one with service and provider ({_label(found[0])}, ...)")
    return found[0]


def _of_class(h: HourRow, o: ClassOutcome) -> bool:
    if o.kind == "pool":
        return h.price_status == POOL and h.pool == o.model
    return h.price_status == PRICED and (h.service, h.provider, h.model) == (o.service, o.provider, o.model)


def _label(o: ClassOutcome) -> str:
    if o.kind == "pool":
        return f"pool {o.model}"
    return f"{o.service or '(no service)'}'s {o.model} ({o.provider})"


def _note(plan: RouterPlan) -> str:
    if plan.boxes == 0:
        return f"plan: 0 boxes of {plan.box}; all bought"
    move = "all of the class" if plan.share == ONE else f"{_pct(plan.share)} of the class may move ({plan.evidence})"
    return f"plan: {plan.boxes} x {plan.box} running {plan.runs}; {move}; overflow {_pct(plan.overflow_share)}"


def _env_name(box: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", box.upper()).strip("_")


def _pct(share: Decimal) -> str:
    return f"{(share * 100).quantize(Decimal('0.1')).normalize():f}%"


def _yaml(value: Any, indent: str = "") -> str:
    """Block-style YAML of dicts, lists, strings, integers and booleans."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                out.append(f"{indent}{_scalar(k)}:\n{_yaml(v, indent + '  ')}")
            else:
                out.append(f"{indent}{_scalar(k)}: {_scalar(v)}\n")
    else:
        for item in value:
            body = _yaml(item, indent + "  ") if isinstance(item, dict | list) and item else f"{_scalar(item)}\n"
            out.append(f"{indent}- {body.removeprefix(indent + '  ')}")
    return "".join(out)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)
