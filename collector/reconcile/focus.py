"""A FOCUS 1.x cost and usage export (CSV, CSV.gz or Parquet) read into BilledLine records.

FOCUS (the FinOps Open Cost and Usage Specification, 1.0 to 1.2) is what AWS (CUR 2.0 FOCUS
export), Azure and Google Cloud write when asked for a cloud-neutral bill. Each row becomes one
BilledLine; a compute row naming an instance is also kept as an InstanceLine, so a GPU pool's
`invoice_match = { ResourceId = "i-0abc*" }` can be matched against what the cloud charged.

Money never passes through a float: CSV values are read as text, Parquet decimals and doubles
through str(). A file without the columns every FOCUS 1.0-1.2 dataset must carry is refused with
a BillError naming them; so is a row whose cost or charge period cannot be read, rather than
guessed (the specification's own SaaS examples write "4/1/25", which could be April or January).

Date/times FOCUS requires in UTC; a value without an offset ("2024-09-18 22:00:00", as in the
FinOps Foundation's published sample) is therefore read as UTC. The literal text NULL, which that
sample writes for empty cells, is read as empty.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow.parquet as pq

from breakeven.collector.reconcile.errors import BillError
from breakeven.collector.records import BilledLine

# Mandatory in every FOCUS version 1.0-1.2, and what a BilledLine cannot be made without.
REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ProviderName", "ServiceName")

Row = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class InstanceLine:
    """A compute row of a FOCUS bill that names an instance: what a pool's ResourceId is matched
    against. `gpu` is a hint from the instance family (p5, g6, Standard_ND..., a3-...), not a
    filter: the pool's own ResourceId pattern decides what belongs to it."""

    source: str
    day: date
    resource_id: str
    instance_type: str | None
    gpu: bool
    cost: Decimal
    list_cost: Decimal | None
    currency: str
    account: str | None


@dataclass(frozen=True, slots=True)
class FocusFile:
    """Every row of a FOCUS file as a BilledLine, and its compute-instance rows again."""

    lines: tuple[BilledLine, ...]
    instances: tuple[InstanceLine, ...]


def read_focus(path: Path, source: str) -> FocusFile:
    """The FOCUS export at `path` (by suffix: .csv, .csv.gz, .parquet) as lines of `source`."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        columns, rows = _parquet_rows(path)
    elif name.endswith(".csv.gz"):
        with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
            return focus_from_csv(handle.read(), source)
    elif name.endswith(".csv"):
        return focus_from_csv(path.read_text(encoding="utf-8-sig"), source)
    else:
        raise BillError(f"{path.name}: a FOCUS export must end in .csv, .csv.gz or .parquet")
    return focus_from_rows(columns, rows, source)


def focus_from_csv(text: str, source: str) -> FocusFile:
    """A FOCUS CSV's text (a byte-order mark, if any, is dropped) read as lines of `source`."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    columns = [name.strip() for name in reader.fieldnames or ()]
    reader.fieldnames = columns
    return focus_from_rows(columns, reader, source)


def focus_from_rows(columns: Iterable[str], rows: Iterable[Row], source: str) -> FocusFile:
    """FOCUS rows (column -> text or None) as lines of `source`; refused if columns are missing."""
    present = set(columns)
    missing = [column for column in REQUIRED if column not in present]
    if missing:
        raise BillError(f"not a FOCUS 1.x file: missing column(s) {', '.join(missing)}")
    lines: list[BilledLine] = []
    instances: list[InstanceLine] = []
    for number, raw in enumerate(rows, start=2):  # row 1 is the header
        row = {key: _clean(value) for key, value in raw.items() if key is not None}
        line, instance = _row(row, f"row {number}", source)
        lines.append(line)
        if instance is not None:
            instances.append(instance)
    return FocusFile(tuple(lines), tuple(instances))


def _row(row: Mapping[str, str | None], where: str, source: str) -> tuple[BilledLine, InstanceLine | None]:
    day = charge_day(row.get("ChargePeriodStart"), f"{where} ChargePeriodStart")
    cost = _money(row.get("BilledCost"), f"{where} BilledCost")
    if cost is None:
        raise BillError(f"{where} BilledCost is empty")
    currency = row.get("BillingCurrency")
    if currency is None:
        raise BillError(f"{where} BillingCurrency is empty")
    list_cost = _money(row.get("ListCost"), f"{where} ListCost")
    provider = ledger_provider(row.get("ProviderName"), row.get("PublisherName"), row.get("ServiceName"))
    account = row.get("SubAccountId") or row.get("ResourceId")
    kind, model = token_kind(row)
    tokens = _tokens(row, f"{where} ConsumedQuantity") if kind else 0
    line = BilledLine(
        source=source,
        day=day,
        provider=provider,
        model=model,
        account=account,
        line_item=row.get("SkuId") or row.get("ChargeDescription"),
        input_tokens=tokens if kind == "input" else 0,
        cache_read_tokens=tokens if kind == "cache_read" else 0,
        cache_write_tokens=tokens if kind == "cache_write" else 0,
        output_tokens=tokens if kind == "output" else 0,
        cost=cost,
        list_cost=list_cost,
        currency=currency,
        resource_id=row.get("ResourceId"),
        tags=_tags(row.get("Tags"), f"{where} Tags"),
    )
    return line, _instance(row, source, day, cost, list_cost, currency)


