"""BillError, and the field readers that raise it, shared by the providers' report parsers.

A page that is not what a provider's API returns is an error to stop on, never a reason to
guess: a missing count read as zero would pass for a genuinely empty bill. Each reader names
the field by its path in the page ("data[1].results[0].input_tokens") so the error says what
to look at. Unknown extra fields are ignored: providers add fields without notice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


class BillError(ValueError):
    """A provider's usage or cost page is not what its API returns; the message names the field."""


def page_from_json(text: str | bytes) -> Any:
    """The page a report API answered, with every JSON number that has a fraction or exponent read
    as the Decimal written in the text (parse_float=Decimal), so no money passes through a float."""
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError as exc:  # json.JSONDecodeError and a bad UTF-8 page alike
        raise BillError(f"the page is not JSON: {exc}") from exc


def buckets(page: Any) -> Iterator[tuple[str, Mapping[str, Any], list[tuple[str, Mapping[str, Any]]]]]:
    """Each time bucket of a page (`data`) with its path and its results, each with its own path."""
    if not isinstance(page, Mapping):
        raise BillError(f"the page must be a JSON object, not {type(page).__name__}")
    for index, bucket in enumerate(_array(page, "data", "data")):
        path = f"data[{index}]"
        if not isinstance(bucket, Mapping):
            raise BillError(f"{path} must be an object")
        results = [
            (f"{path}.results[{n}]", _object(result, f"{path}.results[{n}]"))
            for n, result in enumerate(_array(bucket, "results", f"{path}.results"))
        ]
        yield path, bucket, results


def results_by_day(
    page: Any, day_of: Callable[[Mapping[str, Any], str], date]
) -> Iterator[tuple[date, str, Mapping[str, Any]]]:
    """Each result of a page with its bucket's UTC day (day_of reads a bucket's start, each
    provider its own way) and its path in the page, bucket by bucket."""
    for path, bucket, results in buckets(page):
        day = day_of(bucket, path)
        for where, result in results:
            yield day, where, result


def count(obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> int:
    """A token or request count: a non-negative JSON integer; an optional one absent or null is 0."""
    value = obj.get(key)
    if value is None and not required:
        return 0
    if key not in obj:
        raise BillError(f"{path}.{key} is missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BillError(f"{path}.{key} must be a non-negative integer, not {value!r}")
    return value


def text(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """An optional string field (a group-by key such as model or project_id): absent or null is None."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise BillError(f"{path}.{key} must be a string or null, not {value!r}")
    return value


def mapping(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """A required nested object."""
    if key not in obj:
        raise BillError(f"{path}.{key} is missing")
    return _object(obj[key], f"{path}.{key}")


def utc_day(moment: datetime, path: str) -> date:
    """The UTC date of an aware moment; a naive one is refused, since its day is a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BillError(f"{path} carries no UTC offset")
    return moment.astimezone(UTC).date()


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BillError(f"{path} must be an object, not {value!r}")
    return value


def _array(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    if key not in obj:
        raise BillError(f"{path} is missing")
    value = obj[key]
    if not isinstance(value, list):
        raise BillError(f"{path} must be an array, not {type(value).__name__}")
    return value
