"""Plans: per traffic class, how many boxes of which candidate to run and the rest bought.

Every figure is GET /api/v1/plans's (breakeven.collector.reports.plans.plans_report), read in
process over the view's range (whole UTC hours) and currency: the cost-vs-boxes curve, the
cheapest plan in one sentence, the candidate and the model (and quantization) it would run,
the share that may move and its evidence; classes without a plan with their reason. The
what-if fields (WHAT_IF) are the API's parameters, taken from the query: an empty field is
not asked (a GET form sends every field), a bad one is the report's ReportError (a 400 page).

Each class has an anchor (`anchor`), built here so the Break-even page can link its verdicts
to the plan: `class-<service>--<provider>--<model>` for traffic bought per token,
`pool-<name>` for a pool's own traffic, slugged (lower case, letters, digits and hyphens).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from breakeven.collector.price.breakeven import pool_candidates
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.plans import plans_report, what_if
from breakeven.dashboard.pages.common import converter
from breakeven.dashboard.view import View

WHAT_IF = ("growth", "max_utilization", "discount", "price", "deferrable", "quantization")


def _slug(value: str | None) -> str:
    """A name as an anchor part: lower case, runs of anything but letters and digits as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", (value or "").lower()).strip("-") or "none"


def class_anchor(service: str | None, provider: str | None, model: str | None) -> str:
    """The Plans page's anchor of a class bought per token."""
    return "class-" + "--".join(_slug(part) for part in (service, provider, model))


def pool_anchor(name: str) -> str:
    """The Plans page's anchor of a pool's own traffic."""
    return f"pool-{_slug(name)}"


def asked(query: Mapping[str, str]) -> dict[str, str]:
    """The what-if parameters the query gives a value (empty fields are not asked)."""
    return {name: query[name].strip() for name in WHAT_IF if (query.get(name) or "").strip()}


def context(conn: sa.Connection, pricing: PricingConfig, view: View, query: Mapping[str, str]) -> dict[str, Any]:
    """The Plans page."""
    conv = converter(pricing, view)
    wanted = asked(query)
    assume = what_if(**wanted)
    report = plans_report(conn, pricing, conv, view.since, view.until, assume)
    for c in report["classes"]:
        bought = c["kind"] == "bought"
        c["anchor"] = class_anchor(c["service"], c["provider"], c["model"]) if bought else pool_anchor(c["model"])
    boxes = [*pricing.candidates, *pool_candidates(pricing.pools)]
    return {
        "page": "plans",
        "view": view.as_json(),
        "asked": wanted,
        "boxes": [{"name": b.name, "model": b.model, "quantization": b.quantization} for b in boxes],
        **report,
    }
