"""A self-hosted pool's configured rent set beside what the cloud invoiced for its boxes (pure).

A pool names its lines of a FOCUS bill with `invoice_match` (price/pools.py InvoiceMatch): a
ResourceId glob, tags, or both. Per pool and UTC month, the configured fixed cost of the part
of the month in the report's range (what break-even and allocation use) is set beside the
summed cost of the matched lines of those days. Amounts come in one currency.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase

from breakeven.collector.price.pools import InvoiceMatch
from breakeven.collector.records import BilledLine

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def matches(match: InvoiceMatch, line: BilledLine) -> bool:
    """Whether a bill line is one of the pool's boxes: every glob given matches (case-sensitive,
    as resource ids and tags are)."""
    if match.resource_id is not None and not fnmatchcase(line.resource_id or "", match.resource_id):
        return False
    if match.tags:
        tags = json.loads(line.tags) if line.tags else {}
        return all(name in tags and fnmatchcase(tags[name], want) for name, want in match.tags)
    return True


@dataclass(slots=True)
class PoolMonth:
    """One pool's month: its configured rent against the invoiced lines matched to it."""

    pool: str
    month: date  # the month's first day
    configured: Decimal
    invoiced: Decimal = Decimal(0)
    lines: int = 0
    by_resource: dict[str, Decimal] = field(default_factory=dict)
    matched: bool = True  # False when the pool has no invoice_match

    @property
    def delta(self) -> Decimal | None:
        """Invoiced less configured; None when nothing could be matched."""
        return self.invoiced - self.configured if self.matched and self.lines else None

    @property
    def delta_percent(self) -> Decimal | None:
        return self.delta / self.invoiced * HUNDRED if self.delta is not None and self.invoiced else None

    def cause(self, tolerance: Decimal, boxes: int) -> str | None:
        """The difference in words; None when the two agree within tolerance (or a cent)."""
        if not self.matched:
            return 'the pool names no invoice_match: add one ({ ResourceId = "i-0abc*" } or Tags) to check its rent'
        if not self.lines:
            return (
                "no billed line matches the pool's invoice_match in this month: is that month's FOCUS export"
                " imported, and does the pattern name its instances?"
            )
        delta = self.delta or Decimal(0)
        if abs(delta) <= max(tolerance * abs(self.invoiced), CENT):
            return None
        resources = len(self.by_resource)
        if delta > 0:
            return (
                f"the cloud billed {delta:.2f} more than the configured rent: {resources} resources billed"
                f" against {boxes} boxes configured, or a rent below the price paid"
                " (break-even uses the configured rent)"
            )
        return (
            f"the configured rent is {-delta:.2f} above what the cloud billed: a commitment or discount the"
            f" rent does not reflect, or fewer than {boxes} boxes running ({resources} resources billed)"
        )


def pool_months(
    pools: Sequence[tuple[str, InvoiceMatch | None]],
    configured: Mapping[tuple[str, date], Decimal],
    lines: Iterable[BilledLine],
) -> list[PoolMonth]:
    """Per pool and month (the keys of `configured`), the matched lines' cost beside the rent."""
    out = {key: PoolMonth(key[0], key[1], amount) for key, amount in configured.items()}
    matches_of = dict(pools)
    for pool, match in pools:
        if match is None:
            for key, row in out.items():
                if key[0] == pool:
                    row.matched = False
    candidates = [line for line in lines if line.cost is not None and (line.resource_id or line.tags)]
    for line in candidates:
        month = line.day.replace(day=1)
        for pool, match in matches_of.items():
            found = out.get((pool, month))
            if match is None or found is None or not matches(match, line):
                continue
            found.invoiced += line.cost or Decimal(0)
            found.lines += 1
            resource = line.resource_id or "(no ResourceId)"
            found.by_resource[resource] = found.by_resource.get(resource, Decimal(0)) + (line.cost or Decimal(0))
    return sorted(out.values(), key=lambda r: (r.pool, r.month))
