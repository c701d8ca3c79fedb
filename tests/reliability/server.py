"""A `breakeven serve` process under test: start, wait ready, kill, restart on the same ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One collector process; restartable on the same ports and database."""

    db_url: str
    log_dir: Path
    extra_args: tuple[str, ...] = ()
    entry: tuple[str, ...] = (sys.executable, "-m", "breakeven.collector.cli")  # or the console script
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # BREAKEVEN_* settings for the process
    new_session: bool = False  # a process group of its own, so a test can signal the whole group
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def otlp_http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def otlp_grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, ready_within: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKEVEN_")} | self.env
        self.starts += 1
        log = open(self.log_dir / f"collector-{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *self.entry,
                "serve",
                "--db",
                self.db_url,
                "--otlp-http-port",
                str(self.http_port),
                "--otlp-grpc-port",
                str(self.grpc_port),
                "--http-port",
                str(self.api_port),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.cwd,
            start_new_session=self.new_session,
        )
        deadline = time.monotonic() + ready_within
        while True:
            assert self.proc.poll() is None, f"collector exited with {self.proc.returncode}; see {log.name}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "collector did not become ready"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)
