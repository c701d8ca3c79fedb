"""Provider names and backend classes: who served a call and how it is paid for."""

from __future__ import annotations

from collections.abc import Mapping

from breakeven.collector.memo import remember

# Values emitters put in gen_ai.provider.name / gen_ai.system / llm.provider / llm.system,
# lower-cased, -> breakeven's provider name: the OpenTelemetry GenAI registry's well-known
# value where there is one (gen_ai.provider.name), else a documented lower-case name.
PROVIDER_ALIASES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "gcp.gemini",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "google_genai": "gcp.gemini",
    "google_generativeai": "gcp.gemini",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google_vertexai": "gcp.vertex_ai",
    "gcp.gen_ai": "gcp.gen_ai",
    "az.ai.openai": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "azure.ai.inference": "azure.ai.inference",
    "aws.bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "mistral_ai": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "cohere": "cohere",
    "x_ai": "x_ai",
    "xai": "x_ai",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
    "ibm.watsonx.ai": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    "groq": "groq",
    "together": "together",
    "together_ai": "together",
    "togetherai": "together",
    "fireworks": "fireworks",
    "fireworks_ai": "fireworks",
    "deepinfra": "deepinfra",
    "replicate": "replicate",
    "cerebras": "cerebras",
    "huggingface": "huggingface",
    "ollama": "ollama",
    "vllm": "vllm",
    "sglang": "sglang",
    "tgi": "tgi",
    "text-generation-inference": "tgi",
    "llama.cpp": "llamacpp",
    "llamacpp": "llamacpp",
    "lmdeploy": "lmdeploy",
    "triton": "triton",
    "tensorrt_llm": "tensorrt_llm",
}
# The names calls carried before the registry's (google, azure, aws_bedrock, mistral, xai) stay
# aliases of them; migration 0010 renamed the stored rows.
GOOGLE = frozenset({"gcp.gemini", "gcp.vertex_ai", "gcp.gen_ai"})

FRONTIER = frozenset(
    {"openai", "anthropic", *GOOGLE, "azure.ai.openai", "azure.ai.inference", "mistral_ai", "cohere", "x_ai",
     "deepseek", "perplexity"}
)  # fmt: skip
MANAGED = frozenset(
    {
        "together",
        "fireworks",
        "groq",
        "deepinfra",
        "replicate",
        "cerebras",
        "huggingface",
        "sambanova",
        "nebius",
        "ibm.watsonx.ai",
    }
)
ENGINES = frozenset({"vllm", "sglang", "tgi", "ollama", "llamacpp", "lmdeploy", "triton", "tensorrt_llm"})

# Public API hosts -> the provider that bills for them. An OpenAI client pointed at
# Together's URL reports gen_ai.system=openai; the host says who is paid.
PROVIDER_HOSTS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "api.mistral.ai": "mistral_ai",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.x.ai": "x_ai",
    "api.deepseek.com": "deepseek",
    "api.perplexity.ai": "perplexity",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "api.groq.com": "groq",
    "api.deepinfra.com": "deepinfra",
    "api.replicate.com": "replicate",
    "api.cerebras.ai": "cerebras",
    "api.sambanova.ai": "sambanova",
    "api.studio.nebius.ai": "nebius",
    "api.studio.nebius.com": "nebius",
    "router.huggingface.co": "huggingface",
    "api-inference.huggingface.co": "huggingface",
}
_HOST_SUFFIXES = (
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".amazonaws.com", "aws.bedrock"),
)


def canonical_provider(raw: object) -> str | None:
    """breakeven's name for an emitter's provider/system value (unknown names kept, lower-cased)."""
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if not text:
        return None
    return PROVIDER_ALIASES.get(text, text)


def provider_for_host(host: str | None) -> str | None:
    """The provider a public API host belongs to, or None for hosts we do not know."""
    if not host:
        return None
    host = host.lower()
    known = PROVIDER_HOSTS.get(host)
    if known is not None:
        return known
    for suffix, provider in _HOST_SUFFIXES:
        if host.endswith(suffix) and (provider != "aws.bedrock" or host.startswith("bedrock")):
            return provider
    return None


def backend_class(
    provider: str | None,
    server_address: str | None,
    server_port: int | None,
    backend: str | None,
    model: str | None,
    is_engine: bool,
    configured: Mapping[str, str],
) -> str:
    """frontier, managed, self_hosted or unknown; the user's configuration wins."""
    keys = []
    if server_address:
        if server_port:
            keys.append(f"{server_address}:{server_port}".lower())
        keys.append(server_address.lower())
    if backend:
        keys.append(backend.lower())
    if provider:
        keys.append(provider)
    for key in keys:
        if key in configured:
            return configured[key]
    if is_engine or provider in ENGINES:
        return "self_hosted"
    if server_address and provider_for_host(server_address) is None:
        # A client SDK's provider name says which API dialect it spoke, not who served it:
        # an OpenAI client aimed at an address we do not know may be a private vLLM box.
        return "unknown"
    if provider == "aws.bedrock":
        # Bedrock resells frontier models (Claude) beside open-weight ones.
        return "frontier" if model and ("claude" in model or "anthropic" in model) else "managed"
    if provider in FRONTIER:
        return "frontier"
    if provider in MANAGED:
        return "managed"
    return "unknown"


_BACKEND_CLASSES: dict[tuple[object, ...], tuple[Mapping[str, str], str]] = {}


def remembered_backend_class(
    provider: str | None,
    server_address: str | None,
    server_port: int | None,
    backend: str | None,
    model: str | None,
    is_engine: bool,
    configured: Mapping[str, str],
) -> str:
    """backend_class(), memoized. Each entry holds `configured`, so the id in its key stays that mapping's."""
    key = (provider, server_address, server_port, backend, model, is_engine, id(configured))
    try:
        return _BACKEND_CLASSES[key][1]
    except KeyError:
        found = backend_class(provider, server_address, server_port, backend, model, is_engine, configured)
        chars = sum(len(text) for text in (provider, server_address, backend, model) if text)
        return remember(_BACKEND_CLASSES, key, (configured, found), chars)[1]
