"""The `[privacy]` section: which attributes, beyond those known to carry no content, the
ledger keeps verbatim in a span's audit copy.

    [privacy]
    keep_attributes = ["app.tenant", "myco.*"]   # exact names, or globs (*, ?, [ab])

Every other attribute the ledger does not know is kept as its key, type and size only
(normalize/keep.py). A known content key (a prompt, an answer, a tool's arguments) is never
kept, whatever this list says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from breakeven.collector.config import checks

_KEYS = ("keep_attributes",)


@dataclass(frozen=True, slots=True)
class PrivacyConfig:
    """Attribute names (exact, or globs) the audit copy keeps verbatim besides the known ones."""

    keep_attributes: tuple[str, ...] = ()


def parse_privacy(raw: Any) -> PrivacyConfig:
    """PrivacyConfig from the raw `[privacy]` table; SettingsError naming the first bad key."""
    if isinstance(raw, PrivacyConfig):
        return raw
    table = checks.table(raw, "privacy", _KEYS)
    names = table.get("keep_attributes", [])
    if not isinstance(names, list):
        checks.fail(f"privacy.keep_attributes: expected a list of attribute names or globs, got {names!r}")
    return PrivacyConfig(tuple(checks.text(name, f"privacy.keep_attributes[{i}]") for i, name in enumerate(names)))
