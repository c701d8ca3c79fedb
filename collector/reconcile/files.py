"""A bill file read into BilledLine records, by its source's kind (`breakeven reconcile import`).

For a machine that cannot reach a provider, the same data comes from files: a JSON page as
the provider's usage or cost API returns it (or a JSON array of such pages, as a paginated
fetch saves them), or a FOCUS export (CSV, CSV.gz, Parquet). A page is told apart by its
results: OpenAI names each result's kind (`object`), an Anthropic cost result carries an
`amount`. Each line is marked with the report it came from (usage, cost, focus), so a report
read again replaces only its own lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from breakeven.collector.config.reconcile import ReconcileSource
from breakeven.collector.reconcile import anthropic, openai
from breakeven.collector.reconcile.errors import BillError, page_from_json
from breakeven.collector.reconcile.focus import read_focus
from breakeven.collector.records import BilledLine


def read_bill_file(source: ReconcileSource, path: Path) -> list[BilledLine]:
    """The lines of one file of this source; BillError naming the file and what is wrong."""
    if source.kind == "focus":
        try:
            return [dataclasses.replace(line, report="focus") for line in read_focus(path, source.name).lines]
        except BillError as exc:  # a row's error names the row; say the file too, once
            text = str(exc)
            raise BillError(text if text.startswith(path.name) else f"{path.name}: {text}") from None
    try:
        try:
            pages = page_from_json(path.read_bytes())
        except OSError as exc:
            raise BillError(f"cannot read it: {exc.strerror or exc}") from None
        lines: list[BilledLine] = []
        for page in pages if isinstance(pages, list) else [pages]:
            report = _report_of(source.kind, page)
            parse = PARSERS[(source.kind, report)]
            lines.extend(dataclasses.replace(line, report=report) for line in parse(page, source.name))
        return lines
    except BillError as exc:
        raise BillError(f"{path}: {exc}") from None


# Each API source's reports, as pages read into lines (fetch.py fetches the same reports).
PARSERS: dict[tuple[str, str], Callable[[Any, str], list[BilledLine]]] = {
    ("openai", "usage"): openai.usage_lines,
    ("openai", "cost"): openai.cost_lines,
    ("anthropic", "usage"): anthropic.usage_lines,
    ("anthropic", "cost"): anthropic.cost_lines,
}


def _report_of(kind: str, page: Any) -> str:
    """usage or cost, by the page's first result (a page without results: usage, which it adds nothing to)."""
    if not isinstance(page, Mapping) or not isinstance(page.get("data"), list):
        raise BillError(f"not a page of {kind}'s usage or cost API (no `data` array)")
    for bucket in page["data"]:
        results = bucket.get("results") if isinstance(bucket, Mapping) else None
        for result in results if isinstance(results, list) else []:
            if isinstance(result, Mapping):
                if kind == "openai":
                    return "cost" if result.get("object") == "organization.costs.result" else "usage"
                return "cost" if "amount" in result else "usage"
    return "usage"
