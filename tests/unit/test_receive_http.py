"""The OTLP/HTTP receiver's body reading: a client that hangs up mid-body is a 4xx, not a traceback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from breakeven.collector.ingest.http import HttpError, _read_body


def test_a_client_gone_mid_body_is_a_400_not_an_unhandled_error() -> None:
    messages = [{"type": "http.request", "body": b"\x0a\x02", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    request = Request({"type": "http", "method": "POST", "headers": [(b"content-length", b"100")]}, receive)
    with pytest.raises(HttpError) as err:
        asyncio.run(_read_body(request, 1024))
    assert err.value.status == 400
    assert "disconnected" in err.value.message
