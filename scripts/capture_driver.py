"""Capture driver: runs INSIDE one emitter's virtualenv (see capture_emitters.py).

Invoked as ``python capture_driver.py '<json config>'``; the config carries
emitter, provider ("openai" | "anthropic" | "gemini" | "bedrock" | "mistral" | "groq" |
"cohere"), kind (which instrumentation to
set up), scenarios, packages (distributions whose versions to record),
out_dir and tests_dir (where ``fakeprovider.py`` lives); options (the kind's settings) and
gateway (a gateway process the calls go through, started here: ``gateway()``).

For each scenario it makes one real client call against the fake provider,
force-flushes the OTel SDK and writes ``<out_dir>/<scenario>.json`` with the
raw OTLP/HTTP protobuf bodies the exporters POSTed to a local capture
receiver.  Only the standard library, the OTel SDK/exporter, protobuf (a
dependency of the exporter) and the provider client are used.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import importlib
import importlib.metadata as md
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

CONFIG = json.loads(sys.argv[1])
sys.path.insert(0, CONFIG["tests_dir"])

from capture_receiver import Receiver, count_spans, decode, to_json_dicts  # noqa: E402  (shared with capture_node.py)
from emitters import call_scenario, request_meta  # noqa: E402
from fakeprovider import FakeProvider, expected_record  # noqa: E402


def say(msg):
    print(f"[driver] {CONFIG['emitter']}: {msg}", flush=True)


# --------------------------------------------------------------------------
# OTel SDK setup
# --------------------------------------------------------------------------
RECEIVER = Receiver()
os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", RECEIVER.url)
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = RECEIVER.url
os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
os.environ["OTEL_SERVICE_NAME"] = f"capture-{CONFIG['emitter']}"

from opentelemetry import _logs, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

RESOURCE = Resource.create({"service.name": f"capture-{CONFIG['emitter']}"})
TP = TracerProvider(resource=RESOURCE)
TP.add_span_processor(
    BatchSpanProcessor(
        OTLPSpanExporter(endpoint=RECEIVER.url + "/v1/traces"), schedule_delay_millis=600000, max_export_batch_size=512
    )
)
trace.set_tracer_provider(TP)
LP = LoggerProvider(resource=RESOURCE)
LP.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(endpoint=RECEIVER.url + "/v1/logs"), schedule_delay_millis=600000)
)
_logs.set_logger_provider(LP)


def flush():
    gc.collect()
    time.sleep(0.2)  # let instrumentations finish spans ended from other threads / finalizers
    TP.force_flush(30000)
    LP.force_flush(30000)
    time.sleep(0.1)


# --------------------------------------------------------------------------
# Instrumentation
# --------------------------------------------------------------------------
# kind -> (module, instrumentor class, whether it takes a logger_provider): one entry per
# instrumentation library the captures drive.
INSTRUMENTORS: dict[str, tuple[str, str, bool]] = {
    "otel-openai-v2": ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor", True),
    "otel-genai-openai": ("opentelemetry.instrumentation.genai.openai", "OpenAIInstrumentor", True),
    "otel-anthropic": ("opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor", True),
    "openllmetry-openai": ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor", True),
    "openllmetry-anthropic": ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor", True),
    "openinference-openai": ("openinference.instrumentation.openai", "OpenAIInstrumentor", False),
    "openinference-anthropic": ("openinference.instrumentation.anthropic", "AnthropicInstrumentor", False),
    "otel-google-genai": ("opentelemetry.instrumentation.google_genai", "GoogleGenAiSdkInstrumentor", True),
    "openllmetry-google-genai": (
        "opentelemetry.instrumentation.google_generativeai", "GoogleGenerativeAiInstrumentor", True
    ),
    "openinference-google-genai": ("openinference.instrumentation.google_genai", "GoogleGenAIInstrumentor", False),
    "openllmetry-bedrock": ("opentelemetry.instrumentation.bedrock", "BedrockInstrumentor", True),
    "otel-botocore": ("opentelemetry.instrumentation.botocore", "BotocoreInstrumentor", True),
    "openllmetry-mistral": ("opentelemetry.instrumentation.mistralai", "MistralAiInstrumentor", True),
    "openllmetry-groq": ("opentelemetry.instrumentation.groq", "GroqInstrumentor", True),
    "openllmetry-cohere": ("opentelemetry.instrumentation.cohere", "CohereInstrumentor", True),
    "openinference-langchain": ("openinference.instrumentation.langchain", "LangChainInstrumentor", False),
    "openllmetry-langchain": ("opentelemetry.instrumentation.langchain", "LangchainInstrumentor", True),
}  # fmt: skip


def instrument():
    kind = CONFIG["kind"]
    if all(part in INSTRUMENTORS for part in kind.split("+")):
        # "a+b": both instrumentations, in that order (LangChain's with an OpenAI client's)
        for part in kind.split("+"):
            module, name, takes_logs = INSTRUMENTORS[part]
            instrumentor = getattr(importlib.import_module(module), name)()
            instrumentor.instrument(tracer_provider=TP, **({"logger_provider": LP} if takes_logs else {}))
    elif kind.split("+")[0] == "pydantic-ai":
        # pydantic-ai traces its own agent runs and model requests (no BaseInstrumentor);
        # "pydantic-ai+<kind>": with that OpenAI client instrumentation under it
        from pydantic_ai import Agent
        from pydantic_ai.models.instrumented import InstrumentationSettings

        Agent.instrument_all(InstrumentationSettings(tracer_provider=TP, **CONFIG.get("options", {})))
        for part in kind.split("+")[1:]:
            module, name, takes_logs = INSTRUMENTORS[part]
            instrumentor = getattr(importlib.import_module(module), name)()
            instrumentor.instrument(tracer_provider=TP, **({"logger_provider": LP} if takes_logs else {}))
    elif kind == "openlit":
        _instrument_openlit()
    elif kind != "none":
        raise SystemExit(f"unknown kind {kind}")


def _instrument_openlit():
    import openlit
    from openlit._instrumentors import MODULE_NAME_MAP

    keep = CONFIG["provider"]
    pricing = Path(tempfile.mkdtemp()) / "pricing.json"
    pricing.write_text(json.dumps(OPENLIT_PRICING))
    openlit.init(
        service_name=f"capture-{CONFIG['emitter']}",
        environment="capture",
        otlp_endpoint=RECEIVER.url,
        capture_message_content=True,
        disabled_instrumentors=[k for k in MODULE_NAME_MAP if k != keep],
        disable_metrics=True,
        collect_gpu_stats=False,
        collect_system_metrics=False,
        pricing_json=str(pricing),
    )


# A small local pricing table so openlit does not try to download its JSON
# (there is no internet); the numbers are per 1k tokens like openlit's file.
OPENLIT_PRICING = {
    "chat": {
        "gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006},
        "gpt-4o": {"promptPrice": 0.0025, "completionPrice": 0.01},
        "o3-mini": {"promptPrice": 0.0011, "completionPrice": 0.0044},
        "o4-mini": {"promptPrice": 0.0011, "completionPrice": 0.0044},
        "claude-sonnet-4-5": {"promptPrice": 0.003, "completionPrice": 0.015},
        "claude-haiku-4-5": {"promptPrice": 0.001, "completionPrice": 0.005},
    },
    "embeddings": {"text-embedding-3-small": 0.00002},
}


# --------------------------------------------------------------------------
# A gateway between the client and the fake provider, tracing itself
# --------------------------------------------------------------------------
GATEWAY_SERVICE = "capture-litellm-proxy"


@contextlib.contextmanager
def gateway(upstream):
    """(base URL the client calls, wait for the gateway's spans): the fake itself, or a gateway before it.

    "litellm": a real LiteLLM proxy (its own process, from this venv) routing gpt-4o-mini to
    the fake with retries off, forwarding the client's x- headers (the fake's scenario
    header), and exporting its spans with its "otel" callback to the capture receiver. Its
    batch processor cannot be flushed from here, so it exports every 100 ms, and the driver
    waits until the proxy's spans of a call have arrived.
    """
    if CONFIG.get("gateway") != "litellm":
        yield upstream, lambda mark: None
        return
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = Path(tempfile.mkdtemp())
    config = workdir / "litellm.yaml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "model_list": [
                    {
                        "model_name": "gpt-4o-mini",
                        "litellm_params": {
                            "model": "openai/gpt-4o-mini",
                            "api_base": upstream + "/v1",
                            "api_key": "sk-fake-upstream",
                        },
                    }
                ],
                "litellm_settings": {"callbacks": ["otel"], "num_retries": 0, "request_timeout": 30},
                "router_settings": {"num_retries": 0},
                "general_settings": {"forward_client_headers_to_llm_api": True},
            }
        )
    )
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": GATEWAY_SERVICE,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": RECEIVER.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price map
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        # no master key (the client's key is the scenarios' fake one): a local capture only
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    log = open(workdir / "proxy.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "litellm"), "--config", str(config), "--host", "127.0.0.1",
         "--port", str(port), "--num_workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/health/liveliness", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"LiteLLM proxy did not start: {(workdir / 'proxy.log').read_text()[-3000:]}")
        time.sleep(0.5)
    say(f"LiteLLM proxy up on {url}")
    time.sleep(1.5)  # whatever it traced while starting is exported before the first scenario

    def await_gateway(mark):
        # the proxy's spans of one call: wait for its first body, then until none came for 1.5 s
        deadline = time.monotonic() + 30
        seen, quiet_since = 0, time.monotonic()
        while time.monotonic() < deadline:
            bodies = [b for s, b, e, _ in RECEIVER.since(mark) if s == "traces" and _service_of(decode(b, e))]
            if len(bodies) != seen:
                seen, quiet_since = len(bodies), time.monotonic()
            elif seen and time.monotonic() - quiet_since > 1.5:
                return
            time.sleep(0.1)

    try:
        yield url, await_gateway
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _service_of(body):
    """Whether an OTLP traces body holds the gateway's spans (by its resource's service.name)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
        for attr in rs.resource.attributes:
            if attr.key == "service.name" and attr.value.string_value == GATEWAY_SERVICE:
                return True
    return False


