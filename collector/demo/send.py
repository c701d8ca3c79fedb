"""Posting the demo's bodies to the collector, over OTLP/HTTP, as an exporter would."""

from __future__ import annotations

import concurrent.futures
import http.client
import time

SENDERS = 3


def send(port: int, bodies: list[bytes], senders: int = SENDERS, path: str = "/v1/traces") -> None:
    """POST every body to `path` (/v1/traces); 200 means committed. Retries 429/503 as an exporter would."""

    def post_all(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            for body in chunk:
                for attempt in range(20):
                    conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
                    reply = conn.getresponse()
                    reply.read()
                    if reply.status == 200:
                        break
                    if reply.status not in (429, 503) or attempt == 19:
                        raise RuntimeError(f"collector answered {reply.status} to a demo export")
                    time.sleep(float(reply.getheader("Retry-After") or 1))
        finally:
            conn.close()

    chunks = [bodies[i::senders] for i in range(senders)]
    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        for future in [pool.submit(post_all, chunk) for chunk in chunks if chunk]:
            future.result()
