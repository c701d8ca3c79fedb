"""Readers for the files under deploy/, and every place in them that starts `breakeven`.

Kept apart from the tests so that each test reads as the property it checks. Parsers are strict
where the usual library is lenient: PyYAML keeps the last of two equal keys, and systemd and
Docker files have no library here at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from breakeven.collector.cli import build_parser
from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "breakeven.service"
OTELCOL = DEPLOY / "otelcol" / "config.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"

# Settings a flag or a BREAKEVEN_* variable can set: the ones with a plain default. Tables
# (attributes, backend_classes, pricing, ...) come only from the config file, built by a factory.
SCALAR_SETTINGS = frozenset(
    f.name for f in dataclasses.fields(Settings) if f.default is None or isinstance(f.default, str | int | bool)
)
PORT_SETTINGS = ("otlp_grpc_port", "otlp_http_port", "http_port")
DEFAULT_PORTS = {name: getattr(Settings(), name) for name in PORT_SETTINGS}
# What a Secret holds in these manifests (a URL), for loading a container's settings.
SECRET_DB_URL = "postgresql+psycopg://breakeven:secret@postgres:5432/breakeven"
# The image the manifests and the compose file run breakeven from.
BREAKEVEN_IMAGE = re.compile(r"^breakeven:")


def rel(path: Path) -> str:
    """A deploy file's path as the docs name it (relative to deploy/)."""
    return path.relative_to(DEPLOY).as_posix()


# ----------------------------------------------------------------------------- parsers


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key repeated in one mapping is an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; keys written beside it may override merged ones.
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def yaml_documents(path: Path) -> list[Any]:
    """Every non-empty YAML document in the file."""
    return [doc for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_StrictLoader) if doc is not None]


def yaml_document(path: Path) -> Any:
    """The file's one YAML document."""
    (doc,) = yaml_documents(path)
    return doc


def _logical_lines(text: str, comment: re.Pattern[str]) -> Iterator[str]:
    """Lines with backslash continuations joined and comment lines dropped."""
    pending = ""
    for raw in text.splitlines():
        if not pending and comment.match(raw):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            yield line
    assert not pending, "the file ends inside a continued line"


def unit_sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as section -> [(key, value)] in file order (keys may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for line in _logical_lines(path.read_text(encoding="utf-8"), re.compile(r"^\s*[#;]")):
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            assert current not in sections, f"{path}: section [{current}] appears twice"
            sections[current] = []
            continue
        key, sep, value = line.partition("=")
        assert current is not None, f"{path}: not `Key=value` inside a section: {line!r}"
        assert sep, f"{path}: not `Key=value` inside a section: {line!r}"
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"{path}: bad key {key!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def unit_values(sections: Mapping[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    """Every value a unit assigns to one key of one section."""
    return [value for k, value in sections.get(section, []) if k == key]


DOCKER_INSTRUCTION = re.compile(
    r"FROM|RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|ONBUILD|STOPSIGNAL|HEALTHCHECK|SHELL"
)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile as [(INSTRUCTION, arguments)], continuations joined, comments dropped."""
    found = []
    for line in _logical_lines(path.read_text(encoding="utf-8"), re.compile(r"^\s*#")):
        word, _, rest = line.partition(" ")
        assert DOCKER_INSTRUCTION.fullmatch(word.upper()), f"{path}: unknown instruction {word!r}"
        found.append((word.upper(), rest.strip()))
    return found


def exec_form(arguments: str) -> list[str]:
    """A JSON-array instruction argument (CMD, ENTRYPOINT, HEALTHCHECK ... CMD)."""
    value = json.loads(arguments)
    assert isinstance(value, list), arguments
    assert all(isinstance(v, str) for v in value), arguments
    return value


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """The environment the final stage's ENV lines set."""
    env: dict[str, str] = {}
    for word, rest in instructions:
        if word == "FROM":
            env = {}
        elif word == "ENV":
            for pair in shlex.split(rest):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {pair!r}: use the KEY=value form"
                env[key] = value
    return env


def dockerignore_patterns(path: Path) -> list[str]:
    """The patterns of a .dockerignore file, in order."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()[:1] not in ("", "#")]


def markdown_headings(path: Path) -> list[str]:
    """The headings of a Markdown file; its code fences must pair up."""
    text = path.read_text(encoding="utf-8")
    assert len(re.findall(r"^```", text, flags=re.MULTILINE)) % 2 == 0, f"{path}: unclosed code fence"
    return re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL), re.MULTILINE)


def parse_deploy_file(path: Path) -> Any:
    """Parse any file under deploy/ by its kind; a kind without a parser fails."""
    if path.name == "Dockerfile":
        return dockerfile_instructions(path)
    if path.name.endswith(".dockerignore"):
        return dockerignore_patterns(path)
    if path.suffix in (".yaml", ".yml"):
        return yaml_documents(path)
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text(encoding="utf-8"))
    if path.suffix == ".service":
        return unit_sections(path)
    if path.suffix == ".md":
        return markdown_headings(path)
    if path.name == ".gitkeep":
        return path.read_text(encoding="utf-8")
    raise AssertionError(f"{rel(path)}: no parser for this kind of file; teach tests/deploy to check it")


# ----------------------------------------------------------------------------- breakeven invocations


@dataclasses.dataclass
class Invocation:
    """One place a deploy file runs `breakeven`: its arguments, environment and config file."""

    where: str
    argv: list[str]  # after the program name: ["serve", "--no-migrate", ...]
    env: dict[str, str]
    config_files: dict[str, str] = dataclasses.field(default_factory=dict)  # path in the container -> text

    def settings(self, scratch: Path) -> Settings:
        """What breakeven itself makes of this command line and environment."""
        args = parse_command_line(self.argv)
        flags = {k: v for k, v in vars(args).items() if k not in ("command", "revision")}
        environ = {k: v for k, v in self.env.items() if k.startswith("BREAKEVEN_")}
        flag_config, env_config = flags.pop("config", None), environ.pop("BREAKEVEN_CONFIG", None)
        config = flag_config or env_config  # flags outrank the environment, as in breakeven
        if config is not None and config in self.config_files:
            local = scratch / "breakeven.toml"
            local.write_text(self.config_files[config], encoding="utf-8")
            flags["config"] = str(local)
        # A config path the deploy files do not ship (the user's own) is not ours to check.
        try:
            return load_settings(flags, environ)
        except SettingsError as exc:
            raise AssertionError(f"{self.where}: breakeven would stop with: {exc}") from None


def subcommand_options() -> dict[str, set[str]]:
    """Every option string each `breakeven` subcommand accepts, from the CLI's own parser."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        name: {option for action in sub._actions for option in action.option_strings}
        for name, sub in subparsers.choices.items()
    }


