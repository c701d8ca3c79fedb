"""Provider names are the OpenTelemetry GenAI registry's: stored rows migrate, aliases still work."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from breakeven.collector.config.pricing import parse_pricing
from breakeven.collector.config.settings import load_settings
from breakeven.collector.providers import canonical_provider, provider_for_host
from breakeven.collector.store.engine import downgrade, migrate
from breakeven.collector.store.queries import CallFilters, list_calls

OLD_ROW = (
    "INSERT INTO calls (trace_id, span_id, provider, start_time, end_time, backend_class, status, emitter,"
    " conventions, received_at, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,"
    " reasoning_tokens, usage_reported, span_count, member_span_ids) VALUES ('t-{name}', 's1', '{name}',"
    " now(), now(), 'frontier', 'ok', 'e', '', now(), 10, 0, 0, 2, 0, true, 1, 's1')"
)
STORED = ["google", "azure", "aws_bedrock", "mistral", "xai", "openai", "together"]


def _providers(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(sa.text("SELECT trace_id, provider FROM calls"))}


def test_stored_rows_take_the_registry_names_and_go_back(engine: sa.Engine) -> None:
    migrate(engine, "0009")
    with engine.begin() as conn:
        for name in STORED:
            conn.execute(sa.text(OLD_ROW.format(name=name)))
    migrate(engine)
    # Each old name is an alias of the name its rows take.
    assert _providers(engine) == {f"t-{name}": canonical_provider(name) for name in STORED}
    with engine.connect() as conn:  # asked for by an old name, the API finds the renamed rows
        page, _ = list_calls(conn, CallFilters(provider="aws_bedrock"), 10)
    assert [c["provider"] for c in page] == ["aws.bedrock"]
    downgrade(engine, "0009")
    assert _providers(engine) == {f"t-{name}": name for name in STORED}


@pytest.mark.parametrize(
    ("emitted", "canonical"),
    [
        pytest.param("gcp.gemini", "gcp.gemini", id="the registry's own value"),
        pytest.param("Google", "gcp.gemini", id="the Gemini API's old name"),
        pytest.param("vertex_ai", "gcp.vertex_ai", id="Vertex AI"),
        pytest.param("aws_bedrock", "aws.bedrock", id="Bedrock's old name"),
        pytest.param("az.ai.openai", "azure.ai.openai", id="Azure OpenAI's older registry value"),
        pytest.param("azure.ai.inference", "azure.ai.inference", id="Azure AI Inference"),
        pytest.param("mistralai", "mistral_ai", id="Mistral"),
        pytest.param("xai", "x_ai", id="xAI"),
        pytest.param("watsonx", "ibm.watsonx.ai", id="IBM watsonx.ai"),
        pytest.param("Together", "together", id="a provider without a registry value keeps its lower-case name"),
    ],
)
def test_emitted_names_become_the_registry_names(emitted: str, canonical: str) -> None:
    assert canonical_provider(emitted) == canonical


@pytest.mark.parametrize(
    ("host", "provider"),
    [
        pytest.param("generativelanguage.googleapis.com", "gcp.gemini", id="the Gemini API"),
        pytest.param("us-central1-aiplatform.googleapis.com", "gcp.vertex_ai", id="Vertex AI"),
        pytest.param("bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock", id="Bedrock"),
        pytest.param("acme.openai.azure.com", "azure.ai.openai", id="Azure OpenAI"),
        pytest.param("api.x.ai", "x_ai", id="xAI"),
    ],
)
def test_hosts_name_the_registry_providers(host: str, provider: str) -> None:
    assert provider_for_host(host) == provider


def test_config_may_name_a_provider_by_an_alias() -> None:
    settings = load_settings({"backend_classes": {"aws_bedrock": "managed"}}, environ={})
    assert dict(settings.backend_classes) == {"aws.bedrock": "managed"}
    entry = {"provider": "google", "model": "gemini-x", "effective_from": "2025-01-01", "input": 1, "output": 2}
    book = parse_pricing({"prices": [entry]})
    assert [e.provider for e in book.book.entries] == ["gcp.gemini"]