# ----------------------------------------------------------------------------- values


def _clean(value: object) -> str | None:
    """A cell as text: None, blank and the literal NULL are empty; Parquet values through str()."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    text = str(value).strip()
    return None if text == "" or text == "NULL" else text


def _tags(text: str | None, where: str) -> str | None:
    """The Tags cell (a JSON object of text values, FOCUS 1.0+) as JSON with sorted keys; a
    Parquet map read as a list of [key, value] pairs too. Tags are optional, so a cell that is
    not such an object is refused rather than silently dropped: a pool's match may need it."""
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        raise BillError(f"{where} is not a JSON object: {text[:80]!r}") from None
    if isinstance(parsed, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in parsed):
        parsed = dict(parsed)
    if not isinstance(parsed, dict):
        raise BillError(f"{where} is not a JSON object: {text[:80]!r}")
    tags = {str(k): "" if v is None else str(v) for k, v in parsed.items()}
    return json.dumps(tags, sort_keys=True, separators=(",", ":")) if tags else None


def _money(text: str | None, where: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BillError(f"{where} is not a number: {text!r}") from None
    if not value.is_finite():
        raise BillError(f"{where} is not a finite number: {text!r}")
    return value


def charge_day(text: str | None, where: str) -> date:
    """The UTC date of a FOCUS date/time; one without an offset is UTC, as FOCUS requires."""
    if text is None:
        raise BillError(f"{where} is empty")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BillError(f"{where} is not an ISO 8601 date/time: {text!r}") from None
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(UTC).date()


# ----------------------------------------------------------------------------- providers

# (cloud, words one of ServiceName / PublisherName contains, lower-cased) -> the ledger's name.
_AI_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("aws", "bedrock", "aws.bedrock"),
    ("azure", "openai", "azure.ai.openai"),
    ("azure", "foundry", "azure.ai.inference"),
    ("gcp", "vertex ai", "gcp.vertex_ai"),
    ("gcp", "gemini api", "gcp.gemini"),
    ("gcp", "generative language", "gcp.gemini"),
)


def _cloud(provider_name: str | None) -> str | None:
    text = (provider_name or "").lower()
    if text in {"aws", "amazon web services"} or text.startswith("amazon web services"):
        return "aws"
    if text in {"microsoft", "azure", "microsoft azure"}:
        return "azure"
    if text in {"google", "google cloud", "gcp", "google cloud platform"}:
        return "gcp"
    return None


def ledger_provider(provider_name: str | None, publisher: str | None, service: str | None) -> str:
    """The ledger's provider name (collector/providers.py) for an AI service of a cloud: AWS +
    Bedrock -> aws.bedrock, Azure OpenAI -> azure.ai.openai, Vertex AI -> gcp.vertex_ai; any other
    line keeps the bill's own ProviderName, since EC2 or a storage account is no LLM provider."""
    cloud = _cloud(provider_name)
    words = f"{service or ''} | {publisher or ''}".lower()
    for owner, word, name in _AI_SERVICES:
        if owner == cloud and word in words:
            return name
    return provider_name or ""


# ----------------------------------------------------------------------------- tokens

# Token units as clouds write them -> how many tokens one consumed unit is.
_TOKEN_UNITS = {
    "tokens": 1,
    "token": 1,
    "1k tokens": 1_000,
    "1k": 1_000,
    "1m tokens": 1_000_000,
    "million tokens": 1_000_000,
    "thousand tokens": 1_000,
}

# The kind of token a SKU charges, as it is spelled in usage types and meter names:
# "USE1-Claude3.5Sonnet-cache-read-input-tokens", "gpt-4o-0806-cached-Inp-glbl Tokens",
# "Gemini 1.5 Pro Output Text", "USE1-MP:USE1_InputTokenCount-Units". Cache kinds first.
_KIND = re.compile(
    r"(?P<cache_read>cache[-_ ]?read|cached[-_ ]?inp(?:ut)?)"
    r"|(?P<cache_write>cache[-_ ]?write)"
    r"|(?P<input>input|inp(?![a-z]))"
    r"|(?P<output>output|outp(?![a-z]))",
    re.IGNORECASE,
)
_REGION = re.compile(r"^[A-Z]{2,4}\d-(?:MP:[A-Z]{2,4}\d_)?")
_BEDROCK_EDITION = re.compile(r"\s*\((?:amazon )?bedrock edition\)\s*$", re.IGNORECASE)