def parse_command_line(argv: list[str]) -> argparse.Namespace:
    """The CLI's parse of a `breakeven` command line; AssertionError naming it when argparse rejects it."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"`breakeven {shlex.join(argv)}` is not a command line breakeven accepts") from None


def image_argv_and_env() -> tuple[list[str], dict[str, str]]:
    """The image's default command (after the `breakeven` entrypoint) and its environment."""
    instructions = dockerfile_instructions(DOCKERFILE)
    last = {word: rest for word, rest in instructions}
    entrypoint, cmd = exec_form(last["ENTRYPOINT"]), exec_form(last["CMD"])
    assert entrypoint == ["breakeven"], f"ENTRYPOINT is {entrypoint}, expected the breakeven console script"
    return cmd, dockerfile_env(instructions)


def compose_interpolate(value: Any) -> str:
    """A compose value as docker compose would see it with no variable set (defaults apply)."""
    pattern = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")
    return pattern.sub(lambda m: "$" if m.group(0) == "$$" else (m.group(2) or ""), str(value))


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's `environment`, as a dict, interpolated."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: compose_interpolate(v) for k, v in env.items()}


def compose_breakeven_services(compose: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The compose services that run the breakeven image."""
    return {name: s for name, s in compose["services"].items() if BREAKEVEN_IMAGE.match(str(s.get("image", "")))}


def pod_specs(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod spec of a workload manifest (Deployment, Job, ...), if it has one."""
    template = doc.get("spec", {}).get("template")
    return [template["spec"]] if template else []


def kubernetes_manifests() -> list[tuple[Path, int, Mapping[str, Any]]]:
    """(file, index in file, document) for every Kubernetes manifest."""
    return [(path, i, doc) for path in sorted(KUBERNETES.rglob("*.yaml")) for i, doc in enumerate(yaml_documents(path))]


def kubernetes_breakeven_containers() -> list[tuple[Path, Mapping[str, Any], Mapping[str, Any]]]:
    """(file, pod spec, container) for every container that runs the breakeven image."""
    found = []
    for path, _, doc in kubernetes_manifests():
        for pod in pod_specs(doc):
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                if BREAKEVEN_IMAGE.match(container["image"]):
                    found.append((path, pod, container))
    return found


def _config_maps() -> dict[str, Mapping[str, str]]:
    return {
        doc["metadata"]["name"]: doc.get("data", {})
        for _, _, doc in kubernetes_manifests()
        if doc["kind"] == "ConfigMap"
    }


def kubernetes_invocation(path: Path, pod: Mapping[str, Any], container: Mapping[str, Any]) -> Invocation:
    """A breakeven container as an invocation: image defaults, then its own args and env."""
    image_cmd, image_env = image_argv_and_env()
    assert "command" not in container, f"{rel(path)}: keep the image's `breakeven` entrypoint; set args"
    env = dict(image_env)
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        env[var["name"]] = SECRET_DB_URL if ref else var["value"]
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    maps = _config_maps()
    files = {}
    for volume in pod.get("volumes", []):
        name = volume.get("configMap", {}).get("name")
        if name in maps and volume["name"] in mounts:
            for key, text in maps[name].items():
                files[f"{mounts[volume['name']]}/{key}"] = text
    return Invocation(f"{rel(path)} container {container['name']}", container.get("args", image_cmd), env, files)


def unit_invocation() -> Invocation:
    """The systemd unit's ExecStart, specifiers expanded, with its Environment= lines."""
    sections = unit_sections(UNIT)
    (exec_start,) = unit_values(sections, "Service", "ExecStart")
    argv = shlex.split(exec_start.replace("%S", "/var/lib"))
    assert Path(argv[0]).name == "breakeven", f"ExecStart runs {argv[0]}, not breakeven"
    env = dict(
        pair.split("=", 1) for line in unit_values(sections, "Service", "Environment") for pair in shlex.split(line)
    )
    return Invocation(f"{rel(UNIT)} ExecStart", argv[1:], env)


def all_invocations() -> list[Invocation]:
    """Every place a deploy file starts breakeven."""
    image_cmd, image_env = image_argv_and_env()
    found = [Invocation(f"{rel(DOCKERFILE)} default", image_cmd, image_env)]
    for name, service in compose_breakeven_services(yaml_document(COMPOSE)).items():
        argv = [compose_interpolate(a) for a in service.get("command", image_cmd)]
        found.append(Invocation(f"{rel(COMPOSE)} service {name}", argv, image_env | compose_environment(service)))
    found.extend(kubernetes_invocation(*found_container) for found_container in kubernetes_breakeven_containers())
    found.append(unit_invocation())
    return found
