"""Real Alertmanager and Prometheus (Debian's packages) on free loopback ports, in temp dirs."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import require_program, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _running(args: list[str], log: Path, url: str) -> Iterator[str]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"{args[0]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(ready, timeout=30)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """An Alertmanager that routes everything to a receiver that sends nowhere; its base URL."""
    program = require_program("prometheus-alertmanager")
    home = tmp_path / "alertmanager"
    home.mkdir()
    config = home / "alertmanager.yml"
    config.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    args = [
        program,
        f"--config.file={config}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: one instance
    ]
    with _running(args, home / "log.txt", f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def prometheus(tmp_path: Path, target: str, rules: str) -> Iterator[str]:
    """A Prometheus scraping `target` (host:port) every second with these rules; its base URL."""
    program = require_program("prometheus")
    home = tmp_path / "prometheus"
    home.mkdir()
    (home / "rules.yml").write_text(rules)
    config = home / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        f"scrape_configs:\n  - job_name: breakeven\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    args = [
        program,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _running(args, home / "log.txt", f"http://127.0.0.1:{port}") as url:
        yield url
