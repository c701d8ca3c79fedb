"""Preloaded by the decode processes' forkserver, first: SIGINT and SIGTERM ignored there.

A signal to the server's whole process group or cgroup (Ctrl-C, `kill -TERM -<pgid>`,
systemd's stop) reaches the forkserver and every decode process too. Killed by it, they
would break the pool under the exports the server is still draining, and a decode process
killed while it writes a result leaves a pool waiting for the rest. Ignored here, the
disposition passes to every decode process the forkserver forks; the server stops them in
order (collector/ingest/offload.py, TraceDecoder.close), and they end with the server
however it ends (its parent watch). Like the multiprocessing resource tracker, which
ignores both for the same reason. Import it nowhere else: in the server it would leave
`serve` deaf to SIGTERM.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
