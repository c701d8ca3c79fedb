"""The one set of TOML checks the config's parsers share, and the error they all raise.

A config mistake is a SettingsError whose message names the exact key, such as
`pricing.pools[0].boxes: expected at least 1, got 0` (array indexes count from 0), so
`breakeven serve` stops before it listens and says where to look. The settings loader
and each section's parser (pricing, alerts, auth) check tables, strings, numbers, dates
and URLs with these helpers instead of keeping a copy each, so one mistake reads the same
in every section. The helpers only check and convert; what a value means is the
parser's business.

Where sections have long worded one mistake differently, a keyword keeps each wording
(the auth section says "must be a table" where the others say "expected a table").
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


def fail(message: str) -> NoReturn:
    """Reject the config: raise SettingsError(message); the message starts with the key."""
    raise SettingsError(message)


# Files.


def beside_config(path: str, config_path: str | None) -> Path:
    """The file a setting names; a relative path is relative to the config file that names it."""
    found = Path(path)
    if not found.is_absolute() and config_path:
        found = Path(config_path).parent / found
    return found


def read_toml(path: Path, key: str, *, decimals: bool = True) -> dict[str, Any]:
    """The TOML document at path; SettingsError naming key if it is missing or not TOML.

    decimals: floats as Decimal (money and rates must not pick up binary rounding); the
    auth section reads its tokens file with plain floats, as it always has.
    """
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text, parse_float=Decimal) if decimals else tomllib.loads(text)
    except FileNotFoundError:
        raise SettingsError(f"{key}: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{key}: {path} is not valid TOML: {exc}") from None


# Tables.


def table(
    raw: Any, key: str, known: tuple[str, ...] | None, *, not_a_table: str = "expected a table"
) -> Mapping[str, Any]:
    """raw, checked to be a table whose keys are all in known (None: any keys)."""
    if not isinstance(raw, Mapping):
        fail(f"{key}: {not_a_table}")
    if known is not None:
        for name in raw:
            if name not in known:
                fail(f"{key}.{name}: unknown key (known: {', '.join(known)})")
    return raw


def tables(parent: Mapping[str, Any], name: str, key: str, parse: Callable[[Any, str], T]) -> list[T]:
    """The array of tables parent[name] (none when absent), each item parsed with its own key."""
    raw = parent.get(name, [])
    if not isinstance(raw, list):
        fail(f"{key}.{name}: expected an array of tables ([[{key}.{name}]])")
    return [parse(item, f"{key}.{name}[{i}]") for i, item in enumerate(raw)]


def required(parent: Mapping[str, Any], name: str, key: str) -> Any:
    """parent[name]; SettingsError `key.name: required` when it is absent."""
    if name not in parent:
        fail(f"{key}.{name}: required")
    return parent[name]


def unique(values: list[str], key: str, name: str) -> None:
    """Reject the second of two equal values: `key[i].name: <value> appears twice`."""
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            fail(f"{key}[{i}].{name}: {value} appears twice")
        seen.add(value)


# Scalars.


def text(raw: Any, key: str) -> str:
    """A non-empty string, stripped."""
    if not isinstance(raw, str) or not raw.strip():
        fail(f"{key}: expected a non-empty string, got {raw!r}")
    return raw.strip()


def amount(raw: Any, key: str, *, positive: bool = False) -> Decimal:
    """A finite, non-negative (or, with positive, above zero) Decimal from a number or a string."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        fail(f"{key}: not a number: {raw!r}")
    try:
        # A float only reaches here from Python callers; str() keeps its shortest decimal form.
        value = Decimal(str(raw).strip()) if isinstance(raw, float | str) else Decimal(raw)
    except InvalidOperation:
        fail(f"{key}: not a number: {raw!r}")
    if not value.is_finite() or value < 0 or (positive and value == 0):
        fail(f"{key}: expected a {'positive' if positive else 'non-negative'} number, got {raw!r}")
    return value


def integer(raw: Any, key: str, *, minimum: int, one_message: bool = False) -> int:
    """A whole number of at least minimum (a TOML integer, never a bool).

    one_message: both mistakes read `expected a whole number of at least <minimum>`, as
    alerts.retry_attempts has always said; else the two are told apart.
    """
    whole = isinstance(raw, int) and not isinstance(raw, bool)
    if one_message and (not whole or raw < minimum):
        fail(f"{key}: expected a whole number of at least {minimum}, got {raw!r}")
    if not whole:
        fail(f"{key}: expected a whole number, got {raw!r}")
    if raw < minimum:
        fail(f"{key}: expected at least {minimum}, got {raw}")
    return int(raw)


def boolean(raw: Any, key: str) -> bool:
    """A TOML true or false (no strings: the file can say what it means)."""
    if not isinstance(raw, bool):
        fail(f"{key}: expected true or false, got {raw!r}")
    return raw


def iso_date(raw: Any, key: str) -> date:
    """A day: a TOML date or a YYYY-MM-DD string; a date with a time is refused."""
    if isinstance(raw, datetime):
        fail(f"{key}: not a date (a day such as 2025-06-01, without a time): {raw!r}")
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    fail(f"{key}: not a date (expected YYYY-MM-DD): {raw!r}")


def http_url(raw: Any, key: str, *, base: bool = False) -> str:
    """An http:// or https:// URL with a host; base: without a trailing slash, to append paths to."""
    url = text(raw, key)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(f"{key}: expected an http:// or https:// URL, got {raw!r}")
    return url.rstrip("/") if base else url