def token_kind(row: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    """(input | output | cache_read | cache_write | None, model or None) for a row whose
    ConsumedUnit counts tokens, read from x_UsageType, SkuMeter, ChargeDescription or SkuId."""
    if (row.get("ConsumedUnit") or "").strip().lower() not in _TOKEN_UNITS:
        return None, None
    edition = row.get("ServiceName") or ""
    fallback = _BEDROCK_EDITION.sub("", edition) if _BEDROCK_EDITION.search(edition) else None
    for column in ("x_UsageType", "SkuMeter", "ChargeDescription", "SkuId"):
        text = row.get(column)
        match = _KIND.search(text or "")
        if text is None or match is None:
            continue
        kind = next(name for name, value in match.groupdict().items() if value)
        # Usage types and meters name the model before the kind; a description is prose.
        named = _model(text[: match.start()]) if column in ("x_UsageType", "SkuMeter") else None
        return kind, named or fallback
    return None, None


def _model(text: str) -> str | None:
    """The model named before a token kind: "USE1-Claude3.5Sonnet-" -> "Claude3.5Sonnet"."""
    name = _REGION.sub("", text.strip()).strip(" -_:")
    if name.lower().endswith("cache"):
        name = name[:-5].strip(" -_:")
    if not name or name.lower() in {"amazon bedrock", "vertex ai", "azure openai"}:
        return None
    return name


def _tokens(row: Mapping[str, str | None], where: str) -> int:
    quantity = _money(row.get("ConsumedQuantity"), where)
    if quantity is None:
        return 0
    count = quantity * _TOKEN_UNITS[(row.get("ConsumedUnit") or "").strip().lower()]
    if count != count.to_integral_value() or count < 0:
        raise BillError(f"{where} is not a whole number of tokens: {row.get('ConsumedQuantity')!r}")
    return int(count)


# ----------------------------------------------------------------------------- instances

_INSTANCE_TYPE = re.compile(
    r"\b(?P<type>[a-z][a-z0-9-]*\d[a-z0-9-]*\.(?:\d*x?large|metal[a-z0-9-]*|medium|micro|small|nano)"
    r"|Standard_[A-Za-z0-9_]+"
    r"|[a-z]\d[a-z]?-(?:standard|highmem|highcpu|highgpu|megagpu|ultragpu|edgegpu)-\d+g?)\b"
)
_GPU_FAMILY = re.compile(r"^(?:p\d|g\d|gr\d|trn\d|inf\d|dl\d)[a-z]*\.|^Standard_N|^a\d-|^g2-|gpu", re.IGNORECASE)


def instance_type(row: Mapping[str, str | None]) -> str | None:
    """The instance type a compute row names: SkuPriceDetails' InstanceType (FOCUS 1.1+), else
    the first type in ChargeDescription, x_UsageType or SkuMeter ("... Linux g3.4xlarge ...")."""
    details = row.get("SkuPriceDetails")
    if details:
        try:
            parsed = json.loads(details)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("InstanceType"), str):
            return str(parsed["InstanceType"])
    for column in ("ChargeDescription", "x_UsageType", "SkuMeter", "ResourceName"):
        match = _INSTANCE_TYPE.search(row.get(column) or "")
        if match:
            return match.group("type")
    return None


def _instance(
    row: Mapping[str, str | None], source: str, day: date, cost: Decimal, list_cost: Decimal | None, currency: str
) -> InstanceLine | None:
    resource = row.get("ResourceId")
    if resource is None or row.get("ServiceCategory") != "Compute":
        return None
    kind = instance_type(row)
    resource_type = (row.get("ResourceType") or "").lower()
    if kind is None and not any(word in resource_type for word in ("instance", "virtual machine")):
        return None
    return InstanceLine(
        source=source,
        day=day,
        resource_id=resource,
        instance_type=kind,
        gpu=bool(kind and _GPU_FAMILY.search(kind)),
        cost=cost,
        list_cost=list_cost,
        currency=currency,
        account=row.get("SubAccountId"),
    )


# ----------------------------------------------------------------------------- parquet


def _parquet_rows(path: Path) -> tuple[list[str], Iterator[dict[str, str | None]]]:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError alike
        raise BillError(f"{path.name}: not a Parquet file: {exc}") from exc
    columns = list(table.column_names)
    return columns, ({name: _clean(value) for name, value in record.items()} for record in table.to_pylist())
