"""Dashboard routes. For now a home page: ingest health and the newest calls."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from collector.store import queries

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def add_dashboard(app: FastAPI, engine: sa.Engine) -> None:
    """Mount the dashboard pages on the API app."""

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        with engine.connect() as conn:
            totals = queries.ingest_totals(conn)
            recent, _ = queries.list_calls(conn, queries.CallFilters(), 25)
        return TEMPLATES.TemplateResponse(request, "home.html", {"totals": totals, "calls": recent})