def packages():
    out = {}
    for name in CONFIG["packages"]:
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def run():
    out_dir = Path(CONFIG["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    pkgs = packages()
    say("packages " + json.dumps(pkgs))
    instrument()
    failures = 0
    with FakeProvider() as fp, gateway(fp.base_url) as (base_url, await_gateway):
        # warm-up flush so any start-up telemetry is not attributed to scenario 1
        flush()
        for scenario in CONFIG["scenarios"]:
            fp.clear()
            mark = RECEIVER.mark()
            err = None
            try:
                call_scenario(CONFIG["provider"], base_url, scenario)
            except Exception as exc:  # the error scenario raises on purpose
                err = exc
                if not scenario.startswith("chat-error"):
                    say(f"{scenario}: unexpected exception {type(exc).__name__}: {exc}")
                    traceback.print_exc()
                    failures += 1
            flush()
            await_gateway(mark)
            bodies = RECEIVER.since(mark)
            traces = [decode(b, e) for s, b, e, _ in bodies if s == "traces"]
            logs = [decode(b, e) for s, b, e, _ in bodies if s == "logs"]
            raw_traces = [b for s, b, e, _ in bodies if s == "traces"]
            raw_logs = [b for s, b, e, _ in bodies if s == "logs"]
            returned = list(fp.returned)
            meta = request_meta(CONFIG["provider"], scenario)
            expected = expected_record(CONFIG["provider"], meta, returned, err)
            # several requests (an agent's tool round): several calls, one expected record each
            expected_calls = [expected_record(CONFIG["provider"], meta, [r]) for r in returned]
            traces_json = to_json_dicts(traces, "traces")
            logs_json = to_json_dicts(logs, "logs")
            nspans = count_spans(traces_json)
            if nspans == 0 and scenario in ("responses", "embeddings"):
                say(f"{scenario}: no spans emitted -> instrumentation does not cover it; fixture skipped")
                stale = out_dir / f"{scenario}.json"
                if stale.exists():
                    stale.unlink()
                continue
            if nspans == 0 and CONFIG["kind"] != "none":
                failures += 1
            fixture = {
                "emitter": CONFIG["emitter"],
                "scenario": scenario,
                "packages": pkgs,
                "provider_returned": [
                    {k: r.get(k) for k in ("path", "model", "usage", "stream", "status")} for r in returned
                ],
                "expected": expected,
                **({"expected_calls": expected_calls} if len(expected_calls) > 1 else {}),
                "traces": [base64.b64encode(b).decode() for b in raw_traces],
                "logs": [base64.b64encode(b).decode() for b in raw_logs],
                "traces_json": traces_json,
                "logs_json": logs_json,
            }
            path = out_dir / f"{scenario}.json"
            path.write_text(json.dumps(fixture, indent=1, sort_keys=False) + "\n")
            say(
                f"{scenario}: {len(raw_traces)} trace bodies ({nspans} spans), {len(raw_logs)} log bodies, "
                f"provider returned {[(r['path'], r['status']) for r in returned]}"
                + (f", raised {type(err).__name__}" if err is not None else "")
            )
    TP.shutdown()
    LP.shutdown()
    return failures


if __name__ == "__main__":
    sys.exit(1 if run() else 0)
