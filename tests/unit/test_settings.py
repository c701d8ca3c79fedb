"""Bad settings stop start-up with a message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakeven.collector.config.checks import SettingsError
from breakeven.collector.config.settings import load_settings


@pytest.mark.parametrize(
    ("flags", "env", "names"),
    [
        pytest.param({"db": "mysql://x/y"}, {}, "db", id="unsupported database"),
        pytest.param({"db": "not a url"}, {}, "db", id="not a URL"),
        pytest.param({"http_port": 70000}, {}, "http_port", id="port out of range"),
        pytest.param({}, {"BREAKEVEN_OTLP_HTTP_PORT": "abc"}, "otlp_http_port", id="env port not a number"),
        pytest.param({"http_port": 4318}, {}, "http_port", id="two listeners on one port"),
        pytest.param({"host": "my host"}, {}, "host", id="host not an address"),
        pytest.param({}, {"BREAKEVEN_DBB": "x"}, "BREAKEVEN_DBB", id="unknown env var (typo)"),
        pytest.param({}, {"BREAKEVEN_MIGRATE": "perhaps"}, "migrate", id="not a boolean"),
        pytest.param({"queue_max_spans": 0}, {}, "queue_max_spans", id="zero queue"),
        pytest.param({"config": "/nonexistent/breakeven.toml"}, {}, "config", id="missing config file"),
        pytest.param({"duckdb_memory_limit": "lots"}, {}, "duckdb_memory_limit", id="memory limit not a size"),
        pytest.param(
            {"duckdb_checkpoint_threshold": "often"}, {}, "duckdb_checkpoint_threshold", id="checkpoint not a size"
        ),
        pytest.param({"decode_processes": -1}, {}, "decode_processes", id="negative decode processes"),
        pytest.param({}, {"BREAKEVEN_DUCKDB_THREADS": "0"}, "duckdb_threads", id="no DuckDB thread"),
        pytest.param({}, {"BREAKEVEN_DECODE_PROCESSES": "64"}, "decode_processes", id="too many decode processes"),
    ],
)
def test_bad_setting_is_named(flags: dict, env: dict, names: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(flags, environ=env)
    assert names in str(err.value)


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "b.toml"
    config.write_text('http_port = 9001\notlp_http_port = 9002\n[attributes]\nteam = ["app.team"]\n')
    s = load_settings({"config": str(config), "otlp_http_port": 9004}, environ={"BREAKEVEN_HTTP_PORT": "9003"})
    assert (s.http_port, s.otlp_http_port, s.otlp_grpc_port) == (9003, 9004, 4317)
    assert s.attributes == {"team": ("app.team",)}
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("htp_port = 1\n", "htp_port", id="unknown key"),
        pytest.param("[attributes]\nteem = ['x']\n", "attributes.teem", id="unknown mapped field"),
        pytest.param("[backend_classes]\n'10.0.0.1' = 'cheap'\n", "backend_classes.10.0.0.1", id="bad class"),
        pytest.param("http_port = \n", "config", id="not TOML"),
    ],
)
def test_bad_config_file_is_named(tmp_path: Path, text: str, names: str) -> None:
    config = tmp_path / "b.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings({"config": str(config)}, environ={})
    assert names in str(err.value)


def test_kubernetes_service_links_for_a_service_named_breakeven_are_not_settings() -> None:
    injected = {
        "BREAKEVEN_SERVICE_HOST": "10.0.0.1",
        "BREAKEVEN_SERVICE_PORT": "4317",
        "BREAKEVEN_SERVICE_PORT_OTLP_GRPC": "4317",
        "BREAKEVEN_PORT": "tcp://10.0.0.1:4317",
        "BREAKEVEN_PORT_4317_TCP": "tcp://10.0.0.1:4317",
        "BREAKEVEN_PORT_4317_TCP_ADDR": "10.0.0.1",
        "BREAKEVEN_PORT_4317_TCP_PROTO": "tcp",
        "BREAKEVEN_HTTP_PORT": "9000",
    }
    assert load_settings({}, injected).http_port == 9000


def test_decode_processes_zero_means_threads() -> None:
    assert load_settings({}, environ={}).decode_processes == 2
    assert load_settings({}, environ={"BREAKEVEN_DECODE_PROCESSES": "0"}).decode_processes == 0
