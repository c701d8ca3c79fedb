"""A fake of OpenAI's and Anthropic's admin usage and cost APIs, on a real local HTTP port.

It answers the four report endpoints breakeven fetches (collector/reconcile/fetch.py) in
each provider's documented page shapes, with daily buckets from a table the test fills, one
bucket per page so that every fetch follows `has_more` / `next_page`; the first request of
each endpoint gets 429 with Retry-After: 0. It checks the admin key header (401 otherwise)
and records every request's path, query and headers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OPENAI_KEY = "sk-admin-FAKE-OPENAI-7f3c9a"
ANTHROPIC_KEY = "sk-ant-admin01-FAKE-ANTHROPIC-2b8d"


@dataclass
class AdminApi:
    """What the fake bills: results per (report, day), and what it was asked."""

    results: dict[tuple[str, date], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = field(default_factory=list)
    throttled: set[str] = field(default_factory=set)
    url: str = ""

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append((path, query, headers))
        report, first, last = self._report(path, query)
        if report is None:
            return 404, {"error": {"message": f"no such endpoint {path}"}}
        expected = (
            ("authorization", f"Bearer {OPENAI_KEY}") if report.startswith("openai") else ("x-api-key", ANTHROPIC_KEY)
        )
        if headers.get(expected[0]) != expected[1]:
            return 401, {"error": {"message": "invalid admin key"}}
        if path not in self.throttled:
            self.throttled.add(path)
            return 429, {"error": {"message": "rate limited"}}
        days = [first + timedelta(days=n) for n in range((last - first).days)]
        index = int(query.get("page", ["0"])[0])
        day = days[index]
        start = datetime.combine(day, time(), UTC)
        results = self.results.get((report, day), [])
        if report.startswith("openai"):
            bucket = {"object": "bucket", "start_time": int(start.timestamp()),
                      "end_time": int((start + timedelta(days=1)).timestamp()), "results": results}  # fmt: skip
        else:
            bucket = {"starting_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "ending_at": (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "results": results}  # fmt: skip
        more = index + 1 < len(days)
        return 200, {"data": [bucket], "has_more": more, "next_page": str(index + 1) if more else None}

    @staticmethod
    def _report(path: str, query: dict[str, list[str]]) -> tuple[str | None, date, date]:
        reports = {
            "/v1/organization/usage/completions": "openai-usage",
            "/v1/organization/usage/embeddings": "openai-embeddings",
            "/v1/organization/costs": "openai-cost",
            "/v1/organizations/usage_report/messages": "anthropic-usage",
            "/v1/organizations/cost_report": "anthropic-cost",
        }
        report = reports.get(path)
        if report is None:
            return None, date.min, date.min
        if report.startswith("openai"):
            first = datetime.fromtimestamp(int(query["start_time"][0]), UTC).date()
            last = datetime.fromtimestamp(int(query["end_time"][0]), UTC).date()
        else:
            first = datetime.fromisoformat(query["starting_at"][0]).date()
            last = datetime.fromisoformat(query["ending_at"][0]).date()
        return report, first, last


@contextmanager
def running_admin_api() -> Iterator[AdminApi]:
    """The fake on a free loopback port, stopped after."""
    api = AdminApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body = api.answer(
                parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()}
            )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
