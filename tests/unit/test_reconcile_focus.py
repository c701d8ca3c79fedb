"""FOCUS exports (the FinOps Foundation's real sample, the spec's own example, a hand-written AI
and GPU bill) read into BilledLine and InstanceLine records, exactly, in CSV, CSV.gz and Parquet."""

from __future__ import annotations

import csv
import gzip
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from breakeven.collector.reconcile.errors import BillError
from breakeven.collector.reconcile.focus import (
    FocusFile,
    focus_from_csv,
    instance_type,
    ledger_provider,
    read_focus,
    token_kind,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reconcile" / "focus"
REAL = FIXTURES / "focus-1.0-sample.csv"  # FinOps Foundation FOCUS-Sample-Data, FOCUS 1.0
SPEC = FIXTURES / "spec-virtual-currency-a2.csv"  # FOCUS_Spec specification/data/saas_examples
HAND = FIXTURES / "hand-ai-gpu-1.2.csv"  # hand-written: Bedrock, Azure OpenAI, Vertex AI, GPU VMs


def _column(path: Path, name: str) -> list[str]:
    """A column's text as the file writes it, the sample's NULL left out: the independent sum."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row[name] for row in csv.DictReader(handle) if row[name] not in ("", "NULL")]


# ----------------------------------------------------------------------------- the real sample


def test_real_sample_totals_are_exact() -> None:
    got = read_focus(REAL, "focus")
    assert len(got.lines) == 50
    assert sum(line.cost or 0 for line in got.lines) == sum(map(Decimal, _column(REAL, "BilledCost")))
    assert sum(line.cost or 0 for line in got.lines) == Decimal("19.27746522503")
    assert sum(line.list_cost or 0 for line in got.lines) == Decimal("19.14806522503")
    assert {line.currency for line in got.lines} == {"USD"}
    assert {line.source for line in got.lines} == {"focus"}


def test_real_sample_keeps_the_bills_own_provider_names_for_non_ai_lines() -> None:
    got = read_focus(REAL, "focus")
    assert sorted({line.provider for line in got.lines}) == ["AWS", "Microsoft", "Oracle"]
    assert all(line.model is None and line.input_tokens == 0 for line in got.lines)


@pytest.mark.parametrize(
    ("resource_id", "expected"),
    [
        pytest.param(
            "i-0b3b3095474a3772a",
            ("g3.4xlarge", True, date(2024, 9, 24), Decimal("1.14000000000"), "11353890204"),
            id="a g3 GPU instance hour: its type from the description, its day from '2024-09-24 02:00:00'",
        ),
        pytest.param(
            "i-0lbaaa6a98751b841",
            ("t2.medium", False, date(2024, 9, 4), Decimal("0"), "69918885631"),
            id="a t2 under a commitment: billed 0, not a GPU",
        ),
        pytest.param(
            "ocid6.instance.oc6.phx.anyhqljrdsqlhbicxkrxepiwynwfigxnvbzvimunzi1jtgqxhq2skchut8uq",
            (
                None,
                False,
                date(2024, 9, 30),
                Decimal("0.24"),
                "ocid6.tenancy.oc6..aaaaaaaamz7ywh2epitrng9d8a7rj7o6thfwjvz79n1hg9apiq7mvj8rpoia",
            ),
            id="an Oracle instance: ResourceType instance, no type in the row",
        ),
    ],
)
def test_real_sample_instance_lines(resource_id: str, expected: tuple[object, ...]) -> None:
    got = read_focus(REAL, "focus")
    [line] = [line for line in got.instances if line.resource_id == resource_id]
    assert (line.instance_type, line.gpu, line.day, line.cost, line.account) == expected


def test_real_sample_instance_lines_are_its_compute_instance_rows() -> None:
    got = read_focus(REAL, "focus")
    with REAL.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["ResourceType"] == "instance"]
    assert [line.resource_id for line in got.instances] == [row["ResourceId"] for row in rows]
    assert sum(line.cost for line in got.instances) == sum(Decimal(row["BilledCost"]) for row in rows)
    assert sorted({line.instance_type for line in got.instances if line.gpu}) == ["g3.4xlarge", "g5.4xlarge"]


# ----------------------------------------------------------------------------- AI and GPU lines

BEDROCK = ("aws.bedrock", "Claude3.5Sonnet", "111122223333")


@pytest.mark.parametrize(
    ("line_item", "provider", "model", "tokens", "cost", "day"),
    [
        pytest.param(
            "SKU-BR-IN", *BEDROCK[:2], (1_250_000, 0, 0, 0), "3.75", 2, id="Bedrock input tokens by usage type"
        ),
        pytest.param("SKU-BR-OUT", *BEDROCK[:2], (0, 0, 0, 200_000), "3", 2, id="Bedrock output tokens"),
        pytest.param("SKU-BR-CR", *BEDROCK[:2], (0, 500_000, 0, 0), "0.15", 2, id="Bedrock cache read is not input"),
        pytest.param("SKU-BR-CW", *BEDROCK[:2], (0, 0, 100_000, 0), "0.375", 2, id="Bedrock cache write"),
        pytest.param(
            "SKU-MP-IN",
            "aws.bedrock",
            "Claude 3.5 Sonnet",
            (100_000, 0, 0, 0),
            "0.3",
            3,
            id="Marketplace edition: model from ServiceName; 23:00-02:00 is the next UTC day",
        ),
        pytest.param(
            "SKU-BR-EMB", "aws.bedrock", None, (0, 0, 0, 0), "0.02", 2, id="tokens of no known kind: cost kept"
        ),
        pytest.param("SKU-BR-IMG", "aws.bedrock", None, (0, 0, 0, 0), "0.4", 2, id="images are not tokens"),
        pytest.param(
            "DZH318Z0BQ4W",
            "azure.ai.openai",
            "gpt-4o-0806",
            (1_500_000, 0, 0, 0),
            "3.75",
            2,
            id="Azure OpenAI meter in 1K units",
        ),
        pytest.param(
            "DZH318Z0BQ4X",
            "azure.ai.openai",
            "gpt-4o-0806",
            (0, 500_000, 0, 0),
            "0.625",
            2,
            id="Azure cached input is cache read",
        ),
        pytest.param(
            "A253-0EC9-97B2", "gcp.vertex_ai", "Gemini 1.5 Pro", (0, 0, 0, 500_000), "2.5", 2, id="Vertex AI output"
        ),
        pytest.param("SKU-P5", "AWS", None, (0, 0, 0, 0), "98.32", 2, id="EC2 keeps AWS: not an LLM provider"),
    ],
)
def test_hand_written_ai_lines(
    line_item: str, provider: str, model: str | None, tokens: tuple[int, ...], cost: str, day: int
) -> None:
    [line] = [line for line in read_focus(HAND, "bill").lines if line.line_item == line_item]
    assert (line.provider, line.model) == (provider, model)
    assert (line.input_tokens, line.cache_read_tokens, line.cache_write_tokens, line.output_tokens) == tokens
    assert (line.cost, line.currency, line.day) == (Decimal(cost), "USD", date(2026, 11, day))


def test_hand_written_gpu_instances() -> None:
    got = read_focus(HAND, "bill")
    assert [(line.resource_id, line.instance_type, line.gpu) for line in got.instances] == [
        ("i-0abc123def4567890", "p5.48xlarge", True),
        ("i-0def000000000000a", "m5.16xlarge", False),
        (
            "/subscriptions/0000/resourceGroups/gpu/providers/Microsoft.Compute/virtualMachines/gpu-pool-1",
            "Standard_ND96isr_H100_v5",
            True,
        ),
        ("projects/my-project/zones/us-central1-a/instances/gpu-pool-2", "a3-highgpu-8g", True),
    ]
    assert sum(line.cost for line in got.lines) == sum(map(Decimal, _column(HAND, "BilledCost")))


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "start_time,end_time,amount_value,amount_currency,line_item,project_id\n1730419200,1730505600,0.5,usd,gpt-4o,p\n",
            "missing column(s) BilledCost, BillingCurrency, ChargePeriodStart, ProviderName, ServiceName",
            id="an OpenAI costs export is not FOCUS",
        ),
        pytest.param(
            "BilledCost,BillingCurrency,ChargePeriodStart,ProviderName\n1,USD,2026-11-02T00:00:00Z,AWS\n",
            "missing column(s) ServiceName",
            id="one mandatory column missing is named",
        ),
        pytest.param(
            'BilledCost,BillingCurrency,ChargePeriodStart,ProviderName,ServiceName\n"$10,000.00 ",USD,2026-11-02T00:00:00Z,AWS,S\n',
            "row 2 BilledCost is not a number: '$10,000.00'",
            id="a formatted amount (as the spec's SaaS examples write it) is refused",
        ),
        pytest.param(
            "BilledCost,BillingCurrency,ChargePeriodStart,ProviderName,ServiceName\n1,USD,,AWS,S\n",
            "row 2 ChargePeriodStart is empty",
            id="a row without a charge period",
        ),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(BillError, match=re.escape(message)):
        focus_from_csv(text, "bill")


def test_the_specs_own_example_is_refused_for_its_us_dates() -> None:
    """The spec's virtual-currency example (a BOM, then "4/1/25") passes the column check and
    is refused at the first date, since April 1 and January 4 are both readings of it."""
    with pytest.raises(BillError, match=r"row 2 ChargePeriodStart is not an ISO 8601 date/time: '4/1/25'"):
        read_focus(SPEC, "spec")


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bill.xlsx"
    path.write_bytes(b"")
    with pytest.raises(BillError, match=re.escape("must end in .csv, .csv.gz or .parquet")):
        read_focus(path, "bill")


# ----------------------------------------------------------------------------- same rows, any file


def _parquet(source: Path, target: Path, money: pa.DataType) -> None:
    """The CSV's rows as a typed Parquet file, as a cloud writes one: money as `money`, the
    charge period as UTC timestamps, the rest as strings (NULL as null)."""
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    arrays: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [None if row[name] in ("", "NULL") else row[name] for row in rows]
        if name in ("BilledCost", "ListCost", "ConsumedQuantity"):
            parsed = [None if v is None else (float(v) if money == pa.float64() else Decimal(v)) for v in values]
            arrays[name] = pa.array(parsed, type=money)
        elif name == "ChargePeriodStart":
            moments = [datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values if v is not None]
            arrays[name] = pa.array(
                [m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments], type=pa.timestamp("us", tz="UTC")
            )
        else:
            arrays[name] = pa.array(values, type=pa.string())
    pq.write_table(pa.table(arrays), target)


@pytest.mark.parametrize("fixture", [pytest.param(REAL, id="real sample"), pytest.param(HAND, id="hand-written")])
@pytest.mark.parametrize(
    "money",
    [pytest.param(pa.decimal128(38, 15), id="decimal columns"), pytest.param(pa.float64(), id="double columns")],
)
def test_parquet_and_csv_of_the_same_rows_give_the_same_lines(
    fixture: Path, money: pa.DataType, tmp_path: Path
) -> None:
    target = tmp_path / "bill.parquet"
    _parquet(fixture, target, money)
    assert read_focus(target, "s") == read_focus(fixture, "s")


def test_gzip_and_bom_give_the_same_lines(tmp_path: Path) -> None:
    zipped = tmp_path / "bill.csv.gz"
    zipped.write_bytes(gzip.compress(("\ufeff" + HAND.read_text(encoding="utf-8")).encode()))
    assert read_focus(zipped, "s") == read_focus(HAND, "s")
    assert isinstance(read_focus(zipped, "s"), FocusFile)


# ----------------------------------------------------------------------------- the pure parts


@pytest.mark.parametrize(
    ("provider", "publisher", "service", "expected"),
    [
        pytest.param("AWS", "Amazon Web Services, Inc.", "Amazon Bedrock", "aws.bedrock", id="AWS Bedrock"),
        pytest.param(
            "AWS", "Anthropic", "Claude 3.5 Sonnet (Amazon Bedrock Edition)", "aws.bedrock", id="Bedrock Marketplace"
        ),
        pytest.param("Microsoft", "Microsoft", "Azure OpenAI", "azure.ai.openai", id="Azure OpenAI"),
        pytest.param("Google Cloud", "Google", "Vertex AI", "gcp.vertex_ai", id="Vertex AI"),
        pytest.param(
            "AWS", "Amazon Web Services, Inc.", "Amazon Elastic Compute Cloud", "AWS", id="EC2 keeps the bill's name"
        ),
        pytest.param(
            "Microsoft", "Microsoft", "Amazon Bedrock", "Microsoft", id="a service word counts only on its own cloud"
        ),
        pytest.param("Oracle", "Oracle", "Compute", "Oracle", id="an unknown cloud keeps its name"),
    ],
)
def test_ledger_provider(provider: str, publisher: str, service: str, expected: str) -> None:
    assert ledger_provider(provider, publisher, service) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            {"ConsumedUnit": "Tokens", "x_UsageType": "USW2-Llama3-70B-output-tokens"},
            ("output", "Llama3-70B"),
            id="region prefix dropped",
        ),
        pytest.param(
            {"ConsumedUnit": "Tokens", "x_UsageType": "USE1-NovaPro-cache-read-input-token-count"},
            ("cache_read", "NovaPro"),
            id="cache read before input",
        ),
        pytest.param(
            {"ConsumedUnit": "1M Tokens", "SkuMeter": "GPT-4o Outp regional"},
            ("output", "GPT-4o"),
            id="GPT- is no region",
        ),
        pytest.param(
            {"ConsumedUnit": "Tokens", "ChargeDescription": "$3 per million input tokens for X"},
            ("input", None),
            id="prose gives a kind, not a model",
        ),
        pytest.param(
            {"ConsumedUnit": "Hours", "x_UsageType": "USE1-Claude-input-tokens"}, (None, None), id="not a token unit"
        ),
    ],
)
def test_token_kind(row: dict[str, str], expected: tuple[str | None, str | None]) -> None:
    assert token_kind(row) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            {"SkuPriceDetails": '{"InstanceType": "p4d.24xlarge"}'}, "p4d.24xlarge", id="FOCUS 1.1 SkuPriceDetails"
        ),
        pytest.param(
            {"ChargeDescription": "$1.14 per On Demand Linux g3.4xlarge Instance Hour"},
            "g3.4xlarge",
            id="AWS description",
        ),
        pytest.param({"x_UsageType": "USE1-BoxUsage:g6e.xlarge"}, "g6e.xlarge", id="AWS usage type"),
        pytest.param({"SkuMeter": "Standard_NC24ads_A100_v4"}, "Standard_NC24ads_A100_v4", id="Azure size"),
        pytest.param({"ChargeDescription": "Storage"}, None, id="none named"),
    ],
)
def test_instance_type(row: dict[str, str], expected: str | None) -> None:
    assert instance_type(row) == expected
